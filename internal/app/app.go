// Package app assembles the running product from its parts: the store (SQLite or
// PostgreSQL, migrated at start), the vault (with its wrong-key check), sign-in, the web
// pages and JSON API on one HTTP handler, the ingest loops of the inbound mailboxes and the
// outbox sender. `postroom serve` and `postroom demo` both run an App; the end-to-end tests
// run one against real Dovecot, a real SMTP peer and headless Chromium.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/api"
	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/ingest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
	"github.com/postroom/postroom/internal/wakeup"
	"github.com/postroom/postroom/internal/web"
	"github.com/postroom/postroom/internal/workitem"
)

// sqliteFile is the database file inside the data folder.
const sqliteFile = "postroom.db"

// DefaultShutdownTimeout bounds a graceful stop when Config.ShutdownTimeout is 0.
const DefaultShutdownTimeout = 20 * time.Second

// decisionBuckets are the upper bounds (seconds) of postroom_routing_decision_seconds.
func decisionBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
}

// requestGrace is how long an HTTP request open at the start of a graceful stop keeps its
// context (a stream of a live view ends then; a request is cut off at the latest by the
// shutdown bound).
const requestGrace = 2 * time.Second

// handBackReserve is the part of the shutdown bound kept for handing work back (outbox
// claims, offers, the shutdown hooks) after the loops and open requests were stopped.
const handBackReserve = 3 * time.Second

// Config is what an App needs to start.
type Config struct {
	// DataDir holds the SQLite database and the secret key file.
	DataDir string
	// DatabaseURL selects PostgreSQL ("postgres://..."); empty means SQLite in DataDir.
	DatabaseURL string
	// Getenv reads the environment (POSTROOM_SECRET_KEY); os.Getenv when nil.
	Getenv  func(string) string
	Logger  *slog.Logger
	Version string
	// RootCAs replaces the system roots for connections to mail servers (tests).
	RootCAs *x509.CertPool
	// HTTPClient, test-only, makes the HTTP requests to mail servers (EWS, autodiscover,
	// Microsoft Graph) of ingest, sending and connection tests; tests give one whose
	// DialContext sends a domain's host names to a loopback stand-in. Nil: default clients.
	HTTPClient *http.Client
	// IngestReload is how often the list of enabled mailboxes is re-read (0: default).
	IngestReload time.Duration
	// ReadTimeout is how long a mail server may stay silent mid-command before the
	// connection is replaced (0: 2 minutes; tests shorten it).
	ReadTimeout time.Duration
	// PublicURL is the URL at which others reach this postroom (POSTROOM_PUBLIC_URL), e.g.
	// https://postroom.example.org: Microsoft Graph sends change notifications to
	// PublicURL/graph/notify/<mailbox id>, and delegated sign-ins return to
	// PublicURL/oauth/callback. Empty: Graph mailboxes are polled.
	PublicURL string
	// SecureCookies says that browsers reach postroom over HTTPS though TLS ends at a proxy
	// in front of it (POSTROOM_SECURE_COOKIES): the session cookie is Secure and every
	// answer carries Strict-Transport-Security. An https PublicURL does the same.
	SecureCookies bool
	// MaxConnecting is how many mailboxes may be signing in to their servers at the same
	// time (POSTROOM_MAX_CONNECTING; 0: the ingest runner's default, 32).
	MaxConnecting int
	// NodeName, when set, is this node's name (POSTROOM_NODE_NAME) instead of the one kept
	// in the data folder (nodeName): two nodes on one host, or tests.
	NodeName string
	// LeaseTime is how long a node holds a mailbox's lease without renewing it
	// (POSTROOM_LEASE_SECONDS; 0: cluster.DefaultLeaseTime): another node takes over a
	// dead node's mailboxes after about that long (internal/cluster).
	LeaseTime time.Duration
	// ExpiryCheck is how often client secret expiry dates are checked (0: hourly).
	ExpiryCheck time.Duration
	// AfterCommit is passed to the ingest runner (fault injection in tests).
	AfterCommit func(mailboxID int64, sourceID string) error
	// Demo describes the demo's Microsoft 365 stand-in to the pages (postroom demo only).
	Demo *web.DemoMicrosoft
	// HTTP bounds the web server's connections: time-outs and a cap (zero fields: the
	// defaults of HTTPLimits).
	HTTP HTTPLimits
	// ShutdownTimeout bounds a graceful stop (POSTROOM_SHUTDOWN_TIMEOUT; 0:
	// DefaultShutdownTimeout): from the end of Run's context until Run returns, open
	// requests and the reply being sent may finish, then what is still in flight is cut off
	// and handed back.
	ShutdownTimeout time.Duration
	// Existing refuses (ErrNoDatabase) a data folder without a SQLite database instead of
	// creating one: for the administration commands, where a mistyped folder must not
	// become a new empty product. It changes nothing with PostgreSQL.
	Existing bool
	// NoIngest runs no ingest loops on this node: its mailboxes are read by other nodes
	// (tests of several nodes on one PostgreSQL database; Graph notifications it receives
	// still reach the node that reads the mailbox).
	NoIngest bool
}

// ErrNoDatabase means Config.Existing was set and the data folder holds no database.
var ErrNoDatabase = errors.New("no postroom database in the data folder")

// App is the assembled product.
type App struct {
	Store     store.Store
	Vault     *vault.Vault
	Passwords *credential.Passwords
	// Tokens keeps the OAuth 2.0 token sources of the mailboxes that sign in with OAuth.
	Tokens    *credential.Tokens
	Auth      *auth.Service
	Replies   *outbound.Service
	Mailboxes *mailbox.Service
	// Routing assigns work items to agents; WorkItems carries out the lifecycle actions.
	Routing   *routing.Engine
	WorkItems *workitem.Service
	// SSO is staff single sign-on (internal/sso), shared by the pages and the API.
	SSO *sso.Service
	// Metrics is served at GET /metrics to supervisors and admins (internal/metrics).
	Metrics *metrics.Registry
	// Wakeups carries "something changed" signals between the parts of this node and, on
	// PostgreSQL, between nodes (internal/wakeup): the outbox, routing, the live views and
	// Graph notifications for a mailbox read by another node.
	Wakeups *wakeup.Bus
	// Cluster is this node's membership and mailbox leases (internal/cluster); its
	// Ready tells whether the node holds or may take leases.
	Cluster *cluster.Cluster
	Handler http.Handler

	cfg Config
	log *slog.Logger
	// node is this node's name (nodeName), carried by its outbox claims.
	node string

	runner *ingest.Runner
	// routingMetrics publishes the board's figures to /metrics.
	routingMetrics *routingMetrics

	// health answers /healthz and /readyz (health.go).
	health health

	limitersMu sync.Mutex
	limiters   map[string]*graph.Limiter // by Graph host and mailbox address

	hooksMu  sync.Mutex
	onStop   []func(ctx context.Context)
	deadline stopDeadline
	// abandon makes the next stop one that stands for a crash (Abandon).
	abandon atomic.Bool
}

// Open opens (and migrates) the store, loads the secret key and checks that it matches the
// data, and builds the HTTP handler. It starts nothing in the background: see Run.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Existing && cfg.DatabaseURL == "" {
		path := filepath.Join(cfg.DataDir, sqliteFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNoDatabase, path)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	node := cfg.NodeName
	if node == "" {
		var err error
		if node, err = nodeName(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	st, err := OpenStore(ctx, cfg.DataDir, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate the database: %w", err)
	}
	key, err := vault.LoadKey(cfg.DataDir, cfg.Getenv, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	v, err := vault.New(key)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := v.Check(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	bus := wakeup.NewLocal()
	if cfg.DatabaseURL != "" {
		if bus, err = wakeup.NewPostgres(cfg.DatabaseURL, log); err != nil {
			st.Close()
			return nil, err
		}
	}
	a := &App{
		Store:     st,
		Vault:     v,
		Wakeups:   bus,
		Passwords: credential.NewPasswords(st, v),
		Auth:      auth.NewService(st, log),
		Replies:   outbound.NewServiceWith(st, log, bus),
		Metrics:   metrics.New(),
		cfg:       cfg,
		log:       log,
		node:      node,
	}
	if err := a.useSignInSettings(v, cfg.Getenv); err != nil {
		st.Close()
		return nil, err
	}
	a.Tokens = credential.NewTokens(a.Passwords.Secrets(), credential.TokensOptions{Logger: log})
	a.Mailboxes = mailbox.NewService(st, a.Passwords, log)
	a.Mailboxes.RootCAs = cfg.RootCAs
	a.Mailboxes.HTTPClient = cfg.HTTPClient
	a.Mailboxes.OnCredentialsChange = a.Tokens.Forget
	a.Mailboxes.Tokens = a.Tokens
	if _, err := st.EnsureDefaultQueue(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("create the Default queue: %w", err)
	}
	decisions := a.Metrics.Histogram("postroom_routing_decision_seconds",
		"Seconds the routing engine took to choose for a pull or a push offer, from the request until the choice, the wait for the engine's lock included (the commit not).",
		decisionBuckets())
	a.Routing = routing.NewEngine(routing.EngineOptions{Store: st, Logger: log,
		Wakeups:    bus,
		OnDecision: func(d time.Duration) { decisions.Observe(d.Seconds()) }})
	if err := a.Routing.Load(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("load routing: %w", err)
	}
	a.WorkItems = workitem.NewService(st, a.Routing)
	a.routingMetrics = newRoutingMetrics(st, a.Metrics, log)
	secure := cfg.SecureCookies || strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://")
	a.SSO, err = sso.New(sso.Options{Store: st, Vault: v, Auth: a.Auth, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	pages, err := web.New(web.Options{SecureCookies: secure, Store: st, Auth: a.Auth, Replier: a.Replies, Mailboxes: a.Mailboxes, Logger: log, ProductVersion: cfg.Version,
		SignIn: credential.NewSignIn(a.Passwords.Secrets(), credential.TokensOptions{Logger: log}), PublicURL: cfg.PublicURL,
		OnAgentChange: a.agentChanged, Engine: a.Routing, WorkItems: a.WorkItems, Demo: cfg.Demo, SSO: a.SSO, LeaseTime: cfg.LeaseTime})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("load the web pages: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{Store: st, Auth: a.Auth, Replier: a.Replies, Mailboxes: a.Mailboxes, Logger: log,
		Engine: a.Routing, WorkItems: a.WorkItems, OnAgentChange: a.agentChanged, SecureCookies: secure, SSO: a.SSO, LeaseTime: cfg.LeaseTime}))
	mux.Handle("/", pages)
	a.Cluster, err = cluster.New(cluster.Options{
		Store: st, Name: node, LeaseTime: cfg.LeaseTime, Logger: log, Metrics: a.Metrics,
		SingleNode: cfg.DatabaseURL == "",
		// Every round (each second by default): the ids alone, not every mailbox's row.
		Mailboxes: func(ctx context.Context) ([]int64, error) {
			return st.EnabledInboundIDs(ctx, ingest.WatchedProtocols())
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.runner = a.newRunner()
	// Microsoft Graph's change notifications: no session (Graph cannot sign in); each
	// subscription's own random clientState is checked instead.
	mux.HandleFunc("POST /graph/notify/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		a.runner.ServeNotification(w, r, id)
	})
	a.Metrics.GaugeFunc("postroom_outbox_queued", "Outgoing messages waiting in the outbox.", func(ctx context.Context) (float64, error) {
		n, err := st.CountOutbox(ctx, store.OutboxQueued)
		return float64(n), err
	})
	mux.Handle("GET /metrics", a.Metrics.Handler(func(r *http.Request) metrics.Access {
		u, _, err := a.Auth.Authenticate(r)
		switch {
		case err != nil:
			return metrics.Anonymous
		case !auth.Allowed(u.Role, store.RoleSupervisor):
			return metrics.Refused
		}
		return metrics.Allowed
	}, log))
	a.health.log, a.health.ready = log, a.storeReady
	mux.HandleFunc("GET /healthz", a.health.serveHealth)
	mux.HandleFunc("GET /readyz", a.health.serveReady)
	// Ready also means holding or being able to take mailbox leases; a node without ingest
	// takes none, and is ready without them.
	if !cfg.NoIngest {
		a.SetClusterReady(a.Cluster.Ready)
	}
	a.Handler = mux
	if secure {
		// HSTS on every answer, /metrics and /graph/notify too.
		a.Handler = auth.SecureTransport(mux)
	}
	return a, nil
}

// graphLimiter returns the one request limiter of the Microsoft Graph mailbox m (by Graph
// host and address): its reading, sending and subscription share Graph's 4 concurrent
// requests per mailbox.
// agentChanged tells routing that an agent's profile or status changed: offers to an agent
// who went away go back to the queue, and an available agent gets work at once.
func (a *App) agentChanged(ctx context.Context, userID int64) {
	if err := a.Routing.AgentChanged(ctx, userID); err != nil {
		a.log.WarnContext(ctx, "routing: agent change not applied at once; the next round will", slog.Int64("user_id", userID), slog.Any("error", err))
	}
}

func (a *App) graphLimiter(m store.Mailbox) *graph.Limiter {
	key := strings.ToLower(credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud) + " " + m.Address)
	a.limitersMu.Lock()
	defer a.limitersMu.Unlock()
	if a.limiters == nil {
		a.limiters = map[string]*graph.Limiter{}
	}
	l := a.limiters[key]
	if l == nil {
		l = graph.NewLimiter(0)
		a.limiters[key] = l
	}
	return l
}

// newRunner makes the ingest runner of the app (it does no I/O; Start runs it).
func (a *App) newRunner() *ingest.Runner {
	notify := ""
	if a.cfg.PublicURL != "" {
		notify = strings.TrimRight(a.cfg.PublicURL, "/") + "/graph/notify"
	}
	return ingest.NewRunner(ingest.Options{
		Store: a.Store, Passwords: a.Passwords, Logger: a.log, RootCAs: a.cfg.RootCAs, HTTPClient: a.cfg.HTTPClient,
		ReloadInterval: a.cfg.IngestReload, AfterCommit: a.cfg.AfterCommit, Metrics: a.Metrics,
		ReadTimeout: a.cfg.ReadTimeout, NotificationURL: notify, Wakeups: a.Wakeups, Leases: a.Cluster,
		Classify: routing.Classifier{Config: a.Routing.Config}.Classify, Stored: a.Routing.Wake, GraphLimiter: a.graphLimiter, MaxDials: a.cfg.MaxConnecting,
		AutoMessages: &automsg.Composer{Store: a.Store, Log: a.log, Hours: func(queueID int64, t time.Time) string {
			if cfg := a.Routing.Config(); cfg != nil {
				return cfg.Hours(queueID, t)
			}
			return automsg.HoursOpen
		}},
		Tokens: func(ctx context.Context, m store.Mailbox) (connector.TokenFunc, error) {
			return a.Tokens.For(ctx, m, credential.AudienceOf(m.Protocol))
		},
	})
}

// OpenStore opens PostgreSQL when databaseURL is set, else SQLite in dataDir. It does not
// migrate.
func OpenStore(ctx context.Context, dataDir, databaseURL string) (store.Store, error) {
	if databaseURL != "" {
		st, err := postgres.Open(ctx, databaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return st, nil
	}
	path := filepath.Join(dataDir, sqliteFile)
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return st, nil
}

// Run serves HTTP on ln and runs the ingest loops and the outbox sender until ctx is done,
// then stops gracefully within Config.ShutdownTimeout (see Start and Serve).
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	wait := a.Start(ctx)
	err := a.Serve(ctx, ln)
	wait()
	return err
}

// Abandon makes the next stop (the end of Start's context) behave as the process's death
// would, for tests that stand for a crash: what is in flight is cut off at once and nothing
// is handed back (outbox claims stay, offers stay, no OnStop hook runs, the heartbeat
// stays).
func (a *App) Abandon() { a.abandon.Store(true) }

// OnStop adds fn to what a graceful stop runs after the loops have stopped and before
// Start's wait returns (internal/cluster releases this node's leases there). ctx ends at
// the shutdown bound. Add hooks before Start.
func (a *App) OnStop(fn func(ctx context.Context)) {
	a.hooksMu.Lock()
	defer a.hooksMu.Unlock()
	a.onStop = append(a.onStop, fn)
}

func (a *App) shutdownTimeout() time.Duration {
	if a.cfg.ShutdownTimeout > 0 {
		return a.cfg.ShutdownTimeout
	}
	return DefaultShutdownTimeout
}

// stopDeadline is when a graceful stop must be over, set once when it begins.
type stopDeadline struct {
	once sync.Once
	at   time.Time
}

// stopBy returns the instant the graceful stop that begins now (or began) must be over.
func (a *App) stopBy() time.Time {
	a.deadline.once.Do(func() { a.deadline.at = time.Now().Add(a.shutdownTimeout()) })
	return a.deadline.at
}

// cutOff returns the instant in-flight work is cut off: the stop's end less the time kept
// for handing work back (at least half of the bound is left to the work).
func (a *App) cutOff() time.Time {
	return a.stopBy().Add(-min(handBackReserve, a.shutdownTimeout()/2))
}

// Start runs the ingest loops, the routing engine, the outbox sender and the housekeeping
// in the background. When ctx ends they stop taking work: /readyz answers 503, the ingest
// loops stop fetching (what was fetched and not committed stays at the source, and is
// fetched again at the next start), routing stops assigning, and the sender finishes the
// reply it is sending and claims no other. The returned function waits for them, cutting
// off what is still running at the shutdown bound (less a reserve), then hands back what
// was in flight: the outbox rows claimed and not sent are released, on SQLite (one node)
// every offer goes back to its queue, and the OnStop hooks run. It returns within
// Config.ShutdownTimeout of the end of ctx.
func (a *App) Start(ctx context.Context) (wait func()) {
	runner := a.runner
	// work ends at the cut-off: the sender's reply in flight runs on it.
	work, cutWork := context.WithCancel(context.WithoutCancel(ctx))
	var cutTimer *time.Timer
	var timerMu sync.Mutex
	stopBegins := context.AfterFunc(ctx, func() {
		a.health.stopping.Store(true)
		a.log.Info("stopping: no new work is taken; what is in flight finishes or is handed back",
			slog.Duration("bound", a.shutdownTimeout()))
		if a.abandon.Load() {
			cutWork()
			return
		}
		timerMu.Lock()
		cutTimer = time.AfterFunc(time.Until(a.cutOff()), cutWork)
		timerMu.Unlock()
	})
	sender := outbound.NewSender(outbound.SenderOptions{
		Store: a.Store, Passwords: a.Passwords, Logger: a.log, RootCAs: a.cfg.RootCAs, Metrics: a.Metrics, HTTPClient: a.cfg.HTTPClient,
		GraphLimiter: a.graphLimiter, Node: a.node, Stopping: ctx.Done(),
		Tokens: func(m store.Mailbox) connector.TokenFunc {
			fn, err := a.Tokens.For(work, m, credential.AudienceOf(m.Protocol))
			if err != nil { // the send fails with the reason, and is retried or failed by its kind
				return func(context.Context, bool) (string, error) { return "", err }
			}
			return fn
		},
	})
	var wg sync.WaitGroup
	wg.Go(func() { a.Wakeups.Run(ctx) })
	// The leases are handed over once the ingest loops have stopped (internal/cluster). A
	// node without ingest (Config.NoIngest) takes no leases either.
	if !a.cfg.NoIngest {
		ingestStopped := make(chan struct{})
		wg.Go(func() {
			defer close(ingestStopped)
			_ = runner.Run(ctx)
		})
		wg.Go(func() { _ = a.Cluster.Run(ctx, ingestStopped) })
	}
	wg.Go(func() { a.Routing.Run(ctx) })
	wg.Go(func() { sender.Run(work, a.Replies.Queued()) })
	wg.Go(func() { newExpiryWatch(a.Store, a.Metrics, a.log, a.cfg.ExpiryCheck).run(ctx) })
	wg.Go(func() { a.routingMetrics.run(ctx) })
	wg.Go(func() { a.heartbeat(ctx) })
	// Data protection: the queues' retention, at once and every hour.
	wg.Go(func() { (&privacy.Retention{Store: a.Store, Logger: a.log}).Run(ctx, 0) })
	return func() {
		wg.Wait()
		stopBegins()
		timerMu.Lock()
		if cutTimer != nil {
			cutTimer.Stop()
		}
		timerMu.Unlock()
		cutWork()
		if !a.abandon.Load() {
			a.handBack(context.WithoutCancel(ctx), sender)
		}
	}
}

// handBack gives back what the stopped loops held, by the end of the shutdown bound.
func (a *App) handBack(ctx context.Context, sender *outbound.Sender) {
	ctx, cancel := context.WithDeadline(ctx, a.stopBy())
	defer cancel()
	if n, err := sender.ReleaseClaims(ctx); err != nil {
		a.log.Warn("stopping: outbox rows stay claimed until the next start on this node (or their lease elsewhere)", slog.Any("error", err))
	} else if n > 0 {
		a.log.Info("stopping: released the outbox rows claimed and not sent", slog.Int("rows", n))
	}
	if a.cfg.DatabaseURL == "" { // one node: nobody can accept an offer while it is down
		if n, err := a.Routing.ReturnAllOffers(ctx, "the server stopped"); err != nil {
			a.log.Warn("stopping: offers stay until they expire", slog.Any("error", err))
		} else if n > 0 {
			a.log.Info("stopping: returned the open offers to their queues", slog.Int("offers", n))
		}
	}
	a.hooksMu.Lock()
	hooks := slices.Clone(a.onStop)
	a.hooksMu.Unlock()
	for _, fn := range hooks {
		fn(ctx)
	}
	if err := a.Store.SetAlive(ctx, a.node, time.Time{}); err != nil {
		a.log.Warn("stopping: the heartbeat stays; rotate-key waits for it to age", slog.Any("error", err))
	}
}

// Serve serves the web pages and the API on ln until ctx is done, with the time-outs and
// the connection cap of Config.HTTP (httpserver.go). Then it stops accepting connections
// and lets open requests finish until the cut-off of the shutdown bound.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// Requests keep their context for requestGrace after ctx ends, so that one in flight
	// finishes; streams (the live views) end then.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	stopReqs := context.AfterFunc(ctx, func() { time.AfterFunc(min(requestGrace, a.shutdownTimeout()/4), cancelReqs) })
	defer stopReqs()
	srv, ln := newHTTPServer(reqCtx, a.Handler, a.cfg.HTTP, a.log, ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), a.cutOff())
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		a.log.Warn("stopping: requests still open at the cut-off were closed", slog.Any("error", serr))
		_ = srv.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close closes the store.
func (a *App) Close() error { return a.Store.Close() }

// MailboxInput is a mailbox to create or update by name, with its password.
type MailboxInput struct {
	// Mailbox holds the settings; Enabled asks for the mailbox to be enabled (an inbound
	// one is assigned to the Default queue).
	Mailbox  store.Mailbox
	Password vault.Secret // zero: keep the stored one
	// ClientSecret is the OAuth client secret of a mailbox signing in as an app (zero:
	// keep the stored one).
	ClientSecret vault.Secret
	// Certificate is the app's certificate and private key as PEM (zero: keep the stored
	// one).
	Certificate vault.Secret
}

// EnsureMailbox creates the mailbox named in.Mailbox.Name, or updates its settings when it
// exists, through the mailbox rules (validation, audit), and enables it when asked.
func (a *App) EnsureMailbox(ctx context.Context, actor string, in MailboxInput) (store.Mailbox, error) {
	input := mailbox.FromMailbox(in.Mailbox)
	if !in.Password.IsZero() {
		input.Password = &in.Password
	}
	if !in.ClientSecret.IsZero() {
		input.ClientSecret = &in.ClientSecret
	}
	if !in.Certificate.IsZero() {
		input.Certificate = &in.Certificate
	}
	m, err := a.Store.MailboxByName(ctx, in.Mailbox.Name)
	switch {
	case err == nil:
		m, err = a.Mailboxes.Update(ctx, actor, m.ID, input)
	case store.IsNotFound(err):
		m, err = a.Mailboxes.Create(ctx, actor, input)
	}
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %q: %w", in.Mailbox.Name, err)
	}
	if in.Mailbox.Enabled && !m.Enabled {
		if err := a.Mailboxes.Enable(ctx, actor, m.ID); err != nil {
			return store.Mailbox{}, fmt.Errorf("enable mailbox %q: %w", m.Name, err)
		}
	}
	return a.Store.Mailbox(ctx, m.ID)
}
