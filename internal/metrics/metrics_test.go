package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func text(t *testing.T, r *Registry) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWriteText checks the exposition format a Prometheus server parses: HELP and TYPE
// lines, families by name, series by label values, escaped values, counters that only go
// up, a label-less counter present at 0, and the Go runtime's and the process's metrics.
func TestWriteText(t *testing.T) {
	r := New()
	up := r.Gauge("postroom_mailbox_up", "1 when the mailbox's last session works.", "mailbox")
	errs := r.Counter("postroom_mailbox_errors_total", "Failures of mailbox sessions.", "mailbox", "kind")
	r.Counter("postroom_ingest_duplicates_total", "Duplicates.\nSecond line \\ backslash.")
	r.GaugeFunc("postroom_outbox_queued", "Queued.", func(context.Context) (float64, error) { return 7, nil })

	up.Set(1, "support")
	up.Set(0, `sa"les\x`+"\n"+"\xff")
	errs.Inc("support", "auth")
	errs.Add(2.5, "support", "auth")
	errs.Add(-10, "support", "auth") // ignored
	errs.Touch("billing", "network")

	want := `# HELP postroom_ingest_duplicates_total Duplicates.\nSecond line \\ backslash.
# TYPE postroom_ingest_duplicates_total counter
postroom_ingest_duplicates_total 0
# HELP postroom_mailbox_errors_total Failures of mailbox sessions.
# TYPE postroom_mailbox_errors_total counter
postroom_mailbox_errors_total{kind="auth",mailbox="support"} 3.5
postroom_mailbox_errors_total{kind="network",mailbox="billing"} 0
# HELP postroom_mailbox_up 1 when the mailbox's last session works.
# TYPE postroom_mailbox_up gauge
postroom_mailbox_up{mailbox="sa\"les\\x\n` + "\uFFFD" + `"} 0
postroom_mailbox_up{mailbox="support"} 1
# HELP postroom_outbox_queued Queued.
# TYPE postroom_outbox_queued gauge
postroom_outbox_queued 7
`
	got := text(t, r)
	if i := strings.Index(got, "# HELP postroom_"); i < 0 || !strings.Contains(got[i:], want) {
		t.Errorf("WriteText =\n%s\nwant it to hold\n%s", got, want)
	}
	for _, family := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(got, "\n"+family+" ") {
			t.Errorf("WriteText has no %s (the Go runtime's and the process's metrics)", family)
		}
	}

	up.Delete("support")
	if strings.Contains(text(t, r), `mailbox_up{mailbox="support"}`) {
		t.Error("deleted series still written")
	}
}

// TestHistogram: observations land in the buckets, with their count and sum.
func TestHistogram(t *testing.T) {
	r := New()
	h := r.Histogram("postroom_test_seconds", "Test.", []float64{1, 10}, "queue")
	h.Observe(0.5, "Support")
	h.Observe(5, "Support")
	h.Observe(50, "Support")
	got := text(t, r)
	for _, want := range []string{
		`postroom_test_seconds_bucket{queue="Support",le="1"} 1`,
		`postroom_test_seconds_bucket{queue="Support",le="10"} 2`,
		`postroom_test_seconds_bucket{queue="Support",le="+Inf"} 3`,
		`postroom_test_seconds_sum{queue="Support"} 55.5`,
		`postroom_test_seconds_count{queue="Support"} 3`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("WriteText has no %s:\n%s", want, got)
		}
	}
	var nilH *Histogram
	nilH.Observe(1, "x")
}

func TestGaugeFuncError(t *testing.T) {
	r := New()
	r.GaugeFunc("postroom_outbox_queued", "Queued.", func(context.Context) (float64, error) {
		return 0, errors.New("database is closed")
	})
	r.Gauge("postroom_other", "Other.").Set(3)
	var b strings.Builder
	err := r.WriteText(t.Context(), &b)
	got := b.String()
	if err == nil || !strings.Contains(err.Error(), "database is closed") || strings.Contains(got, "\npostroom_outbox_queued ") ||
		!strings.Contains(got, "\npostroom_other 3\n") {
		t.Errorf("WriteText with a failing gauge = %v\n%s\nwant no sample of it, the others, and the error", err, got)
	}
}

func TestSameFamilyTwice(t *testing.T) {
	r := New()
	r.Counter("x_total", "X.", "mailbox").Inc("a")
	r.Counter("x_total", "X.", "mailbox").Inc("a")
	if !strings.Contains(text(t, r), `x_total{mailbox="a"} 2`) {
		t.Errorf("two registrations did not share the family:\n%s", text(t, r))
	}
	defer func() {
		if recover() == nil {
			t.Error("registering x_total as a gauge did not panic")
		}
	}()
	r.Gauge("x_total", "X.", "mailbox")
}

func TestNilDoesNothing(t *testing.T) {
	var r *Registry
	r.Counter("a_total", "A.").Inc()
	r.Gauge("b", "B.", "l").Set(1, "x")
	r.GaugeFunc("c", "C.", nil)
	var c *Counter
	c.Add(1)
	c.Delete()
}

func TestHandler(t *testing.T) {
	r := New()
	r.Gauge("postroom_mailbox_up", "Up.", "mailbox").Set(0, "x")
	srv := httptest.NewServer(r.Handler(func(req *http.Request) Access {
		switch req.Header.Get("Authorization") {
		case "Bearer good":
			return Allowed
		case "Bearer agent":
			return Refused
		}
		return Anonymous
	}, nil))
	defer srv.Close()

	get := func(auth string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "postroom_mailbox_up") {
		t.Errorf("anonymous scrape: %d %q, want 401 without metrics", resp.StatusCode, body)
	}
	resp, body = get("Bearer agent")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != "" || strings.Contains(body, "postroom_mailbox_up") {
		t.Errorf("signed-in scrape without the role: %d %q, want 403 without metrics", resp.StatusCode, body)
	}
	resp, body = get("Bearer good")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") ||
		!strings.Contains(body, `postroom_mailbox_up{mailbox="x"} 0`) {
		t.Errorf("authorized scrape: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
