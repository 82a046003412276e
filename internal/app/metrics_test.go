package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestMetricsShowFailingMailbox: a mailbox with a wrong password is down on GET /metrics
// (postroom_mailbox_up 0, its auth failures counted) within one poll interval (the
// default, 60 s, is also this test's wait limit), for a supervisor's or admin's API token;
// anonymous requests get 401 and agents, signed in with a token or a session, 403.
func TestMetricsShowFailingMailbox(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "right-pw")
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	h.addInbound(d, user, "wrong-pw")

	ctx := context.Background()
	token := func(name, role string) string {
		u, err := h.app.Auth.EnsureUser(ctx, name, name, role, name+"-pw-for-tests")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := h.app.Auth.CreateAPIToken(ctx, u, "metrics")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	scrape := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	supervisor := token("prometheus", store.RoleSupervisor)
	waitFor(t, "the failing mailbox on /metrics", func() (bool, string) {
		status, body := scrape(supervisor)
		return status == http.StatusOK &&
			strings.Contains(body, `postroom_mailbox_up{mailbox="support"} 0`) &&
			strings.Contains(body, `postroom_mailbox_errors_total{kind="auth",mailbox="support"} `) &&
			strings.Contains(body, "\npostroom_outbox_queued 0\n"), body
	})
	if status, body := scrape(""); status != http.StatusUnauthorized || strings.Contains(body, "postroom_mailbox_up") {
		t.Errorf("/metrics for anonymous: %d %q, want 401 without metrics", status, body)
	}
	if status, body := scrape(token("ana", store.RoleAgent)); status != http.StatusForbidden || strings.Contains(body, "postroom_mailbox_up") {
		t.Errorf("/metrics for an agent's token: %d %q, want 403 without metrics", status, body)
	}
	// An agent signed in on the pages (session cookie) is refused too, not asked to sign in.
	agent := newAPIClient(t, h.url, "ana", "ana-pw-for-tests")
	if status, body := agent.do("GET", "/metrics", nil); status != http.StatusForbidden || strings.Contains(string(body), "postroom_mailbox_up") {
		t.Errorf("/metrics for a signed-in agent: %d %q, want 403 without metrics", status, body)
	}
}

// TestMetricsLibraryFamilies: /metrics keeps postroom's metric names, adds the Go
// runtime's and the process's, and measures arrival → work item latency (5 messages from
// Dovecot, whose INTERNALDATE is their arrival) and the routing engine's decisions (an
// available agent gets offers).
func TestMetricsLibraryFamilies(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	for i := range 5 {
		d.Append(t, user, "INBOX", customerMail(i))
	}
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	h.addInbound(d, user, "support-pw")
	ctx := context.Background()
	agent, err := h.app.Auth.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "ana-pw-for-tests")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Routing.SetStatus(ctx, agent.ID, store.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	sup, err := h.app.Auth.EnsureUser(ctx, "prometheus", "Prometheus", store.RoleSupervisor, "prometheus-pw-for-tests")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.app.Auth.CreateAPIToken(ctx, sup, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	waitFor(t, "the latency of 5 messages and a routing decision on /metrics", func() (bool, string) {
		body := scrape()
		return strings.Contains(body, "\npostroom_ingest_latency_seconds_count 5\n") &&
			strings.Contains(body, "\npostroom_routing_decision_seconds_count ") &&
			!strings.Contains(body, "\npostroom_routing_decision_seconds_count 0\n"), body
	})
	body := scrape()
	for _, want := range []string{
		"\npostroom_mailbox_up{mailbox=\"support\"} 1\n",
		"\npostroom_messages_ingested_total{mailbox=\"support\"} 5\n",
		"\npostroom_outbox_queued 0\n",
		"# TYPE postroom_outbox_deliveries_total counter",
		"# TYPE postroom_ingest_latency_seconds histogram",
		"postroom_ingest_latency_seconds_bucket{le=\"+Inf\"} 5\n",
		"# TYPE postroom_routing_decision_seconds histogram",
		"\ngo_goroutines ",
		"\ngo_memstats_heap_alloc_bytes ",
		"\nprocess_resident_memory_bytes ",
		"\nprocess_open_fds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", strings.TrimSpace(want))
		}
	}
}
