package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// The POST actions of the Mailboxes page. Each redirects back to the list (keeping the
// filter, the search and the selected row) with a notice, or shows the list again with an
// error banner that says what to do.

// problem is an action's refusal as the banner shows it; status is its HTTP status.
type problem struct {
	status int
	msg    string
}

// actionProblem words a refusal of internal/mailbox for the banner. ok is false for an
// internal error, which the caller shows as a 500 page.
func actionProblem(err error) (problem, bool) {
	var ve *mailbox.ValidationError
	switch {
	case errors.Is(err, mailbox.ErrEnabled):
		return problem{http.StatusConflict, "The mailbox is enabled: disable it first, then delete it."}, true
	case errors.Is(err, mailbox.ErrDefaultOutbound):
		return problem{http.StatusConflict, "This is the default outbound mailbox: make another outbound mailbox the default first (edit it and tick “Default outbound mailbox”), then delete this one."}, true
	case errors.Is(err, mailbox.ErrQueueDisabled):
		return problem{http.StatusConflict, "Its queue is disabled: enable the queue on the Queues page first, or assign the mailbox to another queue."}, true
	case errors.Is(err, mailbox.ErrOutboundQueue):
		return problem{http.StatusConflict, "Outbound mailboxes are not assigned to queues: enable or disable them directly."}, true
	case errors.Is(err, store.ErrNotFound):
		return problem{http.StatusNotFound, "The mailbox no longer exists: someone may have deleted it."}, true
	case errors.Is(err, store.ErrConflict):
		return problem{http.StatusConflict, "That name is taken: choose another one."}, true
	case errors.As(err, &ve):
		return problem{http.StatusBadRequest, validationSummary(ve)}, true
	}
	return problem{}, false
}

// validationSummary joins a ValidationError's messages in field order: "name: ...; port: ...".
func validationSummary(ve *mailbox.ValidationError) string {
	keys := make([]string, 0, len(ve.Fields))
	for k := range ve.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fieldLabel(k)+": "+ve.Fields[k])
	}
	return strings.Join(parts, "; ")
}

// refuse shows the list with the banner for err, or a 500 page for an internal error.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, v viewer, lv listView, doing string, err error) {
	p, ok := actionProblem(err)
	if !ok {
		h.serverError(w, r, doing, err)
		return
	}
	h.renderMailboxes(w, r, v, p.status, lv, mailboxesData{Error: p.msg})
}

func (h *handler) mailboxDelete(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	lv := viewFrom(r)
	if err := h.mailboxes.Delete(r.Context(), v.User.Username, m.ID); err != nil {
		h.refuse(w, r, v, lv.with(m.ID), "delete the mailbox", err)
		return
	}
	http.Redirect(w, r, lv.with(0).URL("deleted"), http.StatusSeeOther)
}

func (h *handler) mailboxEnable(w http.ResponseWriter, r *http.Request, v viewer) {
	h.mailboxSetEnabled(w, r, v, true)
}

func (h *handler) mailboxDisable(w http.ResponseWriter, r *http.Request, v viewer) {
	h.mailboxSetEnabled(w, r, v, false)
}

func (h *handler) mailboxSetEnabled(w http.ResponseWriter, r *http.Request, v viewer, enabled bool) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	lv := viewFrom(r).with(m.ID)
	var err error
	notice := "enabled"
	if enabled {
		err = h.mailboxes.Enable(r.Context(), v.User.Username, m.ID)
	} else {
		err, notice = h.mailboxes.Disable(r.Context(), v.User.Username, m.ID), "disabled"
	}
	if err != nil {
		h.refuse(w, r, v, lv, "change the mailbox", err)
		return
	}
	http.Redirect(w, r, lv.URL(notice), http.StatusSeeOther)
}

func (h *handler) mailboxCopy(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	lv := viewFrom(r).with(m.ID)
	name := strings.TrimSpace(r.PostForm.Get("name"))
	cp, err := h.mailboxes.Copy(r.Context(), v.User.Username, m.ID, name)
	if err != nil {
		var ve *mailbox.ValidationError
		msg := ""
		switch {
		case errors.As(err, &ve) && ve.Fields["name"] != "":
			msg = ve.Fields["name"]
		case errors.Is(err, store.ErrConflict):
			msg = "a mailbox with this name exists: choose another name"
		}
		if msg == "" {
			h.refuse(w, r, v, lv, "copy the mailbox", err)
			return
		}
		status := http.StatusBadRequest
		if errors.Is(err, store.ErrConflict) {
			status = http.StatusConflict
		}
		h.renderMailboxes(w, r, v, status, lv, mailboxesData{
			Error:  "The mailbox was not copied: " + msg + ".",
			Detail: &mailboxDetail{CopyName: name, CopyError: msg},
		})
		return
	}
	http.Redirect(w, r, lv.with(cp.ID).URL("copied"), http.StatusSeeOther)
}

func (h *handler) mailboxAssign(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	lv := viewFrom(r).with(m.ID)
	queueID, err := strconv.ParseInt(r.PostForm.Get("queue_id"), 10, 64)
	if err != nil || queueID < 0 {
		h.renderMailboxes(w, r, v, http.StatusBadRequest, lv, mailboxesData{Error: "Pick a queue from the list."})
		return
	}
	if err := h.mailboxes.Assign(r.Context(), v.User.Username, m.ID, queueID); err != nil {
		h.refuse(w, r, v, lv, "assign the mailbox", err)
		return
	}
	http.Redirect(w, r, lv.URL("assigned"), http.StatusSeeOther)
}

// mailboxSetAll enables or disables every mailbox of the direction the list shows.
func (h *handler) mailboxSetAll(enabled bool) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		if !h.needService(w, r) {
			return
		}
		lv := viewFrom(r)
		if !enabled && r.PostForm.Get(confirmField) != confirmYes {
			h.renderDisableAllConfirm(w, r, v, lv)
			return
		}
		if err := h.mailboxes.SetAllEnabled(r.Context(), v.User.Username, lv.Show, enabled); err != nil {
			h.refuse(w, r, v, lv, "change the mailboxes", err)
			return
		}
		notice := "all-disabled"
		if enabled {
			notice = "all-enabled"
		}
		http.Redirect(w, r, lv.URL(notice), http.StatusSeeOther)
	}
}

// "Disable all" stops every mailbox (of the direction shown) only when its confirmation
// page, which names them, sends confirmField=confirmYes: one click must not stop all mail.
const (
	confirmField = "confirm"
	confirmYes   = "yes"
)

type disableAllData struct {
	View listView
	// Mailboxes are the enabled mailboxes that would be disabled.
	Mailboxes []store.Mailbox
}

// renderDisableAllConfirm asks to confirm "Disable all".
func (h *handler) renderDisableAllConfirm(w http.ResponseWriter, r *http.Request, v viewer, lv listView) {
	boxes, err := h.st.ListMailboxes(r.Context())
	if err != nil {
		h.serverError(w, r, "read the mailboxes", err)
		return
	}
	d := disableAllData{View: lv}
	for _, m := range boxes {
		if m.Enabled && (lv.Show == "" || m.Direction == lv.Show) {
			d.Mailboxes = append(d.Mailboxes, m)
		}
	}
	title := "Disable all mailboxes"
	if lv.Show != "" {
		title = "Disable all " + lv.Show + " mailboxes"
	}
	h.render(w, r, http.StatusOK, "mailboxdisableall", h.data(v, title, "mailboxes", d))
}

// Bulk actions on the ticked rows.
const (
	bulkEnable        = "enable"
	bulkDisable       = "disable"
	bulkDelete        = "delete"         // shows the confirmation page
	bulkDeleteConfirm = "delete-confirm" // sent by the confirmation page
)

// mailboxBulk applies an action to the ticked mailboxes (form fields "id"). Every mailbox
// is tried; refusals are listed together in the banner.
func (h *handler) mailboxBulk(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.needService(w, r) {
		return
	}
	ctx := r.Context()
	lv := viewFrom(r)
	action := r.PostForm.Get("action")
	var mbs []store.Mailbox
	for _, s := range r.PostForm["id"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		m, err := h.st.Mailbox(ctx, id)
		if store.IsNotFound(err) {
			continue
		}
		if err != nil {
			h.serverError(w, r, "read the mailboxes", err)
			return
		}
		mbs = append(mbs, m)
	}
	if len(mbs) == 0 {
		h.renderMailboxes(w, r, v, http.StatusBadRequest, lv, mailboxesData{Error: "No mailbox is ticked: tick the boxes of the rows first, then choose the action."})
		return
	}
	if action == bulkDelete {
		h.renderDeleteConfirm(w, r, v, lv, mbs)
		return
	}
	var do func(id int64) error
	notice := ""
	switch action {
	case bulkEnable:
		do, notice = func(id int64) error { return h.mailboxes.Enable(ctx, v.User.Username, id) }, "all-enabled"
	case bulkDisable:
		do, notice = func(id int64) error { return h.mailboxes.Disable(ctx, v.User.Username, id) }, "all-disabled"
	case bulkDeleteConfirm:
		do, notice = func(id int64) error { return h.mailboxes.Delete(ctx, v.User.Username, id) }, "deleted"
	default:
		h.renderMailboxes(w, r, v, http.StatusBadRequest, lv, mailboxesData{Error: "Unknown action: use the buttons above the table."})
		return
	}
	var refusals []string
	status := http.StatusOK
	for _, m := range mbs {
		err := do(m.ID)
		if err == nil {
			continue
		}
		p, ok := actionProblem(err)
		if !ok {
			h.serverError(w, r, "change the mailboxes", err)
			return
		}
		refusals = append(refusals, fmt.Sprintf("%s: %s", m.Name, p.msg))
		status = max(status, p.status)
	}
	if len(refusals) > 0 {
		h.renderMailboxes(w, r, v, status, lv, mailboxesData{Error: strings.Join(refusals, " ")})
		return
	}
	if action == bulkDeleteConfirm {
		lv = lv.with(0)
	}
	http.Redirect(w, r, lv.URL(notice), http.StatusSeeOther)
}
