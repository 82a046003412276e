package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// ConfigStore is what loading the routing configuration needs of the store.
type ConfigStore interface {
	ListQueues(ctx context.Context) ([]store.Queue, error)
	ListRoutingObjects(ctx context.Context, kind string) ([]store.RoutingObject, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	RoutingVersion(ctx context.Context) (string, error)
}

// Queue is a queue with its routing settings, as the engine uses it.
type Queue struct {
	ID       int64
	Name     string
	Enabled  bool
	Settings QueueSettings
	Schedule *Schedule // nil: 24x7
	Schema   Schema
	SLA      *SLAPolicy // nil: none
	// members are the agents who serve the queue (directly or through a team);
	// overflow the agents it overflows to. everyone: the queue names no agent and no team,
	// so every agent serves it.
	members  map[int64]bool
	overflow map[int64]bool
	everyone bool
}

// Serves reports whether the agent serves the queue; overflowed items also go to the
// queue's overflow agents. A queue that names no agents and no teams is served by all.
func (q *Queue) Serves(agentID int64, overflowed bool) bool {
	return q.everyone || q.members[agentID] || (overflowed && q.overflow[agentID])
}

// servesAny reports whether the agent may take any item of the queue.
func (q *Queue) servesAny(agentID int64) bool {
	return q.everyone || q.members[agentID] || q.overflow[agentID]
}

// Config is one consistent snapshot of the routing configuration: queues with their
// calendars, schemas and SLA policies, the classification rules and the teams' members.
// It is immutable; a change makes a new snapshot (configuration changes take effect at
// once, atomically).
type Config struct {
	Version   string
	Queues    map[int64]*Queue
	Calendars map[int64]Calendar
	Schemas   map[int64]Schema
	SLAs      map[int64]SLAPolicy
	Rules     []Rule
	RuleSet   *RuleSet
	// DefaultQueue is the queue named store.DefaultQueue (0 when missing).
	DefaultQueue int64
}

// LoadConfig reads the routing configuration. A stored object that no longer parses is
// skipped with an error in errs, so that one bad object does not stop routing.
func LoadConfig(ctx context.Context, st ConfigStore) (*Config, []error, error) {
	version, err := st.RoutingVersion(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load routing configuration: %w", err)
	}
	c := &Config{Version: version, Queues: map[int64]*Queue{}, Calendars: map[int64]Calendar{},
		Schemas: map[int64]Schema{}, SLAs: map[int64]SLAPolicy{}}
	var problems []error
	load := func(kind string, each func(o store.RoutingObject) error) error {
		objs, err := st.ListRoutingObjects(ctx, kind)
		if err != nil {
			return fmt.Errorf("load routing configuration: %w", err)
		}
		for _, o := range objs {
			if err := each(o); err != nil {
				problems = append(problems, fmt.Errorf("%s %q (id %d): %w", kind, o.Name, o.ID, err))
			}
		}
		return nil
	}
	schedules := map[int64]*Schedule{}
	if err := load(store.KindCalendar, func(o store.RoutingObject) error {
		var cal Calendar
		if err := json.Unmarshal(o.Spec, &cal); err != nil {
			return err
		}
		cal.ID, cal.Name = o.ID, o.Name
		sch, err := cal.Compile()
		if err != nil {
			return err
		}
		c.Calendars[o.ID], schedules[o.ID] = cal, sch
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if err := load(store.KindSchema, func(o store.RoutingObject) error {
		var s Schema
		if err := json.Unmarshal(o.Spec, &s); err != nil {
			return err
		}
		s.ID, s.Name = o.ID, o.Name
		c.Schemas[o.ID] = s
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if err := load(store.KindSLA, func(o store.RoutingObject) error {
		var p SLAPolicy
		if err := json.Unmarshal(o.Spec, &p); err != nil {
			return err
		}
		p.ID, p.Name = o.ID, o.Name
		c.SLAs[o.ID] = p
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if err := load(store.KindRule, func(o store.RoutingObject) error {
		var r Rule
		if err := json.Unmarshal(o.Spec, &r); err != nil {
			return err
		}
		r.ID, r.Name, r.Position = o.ID, o.Name, o.Position
		c.Rules = append(c.Rules, r)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	rs, err := Compile(c.Rules)
	if err != nil {
		problems = append(problems, fmt.Errorf("classification rules: %w", err))
		rs, _ = Compile(nil)
	}
	c.RuleSet = rs

	agents, err := st.ListAgents(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load routing configuration: %w", err)
	}
	teamMembers := map[int64][]int64{}
	for _, a := range agents {
		for _, t := range a.Teams {
			teamMembers[t] = append(teamMembers[t], a.UserID)
		}
	}
	queues, err := st.ListQueues(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load routing configuration: %w", err)
	}
	for _, sq := range queues {
		q := &Queue{ID: sq.ID, Name: sq.Name, Enabled: sq.Enabled, members: map[int64]bool{}, overflow: map[int64]bool{}}
		if len(sq.Spec) > 0 {
			if err := json.Unmarshal(sq.Spec, &q.Settings); err != nil {
				problems = append(problems, fmt.Errorf("queue %q: %w", sq.Name, err))
			}
		}
		if sq.Name == store.DefaultQueue {
			c.DefaultQueue = sq.ID
		}
		c.Queues[sq.ID] = q
	}
	for _, q := range c.Queues {
		s := q.Settings
		q.Schedule = schedules[s.CalendarID]
		q.Schema = DefaultSchema()
		if sc, ok := c.Schemas[s.SchemaID]; ok {
			q.Schema = sc
		}
		if p, ok := c.SLAs[s.SLAPolicyID]; ok {
			q.SLA = &p
		}
		q.everyone = len(s.Agents) == 0 && len(s.Teams) == 0
		for _, a := range s.Agents {
			q.members[a] = true
		}
		for _, t := range s.Teams {
			for _, a := range teamMembers[t] {
				q.members[a] = true
			}
		}
		for _, t := range s.OverflowTeams {
			for _, a := range teamMembers[t] {
				q.overflow[a] = true
			}
		}
		if oq, ok := c.Queues[s.OverflowQueueID]; ok {
			for _, a := range oq.Settings.Agents {
				q.overflow[a] = true
			}
			for _, t := range oq.Settings.Teams {
				for _, a := range teamMembers[t] {
					q.overflow[a] = true
				}
			}
		}
	}
	return c, problems, nil
}

// schemaOf returns the schema an item is prioritised by.
func (c *Config) schemaOf(q *Queue, schemaID int64) Schema {
	if s, ok := c.Schemas[schemaID]; ok && schemaID != 0 {
		return s
	}
	return q.Schema
}

// slaOf returns the SLA policy of an item (nil: none).
func (c *Config) slaOf(q *Queue, policyID int64) *SLAPolicy {
	if p, ok := c.SLAs[policyID]; ok && policyID != 0 {
		return &p
	}
	if q == nil {
		return nil
	}
	return q.SLA
}

// SLAPolicyOf returns the SLA policy of an item in a queue (nil: none).
func (c *Config) SLAPolicyOf(queueID, policyID int64) *SLAPolicy {
	return c.slaOf(c.Queues[queueID], policyID)
}

// SLAClock returns the due and at-risk instants of a response target started at start,
// in the queue's business time when the policy says so (zero when no policy applies).
func (c *Config) SLAClock(queueID, policyID int64, start time.Time, next bool) (due, risk time.Time) {
	q := c.Queues[queueID]
	p := c.slaOf(q, policyID)
	if p == nil {
		return time.Time{}, time.Time{}
	}
	target := p.FirstResponse()
	if next && p.NextResponse() > 0 {
		target = p.NextResponse()
	}
	if target <= 0 {
		return time.Time{}, time.Time{}
	}
	var sched *Schedule
	if p.BusinessTime && q != nil {
		sched = q.Schedule
	}
	riskAfter := target * time.Duration(p.AtRiskPercent) / 100
	if p.AtRiskPercent <= 0 {
		riskAfter = target * 8 / 10
	}
	if sched == nil {
		return start.Add(target), start.Add(riskAfter)
	}
	return sched.AddBusiness(start, target), sched.AddBusiness(start, riskAfter)
}

// Priority computes an item's priority at now from its schema and age (never stored:
// an item's place in its queue changes as it ages) and explains it.
func (c *Config) Priority(it store.RoutingItem, now time.Time) (int, Breakdown) {
	q := c.Queues[it.QueueID]
	if q == nil {
		return it.PriorityAdjust, Breakdown{Priority: it.PriorityAdjust}
	}
	s := c.schemaOf(q, it.SchemaID)
	var sched *Schedule
	if s.BusinessTime {
		sched = q.Schedule
	}
	age := s.Age(it.QueuedAt, now, sched)
	b := s.Breakdown(age)
	p := b.Priority + it.PriorityAdjust
	if it.Overflowed {
		p += q.Settings.OverflowBoost
	}
	return p, b
}

// Hours tells how queueID's calendar stands at t: "holiday" on a holiday, "closed"
// outside its opening hours, else "open" (also for an unknown queue or one without a
// calendar). It chooses the acknowledgement a customer gets (package automsg).
func (c *Config) Hours(queueID int64, t time.Time) string {
	q := c.Queues[queueID]
	if q == nil {
		return "open"
	}
	switch {
	case q.Schedule.Holiday(t):
		return "holiday"
	case !q.Schedule.Open(t):
		return "closed"
	}
	return "open"
}
