package web

import (
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

func (h *handler) raw(w http.ResponseWriter, r *http.Request, _ viewer) {
	id, ok := h.pathID(w, r, "message")
	if !ok {
		return
	}
	if err := workitem.ServeRaw(r.Context(), w, h.st, id); err != nil {
		h.storeError(w, r, "message", err)
	}
}

// attachment serves an attachment to a signed-in user, or to anyone with a valid signed
// URL (the inline images of the sandboxed email frame, which get no cookie; signed.go).
func (h *handler) attachment(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "attachment")
	if !ok {
		return
	}
	if r.URL.Query().Has("sig") {
		valid, err := h.signer.valid(r.Context(), r, id, time.Now())
		if err != nil {
			h.serverError(w, r, "check the attachment link", err)
			return
		}
		if valid {
			h.serveAttachment(w, r, id)
			return
		}
	}
	h.signedIn(store.RoleAgent, func(w http.ResponseWriter, r *http.Request, _ viewer) {
		h.serveAttachment(w, r, id)
	})(w, r)
}

func (h *handler) serveAttachment(w http.ResponseWriter, r *http.Request, id int64) {
	if err := workitem.ServeAttachment(r.Context(), w, h.st, id); err != nil {
		h.storeError(w, r, "attachment", err)
	}
}
