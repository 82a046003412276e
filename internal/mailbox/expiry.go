package mailbox

import (
	"time"

	"github.com/postroom/postroom/internal/store"
)

// ExpiryWarning is how long before a client secret expires postroom starts warning: on the
// mailboxes page, in the log and as a metric. Microsoft lets secrets live at most two years,
// and a secret nobody renews is the most common way a working mailbox stops.
const ExpiryWarning = 14 * 24 * time.Hour

// Expiry is the state of a mailbox's client secret expiry.
type Expiry struct {
	At       time.Time // zero: unknown
	Left     time.Duration
	Warn     bool // within ExpiryWarning
	Expired  bool
	DaysLeft int // whole days left, rounded down; negative once expired
}

// RefreshTokenInactivity is how long Microsoft keeps an unused refresh token (90 days;
// ms365-protocol.md §1.6): a delegated mailbox left disabled that long must sign in again.
const RefreshTokenInactivity = 90 * 24 * time.Hour

// SignInExpiry tells how close the delegated sign-in of m is to lapsing from disuse at
// now: its refresh token is renewed at each use, so it lapses RefreshTokenInactivity after
// it was last saved. Only delegated mailboxes with a stored refresh token have one.
func SignInExpiry(m store.Mailbox, now time.Time) Expiry {
	if m.Auth != store.AuthOAuthDelegated || !m.RefreshTokenSet || m.RefreshTokenAt.IsZero() {
		return Expiry{}
	}
	return expiryAt(m.RefreshTokenAt.Add(RefreshTokenInactivity), now)
}

// SecretExpiry tells how close m's client secret is to its expiry date at now. Only OAuth
// mailboxes with a recorded date have one.
func SecretExpiry(m store.Mailbox, now time.Time) Expiry {
	at := m.OAuth.SecretExpiresAt
	if at.IsZero() || m.Auth == "" || m.Auth == store.AuthPassword {
		return Expiry{}
	}
	return expiryAt(at, now)
}

// expiryAt is the state at now of something that expires at at.
func expiryAt(at, now time.Time) Expiry {
	left := at.Sub(now)
	e := Expiry{At: at, Left: left, DaysLeft: int(left / (24 * time.Hour))}
	if left < 0 && e.DaysLeft == 0 {
		e.DaysLeft = -1
	}
	e.Expired = left <= 0
	e.Warn = !e.Expired && left <= ExpiryWarning
	return e
}
