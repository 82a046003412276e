// Package workitem is the work item's lifecycle: a typed state machine that says which
// action moves an item from which state to which, and who may take it. The web pages and
// the API both call Service; no handler changes a state itself. Every change is a
// conditional store change written with its event row (who, when, from, to, why) in one
// transaction, so that two people acting at once cannot both win.
package workitem

import (
	"errors"
	"fmt"
	"slices"

	"github.com/postroom/postroom/internal/store"
)

// State is a work item's state.
type State string

// The states: new -> queued -> offered -> assigned -> pending | on_hold -> done | cancelled.
const (
	New       State = store.StateNew
	Queued    State = store.StateQueued
	Offered   State = store.StateOffered
	Assigned  State = store.StateAssigned
	Pending   State = store.StatePending
	OnHold    State = store.StateOnHold
	Done      State = store.StateDone
	Cancelled State = store.StateCancelled
)

// States lists every state in lifecycle order.
var States = []State{New, Queued, Offered, Assigned, Pending, OnHold, Done, Cancelled}

// Open reports whether an item in the state still needs work.
func (s State) Open() bool {
	switch s {
	case Queued, Offered, Assigned, Pending, OnHold:
		return true
	}
	return false
}

// Valid reports whether s is a state.
func (s State) Valid() bool { return slices.Contains(States, s) }

// Action is something a person does to a work item.
type Action string

// The actions.
const (
	Accept   Action = "accept"   // the offered agent takes it
	Decline  Action = "decline"  // the offered agent refuses it
	Pend     Action = "pend"     // waiting for the customer (SLA clock paused)
	Hold     Action = "hold"     // parked
	Resume   Action = "resume"   // back to work from pending or on hold
	Close    Action = "close"    // done
	Cancel   Action = "cancel"   // withdrawn by a supervisor
	Restart  Action = "restart"  // a done or cancelled item back in its queue
	Reopen   Action = "reopen"   // a done item back to work with the agent who had it
	Release  Action = "release"  // back to the queue (the agent gives it up)
	Transfer Action = "transfer" // to another queue, or to an agent
	Reply    Action = "reply"    // answered (the outbox records it); the replying agent keeps the item unless the reply says done or pending
)

// rule is one transition: from which states an action leads where, and who may take it.
type rule struct {
	from []State
	to   State
	// owner: the assigned (or offered) agent may; supervisor: supervisors and admins may.
	owner, supervisor bool
}

var rules = map[Action]rule{
	Accept:   {from: []State{Offered}, to: Assigned, owner: true},
	Decline:  {from: []State{Offered}, to: Queued, owner: true},
	Pend:     {from: []State{Assigned, OnHold}, to: Pending, owner: true, supervisor: true},
	Hold:     {from: []State{Assigned, Pending}, to: OnHold, owner: true, supervisor: true},
	Resume:   {from: []State{Pending, OnHold}, to: Assigned, owner: true, supervisor: true},
	Close:    {from: []State{Queued, Offered, Assigned, Pending, OnHold}, to: Done, owner: true, supervisor: true},
	Cancel:   {from: []State{Queued, Offered, Assigned, Pending, OnHold}, to: Cancelled, supervisor: true},
	Restart:  {from: []State{Done, Cancelled}, to: Queued, supervisor: true},
	Reopen:   {from: []State{Done}, to: Assigned, owner: true, supervisor: true},
	Release:  {from: []State{Assigned, Pending, OnHold}, to: Queued, owner: true, supervisor: true},
	Transfer: {from: []State{Queued, Offered, Assigned, Pending, OnHold}, to: Queued, owner: true, supervisor: true},
	Reply:    {from: []State{Queued, Offered, Assigned, Pending, OnHold, Done}, to: Assigned, owner: true, supervisor: true},
}

// ErrNotAllowed is wrapped by Check's refusals.
var ErrNotAllowed = errors.New("not allowed")

// Check says whether user may take action on item (nil when they may), with the reason
// in words when not. An agent may act on items assigned or offered to them (and reply to
// a queued item they opened, which assigns it to them); supervisors and admins on any.
func Check(user store.User, item store.WorkItem, action Action) error {
	r, ok := rules[action]
	if !ok {
		return fmt.Errorf("%w: unknown action %q", ErrNotAllowed, action)
	}
	from := State(item.State)
	if !slices.Contains(r.from, from) {
		return fmt.Errorf("%w: cannot %s a work item that is %s", ErrNotAllowed, action, from)
	}
	supervisor := user.Role == store.RoleSupervisor || user.Role == store.RoleAdmin
	owner := item.AssignedTo == user.ID || item.OfferedTo == user.ID
	if action == Reply && from == Queued {
		owner = true // replying takes the item
	}
	switch {
	case r.supervisor && supervisor:
		return nil
	case r.owner && owner:
		return nil
	case r.owner && (action == Accept || action == Decline):
		return fmt.Errorf("%w: this item is offered to someone else", ErrNotAllowed)
	case r.owner:
		return fmt.Errorf("%w: only the agent it is assigned to or a supervisor may %s it", ErrNotAllowed, action)
	default:
		return fmt.Errorf("%w: only a supervisor may %s a work item", ErrNotAllowed, action)
	}
}

// Next returns the state an action leads to.
func Next(action Action) State { return rules[action].to }

// From returns the states an action may start from.
func From(action Action) []State { return slices.Clone(rules[action].from) }

// Actions lists the actions user may take on item now, in a stable order (for buttons).
func Actions(user store.User, item store.WorkItem) []Action {
	var out []Action
	for _, a := range []Action{Accept, Decline, Resume, Pend, Hold, Close, Reopen, Release, Transfer, Cancel, Restart} {
		if Check(user, item, a) == nil {
			out = append(out, a)
		}
	}
	return out
}
