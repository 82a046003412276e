package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// A queue on the board: its open items in the order the engine gives them out (priority,
// then age), each with its priority explained, and one-click actions that go through
// workitem.Service like every other change; then the recently closed ones to restart.

// boardClosedLimit bounds the closed items listed for restarting.
const boardClosedLimit = 50

// boardOpenLimit bounds the open items listed.
const boardOpenLimit = 500

type boardItemRow struct {
	store.WorkItem
	Priority int
	// Explain is the priority's breakdown in words.
	Explain string
	Age     string
	// SLA is "breached", "at risk" or "".
	SLA string
	// Actions the viewer may take.
	CanReassign, CanHold, CanCancel, CanRestart bool
	// Agent is who has it: assigned or offered to.
	Agent string
}

type boardQueueData struct {
	Queue      store.Queue
	Settings   routing.QueueSettings
	Open       []boardItemRow
	Closed     []boardItemRow
	Agents     []store.Agent
	NoRouting  bool
	NoPriority bool
	OpenCapped bool
	Notice     string
	Error      string
}

// boardNotices are the notices after an action (?done=).
var boardNotices = map[string]string{
	"reassign": "transferred to the agent you chose",
	"hold":     "put on hold",
	"cancel":   "cancelled",
	"restart":  "back in its queue",
}

func (h *handler) boardQueue(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := h.pathID(w, r, "queue")
	if !ok {
		return
	}
	d := boardQueueData{}
	if n, ok := boardNotices[r.URL.Query().Get("done")]; ok {
		item, _ := strconv.ParseInt(r.URL.Query().Get("item"), 10, 64)
		d.Notice = fmt.Sprintf("Work item #%d %s.", item, n)
	}
	h.renderBoardQueue(w, r, v, http.StatusOK, id, d)
}

func (h *handler) renderBoardQueue(w http.ResponseWriter, r *http.Request, v viewer, status int, id int64, d boardQueueData) {
	ctx := r.Context()
	now := h.now()
	q, err := h.st.Queue(ctx, id)
	if err != nil {
		h.storeError(w, r, "queue", err)
		return
	}
	d.Queue = q
	if len(q.Spec) > 0 {
		_ = json.Unmarshal(q.Spec, &d.Settings) // a bad spec shows as no settings
	}
	d.NoRouting = h.work == nil
	var cfg *routing.Config
	if h.engine != nil {
		cfg = h.engine.Config()
	}
	d.NoPriority = cfg == nil
	agents, err := h.st.ListAgents(ctx)
	if err != nil {
		h.serverError(w, r, "list the agents", err)
		return
	}
	names := map[int64]string{}
	for _, a := range agents {
		name := a.DisplayName
		if strings.TrimSpace(name) == "" {
			name = a.Username
		}
		names[a.UserID] = name
		if !a.Disabled {
			d.Agents = append(d.Agents, a)
		}
	}
	open, err := h.st.ListWorkItems(ctx, store.WorkItemFilter{QueueID: id, Sort: "oldest", Limit: boardOpenLimit,
		States: []string{store.StateQueued, store.StateOffered, store.StateAssigned, store.StatePending, store.StateOnHold}})
	if err != nil {
		h.serverError(w, r, "list the queue's work items", err)
		return
	}
	d.OpenCapped = len(open) == boardOpenLimit
	for _, it := range open {
		row := boardItemRow{WorkItem: it, Age: ageSince(queuedSince(it), now),
			CanReassign: workitem.Check(v.User, it, workitem.Transfer) == nil,
			CanHold:     workitem.Check(v.User, it, workitem.Hold) == nil,
			CanCancel:   workitem.Check(v.User, it, workitem.Cancel) == nil}
		switch {
		case it.AssignedTo != 0:
			row.Agent = names[it.AssignedTo]
		case it.OfferedTo != 0:
			row.Agent = "offered to " + names[it.OfferedTo]
		}
		switch {
		case !it.SLADueAt.IsZero() && !now.Before(it.SLADueAt):
			row.SLA = "breached"
		case !it.SLARiskAt.IsZero() && !now.Before(it.SLARiskAt):
			row.SLA = "at risk"
		}
		if cfg != nil {
			var bd routing.Breakdown
			row.Priority, bd = cfg.Priority(routing.ItemOf(it), now)
			row.Explain = explainPriority(cfg, it, bd)
		}
		d.Open = append(d.Open, row)
	}
	// The engine's order: highest priority first, oldest first on ties.
	slices.SortStableFunc(d.Open, func(a, b boardItemRow) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return queuedSince(a.WorkItem).Compare(queuedSince(b.WorkItem))
	})
	closed, err := h.st.ListWorkItems(ctx, store.WorkItemFilter{QueueID: id, Limit: boardClosedLimit,
		States: []string{store.StateDone, store.StateCancelled}})
	if err != nil {
		h.serverError(w, r, "list the queue's closed work items", err)
		return
	}
	for _, it := range closed {
		ago := ageSince(it.UpdatedAt, now)
		if ago != "just now" {
			ago += " ago"
		}
		d.Closed = append(d.Closed, boardItemRow{WorkItem: it, Age: ago,
			CanRestart: workitem.Check(v.User, it, workitem.Restart) == nil})
	}
	h.render(w, r, status, "boardqueue", h.data(v, q.Name+" · Board", "board", d))
}

func queuedSince(it store.WorkItem) time.Time {
	if !it.QueuedAt.IsZero() {
		return it.QueuedAt
	}
	return it.ReceivedAt
}

// explainPriority says how an item's priority came about: the schema's start, the point
// reached, the breach steps, the classification's adjustment and the overflow boost.
func explainPriority(cfg *routing.Config, it store.WorkItem, bd routing.Breakdown) string {
	parts := []string{fmt.Sprintf("start %d", bd.Start)}
	if bd.PointIndex >= 0 {
		parts = append(parts, fmt.Sprintf("point %d reached (%d)", bd.PointIndex+1, bd.Base))
	} else {
		parts = append(parts, "no point reached yet")
	}
	if bd.BreachSteps > 0 {
		step := "steps"
		if bd.BreachSteps == 1 {
			step = "step"
		}
		parts = append(parts, fmt.Sprintf("%d breach %s +%d", bd.BreachSteps, step, bd.BreachAdd))
	}
	if bd.Capped {
		parts = append(parts, fmt.Sprintf("capped at %d", bd.Priority))
	}
	if it.PriorityAdjust != 0 {
		parts = append(parts, fmt.Sprintf("adjust %+d", it.PriorityAdjust))
	}
	if it.Overflowed {
		boost := 0
		if q := cfg.Queues[it.QueueID]; q != nil {
			boost = q.Settings.OverflowBoost
		}
		parts = append(parts, fmt.Sprintf("overflow %+d", boost))
	}
	return strings.Join(parts, " · ") + fmt.Sprintf(" (age %s)", ageWords(bd.AgeS))
}

func ageWords(s int64) string {
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min", s/60)
	default:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
}

// boardAction carries out a supervisor's action from the queue page through
// workitem.Service; a refusal is shown on the page, never as a server error.
func (h *handler) boardAction(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := h.pathID(w, r, "work item")
	if !ok {
		return
	}
	queueID, _ := strconv.ParseInt(r.PostForm.Get("queue"), 10, 64)
	fail := func(status int, msg string) {
		if queueID <= 0 {
			h.errorPage(w, r, status, "Action not carried out", sentence(msg)+" Go back to the board.")
			return
		}
		h.renderBoardQueue(w, r, v, status, queueID, boardQueueData{Error: sentence(msg)})
	}
	req := workitem.Request{Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	action := r.PathValue("action")
	switch action {
	case "reassign":
		req.Action = workitem.Transfer
		agent, err := strconv.ParseInt(r.PostForm.Get("agent"), 10, 64)
		if err != nil || agent <= 0 {
			fail(http.StatusBadRequest, fmt.Sprintf("work item #%d: choose the agent to transfer it to", id))
			return
		}
		if u, err := h.st.UserByID(r.Context(), agent); err != nil || u.Disabled {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				h.serverError(w, r, "read the agent", err)
				return
			}
			fail(http.StatusBadRequest, fmt.Sprintf("work item #%d: the agent chosen does not exist or is disabled; choose another", id))
			return
		}
		req.AgentID = agent
	case "hold":
		req.Action = workitem.Hold
	case "cancel":
		req.Action = workitem.Cancel
	case "restart":
		req.Action = workitem.Restart
	default:
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such action on the board. Go back to the board.")
		return
	}
	if h.work == nil {
		fail(http.StatusServiceUnavailable, "routing is not running on this server, so work items cannot be changed here")
		return
	}
	item, err := h.work.Do(r.Context(), v.User, id, req)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		fail(http.StatusNotFound, fmt.Sprintf("work item #%d no longer exists", id))
		return
	case errors.Is(err, workitem.ErrNotAllowed), errors.Is(err, workitem.ErrStateChanged):
		fail(http.StatusConflict, fmt.Sprintf("work item #%d: %v", id, err))
		return
	default:
		h.logger.ErrorContext(r.Context(), "board action failed", slog.String("action", action), slog.Int64("item", id), slog.Any("error", err))
		fail(http.StatusConflict, fmt.Sprintf("work item #%d could not be changed (%v); reload the page and try again", id, err))
		return
	}
	if queueID <= 0 {
		queueID = item.QueueID
	}
	http.Redirect(w, r, fmt.Sprintf("/board/queues/%d?done=%s&item=%d", queueID, action, id), http.StatusSeeOther)
}
