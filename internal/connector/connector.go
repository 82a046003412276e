// Package connector defines how postroom talks to mail servers: a Source delivers inbound
// messages and takes acknowledgements, a Sink sends outbound messages. One subpackage per
// protocol implements them (imap, pop3, graph, ews and smtp); they never import
// each other or the domain packages above them.
//
// Invariant (DESIGN.md 1): callers acknowledge a message at its source only after the
// transaction that stores it has committed. A Source never marks, moves or deletes a message
// on its own while fetching it (IMAP fetches with BODY.PEEK).
//
// Errors that an administrator can act on are *Error values: they carry a Kind (who must
// act), the operation, the server's own words and Advice in plain words.
package connector

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Incoming is one message waiting at a source.
type Incoming struct {
	// SourceID is the dedup key within the mailbox, e.g. "imap:<uidvalidity>:<uid>".
	SourceID string
	// Raw is the message exactly as the server holds it.
	Raw []byte
	// Size is the size the server reported (RFC822.SIZE), 0 when unknown.
	Size int64
	// Cursor is the source position just after this message ("<uidvalidity>:<uid>" for
	// IMAP); the ingest pipeline saves it in the same transaction as the message.
	Cursor string
	// ReceivedAt is when the server received the message (IMAP INTERNALDATE), zero when
	// unknown.
	ReceivedAt time.Time
	// OverSize is true when the message is larger than the mailbox's limit: Raw holds only
	// its header, and the message is set aside (SetAside) rather than acknowledged.
	OverSize bool
}

// Source delivers inbound messages of one mailbox.
type Source interface {
	// Next returns up to max messages that wait at the source and have not been
	// acknowledged; the same messages come back until they are acknowledged.
	// It returns an empty slice when there is nothing.
	Next(ctx context.Context, max int) ([]Incoming, error)
	// Ack acknowledges messages by SourceID (IMAP: marks them \Seen). Ids that belong to an
	// earlier incarnation of the folder (another UIDVALIDITY) are ignored.
	Ack(ctx context.Context, sourceIDs []string) error
	// SetAside leaves messages that were stored only in part (over the size limit) at the
	// source, out of the way: IMAP moves them to a folder "Oversize", POP3 leaves them on
	// the server. They are not returned by Next again.
	SetAside(ctx context.Context, sourceIDs []string) error
	Close() error
}

// Waiter is a Source that can wait for new mail to arrive (IMAP IDLE). Wait returns when
// new mail may be there, when max has passed, or when ctx is done.
type Waiter interface {
	Wait(ctx context.Context, max time.Duration) error
}

// Sink sends outbound messages through one mailbox.
type Sink interface {
	// Send delivers raw to the recipients with the envelope sender from.
	Send(ctx context.Context, from string, recipients []string, raw []byte) error
	Close() error
}

// TokenFunc returns an OAuth 2.0 access token for a SASL XOAUTH2 or OAUTHBEARER login
// (RFC 7628). refresh asks for a new token because the server refused the last one; an
// implementation renews tokens before they expire by itself (golang.org/x/oauth2).
type TokenFunc func(ctx context.Context, refresh bool) (string, error)

// TokenError classifies a TokenFunc failure for the protocol step op ("imap oauth token"):
// a *Error passes as it is (a token source says KindAuth when the grant is gone), and so
// does a cancelled or expired context; anything else, such as an unreachable token
// endpoint, is temporary.
func TokenError(op string, err error) error {
	var ce *Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Kind: KindNetwork, Op: op, Err: err,
		Advice: "postroom could not get an OAuth token for this mailbox; it tries again"}
}

// Kind says who has to act on an error.
type Kind string

// Kinds of connector errors.
const (
	KindAuth     Kind = "auth"     // the server refused the credentials: the admin must fix them
	KindNetwork  Kind = "network"  // the server could not be reached or hung up: check host/port, or wait
	KindTLS      Kind = "tls"      // the TLS handshake or certificate failed
	KindConfig   Kind = "config"   // the mailbox settings are wrong (folder missing, mechanism refused)
	KindServer   Kind = "server"   // the server answered with a temporary failure: retried
	KindRejected Kind = "rejected" // the server refused the message permanently (SMTP 5xx)
)

// Error is an error an administrator can act on.
type Error struct {
	Kind   Kind
	Op     string // e.g. "imap login", "smtp send"
	Advice string // what is wrong and what to do, in plain words
	Err    error
}

func (e *Error) Error() string {
	if e.Advice == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Op, e.Err, e.Advice)
}

func (e *Error) Unwrap() error { return e.Err }

// Advice returns the advice carried by err, or "" when it carries none.
func Advice(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Advice
	}
	return ""
}

// IsPermanent reports whether retrying cannot help without someone changing something:
// a refused login, a wrong setting, or a message the server refused for good.
func IsPermanent(err error) bool {
	var ce *Error
	if errors.As(err, &ce) {
		switch ce.Kind {
		case KindAuth, KindConfig, KindRejected:
			return true
		}
	}
	return false
}
