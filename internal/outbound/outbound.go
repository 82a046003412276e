// Package outbound turns an agent's reply into an outbox row and delivers the outbox.
//
// Invariants a change must keep:
//
//   - The reply (composed MIME with In-Reply-To and References), its outbox row and the work
//     item's new state are written in one transaction (store.CreateReply): a reply is never
//     half-recorded, and a crash before delivery leaves a queued row that the Sender sends
//     after the restart.
//   - Delivery is at least once from the outbox's point of view: a row is marked sent only
//     after the server accepted the message. A 4xx answer or a broken connection is retried
//     with exponential backoff (kept in the outbox across restarts); a 5xx answer or refused
//     credentials mark the row failed with the server's words, shown to the agent.
package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// Delivery limits.
const (
	// maxAttempts is how many temporary failures a message may meet before it is failed.
	maxAttempts = 10
	// firstRetry doubles on each attempt up to lastRetry.
	firstRetry = 30 * time.Second
	lastRetry  = time.Hour
	// claimLease is how long a claimed row stays invisible to other senders.
	claimLease = 10 * time.Minute
	// claimBatch is how many rows a sender claims at once.
	claimBatch = 20
	// idleScan is how often the outbox is read when nothing wakes the sender.
	idleScan = 5 * time.Second
)

// ErrNoOutboundMailbox means there is no outbound mailbox to send a reply from.
var ErrNoOutboundMailbox = errors.New("no outbound mailbox is configured: an administrator must add one and make it the default")

// ErrEmptyReply means the reply has no text.
var ErrEmptyReply = errors.New("the reply is empty: write a reply before sending")

// Service records agents' replies.
type Service struct {
	store  store.Store
	log    *slog.Logger
	queued chan struct{}
	now    func() time.Time
}

// NewService returns a Service. It does no I/O.
func NewService(st store.Store, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: st, log: logger, queued: make(chan struct{}, 1), now: time.Now}
}

// Queued signals when a reply was queued; a Sender listens on it to send at once.
func (s *Service) Queued() <-chan struct{} { return s.queued }

// ErrUnknownFrom means the chosen From address is not one agents may send from.
var ErrUnknownFrom = errors.New("this From address is not one of ours: pick one from the list")

// ReplyRequest is what an agent sends.
type ReplyRequest struct {
	Text string
	// From is the address to send from; "" means the default choice.
	From string
}

// FromChoice is an address an agent may reply from.
type FromChoice struct {
	Address     string
	DisplayName string
	MailboxID   int64 // the outbound mailbox that sends it
	Default     bool  // preselected for this work item
}

// FromChoices lists the addresses an agent may reply from: the From addresses of every
// enabled outbound mailbox and each one's own address. The default is the address the
// customer wrote to when it is one of them, else the default outbound mailbox's address.
func (s *Service) FromChoices(ctx context.Context, workItemID int64) ([]FromChoice, error) {
	wi, err := s.store.WorkItem(ctx, workItemID)
	if err != nil {
		return nil, fmt.Errorf("work item %d: %w", workItemID, err)
	}
	orig, err := s.store.Message(ctx, wi.MessageID)
	if err != nil {
		return nil, fmt.Errorf("work item %d: read message %d: %w", workItemID, wi.MessageID, err)
	}
	return s.choices(ctx, orig)
}

func (s *Service) choices(ctx context.Context, orig store.Message) ([]FromChoice, error) {
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	froms, err := s.store.ListFromAddresses(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("list From addresses: %w", err)
	}
	var out []FromChoice
	seen := map[string]bool{}
	add := func(c FromChoice) {
		key := strings.ToLower(c.Address)
		if c.Address == "" || seen[key] {
			return
		}
		seen[key] = true
		out = append(out, c)
	}
	defaultAddr := ""
	for _, m := range boxes {
		if m.Direction != store.Outbound || !m.Enabled {
			continue
		}
		if m.IsDefault {
			defaultAddr = m.Address
		}
		for _, f := range froms {
			if f.MailboxID == m.ID {
				add(FromChoice{Address: f.Address, DisplayName: f.DisplayName, MailboxID: m.ID})
			}
		}
		add(FromChoice{Address: m.Address, MailboxID: m.ID})
	}
	if len(out) == 0 {
		return nil, ErrNoOutboundMailbox
	}
	// The customer wrote to one of ours: answer from it.
	for _, a := range recipients(orig) {
		if seen[strings.ToLower(a)] {
			defaultAddr = a
			break
		}
	}
	marked := false
	for i := range out {
		if !marked && strings.EqualFold(out[i].Address, defaultAddr) {
			out[i].Default, marked = true, true
		}
	}
	if !marked {
		out[0].Default = true
	}
	return out, nil
}

// recipients lists the addresses of the message's To and Cc.
func recipients(m store.Message) []string {
	var out []string
	for _, list := range []string{m.To, m.Cc} {
		if list == "" {
			continue
		}
		addrs, err := mail.ParseAddressList(list)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			out = append(out, a.Address)
		}
	}
	return out
}

// Reply composes the reply to the work item's latest inbound message from the chosen (or
// default) From address and records message, outbox row and the state "replied" in one
// transaction.
func (s *Service) Reply(ctx context.Context, actor store.User, workItemID int64, req ReplyRequest) (store.OutboxItem, error) {
	if strings.TrimSpace(req.Text) == "" {
		return store.OutboxItem{}, ErrEmptyReply
	}
	wi, err := s.store.WorkItem(ctx, workItemID)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: %w", workItemID, err)
	}
	orig, err := s.store.Message(ctx, wi.MessageID)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: read message %d: %w", workItemID, wi.MessageID, err)
	}
	choices, err := s.choices(ctx, orig)
	if err != nil {
		return store.OutboxItem{}, err
	}
	var pick *FromChoice
	for i, c := range choices {
		if (req.From == "" && c.Default) || (req.From != "" && strings.EqualFold(c.Address, strings.TrimSpace(req.From))) {
			pick = &choices[i]
			break
		}
	}
	if pick == nil {
		return store.OutboxItem{}, ErrUnknownFrom
	}
	from := mail.Address{Name: pick.DisplayName, Address: pick.Address}
	draft := message.ReplyDraft(orig, from, req.Text, s.now())
	raw, parsed, err := message.Compose(draft)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("compose reply to work item %d: %w", workItemID, err)
	}
	parsed.MailboxID = pick.MailboxID
	parsed.Direction = store.Outbound
	var rcpts []string
	for _, a := range append(append([]mail.Address{}, draft.To...), draft.Cc...) {
		rcpts = append(rcpts, a.Address)
	}
	if len(rcpts) == 0 {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: the message has no sender address to reply to", workItemID)
	}
	item, err := s.store.CreateReply(ctx, store.ReplyInput{
		WorkItemID: workItemID,
		UserID:     actor.ID,
		Message:    parsed,
		Raw:        raw,
		From:       pick.Address,
		Recipients: rcpts,
		NewState:   store.StateReplied,
	})
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("record reply to work item %d: %w", workItemID, err)
	}
	s.log.Info("reply queued", slog.Int64("work_item_id", workItemID), slog.Int64("outbox_id", item.ID),
		slog.String("user", actor.Username), slog.String("from", pick.Address))
	s.Wake()
	return item, nil
}

// Wake tells the Sender that the outbox has something new.
func (s *Service) Wake() {
	select {
	case s.queued <- struct{}{}:
	default:
	}
}

// SenderOptions configure a Sender.
type SenderOptions struct {
	Store     store.Store
	Passwords *credential.Passwords
	Logger    *slog.Logger
	// RootCAs replaces the system roots for TLS (tests).
	RootCAs *x509.CertPool
	Now     func() time.Time
}

// Sender delivers queued outbox rows.
type Sender struct {
	opts SenderOptions
	log  *slog.Logger
}

// NewSender returns a Sender. It does no I/O.
func NewSender(opts SenderOptions) *Sender {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Sender{opts: opts, log: log}
}

// Run sends due rows whenever wake signals and every few seconds, until ctx is done.
func (s *Sender) Run(ctx context.Context, wake <-chan struct{}) {
	t := time.NewTicker(idleScan)
	defer t.Stop()
	for {
		if _, err := s.SendDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("outbox: cannot read the outbox; retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// SendDue claims and sends the rows that are due; it returns how many were sent.
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	sent := 0
	for {
		now := s.opts.Now()
		items, err := s.opts.Store.ClaimOutbox(ctx, now, now.Add(claimLease), claimBatch)
		if err != nil {
			return sent, fmt.Errorf("claim outbox: %w", err)
		}
		if len(items) == 0 {
			return sent, nil
		}
		for _, it := range items {
			if s.deliver(ctx, it) {
				sent++
			}
		}
	}
}

// deliver sends one row and records the outcome.
func (s *Sender) deliver(ctx context.Context, it store.OutboxItem) bool {
	log := s.log.With(slog.Int64("outbox_id", it.ID), slog.Int64("work_item_id", it.WorkItemID))
	err := s.send(ctx, it)
	attempts := it.Attempts + 1
	now := s.opts.Now()
	switch {
	case err == nil:
		if err := s.opts.Store.MarkOutboxSent(ctx, it.ID, now); err != nil {
			log.Error("sent, but cannot record it", slog.Any("error", err))
		}
		log.Info("reply sent", slog.Int("recipients", len(it.Recipients)))
		return true
	case connector.IsPermanent(err) || attempts >= maxAttempts:
		if err := s.opts.Store.MarkOutboxFailed(ctx, it.ID, attempts, err.Error()); err != nil {
			log.Error("cannot record failure", slog.Any("error", err))
		}
		log.Error("reply failed for good", slog.Any("error", err), slog.String("advice", connector.Advice(err)))
	default:
		next := now.Add(retryDelay(attempts))
		if err := s.opts.Store.MarkOutboxRetry(ctx, it.ID, attempts, next, err.Error()); err != nil {
			log.Error("cannot record retry", slog.Any("error", err))
		}
		log.Warn("reply not sent yet; retrying", slog.Any("error", err), slog.Time("next_attempt", next))
	}
	return false
}

func (s *Sender) send(ctx context.Context, it store.OutboxItem) error {
	m, err := s.opts.Store.Mailbox(ctx, it.MailboxID)
	if err != nil {
		return fmt.Errorf("outbound mailbox %d: %w", it.MailboxID, err)
	}
	if !m.Enabled {
		// Not permanent: the reply waits (with backoff) until an admin enables the mailbox.
		return fmt.Errorf("outbound mailbox %q is disabled: an administrator must enable it on the Mailboxes page; the reply waits until then", m.Name)
	}
	password, err := s.opts.Passwords.Get(ctx, m.ID)
	if err != nil {
		return err
	}
	sink := smtp.New(smtp.Config{
		Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
		RootCAs: s.opts.RootCAs, Logger: s.log,
	})
	defer sink.Close()
	return sink.Send(ctx, it.From, it.Recipients, it.Raw)
}

// retryDelay is the wait before attempt n+1: exponential with ±20% jitter.
func retryDelay(attempts int) time.Duration {
	d := firstRetry
	for i := 1; i < attempts && d < lastRetry; i++ {
		d *= 2
	}
	d = min(d, lastRetry)
	return d + time.Duration(rand.Int64N(int64(d)*2/5)) - d/5
}
