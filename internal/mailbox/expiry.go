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

// SecretExpiry tells how close m's client secret is to its expiry date at now. Only OAuth
// mailboxes with a recorded date have one.
func SecretExpiry(m store.Mailbox, now time.Time) Expiry {
	at := m.OAuth.SecretExpiresAt
	if at.IsZero() || m.Auth == "" || m.Auth == store.AuthPassword {
		return Expiry{}
	}
	left := at.Sub(now)
	e := Expiry{At: at, Left: left, DaysLeft: int(left / (24 * time.Hour))}
	if left < 0 && e.DaysLeft == 0 {
		e.DaysLeft = -1
	}
	e.Expired = left <= 0
	e.Warn = !e.Expired && left <= ExpiryWarning
	return e
}
