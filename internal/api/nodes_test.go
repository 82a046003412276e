package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/store"
)

// TestNodes: GET /api/v1/nodes shows each node with its state, leases and heartbeat, and
// the node reading each mailbox; agents are refused.
func TestNodes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now()
	for _, n := range []store.Node{
		{ID: "alpha/1", Name: "alpha", Instance: "1", StartedAt: now, HeartbeatAt: now},
		{ID: "beta/2", Name: "beta", Instance: "2", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-time.Minute)},
	} {
		if err := f.st.NodeHeartbeat(ctx, n, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.BalanceLeases(ctx, store.BalanceRequest{NodeID: "alpha/1", Mailboxes: []int64{f.inbound.ID}, Now: now, TTL: time.Minute, LiveSince: now.Add(-6 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	resp := f.signedIn(t, "sam").get("/api/v1/nodes")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /api/v1/nodes as a supervisor: %d %s", resp.status, resp.body)
	}
	var got cluster.Status
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatalf("%v: %s", err, resp.body)
	}
	if got.LeaseSeconds != 6 || len(got.Nodes) != 2 {
		t.Fatalf("status = %s, want lease 6 s and two nodes", resp.body)
	}
	if a := got.Nodes[0]; a.Name != "alpha" || a.State != cluster.StateLive || a.Leases != 1 {
		t.Errorf("node alpha = %+v, want live with 1 lease", a)
	}
	if b := got.Nodes[1]; b.Name != "beta" || b.State != cluster.StateDead || b.Leases != 0 || b.HeartbeatAgeSeconds < 59 {
		t.Errorf("node beta = %+v, want dead, no lease, heartbeat a minute old", b)
	}
	if len(got.Leases) != 1 || got.Leases[0].MailboxID != f.inbound.ID || got.Leases[0].NodeName != "alpha" || got.Leases[0].Generation != 1 {
		t.Errorf("leases = %+v, want the inbound mailbox read by alpha", got.Leases)
	}
	if resp := f.signedIn(t, "ana").get("/api/v1/nodes"); resp.status != http.StatusForbidden {
		t.Errorf("GET /api/v1/nodes as an agent: %d, want 403", resp.status)
	}
}
