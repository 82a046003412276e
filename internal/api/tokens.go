package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// maxTokenNameLen bounds an API token's name, a label for people, not a document.
const maxTokenNameLen = 100

// createToken creates an API token for the signed-in admin and returns its plaintext once.
func (s *server) createToken(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var body struct {
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	name := strings.TrimSpace(body.Name)
	switch {
	case name == "":
		writeFieldErrors(w, map[string]string{"name": "say what the token is for, e.g. \"nightly report\""})
		return
	case len(name) > maxTokenNameLen:
		writeFieldErrors(w, map[string]string{"name": fmt.Sprintf("use at most %d characters", maxTokenNameLen)})
		return
	}
	plain, t, err := s.auth.CreateAPIToken(r.Context(), user, name)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "create api token", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not create the token: internal error, the server log has the details; try again later")
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		ID        int64     `json:"id"`
		Name      string    `json:"name"`
		Token     string    `json:"token"`
		CreatedAt time.Time `json:"created_at"`
		Note      string    `json:"note"`
	}{t.ID, t.Name, plain, t.CreatedAt, "store this token now: it is shown only once"})
}
