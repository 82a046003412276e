package api

import (
	"errors"
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
// The creation is recorded in the audit log as "token.create" on "token:<id>".
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
	// Like a revocation, the token is there whatever happens to the audit entry.
	if err := s.st.AddAudit(r.Context(), store.AuditEvent{
		Actor: user.Username, Action: "token.create", Object: fmt.Sprintf("token:%d", t.ID),
		New: fmt.Sprintf("name=%q user=%s", t.Name, user.Username),
	}); err != nil {
		s.logger.ErrorContext(r.Context(), "audit api token creation", slog.Int64("token_id", t.ID), slog.Any("error", err))
	}
	writeJSON(w, http.StatusCreated, struct {
		ID        int64     `json:"id"`
		Name      string    `json:"name"`
		Token     string    `json:"token"`
		CreatedAt time.Time `json:"created_at"`
		Note      string    `json:"note"`
	}{t.ID, t.Name, plain, t.CreatedAt, "store this token now: it is shown only once"})
}

// tokenJSON is an API token in a listing: what it is for, whose it is and since when. The
// token and its hash are never part of it.
type tokenJSON struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	User      string    `json:"user"`
	CreatedAt time.Time `json:"created_at"`
}

// listTokens lists every API token, newest first, so that an admin can see which exist and
// find the one to revoke.
func (s *server) listTokens(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.ListAPITokens(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the API tokens", err)
		return
	}
	out := make([]tokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, tokenJSON{ID: t.ID, Name: t.Name, User: t.Username, CreatedAt: t.CreatedAt})
	}
	writeJSON(w, http.StatusOK, struct {
		Tokens []tokenJSON `json:"tokens"`
	}{out})
}

// deleteToken revokes an API token: the next request that presents it gets 401. The
// revocation is recorded in the audit log as "token.delete" on "token:<id>".
func (s *server) deleteToken(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "API token")
	if !ok {
		return
	}
	ctx := r.Context()
	notFound := func() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("API token %d not found: it was revoked already or never existed; GET /api/v1/tokens lists the tokens", id))
	}
	// The audit entry names the token and its owner; the listing is the one read that has
	// them (there are few tokens).
	list, err := s.st.ListAPITokens(ctx)
	if err != nil {
		s.writeStoreError(w, r, "the API tokens", err)
		return
	}
	var tok store.APIToken
	for _, t := range list {
		if t.ID == id {
			tok = t
		}
	}
	if tok.ID == 0 {
		notFound()
		return
	}
	if err := s.st.DeleteAPIToken(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			notFound()
			return
		}
		s.logger.ErrorContext(ctx, "revoke api token", slog.Int64("token_id", id), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("could not revoke API token %d: internal error, the server log has the details; try again later", id))
		return
	}
	s.logger.InfoContext(ctx, "api token revoked", slog.String("user", user.Username), slog.String("token_name", tok.Name), slog.Int64("token_id", id))
	// The token is revoked whatever happens to the audit entry: answering 500 now would
	// tell the admin that a leaked token still works. A failed entry is logged instead.
	err = s.st.AddAudit(ctx, store.AuditEvent{
		Actor: user.Username, Action: "token.delete", Object: fmt.Sprintf("token:%d", id),
		Old: fmt.Sprintf("name=%q user=%s", tok.Name, tok.Username),
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "audit api token revocation", slog.Int64("token_id", id), slog.Any("error", err))
	}
	w.WriteHeader(http.StatusNoContent)
}
