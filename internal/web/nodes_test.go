package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// TestNodesPage: a supervisor sees each node with its state, its leases and last
// heartbeat, and the node reading each mailbox, also in the mailbox's details; an agent
// is refused.
func TestNodesPage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now()
	live := store.Node{ID: "alpha/1", Name: "alpha", Instance: "1", StartedAt: now.Add(-time.Hour), HeartbeatAt: now}
	dead := store.Node{ID: "beta/2", Name: "beta", Instance: "2", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-time.Minute)}
	for _, n := range []store.Node{live, dead} {
		if err := f.st.NodeHeartbeat(ctx, n, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.BalanceLeases(ctx, store.BalanceRequest{NodeID: live.ID, Mailboxes: []int64{f.inbound.ID}, Now: now, TTL: time.Minute, LiveSince: now.Add(-6 * time.Second)}); err != nil {
		t.Fatal(err)
	}

	p := f.signIn(t, "sam").get("/nodes")
	if p.status != http.StatusOK {
		t.Fatalf("GET /nodes as a supervisor: %d\n%s", p.status, p.body)
	}
	for _, want := range []string{
		`id="node-alpha-1"`, `node-live">live<`, `<td class="node-leases">1</td>`,
		`id="node-beta-2"`, `node-dead">dead<`,
		fmt.Sprintf(`id="lease-%d"`, f.inbound.ID), `<td class="lease-node">alpha</td>`, f.inbound.Name,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the Nodes page lacks %q:\n%s", want, p.body)
		}
	}
	p = f.signIn(t, "sam").get(fmt.Sprintf("/mailboxes?selected=%d", f.inbound.ID))
	if !strings.Contains(p.body, `id="holder"><a href="/nodes">alpha</a>`) {
		t.Errorf("the mailbox's details do not name the node reading it:\n%s", p.body)
	}
	if p := f.signIn(t, "ana").get("/nodes"); p.status != http.StatusForbidden {
		t.Errorf("GET /nodes as an agent: %d, want 403", p.status)
	}
}
