package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxFormBytes bounds a form body: the largest form is a reply, and 1 MiB of typed text
// is far beyond any real reply.
const maxFormBytes = 1 << 20

// maxUploadBytes bounds a form with files (a reply's attachments): the largest outbound
// Max size (20 MB) with room for the form's encoding. Files above uploadMemory go to
// temporary files while the request is handled, not to memory.
const (
	maxUploadBytes = 24 << 20
	uploadMemory   = 4 << 20
)

// parseForm reads a POST form: url-encoded (at most maxFormBytes) or, for a form with
// files, multipart (at most maxUploadBytes).
func parseForm(w http.ResponseWriter, r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
		return r.ParseMultipartForm(uploadMemory)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm()
}

// contentSecurityPolicy is sent with every page. Pages run no script unless they declare
// one of this origin (pageData.Scripts); styles and images come from this origin only
// (plus data: images). Sandboxed srcdoc frames
// inherit this policy, so email HTML is held to it too; a work item page adds the hash of
// each email frame's own stylesheet (the email's vetted style attributes turned into
// classes, emailFrame) to style-src, and no other inline style.
const contentSecurityPolicy = "default-src 'self'; script-src 'none'; object-src 'none'; " +
	"img-src 'self' data:; style-src 'self'; frame-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// Replier sends an agent's reply to a work item and lists the addresses it may be sent
// from (internal/outbound implements it).
type Replier interface {
	FromChoices(ctx context.Context, workItemID int64) ([]outbound.FromChoice, error)
	Reply(ctx context.Context, actor store.User, workItemID int64, req outbound.ReplyRequest) (store.OutboxItem, error)
}

// Options configures the pages.
type Options struct {
	Store   store.Store
	Auth    *auth.Service
	Replier Replier
	// Mailboxes administers mailboxes, queues and From addresses; without it the
	// administration pages say that it is not configured.
	Mailboxes *mailbox.Service
	// SignIn redeems the codes of delegated sign-ins ("Sign in with Microsoft"); without
	// it the pages say that delegated sign-in is not available on this server.
	SignIn *credential.SignIn
	// PublicURL is the address browsers reach postroom at (POSTROOM_PUBLIC_URL), e.g.
	// https://postroom.example.org; the sign-in's redirect URI is PublicURL +
	// /oauth/callback. Empty: the scheme and host of the request that starts the sign-in.
	PublicURL string
	// Engine assigns work to agents (offers, "Get next", statuses) and WorkItems carries
	// out the lifecycle actions; without them the agent's pages say that routing is not
	// running on this server, and the board shows no priorities, its actions say so too
	// and it refreshes on its timer only.
	Engine         *routing.Engine
	WorkItems      *workitem.Service
	Logger         *slog.Logger
	ProductVersion string
	// OnAgentChange, when set, is called after an agent's profile or status changed (the
	// routing engine offers work at once); nil is fine.
	OnAgentChange func(ctx context.Context, userID int64)
	// SecureCookies marks every request as HTTPS (auth.SecureTransport: a Secure session
	// cookie and Strict-Transport-Security on every answer), for TLS that ends at a proxy in
	// front of postroom. An https PublicURL does the same without it.
	SecureCookies bool
	// Demo is set by `postroom demo`: its Microsoft 365 stand-in, shown to administrators.
	Demo *DemoMicrosoft
	// SSO is staff single sign-on (internal/sso); nil: the login page has no single
	// sign-on button and /settings/sso says it is not available.
	SSO *sso.Service
	// LeaseTime is the cluster's lease time (internal/cluster; 0: its default): the Nodes
	// page shows a node silent for longer as dead.
	LeaseTime time.Duration
}

type handler struct {
	// routes is the route table (routes.go), kept for the authorization matrix test.
	routes    *pageMux
	st        store.Store
	auth      *auth.Service
	replier   Replier
	mailboxes *mailbox.Service
	signIn    *credential.SignIn
	publicURL string
	engine    *routing.Engine
	work      *workitem.Service
	logger    *slog.Logger
	version   string
	leaseTime time.Duration // Options.LeaseTime
	pages     *zonePages
	signer    *attachmentSigner
	now       func() time.Time
	// users applies the user rules (people.go); onAgentChange is Options.OnAgentChange.
	users         *auth.Users
	onAgentChange func(ctx context.Context, userID int64)
	board         *boardLive
	// flash keeps the outcome of a POST for the page it redirects to (flash.go).
	flash *flashes
	demo  *DemoMicrosoft
	// presence is who has which work item open (presence.go).
	presence *presence
	// sso is Options.SSO (nil-safe for Button and PasswordRefusal).
	sso *sso.Service
}

// pages are the templates under templates/, each rendered inside layout.html with the
// shared parts of parts.html.
var pageNames = []string{
	"login", "workitems", "workitem", "error",
	"mailboxes", "mailboxform", "mailboxdelete", "mailboxdisableall", "fromaddresses", "queues", "signin", "migrate",
	"users", "useredit", "userdelete", "agents", "agentedit", "account", "security", "sessionsettings", "secondfactor",
	"board", "boardqueue",
	"my", "compose",
	"calendars", "schemas", "slas", "rules", "rule", "queuesettings",
	"templates", "automatic",
	"audit", "privacy", // data protection (privacy.go)
	"nodes", // several nodes (nodes.go)
	"ssosettings",
}

// New returns the handler for the pages. Mount it at "/" (the API lives under /api/v1/,
// served by internal/api).
func New(opts Options) (http.Handler, error) {
	_, hh, err := build(opts)
	return hh, err
}

// build makes the handler and its route table (the authorization matrix test reads it).
func build(opts Options) (*handler, http.Handler, error) {
	if opts.Store == nil || opts.Auth == nil {
		return nil, nil, errors.New("web: Store and Auth are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		st: opts.Store, auth: opts.Auth, replier: opts.Replier, mailboxes: opts.Mailboxes, logger: logger,
		version: opts.ProductVersion,
		signer:  &attachmentSigner{st: opts.Store},
		signIn:  opts.SignIn,
		now:     time.Now,
		users:   auth.NewUsers(opts.Store, logger), onAgentChange: opts.OnAgentChange,
		engine: opts.Engine, work: opts.WorkItems, board: &boardLive{},
		flash: newFlashes(time.Now), demo: opts.Demo,
		presence:  newPresence(time.Now),
		sso:       opts.SSO,
		leaseTime: opts.LeaseTime,
	}
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, nil, fmt.Errorf("web: public URL %q: give the scheme and host browsers use, like https://postroom.example.org", opts.PublicURL)
		}
		h.publicURL = strings.TrimRight(u.String(), "/")
	}
	h.pages = &zonePages{parse: parsePages, byZone: map[string]map[string]*template.Template{}}
	if _, err := h.pages.get(""); err != nil { // template errors show at start
		return nil, nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, nil, fmt.Errorf("web: static files: %w", err)
	}

	mux := newPageMux(h)
	h.routes = mux
	mux.open("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	// Browsers ask for /favicon.ico whatever the page links (downloads, the API): the icon.
	mux.open("GET /favicon.ico", cacheStatic(serveFile(static, "favicon.svg", "image/svg+xml")))
	mux.page("GET /{$}", store.RoleAgent, h.landing)
	mux.open("GET /login", http.HandlerFunc(h.loginPage))
	mux.open("POST /login", http.HandlerFunc(h.loginSubmit))
	mux.page("POST /logout", store.RoleAgent, h.logout)
	mux.page("GET /workitems", store.RoleAgent, h.workItems)
	h.viewRoutes(mux)
	mux.page("GET /workitems/{id}", store.RoleAgent, h.workItem)
	mux.page("POST /workitems/{id}/reply", store.RoleAgent, h.reply)
	mux.page("POST /workitems/{id}/notes", store.RoleAgent, h.addNote)
	mux.page("POST /workitems/{id}/compose", store.RoleAgent, h.composeAction)
	mux.page("GET /messages/{id}/raw", store.RoleAgent, h.raw)
	mux.open("GET /attachments/{id}", http.HandlerFunc(h.attachment))
	h.mailboxRoutes(mux)
	h.agentRoutes(mux)
	h.migrateRoutes(mux)
	h.signInRoutes(mux)
	h.peopleRoutes(mux)
	h.securityRoutes(mux)
	h.boardRoutes(mux)
	h.workspaceRoutes(mux)
	h.routingRoutes(mux)
	h.composeRoutes(mux)
	h.templateRoutes(mux)
	h.nodeRoutes(mux)    // several nodes: who reads which mailbox
	h.privacyRoutes(mux) // data protection: audit log, erasure
	h.ssoRoutes(mux)
	mux.open("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address. Go back to the work items.")
	}))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site. Open postroom directly and try again.")
	}))
	var handler http.Handler = auth.WithClient(securityHeaders(cop.Handler(mux.mux)))
	if opts.SecureCookies || strings.HasPrefix(h.publicURL, "https://") {
		handler = auth.SecureTransport(handler)
	}
	return h, handler, nil
}

// parsePages parses every page with its times shown in loc.
func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"age": formatAge, "size": formatSize,
		"ago": formatAgo, "seconds": formatSeconds, "security": securityLabel, "afterAction": afterActionLabel,
		"lower": strings.ToLower, "join": strings.Join, "authLabel": authLabel, "sentence": sentence,
		"duration": formatDuration, "durationS": func(s int64) string { return formatDuration(time.Duration(s) * time.Second) },
		"inc":      func(i int) int { return i + 1 },
		"divHours": func(s int64) float64 { return float64(s) / 3600 },
		"autoForm": func(csrf string, admin bool, queueID int64, t autoTemplateView) autoFormView {
			return autoFormView{CSRF: csrf, Admin: admin, QueueID: queueID, T: t}
		},
		// topic is a work item's subject without the stacked Re:/AW:/Fwd: prefixes.
		"topic": message.Topic,
	}
	for name, f := range timeFuncs(loc) {
		funcs[name] = f
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts*.html", "templates/workspace.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// originRe is what policyWithFormTargets accepts as an origin: nothing that could end a
// CSP source expression or directive.
var originRe = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// policyWithFormTargets is contentSecurityPolicy with form-action widened to origins.
func policyWithFormTargets(origins []string) string {
	sources := []string{"'self'"}
	for _, o := range origins {
		if originRe.MatchString(o) && !slices.Contains(sources, o) {
			sources = append(sources, o)
		}
	}
	return strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action "+strings.Join(sources, " "), 1)
}

// styleHashRe is what a style hash source must look like to join the policy.
var styleHashRe = regexp.MustCompile(`^'sha256-[A-Za-z0-9+/]{43}='$`)

// styleHashSources joins the well-formed hash sources of hashes.
func styleHashSources(hashes []string) string {
	var ok []string
	for _, h := range hashes {
		if styleHashRe.MatchString(h) {
			ok = append(ok, h)
		}
	}
	return strings.Join(ok, " ")
}

// securityHeaders sets the headers every response carries (see the package doc).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// staticMaxAge is how long browsers may cache the stylesheet: short, because its URL
// carries no version.
const staticMaxAge = time.Hour

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(staticMaxAge.Seconds())))
		next.ServeHTTP(w, r)
	})
}

// serveFile serves one embedded file with its content type.
func serveFile(files fs.FS, name, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(b)
	})
}

// pageHandler is a page handler that runs for a signed-in user with a sufficient role.
type pageHandler func(w http.ResponseWriter, r *http.Request, v viewer)

// viewer is the signed-in user of a request.
type viewer struct {
	User    store.User
	Session store.Session
}

// signedIn requires a browser session (API tokens are for the API only) and role need.
// POST requests must also carry the session's CSRF token in the form field "csrf".
func (h *handler) signedIn(need string, next pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization") // pages use the session cookie only
		user, sess, err := h.auth.Authenticate(r)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				h.serverError(w, r, "check your sign-in", err)
				return
			}
			if auth.SessionToken(r) != "" {
				auth.ClearSessionCookie(w, r)
			}
			target := "/login"
			if r.Method == http.MethodGet {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if !auth.Allowed(user.Role, need) {
			h.errorPage(w, r, http.StatusForbidden, "Not allowed",
				fmt.Sprintf("This page is for the %s role and above; you are signed in as %s. Ask an administrator if you need it.", need, user.Role))
			return
		}
		v := viewer{User: user, Session: sess}
		if r.Method == http.MethodPost {
			if err := parseForm(w, r); err != nil {
				h.errorPage(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read (is it too large?). Go back and try again.")
				return
			}
			if r.MultipartForm != nil {
				defer func() { _ = r.MultipartForm.RemoveAll() }()
			}
			if !auth.CheckCSRF(sess, r.PostForm.Get("csrf")) {
				h.logger.WarnContext(r.Context(), "csrf token missing or wrong", slog.String("path", r.URL.Path), slog.String("user", user.Username))
				h.errorPage(w, r, http.StatusForbidden, "Form expired",
					"This form is missing its security token or it is out of date. Go back, reload the page and send it again.")
				return
			}
		}
		next(w, r, v)
	}
}

// pageData is what layout.html renders; Page holds the page's own data.
type pageData struct {
	Title        string
	SignedIn     bool
	User         store.User
	CSRF         string
	Version      string
	Nav          string
	CanMailboxes bool
	// CanAdmin shows the buttons and forms that change mailboxes and queues.
	CanAdmin bool
	// Wide lets the page use the whole window (the mailbox table with its detail pane).
	Wide bool
	// FormTargets are origins (scheme://host[:port]) besides this one that a form on the
	// page may lead to through a redirect: the identity provider of a "Sign in with
	// Microsoft" button. Browsers hold a form submission's redirects to the page's CSP
	// form-action.
	FormTargets []string
	// Scripts are scripts of this origin (/static/...) the page loads; the page's CSP
	// then allows script-src 'self' (live views; every other page allows no script).
	Scripts []string
	// StyleHashes are CSP hash sources ('sha256-…') of inline stylesheets the page may
	// apply: those of its email frames, which inherit the page's policy.
	StyleHashes []string
	// Demo is the demo's Microsoft 365 stand-in, for administrators (nil otherwise).
	Demo *DemoMicrosoft
	Page any
}

func (h *handler) data(v viewer, title, nav string, page any) pageData {
	d := pageData{
		Title: title, SignedIn: v.User.ID != 0, User: v.User, CSRF: v.Session.CSRFToken,
		Version: h.version, Nav: nav, CanMailboxes: auth.Allowed(v.User.Role, store.RoleSupervisor),
		CanAdmin: auth.Allowed(v.User.Role, store.RoleAdmin), Page: page,
	}
	if d.CanAdmin {
		d.Demo = h.demo
	}
	return d
}

// render writes a page. Templates are executed into memory first so that a template
// error gives a clean 500 instead of half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	pages, err := h.pages.get(d.User.TimeZone)
	if err != nil {
		h.logger.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "internal error rendering the page; the server log has the details", http.StatusInternalServerError)
		return
	}
	t := pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		h.logger.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "internal error rendering the page; the server log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(d.FormTargets) > 0 || len(d.Scripts) > 0 || len(d.StyleHashes) > 0 {
		policy := policyWithFormTargets(d.FormTargets)
		if len(d.Scripts) > 0 {
			policy = strings.Replace(policy, "script-src 'none'", "script-src 'self'", 1)
		}
		if hashes := styleHashSources(d.StyleHashes); hashes != "" {
			policy = strings.Replace(policy, "style-src 'self'", "style-src 'self' "+hashes, 1)
		}
		w.Header().Set("Content-Security-Policy", policy)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// errorPage renders an error for people: what happened and what to do.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	var v viewer
	if u, s, err := h.auth.Authenticate(r); err == nil && auth.ViaSession(s) {
		v = viewer{User: u, Session: s}
	}
	h.render(w, r, status, "error", h.data(v, heading, "", errorData{Status: status, Heading: heading, Message: msg}))
}

// serverError logs err and shows a 500 page without internals.
func (h *handler) serverError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	h.logger.ErrorContext(r.Context(), "page failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"postroom could not "+doing+" because of an internal error; the server log has the details. Try again in a moment.")
}

// storeError shows 404 for store.ErrNotFound, else a 500 page.
func (h *handler) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		h.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no %s with this id. Go back to the work items.", what))
		return
	}
	h.serverError(w, r, "read the "+what, err)
}

// pathID parses {id}; on failure it has written a 404 page.
func (h *handler) pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no %s with this id. Go back to the work items.", what))
		return 0, false
	}
	return id, true
}

// formatAge says how long ago t was, the way a queue shows it: "just now", "5 min", "3 h",
// "2 d".
func formatAge(t time.Time) string {
	return ageSince(t, time.Now())
}

func ageSince(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
	}
}

// sentence starts s with a capital letter and ends it with a full stop: advice is written
// to follow "...: " in an error message, and shown alone on a page.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func formatSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.0f KB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
}
