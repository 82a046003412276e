package store

import (
	"context"
	"time"
)

// ForwardInput is what CreateForward records in one transaction: a message forwarded from
// a work item's conversation to other addresses.
type ForwardInput struct {
	WorkItemID int64
	UserID     int64
	// Message is the composed forward in parsed form (Direction Outbound, MailboxID the
	// outbound mailbox); its ConversationID is filled by the store from the work item.
	Message    Message
	Raw        []byte
	From       string // envelope sender
	Recipients []string
}

// NewConversationInput is what CreateOutbound records in one transaction: a new email
// to a customer that starts a conversation of its own, with its work item.
type NewConversationInput struct {
	UserID int64
	// QueueID is the work item's queue (0: none; the customer's answer is classified and
	// queued as any inbound message is).
	QueueID int64
	// Message is the composed email (Direction Outbound, MailboxID the outbound mailbox).
	Message    Message
	Raw        []byte
	From       string // envelope sender
	Recipients []string
	// Customer is the address the conversation is with (the first To address): the
	// customer's history finds the conversation by it.
	Customer string
	// State is the work item's state: StatePending (the default: waiting for the
	// customer, whose answer reopens it for the sender), StateAssigned (the sender keeps
	// it) or StateDone.
	State string
}

// NewConversation is what CreateOutbound wrote.
type NewConversation struct {
	ConversationID int64
	WorkItemID     int64
	Outbox         OutboxItem
}

// HistoryItem is one of a customer's conversations, as the customer history lists it:
// its (latest) work item, subject, state and last activity.
type HistoryItem struct {
	WorkItemID     int64
	ConversationID int64
	Subject        string
	State          string
	UpdatedAt      time.Time
}

// OutboundMail records the messages agents start rather than answer, and reads a
// customer's history.
type OutboundMail interface {
	// CreateForward writes the forwarded message (in the work item's conversation, never
	// changing the work item's state or SLA clock: a forward does not answer the
	// customer), its queued outbox row, an event and an audit event in ONE transaction.
	// ErrNotFound when there is no such work item.
	CreateForward(ctx context.Context, in ForwardInput) (OutboxItem, error)
	// CreateOutbound writes a new conversation, its work item (assigned to the user, in
	// in.State), the outbound message and its queued outbox row in ONE transaction. The
	// customer's answer threads into the conversation through its Message-ID.
	CreateOutbound(ctx context.Context, in NewConversationInput) (NewConversation, error)
	// CustomerHistory lists the conversations with the customer address (case
	// insensitive) other than exceptConversation, newest activity first, at most limit:
	// those where a message came from the address and those postroom started to it.
	CustomerHistory(ctx context.Context, address string, exceptConversation int64, limit int) ([]HistoryItem, error)
}
