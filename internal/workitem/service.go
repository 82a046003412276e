package workitem

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// Store is what Service needs of the store.
type Store interface {
	WorkItem(ctx context.Context, id int64) (store.WorkItem, error)
	ApplyChanges(ctx context.Context, changes []store.Change) ([]store.ChangeResult, error)
	Queue(ctx context.Context, id int64) (store.Queue, error)
	UserByID(ctx context.Context, id int64) (store.User, error)
}

// Engine is the routing engine's part in the lifecycle.
type Engine interface {
	Accept(ctx context.Context, agent store.User, itemID int64) error
	Decline(ctx context.Context, agent store.User, itemID int64, reason string) error
	Config() *routing.Config
	Wake()
}

// Service carries out actions on work items.
type Service struct {
	st     Store
	engine Engine
	now    func() time.Time
}

// NewService returns a Service; engine may be nil (no routing: accept and decline fail).
func NewService(st Store, engine Engine) *Service {
	return &Service{st: st, engine: engine, now: time.Now}
}

// SetClock replaces the service's clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Request is an action with its arguments.
type Request struct {
	Action Action
	Reason string
	// Transfer: to a queue, or to an agent (assigned to them at once).
	QueueID int64
	AgentID int64
	// Seen, when set, is the state the person saw when they chose the action: if the item
	// is in another state now, Do refuses with ErrStateChanged instead of acting on an
	// item that is no longer what they looked at (a page's form carries it).
	Seen State
}

// ErrStateChanged means the item changed since the person looked at it.
var ErrStateChanged = errors.New("the work item changed meanwhile (someone else acted on it): reload it and try again")

// Do carries out req on the item for user and returns the item as it is now.
func (s *Service) Do(ctx context.Context, user store.User, id int64, req Request) (store.WorkItem, error) {
	item, err := s.st.WorkItem(ctx, id)
	if err != nil {
		return store.WorkItem{}, err
	}
	if req.Seen != "" && State(item.State) != req.Seen {
		return item, ErrStateChanged
	}
	if err := Check(user, item, req.Action); err != nil {
		return item, err
	}
	if req.Action == Transfer && req.AgentID != 0 && user.Role == store.RoleAgent {
		return item, fmt.Errorf("%w: only a supervisor may transfer an item to a particular agent; transfer it to a queue", ErrNotAllowed)
	}
	switch req.Action {
	case Accept, Decline:
		if s.engine == nil {
			return item, errors.New("routing is not running on this server")
		}
		if req.Action == Accept {
			err = s.engine.Accept(ctx, user, id)
		} else {
			err = s.engine.Decline(ctx, user, id, req.Reason)
		}
	default:
		var c store.Change
		c, err = s.change(ctx, user, item, req)
		if err == nil {
			var res []store.ChangeResult
			res, err = s.st.ApplyChanges(ctx, []store.Change{c})
			if err == nil {
				err = res[0].Err
			}
		}
	}
	if errors.Is(err, store.ErrStateChanged) {
		return item, ErrStateChanged
	}
	if err != nil {
		return item, err
	}
	if s.engine != nil {
		s.engine.Wake()
	}
	return s.st.WorkItem(ctx, id)
}

// change builds the store change of an action other than accept and decline.
func (s *Service) change(ctx context.Context, user store.User, item store.WorkItem, req Request) (store.Change, error) {
	now := s.now()
	from := make([]string, 0, len(From(req.Action)))
	for _, st := range From(req.Action) {
		if st == State(item.State) { // only from the state the person saw
			from = append(from, string(st))
		}
	}
	to := Next(req.Action)
	reason := strings.TrimSpace(req.Reason)
	c := store.Change{WorkItemID: item.ID, From: from, To: string(to),
		Event: store.Event{Kind: string(req.Action), ActorID: user.ID, Actor: user.Username, QueueID: item.QueueID,
			AgentID: item.AssignedTo, Reason: reason}}
	zero := int64(0)
	var zt time.Time
	var cfg *routing.Config
	if s.engine != nil {
		cfg = s.engine.Config()
	}
	switch req.Action {
	case Pend:
		// The SLA clock pauses: what is left is kept and resumed when the customer writes
		// (ingest) or the agent resumes.
		if !item.SLADueAt.IsZero() {
			left := max(item.SLADueAt.Sub(now), time.Millisecond)
			if cfg != nil {
				p := cfg.SLAPolicyOf(item.QueueID, item.SLAPolicyID)
				if q := cfg.Queues[item.QueueID]; q != nil && q.Schedule != nil && p != nil && p.BusinessTime {
					left = max(q.Schedule.BusinessDuration(now, item.SLADueAt), time.Millisecond)
				}
			}
			c.SLARemaining = &left
			c.SLADueAt, c.SLARiskAt = &zt, &zt
		}
	case Resume:
		if item.SLARemaining > 0 {
			due, risk := resumeClock(cfg, item, now)
			none := time.Duration(0)
			c.SLADueAt, c.SLARiskAt, c.SLARemaining = &due, &risk, &none
		}
	case Close, Cancel:
		c.OfferedTo, c.OfferExpiresAt = &zero, &zt
		if reason == "" {
			c.Event.Reason = string(req.Action) + "d by " + user.Username
		}
	case Reopen:
		// Back to work with the agent who had it; a supervisor reopening an item nobody
		// had takes it.
		agent := item.AssignedTo
		if agent == 0 {
			agent = user.ID
		}
		empty := ""
		c.AssignedTo, c.OfferedTo, c.OfferExpiresAt, c.AgentAssigned, c.Reason = &agent, &zero, &zt, agent, &empty
		c.Event.AgentID = agent
		if reason == "" {
			c.Event.Reason = "reopened by " + user.Username
		}
	case Restart, Release:
		c.AssignedTo, c.OfferedTo, c.OfferExpiresAt = &zero, &zero, &zt
		if req.Action == Restart {
			c.QueuedAt = &now
		}
		empty := ""
		c.Flag = &empty
	case Transfer:
		switch {
		case req.AgentID != 0:
			agent, err := s.st.UserByID(ctx, req.AgentID)
			if err != nil {
				return c, fmt.Errorf("transfer to agent %d: %w", req.AgentID, err)
			}
			c.To = string(Assigned)
			c.AssignedTo, c.OfferedTo, c.OfferExpiresAt, c.AgentAssigned = &req.AgentID, &zero, &zt, req.AgentID
			c.Event.AgentID = req.AgentID
			if reason == "" {
				c.Event.Reason = "transferred to " + agent.Username + " by " + user.Username
			}
		case req.QueueID != 0:
			q, err := s.st.Queue(ctx, req.QueueID)
			if err != nil {
				return c, fmt.Errorf("transfer to queue %d: %w", req.QueueID, err)
			}
			c.QueueID = &req.QueueID
			c.AssignedTo, c.OfferedTo, c.OfferExpiresAt = &zero, &zero, &zt
			c.Event.QueueID = req.QueueID
			if reason == "" {
				c.Event.Reason = "transferred to queue " + q.Name + " by " + user.Username
			}
		default:
			return c, errors.New("transfer needs a queue or an agent")
		}
	}
	return c, nil
}

// resumeClock restarts a paused SLA clock at now with what was left of it: the due and
// at-risk instants, in the queue's business time when the policy counts in it.
func resumeClock(cfg *routing.Config, item store.WorkItem, now time.Time) (due, risk time.Time) {
	left := item.SLARemaining
	add := func(d time.Duration) time.Time { return now.Add(d) }
	var p *routing.SLAPolicy
	if cfg != nil {
		p = cfg.SLAPolicyOf(item.QueueID, item.SLAPolicyID)
		if q := cfg.Queues[item.QueueID]; q != nil && q.Schedule != nil && p != nil && p.BusinessTime {
			add = func(d time.Duration) time.Time { return q.Schedule.AddBusiness(now, d) }
		}
	}
	due, risk = add(left), add(left)
	if p != nil {
		target := p.FirstResponse()
		if !item.FirstResponseAt.IsZero() && p.NextResponse() > 0 {
			target = p.NextResponse()
		}
		pct := p.AtRiskPercent
		if pct <= 0 {
			pct = 80
		}
		riskLeft := left - target*time.Duration(100-pct)/100
		risk = now
		if riskLeft > 0 {
			risk = add(riskLeft)
		}
	}
	return due, risk
}
