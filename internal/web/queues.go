package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// The Queues page: for now a queue is a name with a list of inbound mailboxes (routing
// comes later). Assigning a mailbox to an enabled queue enables it; disabling a queue
// disables its mailboxes. "Default" always exists.

type queueRow struct {
	store.Queue
	Mailboxes []store.Mailbox
	Routing   []string // summary of the routing settings (queuesettings.go)
}

type queuesData struct {
	Queues     []queueRow
	Unassigned []store.Mailbox
	Name       string
	Errors     map[string]string
	Notice     string
	Error      string
}

func (h *handler) queueList(w http.ResponseWriter, r *http.Request, v viewer) {
	d := queuesData{}
	switch r.URL.Query().Get("notice") {
	case "created":
		d.Notice = "Queue created. Assign mailboxes to it from the Mailboxes page."
	case "enabled":
		d.Notice = "Queue enabled. Assign or enable its mailboxes to start ingesting."
	case "disabled":
		d.Notice = "Queue disabled, and its mailboxes with it."
	}
	h.renderQueues(w, r, v, http.StatusOK, d)
}

func (h *handler) queueCreate(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.needService(w, r) {
		return
	}
	d := queuesData{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	_, err := h.mailboxes.CreateQueue(r.Context(), v.User.Username, d.Name)
	var ve *mailbox.ValidationError
	switch {
	case err == nil:
		http.Redirect(w, r, "/queues?notice=created", http.StatusSeeOther)
	case errors.As(err, &ve):
		d.Errors = ve.Fields
		if d.Errors["name"] == "" { // the queue form has one field
			d.Error = validationSummary(ve)
		}
		h.renderQueues(w, r, v, http.StatusBadRequest, d)
	case errors.Is(err, store.ErrConflict):
		d.Errors = map[string]string{"name": "a queue with this name exists"}
		h.renderQueues(w, r, v, http.StatusConflict, d)
	default:
		h.serverError(w, r, "create the queue", err)
	}
}

func (h *handler) queueSetEnabled(enabled bool) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		if !h.needService(w, r) {
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			h.errorPage(w, r, http.StatusNotFound, "Queue not found", "There is no queue with this id. Go back to the Queues page.")
			return
		}
		err = h.mailboxes.SetQueueEnabled(r.Context(), v.User.Username, id, enabled)
		if store.IsNotFound(err) {
			h.errorPage(w, r, http.StatusNotFound, "Queue not found", "There is no queue with this id. Go back to the Queues page.")
			return
		}
		if err != nil {
			if p, ok := actionProblem(err); ok {
				h.renderQueues(w, r, v, p.status, queuesData{Error: p.msg})
				return
			}
			h.serverError(w, r, "change the queue", err)
			return
		}
		notice := "disabled"
		if enabled {
			notice = "enabled"
		}
		http.Redirect(w, r, "/queues?notice="+notice, http.StatusSeeOther)
	}
}

func (h *handler) renderQueues(w http.ResponseWriter, r *http.Request, v viewer, status int, d queuesData) {
	ctx := r.Context()
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	mbs, err := h.st.ListMailboxes(ctx)
	if err != nil {
		h.serverError(w, r, "list the mailboxes", err)
		return
	}
	byQueue := map[int64][]store.Mailbox{}
	for _, m := range mbs {
		if m.Direction != store.Inbound {
			continue
		}
		if m.QueueID == 0 {
			d.Unassigned = append(d.Unassigned, m)
			continue
		}
		byQueue[m.QueueID] = append(byQueue[m.QueueID], m)
	}
	names, err := h.loadNames(ctx)
	if err != nil {
		h.serverError(w, r, "read the routing settings", err)
		return
	}
	for _, q := range queues {
		d.Queues = append(d.Queues, queueRow{Queue: q, Mailboxes: byQueue[q.ID], Routing: queueSummary(q, names)})
	}
	h.render(w, r, status, "queues", h.data(v, "Queues", "queues", d))
}
