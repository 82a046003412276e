package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// readyTimeout bounds the store's answer to a readiness probe.
const readyTimeout = 2 * time.Second

// health answers GET /healthz and GET /readyz, without authentication: a load balancer or
// systemd/Kubernetes probe has no session. Their bodies say "ok" or "not ready" and nothing
// else (no version, no error text an attacker could use); why a node is not ready goes to
// the log, once per change.
type health struct {
	log *slog.Logger
	// ready is the store's part of readiness; cluster is the optional cluster hook.
	ready    func(ctx context.Context) error
	cluster  atomic.Pointer[func() bool]
	stopping atomic.Bool

	mu      sync.Mutex
	lastErr string // the reason logged last ("" when ready)
}

// SetClusterReady installs the cluster's part of readiness: fn reports whether this node
// holds or may take mailbox leases (internal/cluster). Without it (nil, the default) the
// node is ready as far as the cluster goes. It may be called at any time.
func (a *App) SetClusterReady(fn func() bool) {
	if fn == nil {
		a.health.cluster.Store(nil)
		return
	}
	a.health.cluster.Store(&fn)
}

// check returns why the node is not ready, nil when it is.
func (h *health) check(ctx context.Context) error {
	if h.stopping.Load() {
		return fmt.Errorf("shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := h.ready(ctx); err != nil {
		return err
	}
	if fn := h.cluster.Load(); fn != nil && !(*fn)() {
		return fmt.Errorf("the cluster gives this node no leases")
	}
	return nil
}

func (h *health) serveHealth(w http.ResponseWriter, r *http.Request) {
	writePlain(w, http.StatusOK, "ok\n")
}

func (h *health) serveReady(w http.ResponseWriter, r *http.Request) {
	err := h.check(r.Context())
	h.noteChange(r.Context(), err)
	if err != nil {
		writePlain(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	writePlain(w, http.StatusOK, "ok\n")
}

// noteChange logs the reason the node is not ready when it differs from the last one, and
// that it is ready again.
func (h *health) noteChange(ctx context.Context, err error) {
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	h.mu.Lock()
	changed := reason != h.lastErr
	h.lastErr = reason
	h.mu.Unlock()
	switch {
	case !changed:
	case err != nil:
		h.log.WarnContext(ctx, "readiness probe: not ready", slog.String("reason", reason))
	default:
		h.log.InfoContext(ctx, "readiness probe: ready again")
	}
}

func writePlain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// storeReady is the store's part of readiness: the store answers and every migration of
// this binary is applied.
func (a *App) storeReady(ctx context.Context) error {
	applied, known, err := a.Store.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("the database does not answer: %w", err)
	}
	if applied < known {
		return fmt.Errorf("the database schema is at migration %d, this binary needs %d: run postroom migrate", applied, known)
	}
	return nil
}
