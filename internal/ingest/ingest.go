// Package ingest runs one loop per enabled inbound mailbox: connect, fetch what waits,
// parse it, store it, acknowledge it at the source, then wait (IMAP IDLE, or poll).
//
// For speed (README "Performance"), the messages of one fetched batch are stored in one
// transaction (store.IngestMessages; one by one only when that fails, to find the message
// at fault), the IMAP source fetches the next batch while this one is stored, and at most
// Options.MaxDials mailboxes sign in at the same time. A large message is held once: the
// parser leaves its large attachments in the raw message (store.Attachment.Open), so the
// raw bytes of a batch must not change until it is stored.
//
// Invariants a change must keep:
//
//  1. Commit, then ack (DESIGN.md 1). A message is acknowledged at its source only after
//     the transaction that stores it (raw, parsed, conversation, work item, cursor) has
//     committed. A crash between the two leaves the message stored but unacknowledged: the
//     store lists it in PendingAcks and the next session acknowledges it first; a re-fetch
//     is recognised by the dedup key (mailbox, source id) and stores nothing.
//  2. Nothing is dropped (DESIGN.md 5): a message that cannot be parsed is stored raw and
//     becomes a work item flagged unparsed.
//  3. A failing mailbox is visible (DESIGN.md 9): every failure sets the mailbox's status
//     to error with advice, logs it and sets postroom_mailbox_up to 0 (internal/metrics);
//     the loop retries with exponential backoff and jitter, and the process keeps running.
//  4. One bad message never blocks a mailbox (DESIGN.md 7): a message that fails to be
//     stored (or panics the parser) is retried with the session; every failure is counted
//     in the store, and after maxTries it is quarantined: stored raw, unparsed, with no
//     attachments, acknowledged, and the cursor moves on. It is never fetched again.
//  5. Messages are taken in source order and a batch stops at the first failure, so the
//     cursor never moves past a message that is not stored.
//  6. Dedup has two keys (DESIGN.md 2 and 8): (mailbox, source id), and Message-ID plus
//     content hash (the store's IngestResult.Linked), so a copy through a second mailbox
//     or a re-read after an IMAP UIDVALIDITY change is acknowledged, not stored again. A
//     UIDVALIDITY change is written to the audit log for the admin
//     ("mailbox.uidvalidity_changed").
//  7. With several nodes (Options.Leases, internal/cluster) a mailbox's loop runs only
//     while this node holds the mailbox's lease: it stops when the lease's Done closes,
//     and every cursor, ingest, acknowledgement and status write carries the lease's
//     fence, so that a write after another node took the lease fails with
//     store.ErrLeaseLost, which ends the loop at once.
package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
	"github.com/postroom/postroom/internal/wakeup"
)

// Defaults of Options.
const (
	defaultBatchSize      = 50               // messages fetched per round trip
	defaultReloadInterval = 5 * time.Second  // how often the list of enabled mailboxes is read
	defaultPollInterval   = 60 * time.Second // when a mailbox sets none
	// maxIdle re-issues IDLE before servers drop it: RFC 2177 says clients should re-issue
	// at least every 29 minutes.
	maxIdle = 25 * time.Minute
	// Backoff after a failure: from minBackoff doubling to maxBackoff, with ±25% jitter.
	minBackoff = 1 * time.Second
	maxBackoff = 5 * time.Minute
	// defaultMaxSession bounds how long one connection is used before a fresh login and
	// SELECT. A long session can miss what changed under it: Dovecot keeps a session on a
	// folder that was deleted and created again (new UIDVALIDITY) without an error, and it
	// sees no new mail until it selects the folder again. Reconnecting a few times an hour
	// costs nothing next to the poll traffic.
	defaultMaxSession = 15 * time.Minute
	// maxTries is how many failed attempts to store one message are allowed before it is
	// quarantined (DESIGN.md invariant 7: "a bounded number of tries"). Three rides out a
	// passing fault (a lock, a dropped database connection) on the way.
	maxTries = 3
	// defaultMaxDials is how many mailboxes sign in at the same time by default: enough to
	// keep a server's login processes busy, few enough that no login waits behind the
	// others until it times out (1,000 at once on one Dovecot: a third of them failed and
	// retried; 128: a few; 32: none).
	defaultMaxDials = 32
)

// Audit action and actor of a detected IMAP UIDVALIDITY change.
const (
	auditActor          = "system"
	actionUIDValidity   = "mailbox.uidvalidity_changed"
	imapSourcePrefix    = "imap:"
	quarantineErrPrefix = "could not be stored after %d tries: %s"
)

// Options configure a Runner.
type Options struct {
	Store     store.Store
	Passwords *credential.Passwords
	// Tokens returns the OAuth 2.0 token source of a mailbox that signs in with OAuth, or
	// nil for one that signs in with its password; nil Tokens: passwords only.
	Tokens func(ctx context.Context, m store.Mailbox) (connector.TokenFunc, error)
	Logger *slog.Logger
	// HTTPClient makes Microsoft Graph requests (nil: a default client).
	HTTPClient *http.Client
	// NotificationURL, when set, is the public URL prefix at which Microsoft Graph can
	// reach postroom (e.g. https://postroom.example.org/graph/notify): a Graph mailbox's
	// session then subscribes to change notifications at NotificationURL/<mailbox id>, and
	// ServeNotification must be mounted there. Without it Graph mailboxes are polled; so
	// is a mailbox a person signs in to that is not their own (Graph sends notifications
	// for a shared mailbox to an app only), with a status saying so.
	NotificationURL string
	// GraphLimiter returns the request limiter of a Microsoft Graph mailbox, shared with
	// whatever else talks to the same mailbox (the sender), so that together they keep to
	// Graph's 4 concurrent requests per mailbox. nil: one limiter per session.
	GraphLimiter func(m store.Mailbox) *graph.Limiter
	// RootCAs replaces the system roots for TLS connections (tests).
	RootCAs        *x509.CertPool
	BatchSize      int
	ReloadInterval time.Duration
	// AfterCommit, when set, runs after each message's transaction committed and before it
	// is acknowledged. An error from it ends the session as a crash would, without
	// acknowledging: tests use it to prove that no duplicate follows.
	AfterCommit func(mailboxID int64, sourceID string) error
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Classify, when set, decides a message's routing (queue, priority, skills, SLA) by
	// the classification rules: a pure function whose result travels in the inbound
	// message for the store to write (internal/routing.Classifier).
	Classify func(m store.Mailbox, in *store.InboundMessage)
	// Stored, when set, is told after a batch committed (the routing engine wakes up).
	Stored func()
	// Wakeups is the bus on which a Microsoft Graph notification, received by this node
	// or another, reaches the loop of its mailbox (wakeup.Mailbox and the Graph lifecycle
	// topics; nil: an in-process bus of the Runner's own).
	Wakeups *wakeup.Bus
	// AutoMessages writes the over-size notice and the queues' acknowledgements (nil: one
	// on Store, with every queue's calendar open).
	AutoMessages *automsg.Composer
	// Metrics receives the ingest metrics (metrics.go); nil for none.
	Metrics *metrics.Registry
	// ReadTimeout is how long a server may stay silent in the middle of a command before
	// the connection is dropped and replaced (0: the connector's default, 2 minutes).
	ReadTimeout time.Duration
	// MaxSession is how long one connection is used before it is replaced by a fresh one
	// (0: defaultMaxSession).
	MaxSession time.Duration
	// MaxDials is how many mailboxes may be signing in at the same time (credentials,
	// connect, TLS, login, open the folder); the others wait their turn, so that starting
	// a thousand mailboxes does not flood the servers with logins that time out
	// (0: defaultMaxDials).
	MaxDials int

	// Leases, when set, is this node's share of the mailboxes (internal/cluster): a loop
	// runs only for a mailbox whose lease this node holds, under the lease's fence
	// (invariant 7). nil: every enabled inbound mailbox is read by this process.
	Leases Leases

	// beforeStore, when set, runs before each message is stored; its error counts as a
	// failure to store the message (tests craft poison messages with it).
	beforeStore func(in connector.Incoming) error
}

// Leases is what the runner needs of a cluster node (*cluster.Cluster).
type Leases interface {
	// Held returns the leases the node holds now, by mailbox.
	Held() map[int64]cluster.Grant
	// Changed receives a value when the held set changed.
	Changed() <-chan struct{}
	// Lost says that a write with the fence was refused (store.ErrLeaseLost).
	Lost(f store.Fence)
}

// fenceKey is the context key of a loop's lease fence: the loop's context lives as long
// as its lease, and every write made with it carries the fence.
type fenceKey struct{}

func fenceOf(ctx context.Context) store.Fence {
	f, _ := ctx.Value(fenceKey{}).(store.Fence)
	return f
}

// Watched reports whether m is read by an ingest loop (and so needs a lease): an enabled
// inbound IMAP, POP3, Microsoft Graph or EWS mailbox.
func Watched(m store.Mailbox) bool {
	return m.Direction == store.Inbound && m.Enabled && slices.Contains(WatchedProtocols(), m.Protocol)
}

// WatchedProtocols are the protocols of the inbound mailboxes an ingest loop reads.
func WatchedProtocols() []string { return []string{"imap", "pop3", "graph", "ews", "gmail"} }

// Runner supervises the per-mailbox loops.
type Runner struct {
	// dials holds a token for each mailbox signing in now (Options.MaxDials).
	dialsOnce sync.Once
	dials     chan struct{}

	opts Options
	log  *slog.Logger
	bus  *wakeup.Bus
	met  ingestMetrics

	mu      sync.Mutex
	running map[int64]*loop

	// ewsURLs are the EWS URLs autodiscover found, by mailbox; ewsClient makes EWS requests.
	ewsURLs   ews.Endpoints
	ewsOnce   sync.Once
	ewsClient *http.Client
}

type loop struct {
	cancel context.CancelFunc
	done   chan struct{}
	fence  store.Fence // zero without Leases
	// leaseDone is the Done of the lease the loop runs under (nil without Leases): once
	// closed the loop is stopping, and a lease held again, even under the same generation,
	// needs a new loop.
	leaseDone <-chan struct{}
	updated   time.Time // the mailbox's UpdatedAt when the loop started
	name      string    // the mailbox's name, its metrics label
}

// notificationsPossible reports whether Microsoft Graph sends change notifications for
// m's mailbox to m's sign-in: always to an app; to a person's sign-in only for the
// person's own mailbox, never for another user's or a shared one (ms365-protocol.md §8.2).
// A sign-in whose account is not known is tried: Graph's refusal is recognised at once.
func notificationsPossible(m store.Mailbox) bool {
	switch m.Auth {
	case store.AuthOAuthDelegated:
		return m.OAuth.Account == "" || strings.EqualFold(m.OAuth.Account, m.Address)
	case store.AuthOAuthROPC:
		return strings.EqualFold(m.Login, m.Address)
	}
	return true
}

// signedInAccount is the account a person's sign-in of m signs in as ("" when unknown).
func signedInAccount(m store.Mailbox) string {
	if m.Auth == store.AuthOAuthROPC {
		return m.Login
	}
	return m.OAuth.Account
}

// pollingNote is the status message of a Graph mailbox that is polled because change
// notifications are not possible for its sign-in.
func pollingNote(poll time.Duration) string {
	return fmt.Sprintf("notifications need app-only access; polling every %d s", int(poll.Round(time.Second)/time.Second))
}

// subscribe keeps a Graph change-notification subscription for the session of m and
// records it in the store (id, expiry, the clientState's hash), so that any node can
// check a notification and pass it on through the wake-up bus; the lifecycle events that
// come that way renew it or make it anew. refused is called when Graph refuses
// notifications to this sign-in for good (graph.ErrNotificationsNeedApp). It returns a
// function that ends the subscription and waits for it.
func (r *Runner) subscribe(ctx context.Context, m store.Mailbox, src *graph.Source, token connector.TokenFunc, log *slog.Logger, refused func()) (stop func()) {
	url := strings.TrimRight(r.opts.NotificationURL, "/") + "/" + strconv.FormatInt(m.ID, 10)
	sub, err := graph.NewSubscriber(r.graphConfig(m, "", token, log), graph.SubscribeOptions{NotificationURL: url, Notify: src.Notify,
		Subscribed: func(id string, expires time.Time, hash [32]byte) {
			err := r.opts.Store.PutGraphSubscription(context.WithoutCancel(ctx), store.GraphSubscription{ID: id, MailboxID: m.ID, ClientStateHash: hash, ExpiresAt: expires})
			if err != nil {
				log.Warn("graph: cannot record the subscription; notifications to other nodes are refused until the next renewal", slog.Any("error", err))
			}
		},
		Ended: func(id string) {
			if err := r.opts.Store.DeleteGraphSubscription(context.WithoutCancel(ctx), id); err != nil {
				log.Info("graph: cannot forget the ended subscription; it is dropped when it expires", slog.Any("error", err))
			}
		}})
	if err != nil {
		log.Warn("graph change notifications unavailable; the mailbox is polled", slog.Any("error", err))
		return func() {}
	}
	reauth := r.bus.Subscribe(wakeup.GraphReauthorize, m.ID)
	removed := r.bus.Subscribe(wakeup.GraphRemoved, m.ID)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reauth.C():
				sub.RequestRenew()
			case <-removed.C():
				sub.RequestRecreate()
			}
		}
	})
	wg.Go(func() {
		err := sub.Run(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, graph.ErrNotificationsNeedApp):
			log.Info("graph change notifications need app-only access; the mailbox is polled", slog.String("advice", connector.Advice(err)))
			refused()
		default:
			log.Warn("graph change notifications unavailable; the mailbox is polled", slog.Any("error", err), slog.String("advice", connector.Advice(err)))
		}
	})
	return func() {
		cancel()
		wg.Wait()
		reauth.Close()
		removed.Close()
	}
}

// notifySkew is how long after its expiry a stored subscription's notifications are still
// taken (clocks differ between Microsoft and postroom).
const notifySkew = 5 * time.Minute

// ServeNotification answers Microsoft Graph's calls for a mailbox at its notification URL
// (validation handshake, change and lifecycle notifications) on any node: notifications
// are checked against the mailbox's subscriptions in the store (id, and the SHA-256 of
// the clientState) and handed to the node that runs the mailbox's loop through the
// wake-up bus. A mailbox that is not an enabled Graph mailbox, or (for notifications) has
// no stored subscription, answers 404, which tells Graph to stop.
func (r *Runner) ServeNotification(w http.ResponseWriter, req *http.Request, mailboxID int64) {
	ctx := req.Context()
	m, err := r.opts.Store.Mailbox(ctx, mailboxID)
	if store.IsNotFound(err) || (err == nil && (m.Protocol != "graph" || !m.Enabled || m.Direction != store.Inbound)) {
		http.NotFound(w, req)
		return
	}
	if err != nil {
		r.log.WarnContext(ctx, "graph notification: cannot read the mailbox", slog.Int64("mailbox_id", mailboxID), slog.Any("error", err))
		http.Error(w, "the database does not answer; Microsoft Graph retries", http.StatusServiceUnavailable)
		return
	}
	var subs []store.GraphSubscription
	if !req.URL.Query().Has("validationToken") {
		subs, err = r.opts.Store.GraphSubscriptionsOf(ctx, mailboxID)
		if err != nil {
			r.log.WarnContext(ctx, "graph notification: cannot read the subscriptions", slog.Int64("mailbox_id", mailboxID), slog.Any("error", err))
			http.Error(w, "the database does not answer; Microsoft Graph retries", http.StatusServiceUnavailable)
			return
		}
		if len(subs) == 0 {
			http.NotFound(w, req)
			return
		}
	}
	now := r.opts.Now()
	log := r.log.With(slog.Int64("mailbox_id", mailboxID), slog.String("mailbox", m.Name))
	graph.HandleNotifications(w, req, log, func(id, clientState string) bool {
		hash := sha256.Sum256([]byte(clientState))
		for _, s := range subs {
			if s.ID == id && subtle.ConstantTimeCompare(hash[:], s.ClientStateHash[:]) == 1 && now.Before(s.ExpiresAt.Add(notifySkew)) {
				return true
			}
		}
		return false
	}, func(n graph.Notifications) {
		if n.Change {
			r.bus.Publish(wakeup.Mailbox, mailboxID)
		}
		if n.Reauthorize {
			r.bus.Publish(wakeup.GraphReauthorize, mailboxID)
		}
		if n.Removed {
			r.bus.Publish(wakeup.GraphRemoved, mailboxID)
		}
	})
}

// NewRunner returns a Runner. It does no I/O.
func NewRunner(opts Options) *Runner {
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = defaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSession <= 0 {
		opts.MaxSession = defaultMaxSession
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	bus := opts.Wakeups
	if bus == nil {
		bus = wakeup.NewLocal()
	}
	return &Runner{opts: opts, log: log, bus: bus, met: newIngestMetrics(opts.Metrics), running: map[int64]*loop{}}
}

// Run starts a loop for every enabled inbound mailbox and keeps the set in step with the
// store (mailboxes enabled, disabled, changed or deleted) until ctx is done. It returns
// after every loop has stopped.
func (r *Runner) Run(ctx context.Context) error {
	defer r.stopAll()
	t := time.NewTicker(r.opts.ReloadInterval)
	defer t.Stop()
	var changed <-chan struct{}
	if r.opts.Leases != nil {
		changed = r.opts.Leases.Changed()
	}
	for {
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("ingest: cannot read the mailbox list; retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		}
	}
}

func (r *Runner) sync(ctx context.Context) error {
	boxes, err := r.opts.Store.ListMailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list mailboxes: %w", err)
	}
	var grants map[int64]cluster.Grant
	if r.opts.Leases != nil {
		grants = r.opts.Leases.Held()
	}
	want := map[int64]store.Mailbox{}
	for _, m := range boxes {
		if !Watched(m) {
			continue
		}
		if _, held := grants[m.ID]; grants != nil && !held {
			continue // another node's, or nobody's yet
		}
		want[m.ID] = m
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, l := range r.running {
		m, ok := want[id]
		ended := false
		select {
		case <-l.done: // stopped by itself: its lease was lost
			ended = true
		case <-l.leaseDone: // its lease lapsed: it is stopping (a nil channel never is)
			ended = true
		default:
		}
		if !ok || ended || !m.UpdatedAt.Equal(l.updated) || (grants != nil && grants[id].Fence != l.fence) {
			l.cancel()
			<-l.done
			delete(r.running, id)
			if !ok { // disabled or deleted: no longer watched, so neither up nor down
				r.met.forget(l.name)
			}
		}
	}
	for id, m := range want {
		if _, ok := r.running[id]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &loop{cancel: cancel, done: make(chan struct{}), updated: m.UpdatedAt, name: m.Name}
		if g, ok := grants[id]; ok {
			l.fence, l.leaseDone = g.Fence, g.Done
			lctx = context.WithValue(lctx, fenceKey{}, g.Fence)
			go func() { // the loop lives as long as the lease can be proven
				select {
				case <-g.Done:
					cancel()
				case <-lctx.Done():
				}
			}()
		}
		r.running[id] = l
		go func() {
			defer close(l.done)
			r.runMailbox(lctx, m)
		}()
	}
	return nil
}

func (r *Runner) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, l := range r.running {
		l.cancel()
		<-l.done
		delete(r.running, id)
	}
}

// runMailbox runs sessions until ctx is done, backing off after each failure.
func (r *Runner) runMailbox(ctx context.Context, m store.Mailbox) {
	log := r.log.With(slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name))
	r.met.watch(m.Name)
	failures := 0
	for ctx.Err() == nil {
		connected, err := r.session(ctx, m, log)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrLeaseLost) {
			log.Info("mailbox lease lost: another node ingests this mailbox now; this loop stops", slog.Any("error", err))
			if r.opts.Leases != nil {
				r.opts.Leases.Lost(fenceOf(ctx))
			}
			return
		}
		if connected {
			failures = 0
		}
		if err == nil { // the session reached MaxSession: a fresh one at once
			log.Debug("replacing a long session with a fresh one", slog.Duration("max_session", r.opts.MaxSession))
			continue
		}
		failures++
		wait := backoff(failures)
		kind := errorKind(err)
		log.Error("mailbox failing; retrying", slog.Any("error", err), slog.String("kind", kind),
			slog.String("advice", connector.Advice(err)), slog.Duration("retry_in", wait))
		r.met.failed(m.Name, kind)
		r.setStatus(context.WithoutCancel(ctx), m.ID, store.StatusError, err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait after the n-th failure in a row: exponential with jitter.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/2)) - d/4
	return d + jitter
}

// spread shortens a wait between polls (or IMAP IDLEs) by up to a tenth, at random, so that
// mailboxes that connected together (every one at start) do not all wake in the same
// second, poll interval after poll interval: 10,000 mailboxes that did kept the memory of
// a burst of 10,000 searches and status writes once a minute (README "Performance"). A
// mailbox is still read at least once per poll interval.
func spread(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// session connects once and ingests until an error, ctx ends, or (with a nil error) the
// session is older than MaxSession. connected reports whether the login succeeded, so that
// the backoff starts again from the bottom.
func (r *Runner) session(ctx context.Context, m store.Mailbox, log *slog.Logger) (connected bool, err error) {
	cursor, err := r.opts.Store.Cursor(ctx, m.ID)
	if err != nil && !store.IsNotFound(err) {
		return false, fmt.Errorf("read cursor: %w", err)
	}
	release, err := r.dialSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	password, err := r.opts.Passwords.Get(ctx, m.ID)
	if err != nil {
		return false, err
	}
	var token connector.TokenFunc
	if r.opts.Tokens != nil {
		if token, err = r.opts.Tokens(ctx, m); err != nil {
			return false, err
		}
	}
	src, err := r.dial(ctx, m, cursor.Value, password, token, log)
	release()
	if err != nil {
		return false, err
	}
	defer src.Close()
	poll := m.PollInterval
	if poll <= 0 {
		poll = defaultPollInterval
	}
	// note is the connected status's message: why the mailbox is polled although change
	// notifications are turned on.
	var note atomic.Value
	note.Store("")
	connectedNote := func() string { return note.Load().(string) }
	if gs, ok := src.(*graph.Source); ok {
		// A notification taken by any node reaches this loop: read the folder now.
		woken := r.bus.Subscribe(wakeup.Mailbox, m.ID)
		defer woken.Close()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			for {
				select {
				case <-wctx.Done():
					return
				case <-woken.C():
					gs.Notify()
				}
			}
		}()
	}
	if gs, ok := src.(*graph.Source); ok && r.opts.NotificationURL != "" {
		if notificationsPossible(m) {
			stop := r.subscribe(ctx, m, gs, token, log, func() {
				note.Store(pollingNote(poll))
				r.setStatus(ctx, m.ID, store.StatusConnected, connectedNote())
			})
			defer stop()
		} else {
			note.Store(pollingNote(poll))
			log.Info("a person's sign-in to another mailbox gets no graph change notifications; the mailbox is polled",
				slog.String("account", signedInAccount(m)), slog.Duration("poll_interval", poll))
		}
	}
	if err := r.setStatusErr(ctx, m.ID, store.StatusConnected, connectedNote()); err != nil {
		return true, err
	}
	r.met.up(m.Name)
	log.Info("mailbox connected", slog.String("host", m.Host), slog.String("folder", m.Folder))
	st := &sessionState{cursor: cursor.Value}

	if err := r.ackPending(ctx, m, src); err != nil {
		return true, err
	}
	started := time.Now()
	for {
		n, err := r.drain(ctx, m, src, st, log)
		if err != nil {
			return true, err
		}
		if n > 0 {
			continue
		}
		if w, ok := connector.Source(src).(connector.Waiter); ok {
			if err := w.Wait(ctx, spread(min(poll, maxIdle))); err != nil {
				return true, err
			}
		} else {
			select {
			case <-ctx.Done():
			case <-time.After(spread(poll)):
			}
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err := r.setStatusErr(ctx, m.ID, store.StatusConnected, connectedNote()); err != nil {
			return true, err
		}
		r.met.up(m.Name)
		if time.Since(started) >= r.opts.MaxSession {
			return true, nil
		}
	}
}

// dialSlot waits for one of the Options.MaxDials sign-in slots; release gives it back
// (once, however often it is called).
func (r *Runner) dialSlot(ctx context.Context) (release func(), err error) {
	r.dialsOnce.Do(func() {
		n := r.opts.MaxDials
		if n <= 0 {
			n = defaultMaxDials
		}
		r.dials = make(chan struct{}, n)
	})
	select {
	case r.dials <- struct{}{}:
		return sync.OnceFunc(func() { <-r.dials }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial opens the mailbox's source.
func (r *Runner) dial(ctx context.Context, m store.Mailbox, cursor string, password vault.Secret, token connector.TokenFunc, log *slog.Logger) (connector.Source, error) {
	switch m.Protocol {
	case "imap":
		return imap.Dial(ctx, imap.Config{
			Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
			Folder: m.Folder, Cursor: cursor, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder,
			MaxSize: maxSize(m), RootCAs: r.opts.RootCAs, Logger: log, ReadTimeout: r.opts.ReadTimeout,
			Token: token,
		})
	case "pop3":
		return pop3.Dial(ctx, pop3.Config{
			Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
			AfterAction: m.AfterAction, MaxSize: maxSize(m), RootCAs: r.opts.RootCAs, Logger: log, ReadTimeout: r.opts.ReadTimeout,
			Token: token,
			// POP3 has no cursor: what is stored already is not downloaded again.
			Skip: func(sourceID string) bool {
				_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
				return err == nil
			},
		})
	case "graph":
		cfg := r.graphConfig(m, cursor, token, log)
		cfg.Skip = func(sourceID string) bool {
			_, err := r.opts.Store.MessageBySource(ctx, m.ID, sourceID)
			return err == nil
		}
		fence := fenceOf(ctx) // the loop's, whatever context the connector saves with
		cfg.SaveCursor = func(ctx context.Context, c string) error {
			return r.opts.Store.SetCursor(ctx, store.Cursor{MailboxID: m.ID, Value: c, Fence: fence})
		}
		return graph.Open(ctx, cfg)
	case "ews":
		return r.dialEWS(ctx, m, cursor, password, token, log)
	case "gmail":
		return r.dialGmail(ctx, m, cursor, token, log)
	}
	return nil, &connector.Error{Kind: connector.KindConfig, Op: "connect", Err: fmt.Errorf("protocol %q", m.Protocol),
		Advice: "this kind of mailbox cannot be read yet: use imap or pop3"}
}

// whereSetAside says where an over-size message stays at its source (connector SetAside).
func whereSetAside(protocol string) string {
	switch protocol {
	case "imap":
		return fmt.Sprintf(", in the folder %q", imap.OversizeFolder)
	case "graph":
		return fmt.Sprintf(" (Microsoft 365), in the mailbox's folder %q", graph.OversizeFolder)
	case "ews":
		return " (Exchange), left unread where it is"
	case "gmail":
		return " (Gmail API: left where it is, not downloaded again)"
	}
	return " (POP3: left on the server, not downloaded again)"
}

// graphConfig is the Graph connector's configuration of mailbox m.
func (r *Runner) graphConfig(m store.Mailbox, cursor string, token connector.TokenFunc, log *slog.Logger) graph.Config {
	var lim *graph.Limiter
	if r.opts.GraphLimiter != nil {
		lim = r.opts.GraphLimiter(m)
	}
	return graph.Config{
		Limiter:  lim,
		GraphURL: credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud), Mailbox: m.Address, Folder: m.Folder,
		Cursor: cursor, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder, MaxSizeBytes: maxSize(m),
		Token: token, HTTPClient: r.opts.HTTPClient, Logger: log,
	}
}

// maxSize is the mailbox's Max size in bytes.
func maxSize(m store.Mailbox) int64 {
	if m.MaxSizeMB <= 0 {
		return 0
	}
	return int64(m.MaxSizeMB) << 20
}

// ackPending finishes what an earlier session left between commit and acknowledgement:
// messages stored whole are acknowledged, those stored over size are set aside.
func (r *Runner) ackPending(ctx context.Context, m store.Mailbox, src connector.Source) error {
	ids, err := r.opts.Store.PendingAcks(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("list unacknowledged messages: %w", err)
	}
	var whole, over []string
	for _, id := range ids {
		msg, err := r.opts.Store.MessageBySource(ctx, m.ID, id)
		if err != nil {
			return fmt.Errorf("read unacknowledged message %s: %w", id, err)
		}
		if msg.OverSize {
			over = append(over, id)
		} else {
			whole = append(whole, id)
		}
	}
	if err := r.ack(ctx, m, src, whole, false); err != nil {
		return err
	}
	return r.ack(ctx, m, src, over, true)
}

// ack acknowledges ids at the source (or sets them aside) and records that it did.
func (r *Runner) ack(ctx context.Context, m store.Mailbox, src connector.Source, ids []string, setAside bool) error {
	if len(ids) == 0 {
		return nil
	}
	var err error
	if setAside {
		err = src.SetAside(ctx, ids)
	} else {
		err = src.Ack(ctx, ids)
	}
	if err != nil {
		return err
	}
	if err := r.markAcked(ctx, m.ID, ids); err != nil {
		return fmt.Errorf("record ack of %d messages: %w", len(ids), err)
	}
	return nil
}

// markAcked records the acknowledgement, fenced by the loop's lease when it has one.
func (r *Runner) markAcked(ctx context.Context, mailboxID int64, ids []string) error {
	if f := fenceOf(ctx); !f.IsZero() {
		return r.opts.Store.MarkAckedFenced(ctx, f, ids...)
	}
	return r.opts.Store.MarkAcked(ctx, mailboxID, ids...)
}

// sessionState is what one session remembers between batches.
type sessionState struct {
	cursor      string // the cursor stored when the session started
	uidvChecked bool   // the first fetched source id was compared with cursor
}

// drain fetches one batch, stores its messages in order, then acknowledges what was
// stored. The messages are stored together in one transaction (store.IngestMessages);
// should that fail, one by one, so that the message at fault is found. A message that
// fails to be stored ends the batch there (nothing after it is stored, so the cursor does
// not pass it) and the session, unless it failed maxTries times: then it is quarantined
// and the batch goes on.
func (r *Runner) drain(ctx context.Context, m store.Mailbox, src connector.Source, st *sessionState, log *slog.Logger) (int, error) {
	batch, err := src.Next(ctx, r.opts.BatchSize)
	if err != nil {
		return 0, err
	}
	r.checkUIDValidity(ctx, m, st, batch, log)
	var committed, over []string
	finish := func() error {
		if err := r.ack(ctx, m, src, committed, false); err != nil {
			return err
		}
		return r.ack(ctx, m, src, over, true)
	}
	// done records a message stored (or quarantined) and lets go of its raw source, so
	// that a batch of large messages is not held until its end.
	done := func(i int, res store.IngestResult, quarantined bool) error {
		in := batch[i]
		batch[i].Raw = nil
		switch {
		case quarantined: // logged and counted by failed
		case res.Linked:
			r.met.duplicates.Inc(m.Name)
			log.Info("message stored already through another source: linked", slog.String("source_id", in.SourceID),
				slog.Int64("message_id", res.MessageID), slog.Int64("work_item_id", res.WorkItemID))
		case res.Duplicate:
			r.met.duplicates.Inc(m.Name)
			log.Debug("message already stored", slog.String("source_id", in.SourceID))
		default:
			r.met.ingested.Inc(m.Name)
			if res.WorkItemID != 0 {
				r.met.stored(in.ReceivedAt, time.Now())
			}
			log.Info("message ingested", slog.String("source_id", in.SourceID),
				slog.Int64("work_item_id", res.WorkItemID), slog.Bool("threaded", res.Threaded))
		}
		if r.opts.AfterCommit != nil {
			if err := r.opts.AfterCommit(m.ID, in.SourceID); err != nil {
				return fmt.Errorf("after commit of %s: %w", in.SourceID, err)
			}
		}
		if in.OverSize {
			over = append(over, in.SourceID)
		} else {
			committed = append(committed, in.SourceID)
		}
		return nil
	}
	// fail handles message i that could not be stored: quarantined (then the batch goes
	// on), or the error that ends the session after what did commit is acknowledged.
	fail := func(i int, cause error) error {
		res, err := r.failed(ctx, m, batch[i], cause, log)
		if err != nil {
			if ackErr := finish(); ackErr != nil {
				log.Warn("ack after failure", slog.Any("error", ackErr))
			}
			return err
		}
		return done(i, res, true)
	}

	prepared := make([]store.InboundMessage, len(batch))
	prepErr := make([]error, len(batch))
	for i, in := range batch {
		prepared[i], prepErr[i] = r.prepare(ctx, m, in)
	}
	for i := 0; i < len(batch); {
		// The run of messages from i that were parsed and prepared: one transaction.
		j := i
		for j < len(batch) && prepErr[j] == nil {
			j++
		}
		if j > i {
			results, err := r.ingest(ctx, prepared[i:j])
			if err != nil && ctx.Err() == nil && j-i > 1 && !errors.Is(err, store.ErrLeaseLost) {
				log.Debug("storing the batch in one transaction failed; storing its messages one by one", slog.Any("error", err))
				for k := i; k < j; k++ {
					results, err := r.ingest(ctx, prepared[k:k+1])
					prepared[k] = store.InboundMessage{}
					if err != nil {
						if err := fail(k, fmt.Errorf("store message %s: %w", batch[k].SourceID, err)); err != nil {
							return 0, err
						}
						continue
					}
					if err := done(k, results[0], false); err != nil {
						return 0, err
					}
				}
				i = j
				continue
			}
			if err != nil {
				if err := fail(i, fmt.Errorf("store message %s: %w", batch[i].SourceID, err)); err != nil {
					return 0, err
				}
				prepared[i] = store.InboundMessage{}
				i++
				continue
			}
			for k, res := range results {
				prepared[i+k] = store.InboundMessage{}
				if err := done(i+k, res, false); err != nil {
					return 0, err
				}
			}
			i = j
			continue
		}
		// Message i could not be prepared (its parse panicked, or a test refused it).
		if err := fail(i, prepErr[i]); err != nil {
			return 0, err
		}
		i++
	}
	if err := finish(); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// storeError is a failure to store a message (as opposed to a failure of the source).
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// failed handles a message that could not be stored: it counts the failure and, at
// maxTries, quarantines the message. Below that it returns the error, which ends the
// session; the message is fetched again after the backoff.
func (r *Runner) failed(ctx context.Context, m store.Mailbox, in connector.Incoming, cause error, log *slog.Logger) (store.IngestResult, error) {
	if ctx.Err() != nil || errors.Is(cause, store.ErrLeaseLost) {
		return store.IngestResult{}, cause // shutting down, or the lease moved: not the message's fault
	}
	tries, err := r.opts.Store.RecordIngestFailure(ctx, m.ID, in.SourceID, cause.Error())
	if err != nil {
		return store.IngestResult{}, &storeError{errors.Join(cause, fmt.Errorf("count the failure: %w", err))}
	}
	if tries < maxTries {
		log.Warn("message could not be stored; it is tried again", slog.String("source_id", in.SourceID),
			slog.Int("tries", tries), slog.Int("max_tries", maxTries), slog.Any("error", cause))
		return store.IngestResult{}, &storeError{cause}
	}
	res, err := r.quarantine(ctx, m, in, tries, cause)
	if err != nil {
		return store.IngestResult{}, &storeError{fmt.Errorf("quarantine %s after %d failed tries (%w): %w", in.SourceID, tries, cause, err)}
	}
	r.met.quarantined.Inc(m.Name)
	log.Error("message quarantined: stored raw and flagged unparsed for a supervisor; the mailbox moves on",
		slog.String("source_id", in.SourceID), slog.Int("tries", tries), slog.Int64("work_item_id", res.WorkItemID),
		slog.Any("error", cause))
	return res, nil
}

// quarantine stores a message that failed maxTries times the shortest way: raw, with a
// subject and sender read from its first header lines, no parsing, no attachments, no
// Message-ID (no threading, no second dedup key), flagged unparsed with the reason.
func (r *Runner) quarantine(ctx context.Context, m store.Mailbox, in connector.Incoming, tries int, cause error) (store.IngestResult, error) {
	subject, from := quickHeader(in.Raw)
	var fromName string
	if a, err := mail.ParseAddress(from); err == nil {
		fromName, from = a.Name, a.Address
	}
	msg := store.Message{
		MailboxID:  m.ID,
		Direction:  store.Inbound,
		SourceID:   in.SourceID,
		Subject:    subject,
		FromName:   fromName,
		FromAddr:   from,
		Date:       r.opts.Now(),
		Size:       int64(len(in.Raw)),
		Unparsed:   true,
		ParseError: fmt.Sprintf(quarantineErrPrefix, tries, cause),
		OverSize:   in.OverSize,
		TextBody: "This message could not be stored normally and was quarantined: " +
			"the original is kept unchanged (download it to read it).",
	}
	if in.OverSize {
		msg.Size = in.Size
	}
	var cursor *store.Cursor
	if in.Cursor != "" {
		cursor = &store.Cursor{MailboxID: m.ID, Value: in.Cursor}
	}
	res, err := r.opts.Store.IngestMessage(ctx, store.InboundMessage{
		MailboxID: m.ID, Raw: in.Raw, Message: msg, Cursor: cursor, ReceivedAt: in.ReceivedAt, Fence: fenceOf(ctx),
	})
	if err != nil {
		return res, fmt.Errorf("store quarantined message %s: %w", in.SourceID, err)
	}
	return res, nil
}

// quickHeaderBytes bounds how much of a quarantined message is scanned for its subject and
// sender.
const quickHeaderBytes = 64 << 10

// quickHeader returns the unfolded Subject and From of raw's header, as they are (not
// decoded), from at most quickHeaderBytes; "" for what it does not find.
func quickHeader(raw []byte) (subject, from string) {
	head := string(raw[:min(len(raw), quickHeaderBytes)])
	var last *string
	for line := range strings.SplitSeq(head, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break // end of the header
		}
		if (line[0] == ' ' || line[0] == '\t') && last != nil {
			*last += " " + strings.TrimSpace(line)
			continue
		}
		last = nil
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "subject":
			if subject == "" {
				subject = strings.TrimSpace(value)
				last = &subject
			}
		case "from":
			if from == "" {
				from = strings.TrimSpace(value)
				last = &from
			}
		}
	}
	return subject, from
}

// checkUIDValidity records an IMAP folder that was recreated (its UIDVALIDITY changed, RFC
// 9051 §2.3.1.1) in the audit log, once per session: the connector re-reads the unseen
// messages and the second dedup key recognises the ones stored before, and the admin
// should know why the folder was read again.
func (r *Runner) checkUIDValidity(ctx context.Context, m store.Mailbox, st *sessionState, batch []connector.Incoming, log *slog.Logger) {
	if st.uidvChecked || len(batch) == 0 || m.Protocol != "imap" {
		return
	}
	st.uidvChecked = true
	old, ok := uidValidityOf(st.cursor)
	if !ok {
		return
	}
	now, ok := uidValidityOf(strings.TrimPrefix(batch[0].SourceID, imapSourcePrefix))
	if !ok || now == old {
		return
	}
	log.Warn("imap folder was recreated (UIDVALIDITY changed): its unseen messages are read again; copies stored before are recognised, not duplicated",
		slog.String("folder", m.Folder), slog.Uint64("old_uidvalidity", old), slog.Uint64("uidvalidity", now))
	err := r.opts.Store.AddAudit(ctx, store.AuditEvent{
		At: r.opts.Now(), Actor: auditActor, Action: actionUIDValidity, Object: fmt.Sprintf("mailbox:%d", m.ID),
		Old: fmt.Sprintf("folder=%s uidvalidity=%d", m.Folder, old),
		New: fmt.Sprintf("folder=%s uidvalidity=%d", m.Folder, now),
	})
	if err != nil {
		log.Warn("cannot record the UIDVALIDITY change in the audit log", slog.Any("error", err))
	}
}

// uidValidityOf returns the UIDVALIDITY of an IMAP cursor "<uidvalidity>:<uid>" (a source
// id without its "imap:" prefix has the same form).
func uidValidityOf(cursor string) (uint64, bool) {
	v, _, ok := strings.Cut(cursor, ":")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return n, err == nil
}

// ingest stores msgs in one transaction. A panic while storing is turned into an error,
// as one in the parser is.
func (r *Runner) ingest(ctx context.Context, msgs []store.InboundMessage) (res []store.IngestResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("panic: %v", p)
		}
		if err == nil && r.opts.Stored != nil {
			r.opts.Stored()
		}
	}()
	if len(msgs) == 1 {
		one, err := r.opts.Store.IngestMessage(ctx, msgs[0])
		if err != nil {
			return nil, err
		}
		return []store.IngestResult{one}, nil
	}
	return r.opts.Store.IngestMessages(ctx, msgs)
}

// prepare parses one message into what the store takes: the parsed form with its cursor,
// and the automatic message to its sender (the over-size notice or the acknowledgement). A panic while parsing is
// turned into an error: one message never takes the process down.
func (r *Runner) prepare(ctx context.Context, m store.Mailbox, in connector.Incoming) (inbound store.InboundMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			inbound, err = store.InboundMessage{}, fmt.Errorf("store message %s: panic: %v", in.SourceID, p)
		}
	}()
	if r.opts.beforeStore != nil {
		if err := r.opts.beforeStore(in); err != nil {
			return store.InboundMessage{}, fmt.Errorf("store message %s: %w", in.SourceID, err)
		}
	}
	parsed := message.Parse(in.Raw)
	parsed.MailboxID = m.ID
	parsed.Direction = store.Inbound
	parsed.SourceID = in.SourceID
	if parsed.Date.IsZero() {
		parsed.Date = r.opts.Now()
	}
	// A program's mail (an auto-reply, a bounce, a list) is marked: it never gets an
	// automatic answer, and opens no work by itself; a bounce is matched to our reply.
	parsed.Automatic = message.AutomaticOf(message.Header(in.Raw), parsed)
	var bounce *store.Bounce
	if parsed.Automatic != "" {
		bounce = message.Bounce(in.Raw)
	}
	var cursor *store.Cursor
	if in.Cursor != "" {
		cursor = &store.Cursor{MailboxID: m.ID, Value: in.Cursor}
	}
	inbound = store.InboundMessage{
		MailboxID:  m.ID,
		Raw:        in.Raw,
		Message:    parsed,
		Cursor:     cursor,
		ReceivedAt: in.ReceivedAt,
		Bounce:     bounce,
		Fence:      fenceOf(ctx),
	}
	if in.OverSize {
		inbound.Message.OverSize = true
		inbound.Message.Size = in.Size
		// Its body is left out on purpose, so the parser's complaint that a multipart has
		// no parts is no news; only a header that does not read keeps it unparsed.
		if inbound.Message.Unparsed && headerReads(in.Raw) {
			inbound.Message.Unparsed, inbound.Message.ParseError = false, ""
		}
		// A header-only "message" parses fine; what is missing is said plainly.
		inbound.Message.TextBody = fmt.Sprintf("This message is %s, over this mailbox's Max size of %d MB, so only its header was stored. "+
			"The original is kept at the mail server%s.", formatMB(in.Size), m.MaxSizeMB, whereSetAside(m.Protocol))
	}
	if r.opts.Classify != nil {
		r.opts.Classify(m, &inbound)
	}
	inbound.AutoReply = r.autoReply(ctx, m, in, &inbound)
	return inbound, nil
}

// setStatus records the mailbox's status; with a lease, only while this node holds it (a
// mailbox's status is written by its lease holder only).
func (r *Runner) setStatus(ctx context.Context, id int64, status, msg string) {
	_ = r.setStatusErr(ctx, id, status, msg)
}

// setStatusErr is setStatus that returns store.ErrLeaseLost when the lease moved: the
// session's periodic status write is how an idle loop learns it.
func (r *Runner) setStatusErr(ctx context.Context, id int64, status, msg string) error {
	st := store.MailboxStatus{Status: status, Message: msg, At: r.opts.Now()}
	var err error
	if f := fenceOf(ctx); !f.IsZero() {
		err = r.opts.Store.SetMailboxStatusFenced(ctx, f, st)
	} else {
		err = r.opts.Store.SetMailboxStatus(ctx, id, st)
	}
	if errors.Is(err, store.ErrLeaseLost) {
		r.log.Debug("mailbox status not written: the lease moved to another node", slog.Int64("mailbox_id", id))
		return err
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("cannot record mailbox status", slog.Int64("mailbox_id", id), slog.Any("error", err))
	}
	return nil
}
