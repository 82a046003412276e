package store

import (
	"context"
	"time"
)

// Kinds of automatic message (AutoReply.Kind).
const (
	AutoKindOversize        = "oversize"
	AutoKindAcknowledgement = "acknowledgement"
)

// AutoTemplate is the stored text of an automatic message: QueueID 0 for a global one
// (the over-size notice), a queue's id for its acknowledgements. Subject and Body are
// text/template sources (see package automsg).
type AutoTemplate struct {
	QueueID   int64
	Name      string
	Enabled   bool
	Subject   string
	Body      string
	UpdatedAt time.Time
}

// AutoLimit bounds the automatic messages to one address: at most PerConversation in one
// conversation and PerAddress in all, within Window (0: that bound is off). It stops two
// programs from answering each other for ever.
type AutoLimit struct {
	PerConversation int
	PerAddress      int
	Window          time.Duration
}

// AutoMessages keeps the templates of automatic messages.
type AutoMessages interface {
	// AutoTemplates lists the stored templates of a queue (0: the global ones).
	AutoTemplates(ctx context.Context, queueID int64) ([]AutoTemplate, error)
	// SetAutoTemplate stores a template, replacing the one of the same queue and name.
	SetAutoTemplate(ctx context.Context, t AutoTemplate) error
	// AutoSentCount counts the automatic messages sent to address since since.
	AutoSentCount(ctx context.Context, address string, since time.Time) (int, error)
}
