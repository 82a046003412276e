package storetest

import (
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testOutboxClaimRelease: a process that restarts gets its dead predecessor's claimed
// rows back at once, not after their lease (DESIGN.md invariant 11); its own claims, and
// on a multi-node engine another node's, keep their lease.
func testOutboxClaimRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	var ids []int64
	for _, r := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"} {
		it, err := s.CreateReply(ctx, f.replyInput(r))
		must(t, "CreateReply", err)
		ids = append(ids, it.ID)
	}
	now := time.Now().Add(time.Second)
	lease := now.Add(10 * time.Minute)
	dead := store.Claimant{Node: "host-a-1234", Instance: "dead"}
	restarted := store.Claimant{Node: "host-a-1234", Instance: "restarted"}
	other := store.Claimant{Node: "host-b-5678", Instance: "alive"}

	claim := func(by store.Claimant, at time.Time, limit int) []int64 {
		t.Helper()
		items, err := s.ClaimOutboxAs(ctx, by, at, at.Add(10*time.Minute), limit)
		must(t, "ClaimOutboxAs", err)
		var out []int64
		for _, it := range items {
			if it.Claim != by {
				t.Errorf("claimed item %d has claimant %+v, want %+v", it.ID, it.Claim, by)
			}
			out = append(out, it.ID)
		}
		return out
	}
	equalIDs(t, "the first instance claims two", claim(dead, now, 2), ids[:2])
	equalIDs(t, "another node claims one", claim(other, now, 1), ids[2:3])
	it, err := s.OutboxItem(ctx, ids[0])
	must(t, "OutboxItem", err)
	if it.Claim != dead {
		t.Errorf("OutboxItem claimant = %+v, want %+v", it.Claim, dead)
	}
	// The first instance dies; its successor on the same node starts a second later.
	restart := now.Add(time.Second)
	n, err := s.ReleaseOutboxClaims(ctx, restarted, restart)
	must(t, "ReleaseOutboxClaims", err)
	multiNode := true
	if sn, ok := s.(interface{ SingleNode() bool }); ok && sn.SingleNode() {
		multiNode = false
	}
	want := []int64{ids[0], ids[1], ids[3]} // the dead one's two, and the one never claimed
	wantReleased := 2
	if !multiNode {
		want = ids // one node: the other "node" was an earlier instance too
		wantReleased = 3
	}
	if n != wantReleased {
		t.Errorf("ReleaseOutboxClaims released %d, want %d", n, wantReleased)
	}
	equalIDs(t, "claim right after the restart, long before the lease ends", claim(restarted, restart, 10), want)
	for _, id := range want {
		it, err := s.OutboxItem(ctx, id)
		must(t, "OutboxItem", err)
		if it.Claim != restarted || !it.NextAttemptAt.After(restart) {
			t.Errorf("item %d after the claim: claimant %+v, due %v; want %+v, leased", id, it.Claim, it.NextAttemptAt, restarted)
		}
	}
	// Releasing again (a second start of the same instance id is impossible, but the call
	// must not take the live instance's own claims).
	n, err = s.ReleaseOutboxClaims(ctx, restarted, restart)
	must(t, "ReleaseOutboxClaims again", err)
	if n != 0 {
		t.Errorf("ReleaseOutboxClaims by the claiming instance released %d of its own claims, want 0", n)
	}
	if multiNode {
		equalIDs(t, "the other node's claim keeps its lease", claim(restarted, lease.Add(-time.Second), 10), nil)
		equalIDs(t, "the other node's claim after its lease", claim(restarted, lease.Add(500*time.Millisecond), 10), ids[2:3])
	}
	if _, err := s.ReleaseOutboxClaims(ctx, store.Claimant{Node: "x"}, restart); err == nil {
		t.Error("ReleaseOutboxClaims without an instance id: no error")
	}

	// A delivery outcome clears the claim; the Graph draft id is kept while the row is
	// queued.
	must(t, "SetOutboxDraft", s.SetOutboxDraft(ctx, ids[0], "AAMkDraft="))
	must(t, "MarkOutboxRetry", s.MarkOutboxRetry(ctx, ids[0], 1, restart, "421 try later"))
	it, err = s.OutboxItem(ctx, ids[0])
	must(t, "OutboxItem", err)
	if it.GraphDraftID != "AAMkDraft=" || it.Claim != (store.Claimant{}) {
		t.Errorf("after retry: draft %q claimant %+v, want the draft kept and no claimant", it.GraphDraftID, it.Claim)
	}
	must(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, ids[1], restart))
	it, err = s.OutboxItem(ctx, ids[1])
	must(t, "OutboxItem", err)
	if it.State != store.OutboxSent || it.Claim != (store.Claimant{}) {
		t.Errorf("after sent: %s claimant %+v, want sent, no claimant", it.State, it.Claim)
	}
	if err := s.SetOutboxDraft(ctx, ids[1], "late"); err == nil {
		t.Error("SetOutboxDraft on a sent item: no error")
	}
	n, err = s.ReleaseOutboxClaims(ctx, store.Claimant{Node: "host-a-1234", Instance: "third"}, restart)
	must(t, "ReleaseOutboxClaims", err)
	if wantN := 2; n != wantN { // ids[0] retried and ids[1] sent hold no claim any more
		t.Errorf("ReleaseOutboxClaims after outcomes released %d, want %d", n, wantN)
	}
}
