package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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
// seconds left as postroom_mailbox_secret_expiry_seconds{mailbox}, and for every delegated
// mailbox the seconds until its unused sign-in lapses as
// postroom_mailbox_signin_expiry_seconds{mailbox}; it logs a warning from
// mailbox.ExpiryWarning before the date (an error once it has passed), at most once a day
// per mailbox and kind, until ctx is done.
type expiryWatch struct {
	store  store.Store
	log    *slog.Logger
	gauge  *metrics.Gauge
	signIn *metrics.Gauge
	every  time.Duration
	now    func() time.Time
	logged map[string]time.Time // when each warning ("<kind> <mailbox id>") was last logged
	shown  map[string]bool      // "<kind> <mailbox name>" of the published gauges
}

func newExpiryWatch(st store.Store, reg *metrics.Registry, log *slog.Logger, every time.Duration) *expiryWatch {
	if every <= 0 {
		every = defaultExpiryCheck
	}
	return &expiryWatch{
		store: st, log: log, every: every, now: time.Now,
		gauge: reg.Gauge("postroom_mailbox_secret_expiry_seconds",
			"Seconds until the client secret of an OAuth mailbox expires (negative: expired), for mailboxes with a recorded expiry date.", "mailbox"),
		signIn: reg.Gauge("postroom_mailbox_signin_expiry_seconds",
			"Seconds until the sign-in (refresh token) of a delegated OAuth mailbox lapses from disuse (negative: lapsed); each use renews it.", "mailbox"),
		logged: map[string]time.Time{}, shown: map[string]bool{},
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
		w.report(now, m, "secret", mailbox.SecretExpiry(m, now), w.gauge, seen,
			"the client secret of this mailbox has expired: create a new secret in the app registration (Certificates & secrets) and enter it in the mailbox settings",
			"the client secret of this mailbox expires soon: create a new secret in the app registration (Certificates & secrets) and enter it in the mailbox settings before it does")
		w.report(now, m, "signin", mailbox.SignInExpiry(m, now), w.signIn, seen,
			"the sign-in of this mailbox has lapsed after 90 days unused: sign in again (Mailboxes > this mailbox > Sign in with Microsoft)",
			"the sign-in of this mailbox lapses soon because it is not used (Microsoft drops refresh tokens unused for 90 days): enable the mailbox or sign in again")
	}
	for key := range w.shown {
		if !seen[key] {
			kind, name, _ := strings.Cut(key, " ")
			if kind == "secret" {
				w.gauge.Delete(name)
			} else {
				w.signIn.Delete(name)
			}
		}
	}
	w.shown = seen
}

// report publishes one expiry of m and logs it when it is close or past, at most once a
// day per mailbox and kind.
func (w *expiryWatch) report(now time.Time, m store.Mailbox, kind string, e mailbox.Expiry, g *metrics.Gauge, seen map[string]bool, expired, soon string) {
	if e.At.IsZero() {
		return
	}
	seen[kind+" "+m.Name] = true
	g.Set(e.Left.Seconds(), m.Name)
	if !e.Warn && !e.Expired {
		return
	}
	key := fmt.Sprintf("%s %d", kind, m.ID)
	if last, ok := w.logged[key]; ok && now.Sub(last) < expiryLogEvery {
		return
	}
	w.logged[key] = now
	attrs := []any{slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name),
		slog.Time("expires", e.At), slog.Int("days_left", e.DaysLeft)}
	if e.Expired {
		w.log.Error(expired, attrs...)
	} else {
		w.log.Warn(soon, attrs...)
	}
}
