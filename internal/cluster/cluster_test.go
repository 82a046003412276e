package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

const lease = 3 * time.Second

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// failing is the real store whose lease rounds fail while fail is set (the database
// unreachable from this node).
type failing struct {
	store.Store
	fail atomic.Bool
}

func (f *failing) BalanceLeases(ctx context.Context, r store.BalanceRequest) ([]store.Lease, error) {
	if f.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.BalanceLeases(ctx, r)
}

// run starts c until the test ends; stop cancels it and waits.
func run(t *testing.T, c *cluster.Cluster) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx, nil) })
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

func newCluster(t *testing.T, st store.Cluster, name string, boxes []int64) *cluster.Cluster {
	t.Helper()
	return newClusterWith(t, st, name, boxes, nil)
}

func newClusterWith(t *testing.T, st store.Cluster, name string, boxes []int64, reg *metrics.Registry) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cluster.Options{Store: st, Name: name, LeaseTime: lease, SingleNode: true, Logger: slog.New(slog.DiscardHandler), Metrics: reg,
		Mailboxes: func(context.Context) ([]int64, error) { return boxes, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSingleNode: on SQLite the one node holds every lease at once, also those an
// earlier process (killed, another node id) left unexpired, and is ready; at a stop it
// hands them all back.
func TestSingleNode(t *testing.T) {
	st := openSQLite(t)
	boxes := []int64{1, 2, 3}
	now := time.Now()
	old := store.Node{ID: "old/dead", Name: "old", Instance: "dead", StartedAt: now, HeartbeatAt: now}
	if err := st.NodeHeartbeat(t.Context(), old, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.BalanceLeases(t.Context(), store.BalanceRequest{NodeID: old.ID, Mailboxes: boxes, Now: now, TTL: time.Hour, LiveSince: now}); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, st, "solo", boxes)
	if c.Ready() {
		t.Error("Ready before the first round")
	}
	stop := run(t, c)
	waitFor(t, "the node to hold every lease", time.Second, func() bool { return len(c.Held()) == 3 })
	if !c.Ready() {
		t.Error("not Ready while holding its leases")
	}
	for id, g := range c.Held() {
		if g.Fence.NodeID != c.NodeID() || g.Fence.Generation != 2 {
			t.Errorf("lease of mailbox %d: %+v, want this node's, generation 2 (taken from the dead process)", id, g.Fence)
		}
	}
	held := c.Held()
	stop()
	for id, g := range held {
		select {
		case <-g.Done:
		default:
			t.Errorf("mailbox %d: lease still open after the stop", id)
		}
	}
	leases, err := st.ListLeases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 0 {
		t.Errorf("leases after the stop: %+v, want none held", leases)
	}
	if c.Ready() {
		t.Error("Ready after the stop")
	}
}

// TestRenewalFails: when the node cannot renew, each lease's Done closes a margin before
// the lease expires in the database, and the node is no longer ready; once the database
// answers again it takes the leases back.
func TestRenewalFails(t *testing.T) {
	st := &failing{Store: openSQLite(t)}
	c := newCluster(t, st, "solo", []int64{1})
	run(t, c)
	waitFor(t, "the lease", time.Second, func() bool { return len(c.Held()) == 1 })
	g := c.Held()[1]
	leases, err := st.ListLeases(t.Context())
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %v %v", leases, err)
	}
	st.fail.Store(true)
	select {
	case <-g.Done:
	case <-time.After(2 * lease):
		t.Fatal("the lease stayed open though it could not be renewed")
	}
	// Each round renews; the last one before the failure at most a round later than the
	// listing, so the loop stopped before expires_at + one round.
	if late := time.Since(leases[0].ExpiresAt); late > c.RenewEvery() {
		t.Errorf("the lease closed %v after it expired in the database; it must close before", late)
	}
	if c.Ready() {
		t.Error("Ready while the database does not answer")
	}
	st.fail.Store(false)
	waitFor(t, "the lease taken again", 2*lease, func() bool { return len(c.Held()) == 1 })
	// Taken again with a new generation once it expired in the database; a round that
	// comes before (the local expiry is a margin earlier) renews the same generation, which
	// nobody else could take meanwhile, and the ingest runner starts the new loop only
	// after the old one ended.
	again := c.Held()[1]
	leases, err = st.ListLeases(t.Context())
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %v %v", leases, err)
	}
	if leases[0].Generation != again.Fence.Generation || leases[0].NodeID != c.NodeID() {
		t.Errorf("the node holds generation %d, the database says %+v", again.Fence.Generation, leases[0])
	}
	if again.Fence.Generation < g.Fence.Generation {
		t.Errorf("retaken lease generation %d, below the first %d", again.Fence.Generation, g.Fence.Generation)
	}
}

// TestLost: a write refused with the lease's fence drops the lease at once.
func TestLost(t *testing.T) {
	st := openSQLite(t)
	c := newCluster(t, st, "solo", []int64{1})
	run(t, c)
	waitFor(t, "the lease", time.Second, func() bool { return len(c.Held()) == 1 })
	g := c.Held()[1]
	c.Lost(store.Fence{MailboxID: 1, NodeID: c.NodeID(), Generation: g.Fence.Generation + 7}) // another holding: ignored
	if len(c.Held()) != 1 {
		t.Fatal("a refused write of another holding dropped the lease")
	}
	c.Lost(g.Fence)
	select {
	case <-g.Done:
	default:
		t.Fatal("Lost did not close the lease")
	}
}

// TestMetrics: /metrics shows each node's leases and heartbeat age.
func TestMetrics(t *testing.T) {
	st := openSQLite(t)
	reg := metrics.New()
	c := newClusterWith(t, st, "solo", []int64{1, 2}, reg)
	run(t, c)
	// The round sets the two gauges one after the other: a scrape in between may see the
	// leases without the age, so both are waited for.
	want := []string{`postroom_cluster_leases_held{node="` + c.NodeID() + `"} 2`,
		`postroom_cluster_heartbeat_age_seconds{node="` + c.NodeID() + `"}`}
	waitFor(t, "the node's leases and heartbeat age in the metrics", 2*lease, func() bool {
		var b strings.Builder
		if err := reg.WriteText(t.Context(), &b); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(b.String(), want[0]) && strings.Contains(b.String(), want[1])
	})
}
