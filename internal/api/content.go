package api

import (
	"fmt"
	"net/http"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

func (s *server) raw(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "message")
	if !ok {
		return
	}
	if err := workitem.ServeRaw(r.Context(), w, s.st, id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("message %d", id), err)
	}
}

func (s *server) attachment(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "attachment")
	if !ok {
		return
	}
	if err := workitem.ServeAttachment(r.Context(), w, s.st, id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("attachment %d", id), err)
	}
}
