package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// maxTokenNameLen bounds an API token's name, a label for people, not a document.
const maxTokenNameLen = 100

// tokenJSON is an API token as the API shows it: what it is for, whose it is, what it may
// do, since and until when, and when it was last used. The token and its hash are never
// part of it.
type tokenJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	User       string     `json:"user"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toTokenJSON(t store.APIToken) tokenJSON {
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return tokenJSON{ID: t.ID, Name: t.Name, User: t.Username, Scopes: scopes, CreatedAt: t.CreatedAt,
		ExpiresAt: optTime(t.ExpiresAt), LastUsedAt: optTime(t.LastUsedAt)}
}

// createToken creates an API token for the caller, within the role the caller acts with,
// and returns its plaintext once. The creation is recorded in the audit log as
// "token.create" on "token:<id>".
func (s *server) createToken(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var body struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expires_at"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	req := auth.TokenRequest{Name: body.Name, Scopes: body.Scopes}
	if len(strings.TrimSpace(body.Name)) > maxTokenNameLen {
		writeFieldErrors(w, map[string]string{"name": fmt.Sprintf("use at most %d characters", maxTokenNameLen)})
		return
	}
	if body.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, body.ExpiresAt)
		if err != nil {
			writeFieldErrors(w, map[string]string{"expires_at": "give a time in RFC 3339, e.g. 2027-01-31T18:00:00Z"})
			return
		}
		req.ExpiresAt = t
	}
	plain, t, err := s.auth.CreateToken(r.Context(), user, req)
	var input *auth.ValidationError
	var forbidden *auth.ForbiddenError
	switch {
	case errors.As(err, &input):
		writeFieldErrors(w, input.Fields)
		return
	case errors.As(err, &forbidden):
		writeError(w, http.StatusForbidden, forbidden.Reason)
		return
	case err != nil:
		s.logger.ErrorContext(r.Context(), "create api token", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not create the token: internal error, the server log has the details; try again later")
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		tokenJSON
		Token string `json:"token"`
		Note  string `json:"note"`
	}{toTokenJSON(t), plain, "store this token now: it is shown only once"})
}

// listTokens lists the caller's API tokens, newest first; an admin adds ?all=1 to list
// everyone's, to find the one to revoke.
func (s *server) listTokens(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var list []store.APIToken
	var err error
	switch all := r.URL.Query().Get("all"); {
	case all == "1" || all == "true":
		if !auth.Allowed(user.Role, store.RoleAdmin) {
			writeError(w, http.StatusForbidden, "only an admin lists everyone's tokens (?all=1): leave it out to list yours")
			return
		}
		list, err = s.st.ListAPITokens(r.Context())
	case all == "" || all == "0" || all == "false":
		list, err = s.st.ListAPITokensOf(r.Context(), user.ID)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("all=%q: use all=1 for everyone's tokens, or leave it out", all))
		return
	}
	if err != nil {
		s.writeStoreError(w, r, "the API tokens", err)
		return
	}
	out := make([]tokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, struct {
		Tokens []tokenJSON `json:"tokens"`
	}{out})
}

// deleteToken revokes an API token of the caller's (an admin: anyone's): the next request
// that presents it gets 401. Another user's token is "not found" to a non-admin. The
// revocation is recorded in the audit log as "token.delete" on "token:<id>".
func (s *server) deleteToken(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "API token")
	if !ok {
		return
	}
	ctx := r.Context()
	notFound := func() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("API token %d not found: it was revoked already or never existed; GET /api/v1/tokens lists your tokens", id))
	}
	tok, err := s.st.APIToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && tok.UserID != user.ID && !auth.Allowed(user.Role, store.RoleAdmin) {
		notFound()
		return
	}
	if err != nil {
		s.writeStoreError(w, r, "the API token", err)
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
