package routing

import (
	"fmt"
	"time"
)

// Schema is a prioritisation schema, "priority over time" (as in Genesys IWD): an item
// starts at Start and climbs in steps as it ages, so that older items overtake younger
// ones that started higher. Past the SLA point it keeps rising by BreachStep, once or
// periodically, so that overdue work surfaces.
//
// Ages are whole seconds. When BusinessTime is set, an item's age counts only the open
// hours of its queue's calendar (see Schema.Age).
type Schema struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	Start        int     `json:"start"`          // priority at age 0
	Points       []Point `json:"points"`         // steps: from AgeS on, the priority is Priority
	SLAPointS    int64   `json:"sla_point_s"`    // age at which the SLA point is reached; 0 = none
	BreachStep   int     `json:"breach_step"`    // added at the SLA point...
	BreachEveryS int64   `json:"breach_every_s"` // ...and again every this many seconds after it; 0 = once
	BusinessTime bool    `json:"business_time"`  // age counted in the queue calendar's business time
}

// Point is one step of a schema's curve: from age AgeS (seconds) on, the priority is
// Priority (until the next point).
type Point struct {
	AgeS     int64 `json:"age_s"`
	Priority int   `json:"priority"`
}

// Bounds of a schema.
const (
	// MaxPriority bounds the configured priorities (Start, points) and BreachStep.
	MaxPriority = 1000
	// PriorityCap is the highest priority Schema.Priority returns: configured priorities
	// reach at most MaxPriority and breach steps add on top, up to this cap. Once an item
	// reaches it, its priority no longer changes.
	PriorityCap = 10 * MaxPriority
	// MaxSchemaPoints bounds the number of points in a schema.
	MaxSchemaPoints = 100
	// MaxAgeS bounds ages in a schema (point ages, SLA point, breach period): one year.
	MaxAgeS = 366 * 24 * 3600
	// MinBreachEveryS is the shortest breach period: one minute.
	MinBreachEveryS = 60
	// MaxCurvePoints bounds the points Schema.Curve returns.
	MaxCurvePoints = 500
)

// DefaultSchema is the schema a new queue starts with: priority 10 on arrival, 20 after
// 30 minutes, 30 after an hour; at 4 hours (the SLA point) +20, and +20 again every hour
// after that (50 at 4 h, 70 at 5 h, ...). Age is counted in business time.
func DefaultSchema() Schema {
	return Schema{
		Name:  "Default",
		Start: 10,
		Points: []Point{
			{AgeS: 30 * 60, Priority: 20},
			{AgeS: 60 * 60, Priority: 30},
		},
		SLAPointS:    4 * 3600,
		BreachStep:   20,
		BreachEveryS: 3600,
		BusinessTime: true,
	}
}

// Validate reports every problem in s as a *ValidationError (nil when s is valid).
func (s Schema) Validate() error {
	errs := &ValidationError{What: "prioritisation schema"}
	validateName(errs, s.Name, "schema")
	if s.Start < 0 || s.Start > MaxPriority {
		errs.Add("start", fmt.Sprintf("enter a priority from 0 to %d", MaxPriority))
	}
	if len(s.Points) > MaxSchemaPoints {
		errs.Add("points", fmt.Sprintf("enter at most %d points", MaxSchemaPoints))
	}
	prevAge, prevPrio, prevName := int64(0), s.Start, "start"
	for i, p := range s.Points {
		f := fmt.Sprintf("points[%d]", i)
		switch {
		case p.AgeS <= 0 || p.AgeS > MaxAgeS:
			errs.Add(f+".age_s", fmt.Sprintf("enter an age in seconds from 1 to %d (one year)", MaxAgeS))
		case p.AgeS <= prevAge:
			errs.Add(f+".age_s", fmt.Sprintf("enter an age greater than the previous point's %d s", prevAge))
		}
		if p.AgeS > prevAge {
			prevAge = p.AgeS
		}
		switch {
		case p.Priority < 0 || p.Priority > MaxPriority:
			errs.Add(f+".priority", fmt.Sprintf("enter a priority from 0 to %d", MaxPriority))
		case p.Priority < prevPrio:
			// An older item must never drop behind a younger one of the same schema.
			errs.Add(f+".priority", fmt.Sprintf("enter a priority of at least %d (the %s's): priority may not fall as an item ages", prevPrio, prevName))
		}
		if p.Priority > prevPrio {
			prevPrio = p.Priority
		}
		prevName = "previous point"
	}
	if s.SLAPointS < 0 || s.SLAPointS > MaxAgeS {
		errs.Add("sla_point_s", fmt.Sprintf("enter an age in seconds from 1 to %d, or 0 for no SLA point", MaxAgeS))
	}
	switch {
	case s.BreachStep < 0 || s.BreachStep > MaxPriority:
		errs.Add("breach_step", fmt.Sprintf("enter a step from 0 to %d", MaxPriority))
	case s.BreachStep > 0 && s.SLAPointS == 0:
		errs.Add("sla_point_s", "enter the age in seconds at which the SLA point is reached, or set breach_step to 0")
	}
	switch {
	case s.BreachEveryS != 0 && (s.BreachEveryS < MinBreachEveryS || s.BreachEveryS > MaxAgeS):
		errs.Add("breach_every_s", fmt.Sprintf("enter a period in seconds from %d to %d, or 0 to add breach_step once", MinBreachEveryS, MaxAgeS))
	case s.BreachEveryS != 0 && s.BreachStep == 0:
		errs.Add("breach_every_s", "set breach_step above 0, or leave breach_every_s at 0")
	}
	return errs.OrNil()
}

// Breakdown explains an item's priority for a supervisor: where it started, the point it
// has reached and what the SLA breach added.
type Breakdown struct {
	AgeS        int64 `json:"age_s"`        // the age explained, whole seconds
	Start       int   `json:"start"`        // the schema's start priority
	PointIndex  int   `json:"point_index"`  // index of the point reached; -1 before the first
	Base        int   `json:"base"`         // Start, or the priority of the point reached
	BreachSteps int   `json:"breach_steps"` // breach steps taken since the SLA point
	BreachAdd   int   `json:"breach_add"`   // BreachSteps * BreachStep
	Capped      bool  `json:"capped"`       // Base + BreachAdd exceeded PriorityCap
	Priority    int   `json:"priority"`     // the resulting priority
}

// Breakdown returns the parts of the priority at age (see Priority).
func (s Schema) Breakdown(age time.Duration) Breakdown {
	if age < 0 {
		age = 0
	}
	sec := int64(age / time.Second)
	b := Breakdown{AgeS: sec, Start: s.Start, PointIndex: -1, Base: s.Start}
	for i, p := range s.Points {
		if p.AgeS > sec {
			break
		}
		b.PointIndex, b.Base = i, p.Priority
	}
	b.BreachSteps = s.breachSteps(sec)
	b.BreachAdd = b.BreachSteps * s.BreachStep
	b.Priority = b.Base + b.BreachAdd
	if b.Priority > PriorityCap {
		b.Priority, b.Capped = PriorityCap, true
	}
	return b
}

// breachSteps is how many times BreachStep applies at age sec (whole seconds): once at
// the SLA point, then once more per full BreachEveryS after it.
func (s Schema) breachSteps(sec int64) int {
	if s.SLAPointS <= 0 || s.BreachStep <= 0 || sec < s.SLAPointS {
		return 0
	}
	if s.BreachEveryS <= 0 {
		return 1
	}
	n := 1 + (sec-s.SLAPointS)/s.BreachEveryS
	if limit := int64(PriorityCap/s.BreachStep + 1); n > limit {
		n = limit // enough to pass the cap; keeps BreachAdd in range
	}
	return int(n)
}

// Priority returns the priority of an item of age age: Start until the first point, then
// the priority of the last point reached; from the SLA point on, BreachStep is added once,
// plus once more for each full BreachEveryS after the SLA point. The result is at most
// PriorityCap. Age is truncated to whole seconds; a negative age counts as 0.
func (s Schema) Priority(age time.Duration) int {
	return s.Breakdown(age).Priority
}

// NextChange returns the first age after age at which the priority differs from the
// priority at age, and false when it never changes again (no points or breach steps ahead,
// or the cap reached). The queue uses it to know when its order may next change.
func (s Schema) NextChange(age time.Duration) (time.Duration, bool) {
	if age < 0 {
		age = 0
	}
	p0 := s.Priority(age)
	if p0 >= PriorityCap {
		return 0, false
	}
	sec := int64(age / time.Second)
	for {
		next, ok := s.nextEvent(sec)
		if !ok {
			return 0, false
		}
		at := time.Duration(next) * time.Second
		if s.Priority(at) != p0 {
			return at, true
		}
		sec = next
	}
}

// nextEvent returns the first age in seconds after sec at which a point or breach step
// applies. Each call moves strictly forward, and breach events (BreachStep > 0) change the
// priority until the cap, so NextChange's loop ends.
func (s Schema) nextEvent(sec int64) (int64, bool) {
	best, ok := int64(0), false
	take := func(v int64) {
		if v > sec && (!ok || v < best) {
			best, ok = v, true
		}
	}
	for _, p := range s.Points {
		if p.AgeS > sec {
			take(p.AgeS)
			break
		}
	}
	if s.SLAPointS > 0 && s.BreachStep > 0 {
		switch {
		case sec < s.SLAPointS:
			take(s.SLAPointS)
		case s.BreachEveryS > 0:
			take(s.SLAPointS + ((sec-s.SLAPointS)/s.BreachEveryS+1)*s.BreachEveryS)
		}
	}
	return best, ok
}

// Curve returns the steps to draw the schema's curve up to maxAge on an admin page: the
// point (0, Start), then one point per change of priority (from that age on, that
// priority), and a last point at maxAge so the final segment has an end. At most
// MaxCurvePoints are returned; a curve cut short ends at the last change listed.
func (s Schema) Curve(maxAge time.Duration) []Point {
	out := []Point{{AgeS: 0, Priority: s.Priority(0)}}
	age := time.Duration(0)
	for len(out) < MaxCurvePoints {
		next, ok := s.NextChange(age)
		if !ok || next > maxAge {
			break
		}
		out = append(out, Point{AgeS: int64(next / time.Second), Priority: s.Priority(next)})
		age = next
	}
	last := int64(maxAge / time.Second)
	if len(out) < MaxCurvePoints && out[len(out)-1].AgeS < last {
		out = append(out, Point{AgeS: last, Priority: out[len(out)-1].Priority})
	}
	return out
}

// Age returns the age to rank an item by at now: the business time since arrived in
// sched when the schema counts business time, wall-clock time otherwise (and for a nil
// sched, which is open around the clock).
func (s Schema) Age(arrived, now time.Time, sched *Schedule) time.Duration {
	if !s.BusinessTime {
		sched = nil
	}
	return sched.BusinessDuration(arrived, now)
}

// NextChangeAt returns the instant after now when the priority of an item that arrived at
// arrived next changes, converting NextChange's age back to wall-clock time through sched
// when the schema counts business time. False when it never changes again (or the
// calendar does not open within SearchHorizon).
func (s Schema) NextChangeAt(arrived, now time.Time, sched *Schedule) (time.Time, bool) {
	if !s.BusinessTime {
		sched = nil
	}
	next, ok := s.NextChange(s.Age(arrived, now, sched))
	if !ok {
		return time.Time{}, false
	}
	at := sched.AddBusiness(arrived, next)
	return at, !at.IsZero()
}
