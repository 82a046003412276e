package automsg

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// Store is what the Composer reads.
type Store interface {
	store.Settings
	ListMailboxes(ctx context.Context) ([]store.Mailbox, error)
	Queue(ctx context.Context, id int64) (store.Queue, error)
	AutoTemplates(ctx context.Context, queueID int64) ([]store.AutoTemplate, error)
}

// Composer writes the automatic messages of inbound mail. It is safe for concurrent use.
type Composer struct {
	Store Store
	// Hours tells whether queueID's calendar is open at t (HoursOpen, HoursClosed or
	// HoursHoliday); nil: always open.
	Hours func(queueID int64, t time.Time) string
	Now   func() time.Time
	Log   *slog.Logger
}

func (c *Composer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Composer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Template returns the text of a template: the stored one, else the shipped default, and
// whether it is enabled (a queue's acknowledgement is off until an admin turns it on; the
// over-size notice is on unless turned off).
func (c *Composer) Template(ctx context.Context, queueID int64, name string) (Text, bool, error) {
	list, err := c.Store.AutoTemplates(ctx, queueID)
	if err != nil {
		return Text{}, false, err
	}
	return Pick(list, queueID, name)
}

// Pick finds template name in a stored list, falling back to the default.
func Pick(list []store.AutoTemplate, queueID int64, name string) (Text, bool, error) {
	for _, t := range list {
		if t.Name == name {
			return Text{Subject: t.Subject, Body: t.Body}, t.Enabled, nil
		}
	}
	return Default(name), queueID == 0, nil
}

// Acknowledgement returns the acknowledgement of in (classified: its queue is known), or
// nil when its queue sends none at this hour or the message is a program's. The store
// sends it only when the message starts a conversation, within the limits.
func (c *Composer) Acknowledgement(ctx context.Context, m store.Mailbox, in *store.InboundMessage) (*store.AutoReply, error) {
	if in.Message.Automatic != "" || in.Message.OverSize {
		return nil, nil
	}
	queueID := m.QueueID
	if in.Classification != nil && in.Classification.QueueID != 0 {
		queueID = in.Classification.QueueID
	}
	if queueID == 0 || (in.Classification != nil && in.Classification.Close != "") {
		return nil, nil
	}
	list, err := c.Store.AutoTemplates(ctx, queueID)
	if err != nil {
		return nil, fmt.Errorf("acknowledgement: %w", err)
	}
	if len(list) == 0 {
		return nil, nil // the common case: one query and nothing to send
	}
	// Read the header again only when an acknowledgement could go out.
	if message.SuppressesAutoReply(message.Header(in.Raw)) {
		return nil, nil
	}
	hours := HoursOpen
	if c.Hours != nil {
		hours = c.Hours(queueID, c.now())
	}
	text, on, err := Pick(list, queueID, AckName(hours))
	if err != nil || !on {
		return nil, err
	}
	q, err := c.Store.Queue(ctx, queueID)
	if err != nil {
		return nil, fmt.Errorf("acknowledgement: %w", err)
	}
	v := c.vars(m, in.Message)
	v.Queue = q.Name
	return c.compose(ctx, m, in.Message, store.AutoKindAcknowledgement, text, v, true)
}

// Oversize returns the notice to the sender of a message over the mailbox's Max size
// (size bytes), or nil when it is off or the message is a program's.
func (c *Composer) Oversize(ctx context.Context, m store.Mailbox, parsed store.Message, size int64) (*store.AutoReply, error) {
	if parsed.Automatic != "" {
		return nil, nil
	}
	text, on, err := c.Template(ctx, 0, NameOversize)
	if err != nil {
		return nil, fmt.Errorf("over-size notice: %w", err)
	}
	if !on {
		return nil, nil
	}
	v := c.vars(m, parsed)
	v.Size = fmt.Sprintf("%.1f MB", float64(size)/(1<<20))
	v.MaxSize = fmt.Sprintf("%d MB", m.MaxSizeMB)
	if m.QueueID != 0 {
		if q, err := c.Store.Queue(ctx, m.QueueID); err == nil {
			v.Queue = q.Name
		}
	}
	return c.compose(ctx, m, parsed, store.AutoKindOversize, text, v, false)
}

func (c *Composer) vars(m store.Mailbox, parsed store.Message) Vars {
	v := Vars{CustomerName: parsed.FromName, CustomerAddress: parsed.FromAddr, Mailbox: m.Name, MailboxAddress: m.Address,
		Subject: strings.TrimPrefix(message.ReplySubject(parsed.Subject), "Re: ")}
	if v.CustomerName == "" {
		v.CustomerName = parsed.FromAddr
	}
	if v.Subject == "Re:" || v.Subject == "" {
		v.Subject = "(no subject)"
	}
	if v.MailboxAddress == "" {
		v.MailboxAddress = "our support mailbox"
	}
	return v
}

// compose builds the automatic reply to parsed, sent from the default outbound mailbox's
// address under the inbound mailbox's name, with an empty envelope sender.
func (c *Composer) compose(ctx context.Context, m store.Mailbox, parsed store.Message, kind string, text Text, v Vars, newOnly bool) (*store.AutoReply, error) {
	boxes, err := c.Store.ListMailboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list mailboxes: %w", kind, err)
	}
	out, ok := mailbox.DefaultOutbound(boxes)
	if !ok {
		c.log().Warn("no automatic message: no outbound mailbox is configured", slog.String("kind", kind), slog.Int64("mailbox_id", m.ID))
		return nil, nil
	}
	limits, err := LoadLimits(ctx, c.Store)
	if err != nil {
		return nil, err
	}
	from := mail.Address{Name: m.Name, Address: out.Address}
	now := c.now()
	draft := message.ReplyDraft(parsed, from, "", now)
	var rcpts []string
	for _, a := range draft.To {
		rcpts = append(rcpts, a.Address)
	}
	if len(rcpts) == 0 {
		return nil, nil
	}
	log := c.log()
	return &store.AutoReply{
		From: "", Recipients: rcpts, Kind: kind, NewConversationOnly: newOnly, Limit: limits.Store(),
		Compose: func(workItemID int64) (store.Message, []byte, error) {
			v := v
			v.WorkItem = workItemID
			subject, body, err := Render(text, v)
			if err != nil {
				// A template saved before a field was removed: the shipped text instead.
				log.Warn("automatic message template does not render: the default is sent", slog.String("kind", kind), slog.Any("error", err))
				if subject, body, err = Render(Default(templateName(kind)), v); err != nil {
					return store.Message{}, nil, nil
				}
			}
			d := draft
			d.Subject = subject
			d.Text = body // no quoted original
			d.AutoSubmitted = true
			raw, msg, err := message.Compose(d)
			if err != nil {
				// The customer's mail is stored all the same; only the answer is dropped.
				log.Warn("no automatic message: cannot compose it", slog.String("kind", kind), slog.Any("error", err))
				return store.Message{}, nil, nil
			}
			msg.MailboxID = out.ID
			msg.Direction = store.Outbound
			return msg, raw, nil
		},
	}, nil
}

// templateName is the default to fall back on for a kind.
func templateName(kind string) string {
	if kind == store.AutoKindOversize {
		return NameOversize
	}
	return NameAckOpen
}
