// Package outbound turns an agent's reply into an outbox row and delivers the outbox.
//
// Invariants a change must keep:
//
//   - The reply (composed MIME with In-Reply-To and References), its outbox row and the work
//     item's new state are written in one transaction (store.CreateReply): a reply is never
//     half-recorded, and a crash before delivery leaves a queued row that the Sender sends
//     after the restart.
//   - A forward (store.CreateForward) and a new email (store.CreateOutbound, a conversation
//     of its own with its work item) are recorded the same way, in one transaction each
//     (forward.go); a forward never changes the work item's state.
//   - Delivery is at least once from the outbox's point of view: a row is marked sent only
//     after the server accepted the message. A 4xx answer or a broken connection is retried
//     with exponential backoff (kept in the outbox across restarts); a 5xx answer or refused
//     credentials mark the row failed with the server's words, shown to the agent.
//   - Results are per recipient (smtp.Deliver). When the server answers recipients
//     differently, one transaction (store.RecordOutboxOutcome) narrows the row to those it
//     refused for now (4xx, or a connection lost before they got it), which are retried
//     with backoff; those it accepted get a sent row and are never sent the message again;
//     those it refused for good (5xx, or still 4xx at the last attempt) get a failed row
//     whose LastError is the server's words, shown to the agent on the work item. When
//     every recipient fares alike the row is sent, retried or failed as a whole.
//   - A crash can repeat at most the row in flight: the Sender claims one row at a time,
//     as its node and a random instance id (store.Claimant), and records each outcome in
//     its own commit right after the server's answer; at start (Run) it releases its
//     node's earlier, dead instances' claims at once (store.ReleaseOutboxClaims) instead
//     of waiting out claimLease, which stays the fallback for other nodes' claims.
//   - Microsoft Graph rows go through a draft whose id is committed before it is sent
//     (sendGraph): a row with a draft id reads it first and sends it only while it is
//     still a draft, so a send whose answer was lost is recorded, not repeated.
//   - The Sender keeps one SMTP connection per outbound mailbox between sends (smtp.Sink:
//     NOOP after 30 s idle, closed after 5 minutes idle), rebuilt when the mailbox's
//     settings change.
package outbound

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/ews"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/wakeup"
	"github.com/postroom/postroom/internal/workitem"
)

// Delivery limits.
const (
	// maxAttempts is how many temporary failures a message may meet before it is failed.
	maxAttempts = 10
	// firstRetry doubles on each attempt up to lastRetry.
	firstRetry = 30 * time.Second
	lastRetry  = time.Hour
	// claimLease is how long a claimed row stays invisible to other senders: the fallback
	// for another node's claims. A restarted process releases its own node's earlier
	// claims at once (Sender.Run).
	claimLease = 10 * time.Minute
	// claimBatch is how many rows a sender claims at once: one, so that a crash leaves at
	// most the row in flight claimed, and no row waits behind a slow one of its batch.
	claimBatch = 1
	// idleScan is how often the outbox is read when nothing wakes the sender.
	idleScan = 5 * time.Second
)

// ErrNoOutboundMailbox means there is no outbound mailbox to send a reply from.
var ErrNoOutboundMailbox = errors.New("no outbound mailbox is configured: an administrator must add one and make it the default")

// ErrEmptyReply means the reply has no text.
var ErrEmptyReply = errors.New("the reply is empty: write a reply before sending")

// ErrNoSender means the message replied to has no sender address (From: <>, as delivery
// reports have, and no Reply-To): there is nobody a reply could go to.
var ErrNoSender = errors.New("the message has no sender address (its From is empty, as in delivery reports), so there is nobody to reply to: forward it, or write a new email, to the person who should get it")

// textField refuses a text that is not valid UTF-8 (a message is composed in UTF-8, and
// bytes that are not would reach the customer as garbage) with a FieldError on field.
func textField(field, text string) error {
	if utf8.ValidString(text) {
		return nil
	}
	return &FieldError{Field: field, Message: "the text has bytes that are not valid UTF-8: paste it again as plain text, or save it as UTF-8 first"}
}

// ReplyStore is what Service needs of the store: the work item and its message, the
// mailboxes and From addresses to send from, and the reply's transaction.
type ReplyStore interface {
	WorkItem(ctx context.Context, id int64) (store.WorkItem, error)
	Message(ctx context.Context, id int64) (store.Message, error)
	ConversationMessages(ctx context.Context, conversationID int64) ([]store.Message, error)
	ListMailboxes(ctx context.Context) ([]store.Mailbox, error)
	ListFromAddresses(ctx context.Context, mailboxID int64) ([]store.FromAddress, error)
	CreateReply(ctx context.Context, in store.ReplyInput) (store.OutboxItem, error)
	// For forwards and new emails (forward.go).
	Attachment(ctx context.Context, id int64) (store.Attachment, error)
	Queue(ctx context.Context, id int64) (store.Queue, error)
	CreateForward(ctx context.Context, in store.ForwardInput) (store.OutboxItem, error)
	CreateOutbound(ctx context.Context, in store.NewConversationInput) (store.NewConversation, error)
}

// Service records agents' replies.
type Service struct {
	store  ReplyStore
	log    *slog.Logger
	bus    *wakeup.Bus
	queued *wakeup.Subscription
	now    func() time.Time
}

// NewService returns a Service that wakes the senders of this process only. It does no
// I/O.
func NewService(st ReplyStore, logger *slog.Logger) *Service {
	return NewServiceWith(st, logger, nil)
}

// NewServiceWith returns a Service that wakes the senders of every node through bus
// (nil: this process only). It does no I/O.
func NewServiceWith(st ReplyStore, logger *slog.Logger, bus *wakeup.Bus) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	if bus == nil {
		bus = wakeup.NewLocal()
	}
	return &Service{store: st, log: logger, bus: bus, queued: bus.Subscribe(wakeup.Outbox, 0), now: time.Now}
}

// Queued signals when a reply was queued, on this node or (through the bus) another; a
// Sender listens on it to send at once.
func (s *Service) Queued() <-chan struct{} { return s.queued.C() }

// ErrUnknownFrom means the chosen From address is not one agents may send from.
var ErrUnknownFrom = errors.New("this From address is not one of ours: pick one from the list")

// ReplyRequest is what an agent sends.
type ReplyRequest struct {
	Text string
	// From is the address to send from; "" means the default choice.
	From string
	// Cc and Bcc are further recipients (addresses, or "Name <address>"); Bcc ones get the
	// message without appearing in it.
	Cc, Bcc []string
	// ReplyAll copies the customer's other recipients (their To and Cc, our own addresses
	// removed) into Cc.
	ReplyAll bool
	// Attachments are files sent with the reply.
	Attachments []Attachment
	// Then is the work item's state after the reply: store.StateDone, store.StatePending,
	// or "" / store.StateAssigned, the replying agent keeps it (the conversation goes on
	// until someone marks it done).
	Then string
	// SeenMessageID is the newest message of the conversation the agent had on screen
	// (workitem.LatestMessageID); when set, a reply to a conversation that changed since
	// is refused with a *workitem.ConversationChangedError unless Confirm is set (the
	// collision guard, workitem.CheckSeen). 0 skips the guard.
	SeenMessageID int64
	Confirm       bool
}

// Attachment is a file an agent attaches to a reply: its bytes in Data, or Size bytes
// that Open streams (an upload spooled to a temporary file is then read once, into the
// composed message, and never held whole in memory beside it).
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
	Size        int64
	Open        func() (io.ReadCloser, error)
}

// size is the attachment's size in bytes.
func (a Attachment) size() int64 {
	if a.Open != nil {
		return a.Size
	}
	return int64(len(a.Data))
}

// FieldError is a reply request the agent must correct: Field names the request field
// ("cc", "bcc", "attachments"), Message says what to do.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// DefaultMaxSendMB is the size limit of a reply when its outbound mailbox sets none.
const DefaultMaxSendMB = 20

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
	if err := textField("text", req.Text); err != nil {
		return store.OutboxItem{}, err
	}
	then := req.Then
	switch then {
	case "":
		then = store.StateAssigned
	case store.StateAssigned, store.StateDone, store.StatePending:
	default:
		return store.OutboxItem{}, &FieldError{Field: "then", Message: "use done, pending or assigned (the default: the item stays with you)"}
	}
	wi, err := s.store.WorkItem(ctx, workItemID)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: %w", workItemID, err)
	}
	orig, err := s.store.Message(ctx, wi.MessageID)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: read message %d: %w", workItemID, wi.MessageID, err)
	}
	if req.SeenMessageID != 0 && !req.Confirm {
		msgs, err := s.store.ConversationMessages(ctx, wi.ConversationID)
		if err != nil {
			return store.OutboxItem{}, fmt.Errorf("reply to work item %d: read the conversation: %w", workItemID, err)
		}
		if err := workitem.CheckSeen(msgs, req.SeenMessageID, false); err != nil {
			return store.OutboxItem{}, err
		}
	}
	choices, err := s.choices(ctx, orig)
	if err != nil {
		return store.OutboxItem{}, err
	}
	from, err := pick(choices, req.From)
	if err != nil {
		return store.OutboxItem{}, err
	}
	draft := message.ReplyDraft(orig, mail.Address{Name: from.DisplayName, Address: from.Address}, req.Text, s.now())
	if len(draft.To) == 0 {
		return store.OutboxItem{}, ErrNoSender
	}
	if err := s.addRecipients(ctx, &draft, orig, req); err != nil {
		return store.OutboxItem{}, err
	}
	if err := s.addAttachments(ctx, &draft, from.MailboxID, req.Attachments); err != nil {
		return store.OutboxItem{}, err
	}
	raw, parsed, rcpts, err := compose(draft, from.MailboxID, actor)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("compose reply to work item %d: %w", workItemID, err)
	}
	if len(rcpts) == 0 {
		return store.OutboxItem{}, fmt.Errorf("reply to work item %d: the message has no sender address to reply to", workItemID)
	}
	item, err := s.store.CreateReply(ctx, store.ReplyInput{
		WorkItemID: workItemID,
		UserID:     actor.ID,
		Message:    parsed,
		Raw:        raw,
		From:       from.Address,
		Recipients: rcpts,
		NewState:   then,
	})
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("record reply to work item %d: %w", workItemID, err)
	}
	s.log.Info("reply queued", slog.Int64("work_item_id", workItemID), slog.Int64("outbox_id", item.ID),
		slog.String("user", actor.Username), slog.String("from", from.Address))
	s.Wake()
	return item, nil
}

// pick returns the chosen From address, or the default when from is "".
func pick(choices []FromChoice, from string) (FromChoice, error) {
	from = strings.TrimSpace(from)
	for _, c := range choices {
		if (from == "" && c.Default) || (from != "" && strings.EqualFold(c.Address, from)) {
			return c, nil
		}
	}
	return FromChoice{}, ErrUnknownFrom
}

// compose renders the draft and returns its bytes, its parsed record for the store (the
// mailbox, the author, the Bcc kept for the agent) and the envelope recipients.
func compose(d message.Draft, mailboxID int64, actor store.User) ([]byte, store.Message, []string, error) {
	raw, parsed, err := message.Compose(d)
	if err != nil {
		return nil, store.Message{}, nil, err
	}
	parsed.MailboxID = mailboxID
	parsed.Direction = store.Outbound
	parsed.AuthorID = actor.ID
	parsed.Bcc = formatList(d.Bcc)
	var rcpts []string
	seen := map[string]bool{}
	for _, a := range slices.Concat(d.To, d.Cc, d.Bcc) {
		if key := strings.ToLower(a.Address); !seen[key] {
			seen[key] = true
			rcpts = append(rcpts, a.Address)
		}
	}
	return raw, parsed, rcpts, nil
}

// addRecipients adds the agent's Cc and Bcc, and with ReplyAll the customer's other
// recipients, to the draft; an address that does not parse is a FieldError.
func (s *Service) addRecipients(ctx context.Context, d *message.Draft, orig store.Message, req ReplyRequest) error {
	if req.ReplyAll {
		ours, err := s.ownAddresses(ctx)
		if err != nil {
			return err
		}
		message.ReplyAll(d, orig, func(a string) bool { return ours[strings.ToLower(a)] })
	}
	cc, err := parseAddresses("cc", req.Cc)
	if err != nil {
		return err
	}
	bcc, err := parseAddresses("bcc", req.Bcc)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, a := range slices.Concat(d.To, d.Cc) {
		have[strings.ToLower(a.Address)] = true
	}
	appendCopies(d, have, cc, bcc)
	return nil
}

// appendCopies adds cc and bcc to the draft's Cc and Bcc, leaving out the addresses in
// have (lower case) and adding each one it adds to have.
func appendCopies(d *message.Draft, have map[string]bool, cc, bcc []mail.Address) {
	for _, a := range cc {
		if key := strings.ToLower(a.Address); !have[key] {
			have[key] = true
			d.Cc = append(d.Cc, a)
		}
	}
	for _, a := range bcc {
		if key := strings.ToLower(a.Address); !have[key] {
			have[key] = true
			d.Bcc = append(d.Bcc, a)
		}
	}
}

// ownAddresses are the addresses of every mailbox and From address (lower case): a reply
// to all never copies them.
func (s *Service) ownAddresses(ctx context.Context) (map[string]bool, error) {
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	froms, err := s.store.ListFromAddresses(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("list From addresses: %w", err)
	}
	ours := map[string]bool{}
	for _, m := range boxes {
		ours[strings.ToLower(m.Address)] = true
		ours[strings.ToLower(m.Login)] = true
	}
	for _, f := range froms {
		ours[strings.ToLower(f.Address)] = true
	}
	delete(ours, "")
	return ours, nil
}

// parseAddresses reads the addresses an agent typed (one per entry, or several separated
// by commas in one).
func parseAddresses(field string, in []string) ([]mail.Address, error) {
	var out []mail.Address
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return nil, &FieldError{Field: field, Message: fmt.Sprintf("%q is not an email address: write name@example.com, one per entry", v)}
		}
		for _, a := range list {
			out = append(out, *a)
		}
	}
	if len(out) > maxExtraRecipients {
		return nil, &FieldError{Field: field, Message: fmt.Sprintf("at most %d addresses", maxExtraRecipients)}
	}
	return out, nil
}

// maxExtraRecipients bounds the Cc or Bcc of one reply: a contact center answers a
// customer, it does not send newsletters.
const maxExtraRecipients = 50

// addAttachments adds the files to the draft, refusing them when the message would be
// larger than the outbound mailbox may send (its Max size).
func (s *Service) addAttachments(ctx context.Context, d *message.Draft, mailboxID int64, atts []Attachment) error {
	if len(atts) == 0 {
		return nil
	}
	limitMB := DefaultMaxSendMB
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list mailboxes: %w", err)
	}
	for _, m := range boxes {
		if m.ID == mailboxID && m.MaxSizeMB > 0 {
			limitMB = m.MaxSizeMB
		}
	}
	total := int64(len(d.Text))
	for _, a := range atts {
		if a.size() == 0 {
			return &FieldError{Field: "attachments", Message: fmt.Sprintf("%q is empty: attach the file again", a.Filename)}
		}
		total += message.EncodedSize(int(a.size()))
		d.Attachments = append(d.Attachments, message.DraftAttachment{Filename: a.Filename, ContentType: a.ContentType, Data: a.Data, Open: a.Open})
	}
	if limit := int64(limitMB) << 20; total > limit {
		return &FieldError{Field: "attachments", Message: fmt.Sprintf("the attachments make the reply %.1f MB once encoded, over the %d MB "+
			"this outbound mailbox may send: attach fewer or smaller files, or share large ones as a link", float64(total)/(1<<20), limitMB)}
	}
	return nil
}

// formatList writes addresses as a header value would hold them.
func formatList(l []mail.Address) string {
	parts := make([]string, len(l))
	for i, a := range l {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// Wake tells the Senders of every node that the outbox has something new.
func (s *Service) Wake() { s.bus.Publish(wakeup.Outbox, 0) }

// SenderOptions configure a Sender.
type SenderOptions struct {
	Store     store.Store
	Passwords *credential.Passwords
	// Tokens returns the OAuth 2.0 token source of an outbound mailbox that signs in with
	// OAuth (XOAUTH2/OAUTHBEARER), or nil when it signs in with its password. A nil
	// Tokens means every mailbox uses its password.
	Tokens func(m store.Mailbox) connector.TokenFunc
	// HTTPClient makes Microsoft Graph requests (nil: a default client).
	HTTPClient *http.Client
	// GraphLimiter returns the request limiter shared by everything that talks to a
	// Microsoft Graph mailbox (see ingest.Options.GraphLimiter); nil: one per send.
	GraphLimiter func(m store.Mailbox) *graph.Limiter
	Logger       *slog.Logger
	// RootCAs replaces the system roots for TLS (tests).
	RootCAs *x509.CertPool
	Now     func() time.Time
	// Metrics, when set, counts delivery outcomes (postroom_outbox_deliveries_total).
	Metrics *metrics.Registry
	// Node names this host, the same at each start (internal/app keeps it in the data
	// folder's node-id file); claims carry it and the Sender's instance id (random, new
	// for each Sender), so that the next process on this node releases them at once when
	// this one dies.
	Node string
	// Stopping, when closed, makes Run stop taking rows: the row in flight is finished
	// (its send runs on Run's ctx, which may end later), no other is claimed or sent, and
	// Run returns. Rows claimed but not sent go back with ReleaseClaims. Nil: only ctx
	// stops Run.
	Stopping <-chan struct{}
}

// Sender delivers queued outbox rows. It keeps one smtp.Sink (one SMTP connection) per
// outbound mailbox, rebuilt when the mailbox's settings change; Close releases them.
type Sender struct {
	opts     SenderOptions
	log      *slog.Logger
	outcomes *metrics.Counter
	claimant store.Claimant

	mu    sync.Mutex
	sinks map[int64]*mailboxSink // by mailbox id

	// ewsURLs are the EWS URLs autodiscover found, by mailbox; ewsClient makes EWS requests.
	ewsURLs   ews.Endpoints
	ewsOnce   sync.Once
	ewsClient *http.Client
}

// mailboxSink is the Sink of one outbound mailbox and the settings it was built with.
type mailboxSink struct {
	sink      *smtp.Sink
	cfg       smtp.Config
	updatedAt time.Time
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
	outcomes := opts.Metrics.Counter("postroom_outbox_deliveries_total",
		"Delivery attempts of outbox rows by outcome: sent, partial (some recipients refused), retry, failed.", "outcome")
	for _, o := range []string{"sent", "partial", "retry", "failed"} {
		outcomes.Touch(o) // at 0 before the first delivery, so that a dashboard sees them
	}
	claimant := store.Claimant{Node: opts.Node, Instance: newInstanceID()}
	return &Sender{opts: opts, log: log, outcomes: outcomes, claimant: claimant, sinks: map[int64]*mailboxSink{}}
}

// newInstanceID is a random id of one Sender (one process start).
func newInstanceID() string {
	var b [12]byte
	_, _ = cryptorand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// ReleaseDeadClaims gives back at once the outbox rows an earlier instance on this node
// claimed and did not finish: that process died (a kill -9, a power cut), and its rows
// would otherwise wait for their lease. Run calls it once at start.
func (s *Sender) ReleaseDeadClaims(ctx context.Context) error {
	n, err := s.opts.Store.ReleaseOutboxClaims(ctx, s.claimant, s.opts.Now())
	if err != nil {
		return fmt.Errorf("release the outbox claims of the previous process: %w", err)
	}
	if n > 0 {
		s.log.Info("outbox: released the claims of a previous process on this node; sending them now", slog.Int("rows", n))
	}
	return nil
}

// stopping reports whether SenderOptions.Stopping is closed.
func (s *Sender) stopping() bool {
	select {
	case <-s.opts.Stopping:
		return true
	default:
		return false
	}
}

// ReleaseClaims gives back at once the rows this Sender claimed and did not send, for a
// graceful stop: call it after Run has returned, so that nothing is being sent. Like
// ReleaseDeadClaims it releases every claim of this node but the caller's: here the caller
// is a stand-in instance, so this Sender's own claims go too. Other nodes' claims keep
// their lease.
func (s *Sender) ReleaseClaims(ctx context.Context) (int, error) {
	n, err := s.opts.Store.ReleaseOutboxClaims(ctx, store.Claimant{Node: s.claimant.Node, Instance: "stopped-" + s.claimant.Instance}, s.opts.Now())
	if err != nil {
		return 0, fmt.Errorf("release the outbox claims at shutdown: %w", err)
	}
	return n, nil
}

// Run sends due rows whenever wake signals and every few seconds, until ctx is done; then
// it closes its connections.
func (s *Sender) Run(ctx context.Context, wake <-chan struct{}) {
	defer s.Close()
	t := time.NewTicker(idleScan)
	defer t.Stop()
	if err := s.ReleaseDeadClaims(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("outbox: the previous process's rows wait for their lease", slog.Any("error", err))
	}
	for {
		if _, err := s.SendDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("outbox: cannot read the outbox; retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.opts.Stopping:
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// Close closes the kept SMTP connections (QUIT). The Sender stays usable.
func (s *Sender) Close() error {
	s.mu.Lock()
	sinks := s.sinks
	s.sinks = map[int64]*mailboxSink{}
	s.mu.Unlock()
	for _, ms := range sinks {
		ms.sink.Close()
	}
	return nil
}

// SendDue claims and sends the rows that are due; it returns how many were sent (to at
// least one recipient).
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	sent := 0
	for {
		now := s.opts.Now()
		items, err := s.opts.Store.ClaimOutboxAs(ctx, s.claimant, now, now.Add(claimLease), claimBatch)
		if err != nil {
			return sent, fmt.Errorf("claim outbox: %w", err)
		}
		if len(items) == 0 {
			return sent, nil
		}
		for _, it := range items {
			if s.stopping() {
				return sent, nil // the rest of the batch goes back with ReleaseClaims
			}
			if s.deliver(ctx, it) {
				sent++
			}
		}
	}
}

// deliver sends one row and records the outcome.
func (s *Sender) deliver(ctx context.Context, it store.OutboxItem) bool {
	log := s.log.With(slog.Int64("outbox_id", it.ID), slog.Int64("work_item_id", it.WorkItemID))
	res, err := s.send(ctx, it)
	attempts := it.Attempts + 1
	now := s.opts.Now()
	s.recordStatus(ctx, log, it.MailboxID, res, err, now)
	if o := splitOutcome(it, res, err, attempts); groups(o) > 1 {
		return s.recordSplit(ctx, log, it, o, now)
	}
	switch {
	case err == nil:
		if err := s.opts.Store.MarkOutboxSent(ctx, it.ID, now); err != nil {
			log.Error("sent, but cannot record it", slog.Any("error", err))
		}
		log.Info("reply sent", slog.Int("recipients", len(it.Recipients)))
		s.outcomes.Inc("sent")
		return true
	case connector.IsPermanent(err) || attempts >= maxAttempts:
		text := err.Error()
		if !connector.IsPermanent(err) {
			if len(res.Refused) > 0 {
				text = res.Summary() // the connector's advice says it is retried: not any more
			}
			text = fmt.Sprintf("gave up after %d attempts: %s", attempts, text)
		}
		if err := s.opts.Store.MarkOutboxFailed(ctx, it.ID, attempts, text); err != nil {
			log.Error("cannot record failure", slog.Any("error", err))
		}
		log.Error("reply failed for good", slog.Any("error", err), slog.String("advice", connector.Advice(err)))
		s.outcomes.Inc("failed")
	default:
		next := now.Add(retryDelay(attempts))
		if err := s.opts.Store.MarkOutboxRetry(ctx, it.ID, attempts, next, err.Error()); err != nil {
			log.Error("cannot record retry", slog.Any("error", err))
		}
		log.Warn("reply not sent yet; retrying", slog.Any("error", err), slog.Time("next_attempt", next))
		s.outcomes.Inc("retry")
	}
	return false
}

// recordStatus records what a delivery attempt says about the outbound mailbox, as
// ingest does for inbound ones: connected (and last OK now) when the server took the
// message for anyone; an error when it could not be reached or refused the login or the
// settings. A refusal of the message or of recipients says nothing about the mailbox.
func (s *Sender) recordStatus(ctx context.Context, log *slog.Logger, mailboxID int64, res smtp.Result, err error, now time.Time) {
	st := store.MailboxStatus{Status: store.StatusConnected, At: now}
	if err != nil && len(res.Accepted) == 0 {
		var ce *connector.Error
		if !errors.As(err, &ce) || len(res.Refused) > 0 {
			return
		}
		switch ce.Kind {
		case connector.KindAuth, connector.KindNetwork, connector.KindTLS, connector.KindConfig:
			st = store.MailboxStatus{Status: store.StatusError, Message: err.Error(), At: now}
		default:
			return
		}
	}
	if err := s.opts.Store.SetMailboxStatus(ctx, mailboxID, st); err != nil && !store.IsNotFound(err) {
		log.Warn("cannot record the outbound mailbox's status", slog.Int64("mailbox_id", mailboxID), slog.Any("error", err))
	}
}

// splitOutcome sorts the recipients of row it by what attempt number attempts did to
// them: accepted, refused for now (retried unless this was the last attempt) or refused
// for good. A recipient the result does not mention (the attempt stopped before it) is
// refused for now with err.
func splitOutcome(it store.OutboxItem, res smtp.Result, err error, attempts int) store.OutboxOutcome {
	o := store.OutboxOutcome{Attempts: attempts, Delivered: res.Accepted}
	var deferred, failed []smtp.Refusal
	for _, r := range res.Refused {
		if r.Temporary() && attempts < maxAttempts {
			deferred = append(deferred, r)
		} else {
			failed = append(failed, r)
		}
	}
	if err != nil {
		seen := map[string]int{}
		for _, r := range res.Accepted {
			seen[r]++
		}
		for _, r := range res.Refused {
			seen[r.Recipient]++
		}
		for _, r := range it.Recipients {
			if seen[r] > 0 {
				seen[r]--
				continue
			}
			deferred = append(deferred, smtp.Refusal{Recipient: r, Text: "not attempted: " + err.Error()})
		}
	}
	for _, r := range deferred {
		o.Deferred = append(o.Deferred, r.Recipient)
	}
	for _, r := range failed {
		o.Failed = append(o.Failed, r.Recipient)
	}
	o.DeferredError = smtp.Result{Refused: deferred}.Summary()
	o.FailedError = smtp.Result{Refused: failed}.Summary()
	if slices.ContainsFunc(failed, smtp.Refusal.Temporary) {
		o.FailedError = fmt.Sprintf("gave up after %d attempts: %s", attempts, o.FailedError)
	}
	return o
}

// groups counts the non-empty groups of o: with one, every recipient fared alike.
func groups(o store.OutboxOutcome) int {
	n := 0
	for _, g := range [][]string{o.Delivered, o.Deferred, o.Failed} {
		if len(g) > 0 {
			n++
		}
	}
	return n
}

// recordSplit records an attempt that the server answered differently for different
// recipients: those who got the message are never sent it again, those refused for now
// stay in the outbox (this row, narrowed to them) for a retry with backoff, and those
// refused for good get a failed row with the server's words (store.RecordOutboxOutcome).
// It reports whether anyone got the message.
func (s *Sender) recordSplit(ctx context.Context, log *slog.Logger, it store.OutboxItem, o store.OutboxOutcome, now time.Time) bool {
	o.At = now
	if len(o.Deferred) > 0 {
		o.NextAttemptAt = now.Add(retryDelay(o.Attempts))
	}
	if err := s.opts.Store.RecordOutboxOutcome(ctx, it.ID, o); err != nil {
		// The row stays leased and queued: after the lease the whole reply is tried again
		// (at least once, as everywhere in the outbox).
		log.Error("cannot record which recipients got the reply", slog.Any("error", err))
	}
	attrs := []any{slog.Int("delivered", len(o.Delivered))}
	if len(o.Deferred) > 0 {
		attrs = append(attrs, slog.String("retrying", o.DeferredError), slog.Time("next_attempt", o.NextAttemptAt))
	}
	if len(o.Failed) > 0 {
		attrs = append(attrs, slog.String("failed", o.FailedError))
	}
	if len(o.Delivered) == 0 {
		log.Warn("reply refused for some recipients for good; retrying the others", attrs...)
		s.outcomes.Inc("retry")
		return false
	}
	log.Warn("reply sent to some recipients only", attrs...)
	s.outcomes.Inc("partial")
	return true
}

func (s *Sender) send(ctx context.Context, it store.OutboxItem) (smtp.Result, error) {
	m, err := s.opts.Store.Mailbox(ctx, it.MailboxID)
	if err != nil {
		if store.IsNotFound(err) {
			s.dropSink(it.MailboxID)
		}
		return smtp.Result{}, fmt.Errorf("outbound mailbox %d: %w", it.MailboxID, err)
	}
	if !m.Enabled {
		s.dropSink(m.ID)
		// Not permanent: the reply waits (with backoff) until an admin enables the mailbox.
		return smtp.Result{}, fmt.Errorf("outbound mailbox %q is disabled: an administrator must enable it on the Mailboxes page; the reply waits until then", m.Name)
	}
	if m.Protocol == "graph" {
		return s.sendGraph(ctx, m, it)
	}
	if m.Protocol == "ews" {
		return s.sendEWS(ctx, m, it)
	}
	if m.Protocol == "gmail" {
		return s.sendGmail(ctx, m, it)
	}
	sink, err := s.sink(ctx, m)
	if err != nil {
		return smtp.Result{}, err
	}
	return sink.Deliver(ctx, it.From, it.Recipients, it.Raw)
}

// sendGraph sends through Microsoft Graph, through a draft whose id the row keeps: the
// complete draft is made (graph.Sink.PrepareDraft), its id committed (SetOutboxDraft),
// then it is sent (SendDraft; saved to Sent Items). A row that already has a draft (its
// earlier attempt died or lost its answer) reads it first: still a draft, it is sent
// (no new draft); sent already (its copy in Sent Items, or 404 while the copy is not
// there), the row is recorded sent and nothing goes out again. Graph accepts or refuses
// a message for all its recipients at once.
func (s *Sender) sendGraph(ctx context.Context, m store.Mailbox, it store.OutboxItem) (smtp.Result, error) {
	var token connector.TokenFunc
	if s.opts.Tokens != nil {
		token = s.opts.Tokens(m)
	}
	var lim *graph.Limiter
	if s.opts.GraphLimiter != nil {
		lim = s.opts.GraphLimiter(m)
	}
	log := s.log.With(slog.String("mailbox", m.Name), slog.Int64("outbox_id", it.ID))
	sink, err := graph.NewSink(graph.Config{
		Limiter:  lim,
		GraphURL: credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud), Cloud: m.OAuth.Cloud, Mailbox: m.Address, Token: token,
		HTTPClient: s.opts.HTTPClient, Logger: log,
	})
	if err != nil {
		return smtp.Result{}, err
	}
	defer sink.Close()
	sent := smtp.Result{Accepted: slices.Clone(it.Recipients), Transactions: 1}
	id := it.GraphDraftID
	if id != "" {
		state, err := sink.DraftState(ctx, id)
		if err != nil {
			return smtp.Result{}, err
		}
		if state == graph.DraftSent {
			log.Warn("outbox: the reply's Graph draft was sent by an earlier attempt whose answer was lost; recorded sent, not sent again")
			return sent, nil
		}
	} else {
		if id, err = sink.PrepareDraft(ctx, it.From, it.Recipients, it.Raw); err != nil {
			return smtp.Result{}, err
		}
		if err := s.opts.Store.SetOutboxDraft(ctx, it.ID, id); err != nil {
			sink.DeleteDraft(context.WithoutCancel(ctx), id)
			return smtp.Result{}, fmt.Errorf("record the Graph draft of the reply: %w", err)
		}
	}
	if err := sink.SendDraft(ctx, id); err != nil {
		if connector.IsPermanent(err) {
			sink.DeleteDraft(context.WithoutCancel(ctx), id)
		}
		return smtp.Result{}, err
	}
	return sent, nil
}

// sink returns the kept Sink of mailbox m, or a new one when there is none or m's
// settings (UpdatedAt, or the password, which is stored apart) changed since it was built.
func (s *Sender) sink(ctx context.Context, m store.Mailbox) (*smtp.Sink, error) {
	password, err := s.opts.Passwords.Get(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	cfg := smtp.Config{
		Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login, Password: password,
		RootCAs: s.opts.RootCAs, Logger: s.log.With(slog.String("mailbox", m.Name)),
	}
	if s.opts.Tokens != nil {
		cfg.Token = s.opts.Tokens(m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ms := s.sinks[m.ID]; ms != nil {
		if ms.updatedAt.Equal(m.UpdatedAt) && sameServer(ms.cfg, cfg) {
			return ms.sink, nil
		}
		s.log.Info("outbox: mailbox settings changed; reconnecting", slog.String("mailbox", m.Name))
		ms.sink.Close()
	}
	ms := &mailboxSink{sink: smtp.New(cfg), cfg: cfg, updatedAt: m.UpdatedAt}
	s.sinks[m.ID] = ms
	return ms.sink, nil
}

// sameServer reports whether two configurations reach the same server as the same user.
func sameServer(a, b smtp.Config) bool {
	return a.Host == b.Host && a.Port == b.Port && a.Security == b.Security && a.Login == b.Login &&
		subtle.ConstantTimeCompare([]byte(a.Password.Reveal()), []byte(b.Password.Reveal())) == 1 &&
		(a.Token == nil) == (b.Token == nil)
}

// dropSink closes and forgets the Sink of a mailbox that is gone or disabled.
func (s *Sender) dropSink(mailboxID int64) {
	s.mu.Lock()
	ms := s.sinks[mailboxID]
	delete(s.sinks, mailboxID)
	s.mu.Unlock()
	if ms != nil {
		ms.sink.Close()
	}
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
