package web

import (
	"net/http"

	"github.com/postroom/postroom/internal/store"
)

// The delete confirmation: deleting takes a second click on a page that names what goes
// (the mailbox and its password) and what stays (its messages and work items). An enabled
// mailbox is flagged here already; the delete itself refuses it (mailbox.ErrEnabled).

type deleteData struct {
	View      listView
	Mailboxes []store.Mailbox
	// Action is where the confirmation posts: one mailbox's delete, or the bulk action.
	Action string
	Bulk   bool
	// AnyEnabled is true when some listed mailbox is enabled.
	AnyEnabled bool
}

func (h *handler) mailboxDeleteConfirm(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok {
		return
	}
	h.renderDeleteConfirm(w, r, v, viewFrom(r).with(m.ID), []store.Mailbox{m})
}

// renderDeleteConfirm asks to confirm deleting mbs.
func (h *handler) renderDeleteConfirm(w http.ResponseWriter, r *http.Request, v viewer, lv listView, mbs []store.Mailbox) {
	d := deleteData{View: lv, Mailboxes: mbs, Bulk: len(mbs) > 1 || r.Method == http.MethodPost}
	if d.Bulk {
		d.Action = "/mailboxes/bulk"
	} else {
		d.Action = "/mailboxes/" + itoa(mbs[0].ID) + "/delete"
	}
	for _, m := range mbs {
		d.AnyEnabled = d.AnyEnabled || m.Enabled
	}
	title := "Delete mailbox " + mbs[0].Name
	if len(mbs) > 1 {
		title = "Delete mailboxes"
	}
	h.render(w, r, http.StatusOK, "mailboxdelete", h.data(v, title, "mailboxes", d))
}
