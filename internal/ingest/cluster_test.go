package ingest

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// clusterLease is the lease time of the cluster tests: short, so that takeovers happen
// within seconds.
const clusterLease = 3 * time.Second

// node is one in-process postroom node of the cluster tests: its own store connection,
// cluster membership and ingest runner on the shared PostgreSQL database.
type node struct {
	name    string
	st      store.Store
	cl      *cluster.Cluster
	runner  *Runner
	cancel  context.CancelFunc
	done    chan struct{}
	commits atomic.Int64 // messages this node committed (AfterCommit)
}

// loops lists the mailboxes whose ingest loops run on the node now.
func (n *node) loops() []int64 {
	n.runner.mu.Lock()
	defer n.runner.mu.Unlock()
	var ids []int64
	for id, l := range n.runner.running {
		select {
		case <-l.done:
		default:
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

type clusterEnv struct {
	t     *testing.T
	d     *testenv.Dovecot
	dbURL string
	admin store.Store
	roots *x509.CertPool
	user  string
	boxes []store.Mailbox
}

func newClusterEnv(t *testing.T, mailboxes int) *clusterEnv {
	t.Helper()
	d := testenv.StartDovecot(t, nil)
	e := &clusterEnv{t: t, d: d, dbURL: testenv.Postgres(t), user: "support@example.test"}
	d.AddUser(t, e.user, "support-pw")
	e.admin = e.open()
	if err := e.admin.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	if !e.roots.AppendCertsFromPEM(d.CertPEM) {
		t.Fatal("dovecot certificate is not PEM")
	}
	host, p, _ := net.SplitHostPort(d.IMAPSAddr)
	port, _ := strconv.Atoi(p)
	pw := credential.NewPasswords(e.admin, e.vault())
	for i := range mailboxes {
		folder := fmt.Sprintf("box%d", i)
		d.Append(t, e.user, folder, orderMail(i*1000))
		m, err := e.admin.CreateMailbox(t.Context(), store.Mailbox{
			Name: folder, Direction: store.Inbound, Protocol: "imap", Address: e.user,
			Host: host, Port: port, Security: "tls", Login: e.user, Folder: folder,
			AfterAction: store.AfterMarkRead, MaxSizeMB: 50, PollInterval: time.Second, Enabled: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pw.Set(t.Context(), m.ID, vault.NewSecret("support-pw")); err != nil {
			t.Fatal(err)
		}
		e.boxes = append(e.boxes, m)
	}
	return e
}

func (e *clusterEnv) open() store.Store {
	e.t.Helper()
	st, err := postgres.Open(e.t.Context(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func (e *clusterEnv) vault() *vault.Vault {
	v, err := vault.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// start runs a node until it is stopped or the test ends.
func (e *clusterEnv) start(name string) *node {
	e.t.Helper()
	n := &node{name: name, st: e.open(), done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(testLog{e.t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With(slog.String("test_node", name))
	cl, err := cluster.New(cluster.Options{Store: n.st, Name: name, LeaseTime: clusterLease, Logger: log,
		Mailboxes: func(ctx context.Context) ([]int64, error) {
			boxes, err := n.st.ListMailboxes(ctx)
			var ids []int64
			for _, m := range boxes {
				if Watched(m) {
					ids = append(ids, m.ID)
				}
			}
			return ids, err
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	n.cl = cl
	n.runner = NewRunner(Options{Store: n.st, Passwords: credential.NewPasswords(n.st, e.vault()), RootCAs: e.roots,
		ReloadInterval: 200 * time.Millisecond, Logger: log, Leases: cl,
		AfterCommit: func(int64, string) error { n.commits.Add(1); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	idle := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { defer close(idle); _ = n.runner.Run(ctx) })
	wg.Go(func() { _ = cl.Run(ctx, idle) })
	go func() { wg.Wait(); close(n.done) }()
	e.t.Cleanup(func() { cancel(); <-n.done })
	return n
}

// holders reads the unexpired leases from the database: mailbox -> node id.
func (e *clusterEnv) holders() map[int64]string {
	e.t.Helper()
	leases, err := e.admin.ListLeases(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]string{}
	now := time.Now()
	for _, l := range leases {
		if l.ExpiresAt.After(now) {
			out[l.MailboxID] = l.NodeID
		}
	}
	return out
}

// stored counts the stored messages of every mailbox.
func (e *clusterEnv) stored() int {
	n, err := e.admin.CountMessages(e.t.Context(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestClusterShareHandoverFencing runs two, then three in-process nodes on one PostgreSQL
// database against real Dovecot: each mailbox is read by exactly one node and the nodes
// share them evenly; a node that stops hands its mailboxes over at once; a node paused
// past its leases (its renewals stopped while its loops go on) writes nothing after
// another node took them, and its loops stop.
func TestClusterShareHandoverFencing(t *testing.T) {
	const boxes = 6
	e := newClusterEnv(t, boxes)
	a, b := e.start("a"), e.start("b")

	// Shared: each mailbox has one holder, each node runs the loops of its leases only.
	waitFor(t, "the two nodes to share the mailboxes", func() (bool, string) {
		la, lb := a.loops(), b.loops()
		h := e.holders()
		state := fmt.Sprintf("a runs %v, b runs %v, leases %v", la, lb, h)
		if len(la) != boxes/2 || len(lb) != boxes/2 || len(h) != boxes {
			return false, state
		}
		for _, id := range la {
			if h[id] != a.cl.NodeID() || slices.Contains(lb, id) {
				return false, state
			}
		}
		for _, id := range lb {
			if h[id] != b.cl.NodeID() {
				return false, state
			}
		}
		return true, state
	})
	waitFor(t, "the first messages stored", func() (bool, string) {
		n := e.stored()
		return n == boxes, fmt.Sprintf("%d stored", n)
	})
	if got := a.commits.Load() + b.commits.Load(); got != boxes {
		t.Errorf("the nodes committed %d messages for %d: a message was stored by both", got, boxes)
	}

	// a stops: it hands its leases over at once, well before they would expire.
	aHad := a.loops()
	stopped := time.Now()
	a.stop()
	waitFor(t, "b to take a's mailboxes", func() (bool, string) {
		lb := b.loops()
		return len(lb) == boxes, fmt.Sprintf("b runs %v", lb)
	})
	if took := time.Since(stopped); took > clusterLease {
		t.Errorf("handover took %v, longer than the lease (%v): the leases expired instead of being released", took, clusterLease)
	}
	for _, id := range aHad {
		e.d.Append(t, e.user, e.boxes[id-e.boxes[0].ID].Folder, orderMail(int(id)*1000+1))
	}
	waitFor(t, "b to read a's mailboxes", func() (bool, string) {
		n := e.stored()
		return n == boxes+len(aHad), fmt.Sprintf("%d stored", n)
	})

	// c joins and gets its share: b gives up its surplus at its next round.
	c := e.start("c")
	waitFor(t, "b and c to share the mailboxes", func() (bool, string) {
		lb, lc := b.loops(), c.loops()
		return len(lb) == boxes/2 && len(lc) == boxes/2, fmt.Sprintf("b runs %v, c runs %v", lb, lc)
	})

	// c pauses: its renewals and local expiry stop, its loops go on. b takes its
	// mailboxes once the leases expire.
	cHad := c.loops()
	c.cl.Freeze()
	waitFor(t, "b to take the paused node's mailboxes", func() (bool, string) {
		h := e.holders()
		for _, id := range cHad {
			if h[id] != b.cl.NodeID() {
				return false, fmt.Sprintf("leases %v", h)
			}
		}
		return true, ""
	})
	before := c.commits.Load()
	storedBefore := e.stored()
	for _, id := range cHad {
		e.d.Append(t, e.user, e.boxes[id-e.boxes[0].ID].Folder, orderMail(int(id)*1000+2))
	}
	waitFor(t, "the new messages stored", func() (bool, string) {
		n := e.stored()
		return n == storedBefore+len(cHad), fmt.Sprintf("%d stored, want %d", n, storedBefore+len(cHad))
	})
	// The paused node's loops learn it at their next write (a message, or the status after
	// the poll) and stop, having written nothing.
	waitFor(t, "the paused node's loops to stop", func() (bool, string) {
		lc := c.loops()
		return len(lc) == 0, fmt.Sprintf("c runs %v", lc)
	})
	if got := c.commits.Load() - before; got != 0 {
		t.Errorf("the paused node committed %d messages after its leases were taken", got)
	}
	if n := e.stored(); n != storedBefore+len(cHad) {
		t.Errorf("%d messages stored, want %d: one was stored twice", n, storedBefore+len(cHad))
	}
	for _, m := range e.boxes {
		got, err := e.admin.Mailbox(t.Context(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusConnected {
			t.Errorf("mailbox %s status %q (%s), want connected: a node that lost the lease wrote it", m.Name, got.Status, got.StatusMessage)
		}
	}
}

// oneLease is the lease part of a cluster node for one mailbox, with the real store
// behind it: the grant made at the start, and the fences reported lost.
type oneLease struct {
	grant cluster.Grant
	mu    sync.Mutex
	lost  []store.Fence
}

func (l *oneLease) Held() map[int64]cluster.Grant {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lost) > 0 {
		return map[int64]cluster.Grant{}
	}
	return map[int64]cluster.Grant{l.grant.Fence.MailboxID: l.grant}
}
func (l *oneLease) Changed() <-chan struct{} { return nil }
func (l *oneLease) Lost(f store.Fence) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = append(l.lost, f)
}

// TestLeaseLostWhileStoring: the lease moves to another node while a batch is being
// stored (after the session started and wrote its status): the batch's transaction is
// refused, nothing is stored, the message is not counted as a failure (it is the other
// node's now, not a poison message), it is not acknowledged at the server, and the loop
// stops and reports the lease lost.
func TestLeaseLostWhileStoring(t *testing.T) {
	e := newTestEnv(t)
	m := e.mailbox("support", "INBOX", e.password)
	for i := range 3 {
		e.d.Append(t, e.user, "INBOX", orderMail(i))
	}
	ctx := t.Context()
	now := time.Now()
	mine := store.Node{ID: "a/1", Name: "a", Instance: "1", StartedAt: now, HeartbeatAt: now}
	thief := store.Node{ID: "b/1", Name: "b", Instance: "1", StartedAt: now, HeartbeatAt: now}
	for _, n := range []store.Node{mine, thief} {
		if err := e.st.NodeHeartbeat(ctx, n, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	held, err := e.st.BalanceLeases(ctx, store.BalanceRequest{NodeID: mine.ID, Mailboxes: []int64{m.ID}, Now: now, TTL: time.Hour, LiveSince: now})
	if err != nil || len(held) != 1 {
		t.Fatalf("lease: %v %v", held, err)
	}
	leases := &oneLease{grant: cluster.Grant{Fence: held[0].Fence(), Done: make(chan struct{})}}
	var stolen atomic.Bool
	var first atomic.Value
	e.run(Options{Leases: leases, beforeStore: func(in connector.Incoming) error {
		if stolen.CompareAndSwap(false, true) { // the first message: another node takes over
			first.Store(in.SourceID)
			if _, err := e.st.ReleaseLeases(ctx, mine.ID, time.Now()); err != nil {
				return err
			}
			if _, err := e.st.BalanceLeases(ctx, store.BalanceRequest{NodeID: thief.ID, Mailboxes: []int64{m.ID}, Now: time.Now(), TTL: time.Hour, LiveSince: now}); err != nil {
				return err
			}
		}
		return nil
	}})
	waitFor(t, "the loop to report the lease lost", func() (bool, string) {
		leases.mu.Lock()
		defer leases.mu.Unlock()
		return len(leases.lost) == 1, fmt.Sprintf("lost %v", leases.lost)
	})
	if got := leases.lost[0]; got != held[0].Fence() {
		t.Errorf("lost fence %+v, want %+v", got, held[0].Fence())
	}
	if n := e.count(m.ID); n != 0 {
		t.Errorf("%d messages stored by the node that lost the lease", n)
	}
	if seen, total := e.seen("INBOX"); seen != 0 || total != 3 {
		t.Errorf("%d of %d messages marked read at the server by the node that lost the lease", seen, total)
	}
	// No failure was counted against the message: a failure counted now is its first.
	if tries, err := e.st.RecordIngestFailure(ctx, m.ID, first.Load().(string), "probe"); err != nil || tries != 1 {
		t.Errorf("failure count of %v after the refused batch: %d (%v), want 1: the lost lease was counted as the message's failure", first.Load(), tries, err)
	}
}

// lapsingLease is the lease part of a cluster node for one mailbox whose lease the test
// lets lapse locally and then has renewed under the same generation, as a round does that
// comes before the lease expired in the database.
type lapsingLease struct {
	mu      sync.Mutex
	grant   cluster.Grant
	done    chan struct{} // grant.Done
	changed chan struct{}
}

func (l *lapsingLease) Held() map[int64]cluster.Grant {
	l.mu.Lock()
	defer l.mu.Unlock()
	return map[int64]cluster.Grant{l.grant.Fence.MailboxID: l.grant}
}
func (l *lapsingLease) Changed() <-chan struct{} { return l.changed }
func (l *lapsingLease) Lost(store.Fence)         {}

// lapse closes the grant's Done (the loop stops) and holds the lease again at once under
// the same fence with a new Done, then says the held set changed.
func (l *lapsingLease) lapse() {
	l.mu.Lock()
	close(l.done)
	l.done = make(chan struct{})
	l.grant = cluster.Grant{Fence: l.grant.Fence, Done: l.done}
	l.mu.Unlock()
	l.changed <- struct{}{}
}

// TestLeaseLapsedThenRenewed: a lease that lapsed locally (its loop stops) and is held
// again under the same generation gets a new loop at once, not at the next reload of the
// mailbox list (an hour here): mail that arrives afterwards is ingested.
func TestLeaseLapsedThenRenewed(t *testing.T) {
	e := newTestEnv(t)
	m := e.mailbox("support", "INBOX", e.password)
	ctx := t.Context()
	now := time.Now()
	mine := store.Node{ID: "a/1", Name: "a", Instance: "1", StartedAt: now, HeartbeatAt: now}
	if err := e.st.NodeHeartbeat(ctx, mine, time.Time{}); err != nil {
		t.Fatal(err)
	}
	held, err := e.st.BalanceLeases(ctx, store.BalanceRequest{NodeID: mine.ID, Mailboxes: []int64{m.ID}, Now: now, TTL: time.Hour, LiveSince: now})
	if err != nil || len(held) != 1 {
		t.Fatalf("lease: %v %v", held, err)
	}
	done := make(chan struct{})
	leases := &lapsingLease{grant: cluster.Grant{Fence: held[0].Fence(), Done: done}, done: done, changed: make(chan struct{}, 1)}
	e.run(Options{Leases: leases, ReloadInterval: time.Hour})
	e.d.Append(t, e.user, "INBOX", orderMail(1))
	waitFor(t, "the first message stored", func() (bool, string) {
		n := e.count(m.ID)
		return n == 1, fmt.Sprintf("%d stored", n)
	})
	leases.lapse()
	e.d.Append(t, e.user, "INBOX", orderMail(2))
	waitFor(t, "the message that arrived after the lease was held again stored", func() (bool, string) {
		n := e.count(m.ID)
		return n == 2, fmt.Sprintf("%d stored", n)
	})
}
