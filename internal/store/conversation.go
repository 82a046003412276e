package store

import (
	"context"
	"time"
)

// OutboxBounced is the state of an outbox item that the server accepted but a delivery
// status notification (RFC 3464) later reported as undeliverable; LastError holds the
// report's diagnostic ("550 5.1.1 user unknown").
const OutboxBounced = "bounced"

// CloseAutomatic is the StateReason of a work item recorded as done at once because its
// message was written by a program (an auto-reply, a bounce, a list mail).
const CloseAutomatic = "automatic"

// Bounce is what a delivery status notification reports about a message we sent: the
// Message-ID of that message and the recipients it failed for.
type Bounce struct {
	// OriginalMessageID is the reported message's Message-ID, without angle brackets.
	OriginalMessageID string
	Recipients        []BounceRecipient
}

// BounceRecipient is one per-recipient block of a DSN (RFC 3464 §2.3).
type BounceRecipient struct {
	Address    string // Final-Recipient (or Original-Recipient) address
	Action     string // failed, delayed, delivered, relayed, expanded
	Status     string // e.g. 5.1.1
	Diagnostic string // Diagnostic-Code text, e.g. "550 5.1.1 user unknown"
}

// Failed reports whether the recipient's delivery failed for good.
func (r BounceRecipient) Failed() bool {
	return r.Action == "failed" || r.Action == "" && len(r.Status) > 0 && r.Status[0] == '5'
}

// Note is an internal note on a work item: never sent to the customer.
type Note struct {
	ID         int64
	WorkItemID int64
	AuthorID   int64
	AuthorName string // the author's display name (or username) when read
	Text       string
	Mentions   []int64 // users mentioned with @username
	CreatedAt  time.Time
}

// Mention is a note that mentions a user, with its work item's subject, for My work.
type Mention struct {
	Note    Note
	Subject string
	State   string
}

// AddressBounce is what the last DSN said of an address.
type AddressBounce struct {
	Address    string
	Status     string
	Diagnostic string
	Bounces    int
	LastAt     time.Time
}

// Conversations holds what a conversation carries beside its messages: notes and
// mentions, and the addresses that bounce.
type Conversations interface {
	// AddNote records a note (and its mentions) on a work item; ErrNotFound when there is
	// no such work item.
	AddNote(ctx context.Context, n Note) (Note, error)
	// Notes lists the notes of a work item, oldest first.
	Notes(ctx context.Context, workItemID int64) ([]Note, error)
	// Mentions lists the newest notes that mention the user.
	Mentions(ctx context.Context, userID int64, limit int) ([]Mention, error)
	// AddressBounce reads what the last DSN said of an address (ErrNotFound: none).
	AddressBounce(ctx context.Context, address string) (AddressBounce, error)
}
