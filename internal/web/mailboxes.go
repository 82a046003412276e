package web

import (
	"net/http"

	"github.com/postroom/postroom/internal/store"
)

func (h *handler) mailboxes(w http.ResponseWriter, r *http.Request, v viewer) {
	mbs, err := h.st.ListMailboxes(r.Context())
	if err != nil {
		h.serverError(w, r, "list the mailboxes", err)
		return
	}
	for i := range mbs {
		if mbs[i].Status == "" {
			mbs[i].Status = store.StatusUnknown
		}
	}
	h.render(w, r, http.StatusOK, "mailboxes", h.data(v, "Mailboxes", "mailboxes", mbs))
}
