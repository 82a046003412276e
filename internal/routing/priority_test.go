package routing

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultSchema(t *testing.T) {
	s := DefaultSchema()
	if err := s.Validate(); err != nil {
		t.Fatalf("DefaultSchema invalid: %v", err)
	}
	for _, c := range []struct {
		age  time.Duration
		want int
	}{
		{-time.Minute, 10},
		{0, 10},
		{30*time.Minute - time.Second, 10},
		{30 * time.Minute, 20},
		{time.Hour, 30},
		{4*time.Hour - time.Second, 30},
		{4 * time.Hour, 50}, // SLA point: first breach step
		{5*time.Hour - time.Second, 50},
		{5 * time.Hour, 70},
		{10 * time.Hour, 170},
	} {
		if got := s.Priority(c.age); got != c.want {
			t.Errorf("Priority(%v) = %d, want %d", c.age, got, c.want)
		}
	}
}

func TestBreakdown(t *testing.T) {
	s := DefaultSchema()
	want := Breakdown{AgeS: 5*3600 + 30, Start: 10, PointIndex: 1, Base: 30, BreachSteps: 2, BreachAdd: 40, Priority: 70}
	if got := s.Breakdown(5*time.Hour + 30*time.Second + 400*time.Millisecond); got != want {
		t.Errorf("Breakdown(5h0m30.4s) = %+v, want %+v", got, want)
	}
	want = Breakdown{AgeS: 60, Start: 10, PointIndex: -1, Base: 10, Priority: 10}
	if got := s.Breakdown(time.Minute); got != want {
		t.Errorf("Breakdown(1m) = %+v, want %+v", got, want)
	}
}

func TestBreachOnceAndCap(t *testing.T) {
	once := Schema{Name: "once", Start: 5, SLAPointS: 600, BreachStep: 100}
	if err := once.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := once.Priority(599 * time.Second); got != 5 {
		t.Errorf("before SLA point: %d, want 5", got)
	}
	if got := once.Priority(600 * time.Second); got != 105 {
		t.Errorf("at SLA point: %d, want 105", got)
	}
	if got := once.Priority(100 * time.Hour); got != 105 {
		t.Errorf("long after a once-only breach: %d, want 105", got)
	}
	if next, ok := once.NextChange(600 * time.Second); ok {
		t.Errorf("NextChange after a once-only breach = %v, true; want false", next)
	}

	hot := Schema{Name: "hot", Start: MaxPriority, SLAPointS: 60, BreachStep: MaxPriority, BreachEveryS: 60}
	if err := hot.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := hot.Priority(9 * time.Minute); got != 10000 {
		t.Errorf("Priority(9m) = %d, want 10000 (1000 + 9 steps of 1000)", got)
	}
	b := hot.Breakdown(time.Hour)
	if b.Priority != PriorityCap || !b.Capped || b.BreachSteps < 10 {
		t.Errorf("Breakdown(1h) = %+v, want capped at %d", b, PriorityCap)
	}
	if got := hot.Priority(200 * 24 * time.Hour); got != PriorityCap {
		t.Errorf("Priority(200 days) = %d, want the cap %d", got, PriorityCap)
	}
	if next, ok := hot.NextChange(8 * time.Minute); !ok || next != 9*time.Minute {
		t.Errorf("NextChange(8m) = %v, %v; want 9m (reaching the cap)", next, ok)
	}
	if next, ok := hot.NextChange(9 * time.Minute); ok {
		t.Errorf("NextChange at the cap = %v, true; want false", next)
	}
}

func TestNextChange(t *testing.T) {
	s := DefaultSchema()
	for _, c := range []struct{ age, want time.Duration }{
		{0, 30 * time.Minute},
		{30 * time.Minute, time.Hour},
		{time.Hour, 4 * time.Hour},
		{4 * time.Hour, 5 * time.Hour},
		{4*time.Hour + 30*time.Minute, 5 * time.Hour},
	} {
		if got, ok := s.NextChange(c.age); !ok || got != c.want {
			t.Errorf("NextChange(%v) = %v, %v; want %v", c.age, got, ok, c.want)
		}
	}
	// A point that keeps the priority is not a change.
	flat := Schema{Name: "flat", Start: 10, Points: []Point{{600, 20}, {1200, 20}, {1800, 30}}}
	if got, ok := flat.NextChange(700 * time.Second); !ok || got != 1800*time.Second {
		t.Errorf("NextChange over an equal point = %v, %v; want 30m", got, ok)
	}
	if got, ok := flat.NextChange(1800 * time.Second); ok {
		t.Errorf("NextChange after the last point without breach = %v, true; want false", got)
	}
}

// An older item with a low start overtakes a younger one that started higher, at the
// minute the older one reaches its second point.
func TestAgeReordersItems(t *testing.T) {
	low := Schema{Name: "low", Start: 10, Points: []Point{{30 * 60, 20}, {60 * 60, 40}}}
	high := Schema{Name: "high", Start: 30}
	t0 := time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC)
	older, younger := t0, t0.Add(20*time.Minute)
	var passed time.Time
	for now := younger; now.Before(t0.Add(2 * time.Hour)); now = now.Add(time.Minute) {
		po := low.Priority(low.Age(older, now, nil))
		py := high.Priority(high.Age(younger, now, nil))
		if po > py {
			passed = now
			break
		}
	}
	if want := t0.Add(time.Hour); !passed.Equal(want) {
		t.Errorf("older item passes at %v, want %v", passed, want)
	}
	// NextChangeAt tells the queue when to look again.
	if at, ok := low.NextChangeAt(older, t0.Add(45*time.Minute), nil); !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("NextChangeAt = %v, %v; want %v", at, ok, t0.Add(time.Hour))
	}
}

func TestSchemaBusinessAge(t *testing.T) {
	s := DefaultSchema() // business time
	sched := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")})
	berlin := mustLoc(t, "Europe/Berlin")
	arrived := time.Date(2026, 3, 6, 16, 0, 0, 0, berlin) // Friday
	now := time.Date(2026, 3, 9, 9, 30, 0, 0, berlin)     // Monday
	if got := s.Age(arrived, now, sched); got != 90*time.Minute {
		t.Errorf("business age = %v, want 1h30m", got)
	}
	if got := s.Priority(s.Age(arrived, now, sched)); got != 30 {
		t.Errorf("priority = %d, want 30", got)
	}
	// The SLA point (4h of business time) is Monday 12:00.
	if at, ok := s.NextChangeAt(arrived, now, sched); !ok || !at.Equal(time.Date(2026, 3, 9, 12, 0, 0, 0, berlin)) {
		t.Errorf("NextChangeAt = %v, %v; want Monday 12:00", at, ok)
	}
	wall := s
	wall.BusinessTime = false
	if got := wall.Age(arrived, now, sched); got != now.Sub(arrived) {
		t.Errorf("wall-clock age = %v, want %v", got, now.Sub(arrived))
	}
}

func TestCurve(t *testing.T) {
	got := DefaultSchema().Curve(6*time.Hour + 30*time.Minute)
	want := []Point{{0, 10}, {1800, 20}, {3600, 30}, {14400, 50}, {18000, 70}, {21600, 90}, {23400, 90}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Curve = %v, want %v", got, want)
	}
	fast := Schema{Name: "fast", SLAPointS: 60, BreachStep: 1, BreachEveryS: 60}
	if n := len(fast.Curve(365 * 24 * time.Hour)); n != MaxCurvePoints {
		t.Errorf("len(Curve) = %d, want the bound %d", n, MaxCurvePoints)
	}
}

func TestSchemaValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		schema Schema
		field  string
		want   string
	}{
		{"no name", Schema{Start: 1}, "name", "enter a name"},
		{"start too high", Schema{Name: "x", Start: 1001}, "start", "from 0 to 1000"},
		{"age not increasing", Schema{Name: "x", Points: []Point{{600, 10}, {600, 20}}}, "points[1].age_s", "greater than the previous point's 600 s"},
		{"age decreasing", Schema{Name: "x", Points: []Point{{600, 10}, {1200, 20}, {900, 30}}}, "points[2].age_s", "greater than the previous point's 1200 s"},
		{"age zero", Schema{Name: "x", Points: []Point{{0, 10}}}, "points[0].age_s", "from 1 to"},
		{"priority below start", Schema{Name: "x", Start: 50, Points: []Point{{600, 40}}}, "points[0].priority", "at least 50 (the start's)"},
		{"priority falls", Schema{Name: "x", Points: []Point{{600, 40}, {1200, 30}}}, "points[1].priority", "at least 40 (the previous point's)"},
		{"priority range", Schema{Name: "x", Points: []Point{{600, 2000}}}, "points[0].priority", "from 0 to 1000"},
		{"negative sla", Schema{Name: "x", SLAPointS: -1}, "sla_point_s", "or 0 for no SLA point"},
		{"negative step", Schema{Name: "x", SLAPointS: 60, BreachStep: -5}, "breach_step", "from 0 to"},
		{"step without sla", Schema{Name: "x", BreachStep: 5}, "sla_point_s", "or set breach_step to 0"},
		{"every too short", Schema{Name: "x", SLAPointS: 60, BreachStep: 5, BreachEveryS: 10}, "breach_every_s", "from 60 to"},
		{"every without step", Schema{Name: "x", SLAPointS: 60, BreachEveryS: 600}, "breach_every_s", "set breach_step above 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fields := fieldErrors(t, c.schema.Validate())
			if msg := fields[c.field]; !strings.Contains(msg, c.want) {
				t.Errorf("field %q: got %q (all: %v), want a message containing %q", c.field, msg, fields, c.want)
			}
		})
	}
}
