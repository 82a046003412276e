package routing

import (
	"fmt"
	"sort"
	"time"
)

// SLAPolicy holds a queue's service-level targets. Targets are in seconds; when
// BusinessTime is set they count only the open hours of the queue's calendar.
type SLAPolicy struct {
	ID             int64  `json:"id"`
	Name           string `json:"name"`
	FirstResponseS int64  `json:"first_response_s"` // from arrival to the first reply
	NextResponseS  int64  `json:"next_response_s"`  // from a customer's later message to the next reply; 0 = none
	ResolutionS    int64  `json:"resolution_s"`     // from arrival to resolution; 0 = none
	AtRiskPercent  int    `json:"at_risk_percent"`  // at risk once this share of the target is used, e.g. 80
	BusinessTime   bool   `json:"business_time"`
}

// MaxSLATargetS bounds SLA targets: one year.
const MaxSLATargetS = 366 * 24 * 3600

// Validate reports every problem in p as a *ValidationError (nil when p is valid).
func (p SLAPolicy) Validate() error {
	errs := &ValidationError{What: "SLA policy"}
	validateName(errs, p.Name, "SLA policy")
	if p.FirstResponseS <= 0 || p.FirstResponseS > MaxSLATargetS {
		errs.Add("first_response_s", fmt.Sprintf("enter the first-response target in seconds, from 1 to %d (e.g. 14400 for 4 hours)", MaxSLATargetS))
	}
	if p.NextResponseS < 0 || p.NextResponseS > MaxSLATargetS {
		errs.Add("next_response_s", fmt.Sprintf("enter the next-response target in seconds, from 1 to %d, or 0 for none", MaxSLATargetS))
	}
	switch {
	case p.ResolutionS < 0 || p.ResolutionS > MaxSLATargetS:
		errs.Add("resolution_s", fmt.Sprintf("enter the resolution target in seconds, from 1 to %d, or 0 for none", MaxSLATargetS))
	case p.ResolutionS > 0 && p.FirstResponseS > 0 && p.ResolutionS < p.FirstResponseS:
		errs.Add("resolution_s", fmt.Sprintf("enter at least the first-response target (%d s), or 0 for none", p.FirstResponseS))
	}
	if p.AtRiskPercent < 1 || p.AtRiskPercent > 99 {
		errs.Add("at_risk_percent", "enter a percentage from 1 to 99, e.g. 80")
	}
	return errs.OrNil()
}

// FirstResponse returns the first-response target.
func (p SLAPolicy) FirstResponse() time.Duration {
	return time.Duration(p.FirstResponseS) * time.Second
}

// NextResponse returns the next-response target (0 = none).
func (p SLAPolicy) NextResponse() time.Duration {
	return time.Duration(p.NextResponseS) * time.Second
}

// Resolution returns the resolution target (0 = none).
func (p SLAPolicy) Resolution() time.Duration {
	return time.Duration(p.ResolutionS) * time.Second
}

// Interval is a span of instants [From, To).
type Interval struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Clock is the input of an SLA clock: it runs from Start (arrival, or the customer's
// latest message) and stands still while the item is pending, waiting for the customer.
// Pauses are the closed pauses; PausedSince is the start of the current pause, zero while
// the clock runs. Pauses may be in any order and may overlap; parts before Start are
// ignored.
type Clock struct {
	Start       time.Time
	Pauses      []Interval
	PausedSince time.Time
}

// SLAState is the state of an SLA clock.
type SLAState string

// The states of an SLA clock, in the order Status decides them: breached wins over
// paused (a paused item that is already late stays late), paused over at risk.
const (
	SLANone     SLAState = "none"     // no target (0)
	SLABreached SLAState = "breached" // the target is used up
	SLAPaused   SLAState = "paused"   // within target, waiting for the customer
	SLAAtRisk   SLAState = "at_risk"  // at least AtRiskPercent of the target used
	SLAOK       SLAState = "ok"
)

// SLAStatus is the state of one SLA target at an instant.
type SLAStatus struct {
	State   SLAState      `json:"state"`
	Target  time.Duration `json:"target"`
	Elapsed time.Duration `json:"elapsed"` // counted time used (business time when the policy says so)
	// Remaining is Target - Elapsed; negative when breached (by how much it is late).
	Remaining time.Duration `json:"remaining"`
	// Due is the instant the target is (or was) reached. When it lies ahead it assumes the
	// clock keeps running from now (so for a paused clock it is what it would be if the
	// customer answered now). Zero when the calendar does not open within SearchHorizon.
	Due time.Time `json:"due"`
	// AtRiskAt is the instant AtRiskPercent of the target is (or was) used, on the same
	// terms as Due.
	AtRiskAt time.Time `json:"at_risk_at"`
}

// Status returns the state at now of an SLA clock with the given target (one of the
// policy's targets). Time counts only while the clock runs, and only in sched's open hours
// when the policy counts business time (a nil sched is open around the clock). A target of
// 0 or less yields state "none".
func (p SLAPolicy) Status(target time.Duration, clk Clock, sched *Schedule, now time.Time) SLAStatus {
	st := SLAStatus{Target: target}
	if target <= 0 {
		st.State = SLANone
		return st
	}
	if !p.BusinessTime {
		sched = nil
	}
	pct := time.Duration(p.AtRiskPercent)
	risk := target/100*pct + target%100*pct/100

	paused := !clk.PausedSince.IsZero() && !clk.PausedSince.After(now)
	runs := clk.running(now)
	for _, iv := range runs {
		st.Elapsed += sched.BusinessDuration(iv.From, iv.To)
	}
	st.Remaining = target - st.Elapsed
	st.Due = reach(runs, target, sched, now)
	st.AtRiskAt = reach(runs, risk, sched, now)
	switch {
	case st.Elapsed >= target:
		st.State = SLABreached
	case paused:
		st.State = SLAPaused
	case st.Elapsed >= risk:
		st.State = SLAAtRisk
	default:
		st.State = SLAOK
	}
	return st
}

// running returns the spans in [Start, now) when the clock ran: that range less the
// pauses and the current pause, in order.
func (c Clock) running(now time.Time) []Interval {
	if !now.After(c.Start) {
		return nil
	}
	stops := make([]Interval, 0, len(c.Pauses)+1)
	for _, iv := range c.Pauses {
		if iv.To.After(iv.From) {
			stops = append(stops, iv)
		}
	}
	if !c.PausedSince.IsZero() && c.PausedSince.Before(now) {
		stops = append(stops, Interval{c.PausedSince, now})
	}
	sort.Slice(stops, func(i, j int) bool { return stops[i].From.Before(stops[j].From) })
	var out []Interval
	cur := c.Start
	for _, iv := range stops {
		if iv.From.After(cur) {
			end := iv.From
			if end.After(now) {
				end = now
			}
			if end.After(cur) {
				out = append(out, Interval{cur, end})
			}
		}
		if iv.To.After(cur) {
			cur = iv.To
		}
	}
	if now.After(cur) {
		out = append(out, Interval{cur, now})
	}
	return out
}

// reach returns the instant the counted time reaches d: within the spans the clock ran,
// or else projected from now as if it runs on.
func reach(runs []Interval, d time.Duration, sched *Schedule, now time.Time) time.Time {
	var acc time.Duration
	for _, iv := range runs {
		n := sched.BusinessDuration(iv.From, iv.To)
		if acc+n >= d && n > 0 {
			return sched.AddBusiness(iv.From, d-acc)
		}
		acc += n
	}
	return sched.AddBusiness(now, d-acc)
}
