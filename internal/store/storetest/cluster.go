package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// clusterNode is a node row for the lease tests, with its heartbeat at now.
func clusterNode(t *testing.T, s store.Store, name, instance string, now time.Time) store.Node {
	t.Helper()
	n := store.Node{ID: name + "/" + instance, Name: name, Instance: instance, StartedAt: now, HeartbeatAt: now}
	must(t, "NodeHeartbeat "+n.ID, s.NodeHeartbeat(t.Context(), n, time.Time{}))
	return n
}

func balance(t *testing.T, s store.Store, node string, boxes []int64, now time.Time, ttl time.Duration) map[int64]store.Lease {
	t.Helper()
	held, err := s.BalanceLeases(t.Context(), store.BalanceRequest{NodeID: node, Mailboxes: boxes, Now: now, TTL: ttl, LiveSince: now.Add(-ttl)})
	must(t, "BalanceLeases "+node, err)
	out := map[int64]store.Lease{}
	for _, l := range held {
		if l.NodeID != node {
			t.Errorf("BalanceLeases of %s returned a lease of %s", node, l.NodeID)
		}
		out[l.MailboxID] = l
	}
	return out
}

// testLeases: a node takes its fair share, a second node takes the rest and, when the
// first renews, the first gives up its surplus; an expired lease is taken with its
// generation incremented; a graceful release hands every lease over at once.
func testLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = 6 * time.Second
	now := time.Now().Truncate(time.Millisecond)
	var boxes []int64
	for i := range 5 {
		boxes = append(boxes, newMailbox(t, s, fmt.Sprintf("box%d", i), store.Inbound).ID)
	}
	a := clusterNode(t, s, "a", "1", now)
	held := balance(t, s, a.ID, boxes, now, ttl)
	if len(held) != 5 {
		t.Fatalf("a single node holds %d of 5 mailboxes, want all", len(held))
	}
	for _, l := range held {
		if l.Generation != 1 {
			t.Errorf("first take of mailbox %d: generation %d, want 1", l.MailboxID, l.Generation)
		}
		sameTime(t, "lease expiry", l.ExpiresAt, now.Add(ttl))
	}
	// A second node joins: it finds nothing free yet; a's next round releases its surplus
	// (share ceil(5/2) = 3), which b takes at its next round.
	now = now.Add(2 * time.Second)
	b := clusterNode(t, s, "b", "1", now)
	if got := balance(t, s, b.ID, boxes, now, ttl); len(got) != 0 {
		t.Errorf("b took %d leases still held by a", len(got))
	}
	heldA := balance(t, s, a.ID, boxes, now, ttl)
	if len(heldA) != 3 {
		t.Errorf("a keeps %d leases with two live nodes, want its share 3", len(heldA))
	}
	heldB := balance(t, s, b.ID, boxes, now, ttl)
	if len(heldB) != 2 {
		t.Errorf("b holds %d leases, want the 2 a gave up", len(heldB))
	}
	for id := range heldB {
		if _, both := heldA[id]; both {
			t.Errorf("mailbox %d held by a and b", id)
		}
	}
	leases, err := s.ListLeases(ctx)
	must(t, "ListLeases", err)
	if len(leases) != 5 {
		t.Errorf("ListLeases: %d leases, want 5", len(leases))
	}
	nodes, err := s.ListNodes(ctx, now)
	must(t, "ListNodes", err)
	if len(nodes) != 2 || nodes[0].ID != a.ID || nodes[0].Leases != 3 || nodes[1].ID != b.ID || nodes[1].Leases != 2 {
		t.Errorf("ListNodes = %+v, want a with 3 leases and b with 2", nodes)
	}

	// a stops renewing (killed, or paused): once its leases and heartbeat expire, b (which
	// renews in time) takes every mailbox, each a's with its generation incremented.
	renew := now.Add(ttl - 2*time.Second)
	must(t, "NodeHeartbeat b", s.NodeHeartbeat(ctx, store.Node{ID: b.ID, Name: "b", Instance: "1", StartedAt: now, HeartbeatAt: renew}, time.Time{}))
	if got := balance(t, s, b.ID, boxes, renew, ttl); len(got) != 2 {
		t.Errorf("b renewing before a's leases expire holds %d, want its 2", len(got))
	}
	later := now.Add(ttl + time.Second)
	must(t, "NodeHeartbeat b", s.NodeHeartbeat(ctx, store.Node{ID: b.ID, Name: "b", Instance: "1", StartedAt: now, HeartbeatAt: later}, time.Time{}))
	heldB2 := balance(t, s, b.ID, boxes, later, ttl)
	if len(heldB2) != 5 {
		t.Fatalf("b holds %d leases after a's expired, want 5", len(heldB2))
	}
	for id, l := range heldA {
		if got := heldB2[id].Generation; got != l.Generation+1 {
			t.Errorf("mailbox %d taken from expired a: generation %d, want %d", id, got, l.Generation+1)
		}
	}
	for id, l := range heldB {
		if heldB2[id].Generation != l.Generation {
			t.Errorf("b's own lease of mailbox %d renewed with a new generation %d (was %d)", id, heldB2[id].Generation, l.Generation)
		}
	}
	// A mailbox no longer listed (disabled) is released by its holder.
	heldB3 := balance(t, s, b.ID, boxes[1:], later, ttl)
	if _, ok := heldB3[boxes[0]]; ok || len(heldB3) != 4 {
		t.Errorf("after mailbox %d was disabled b holds %v, want the 4 others", boxes[0], heldB3)
	}
	// Graceful release: every lease is free at once and the node is marked stopping.
	n, err := s.ReleaseLeases(ctx, b.ID, later)
	must(t, "ReleaseLeases", err)
	if n != 4 {
		t.Errorf("ReleaseLeases freed %d, want 4", n)
	}
	c := clusterNode(t, s, "c", "1", later)
	heldC := balance(t, s, c.ID, boxes, later, ttl)
	if len(heldC) != 5 {
		t.Errorf("c holds %d leases after b's release (a dead, b stopping), want 5", len(heldC))
	}
	nodes, err = s.ListNodes(ctx, later)
	must(t, "ListNodes", err)
	for _, n := range nodes {
		if n.ID == b.ID && (!n.Stopping || n.Leases != 0) {
			t.Errorf("released node b listed as %+v, want stopping with no lease", n)
		}
	}
	// A restarted process of node c frees its predecessor's leases at once.
	c2 := clusterNode(t, s, "c", "2", later)
	freed, err := s.ReleasePredecessors(ctx, c2, false, later)
	must(t, "ReleasePredecessors", err)
	if freed != 5 {
		t.Errorf("ReleasePredecessors freed %d, want c's 5", freed)
	}
	heldC2 := balance(t, s, c2.ID, boxes, later, ttl)
	if len(heldC2) != 5 {
		t.Errorf("restarted c holds %d leases, want 5", len(heldC2))
	}
	for id, l := range heldC {
		if heldC2[id].Generation <= l.Generation {
			t.Errorf("mailbox %d retaken by the restarted node with generation %d, want more than %d", id, heldC2[id].Generation, l.Generation)
		}
	}
	nodes, err = s.ListNodes(ctx, later)
	must(t, "ListNodes", err)
	for _, n := range nodes {
		if n.ID == c.ID {
			t.Errorf("the dead predecessor %s is still listed", c.ID)
		}
	}
}

// testLeaseFencing: once another node took a mailbox's lease, the old holder's cursor,
// ingest, acknowledgement and status writes are refused with ErrLeaseLost and change
// nothing; the new holder's succeed.
func testLeaseFencing(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = 6 * time.Second
	now := time.Now().Truncate(time.Millisecond)
	mb := newMailbox(t, s, "support", store.Inbound)
	a := clusterNode(t, s, "a", "1", now)
	old := balance(t, s, a.ID, []int64{mb.ID}, now, ttl)[mb.ID].Fence()
	if old.Generation != 1 {
		t.Fatalf("fence of a = %+v", old)
	}
	must(t, "SetCursor with the lease", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:1", Fence: old}))
	in := mail(mb, "imap:1:1", "1@x", "first")
	in.Fence = old
	ingest(t, s, in)
	must(t, "MarkAckedFenced with the lease", s.MarkAckedFenced(ctx, old, "imap:1:1"))
	must(t, "SetMailboxStatusFenced with the lease", s.SetMailboxStatusFenced(ctx, old, store.MailboxStatus{Status: store.StatusConnected, Message: "a"}))

	// a pauses past its lease; b takes it.
	later := now.Add(2 * ttl)
	b := clusterNode(t, s, "b", "1", later)
	fresh := balance(t, s, b.ID, []int64{mb.ID}, later, ttl)[mb.ID].Fence()
	if fresh.Generation != 2 || fresh.NodeID != b.ID {
		t.Fatalf("fence of b after the take = %+v, want generation 2", fresh)
	}
	// a wakes up and writes: every write is refused.
	wantErr(t, "SetCursor by the old holder", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:9", Fence: old}), store.ErrLeaseLost)
	late := mail(mb, "imap:1:2", "2@x", "written late")
	late.Fence = old
	late.Cursor = &store.Cursor{MailboxID: mb.ID, Value: "1:2"}
	_, err := s.IngestMessage(ctx, late)
	wantErr(t, "IngestMessage by the old holder", err, store.ErrLeaseLost)
	_, err = s.IngestMessages(ctx, []store.InboundMessage{late})
	wantErr(t, "IngestMessages by the old holder", err, store.ErrLeaseLost)
	wantErr(t, "MarkAckedFenced by the old holder", s.MarkAckedFenced(ctx, old, "imap:1:1"), store.ErrLeaseLost)
	wantErr(t, "SetMailboxStatusFenced by the old holder",
		s.SetMailboxStatusFenced(ctx, old, store.MailboxStatus{Status: store.StatusError, Message: "a woke up"}), store.ErrLeaseLost)
	// The same holder with a new generation (a retake) does not make the old fence good.
	stale := store.Fence{MailboxID: mb.ID, NodeID: b.ID, Generation: 1}
	wantErr(t, "SetCursor with an old generation of the holder", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:9", Fence: stale}), store.ErrLeaseLost)

	c, err := s.Cursor(ctx, mb.ID)
	must(t, "Cursor", err)
	if c.Value != "1:1" {
		t.Errorf("cursor = %q after the refused writes, want 1:1", c.Value)
	}
	if _, err := s.MessageBySource(ctx, mb.ID, "imap:1:2"); !store.IsNotFound(err) {
		t.Errorf("the old holder's late message was stored (err %v)", err)
	}
	if got := getMailbox(t, s, mb.ID); got.StatusMessage != "a" {
		t.Errorf("status message = %q after the old holder's refused write, want a's first %q", got.StatusMessage, "a")
	}
	// The new holder writes.
	must(t, "SetCursor by the new holder", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:2", Fence: fresh}))
	late.Fence = fresh
	ingest(t, s, late)
	must(t, "MarkAckedFenced by the new holder", s.MarkAckedFenced(ctx, fresh, "imap:1:2"))
	must(t, "SetMailboxStatusFenced by the new holder", s.SetMailboxStatusFenced(ctx, fresh, store.MailboxStatus{Status: store.StatusConnected, Message: "b"}))
	// Released: even the holder's fence is refused afterwards.
	_, err = s.ReleaseLeases(ctx, b.ID, later)
	must(t, "ReleaseLeases", err)
	wantErr(t, "SetCursor after the release", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:3", Fence: fresh}), store.ErrLeaseLost)
}

// testLeaseConcurrentTakers: many nodes balancing at the same moment never hold one
// mailbox together, and between them they hold every mailbox once each has had a round
// after the others' (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the single writer).
func testLeaseConcurrentTakers(t *testing.T, s store.Store) {
	const (
		nodes  = 6
		boxes  = 30
		rounds = 4
		ttl    = time.Minute
	)
	now := time.Now().Truncate(time.Millisecond)
	var ids []int64
	for i := range boxes {
		ids = append(ids, newMailbox(t, s, fmt.Sprintf("box%d", i), store.Inbound).ID)
	}
	var names []string
	for i := range nodes {
		names = append(names, clusterNode(t, s, fmt.Sprintf("n%d", i), "1", now).ID)
	}
	for round := range rounds {
		at := now.Add(time.Duration(round) * time.Second)
		var mu sync.Mutex
		held := map[string]map[int64]store.Lease{}
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Go(func() {
				got, err := s.BalanceLeases(t.Context(), store.BalanceRequest{NodeID: n, Mailboxes: ids, Now: at, TTL: ttl, LiveSince: at.Add(-ttl)})
				if err != nil {
					t.Errorf("round %d: BalanceLeases %s: %v", round, n, err)
					return
				}
				m := map[int64]store.Lease{}
				for _, l := range got {
					m[l.MailboxID] = l
				}
				mu.Lock()
				held[n] = m
				mu.Unlock()
			})
		}
		wg.Wait()
		// What each node believes it holds after its round must not overlap with another's,
		// and the database must agree with the last round of each.
		owner := map[int64]string{}
		for n, m := range held {
			for id := range m {
				if o, ok := owner[id]; ok {
					t.Errorf("round %d: mailbox %d held by %s and %s", round, id, o, n)
				}
				owner[id] = n
			}
		}
		leases, err := s.ListLeases(t.Context())
		must(t, "ListLeases", err)
		for _, l := range leases {
			if l.ExpiresAt.After(at) && owner[l.MailboxID] != l.NodeID {
				t.Errorf("round %d: the database says mailbox %d is %s's, the rounds said %q", round, l.MailboxID, l.NodeID, owner[l.MailboxID])
			}
		}
		if round == rounds-1 {
			if len(owner) != boxes {
				t.Errorf("after %d rounds %d of %d mailboxes have a holder", rounds, len(owner), boxes)
			}
			for n, m := range held {
				if len(m) > (boxes+nodes-1)/nodes {
					t.Errorf("%s holds %d mailboxes, above its fair share %d", n, len(m), (boxes+nodes-1)/nodes)
				}
			}
		}
	}
}
