// Package wakeup carries "something changed" signals between the parts of postroom and,
// on PostgreSQL, between its nodes, so that the outbox sender, the routing engine, the
// live views and a mailbox's ingest loop look at the database at once instead of at
// their next timer.
//
// A signal is a topic (a short lower-case word such as "outbox") and an id (a mailbox's,
// an agent's; 0 for "any"). It says only that something may have changed: whoever wakes
// reads the truth from the database, so a signal lost or doubled costs time, never data.
// A subscriber gets a channel with room for one wake-up: signals that come while it is
// busy are coalesced into one.
//
// NewLocal makes a bus for one process (SQLite: one node). NewPostgres makes one that also
// sends each signal with NOTIFY on one channel of the database and LISTENs on it with a
// connection of its own, which it reconnects when it is lost; since notifications sent
// meanwhile are lost with it, every subscriber is woken once the listener is back
// ("wake everything"), so nobody misses a change. A node ignores its own notifications:
// it has woken its subscribers already when it published.
package wakeup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the PostgreSQL notification channel of the bus.
const Channel = "postroom_wakeup"

// ListenerName is the application_name of the listening connection (pg_stat_activity).
const ListenerName = "postroom wake-ups"

// Topics used by postroom.
const (
	// Outbox: a reply, forward or new email was queued (id 0).
	Outbox = "outbox"
	// Work: work items were stored or changed, or an agent changed: routing engines look
	// for work, and live views refresh (id: the agent for an agent change, else 0).
	Work = "work"
	// Agent: an agent's status or profile changed (id: the agent's user id).
	Agent = "agent"
	// View: something the live views show changed, without new work for routing (an offer
	// made or accepted; id 0).
	View = "view"
	// Mailbox: a mailbox may have new mail (a Graph change notification): the node that
	// runs its ingest loop reads it now (id: the mailbox).
	Mailbox = "mailbox"
	// GraphReauthorize and GraphRemoved carry Microsoft Graph's lifecycle events for a
	// mailbox's subscription to the node that runs the mailbox's loop (id: the mailbox).
	GraphReauthorize = "graph-reauthorize"
	GraphRemoved     = "graph-removed"
)

// topicRe is what a topic may be: it travels in a notification's payload.
var topicRe = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)

// Timings of the PostgreSQL side.
const (
	// probeEvery is how long the listener waits for a notification before it checks
	// that its connection still answers.
	probeEvery = 30 * time.Second
	// opTimeout bounds a connect, LISTEN, probe or NOTIFY.
	opTimeout  = 10 * time.Second
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Bus delivers signals to subscribers. Its methods are safe for concurrent use.
type Bus struct {
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}

	// PostgreSQL side (nil pg: local only).
	pg *pgSide
}

type pgSide struct {
	cfg    *pgx.ConnConfig
	log    *slog.Logger
	origin string // this bus's mark in its payloads

	mu      sync.Mutex
	pending map[signal]struct{}
	kick    chan struct{}

	listening chan struct{} // closed once LISTEN first succeeded
	once      sync.Once
	// losses counts the listener's lost connections (tests).
	lossesMu sync.Mutex
	losses   int
}

type signal struct {
	topic string
	id    int64
}

// Subscription is one subscriber's wake-ups.
type Subscription struct {
	bus   *Bus
	topic string
	id    int64
	ch    chan struct{}
}

// C is ready when the subscriber should look again; one value stands for every signal
// since the last receive.
func (s *Subscription) C() <-chan struct{} { return s.ch }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	delete(s.bus.subs[s.topic], s)
}

// NewLocal returns a bus for one process.
func NewLocal() *Bus { return &Bus{subs: map[string]map[*Subscription]struct{}{}} }

// NewPostgres returns a bus that also reaches the other nodes on the PostgreSQL database
// at url. It makes no connection: Run listens and sends.
func NewPostgres(url string, log *slog.Logger) (*Bus, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("wakeup: invalid database URL: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	b := NewLocal()
	b.pg = &pgSide{cfg: cfg, log: log, origin: randomOrigin(), pending: map[signal]struct{}{},
		kick: make(chan struct{}, 1), listening: make(chan struct{})}
	return b, nil
}

// Subscribe returns the wake-ups of topic for id (0: every id). A signal for id 0 or a
// wake-everything wakes every subscriber of the topic.
func (b *Bus) Subscribe(topic string, id int64) *Subscription {
	s := &Subscription{bus: b, topic: topic, id: id, ch: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.subs[topic]
	if m == nil {
		m = map[*Subscription]struct{}{}
		b.subs[topic] = m
	}
	m[s] = struct{}{}
	return s
}

// Publish wakes the subscribers of topic for id in this process at once and, on
// PostgreSQL, those of the other nodes soon after (signals are sent in small batches; a
// burst of the same signal is sent once). It never blocks on the database.
func (b *Bus) Publish(topic string, id int64) {
	if !topicRe.MatchString(topic) {
		panic("wakeup: invalid topic " + strconv.Quote(topic))
	}
	b.deliver(topic, id)
	if b.pg == nil {
		return
	}
	b.pg.mu.Lock()
	b.pg.pending[signal{topic, id}] = struct{}{}
	b.pg.mu.Unlock()
	select {
	case b.pg.kick <- struct{}{}:
	default:
	}
}

// deliver wakes the local subscribers of topic for id.
func (b *Bus) deliver(topic string, id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[topic] {
		if id == 0 || s.id == 0 || s.id == id {
			s.wake()
		}
	}
}

// wakeAll wakes every local subscriber.
func (b *Bus) wakeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.subs {
		for s := range m {
			s.wake()
		}
	}
}

func (s *Subscription) wake() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// Listening is closed once the bus receives the other nodes' signals: at once for a
// local bus, after the first LISTEN on PostgreSQL.
func (b *Bus) Listening() <-chan struct{} {
	if b.pg == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return b.pg.listening
}

// Run listens for and sends the other nodes' signals until ctx is done (a local bus just
// waits for ctx).
func (b *Bus) Run(ctx context.Context) {
	if b.pg == nil {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { b.listen(ctx) })
	wg.Go(func() { b.send(ctx) })
	wg.Wait()
}

// losses is how many times the listener lost its connection.
func (b *Bus) losses() int {
	b.pg.lossesMu.Lock()
	defer b.pg.lossesMu.Unlock()
	return b.pg.losses
}

// listen keeps a LISTEN connection and delivers what comes; after a lost connection it
// wakes everything.
func (b *Bus) listen(ctx context.Context) {
	p := b.pg
	backoff := minBackoff
	lost := false
	for ctx.Err() == nil {
		conn, err := b.connectListen(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("wake-ups: cannot listen on PostgreSQL; other nodes' changes are seen at the next timer until it works",
				slog.Any("error", err), slog.Duration("retry_in", backoff))
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
		p.once.Do(func() { close(p.listening) })
		if lost {
			// What other nodes sent while the connection was down is lost: everybody looks.
			b.wakeAll()
			p.log.Info("wake-ups: listening on PostgreSQL again")
		}
		err = b.receive(ctx, conn)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		_ = conn.Close(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		lost = true
		p.lossesMu.Lock()
		p.losses++
		p.lossesMu.Unlock()
		p.log.Warn("wake-ups: the listening connection to PostgreSQL was lost; reconnecting", slog.Any("error", err))
		b.wakeAll()
	}
}

func (b *Bus) connectListen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	cfg := b.pg.cfg.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+Channel); err != nil {
		_ = conn.Close(cctx)
		return nil, fmt.Errorf("LISTEN: %w", err)
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx ends.
func (b *Bus) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, probeEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if conn.IsClosed() || !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			// Quiet for a while: prove that the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, opTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			continue
		}
		origin, topic, id, ok := parsePayload(n.Payload)
		if !ok || origin == b.pg.origin {
			continue
		}
		b.deliver(topic, id)
	}
}

// send sends the pending signals with NOTIFY, over a connection of its own.
func (b *Bus) send(ctx context.Context) {
	p := b.pg
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			_ = conn.Close(cctx)
			cancel()
		}
	}()
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			batch := make([]string, 0, len(p.pending))
			taken := make([]signal, 0, len(p.pending))
			for s := range p.pending {
				batch = append(batch, p.origin+" "+s.topic+" "+strconv.FormatInt(s.id, 10))
				taken = append(taken, s)
			}
			clear(p.pending)
			p.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			err := func() error {
				cctx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				if conn == nil || conn.IsClosed() {
					c, err := pgx.ConnectConfig(cctx, p.cfg.Copy())
					if err != nil {
						return fmt.Errorf("connect: %w", err)
					}
					conn = c
				}
				_, err := conn.Exec(cctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", Channel, batch)
				return err
			}()
			if err == nil {
				backoff = minBackoff
				continue
			}
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("wake-ups: cannot notify the other nodes; they see this node's changes at their next timer until it works",
				slog.Any("error", err), slog.Duration("retry_in", backoff))
			if conn != nil {
				cctx, cancel := context.WithTimeout(ctx, opTimeout)
				_ = conn.Close(cctx)
				cancel()
				conn = nil
			}
			p.mu.Lock()
			for _, s := range taken {
				p.pending[s] = struct{}{}
			}
			p.mu.Unlock()
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// parsePayload reads "origin topic id".
func parsePayload(s string) (origin, topic string, id int64, ok bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 3 || !topicRe.MatchString(parts[1]) {
		return "", "", 0, false
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return parts[0], parts[1], id, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
