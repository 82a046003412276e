package routing

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func TestHistoryRange(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 4, 0, 0, time.UTC)
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	for _, c := range []struct {
		from, to         string
		wantFrom, wantTo string
		bad              string
	}{
		{"", "", "2026-03-04", "2026-03-11", ""},
		{"2026-03-01", "2026-03-01", "2026-03-01", "2026-03-02", ""},
		{"2026-01-01", "2026-04-02", "2026-01-01", "2026-04-03", ""}, // 92 days
		{"2026-01-01", "2026-04-03", "", "", "to"},                   // 93 days
		{"2026-03-02", "2026-03-01", "", "", "to"},
		{"3/1/2026", "", "", "", "from"},
		{"", "2026-02-30", "", "", "to"},
	} {
		from, to, problems := HistoryRange(c.from, c.to, now)
		if c.bad != "" {
			if problems[c.bad] == "" {
				t.Errorf("%q..%q: problems %v, want one for %s", c.from, c.to, problems, c.bad)
			}
			continue
		}
		if problems != nil || !from.Equal(day(c.wantFrom)) || !to.Equal(day(c.wantTo)) {
			t.Errorf("%q..%q = %s..%s %v, want %s..%s", c.from, c.to, from, to, problems, c.wantFrom, c.wantTo)
		}
	}
}

func TestWriteHistoryCSV(t *testing.T) {
	recv := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rows := []store.HistoryRow{
		{Event: store.Event{WorkItemID: 7, At: recv.Add(time.Hour), Actor: "sam", Kind: "close", From: "assigned", To: "done", AgentID: 3, Reason: "@cmd"},
			Subject: "=1+2", QueueName: "Default", ReceivedAt: recv, FirstResponseAt: recv.Add(30 * time.Minute),
			FirstDueAt: recv.Add(time.Hour), AssignedAt: recv.Add(10 * time.Minute), DoneAt: recv.Add(time.Hour)},
		{Event: store.Event{WorkItemID: 8, At: recv, Actor: "system", Kind: "state", To: "queued", AgentID: 99},
			Subject: "-plain", ReceivedAt: recv, FirstDueAt: recv.Add(time.Hour)},
	}
	var b strings.Builder
	if err := WriteHistoryCSV(&b, rows, map[int64]string{3: "ana"}, recv.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{HistoryColumns,
		{"7", "2026-03-01T10:00:00Z", "sam", "close", "assigned", "done", "ana", "Default", "'@cmd", "'=1+2",
			"2026-03-01T09:00:00Z", "2026-03-01T09:30:00Z", "1800", "3000", "yes"},
		{"8", "2026-03-01T09:00:00Z", "system", "state", "", "queued", "#99", "", "", "'-plain",
			"2026-03-01T09:00:00Z", "", "", "", "no"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(want), b.String())
	}
	for i := range want {
		if strings.Join(recs[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("record %d:\n got %q\nwant %q", i, recs[i], want[i])
		}
	}
}

type hourlyStub []store.HourStats

func (h hourlyStub) HourlyStats(context.Context, time.Time) ([]store.HourStats, error) { return h, nil }

func TestHourly(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 4, 0, 0, time.UTC)
	hours, err := Hourly(context.Background(), hourlyStub{
		{Hour: now.Truncate(time.Hour), Arrivals: 4, Responded: 4, ResponseMet: 3},
		{Hour: now.Add(-30 * time.Hour), Arrivals: 9}, // too old: ignored
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 24 || !hours[0].Hour.Equal(time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)) {
		t.Fatalf("hours = %d from %s", len(hours), hours[0].Hour)
	}
	last := hours[23]
	if last.Arrivals != 4 || last.SLAAttainment == nil || *last.SLAAttainment != 75 || hours[0].SLAAttainment != nil {
		t.Errorf("last = %+v, first = %+v", last, hours[0])
	}
}

func TestChanged(t *testing.T) {
	e := NewEngine(EngineOptions{})
	ch := e.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	e.Wake()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("not closed by Wake")
	}
	if e.Changed() == ch {
		t.Error("Changed returns the closed channel again")
	}
}
