package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// actionDone are the notices after a successful action (?done=<action> on the item's
// page); like myNotes, the query carries a key, never text.
var actionDone = map[string]string{
	string(workitem.Accept):   "Accepted: the work item is yours.",
	string(workitem.Pend):     "Pending: waiting for the customer (the SLA clock is paused).",
	string(workitem.Hold):     "Put on hold.",
	string(workitem.Resume):   "Resumed.",
	string(workitem.Close):    "Closed.",
	string(workitem.Cancel):   "Cancelled.",
	string(workitem.Restart):  "Restarted: back in its queue.",
	string(workitem.Reopen):   "Reopened: back to work with its agent.",
	string(workitem.Release):  "Released: back in its queue.",
	string(workitem.Transfer): "Transferred.",
	"next":                    "This is your next work item: it is assigned to you.",
}

// workItemAction carries out one lifecycle action (the form field "action") through
// workitem.Service, as the API does. A refusal or a conflict is shown on the item's page
// with a 409, never as a server error.
func (h *handler) workItemAction(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := h.pathID(w, r, "work item")
	if !ok {
		return
	}
	if !h.routingRunning() {
		h.routingUnavailable(w, r)
		return
	}
	ctx := r.Context()
	form := r.PostForm
	req := workitem.Request{Action: workitem.Action(form.Get("action")), Reason: strings.TrimSpace(form.Get("reason")),
		Seen: workitem.State(form.Get("seen"))}
	if req.Action == workitem.Transfer {
		req.QueueID, _ = strconv.ParseInt(form.Get("queue_id"), 10, 64)
		req.AgentID, _ = strconv.ParseInt(form.Get("agent_id"), 10, 64)
		if req.QueueID <= 0 && req.AgentID <= 0 {
			h.actionRefused(w, r, v, id, http.StatusBadRequest, "Choose the queue (or agent) to transfer the work item to.")
			return
		}
	}
	h.touch(r, v)
	_, err := h.work.Do(ctx, v.User, id, req)
	switch {
	case errors.Is(err, workitem.ErrNotAllowed), errors.Is(err, workitem.ErrStateChanged):
		h.logger.InfoContext(ctx, "work item action refused", slog.Int64("work_item_id", id), slog.String("user", v.User.Username),
			slog.String("action", string(req.Action)), slog.Any("error", err))
		h.actionRefused(w, r, v, id, http.StatusConflict, sentence(err.Error()))
		return
	case store.IsNotFound(err):
		h.errorPage(w, r, http.StatusNotFound, "Not found", "There is no such work item, queue or agent. Go back to the work items.")
		return
	case err != nil:
		h.serverError(w, r, string(req.Action)+" the work item", err)
		return
	}
	h.logger.InfoContext(ctx, "work item action", slog.Int64("work_item_id", id), slog.String("user", v.User.Username),
		slog.String("action", string(req.Action)))
	if req.Action == workitem.Decline {
		// The item is no longer the agent's: back to their work.
		http.Redirect(w, r, "/my?note=declined", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/workitems/%d?done=%s", id, req.Action), http.StatusSeeOther)
}

// actionRefused shows the item's page, as it is now, with msg as the action's outcome.
func (h *handler) actionRefused(w http.ResponseWriter, r *http.Request, v viewer, id int64, status int, msg string) {
	wi, err := h.st.WorkItem(r.Context(), id)
	if err != nil {
		h.storeError(w, r, "work item", err)
		return
	}
	h.renderWorkItem(w, r, v, status, wi, workItemData{ActionError: msg})
}
