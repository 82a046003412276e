package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/bench"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// The cluster tests run three `postroom serve` processes (the binary built from this
// package) on one PostgreSQL database, ingesting inbound IMAP mailboxes of one real Dovecot
// while mail arrives, and check what a user would see: every message stored exactly once,
// never two nodes at a mailbox, a dead or paused node's mailboxes taken over. The processes,
// the database reads and the lease queries are internal/bench's Cluster and ClusterDB, which
// `postroom bench failover` uses too.
//
// Tests that need the leases (mailbox_leases, migration 0018_cluster.sql) skip on a build
// without them; the others run on any build, where every node ingests every mailbox and the
// dedup keys keep the store right.
const (
	// clusterNodes is the three nodes.
	clusterNodes = 3
	// clusterMailboxes and clusterMessages: the 50 mailboxes, with fewer messages
	// than the benchmark's 5,000 to keep the suite's time; -short scales down further.
	clusterMailboxes      = 50
	clusterMessages       = 2000
	clusterShortMailboxes = 10
	clusterShortMessages  = 500
	// clusterLease is the nodes' POSTROOM_LEASE_SECONDS in the kill, pause and restart
	// tests: the smallest allowed, so takeovers come quickly. The one-holder test, which
	// wants no lapse at all, runs with the product's default, clusterDefaultLease: on a
	// loaded 2-core machine a 3 s lease renewed every second sometimes lapses.
	clusterLease        = 3
	clusterDefaultLease = 6
	// clusterRounds deliveries to every mailbox, clusterRoundEvery apart.
	clusterRounds     = 16
	clusterRoundEvery = 400 * time.Millisecond
	// clusterSample is how often the holders and Dovecot's sessions are sampled.
	clusterSample = 150 * time.Millisecond
	// clusterWait bounds each wait for the cluster (settling, takeover, storing everything).
	clusterWait = 90 * time.Second
	// clusterStopGrace is how long a node may take to stop on SIGTERM.
	clusterStopGrace = 30 * time.Second
)

// clusterEnv is one test's Dovecot, database and nodes.
type clusterEnv struct {
	t         *testing.T
	d         *testenv.Dovecot
	c         *bench.Cluster
	db        *bench.ClusterDB
	mailboxes []store.Mailbox
	users     []string // Dovecot user of each mailbox, in the same order
	leases    bool     // the database has mailbox_leases
	messages  int
}

// newClusterEnv starts Dovecot with one user per mailbox, makes a fresh database with the
// mailboxes (enabled) and prepares three nodes; none runs yet. With needLeases it skips the
// test, before building anything, when the database has no lease table.
func newClusterEnv(t *testing.T, needLeases bool, leaseSeconds int) *clusterEnv {
	t.Helper()
	boxes, msgs := clusterMailboxes, clusterMessages
	if testing.Short() {
		boxes, msgs = clusterShortMailboxes, clusterShortMessages
	}
	ctx := context.Background()
	e := &clusterEnv{t: t, d: testenv.StartDovecot(t, nil), messages: msgs}
	dbURL := testenv.Postgres(t)
	host, port := splitAddr(t, e.d.IMAPAddr)
	var specs []bench.IMAPMailbox
	for i := range boxes {
		u := fmt.Sprintf("cluster%02d@example.test", i)
		e.d.AddUser(t, u, "cluster-pw")
		e.users = append(e.users, u)
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, bench.IMAPMailbox{Name: fmt.Sprintf("cluster%02d", i), User: u, Password: "cluster-pw", Host: host, Port: p})
	}
	key := bench.NewSecretKey()
	var err error
	if e.mailboxes, err = bench.PrepareCluster(ctx, dbURL, key, "cluster-admin-pw", specs); err != nil {
		t.Fatal(err)
	}
	if e.db, err = bench.OpenClusterDB(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.db.Close) // after the nodes' cleanup below (last in, first out)
	if e.leases, err = e.db.HasLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if needLeases && !e.leases {
		t.Skip("needs mailbox_leases: this build has no migration 0018_cluster.sql (internal/cluster, issue 13); without leases every node ingests every mailbox")
	}
	bin := buildPostroom(t)
	if e.c, err = bench.NewCluster(bench.ClusterOptions{Binary: bin, Dir: t.TempDir(), DatabaseURL: dbURL, SecretKey: key,
		AdminPassword: "cluster-admin-pw", Nodes: clusterNodes, LeaseSeconds: leaseSeconds}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.c.Close()
		if t.Failed() {
			keep, err := os.MkdirTemp("", "postroom-cluster-logs-")
			for _, n := range e.c.Nodes {
				if err == nil {
					_ = os.WriteFile(filepath.Join(keep, n.Name+".log"), []byte(n.Log()), 0o600)
				}
				t.Logf("log of %s, last lines other than \"message ingested\" (whole logs kept in %s):\n%s", n.Name, keep, lastLines(withoutIngested(n.Log()), 40))
			}
		}
	})
	return e
}

// startAll starts the nodes one after the other and, with leases, waits until every mailbox
// is held by a running node.
func (e *clusterEnv) startAll() {
	e.t.Helper()
	if err := e.c.StartAll(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.waitHeld("every mailbox held after the start", func(map[int64]bench.Lease) bool { return true })
}

// waitHeld waits until every mailbox has a live holder (with leases) and cond holds for the
// holders, and returns them; without leases it waits until every mailbox is connected.
func (e *clusterEnv) waitHeld(what string, cond func(map[int64]bench.Lease) bool) map[int64]bench.Lease {
	e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(clusterWait)
	state := ""
	for {
		if !e.leases {
			n, err := e.db.Connected(ctx)
			if err != nil {
				e.t.Fatal(err)
			}
			if n == len(e.mailboxes) {
				return nil
			}
			state = fmt.Sprintf("%d of %d connected", n, len(e.mailboxes))
		} else {
			live, err := e.db.LiveHolders(ctx, e.c)
			if err != nil {
				e.t.Fatal(err)
			}
			if len(live) == len(e.mailboxes) && cond(live) {
				return live
			}
			state = fmt.Sprintf("%d of %d held by a running node; per node %v", len(live), len(e.mailboxes), perNode(live))
		}
		if time.Now().After(deadline) {
			if act, err := e.db.Activity(ctx); err == nil {
				e.t.Logf("the database's sessions now:\n%s", strings.Join(act, "\n"))
			}
			e.t.Fatalf("%s: not within %s: %s", what, clusterWait, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitShared waits until every node holds about its share of the mailboxes (a node that
// starts takes its share from the others).
func (e *clusterEnv) waitShared() {
	e.t.Helper()
	fair := len(e.mailboxes)/clusterNodes - 1
	live := e.waitHeld("the mailboxes shared out", func(live map[int64]bench.Lease) bool {
		per := perNode(live)
		for _, n := range e.c.Nodes {
			if n.Running() && per[n.Name] < fair {
				return false
			}
		}
		return true
	})
	e.t.Logf("mailboxes per node: %v", perNode(live))
}

// perNode counts the mailboxes each node holds.
func perNode(live map[int64]bench.Lease) map[string]int {
	out := map[string]int{}
	for _, l := range live {
		out[l.Node]++
	}
	return out
}

// traffic delivers the test's messages while the nodes run: message k goes to mailbox
// k % mailboxes, in clusterRounds rounds clusterRoundEvery apart.
type traffic struct {
	run    string
	rounds chan int // receives the number of each round once delivered
	done   chan struct{}
	err    error
}

// messageID is message k's Message-ID without angle brackets.
func (tr *traffic) messageID(k int) string {
	return fmt.Sprintf("cluster-%s-%d@example.org", tr.run, k)
}

// startTraffic starts delivering in the background.
func (e *clusterEnv) startTraffic() *traffic {
	tr := &traffic{run: strings.ToLower(rand.Text()[:8]), rounds: make(chan int, clusterRounds), done: make(chan struct{})}
	perBox := make([][]int, len(e.users))
	for k := range e.messages {
		perBox[k%len(e.users)] = append(perBox[k%len(e.users)], k)
	}
	go func() {
		defer close(tr.done)
		for r := range clusterRounds {
			start := time.Now()
			for b, share := range perBox {
				part := share[len(share)*r/clusterRounds : len(share)*(r+1)/clusterRounds]
				raws := make([][]byte, len(part))
				for i, k := range part {
					raws[i] = fmt.Appendf(nil, "From: Customer %d <customer%d@example.org>\r\n"+
						"To: %s\r\nSubject: Cluster test order %d\r\nMessage-ID: <%s>\r\n"+
						"Date: Mon, 07 Dec 2026 08:%02d:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
						"Where is my order %d?\r\n", k, k, e.users[b], k, tr.messageID(k), k%60, k)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := e.d.AppendManyContext(ctx, e.users[b], "INBOX", raws)
				cancel()
				if err != nil {
					tr.err = err
					return
				}
			}
			tr.rounds <- r + 1
			time.Sleep(clusterRoundEvery - min(clusterRoundEvery, time.Since(start)))
		}
	}()
	e.t.Cleanup(func() { <-tr.done })
	return tr
}

// waitRound waits until n rounds are delivered.
func (e *clusterEnv) waitRound(tr *traffic, n int) {
	e.t.Helper()
	for {
		select {
		case r := <-tr.rounds:
			if r >= n {
				return
			}
		case <-tr.done:
			if tr.err != nil {
				e.t.Fatalf("deliver: %v", tr.err)
			}
			return
		case <-time.After(clusterWait):
			e.t.Fatalf("round %d not delivered within %s", n, clusterWait)
		}
	}
}

// checkExactlyOnce waits until the traffic is delivered, every message is stored and
// acknowledged at Dovecot, then checks that each is stored once with one work item.
func (e *clusterEnv) checkExactlyOnce(tr *traffic) {
	e.t.Helper()
	select {
	case <-tr.done:
	case <-time.After(3 * clusterWait):
		e.t.Fatal("the traffic did not finish")
	}
	if tr.err != nil {
		e.t.Fatalf("deliver: %v", tr.err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(clusterWait)
	for {
		stored, err := e.db.StoredMessages(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		unacked, err := e.db.Unacknowledged(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(stored) >= e.messages && unacked == 0 || time.Now().After(deadline) {
			missing, doubled := 0, 0
			for k := range e.messages {
				switch n := stored[tr.messageID(k)]; {
				case n == 0:
					missing++
					if missing <= 10 {
						e.t.Errorf("message <%s> is not stored", tr.messageID(k))
					}
				case n > 1:
					doubled++
					e.t.Errorf("message <%s> is stored %d times", tr.messageID(k), n)
				}
			}
			if unacked > 0 {
				e.t.Errorf("%d stored messages are not acknowledged (\\Seen) at Dovecot", unacked)
			}
			items, err := e.db.WorkItems(ctx)
			if err != nil {
				e.t.Fatal(err)
			}
			if items != e.messages {
				e.t.Errorf("work items: %d, want one per message, %d", items, e.messages)
			}
			e.t.Logf("%d messages: %d stored, %d missing, %d stored more than once, %d work items", e.messages, len(stored), missing, doubled, items)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sampler checks, every clusterSample until stopped, that no Dovecot user has more than one
// IMAP session and (with strict set and leases) that every mailbox has exactly one live
// holder; cursors are read too, to check that none ever moves backwards.
type sampler struct {
	e       *clusterEnv
	strict  chan bool
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	errs    []string
	maxUID  map[int64]uint64
}

func (e *clusterEnv) startSampler(sessions bool) *sampler {
	s := &sampler{e: e, strict: make(chan bool, 1), stop: make(chan struct{}), done: make(chan struct{}), maxUID: map[int64]uint64{}}
	go func() {
		defer close(s.done)
		ctx := context.Background()
		strict := false
		for {
			select {
			case <-s.stop:
				return
			case strict = <-s.strict:
			case <-time.After(clusterSample):
			}
			s.sample(ctx, sessions, strict)
		}
	}()
	e.t.Cleanup(s.halt)
	return s
}

func (s *sampler) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 20 {
		s.errs = append(s.errs, time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (s *sampler) sample(ctx context.Context, sessions, strict bool) {
	s.mu.Lock()
	s.samples++
	s.mu.Unlock()
	if sessions {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		list, err := s.e.d.SessionsContext(sctx)
		cancel()
		if err != nil {
			s.fail("doveadm who: %v", err)
			return
		}
		per := map[string]int{}
		for _, ses := range list {
			if ses.Service == "imap" {
				per[ses.User]++
			}
		}
		for u, n := range per {
			if n > 1 {
				s.fail("Dovecot has %d IMAP sessions of %s", n, u)
			}
		}
	}
	if strict && s.e.leases {
		live, err := s.e.db.LiveHolders(ctx, s.e.c)
		if err != nil {
			s.fail("%v", err)
			return
		}
		var all map[int64]bench.Lease
		for _, m := range s.e.mailboxes {
			if _, ok := live[m.ID]; ok {
				continue
			}
			if all == nil {
				if all, err = s.e.db.Leases(ctx); err != nil {
					s.fail("%v", err)
					return
				}
			}
			switch l := all[m.ID]; {
			case l.NodeID == "":
				s.fail("mailbox %s has no holder: its lease is free", m.Name)
			case !l.Valid && s.e.c.Running()[l.Node]:
				s.fail("mailbox %s has no live holder: the lease of %s (generation %d) expired while %s runs (not renewed in time)", m.Name, l.NodeID, l.Generation, l.Node)
			default:
				s.fail("mailbox %s has no live holder: its lease names %s (generation %d, valid %t), not a running node's current start", m.Name, l.NodeID, l.Generation, l.Valid)
			}
		}
	}
	uids, err := s.e.db.CursorUIDs(ctx)
	if err != nil {
		s.fail("%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, uid := range uids {
		if uid < s.maxUID[id] {
			s.errs = append(s.errs, fmt.Sprintf("the cursor of mailbox %d moved back from UID %d to %d", id, s.maxUID[id], uid))
		}
		s.maxUID[id] = max(s.maxUID[id], uid)
	}
}

// halt stops the sampler; it is idempotent.
func (s *sampler) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// check stops the sampler and fails the test with what it saw.
func (s *sampler) check() {
	s.e.t.Helper()
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errs {
		s.e.t.Error(e)
	}
	s.e.t.Logf("%d samples of the holders, Dovecot's sessions and the cursors", s.samples)
}

// TestClusterOneHolder: three nodes start one after the other while nothing runs; from the
// first start on, Dovecot never has two IMAP sessions of one mailbox user, and once the
// nodes have shared the mailboxes out, every mailbox has exactly one live holder (by
// mailbox_leases) in every sample while mail arrives. Every message is stored once.
func TestClusterOneHolder(t *testing.T) {
	e := newClusterEnv(t, true, clusterDefaultLease)
	s := e.startSampler(true)
	e.startAll()
	e.waitShared()
	s.strict <- true
	tr := e.startTraffic()
	e.checkExactlyOnce(tr)
	s.check()
}

// TestClusterKill: a node is killed with SIGKILL while mail arrives; the mailboxes it held
// are held by the running nodes within the lease time and some seconds, and every message
// is stored once. Without leases (every node ingests every mailbox) only the latter is
// checked.
func TestClusterKill(t *testing.T) {
	e := newClusterEnv(t, false, clusterLease)
	e.startAll()
	tr := e.startTraffic()
	e.waitRound(tr, clusterRounds/2)
	victim := e.c.Nodes[1]
	held := e.heldBy(victim.Name)
	killed := time.Now()
	victim.Kill()
	if e.leases {
		e.waitHeld("the killed node's mailboxes taken over", func(map[int64]bench.Lease) bool { return true })
		took := time.Since(killed)
		t.Logf("%s held %d mailboxes; all held by running nodes %s after the kill", victim.Name, len(held), took.Round(time.Millisecond))
		if limit := (clusterLease + 10) * time.Second; took > limit {
			t.Errorf("takeover took %s, want at most the lease time and 10 s (%s)", took, limit)
		}
	}
	e.checkExactlyOnce(tr)
}

// heldBy returns the mailboxes node holds and their lease generation (nil without leases).
func (e *clusterEnv) heldBy(node string) map[int64]int64 {
	e.t.Helper()
	if !e.leases {
		return nil
	}
	live, err := e.db.LiveHolders(context.Background(), e.c)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]int64{}
	for id, l := range live {
		if l.Node == node {
			out[id] = l.Generation
		}
	}
	return out
}

// lostLeaseLine matches a node's log line saying it lost a lease or that a write was
// refused for want of one (fencing).
var lostLeaseLine = regexp.MustCompile(`(?i)lease.*(lost|fenc|expired|taken|not held|no longer|refused)|(lost|fenc|refused).*lease`)

// TestClusterPause: a node is paused with SIGSTOP past its lease while mail arrives; the
// other nodes take its mailboxes with a newer lease generation. Then it is resumed with
// SIGCONT: it writes nothing behind the new holders (no message stored twice, no cursor
// moving backwards, every message stored and acknowledged) and logs that it lost its leases.
func TestClusterPause(t *testing.T) {
	e := newClusterEnv(t, true, clusterLease)
	e.startAll()
	e.waitShared()
	s := e.startSampler(false) // the paused node keeps its IMAP sessions open: no session check
	tr := e.startTraffic()
	e.waitRound(tr, 2)
	victim := e.c.Nodes[1]
	held := e.heldBy(victim.Name)
	if len(held) == 0 {
		t.Fatalf("%s holds no mailbox to take over", victim.Name)
	}
	if err := victim.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	e.waitHeld("the paused node's mailboxes taken over", func(live map[int64]bench.Lease) bool {
		for id, gen := range held {
			if l := live[id]; l.Node == victim.Name || l.Generation <= gen {
				return false
			}
		}
		return true
	})
	t.Logf("%s paused holding %d mailboxes; taken over with newer generations %s later", victim.Name, len(held), time.Since(paused).Round(time.Millisecond))
	e.waitRound(tr, clusterRounds/2) // mail keeps arriving at the new holders
	logBefore := len(victim.Log())
	if err := victim.Resume(); err != nil {
		t.Fatal(err)
	}
	e.checkExactlyOnce(tr)
	s.check()
	if !victim.Running() {
		t.Errorf("%s exited after it was resumed (%v): it should give up its mailboxes and carry on", victim.Name, victim.ExitErr())
	}
	after := victim.Log()[logBefore:]
	if m := lostLeaseLine.FindString(after); m == "" {
		t.Errorf("%s logged nothing about its lost leases after it was resumed; its log since:\n%s", victim.Name, lastLines(after, 30))
	} else {
		t.Logf("%s after it was resumed: ...%s...", victim.Name, m)
	}
	e.checkOneSessionEach()
}

// checkOneSessionEach fails the test for every Dovecot user with more than one IMAP session
// now.
func (e *clusterEnv) checkOneSessionEach() {
	e.t.Helper()
	per := map[string]int{}
	for _, s := range e.d.Sessions(e.t) {
		if s.Service == "imap" {
			per[s.User]++
		}
	}
	for u, n := range per {
		if n > 1 {
			e.t.Errorf("Dovecot has %d IMAP sessions of %s at the end", n, u)
		}
	}
}

// TestClusterRollingRestart: each of the three nodes in turn is stopped with SIGTERM and
// started again while mail arrives; each exits cleanly, (with leases) hands its mailboxes
// over sooner than its leases would expire, and no message is lost or stored twice.
func TestClusterRollingRestart(t *testing.T) {
	e := newClusterEnv(t, false, clusterLease)
	e.startAll()
	tr := e.startTraffic()
	e.waitRound(tr, 2)
	for _, n := range e.c.Nodes {
		held := e.heldBy(n.Name)
		stopped := time.Now()
		if err := n.Stop(clusterStopGrace); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s stopped in %s", n.Name, time.Since(stopped).Round(time.Millisecond))
		if e.leases {
			e.waitHeld(n.Name+"'s mailboxes handed over", func(live map[int64]bench.Lease) bool {
				for id := range held {
					if _, ok := live[id]; !ok {
						return false
					}
				}
				return true
			})
			took := time.Since(stopped)
			t.Logf("%s's %d mailboxes held by the others %s after SIGTERM", n.Name, len(held), took.Round(time.Millisecond))
			if took > clusterLease*time.Second {
				t.Errorf("%s's mailboxes were held by the others %s after SIGTERM: not handed over at once but left to expire (%d s)", n.Name, took, clusterLease)
			}
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.waitHeld("every mailbox held after "+n.Name+" restarted", func(map[int64]bench.Lease) bool { return true })
	}
	e.checkExactlyOnce(tr)
	if e.leases {
		live := e.waitHeld("the mailboxes shared out again", func(live map[int64]bench.Lease) bool { return len(perNode(live)) == clusterNodes })
		t.Logf("mailboxes per node after the restarts: %v", perNode(live))
		e.checkOneSessionEach()
	}
}

// withoutIngested drops the "message ingested" lines (one per message) from a log.
func withoutIngested(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="message ingested"`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
