// Package cluster lets several postroom nodes share one PostgreSQL database: node
// liveness (a heartbeat row per process in cluster_nodes) and mailbox leases
// (mailbox_leases), so that each enabled inbound mailbox is ingested by exactly one node
// at a time.
//
// A node is a process: its id is "<name>/<instance>", the name from POSTROOM_NODE_NAME or
// the data folder's node-id file, the instance random at each start. Every sixth of the
// lease time (RenewEvery) a node writes its heartbeat and runs one round of
// store.Cluster.BalanceLeases: it renews its leases, gives up those above its fair share
// (ceil(mailboxes / live nodes), so a new node gets its share within a round or two), and
// takes free or expired ones with FOR UPDATE SKIP LOCKED, each take incrementing the
// lease's generation. At a graceful stop, once the ingest loops have stopped, it frees all
// its leases at once: the others take them at their next round. A killed node's leases
// expire after LeaseTime, and so does its heartbeat, and the others share its mailboxes.
//
// Invariants a change must keep:
//
//  1. A lease is used only while it can be proven: a mailbox's ingest loop runs under the
//     Grant's Done channel, which closes when a round no longer returns the lease, or when
//     the lease's local validity (the start of the last successful round + LeaseTime -
//     Margin, by this process's monotonic clock) has passed without a renewal. The loop
//     stops then, a margin before the lease expires in the database.
//  2. Fencing: every cursor, acknowledgement, ingest and status write of the loop carries
//     the Grant's store.Fence, checked in the write's transaction; a paused process that
//     wakes up after another node took the lease gets store.ErrLeaseLost and writes
//     nothing. Safety rests on the fence, not on clocks; clocks (NTP-synchronised nodes)
//     only decide how soon a dead node's mailboxes move.
//  3. On SQLite (one node) the same code runs with one live node, which holds every lease;
//     at start it frees the leases of every other node id (an earlier process).
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
)

// DefaultLeaseTime is the lease time when Options.LeaseTime is 0: renewed every second, it
// survives several failed renewals, and a killed node's mailboxes move within about 7 s
// (lease expiry plus the next round of another node), inside the 10 s goal.
const DefaultLeaseTime = 6 * time.Second

// forgetAfter is how long a dead node stays listed (the Nodes page) before its row is
// deleted.
const forgetAfter = 24 * time.Hour

// releaseTimeout bounds the graceful release of the leases at a stop.
const releaseTimeout = 5 * time.Second

// Options configure a Cluster.
type Options struct {
	Store store.Cluster
	// Name is the node's name; Instance the process's random id ("": made at New).
	Name     string
	Instance string
	// LeaseTime is how long a lease lasts without renewal (0: DefaultLeaseTime).
	LeaseTime time.Duration
	// SingleNode says the database serves one node only (SQLite): every other node id's
	// leases are freed at start.
	SingleNode bool
	// Mailboxes lists the mailboxes that need a holder (the enabled inbound ones).
	Mailboxes func(ctx context.Context) ([]int64, error)
	Logger    *slog.Logger
	// Metrics receives postroom_cluster_leases_held{node} and
	// postroom_cluster_heartbeat_age_seconds{node} (nil: none).
	Metrics *metrics.Registry
}

// Grant is a lease this node holds: its fence, and a channel closed when the lease can
// no longer be proven (invariant 1).
type Grant struct {
	Fence store.Fence
	Done  <-chan struct{}
}

type held struct {
	fence  store.Fence
	valid  time.Time // local: writes may be tried until then
	done   chan struct{}
	closed bool
}

// Cluster is one node's membership: its heartbeat and its leases.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	self   store.Node
	ttl    time.Duration
	margin time.Duration
	met    clusterMetrics

	mu      sync.Mutex
	started bool // the first heartbeat and the predecessors' release are done
	held    map[int64]*held
	lastOK  time.Time // local time of the last successful round
	frozen  bool
	changed chan struct{}
}

// New returns the node's Cluster. It does no I/O: see Run.
func New(opts Options) (*Cluster, error) {
	if opts.Store == nil || opts.Mailboxes == nil {
		return nil, errors.New("cluster: no store or mailbox list")
	}
	if opts.Name == "" || strings.Contains(opts.Name, "/") {
		return nil, fmt.Errorf("cluster: node name %q: give a name without '/' (POSTROOM_NODE_NAME, or the data folder's node-id file)", opts.Name)
	}
	if opts.Instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.Instance = hex.EncodeToString(b[:])
	}
	if opts.LeaseTime <= 0 {
		opts.LeaseTime = DefaultLeaseTime
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := time.Now()
	c := &Cluster{
		opts:    opts,
		ttl:     opts.LeaseTime,
		margin:  opts.LeaseTime / 6,
		self:    store.Node{ID: opts.Name + "/" + opts.Instance, Name: opts.Name, Instance: opts.Instance, StartedAt: now},
		held:    map[int64]*held{},
		changed: make(chan struct{}, 1),
		met:     newClusterMetrics(opts.Metrics),
	}
	c.log = log.With(slog.String("node", c.self.ID))
	return c, nil
}

// NodeID is this process's node id, "<name>/<instance>".
func (c *Cluster) NodeID() string { return c.self.ID }

// Name is the node's name.
func (c *Cluster) Name() string { return c.self.Name }

// LeaseTime is the lease time in use.
func (c *Cluster) LeaseTime() time.Duration { return c.ttl }

// RenewEvery is the time between two rounds: a sixth of the lease time, so that a dead
// node's mailboxes are taken at most that long after its leases expire (the takeover
// goal is 10 s), and five renewals in a row may fail before the loops stop.
func (c *Cluster) RenewEvery() time.Duration { return c.ttl / 6 }

// Ready reports whether the node holds or may take leases: its last round with the
// database succeeded recently enough that the leases it returned are still valid (the
// lease time less the margin), and it is not stopping. For /readyz.
func (c *Cluster) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastOK.IsZero() && time.Since(c.lastOK) < c.ttl-c.margin && !c.self.Stopping
}

// Held returns the leases this node holds now, by mailbox, each with its fence and Done
// channel (closed ones left out).
func (c *Cluster) Held() map[int64]Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]Grant, len(c.held))
	for id, h := range c.held {
		if !h.closed {
			out[id] = Grant{Fence: h.fence, Done: h.done}
		}
	}
	return out
}

// Changed receives a value after a round that took, lost or gave up a lease.
func (c *Cluster) Changed() <-chan struct{} { return c.changed }

// Lost tells the cluster that a write with f was refused (store.ErrLeaseLost): the lease
// is dropped at once, not at the next round.
func (c *Cluster) Lost(f store.Fence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.held[f.MailboxID]; h != nil && h.fence == f {
		c.closeLocked(f.MailboxID, h)
	}
}

// Freeze stops this node's rounds and its local expiry watch, as a SIGSTOP would, while
// its ingest loops go on: tests use it to prove that fencing alone stops a node that lost
// its leases while it was paused from writing.
func (c *Cluster) Freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

func (c *Cluster) isFrozen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frozen
}

func (c *Cluster) closeLocked(id int64, h *held) {
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	delete(c.held, id)
	c.signal()
}

func (c *Cluster) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Run keeps the node's heartbeat and leases until ctx is done; then it waits for idle to
// close (the ingest loops have stopped; nil: no wait) and frees every lease at once, so
// that the other nodes take them at their next round.
func (c *Cluster) Run(ctx context.Context, idle <-chan struct{}) error {
	c.log.Info("cluster: node running", slog.String("name", c.self.Name), slog.Duration("lease_time", c.ttl),
		slog.Duration("renew_every", c.RenewEvery()))
	renew := time.NewTicker(c.RenewEvery())
	defer renew.Stop()
	watch := time.NewTicker(max(c.margin/4, 50*time.Millisecond))
	defer watch.Stop()
	c.round(ctx)
	for {
		select {
		case <-ctx.Done():
			c.stop(ctx, idle)
			return nil
		case <-renew.C:
			c.round(ctx)
		case <-watch.C:
			c.expire()
		}
	}
}

// start writes the first heartbeat and frees the leases of the node's earlier processes
// (all other nodes' on SQLite).
func (c *Cluster) start(ctx context.Context) error {
	now := time.Now()
	node := c.self
	node.HeartbeatAt = now
	if err := c.opts.Store.NodeHeartbeat(ctx, node, now.Add(-forgetAfter)); err != nil {
		return fmt.Errorf("write the node's first heartbeat: %w", err)
	}
	n, err := c.opts.Store.ReleasePredecessors(ctx, node, c.opts.SingleNode, now)
	if err != nil {
		return fmt.Errorf("free the leases of this node's earlier processes: %w", err)
	}
	if n > 0 {
		c.log.Info("cluster: freed the leases of this node's earlier processes", slog.Int("leases", n))
	}
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	return nil
}

// round writes the heartbeat and balances the leases once.
func (c *Cluster) round(ctx context.Context) {
	if c.isFrozen() || ctx.Err() != nil {
		return
	}
	start := time.Now() // the validity is counted from before the call: conservative
	if err := c.roundErr(ctx, start); err != nil && ctx.Err() == nil {
		c.log.Warn("cluster: lease round failed; the leases stay valid until their local expiry", slog.Any("error", err))
	}
	// Two renewal periods: a third of the lease time gone in one round puts the leases at
	// risk (their local expiry comes a sixth before the lease's).
	if took := time.Since(start); took > 2*c.RenewEvery() {
		c.log.Warn("cluster: a lease round took longer than two renewal periods; the database is slow or a lease row was locked",
			slog.Duration("took", took), slog.Duration("renew_every", c.RenewEvery()))
	}
}

func (c *Cluster) roundErr(ctx context.Context, start time.Time) error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		if err := c.start(ctx); err != nil {
			return err
		}
	}
	boxes, err := c.opts.Mailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list the mailboxes: %w", err)
	}
	c.mu.Lock()
	node := c.self
	c.mu.Unlock()
	node.HeartbeatAt = start
	if err := c.opts.Store.NodeHeartbeat(ctx, node, start.Add(-forgetAfter)); err != nil {
		return err
	}
	leases, err := c.opts.Store.BalanceLeases(ctx, store.BalanceRequest{
		NodeID: c.self.ID, Mailboxes: boxes, Now: start, TTL: c.ttl, LiveSince: start.Add(-c.ttl),
	})
	if err != nil {
		return err
	}
	c.apply(start, leases)
	c.met.update(ctx, c.opts.Store, c.log)
	return nil
}

// apply makes the held set the round's result.
func (c *Cluster) apply(start time.Time, leases []store.Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return
	}
	c.lastOK = start
	valid := start.Add(c.ttl - c.margin)
	seen := map[int64]bool{}
	changed := false
	for _, l := range leases {
		seen[l.MailboxID] = true
		f := l.Fence()
		h := c.held[l.MailboxID]
		if h != nil && h.fence == f {
			h.valid = valid
			continue
		}
		if h != nil { // taken again with a new generation: the old loop stops
			c.closeLocked(l.MailboxID, h)
		}
		c.held[l.MailboxID] = &held{fence: f, valid: valid, done: make(chan struct{})}
		changed = true
	}
	for id, h := range c.held {
		if !seen[id] {
			c.log.Info("cluster: lease no longer held by this node (handed over, mailbox disabled, or taken by another node); the mailbox's ingest stops",
				slog.Int64("mailbox_id", id), slog.Int64("generation", h.fence.Generation))
			c.closeLocked(id, h)
		}
	}
	if changed {
		c.signal()
	}
}

// expire closes the leases whose local validity passed (invariant 1).
func (c *Cluster) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return
	}
	now := time.Now()
	for id, h := range c.held {
		if !now.Before(h.valid) {
			c.log.Warn("cluster: lease not renewed in time; the mailbox's ingest stops until it is taken again",
				slog.Int64("mailbox_id", id), slog.Int64("generation", h.fence.Generation))
			c.closeLocked(id, h)
		}
	}
}

// stop waits for the ingest loops to stop, then frees every lease and marks the node
// stopping.
func (c *Cluster) stop(ctx context.Context, idle <-chan struct{}) {
	if idle != nil {
		select {
		case <-idle:
		case <-time.After(c.ttl):
		}
	}
	c.mu.Lock()
	c.self.Stopping = true
	for id, h := range c.held {
		c.closeLocked(id, h)
	}
	frozen := c.frozen
	c.mu.Unlock()
	if frozen {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	n, err := c.opts.Store.ReleaseLeases(rctx, c.self.ID, time.Now())
	if err != nil {
		c.log.Warn("cluster: cannot hand the leases over; the other nodes take them when they expire", slog.Any("error", err))
		return
	}
	c.log.Info("cluster: leases handed over", slog.Int("leases", n))
}
