package store

import (
	"context"
	"time"
)

// Retention modes of a queue (routing.QueueSettings.RetentionMode).
const (
	// RetentionDelete removes a finished conversation and everything of it.
	RetentionDelete = "delete"
	// RetentionAnonymise keeps a finished conversation's skeleton for statistics and
	// removes its content and the customer's identity.
	RetentionAnonymise = "anonymise"
)

// Anonymised is the placeholder that replaces subjects, names and addresses of an
// anonymised conversation.
const Anonymised = "anonymised"

// ErasureCounts says what a retention run or an erasure removed (or, for a preview,
// would remove).
type ErasureCounts struct {
	Conversations int `json:"conversations"`
	Messages      int `json:"messages"`
	Attachments   int `json:"attachments"`
	WorkItems     int `json:"work_items"`
	Notes         int `json:"notes"`
	Outbox        int `json:"outbox"`
	Drafts        int `json:"drafts"`
	// Bounces and AutoMessages are the address's bounce record and automatic-message
	// bookkeeping (erasure only).
	Bounces      int `json:"bounces"`
	AutoMessages int `json:"auto_messages"`
}

// Add adds o to c.
func (c *ErasureCounts) Add(o ErasureCounts) {
	c.Conversations += o.Conversations
	c.Messages += o.Messages
	c.Attachments += o.Attachments
	c.WorkItems += o.WorkItems
	c.Notes += o.Notes
	c.Outbox += o.Outbox
	c.Drafts += o.Drafts
	c.Bounces += o.Bounces
	c.AutoMessages += o.AutoMessages
}

// Privacy carries out retention and erasure. Whatever it deletes, the (mailbox, source id)
// of every deleted inbound message stays known (with no message) and its second dedup key
// is kept as a hash (erased_messages), so that a mailbox never ingests a deleted message
// again: the source's acknowledgement and POP3/Graph skipping keep working.
type Privacy interface {
	// RetentionDue lists up to limit conversations whose latest work item is in queue
	// queueID and whose work items are all done or cancelled, the latest last changed
	// before `before`, oldest first. With anonymise, conversations anonymised already are
	// left out, unless their latest work item changed since (a customer's late reply
	// reopened it).
	RetentionDue(ctx context.Context, queueID int64, before time.Time, anonymise bool, limit int) ([]int64, error)
	// DeleteConversation removes a conversation in one transaction: its messages, their
	// raw sources and attachments, search rows, work items with their events, notes and
	// drafts, outbox rows and automatic-message bookkeeping. ErrNotFound when there is none.
	DeleteConversation(ctx context.Context, id int64) (ErasureCounts, error)
	// AnonymiseConversation keeps the conversation, its messages' and work items' rows,
	// times, states, queue and events, and in one transaction removes the rest: bodies,
	// raw sources, attachments, search rows, notes, drafts; subjects, names and addresses
	// become Anonymised, outbox recipients and errors are cleared. ErrNotFound when there
	// is none.
	AnonymiseConversation(ctx context.Context, id int64) (ErasureCounts, error)
	// ErasureOf counts what EraseAddress would remove for the address (see EraseAddress).
	ErasureOf(ctx context.Context, address string) (ErasureCounts, error)
	// EraseAddress removes, in one transaction with the audit event e (whose New the
	// caller fills from the counts through fill), one customer's data: every conversation
	// whose customer is the address (a conversation we started to it, or one in which any
	// inbound message is from it), deleted as DeleteConversation does; the address's bounce
	// record and automatic-message bookkeeping; and drafts on other work items whose Cc or
	// Bcc names it. The address is compared case-insensitively.
	EraseAddress(ctx context.Context, address string, fill func(ErasureCounts) AuditEvent) (ErasureCounts, error)
}

// AuditFilter selects audit events. Zero values mean "any".
type AuditFilter struct {
	// Query matches events whose action, actor, object, old or new value contains it,
	// case-insensitively (plain text, no pattern syntax).
	Query  string
	Action string // exact action, e.g. "login.failure"
	Actor  string // exact actor
	Object string // exact object, e.g. "mailbox:3"
	From   time.Time
	To     time.Time // exclusive
	Limit  int       // 0: 100
	Offset int
}
