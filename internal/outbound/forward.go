package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// ForwardRequest is a forward an agent sends: a message of the work item's conversation
// to other addresses, with a note on top and the original's attachments chosen one by one.
type ForwardRequest struct {
	// To, Cc and Bcc are the recipients (addresses, or "Name <address>"); To or Cc must
	// name someone.
	To, Cc, Bcc []string
	// Text is the note written above the forwarded message (may be empty).
	Text string
	// From is the address to send from; "" means the default choice.
	From string
	// MessageID is the stored message to forward, one of the conversation's; 0 means the
	// work item's latest inbound message.
	MessageID int64
	// AttachmentIDs are the forwarded message's attachments to send along (read from the
	// store, sent byte-exact); the others are left out.
	AttachmentIDs []int64
	// Attachments are further files the agent uploads.
	Attachments []Attachment
}

// NewEmailRequest is a new email to a customer, which starts a conversation of its own.
type NewEmailRequest struct {
	To, Cc, Bcc []string
	Subject     string
	Text        string
	// From is the address to send from; "" means the default outbound mailbox's.
	From string
	// QueueID is the queue of the new work item (0: none until the customer answers and
	// the answer is classified like any inbound message).
	QueueID int64
	// Then is the work item's state: "" or store.StatePending (waiting for the customer;
	// their answer reopens it, offered first to the sender), store.StateAssigned (the
	// sender keeps it) or store.StateDone.
	Then        string
	Attachments []Attachment
}

// ErrEmptyNewEmail means a new email has no text.
var ErrEmptyNewEmail = errors.New("the email is empty: write the message before sending")

// ComposeChoices lists the addresses a new email may be sent from (FromChoices without
// a work item): the default is the default outbound mailbox's address.
func (s *Service) ComposeChoices(ctx context.Context) ([]FromChoice, error) {
	return s.choices(ctx, store.Message{})
}

// Forward composes the forward of a message of the work item's conversation ("Fwd: "
// subject, the note, the original inline, the chosen original attachments and the
// uploads) and records it with its outbox row in one transaction. The work item's state
// does not change: a forward does not answer the customer.
func (s *Service) Forward(ctx context.Context, actor store.User, workItemID int64, req ForwardRequest) (store.OutboxItem, error) {
	if err := textField("text", req.Text); err != nil {
		return store.OutboxItem{}, err
	}
	wi, err := s.store.WorkItem(ctx, workItemID)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("forward from work item %d: %w", workItemID, err)
	}
	msgID := req.MessageID
	if msgID == 0 {
		msgID = wi.MessageID
	}
	orig, err := s.store.Message(ctx, msgID)
	if store.IsNotFound(err) || (err == nil && orig.ConversationID != wi.ConversationID) {
		return store.OutboxItem{}, &FieldError{Field: "message_id", Message: fmt.Sprintf("message %d is not one of this work item's conversation: pick one of its messages", msgID)}
	}
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("forward from work item %d: read message %d: %w", workItemID, msgID, err)
	}
	to, err := parseAddresses("to", req.To)
	if err != nil {
		return store.OutboxItem{}, err
	}
	choices, err := s.choices(ctx, orig)
	if err != nil {
		return store.OutboxItem{}, err
	}
	from, err := pick(choices, req.From)
	if err != nil {
		return store.OutboxItem{}, err
	}
	draft := message.ForwardDraft(orig, mail.Address{Name: from.DisplayName, Address: from.Address}, to, req.Text, s.now())
	if err := addCopies(&draft, req.Cc, req.Bcc); err != nil {
		return store.OutboxItem{}, err
	}
	if len(draft.To)+len(draft.Cc) == 0 {
		return store.OutboxItem{}, &FieldError{Field: "to", Message: "say whom to forward to: one address or more, like name@example.com"}
	}
	atts, err := s.originalAttachments(ctx, orig, req.AttachmentIDs)
	if err != nil {
		return store.OutboxItem{}, err
	}
	if err := s.addAttachments(ctx, &draft, from.MailboxID, slices.Concat(atts, req.Attachments)); err != nil {
		return store.OutboxItem{}, err
	}
	raw, parsed, rcpts, err := compose(draft, from.MailboxID, actor)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("compose forward from work item %d: %w", workItemID, err)
	}
	item, err := s.store.CreateForward(ctx, store.ForwardInput{WorkItemID: workItemID, UserID: actor.ID, Message: parsed,
		Raw: raw, From: from.Address, Recipients: rcpts})
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("record forward from work item %d: %w", workItemID, err)
	}
	s.log.Info("forward queued", slog.Int64("work_item_id", workItemID), slog.Int64("outbox_id", item.ID),
		slog.String("user", actor.Username), slog.Int64("message_id", msgID), slog.Int("attachments", len(draft.Attachments)))
	s.Wake()
	return item, nil
}

// originalAttachments reads the chosen attachments of orig from the store; an id that is
// not one of orig's is a FieldError.
func (s *Service) originalAttachments(ctx context.Context, orig store.Message, ids []int64) ([]Attachment, error) {
	var out []Attachment
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !slices.ContainsFunc(orig.Attachments, func(a store.Attachment) bool { return a.ID == id }) {
			return nil, &FieldError{Field: "attachment_ids", Message: fmt.Sprintf("attachment %d is not one of the forwarded message's: pick from its attachments", id)}
		}
		a, err := s.store.Attachment(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read attachment %d: %w", id, err)
		}
		name := a.Filename
		if name == "" {
			name = fmt.Sprintf("attachment-%d", a.ID)
		}
		out = append(out, Attachment{Filename: name, ContentType: a.ContentType, Data: a.Data})
	}
	return out, nil
}

// NewEmail composes a new email to a customer and records, in one transaction, a new
// conversation, its work item (assigned to the sender; pending unless Then says
// otherwise), the message and its outbox row. The customer's answer threads into the
// conversation through the email's Message-ID.
func (s *Service) NewEmail(ctx context.Context, actor store.User, req NewEmailRequest) (store.NewConversation, error) {
	if strings.TrimSpace(req.Text) == "" {
		return store.NewConversation{}, ErrEmptyNewEmail
	}
	if err := textField("text", req.Text); err != nil {
		return store.NewConversation{}, err
	}
	if err := textField("subject", req.Subject); err != nil {
		return store.NewConversation{}, err
	}
	subject := strings.Join(strings.Fields(req.Subject), " ")
	if subject == "" {
		return store.NewConversation{}, &FieldError{Field: "subject", Message: "write a subject: the customer sees it first"}
	}
	then := req.Then
	switch then {
	case "":
		then = store.StatePending
	case store.StatePending, store.StateAssigned, store.StateDone:
	default:
		return store.NewConversation{}, &FieldError{Field: "then", Message: "use pending (the default: wait for the customer), assigned (keep it) or done"}
	}
	to, err := parseAddresses("to", req.To)
	if err != nil {
		return store.NewConversation{}, err
	}
	if len(to) == 0 {
		return store.NewConversation{}, &FieldError{Field: "to", Message: "say whom to write to: the customer's address, like name@example.com"}
	}
	if req.QueueID != 0 {
		if _, err := s.store.Queue(ctx, req.QueueID); store.IsNotFound(err) {
			return store.NewConversation{}, &FieldError{Field: "queue_id", Message: fmt.Sprintf("there is no queue %d: pick one of the queues", req.QueueID)}
		} else if err != nil {
			return store.NewConversation{}, fmt.Errorf("read queue %d: %w", req.QueueID, err)
		}
	}
	choices, err := s.ComposeChoices(ctx)
	if err != nil {
		return store.NewConversation{}, err
	}
	from, err := pick(choices, req.From)
	if err != nil {
		return store.NewConversation{}, err
	}
	draft := message.Draft{From: mail.Address{Name: from.DisplayName, Address: from.Address}, To: to,
		Subject: subject, Text: req.Text, Date: s.now()}
	if err := addCopies(&draft, req.Cc, req.Bcc); err != nil {
		return store.NewConversation{}, err
	}
	if err := s.addAttachments(ctx, &draft, from.MailboxID, req.Attachments); err != nil {
		return store.NewConversation{}, err
	}
	raw, parsed, rcpts, err := compose(draft, from.MailboxID, actor)
	if err != nil {
		return store.NewConversation{}, fmt.Errorf("compose new email: %w", err)
	}
	nc, err := s.store.CreateOutbound(ctx, store.NewConversationInput{UserID: actor.ID, QueueID: req.QueueID, Message: parsed,
		Raw: raw, From: from.Address, Recipients: rcpts, Customer: to[0].Address, State: then})
	if err != nil {
		return store.NewConversation{}, fmt.Errorf("record new email: %w", err)
	}
	s.log.Info("new email queued", slog.Int64("work_item_id", nc.WorkItemID), slog.Int64("outbox_id", nc.Outbox.ID),
		slog.String("user", actor.Username), slog.String("from", from.Address))
	s.Wake()
	return nc, nil
}

// addCopies adds the agent's Cc and Bcc to the draft, without repeating an address.
func addCopies(d *message.Draft, ccIn, bccIn []string) error {
	cc, err := parseAddresses("cc", ccIn)
	if err != nil {
		return err
	}
	bcc, err := parseAddresses("bcc", bccIn)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	var to []mail.Address
	for _, a := range d.To {
		if key := strings.ToLower(a.Address); !have[key] {
			have[key] = true
			to = append(to, a)
		}
	}
	d.To = to
	if len(d.To) > maxExtraRecipients {
		return &FieldError{Field: "to", Message: fmt.Sprintf("at most %d addresses", maxExtraRecipients)}
	}
	appendCopies(d, have, cc, bcc)
	return nil
}
