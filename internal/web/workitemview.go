package web

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// actionLabels are the buttons' words for the actions without a form of their own.
var actionLabels = map[workitem.Action]string{
	workitem.Accept:  "Accept",
	workitem.Decline: "Decline",
	workitem.Resume:  "Resume",
	workitem.Pend:    "Pending (wait for the customer)",
	workitem.Hold:    "Hold",
	workitem.Close:   "Close",
	workitem.Release: "Release to the queue",
	workitem.Cancel:  "Cancel",
	workitem.Restart: "Restart",
	workitem.Reopen:  "Reopen",
}

type actionButton struct {
	Action workitem.Action
	Label  string
}

// itemRouting is the lifecycle part of a work item's page.
type itemRouting struct {
	Running bool
	Off     string
	Row     itemRow
	// Adjust is what the item adds to its schema's priority (classification's adjustment,
	// overflow boost).
	Adjust  int
	Buttons []actionButton
	// Transfer: to a queue for anyone who may transfer; to an agent for supervisors.
	CanTransfer bool
	Queues      []store.Queue
	Agents      []store.Agent
	Supervisor  bool
	History     []historyRow
	Traces      []traceView
}

type historyRow struct {
	store.Event
	Agent, Queue string
}

// traceView is a decoded decision trace: why this agent, why now.
type traceView struct {
	routing.Trace
	Excluded []countRow
	Broken   bool // the stored JSON did not decode
}

type countRow struct {
	Reason string
	Count  int
}

// itemRouting loads the routing figures, the viewer's actions, the history and (for
// supervisors and admins) the decision traces of wi.
func (h *handler) itemRouting(ctx context.Context, v viewer, wi store.WorkItem) (itemRouting, error) {
	now := h.now()
	ir := itemRouting{Running: h.routingRunning(), Off: routingOff, Row: itemRowOf(h.routingConfig(), wi, now),
		Supervisor: auth.Allowed(v.User.Role, store.RoleSupervisor)}
	if ir.Row.HasPriority {
		ir.Adjust = ir.Row.Priority - ir.Row.Breakdown.Priority
	}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		return ir, err
	}
	agents, err := h.st.ListAgents(ctx)
	if err != nil {
		return ir, err
	}
	queueNames, agentNames := map[int64]string{}, map[int64]string{}
	for _, q := range queues {
		queueNames[q.ID] = q.Name
	}
	for _, a := range agents {
		agentNames[a.UserID] = a.Username
	}
	if ir.Running {
		for _, a := range workitem.Actions(v.User, wi) {
			if a == workitem.Transfer {
				ir.CanTransfer = true
				continue
			}
			ir.Buttons = append(ir.Buttons, actionButton{Action: a, Label: actionLabels[a]})
		}
		for _, q := range queues {
			if q.Enabled && q.ID != wi.QueueID {
				ir.Queues = append(ir.Queues, q)
			}
		}
		if ir.Supervisor {
			for _, a := range agents {
				if !a.Disabled && a.UserID != wi.AssignedTo {
					ir.Agents = append(ir.Agents, a)
				}
			}
		}
	}
	events, err := h.st.Events(ctx, wi.ID)
	if err != nil {
		return ir, err
	}
	for _, e := range events {
		ir.History = append(ir.History, historyRow{Event: e, Agent: agentNames[e.AgentID], Queue: queueNames[e.QueueID]})
	}
	if ir.Supervisor {
		traces, err := h.st.Traces(ctx, wi.ID)
		if err != nil {
			return ir, err
		}
		for _, t := range traces {
			ir.Traces = append(ir.Traces, decodeTrace(t))
		}
	}
	return ir, nil
}

// decodeTrace reads a stored trace; one that does not decode is shown as such.
func decodeTrace(t store.Trace) traceView {
	var tv traceView
	if err := json.Unmarshal(t.JSON, &tv.Trace); err != nil {
		tv.Broken = true
		tv.At = t.At
		return tv
	}
	for reason, n := range tv.Trace.Excluded {
		tv.Excluded = append(tv.Excluded, countRow{Reason: reason, Count: n})
	}
	slices.SortFunc(tv.Excluded, func(a, b countRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	return tv
}
