package routing

import (
	"strings"
	"testing"
	"time"
)

// officeSLA: first response within 4 business hours, at risk at 75 % (3 h).
var officeSLA = SLAPolicy{Name: "Office", FirstResponseS: 4 * 3600, AtRiskPercent: 75, BusinessTime: true}

type slaCase struct {
	now       time.Time
	state     SLAState
	elapsed   time.Duration
	remaining time.Duration
}

func checkSLA(t *testing.T, p SLAPolicy, clk Clock, sched *Schedule, dueWant, riskWant time.Time, cases []slaCase) {
	t.Helper()
	for _, c := range cases {
		st := p.Status(p.FirstResponse(), clk, sched, c.now)
		if st.State != c.state || st.Elapsed != c.elapsed || st.Remaining != c.remaining {
			t.Errorf("at %v: state %s elapsed %v remaining %v; want %s %v %v",
				c.now, st.State, st.Elapsed, st.Remaining, c.state, c.elapsed, c.remaining)
		}
		if !st.Due.Equal(dueWant) || !st.AtRiskAt.Equal(riskWant) {
			t.Errorf("at %v: due %v at risk %v; want %v, %v", c.now, st.Due, st.AtRiskAt, dueWant, riskWant)
		}
	}
}

func TestSLAAcrossBusinessHours(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	sched := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")})
	clk := Clock{Start: at(6, 15, 0)} // Friday 15:00: 2 h left that day
	checkSLA(t, officeSLA, clk, sched, at(9, 11, 0), at(9, 10, 0), []slaCase{
		{at(6, 15, 0), SLAOK, 0, 4 * time.Hour},
		{at(7, 12, 0), SLAOK, 2 * time.Hour, 2 * time.Hour}, // Saturday: the clock stands still
		{at(9, 9, 59), SLAOK, 2*time.Hour + 59*time.Minute, time.Hour + time.Minute},
		{at(9, 10, 0), SLAAtRisk, 3 * time.Hour, time.Hour},
		{at(9, 10, 59), SLAAtRisk, 3*time.Hour + 59*time.Minute, time.Minute},
		{at(9, 11, 0), SLABreached, 4 * time.Hour, 0},
		{at(9, 12, 0), SLABreached, 5 * time.Hour, -time.Hour},
	})

	// The same policy on wall-clock time ignores the calendar.
	wall := officeSLA
	wall.BusinessTime = false
	checkSLA(t, wall, clk, sched, at(6, 19, 0), at(6, 18, 0), []slaCase{
		{at(6, 18, 0), SLAAtRisk, 3 * time.Hour, time.Hour},
	})
}

func TestSLAAcrossHoliday(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	sched := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00"),
		Holidays: []Holiday{{Date: "2026-03-09", Name: "Closed"}}})
	clk := Clock{Start: at(6, 15, 0)}
	checkSLA(t, officeSLA, clk, sched, at(10, 11, 0), at(10, 10, 0), []slaCase{
		{at(9, 16, 0), SLAOK, 2 * time.Hour, 2 * time.Hour}, // the holiday does not count
		{at(10, 9, 59), SLAOK, 2*time.Hour + 59*time.Minute, time.Hour + time.Minute},
		{at(10, 10, 0), SLAAtRisk, 3 * time.Hour, time.Hour},
		{at(10, 10, 59), SLAAtRisk, 3*time.Hour + 59*time.Minute, time.Minute},
		{at(10, 11, 0), SLABreached, 4 * time.Hour, 0},
	})
}

// A calendar open 00:00-12:00 daily in Berlin: on 29 March 2026 the clocks jump from 02:00
// to 03:00, so that morning has 11 hours. An 8 h target from Saturday 06:00 uses 6 h on
// Saturday and 2 h on Sunday, which end at 03:00 local (02:00 never happens).
func TestSLAAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	sched := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: everyDay("00:00", "12:00")})
	p := SLAPolicy{Name: "Night", FirstResponseS: 8 * 3600, AtRiskPercent: 50, BusinessTime: true}
	clk := Clock{Start: time.Date(2026, 3, 28, 6, 0, 0, 0, berlin)}
	due := time.Date(2026, 3, 29, 3, 0, 0, 0, berlin)
	if _, off := due.Zone(); off != 2*3600 {
		t.Fatalf("fixture: %v is not in summer time", due)
	}
	checkSLA(t, p, clk, sched, due, time.Date(2026, 3, 28, 10, 0, 0, 0, berlin), []slaCase{
		{time.Date(2026, 3, 28, 9, 59, 0, 0, berlin), SLAOK, 3*time.Hour + 59*time.Minute, 4*time.Hour + time.Minute},
		{time.Date(2026, 3, 28, 10, 0, 0, 0, berlin), SLAAtRisk, 4 * time.Hour, 4 * time.Hour},
		{due.Add(-time.Minute), SLAAtRisk, 8*time.Hour - time.Minute, time.Minute},
		{due, SLABreached, 8 * time.Hour, 0},
	})

	// In New York the autumn change (1 November 2026, 02:00 back to 01:00) gives that
	// morning 13 hours: 2 h on Sunday end at 01:00 EST, the second 01:00.
	ny := mustLoc(t, "America/New_York")
	nsched := mustSchedule(t, Calendar{TimeZone: "America/New_York", Hours: everyDay("00:00", "12:00")})
	nclk := Clock{Start: time.Date(2026, 10, 31, 6, 0, 0, 0, ny)}
	st := p.Status(p.FirstResponse(), nclk, nsched, time.Date(2026, 10, 31, 8, 0, 0, 0, ny))
	midnight := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	if want := midnight.Add(2 * time.Hour); !st.Due.Equal(want) {
		t.Errorf("New York due = %v, want %v", st.Due, want)
	}
	if _, off := st.Due.Zone(); off != -5*3600 {
		t.Errorf("New York due %v is not in standard time", st.Due)
	}
}

// A pending pause delays the due time by the pause's business length.
func TestSLAPause(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	sched := mustSchedule(t, Calendar{TimeZone: "Europe/Berlin", Hours: weekdays("09:00", "17:00")})
	// Friday 15:00 arrival; pending from Friday 16:00 to Monday 10:00: that pause holds
	// 2 business hours (Friday 16-17, Monday 9-10), so the due time moves from Monday
	// 11:00 to 13:00 and the at-risk time from 10:00 to 12:00.
	pause := Interval{From: at(6, 16, 0), To: at(9, 10, 0)}
	if got := sched.BusinessDuration(pause.From, pause.To); got != 2*time.Hour {
		t.Fatalf("fixture: pause holds %v of business time, want 2h", got)
	}
	clk := Clock{Start: at(6, 15, 0), Pauses: []Interval{pause}}
	checkSLA(t, officeSLA, clk, sched, at(9, 13, 0), at(9, 12, 0), []slaCase{
		{at(9, 11, 0), SLAOK, 2 * time.Hour, 2 * time.Hour},
		{at(9, 11, 59), SLAOK, 2*time.Hour + 59*time.Minute, time.Hour + time.Minute},
		{at(9, 12, 0), SLAAtRisk, 3 * time.Hour, time.Hour},
		{at(9, 13, 0), SLABreached, 4 * time.Hour, 0},
	})

	// Paused now (since Friday 16:00): the clock stands at 1 h; the due and at-risk times
	// assume it runs again from now, Monday 11:00 + 3 h and + 2 h.
	open := Clock{Start: at(6, 15, 0), PausedSince: at(6, 16, 0)}
	checkSLA(t, officeSLA, open, sched, at(9, 14, 0), at(9, 13, 0), []slaCase{
		{at(9, 11, 0), SLAPaused, time.Hour, 3 * time.Hour},
	})
	// Paused while at risk: paused wins; the at-risk time passed stays where it was.
	risky := Clock{Start: at(6, 15, 0), PausedSince: at(9, 10, 30)}
	checkSLA(t, officeSLA, risky, sched, at(9, 12, 30), at(9, 10, 0), []slaCase{
		{at(9, 12, 0), SLAPaused, 3*time.Hour + 30*time.Minute, 30 * time.Minute},
	})
	// Already late when the pause began: it stays breached, and Due is when it happened.
	late := Clock{Start: at(6, 15, 0), PausedSince: at(9, 12, 0)}
	checkSLA(t, officeSLA, late, sched, at(9, 11, 0), at(9, 10, 0), []slaCase{
		{at(10, 9, 0), SLABreached, 5 * time.Hour, -time.Hour},
	})
}

func TestClockRunning(t *testing.T) {
	t0 := time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC)
	clk := Clock{Start: t0, Pauses: []Interval{
		{t0.Add(20 * time.Minute), t0.Add(40 * time.Minute)},
		{t0.Add(-time.Hour), t0.Add(30 * time.Minute)},       // began before Start, overlaps the other
		{t0.Add(90 * time.Minute), t0.Add(80 * time.Minute)}, // empty: ignored
	}}
	p := SLAPolicy{Name: "x", FirstResponseS: 3600, AtRiskPercent: 80}
	st := p.Status(time.Hour, clk, nil, t0.Add(2*time.Hour))
	if st.Elapsed != 80*time.Minute || st.State != SLABreached || !st.Due.Equal(t0.Add(100*time.Minute)) {
		t.Errorf("status = %+v; want 1h20m elapsed, breached at %v", st, t0.Add(100*time.Minute))
	}
	if st := p.Status(0, clk, nil, t0); st.State != SLANone {
		t.Errorf("no target: state %q, want none", st.State)
	}
	if st := p.Status(time.Hour, clk, nil, t0.Add(-time.Hour)); st.Elapsed != 0 || st.State != SLAOK {
		t.Errorf("before Start: %+v, want ok with nothing elapsed", st)
	}
}

func TestSLAPolicyValidate(t *testing.T) {
	good := SLAPolicy{Name: "Standard", FirstResponseS: 14400, NextResponseS: 7200, ResolutionS: 86400, AtRiskPercent: 80}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
	for _, c := range []struct {
		name  string
		edit  func(*SLAPolicy)
		field string
		want  string
	}{
		{"no name", func(p *SLAPolicy) { p.Name = "" }, "name", "enter a name"},
		{"no first response", func(p *SLAPolicy) { p.FirstResponseS = 0 }, "first_response_s", "enter the first-response target"},
		{"negative next", func(p *SLAPolicy) { p.NextResponseS = -1 }, "next_response_s", "or 0 for none"},
		{"resolution too short", func(p *SLAPolicy) { p.ResolutionS = 3600 }, "resolution_s", "at least the first-response target (14400 s)"},
		{"at risk 100", func(p *SLAPolicy) { p.AtRiskPercent = 100 }, "at_risk_percent", "from 1 to 99"},
		{"at risk 0", func(p *SLAPolicy) { p.AtRiskPercent = 0 }, "at_risk_percent", "from 1 to 99"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := good
			c.edit(&p)
			fields := fieldErrors(t, p.Validate())
			if msg := fields[c.field]; !strings.Contains(msg, c.want) {
				t.Errorf("field %q: got %q (all: %v), want a message containing %q", c.field, msg, fields, c.want)
			}
		})
	}
}
