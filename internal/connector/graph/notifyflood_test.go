package graph_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/mstest"
)

// countingHandler is a slog handler that keeps every record's message.
type countingHandler struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestForgedNotificationFloodLogsOnce: one unauthenticated POST with 20,000 forged entries
// (1 MB) used to write 20,000 warning lines. Now a body over the cap is refused with 413
// and nothing logged per entry, a batch of more entries than Graph ever sends is refused
// with 400, and a batch of forged entries within the caps writes one summary line.
func TestForgedNotificationFloodLogsOnce(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	var mu sync.Mutex
	var msgs []string
	cfg := e.config()
	cfg.Logger = slog.New(countingHandler{mu: &mu, msgs: &msgs})
	w := e.webhook(t, cfg, nil, graph.SubscribeOptions{})
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	logged := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(msgs)
	}
	forged := func(n int) string {
		entries := make([]string, n)
		for i := range entries {
			entries[i] = fmt.Sprintf(`{"subscriptionId":"%s","changeType":"created","clientState":"guess-%d","resource":"Users/x/Messages/%d"}`, w.sub.ID(), i, i)
		}
		return `{"value":[` + strings.Join(entries, ",") + `]}`
	}
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(w.url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(text)
	}

	before := logged()
	big := forged(20000)
	if len(big) < 1<<20 {
		t.Fatalf("the flood is %d bytes, want at least 1 MB", len(big))
	}
	if code, text := post(big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MB of forged notifications: %d %q, want 413", code, text)
	}
	if n := logged() - before; n > 1 {
		t.Errorf("1 MB of forged notifications wrote %d log lines, want at most 1", n)
	}

	before = logged()
	if code, text := post(forged(1500)); code != http.StatusBadRequest || !strings.Contains(text, "1000") {
		t.Errorf("1,500 entries: %d %q, want 400 naming the cap of 1000", code, text)
	}
	if n := logged() - before; n > 1 {
		t.Errorf("1,500 forged entries wrote %d log lines, want at most 1", n)
	}

	before = logged()
	if code, text := post(forged(900)); code != http.StatusForbidden {
		t.Errorf("900 forged entries: %d %q, want 403", code, text)
	}
	if n := logged() - before; n != 1 {
		mu.Lock()
		t.Errorf("900 forged entries wrote %d log lines, want exactly 1 summary: %q", n, msgs[len(msgs)-min(n, 5):])
		mu.Unlock()
	}
	if w.notices.Load() != 0 {
		t.Errorf("forged notifications woke the source %d times", w.notices.Load())
	}
}
