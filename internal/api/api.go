package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// Replier sends an agent's reply to a work item (internal/outbound implements it): it
// composes the reply to the work item's latest inbound message and records the message,
// the outbox row and the state "replied" in one transaction. FromChoices lists the
// addresses the reply may be sent from, the default one marked.
type Replier interface {
	Reply(ctx context.Context, actor store.User, workItemID int64, req outbound.ReplyRequest) (store.OutboxItem, error)
	FromChoices(ctx context.Context, workItemID int64) ([]outbound.FromChoice, error)
}

// Options configures the API handler.
type Options struct {
	Store   store.Store
	Auth    *auth.Service
	Replier Replier
	// Mailboxes applies the mailbox rules for the mailbox, queue and From address
	// endpoints; without it those that change something answer 503.
	Mailboxes *mailbox.Service
	// Engine and WorkItems run routing and the work item lifecycle; without them those
	// endpoints answer 503.
	Engine    *routing.Engine
	WorkItems *workitem.Service
	Logger    *slog.Logger
	// OnAgentChange, when set, is called after an agent's profile or status changed (the
	// routing engine offers work at once); nil is fine.
	OnAgentChange func(ctx context.Context, userID int64)
	// SecureCookies marks every request as HTTPS (auth.SecureTransport): the session cookie
	// is Secure and every answer carries Strict-Transport-Security. Set it when the public
	// URL is https or TLS ends at a proxy in front of postroom.
	SecureCookies bool
	// SSO is staff single sign-on: its settings (GET/PUT /api/v1/sso) and the rule that
	// refuses passwords when they are switched off; nil: not available.
	SSO *sso.Service
	// LeaseTime is the cluster's lease time (internal/cluster; 0: its default): a node
	// silent for longer is shown dead by GET /api/v1/nodes.
	LeaseTime time.Duration
}

type server struct {
	st        store.Store
	auth      *auth.Service
	replier   Replier
	mailboxes *mailbox.Service
	engine    *routing.Engine
	work      *workitem.Service
	views     *workitem.Views
	logger    *slog.Logger
	// users applies the user rules; onAgentChange is Options.OnAgentChange.
	users         *auth.Users
	onAgentChange func(ctx context.Context, userID int64)
	sso           *sso.Service
	leaseTime     time.Duration
}

// authedHandler is a handler that runs after authentication and the role check.
type authedHandler func(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session)

// route is one endpoint: a ServeMux pattern and either an open handler (no sign-in) or a
// handler that needs at least the role need.
type route struct {
	pattern string
	open    http.HandlerFunc
	need    string
	h       authedHandler
}

// routes lists every endpoint. Reads of the mailbox set-up are for supervisors and admins;
// every change to it is for admins.
func (s *server) routes() []route {
	agent := func(p string, h authedHandler) route { return route{pattern: p, need: store.RoleAgent, h: h} }
	supervisor := func(p string, h authedHandler) route { return route{pattern: p, need: store.RoleSupervisor, h: h} }
	admin := func(p string, h authedHandler) route { return route{pattern: p, need: store.RoleAdmin, h: h} }
	return []route{
		{pattern: "GET /api/v1/openapi.json", open: serveOpenAPI},
		{pattern: "POST /api/v1/session", open: s.login},
		agent("DELETE /api/v1/session", s.logout),
		agent("GET /api/v1/me", s.me),
		agent("GET /api/v1/workitems", s.listWorkItems),
		agent("GET /api/v1/workitems/{id}", s.getWorkItem),
		agent("GET /api/v1/views", s.listViews),
		agent("POST /api/v1/views", s.createView),
		agent("DELETE /api/v1/views/{id}", s.deleteView),
		agent("POST /api/v1/workitems/{id}/reply", s.reply),
		agent("POST /api/v1/workitems/{id}/forward", s.forward),
		agent("POST /api/v1/conversations", s.createConversation),
		agent("GET /api/v1/messages/{id}/raw", s.raw),
		agent("POST /api/v1/me/next", s.withRouting(s.next)),
		agent("GET /api/v1/me/work", s.myWork),
		agent("POST /api/v1/workitems/{id}/accept", s.withRouting(s.act(workitem.Accept))),
		agent("POST /api/v1/workitems/{id}/decline", s.withRouting(s.act(workitem.Decline))),
		agent("POST /api/v1/workitems/{id}/pend", s.withRouting(s.act(workitem.Pend))),
		agent("POST /api/v1/workitems/{id}/hold", s.withRouting(s.act(workitem.Hold))),
		agent("POST /api/v1/workitems/{id}/resume", s.withRouting(s.act(workitem.Resume))),
		agent("POST /api/v1/workitems/{id}/close", s.withRouting(s.act(workitem.Close))),
		agent("POST /api/v1/workitems/{id}/done", s.withRouting(s.act(workitem.Close))),
		agent("POST /api/v1/workitems/{id}/reopen", s.withRouting(s.act(workitem.Reopen))),
		agent("POST /api/v1/workitems/{id}/notes", s.addNote),
		agent("GET /api/v1/me/mentions", s.myMentions),
		agent("POST /api/v1/workitems/{id}/release", s.withRouting(s.act(workitem.Release))),
		agent("POST /api/v1/workitems/{id}/transfer", s.withRouting(s.act(workitem.Transfer))),
		supervisor("POST /api/v1/workitems/{id}/cancel", s.withRouting(s.act(workitem.Cancel))),
		supervisor("POST /api/v1/workitems/{id}/restart", s.withRouting(s.act(workitem.Restart))),
		supervisor("GET /api/v1/workitems/{id}/routing", s.routingTrace),
		supervisor("GET /api/v1/board", s.board),
		supervisor("GET /api/v1/nodes", s.nodes),
		supervisor("GET /api/v1/board/hourly", s.boardHourly),
		supervisor("GET /api/v1/board/history.csv", s.boardHistory),
		supervisor("GET /api/v1/calendars", s.listRoutingObjects),
		admin("POST /api/v1/calendars", s.saveRoutingObject(true)),
		admin("PUT /api/v1/calendars/{id}", s.saveRoutingObject(false)),
		admin("DELETE /api/v1/calendars/{id}", s.deleteRoutingObject),
		supervisor("GET /api/v1/schemas", s.listRoutingObjects),
		admin("POST /api/v1/schemas", s.saveRoutingObject(true)),
		admin("PUT /api/v1/schemas/{id}", s.saveRoutingObject(false)),
		admin("DELETE /api/v1/schemas/{id}", s.deleteRoutingObject),
		supervisor("GET /api/v1/sla-policies", s.listRoutingObjects),
		admin("POST /api/v1/sla-policies", s.saveRoutingObject(true)),
		admin("PUT /api/v1/sla-policies/{id}", s.saveRoutingObject(false)),
		admin("DELETE /api/v1/sla-policies/{id}", s.deleteRoutingObject),
		admin("GET /api/v1/sso", s.getSSO),
		admin("PUT /api/v1/sso", s.putSSO),
		supervisor("GET /api/v1/rules", s.listRoutingObjects),
		admin("POST /api/v1/rules", s.saveRoutingObject(true)),
		supervisor("POST /api/v1/rules/test", s.testRules),
		admin("PUT /api/v1/rules/{id}", s.saveRoutingObject(false)),
		admin("DELETE /api/v1/rules/{id}", s.deleteRoutingObject),
		admin("PUT /api/v1/queues/{id}", s.queueSettings),
		agent("GET /api/v1/attachments/{id}", s.attachment),

		supervisor("GET /api/v1/mailboxes", s.listMailboxes),
		admin("POST /api/v1/mailboxes", s.withMailboxes(s.createMailbox)),
		admin("POST /api/v1/mailboxes/test", s.withMailboxes(s.testUnsaved)),
		admin("POST /api/v1/mailboxes/migrate", s.withMailboxes(s.migrateMailboxes)),
		admin("POST /api/v1/mailboxes/enable-all", s.withMailboxes(s.setAllEnabled(true))),
		admin("POST /api/v1/mailboxes/disable-all", s.withMailboxes(s.setAllEnabled(false))),
		supervisor("GET /api/v1/mailboxes/{id}", s.getMailbox),
		admin("PUT /api/v1/mailboxes/{id}", s.withMailboxID("mailbox", s.updateMailbox)),
		admin("DELETE /api/v1/mailboxes/{id}", s.withMailboxID("mailbox", s.deleteMailbox)),
		admin("POST /api/v1/mailboxes/{id}/enable", s.withMailboxID("mailbox", s.setEnabled(true))),
		admin("POST /api/v1/mailboxes/{id}/disable", s.withMailboxID("mailbox", s.setEnabled(false))),
		admin("POST /api/v1/mailboxes/{id}/copy", s.withMailboxID("mailbox", s.copyMailbox)),
		admin("POST /api/v1/mailboxes/{id}/test", s.withMailboxID("mailbox", s.testMailbox)),
		admin("PUT /api/v1/mailboxes/{id}/queue", s.withMailboxID("mailbox", s.assignQueue)),
		supervisor("GET /api/v1/mailboxes/{id}/from-addresses", s.listFromAddresses),
		admin("POST /api/v1/mailboxes/{id}/from-addresses", s.withMailboxID("mailbox", s.addFromAddress)),
		admin("DELETE /api/v1/from-addresses/{id}", s.withMailboxID("From address", s.deleteFromAddress)),
		supervisor("GET /api/v1/queues", s.listQueues),
		admin("POST /api/v1/queues", s.withMailboxes(s.createQueue)),
		admin("POST /api/v1/queues/{id}/enable", s.withMailboxID("queue", s.setQueueEnabled(true))),
		admin("POST /api/v1/queues/{id}/disable", s.withMailboxID("queue", s.setQueueEnabled(false))),
		supervisor("GET /api/v1/queues/{id}/auto-replies", s.getQueueAutoReplies),
		admin("PUT /api/v1/queues/{id}/auto-replies", s.putQueueAutoReplies),
		supervisor("GET /api/v1/templates/automatic", s.listAutoTemplates),
		supervisor("GET /api/v1/templates/automatic/{name}", s.getAutoTemplate),
		admin("PUT /api/v1/templates/automatic/{name}", s.putAutoTemplate),
		supervisor("GET /api/v1/auto-message-limits", s.getAutoLimits),
		admin("PUT /api/v1/auto-message-limits", s.putAutoLimits),
		agent("GET /api/v1/templates/responses", s.listResponses),
		supervisor("POST /api/v1/templates/responses", s.saveResponse(true)),
		agent("GET /api/v1/templates/responses/{id}", s.getResponse),
		supervisor("PUT /api/v1/templates/responses/{id}", s.saveResponse(false)),
		supervisor("DELETE /api/v1/templates/responses/{id}", s.deleteResponse),
		agent("GET /api/v1/signatures", s.listSignatures),
		supervisor("PUT /api/v1/signatures", s.putSignature),
		supervisor("DELETE /api/v1/signatures/{id}", s.deleteSignature),
		agent("GET /api/v1/workitems/{id}/responses", s.offeredResponses),
		agent("GET /api/v1/workitems/{id}/draft", s.getDraft),
		agent("PUT /api/v1/workitems/{id}/draft", s.putDraft),
		agent("DELETE /api/v1/workitems/{id}/draft", s.deleteDraft),

		// Data protection (internal/privacy): the audit log and erasure.
		admin("GET /api/v1/audit", s.listAudit),
		admin("GET /api/v1/audit.csv", s.auditCSV),
		admin("POST /api/v1/erasure", s.erasure),

		agent("GET /api/v1/tokens", s.listTokens),
		agent("POST /api/v1/tokens", s.createToken),
		agent("DELETE /api/v1/tokens/{id}", s.deleteToken),
		agent("GET /api/v1/me/sessions", s.listOwnSessions),
		agent("DELETE /api/v1/me/sessions/{id}", s.endOwnSession),
		admin("GET /api/v1/users/{id}/sessions", s.listUserSessions),
		admin("DELETE /api/v1/users/{id}/sessions", s.endUserSessions),
		admin("DELETE /api/v1/users/{id}/sessions/{session}", s.endUserSession),
		admin("GET /api/v1/settings/sessions", s.getSessionSettings),
		admin("PUT /api/v1/settings/sessions", s.putSessionSettings),

		supervisor("GET /api/v1/users", s.listUsers),
		admin("POST /api/v1/users", s.createUser),
		supervisor("GET /api/v1/users/{id}", s.getUser),
		admin("PUT /api/v1/users/{id}", s.updateUser),
		admin("DELETE /api/v1/users/{id}", s.deleteUser),
		admin("PUT /api/v1/users/{id}/password", s.setUserPassword),
		admin("GET /api/v1/users/{id}/signin", s.getUserSignIn),
		admin("POST /api/v1/users/{id}/unlock", s.unlockUser),
		admin("DELETE /api/v1/users/{id}/second-factor", s.removeSecondFactor),
		agent("PUT /api/v1/me/password", s.setOwnPassword),
		agent("PUT /api/v1/me/status", s.setOwnStatus),
		supervisor("GET /api/v1/teams", s.listTeams),
		admin("POST /api/v1/teams", s.createTeam),
		admin("DELETE /api/v1/teams/{id}", s.deleteTeam),
		supervisor("GET /api/v1/agents", s.listAgents),
		agent("GET /api/v1/agents/{id}", s.getAgent),
		supervisor("PUT /api/v1/agents/{id}", s.updateAgent),
	}
}

// New returns the handler for every path under /api/v1/. Mount it at "/api/v1/".
func New(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{st: opts.Store, auth: opts.Auth, replier: opts.Replier, mailboxes: opts.Mailboxes, logger: logger,
		engine: opts.Engine, work: opts.WorkItems, views: workitem.NewViews(opts.Store)}
	s.users, s.onAgentChange = auth.NewUsers(opts.Store, logger), opts.OnAgentChange
	s.sso = opts.SSO
	s.leaseTime = opts.LeaseTime

	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		if rt.open != nil {
			mux.HandleFunc(rt.pattern, rt.open)
		} else {
			mux.HandleFunc(rt.pattern, s.authed(rt.need, rt.h))
		}
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: see /api/v1/openapi.json for the list", r.Method, r.URL.Path))
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: call the API from the postroom pages or with an API token")
	}))
	var h http.Handler = auth.WithClient(cop.Handler(mux))
	if opts.SecureCookies {
		h = auth.SecureTransport(h)
	}
	return h
}

// authed authenticates the request, checks the role and an API token's scopes
// (auth.Authorize), and for cookie sessions requires a
// JSON content type on unsafe methods (see the package documentation).
func (s *server) authed(need string, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, sess, err := s.auth.Authorize(r, need)
		var forbidden *auth.ForbiddenError
		if err != nil {
			if errors.Is(err, auth.ErrDisabled) {
				writeError(w, http.StatusUnauthorized, "your user is disabled: ask an administrator to enable it")
				return
			}
			if errors.Is(err, auth.ErrTokenExpired) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="postroom", error="invalid_token", error_description="the token expired"`)
				writeError(w, http.StatusUnauthorized, err.Error()+" (POST /api/v1/tokens, or the API tokens page)")
				return
			}
			if errors.As(err, &forbidden) {
				writeError(w, http.StatusForbidden, forbidden.Reason)
				return
			}
			if errors.Is(err, auth.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="postroom"`)
				writeError(w, http.StatusUnauthorized, "not signed in: sign in with POST /api/v1/session or send an API token as Authorization: Bearer <token>")
				return
			}
			s.logger.ErrorContext(r.Context(), "authenticate", slog.Any("error", err))
			writeError(w, http.StatusInternalServerError, "could not check your sign-in: internal error, the server log has the details; try again later")
			return
		}
		if auth.ViaSession(sess) && unsafeMethod(r.Method) && !isJSON(r) && !emptyWithoutType(r) {
			writeError(w, http.StatusUnsupportedMediaType, "send this request with Content-Type: application/json (other content types are refused to stop cross-site request forgery)")
			return
		}
		h(w, r, user, sess)
	}
}

// emptyWithoutType reports a request with no body and no Content-Type (POST /me/next): no
// HTML form can send one (a form always has a content type), so it cannot be forged
// cross-site that way, and cross-origin fetches are refused by CrossOriginProtection.
func emptyWithoutType(r *http.Request) bool {
	return r.ContentLength == 0 && r.Header.Get("Content-Type") == ""
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
