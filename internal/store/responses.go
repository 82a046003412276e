package store

import (
	"context"
	"time"
)

// ResponseTemplate is a canned response agents insert into a reply: QueueID 0 for a
// global one, a queue's id for one offered on that queue's work items only. Body is a
// text/template source (see package compose). Name is unique within its queue.
type ResponseTemplate struct {
	ID        int64
	QueueID   int64
	Name      string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Signature is appended to replies: either of a From address (Address set, QueueID 0) or
// of a queue (QueueID set, Address ""). Body is a text/template source (package compose).
type Signature struct {
	ID        int64
	Address   string // compared without regard to case
	QueueID   int64
	Body      string
	UpdatedAt time.Time
}

// Draft is the reply a user is writing on a work item, kept on the server so that a
// reload or another device finds it. Attachments are not part of it.
type Draft struct {
	UserID     int64
	WorkItemID int64
	Text       string
	Cc, Bcc    []string
	From       string
	ReplyAll   bool
	UpdatedAt  time.Time
}

// Responses keeps what agents write replies with: canned responses, signatures and drafts.
type Responses interface {
	// ResponseTemplates lists every canned response, global ones first, then by queue and
	// name.
	ResponseTemplates(ctx context.Context) ([]ResponseTemplate, error)
	// ResponseTemplate returns one canned response (ErrNotFound when there is none).
	ResponseTemplate(ctx context.Context, id int64) (ResponseTemplate, error)
	// SaveResponseTemplate creates (ID 0) or updates a canned response; ErrConflict when
	// its queue has another of the same name, ErrNotFound when the id does not exist.
	SaveResponseTemplate(ctx context.Context, t ResponseTemplate) (ResponseTemplate, error)
	// DeleteResponseTemplate removes a canned response (ErrNotFound when there is none).
	DeleteResponseTemplate(ctx context.Context, id int64) error

	// Signatures lists every signature: those of From addresses by address, then those of
	// queues by queue.
	Signatures(ctx context.Context) ([]Signature, error)
	// SetSignature stores the signature of an address or a queue, replacing the one it had.
	SetSignature(ctx context.Context, s Signature) (Signature, error)
	// DeleteSignature removes a signature (ErrNotFound when there is none).
	DeleteSignature(ctx context.Context, id int64) error

	// Draft returns a user's draft on a work item (ErrNotFound when there is none).
	Draft(ctx context.Context, userID, workItemID int64) (Draft, error)
	// SaveDraft stores a user's draft on a work item, replacing the previous one;
	// ErrNotFound when the user or the work item does not exist.
	SaveDraft(ctx context.Context, d Draft) (Draft, error)
	// DeleteDraft removes a user's draft on a work item; no draft is no error.
	DeleteDraft(ctx context.Context, userID, workItemID int64) error
}
