package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// Replier sends an agent's reply to a work item (internal/outbound implements it): it
// composes the reply to the work item's latest inbound message and records the message,
// the outbox row and the state "replied" in one transaction.
type Replier interface {
	Reply(ctx context.Context, actor store.User, workItemID int64, text string) (store.OutboxItem, error)
}

// Options configures the API handler.
type Options struct {
	Store   store.Store
	Auth    *auth.Service
	Replier Replier
	Logger  *slog.Logger
}

type server struct {
	st      store.Store
	auth    *auth.Service
	replier Replier
	logger  *slog.Logger
}

// authedHandler is a handler that runs after authentication and the role check.
type authedHandler func(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session)

// New returns the handler for every path under /api/v1/. Mount it at "/api/v1/".
func New(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{st: opts.Store, auth: opts.Auth, replier: opts.Replier, logger: logger}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	mux.HandleFunc("POST /api/v1/session", s.login)
	mux.HandleFunc("DELETE /api/v1/session", s.authed(store.RoleAgent, s.logout))
	mux.HandleFunc("GET /api/v1/me", s.authed(store.RoleAgent, s.me))
	mux.HandleFunc("GET /api/v1/workitems", s.authed(store.RoleAgent, s.listWorkItems))
	mux.HandleFunc("GET /api/v1/workitems/{id}", s.authed(store.RoleAgent, s.getWorkItem))
	mux.HandleFunc("POST /api/v1/workitems/{id}/reply", s.authed(store.RoleAgent, s.reply))
	mux.HandleFunc("GET /api/v1/messages/{id}/raw", s.authed(store.RoleAgent, s.raw))
	mux.HandleFunc("GET /api/v1/attachments/{id}", s.authed(store.RoleAgent, s.attachment))
	mux.HandleFunc("GET /api/v1/mailboxes", s.authed(store.RoleSupervisor, s.listMailboxes))
	mux.HandleFunc("POST /api/v1/tokens", s.authed(store.RoleAdmin, s.createToken))
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: see /api/v1/openapi.json for the list", r.Method, r.URL.Path))
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: call the API from the postroom pages or with an API token")
	}))
	return cop.Handler(mux)
}

// authed authenticates the request, checks the role, and for cookie sessions requires a
// JSON content type on unsafe methods (see the package documentation).
func (s *server) authed(need string, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, sess, err := s.auth.Authenticate(r)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="postroom"`)
				writeError(w, http.StatusUnauthorized, "not signed in: sign in with POST /api/v1/session or send an API token as Authorization: Bearer <token>")
				return
			}
			s.logger.ErrorContext(r.Context(), "authenticate", slog.Any("error", err))
			writeError(w, http.StatusInternalServerError, "could not check your sign-in: internal error, the server log has the details; try again later")
			return
		}
		if !auth.Allowed(user.Role, need) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("your role %q may not do this: it needs %q; ask an administrator", user.Role, need))
			return
		}
		if auth.ViaSession(sess) && unsafeMethod(r.Method) && !isJSON(r) {
			writeError(w, http.StatusUnsupportedMediaType, "send this request with Content-Type: application/json (other content types are refused to stop cross-site request forgery)")
			return
		}
		h(w, r, user, sess)
	}
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
