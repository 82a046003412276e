package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// viewJSON is a saved view: a named work item list filter. URL lists its work items.
type viewJSON struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Filter    string    `json:"filter"`
	URL       string    `json:"url"`
	Shared    bool      `json:"shared"`
	OwnerID   int64     `json:"owner_id"`
	Owner     string    `json:"owner"`
	Mine      bool      `json:"mine"`
	CreatedAt time.Time `json:"created_at"`
}

func toViewJSON(v store.SavedView, user store.User) viewJSON {
	u := "/api/v1/workitems"
	if v.Filter != "" {
		u += "?" + v.Filter
	}
	return viewJSON{ID: v.ID, Name: v.Name, Filter: v.Filter, URL: u, Shared: v.Shared, OwnerID: v.UserID,
		Owner: v.OwnerName, Mine: v.UserID == user.ID, CreatedAt: v.CreatedAt}
}

// listViews lists the signed-in user's saved views and the shared ones, by name.
func (s *server) listViews(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	list, err := s.views.List(r.Context(), user)
	if err != nil {
		s.writeStoreError(w, r, "saved views", err)
		return
	}
	out := struct {
		Views []viewJSON `json:"views"`
	}{Views: make([]viewJSON, 0, len(list))}
	for _, v := range list {
		out.Views = append(out.Views, toViewJSON(v, user))
	}
	writeJSON(w, http.StatusOK, out)
}

// createView saves a list filter under a name for the signed-in user.
func (s *server) createView(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var body struct {
		Name   string `json:"name"`
		Filter string `json:"filter"`
		Shared bool   `json:"shared"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	v, err := s.views.Save(r.Context(), user, body.Name, body.Filter, body.Shared)
	var invalid *workitem.ValidationError
	switch {
	case errors.As(err, &invalid):
		writeFieldErrors(w, invalid.Fields)
		return
	case err != nil:
		s.logger.ErrorContext(r.Context(), "save view", slog.String("user", user.Username), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not save the view: internal error, the server log has the details; try again later")
		return
	}
	writeJSON(w, http.StatusCreated, toViewJSON(v, user))
}

// deleteView deletes a saved view: the user's own, or any for an admin.
func (s *server) deleteView(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "saved view")
	if !ok {
		return
	}
	err := s.views.Delete(r.Context(), user, id)
	switch {
	case errors.Is(err, workitem.ErrNotAllowed):
		writeError(w, http.StatusForbidden, err.Error())
		return
	case err != nil:
		s.writeStoreError(w, r, fmt.Sprintf("saved view %d", id), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
