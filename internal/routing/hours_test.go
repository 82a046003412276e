package routing

import (
	"testing"
	"time"
)

// TestHours: a queue's calendar says open, closed or holiday at a given instant, in its
// own time zone.
func TestHours(t *testing.T) {
	cal := Calendar{Name: "Office", TimeZone: "Europe/Berlin",
		Hours:    []Hours{{Day: "mon", Start: "09:00", End: "17:00"}, {Day: "tue", Start: "09:00", End: "17:00"}},
		Holidays: []Holiday{{Date: "2026-12-28", Name: "Between the years"}}}
	sch, err := cal.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Queues: map[int64]*Queue{1: {ID: 1, Schedule: sch}, 2: {ID: 2}}}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		queue int64
		at    time.Time
		want  string
	}{
		{1, time.Date(2026, 12, 22, 10, 0, 0, 0, berlin), "open"},    // a Tuesday morning
		{1, time.Date(2026, 12, 22, 18, 0, 0, 0, berlin), "closed"},  // Tuesday evening
		{1, time.Date(2026, 12, 26, 10, 0, 0, 0, berlin), "closed"},  // a Saturday
		{1, time.Date(2026, 12, 28, 10, 0, 0, 0, berlin), "holiday"}, // a Monday, a holiday
		{1, time.Date(2026, 12, 28, 8, 30, 0, 0, time.UTC), "holiday"},
		{2, time.Date(2026, 12, 28, 3, 0, 0, 0, berlin), "open"}, // no calendar: always open
		{9, time.Date(2026, 12, 28, 3, 0, 0, 0, berlin), "open"}, // unknown queue
	} {
		if got := c.Hours(tc.queue, tc.at); got != tc.want {
			t.Errorf("Hours(queue %d, %s) = %s, want %s", tc.queue, tc.at, got, tc.want)
		}
	}
}
