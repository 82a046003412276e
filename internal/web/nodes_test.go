package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
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
	if !strings.Contains(p.body, `<span class="holder">node alpha</span>`) {
		t.Errorf("the mailbox's row does not name the node reading it:\n%s", p.body)
	}
	if p := f.signIn(t, "ana").get("/nodes"); p.status != http.StatusForbidden {
		t.Errorf("GET /nodes as an agent: %d, want 403", p.status)
	}
}

// A supervisor opens the Nodes page from the navigation in a real browser and sees the
// node reading the mailbox, then follows the mailbox's link to its details, which name the
// node too.
func TestBrowserNodes(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	n := store.Node{ID: "alpha/1", Name: "alpha", Instance: "1", StartedAt: now, HeartbeatAt: now}
	if err := f.st.NodeHeartbeat(t.Context(), n, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.BalanceLeases(t.Context(), store.BalanceRequest{NodeID: n.ID, Mailboxes: []int64{f.inbound.ID}, Now: now, TTL: time.Hour, LiveSince: now}); err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "sam")
	submit(t, ctx, chromedp.Click(chromedp.CSS(`header nav a[href="/nodes"]`)))
	if cur := get(t, ctx, chromedp.Text(chromedp.CSS(`header nav a[aria-current=page]`))); cur != "Nodes" {
		t.Errorf("current navigation entry = %q", cur)
	}
	if row := get(t, ctx, chromedp.Text(chromedp.ID("node-alpha-1"))); !strings.Contains(row, "alpha") || !strings.Contains(row, "live") {
		t.Errorf("node row = %q, want alpha live", row)
	}
	lease := fmt.Sprintf("lease-%d", f.inbound.ID)
	if row := get(t, ctx, chromedp.Text(chromedp.ID(lease))); !strings.Contains(row, f.inbound.Name) || !strings.Contains(row, "alpha") {
		t.Errorf("lease row = %q, want %s read by alpha", row, f.inbound.Name)
	}
	submit(t, ctx, chromedp.Click(chromedp.CSS("#"+lease+" a")))
	if holder := get(t, ctx, chromedp.Text(chromedp.ID("holder"))); holder != "alpha" {
		t.Errorf("the mailbox's details name node %q, want alpha", holder)
	}
}
