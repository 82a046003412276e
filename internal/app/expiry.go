package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
)

// defaultExpiryCheck is how often client secret expiry dates are looked at.
const defaultExpiryCheck = time.Hour

// expiryLogEvery limits the expiry warning of one mailbox to one log line a day.
const expiryLogEvery = 24 * time.Hour

// expiryWatch publishes, for every OAuth mailbox with a recorded client secret expiry, the
// seconds left as postroom_mailbox_secret_expiry_seconds{mailbox}, and logs a warning from
// mailbox.ExpiryWarning before the date (an error once it has passed), at most once a day
// per mailbox, until ctx is done.
type expiryWatch struct {
	store  store.Store
	log    *slog.Logger
	gauge  *metrics.Gauge
	every  time.Duration
	now    func() time.Time
	logged map[int64]time.Time // when each mailbox's warning was last logged
	shown  map[string]bool     // mailbox names with a published gauge
}

func newExpiryWatch(st store.Store, reg *metrics.Registry, log *slog.Logger, every time.Duration) *expiryWatch {
	if every <= 0 {
		every = defaultExpiryCheck
	}
	return &expiryWatch{
		store: st, log: log, every: every, now: time.Now,
		gauge: reg.Gauge("postroom_mailbox_secret_expiry_seconds",
			"Seconds until the client secret of an OAuth mailbox expires (negative: expired), for mailboxes with a recorded expiry date.", "mailbox"),
		logged: map[int64]time.Time{}, shown: map[string]bool{},
	}
}

func (w *expiryWatch) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *expiryWatch) check(ctx context.Context) {
	boxes, err := w.store.ListMailboxes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("secret expiry check: list mailboxes", slog.Any("error", err))
		}
		return
	}
	now := w.now()
	seen := map[string]bool{}
	for _, m := range boxes {
		e := mailbox.SecretExpiry(m, now)
		if e.At.IsZero() {
			continue
		}
		seen[m.Name] = true
		w.gauge.Set(e.Left.Seconds(), m.Name)
		if !e.Warn && !e.Expired {
			continue
		}
		if last, ok := w.logged[m.ID]; ok && now.Sub(last) < expiryLogEvery {
			continue
		}
		w.logged[m.ID] = now
		attrs := []any{slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name),
			slog.Time("expires", e.At), slog.Int("days_left", e.DaysLeft)}
		if e.Expired {
			w.log.Error("the client secret of this mailbox has expired: create a new secret in the app registration (Certificates & secrets) and enter it in the mailbox settings", attrs...)
		} else {
			w.log.Warn("the client secret of this mailbox expires soon: create a new secret in the app registration (Certificates & secrets) and enter it in the mailbox settings before it does", attrs...)
		}
	}
	for name := range w.shown {
		if !seen[name] {
			w.gauge.Delete(name)
		}
	}
	w.shown = seen
}
