// Package store defines postroom's persistence contract: the records the product keeps
// (mailboxes, credentials, raw and parsed messages, conversations, work items, users,
// sessions, the outbox, per-mailbox source cursors and audit events) and the one Store
// interface that both engines implement: SQLite (internal/store/sqlite, the embedded
// default) and PostgreSQL (internal/store/postgres, for several nodes).
//
// Invariants every implementation keeps:
//
//   - IngestMessage stores the raw message, its parsed form, its attachments, the
//     conversation, the work item and the source cursor in ONE transaction. A message whose
//     (mailbox, source id) is already stored is reported as a duplicate and nothing is
//     written (DESIGN.md invariants 1 and 2).
//   - The second dedup key is the Message-ID plus a content hash: an inbound message with a
//     new (mailbox, source id) whose non-empty Message-ID and content match a stored one (the
//     same email To one of our mailboxes and Cc another, or fetched again after an IMAP
//     UIDVALIDITY change) is not stored twice: its (mailbox, source id) becomes another
//     source of the stored message, acknowledged like the first, and the work item lists
//     both mailboxes (DESIGN.md invariants 2 and 8).
//   - A message joins a conversation through its In-Reply-To and References (an id that
//     several conversations carry belongs to the first). Its own Message-ID puts it in a
//     conversation only when that id is one of our sent messages: an inbound message whose
//     Message-ID equals a stored one's but whose content differs is a new message in a
//     conversation of its own, so no stranger's mail lands in a customer's conversation.
//   - CreateReply writes the outbound message, the outbox row and the work item's new state
//     in ONE transaction, so a reply is never half-recorded.
//   - CreateForward writes a forward (message and outbox row) without changing the work
//     item's state or SLA clock; CreateOutbound writes a new conversation, its work item,
//     the message and the outbox row; each in ONE transaction.
//   - A write that carries a non-zero Fence (InboundMessage.Fence, Cursor.Fence,
//     MarkAckedFenced, SetMailboxStatusFenced) checks the mailbox's lease in its own
//     transaction and writes nothing, with ErrLeaseLost, when the lease is not the fence's
//     (another node took it): a lease holder paused past its lease cannot write behind the
//     new holder (internal/cluster). A lease's generation only grows.
//   - Secrets arrive already encrypted (internal/vault); the store never sees plaintext.
//   - "Not found" is ErrNotFound, tested with errors.Is, never (nil, nil).
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned when the requested record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique constraint (a mailbox name, a user name) is violated.
var ErrConflict = errors.New("already exists")

// ErrTooManySignIns is returned by AddPendingSignIn when the given maximum of unexpired
// sign-ins is in progress already.
var ErrTooManySignIns = errors.New("too many sign-ins in progress")

// Directions of mailboxes and messages.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Work item states.
const (
	// StateNew is an item being created: ingest classifies it and the store writes it
	// queued (or done, when a rule closed it) in the same transaction. The other states
	// are in routing.go.
	StateNew = "new"
)

// Outbox states.
const (
	OutboxQueued = "queued"
	OutboxSent   = "sent"
	OutboxFailed = "failed"
)

// Roles of users.
const (
	RoleAdmin      = "admin"
	RoleSupervisor = "supervisor"
	RoleAgent      = "agent"
)

// Mailbox connection states shown to administrators.
const (
	StatusUnknown   = "unknown"   // never checked
	StatusConnected = "connected" // last check succeeded
	StatusError     = "error"     // last check failed; StatusMessage says what to fix
)

// Mailbox is an inbound (IMAP now; POP3, Graph, EWS later) or outbound (SMTP) mailbox.
// Its secret (password) is not a field: it lives encrypted in the credentials table
// (SetSecret/Secret) and PasswordSet only says whether one is stored.
type Mailbox struct {
	ID        int64
	Name      string // unique, set at creation
	Direction string // Inbound or Outbound
	Protocol  string // "imap", "smtp"; "pop3", "graph", "ews" later
	Address   string // the email address customers write to (inbound) or send from (outbound)
	Host      string
	Port      int
	Security  string // "tls", "starttls", "none"
	Login     string
	Folder    string // IMAP folder to watch, "INBOX" by default
	// AfterAction is what happens at the source once a message is stored: for IMAP
	// AfterMarkRead (default), AfterMove (to MoveFolder) or AfterDelete; for POP3
	// AfterDelete (default) or AfterKeep (left on the server, tracked by UIDL).
	AfterAction string
	MoveFolder  string
	// QueueID is the queue an inbound mailbox is assigned to, 0 when none. Assignment
	// enables the mailbox (when the queue is enabled); unassignment disables it.
	QueueID int64
	// MaxSizeMB is the largest message ingested as a normal work item.
	MaxSizeMB int
	// PollInterval is how often the mailbox is polled when it cannot be watched.
	PollInterval time.Duration
	Enabled      bool
	// IsDefault marks the default outbound mailbox.
	IsDefault   bool
	PasswordSet bool // read-only: a secret named "password" is stored

	// Auth is how the mailbox signs in: AuthPassword (login and password) or one of the
	// OAuth 2.0 methods, whose settings are in OAuth.
	Auth  string
	OAuth OAuth
	// GraphURL is the Microsoft Graph host of a Graph mailbox ("" means the cloud's own).
	GraphURL string
	// AutodiscoverHost is, for an EWS mailbox without a Host, the host (host or host:port)
	// autodiscover asks instead of the address's domain ("" means the domain's own).
	AutodiscoverHost string
	// Read-only: which OAuth secrets are stored (SecretClientSecret, SecretCertificate,
	// SecretRefreshToken).
	ClientSecretSet bool
	CertificateSet  bool
	RefreshTokenSet bool
	// RefreshTokenAt is when the stored refresh token was last saved (read-only; zero when
	// none): a provider that rotates refresh tokens makes it the time of their last use.
	RefreshTokenAt time.Time

	Status        string    // StatusUnknown, StatusConnected or StatusError
	StatusMessage string    // for StatusError: what is wrong and what to do
	StatusAt      time.Time // when Status was last set
	LastOKAt      time.Time // last successful connection (zero if never)

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Sign-in methods of a mailbox (Mailbox.Auth).
const (
	// AuthPassword logs in with Login and the stored password.
	AuthPassword = "password"
	// AuthOAuthApp is the client credentials grant: the app signs in as itself with a
	// client secret or certificate ("Access Type: Without a User").
	AuthOAuthApp = "oauth_app"
	// AuthOAuthDelegated is a person's sign-in (authorization code with PKCE); the refresh
	// token it leaves is stored and rotated.
	AuthOAuthDelegated = "oauth_delegated"
	// AuthOAuthROPC is the resource owner password grant: Login and password are traded for
	// a token (fails with MFA; deprecated by Microsoft).
	AuthOAuthROPC = "oauth_ropc"
)

// Names of the encrypted secrets of a mailbox (SetSecret, Secret).
const (
	SecretPassword     = "password"
	SecretClientSecret = "client_secret"
	// SecretCertificate is a PEM bundle: the app's certificate and its private key.
	SecretCertificate  = "client_certificate"
	SecretRefreshToken = "refresh_token"
)

// OAuth holds the OAuth 2.0 settings of a mailbox whose Auth is not AuthPassword.
type OAuth struct {
	// Provider is "microsoft" (endpoints from Cloud/AuthorityURL and Tenant) or "custom"
	// (TokenURL and AuthorizeURL given).
	Provider string
	// Cloud is the Microsoft cloud preset ("global", "usgov", "usgov-dod", "china") or
	// "custom", whose login host is AuthorityURL.
	Cloud        string
	AuthorityURL string
	// Tenant is the directory (tenant) id or a verified domain.
	Tenant       string
	ClientID     string
	TokenURL     string
	AuthorizeURL string
	// Scopes, space separated; "" means the provider's default for the protocol.
	Scopes string
	// Account is the account that signed in (delegated), for display.
	Account string
	// SecretExpiresAt is the client secret's expiry date as recorded by the administrator
	// (or read from the token endpoint's answer); zero when unknown.
	SecretExpiresAt time.Time
}

// After-processing actions of inbound mailboxes.
const (
	AfterMarkRead = "mark_read"
	AfterMove     = "move"
	AfterDelete   = "delete"
	AfterKeep     = "keep"
)

// Queue is, for now, a named list of inbound mailboxes (routing comes later). A queue named
// DefaultQueue always exists.
type Queue struct {
	ID        int64
	Name      string
	Enabled   bool
	CreatedAt time.Time
	// Spec is the queue's routing settings (JSON of routing.QueueSettings; empty: none).
	Spec []byte
}

// DefaultQueue is the name of the queue that always exists.
const DefaultQueue = "Default"

// FromAddress is an address agents may send replies from ("Business Attribute" in the
// seed's product); it belongs to an outbound mailbox.
type FromAddress struct {
	ID          int64
	MailboxID   int64
	Address     string
	DisplayName string
	CreatedAt   time.Time
}

// MailboxStatus is the live connection state of a mailbox.
type MailboxStatus struct {
	Status  string
	Message string
	At      time.Time
}

// Message is one stored email, inbound or outbound, in its parsed form. The raw MIME source
// is kept separately (RawMessage) and attachments' content too (Attachment).
type Message struct {
	ID             int64
	ConversationID int64
	MailboxID      int64
	Direction      string
	// SourceID identifies the message at its source, the dedup key within a mailbox:
	// "imap:<uidvalidity>:<uid>" for IMAP. Empty for outbound messages.
	SourceID   string
	MessageID  string   // Message-ID header without angle brackets; may be empty
	InReplyTo  string   // first In-Reply-To message id, without angle brackets
	References []string // References message ids, without angle brackets, oldest first
	Subject    string
	FromName   string
	FromAddr   string
	To         string // display form of the To addresses, RFC 5322 syntax
	Cc         string
	ReplyTo    string // address replies go to, if the message set Reply-To
	Date       time.Time
	TextBody   string // decoded plain text, or text derived from HTML
	HTMLBody   string // decoded HTML as received: sanitize before display
	Size       int64  // size of the raw message in bytes
	// Unparsed is true when the MIME structure could not be parsed; ParseError says why.
	Unparsed   bool
	ParseError string
	// OverSize is true when the message was larger than the mailbox's Max size: only its
	// header is stored (Raw holds the header) and the original stays at the source.
	OverSize bool
	// Automatic says why a program wrote the message (message.Automatic), "" when a
	// person did.
	Automatic string
	// Bcc lists an outbound message's blind copies (RFC 5322 syntax): kept for the agent,
	// never in the header that is sent.
	Bcc string
	// AuthorID is the agent who wrote an outbound message (0: postroom itself);
	// AuthorName is filled when read.
	AuthorID    int64
	AuthorName  string
	Attachments []Attachment // metadata only when read back; Data filled only on insert
	CreatedAt   time.Time
}

// Attachment is one attachment or inline part (an image referenced by cid:) of a message.
type Attachment struct {
	ID          int64
	MessageID   int64
	Filename    string
	ContentType string
	ContentID   string // without angle brackets; set for inline parts
	Inline      bool
	Size        int64
	Data        []byte // content; filled on insert and by Store.Attachment only
	// Open, when set on insert instead of Data, gives the content as a stream (of Size
	// bytes) each time it is called: the parser leaves a large attachment in the raw
	// message and the store decodes it straight into the database, so that a large
	// message is not held in memory twice. Never set when read back.
	Open func() (io.Reader, error)
}

// Conversation groups the messages of one thread.
type Conversation struct {
	ID        int64
	MailboxID int64
	Subject   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WorkItem is the unit of work routed to agents: a conversation that needs an answer.
// The listing fields (Subject, FromName, FromAddr, MailboxName) are filled from the
// triggering message and the mailbox when read.
type WorkItem struct {
	ID             int64
	ConversationID int64
	MailboxID      int64
	MessageID      int64 // the latest inbound message of the work item
	State          string
	Unparsed       bool // the triggering message could not be parsed
	OverSize       bool // the triggering message was over the mailbox's Max size
	AssignedTo     int64
	Subject        string
	FromName       string
	FromAddr       string
	MailboxName    string
	// Mailboxes names every mailbox that received the work item's conversation, the work
	// item's own first (MailboxName), then the others in the order they received it: the
	// same email To one of our mailboxes and Cc another is one work item linked to both.
	Mailboxes  []string
	ReceivedAt time.Time
	UpdatedAt  time.Time

	// Routing (see routing.go): the queue and what classification decided.
	QueueID        int64
	QueueName      string
	Category       string
	Tags           []string
	PriorityAdjust int
	Skills         map[string]int
	Language       string
	SchemaID       int64
	SLAPolicyID    int64
	// QueuedAt starts the item's age in its queue; a declined or timed-out offer keeps it.
	QueuedAt time.Time
	// The running SLA clock: due and at-risk instants (zero when no SLA applies, or while
	// pending, when SLARemaining holds what was left).
	SLADueAt        time.Time
	SLARiskAt       time.Time
	SLAFirstDueAt   time.Time
	SLARemaining    time.Duration
	FirstResponseAt time.Time
	OfferedTo       int64
	OfferExpiresAt  time.Time
	DeclinedBy      []int64
	// Flag is set for a supervisor's attention (e.g. declined three times).
	Flag           string
	PreferredAgent int64
	PreferredUntil time.Time
	Overflowed     bool
	// StateReason is why the item is in its state (e.g. "spam" for a closed one).
	StateReason string
	AssignedAt  time.Time
	DoneAt      time.Time
	// AssignedName is the assigned agent's display name (or username).
	AssignedName string
}

// WorkItemFilter selects work items for a listing. Zero values mean "any".
type WorkItemFilter struct {
	// Query is a full-text search: a work item matches when one message of its
	// conversation (inbound, or a reply) has every word of Query in its subject, sender,
	// To and Cc lists or body, case-insensitively, the last word as a prefix. Anything but
	// letters and digits only separates words (no search syntax); a Query with no word
	// matches nothing.
	Query string
	State string
	// States, when not empty, selects any of these states (State is then ignored).
	States     []string
	QueueID    int64
	AssignedTo int64
	// Unassigned selects the work items assigned to nobody (AssignedTo is then ignored).
	Unassigned bool
	OfferedTo  int64
	// Sort is "newest" (received, the default) or "oldest" (by the age in the queue).
	Sort   string
	Limit  int // 0 means a default of 100
	Offset int
}

// SavedView is a work item list filter a user saved under a name: the list's query string
// (q, state, queue, assignee, sort), as workitem.ParseFilter reads it.
type SavedView struct {
	ID     int64
	UserID int64 // the owner
	Name   string
	Filter string // URL-encoded query string, e.g. "assignee=none&queue=2&sort=oldest"
	// Shared views are listed for every user, not only for their owner.
	Shared    bool
	CreatedAt time.Time
	// OwnerName is the owner's display name (or username), filled when read.
	OwnerName string
}

// Cursor is a per-mailbox position at the source (for IMAP: "<uidvalidity>:<lastuid>").
type Cursor struct {
	MailboxID int64
	Value     string
	// Fence, when not zero, is checked in the cursor's transaction (ErrLeaseLost).
	Fence Fence
}

// InboundMessage is what the ingest pipeline hands to IngestMessage.
type InboundMessage struct {
	MailboxID int64
	Raw       []byte
	// Message is the parsed form; its SourceID is the dedup key. Attachments carry Data.
	Message Message
	// Cursor, when not nil, is saved in the same transaction.
	Cursor *Cursor
	// Fence, when not zero, is the lease of the ingest loop storing the message: the
	// transaction checks it first and fails with ErrLeaseLost, writing nothing, when the
	// lease moved (internal/cluster).
	Fence Fence
	// ReceivedAt is when the source received the message (IMAP INTERNALDATE). It starts the
	// work item's age; zero (or a time in the future) means now.
	ReceivedAt time.Time
	// Classification, when not nil, is what the classification rules decided (queue,
	// priority, skills, SLA): the store writes it on the work item. Without it the item
	// goes to the mailbox's queue with no requirements.
	Classification *Classification
	// AutoReply, when not nil, is an automatic message to the sender (the over-size
	// notice, the acknowledgement) stored as an outbound message of the same conversation
	// and queued in the outbox in the same transaction, so that it is sent exactly once.
	// The store drops it, sending nothing, when the message is automatic itself (never an
	// answer to a program), when it is NewConversationOnly and the message joined a
	// conversation, or when Limit is reached for a recipient.
	AutoReply *AutoReply
	// Bounce, when not nil, is the delivery status notification this message is: matched
	// to the outbound message it reports on, it marks that message's outbox items bounced
	// and joins its conversation without reopening or creating a work item.
	Bounce *Bounce
}

// AutoReply is an automatic outbound message recorded with an inbound one.
type AutoReply struct {
	// Message is the parsed form (Direction Outbound, MailboxID the outbound mailbox).
	Message Message
	Raw     []byte
	// From is the envelope sender: "" (MAIL FROM:<>) for automatic mail, so that a
	// failure report about it goes nowhere (RFC 3834 §3.3).
	From       string
	Recipients []string
	// Kind is AutoKindOversize or AutoKindAcknowledgement.
	Kind string
	// NewConversationOnly sends it only when the message starts a conversation.
	NewConversationOnly bool
	// Limit bounds automatic messages per recipient address (zero: no bound).
	Limit AutoLimit
	// Compose, when not nil, composes Message and Raw inside the transaction, once the
	// work item's id is known (a template may show it); nil Raw sends nothing. It must
	// not fail for want of a good template: an error fails the whole ingest.
	Compose func(workItemID int64) (Message, []byte, error)
}

// IngestResult tells what IngestMessage did.
type IngestResult struct {
	MessageID      int64
	ConversationID int64
	WorkItemID     int64
	// Duplicate is true when the message was stored already; the ids are those of the
	// stored copy. Either its (mailbox, source id) was stored and nothing was written, or
	// (Linked) the same email (Message-ID and content) was stored through another source.
	Duplicate bool
	// Linked is true (with Duplicate) when the (mailbox, source id) was new but the same
	// email was stored already: the source was recorded as another source of the stored
	// message, with the cursor; nothing else was written.
	Linked bool
	// Threaded is true when the message joined an existing conversation.
	Threaded bool
}

// OutboxItem is one outgoing message waiting for, or done with, delivery.
type OutboxItem struct {
	ID            int64
	MailboxID     int64 // the outbound mailbox that sends it
	WorkItemID    int64
	MessageID     int64 // the stored outbound Message
	From          string
	Recipients    []string
	Raw           []byte
	State         string // OutboxQueued, OutboxSent, OutboxFailed, OutboxBounced
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        time.Time
	// Claim is the process that claimed the row last (ClaimOutboxAs); zero when no
	// process holds it.
	Claim Claimant
	// GraphDraftID is the complete Microsoft Graph draft the row is sent through
	// (SetOutboxDraft); "" before one is made, and for SMTP.
	GraphDraftID string
}

// Claimant names the process that claims outbox rows: Node is stable for a data folder
// (a host), Instance is new at each start of the process. A process that starts releases
// the claims of its node's earlier instances at once (ReleaseOutboxClaims): they died.
type Claimant struct {
	Node, Instance string
}

// OutboxOutcome is what one delivery attempt did for each recipient of an outbox item
// (RecordOutboxOutcome). Delivered, Deferred and Failed together hold each of the item's
// Recipients exactly once.
type OutboxOutcome struct {
	// Attempts counts the item's delivery attempts, this one included.
	Attempts int
	// At is when the attempt ended: the SentAt of the delivered recipients (zero: now).
	At time.Time
	// Delivered are the recipients the server accepted the message for.
	Delivered []string
	// Deferred were refused for now (4xx, or the connection failed before they got it):
	// they are tried again at NextAttemptAt; DeferredError is the server's words.
	Deferred      []string
	DeferredError string
	NextAttemptAt time.Time
	// Failed were refused for good (5xx, or deferred too many times); FailedError is the
	// server's words, shown to the agent.
	Failed      []string
	FailedError string
}

// ReplyInput is what CreateReply records in one transaction.
type ReplyInput struct {
	WorkItemID int64
	UserID     int64
	// Message is the composed reply in parsed form (Direction Outbound, MailboxID the
	// outbound mailbox, ConversationID is filled by the store from the work item).
	Message    Message
	Raw        []byte
	From       string // envelope sender
	Recipients []string
	// NewState is the work item's state after the reply, StateDone when empty.
	NewState string
}

// User is a person who signs in: an admin, a supervisor or an agent.
type User struct {
	ID           int64
	Username     string
	DisplayName  string
	Role         string
	PasswordHash string
	CreatedAt    time.Time
	Email        string
	Disabled     bool
	TimeZone     string  // IANA name for the user's pages; "" for UTC
	Teams        []int64 // filled by UserByID and ListUsers
}

// Session is a signed-in browser session. The token itself is never stored, only its
// hash; ID is the session's name for people and URLs (never the hash, a credential).
type Session struct {
	ID        int64
	TokenHash string
	UserID    int64
	CSRFToken string
	CreatedAt time.Time
	// ExpiresAt is the end of the session's absolute lifetime as set at sign-in.
	ExpiresAt time.Time
	// LastSeenAt is when a request last used the session (zero at creation: CreatedAt);
	// it is updated at most once a minute.
	LastSeenAt time.Time
	// ClientAddr is the client address that signed in, UserAgent its User-Agent header
	// (both for people to recognise their sessions; at most 512 bytes kept).
	ClientAddr string
	UserAgent  string
}

// APIToken scopes (APIToken.Scopes): ScopeRead allows reading only (GET and HEAD) with
// the owner's role; a role scope (RoleAgent, RoleSupervisor, RoleAdmin) caps the role the
// token acts with. No scopes: the owner's role, unrestricted.
const ScopeRead = "read"

// APIToken is a bearer token a user creates for a script.
type APIToken struct {
	ID        int64
	UserID    int64
	Name      string
	TokenHash string
	CreatedAt time.Time
	// Scopes limit what the token may do (ScopeRead and the roles).
	Scopes []string
	// ExpiresAt is when the token stops working; zero: never (tokens made before
	// expiries existed).
	ExpiresAt time.Time
	// LastUsedAt is when a request last used the token (zero: never), updated at most once
	// a minute.
	LastUsedAt time.Time
	// Username is the owner's username, filled in by the listings (which leave TokenHash
	// empty: a listing has no use for the credential).
	Username string
}

// PendingSignIn is a delegated sign-in ("Sign in with Microsoft") between its button and
// its callback: the authorization code grant with PKCE needs the verifier, the redirect URI
// and who started it when the provider sends the browser back, possibly to another node.
// It is kept in the store so that any node can finish it, once.
type PendingSignIn struct {
	// State is the OAuth state that travels through the browser. The store keeps only its
	// SHA-256 (hex): a state read from the database cannot be replayed.
	State string
	// SessionHash is the token hash of the admin's session that started the sign-in.
	SessionHash string
	MailboxID   int64
	// Verifier is the PKCE code_verifier sealed by the vault; never plaintext.
	Verifier    []byte
	RedirectURI string
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// SSOSignIn is a staff member's OpenID Connect sign-in (internal/sso) between the
// "Sign in with ..." button and the provider's callback, kept in the store so that any node
// can finish it, once.
type SSOSignIn struct {
	// State travels through the browser; the store keeps only its SHA-256 (hex).
	State string
	// BrowserHash is the SHA-256 (hex) of the random value in the cookie of the browser
	// that started the sign-in: the callback must come from that browser.
	BrowserHash string
	// NonceHash is the SHA-256 (hex) of the nonce sent to the provider, which the id token
	// must carry back.
	NonceHash string
	// Verifier is the PKCE code_verifier sealed by the vault; never plaintext.
	Verifier []byte
	// Issuer is the provider the sign-in was started with (a configuration changed
	// meanwhile makes the callback refuse it).
	Issuer      string
	RedirectURI string
	// Next is the page of this site to go to after the sign-in.
	Next      string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// ExternalIdentity links a user to their account at an identity provider: the issuer and
// the provider's stable id of the person (Entra ID's object id, else the subject).
type ExternalIdentity struct {
	Issuer    string
	Subject   string
	UserID    int64
	CreatedAt time.Time
}

// AuditEvent records who changed what. Secrets in Old/New are masked by the caller.
type AuditEvent struct {
	ID     int64
	At     time.Time
	Actor  string // user name, or "system"
	Action string // e.g. "mailbox.create", "workitem.reply"
	Object string // e.g. "mailbox:3"
	Old    string
	New    string
}

// The store is split by aggregate into role interfaces; each consumer takes the narrow one
// it needs (auth takes Users, the routing engine WorkItems and Users, ...). Store is all of
// them, implemented by sqlstore for both engines. Every method takes a context and wraps
// its errors with the operation; ErrNotFound and ErrConflict are returned (wrapped) where
// they apply.

// Settings are small key/value pairs (for example the vault's key check).
type Settings interface {
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// Mailboxes holds mailboxes, their secrets, From addresses, queues and delegated sign-ins
// in progress.
type Mailboxes interface {
	// Mailboxes.
	CreateMailbox(ctx context.Context, m Mailbox) (Mailbox, error)
	UpdateMailbox(ctx context.Context, m Mailbox) error
	Mailbox(ctx context.Context, id int64) (Mailbox, error)
	MailboxByName(ctx context.Context, name string) (Mailbox, error)
	ListMailboxes(ctx context.Context) ([]Mailbox, error)
	// EnabledInboundIDs returns the ids of the enabled inbound mailboxes whose protocol is
	// one of protocols, in id order, without reading whole rows: what the cluster asks for
	// every second, which for 10,000 mailboxes must not cost 10,000 Mailbox values.
	EnabledInboundIDs(ctx context.Context, protocols []string) ([]int64, error)
	// DeleteMailbox removes a mailbox from every listing and lookup and wipes its secrets
	// and cursor. Its messages, conversations and work items stay (they still show the
	// mailbox's name); the name becomes free for a new mailbox.
	DeleteMailbox(ctx context.Context, id int64) error
	SetMailboxStatus(ctx context.Context, id int64, st MailboxStatus) error
	// SetMailboxEnabled sets the enabled flag of one mailbox and bumps UpdatedAt;
	// SetAllMailboxesEnabled does it for every mailbox of a direction ("" for both).
	SetMailboxEnabled(ctx context.Context, id int64, enabled bool) error
	SetAllMailboxesEnabled(ctx context.Context, direction string, enabled bool) error
	// AssignMailbox puts an inbound mailbox in a queue (queueID 0: in none) in one
	// transaction: assigned to an enabled queue it is enabled, otherwise disabled.
	AssignMailbox(ctx context.Context, mailboxID, queueID int64) error

	// Queues. EnsureDefaultQueue creates the DefaultQueue (enabled) when missing.
	EnsureDefaultQueue(ctx context.Context) (Queue, error)
	CreateQueue(ctx context.Context, q Queue) (Queue, error)
	Queue(ctx context.Context, id int64) (Queue, error)
	ListQueues(ctx context.Context) ([]Queue, error)
	// SetQueueEnabled enables or disables a queue and, in the same transaction, every
	// mailbox assigned to it.
	SetQueueEnabled(ctx context.Context, id int64, enabled bool) error

	// From addresses of outbound mailboxes (mailboxID 0 lists all). The address is unique
	// per mailbox (ErrConflict).
	AddFromAddress(ctx context.Context, f FromAddress) (FromAddress, error)
	ListFromAddresses(ctx context.Context, mailboxID int64) ([]FromAddress, error)
	DeleteFromAddress(ctx context.Context, id int64) error
	// SetSecret stores an encrypted secret for a mailbox under a name ("password").
	SetSecret(ctx context.Context, mailboxID int64, name string, ciphertext []byte) error
	Secret(ctx context.Context, mailboxID int64, name string) ([]byte, error)
	// DeleteSecret removes a mailbox's secret called name; none stored is not an error.
	DeleteSecret(ctx context.Context, mailboxID int64, name string) error

	// Delegated sign-ins in progress (PendingSignIn). A mailbox's deletion deletes them.
	// AddPendingSignIn deletes the sign-ins expired at now, then keeps p (CreatedAt zero:
	// now); ErrTooManySignIns when limit unexpired ones are kept already, ErrNotFound when the
	// mailbox does not exist, ErrConflict when the state is kept already. Adds at the same
	// moment on several PostgreSQL nodes may each pass the check, so limit may be exceeded
	// by as many.
	AddPendingSignIn(ctx context.Context, p PendingSignIn, limit int, now time.Time) error
	// TakePendingSignIn deletes the sign-in of state and returns it, in one statement: of
	// several takes at once, on any nodes, exactly one gets it. Unknown, taken already or
	// expired at now (an expired one is deleted too) is ErrNotFound.
	TakePendingSignIn(ctx context.Context, state string, now time.Time) (PendingSignIn, error)
}

// Ingest stores inbound messages with their source positions.
type Ingest interface {
	// Inbound messages.
	IngestMessage(ctx context.Context, in InboundMessage) (IngestResult, error)
	// IngestMessages stores several inbound messages in order in ONE transaction, each as
	// IngestMessage would (a later one sees the earlier ones); the results are in the same
	// order. When one fails, none is stored.
	IngestMessages(ctx context.Context, in []InboundMessage) ([]IngestResult, error)
	// MessageBySource, MarkAcked and PendingAcks consider every source of a message: the
	// one it was stored through and those linked to it later (IngestResult.Linked).
	// MessageBySource finds a stored message by its dedup key. A source whose message
	// retention or erasure deleted is still known: it gives a Message with ID 0 and only
	// MailboxID, Direction and SourceID set (Privacy).
	MessageBySource(ctx context.Context, mailboxID int64, sourceID string) (Message, error)
	// MarkAcked records that the message was acknowledged at its source.
	// Several ids are recorded in one statement (the ingest acknowledges a batch at once);
	// ErrNotFound when any of them is not a stored source of the mailbox.
	MarkAcked(ctx context.Context, mailboxID int64, sourceIDs ...string) error
	// PendingAcks lists source ids stored but not yet acknowledged at the source.
	PendingAcks(ctx context.Context, mailboxID int64) ([]string, error)
	// RecordIngestFailure counts one more failed attempt to store the message (mailbox,
	// source id), keeps lastError, and returns the number of failed attempts so far. A
	// successful IngestMessage of that source forgets its failures.
	RecordIngestFailure(ctx context.Context, mailboxID int64, sourceID, lastError string) (int, error)
	Cursor(ctx context.Context, mailboxID int64) (Cursor, error)
	SetCursor(ctx context.Context, c Cursor) error
	// CountMessages counts stored messages of a mailbox (all directions when mailboxID is 0).
	CountMessages(ctx context.Context, mailboxID int64) (int, error)
	// CountMessagesSince counts messages of a mailbox stored at or after since.
	CountMessagesSince(ctx context.Context, mailboxID int64, since time.Time) (int, error)
}

// Messages reads stored messages, their raw source, attachments and conversations.
type Messages interface {
	Message(ctx context.Context, id int64) (Message, error)
	RawMessage(ctx context.Context, messageID int64) ([]byte, error)
	Attachment(ctx context.Context, id int64) (Attachment, error)
	ConversationMessages(ctx context.Context, conversationID int64) ([]Message, error)
	// LatestMessageID is the largest message id of a conversation (0 when it has none):
	// what changes when anything is added to it, read without reading the messages.
	LatestMessageID(ctx context.Context, conversationID int64) (int64, error)
}

// WorkItems holds work items.
type WorkItems interface {
	ListWorkItems(ctx context.Context, f WorkItemFilter) ([]WorkItem, error)
	// CountWorkItems counts the work items matching f (Limit and Offset ignored).
	CountWorkItems(ctx context.Context, f WorkItemFilter) (int, error)
	WorkItem(ctx context.Context, id int64) (WorkItem, error)
}

// SavedViews holds the users' saved work item list filters.
type SavedViews interface {
	// CreateSavedView stores v (CreatedAt set by the store); ErrConflict when its owner
	// has a view of that name already, ErrNotFound when the owner does not exist.
	CreateSavedView(ctx context.Context, v SavedView) (SavedView, error)
	// ListSavedViews lists the views userID may use: their own and every shared one, by
	// name. Deleting a user deletes their views.
	ListSavedViews(ctx context.Context, userID int64) ([]SavedView, error)
	SavedView(ctx context.Context, id int64) (SavedView, error)
	DeleteSavedView(ctx context.Context, id int64) error
}

// Outbox records replies and their delivery.
type Outbox interface {
	CreateReply(ctx context.Context, in ReplyInput) (OutboxItem, error)
	// ClaimOutbox returns up to limit queued items due at now and moves their
	// NextAttemptAt to leaseUntil, so that no other worker takes them meanwhile.
	ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]OutboxItem, error)
	// ClaimOutboxAs is ClaimOutbox that records by on the claimed rows (OutboxItem.Claim).
	ClaimOutboxAs(ctx context.Context, by Claimant, now, leaseUntil time.Time, limit int) ([]OutboxItem, error)
	// ReleaseOutboxClaims makes the queued rows claimed by another instance of by.Node
	// due at now and unclaimed, and returns how many: a process calls it at start, when
	// every earlier instance of its node is dead. On SQLite (one node) it releases every
	// claim not of by.Instance. Claims of other nodes keep their lease.
	ReleaseOutboxClaims(ctx context.Context, by Claimant, now time.Time) (int, error)
	// SetOutboxDraft records the Microsoft Graph draft a queued row is sent through ("":
	// none), in its own commit, before the draft is sent.
	SetOutboxDraft(ctx context.Context, id int64, draftID string) error
	MarkOutboxSent(ctx context.Context, id int64, at time.Time) error
	MarkOutboxRetry(ctx context.Context, id int64, attempts int, next time.Time, lastError string) error
	MarkOutboxFailed(ctx context.Context, id int64, attempts int, lastError string) error
	// RecordOutboxOutcome writes, in one transaction, an attempt that the server answered
	// differently for different recipients. The queued item id keeps the first non-empty
	// group of Deferred (narrowed to them, queued for NextAttemptAt), Delivered (sent) and
	// Failed (failed); each other non-empty group becomes a new item of the same reply
	// (mailbox, work item, message, From, CreatedAt) in its state, so that nobody who got
	// the message gets it again and everyone's fate is on the work item. Every item
	// written has o.Attempts. The groups must split the item's Recipients exactly, and the
	// item must be queued; otherwise nothing is written.
	RecordOutboxOutcome(ctx context.Context, id int64, o OutboxOutcome) error
	OutboxItem(ctx context.Context, id int64) (OutboxItem, error)
	OutboxForWorkItem(ctx context.Context, workItemID int64) ([]OutboxItem, error)
	// CountOutbox counts the outbox items in a state (OutboxQueued, ...).
	CountOutbox(ctx context.Context, state string) (int, error)
}

// Users holds users, their sessions and API tokens.
type Users interface {
	CreateUser(ctx context.Context, u User) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	UserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	SetUserPassword(ctx context.Context, id int64, passwordHash string) error
	// UpdateUser saves the user's display name, email, role, disabled flag and time zone;
	// ErrLastAdmin when it would leave no enabled admin (checked in the transaction).
	// Disabling a user deletes their sessions and API tokens.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser deletes a user (ErrLastAdmin for the last enabled admin); their work items
	// stay, unassigned.
	DeleteUser(ctx context.Context, id int64) error
	CreateSession(ctx context.Context, s Session) error
	SessionByTokenHash(ctx context.Context, tokenHash string) (Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// ListSessions lists the unexpired sessions of a user (ExpiresAt after now), the most
	// recently seen first, without TokenHash and CSRFToken.
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error)
	// DeleteSessionOf deletes the session id of user userID and returns it (without
	// TokenHash and CSRFToken); ErrNotFound when the user has no session with that id.
	DeleteSessionOf(ctx context.Context, userID, id int64) (Session, error)
	// DeleteSessionsOf deletes every session of a user and returns how many there were.
	DeleteSessionsOf(ctx context.Context, userID int64) (int, error)
	// TouchSession sets the session's LastSeenAt; ErrNotFound when it is gone.
	TouchSession(ctx context.Context, id int64, at time.Time) error
	CreateAPIToken(ctx context.Context, t APIToken) (APIToken, error)
	APITokenByHash(ctx context.Context, tokenHash string) (APIToken, error)
	// APIToken returns the token with the id, with its owner's Username and without its
	// TokenHash.
	APIToken(ctx context.Context, id int64) (APIToken, error)
	// ListAPITokens lists every API token, newest first, with its owner's Username and
	// without its TokenHash; ListAPITokensOf those of one user.
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	ListAPITokensOf(ctx context.Context, userID int64) ([]APIToken, error)
	// TouchAPIToken sets the token's LastUsedAt; ErrNotFound when it is gone.
	TouchAPIToken(ctx context.Context, id int64, at time.Time) error
	// DeleteAPIToken deletes the token, which no longer authenticates from then on;
	// ErrNotFound when there is none with the id.
	DeleteAPIToken(ctx context.Context, id int64) error
}

// SSO holds single sign-on's sign-ins in progress and the users' external identities.
type SSO interface {
	// AddSSOSignIn deletes the sign-ins expired at now, then keeps p (CreatedAt zero:
	// now); ErrTooManySignIns when limit unexpired ones are kept already, ErrConflict when
	// the state is kept already.
	AddSSOSignIn(ctx context.Context, p SSOSignIn, limit int, now time.Time) error
	// TakeSSOSignIn deletes the sign-in of state and returns it, in one statement: of
	// several takes at once, on any nodes, exactly one gets it. Unknown, taken already or
	// expired at now is ErrNotFound.
	TakeSSOSignIn(ctx context.Context, state string, now time.Time) (SSOSignIn, error)
	// LinkIdentity records that (issuer, subject) is the user; linking it again to the same
	// user changes nothing, to another user is ErrConflict, to a missing user ErrNotFound.
	// Deleting the user deletes their identities.
	LinkIdentity(ctx context.Context, id ExternalIdentity) error
	// UserByIdentity returns the user linked to (issuer, subject), or ErrNotFound.
	UserByIdentity(ctx context.Context, issuer, subject string) (User, error)
	// IdentitiesOf lists the identities linked to a user, oldest first.
	IdentitiesOf(ctx context.Context, userID int64) ([]ExternalIdentity, error)
}

// Audit is the audit log.
type Audit interface {
	AddAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, limit int) ([]AuditEvent, error)
	// ListAuditFor lists the newest events of one object ("mailbox:3").
	ListAuditFor(ctx context.Context, object string, limit int) ([]AuditEvent, error)
	// SearchAudit lists the events matching f, newest first; CountAudit counts them
	// (Limit and Offset ignored).
	SearchAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	CountAudit(ctx context.Context, f AuditFilter) (int, error)
}

// SignInThrottle is the state of one sign-in throttling key ("account:ana",
// "address:192.0.2.1"): the failed sign-ins counted since the key was last quiet, and the
// instant before which its sign-ins are refused (zero when they are not).
type SignInThrottle struct {
	Key         string
	Failures    int
	LastFailure time.Time
	LockedUntil time.Time
}

// SignInFailure is one failed sign-in to count against a key.
type SignInFailure struct {
	Key string
	At  time.Time
	// QuietAfter: a key whose last failure is older than At minus QuietAfter starts
	// counting again at 1.
	QuietAfter time.Duration
	// LockFor returns how long the key is refused after its n-th counted failure (0: not
	// at all). It is called inside the store's transaction, with the count that this
	// failure made, so that failures counted at once on several nodes lock by the highest.
	LockFor func(failures int) time.Duration
}

// SecondFactor is a user's TOTP second factor: the secret sealed by the vault, whether the
// user confirmed it with a first code, and the last time step whose code was accepted.
type SecondFactor struct {
	UserID    int64
	Secret    []byte // sealed
	Confirmed bool
	LastStep  int64
	CreatedAt time.Time
}

// Throttles keeps the sign-in throttling state (shared by every node) and users' second
// factors.
type Throttles interface {
	// SignInThrottles returns the state of the keys that have one (missing keys have none).
	SignInThrottles(ctx context.Context, keys ...string) ([]SignInThrottle, error)
	// RecordSignInFailure counts a failure against f.Key atomically and returns the key's
	// new state.
	RecordSignInFailure(ctx context.Context, f SignInFailure) (SignInThrottle, error)
	// ResetSignInThrottle forgets the key's failures and lock (a successful sign-in, an
	// admin's unlock). A key without state is not an error.
	ResetSignInThrottle(ctx context.Context, key string) error
	// PruneSignInThrottles deletes the keys whose last failure and lock are both before
	// before, and returns how many.
	PruneSignInThrottles(ctx context.Context, before time.Time) (int, error)

	// SetSecondFactor keeps (replaces) the user's second factor, unconfirmed.
	SetSecondFactor(ctx context.Context, f SecondFactor) error
	// SecondFactor returns the user's second factor; ErrNotFound when there is none.
	SecondFactor(ctx context.Context, userID int64) (SecondFactor, error)
	// UseSecondFactorStep records that the code of step was accepted (and confirms the
	// factor), only if step is later than the last one accepted: ErrConflict otherwise (the
	// code was used already, perhaps at the same moment on another node).
	UseSecondFactorStep(ctx context.Context, userID, step int64) error
	// DeleteSecondFactor removes the user's second factor; ErrNotFound when there is none.
	DeleteSecondFactor(ctx context.Context, userID int64) error
}

// GraphSubscription is a Microsoft Graph change-notification subscription of a mailbox, as
// every node needs it to check a notification: the clientState itself is not stored, only
// its SHA-256.
type GraphSubscription struct {
	ID              string // Graph's subscription id
	MailboxID       int64
	ClientStateHash [32]byte
	ExpiresAt       time.Time
}

// GraphSubscriptions keeps the mailboxes' Graph subscriptions (written by the node that
// runs the mailbox's ingest loop, read by any node that receives a notification).
type GraphSubscriptions interface {
	// PutGraphSubscription records the subscription (or its new expiry, by ID) and forgets
	// the mailbox's subscriptions that expired before now.
	PutGraphSubscription(ctx context.Context, s GraphSubscription) error
	// GraphSubscriptionsOf lists the mailbox's subscriptions, soonest expiry first.
	GraphSubscriptionsOf(ctx context.Context, mailboxID int64) ([]GraphSubscription, error)
	// DeleteGraphSubscription forgets a subscription; one not stored is not an error.
	DeleteGraphSubscription(ctx context.Context, id string) error
}

// Operations serves the operator: readiness probes, online backups and key rotation.
type Operations interface {
	// SchemaVersion returns the newest migration applied to the database and the newest
	// this binary embeds. The store answered when err is nil.
	SchemaVersion(ctx context.Context) (applied, known int, err error)
	// Backup writes a consistent copy of the whole database to the new file path while
	// others keep reading and writing (SQLite: VACUUM INTO). ErrUnsupported on engines
	// whose own tools make backups (PostgreSQL: pg_dump).
	Backup(ctx context.Context, path string) error
	// ResealSecrets rewrites every secret sealed by the vault in ONE transaction: the
	// mailboxes' credentials, the users' second factors, the delegated and single sign-on
	// sign-ins in progress and the settings named in r.Settings (whose values are base64
	// of a sealed value). r.Seal gets each sealed value and returns its replacement; its
	// first error rolls everything back. With r.RefuseAliveSince set, a node whose
	// heartbeat (SetAlive) is at or after it fails the transaction first with
	// ErrNodesAlive. It returns how many values were rewritten.
	ResealSecrets(ctx context.Context, r Reseal) (int, error)
	// SetAlive records that the process node is running at at (its heartbeat); a zero at
	// records that it stopped. AliveNodes lists the nodes whose heartbeat is at or after
	// since.
	SetAlive(ctx context.Context, node string, at time.Time) error
	AliveNodes(ctx context.Context, since time.Time) ([]string, error)
}

// Reseal is what ResealSecrets rewrites and how.
type Reseal struct {
	Settings         []string
	RefuseAliveSince time.Time
	Seal             func(sealed []byte) ([]byte, error)
}

// ErrNodesAlive means a node of the database is running (Operations.ResealSecrets).
var ErrNodesAlive = errors.New("postroom is running on this database")

// ErrUnsupported means the engine does not do what was asked (see Operations.Backup).
var ErrUnsupported = errors.New("not supported by this database engine")

// Store is every role of the persistence layer, with migrations and closing.
type Store interface {
	// Migrate applies the embedded schema migrations that are missing, each in its own
	// transaction. Safe to call on every start.
	Migrate(ctx context.Context) error
	Close() error

	Settings
	Mailboxes
	Ingest
	Messages
	WorkItems
	SavedViews
	Outbox
	Users
	SSO
	Audit
	Throttles
	Routing
	Conversations
	AutoMessages
	OutboundMail
	Responses
	Privacy
	GraphSubscriptions
	Cluster
	Operations
}

// IsNotFound reports whether err is (or wraps) ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
