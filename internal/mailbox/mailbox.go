// Package mailbox holds the Mailbox model's rules and lifecycle, in one place for the web
// pages, the JSON API and the CLI (the seed guide "Email addresses and mailboxes", and more).
//
// Rules a change must keep:
//
//   - Mailbox Name: letters, digits, "@", "_" and "." only, at most 40 characters, unique, set
//     at creation and read-only afterwards. Max size: whole MB from 5 to 20, default 5.
//   - A mailbox is created disabled. An inbound mailbox is enabled by assigning it to a queue
//     (Enable assigns it to the Default queue when it has none) and disabled when unassigned
//     or when its queue is disabled. An outbound mailbox is enabled and disabled directly.
//   - An enabled mailbox cannot be deleted (ErrEnabled). Exactly one outbound mailbox is the
//     default; it cannot be deleted while it is (ErrDefaultOutbound).
//   - Passwords are write-only: a nil Input.Password keeps the stored one, and no method
//     returns a password. Every change writes an audit event with the password masked.
//   - A stored secret (password, client secret, certificate, refresh token) is only sent
//     where it was entered for (destination.go): a test or save that would send it, or a
//     token made with it, to another host, port, connection security, Graph URL, token
//     endpoint or tenant needs the secret again (a field error on it otherwise, and nobody
//     is contacted); a save drops stored secrets the new settings would send elsewhere, and
//     a person's sign-in, which they then make again.
package mailbox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// Errors of the lifecycle rules (HTTP 409 in the API).
var (
	ErrEnabled         = errors.New("the mailbox is enabled: disable it before deleting it")
	ErrDefaultOutbound = errors.New("this is the default outbound mailbox: make another outbound mailbox the default first")
	ErrQueueDisabled   = errors.New("the mailbox's queue is disabled: enable the queue first")
	ErrOutboundQueue   = errors.New("outbound mailboxes are not assigned to queues")
)

// Service applies the rules and records what it changes.
type Service struct {
	// RootCAs replaces the system roots in connection tests (tests of our own).
	RootCAs *x509.CertPool
	// HTTPClient, when set, makes the connection tests' HTTP requests (EWS, autodiscover,
	// Graph); tests use it to send host names to loopback stand-ins.
	HTTPClient *http.Client
	// OnCredentialsChange, when set, is called after a mailbox's settings or secrets
	// change, so cached token sources are dropped (credential.Tokens.Forget).
	OnCredentialsChange func(mailboxID int64)
	// Tokens gives connection tests of stored OAuth mailboxes their token sources (nil:
	// OAuth mailboxes are tested without a token, and their sign-in step fails).
	Tokens *credential.Tokens

	store     store.Store
	passwords *credential.Passwords
	log       *slog.Logger
	now       func() time.Time
}

// NewService returns a Service. It does no I/O.
func NewService(st store.Store, pw *credential.Passwords, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: st, passwords: pw, log: log, now: time.Now}
}

// Create validates in and stores a new, disabled mailbox with its password.
func (s *Service) Create(ctx context.Context, actor string, in Input) (store.Mailbox, error) {
	m := normalize(in)
	if verr := validate(m, givenSecrets(in, store.Mailbox{})); verr != nil {
		return store.Mailbox{}, verr
	}
	if _, err := s.store.MailboxByName(ctx, m.Name); err == nil {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{"name": "a mailbox with this name already exists"}}
	} else if !store.IsNotFound(err) {
		return store.Mailbox{}, fmt.Errorf("look up mailbox %q: %w", m.Name, err)
	}
	if m.Direction == store.Outbound && !m.IsDefault {
		// The first outbound mailbox is the default.
		def, err := s.defaultOutbound(ctx)
		if err != nil {
			return store.Mailbox{}, err
		}
		m.IsDefault = def.ID == 0
	}
	m.Enabled = false
	m.Status = store.StatusUnknown
	created, err := s.store.CreateMailbox(ctx, m)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Mailbox{}, &ValidationError{Fields: map[string]string{"name": "a mailbox with this name already exists"}}
		}
		return store.Mailbox{}, fmt.Errorf("create mailbox %q: %w", m.Name, err)
	}
	if err := s.saveSecrets(ctx, created.ID, in); err != nil {
		return store.Mailbox{}, err
	}
	stored, err := s.store.Mailbox(ctx, created.ID)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := s.audit(ctx, actor, "mailbox.create", created.ID, "", describe(stored, false)); err != nil {
		return store.Mailbox{}, err
	}
	return stored, nil
}

// Update validates in and changes the mailbox's settings; the name cannot change.
func (s *Service) Update(ctx context.Context, actor string, id int64, in Input) (store.Mailbox, error) {
	old, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %d: %w", id, err)
	}
	if in.Name != "" && strings.TrimSpace(in.Name) != old.Name {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{"name": "the name is set at creation and cannot change: copy the mailbox to use another name"}}
	}
	in.Name = old.Name
	if in.Direction == "" {
		in.Direction = old.Direction
	}
	if in.Direction != old.Direction {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{"direction": "an inbound mailbox cannot become outbound or the reverse: create a new one"}}
	}
	m := normalize(in)
	newPassword := in.Password != nil && in.Password.Reveal() != ""
	// The secret destination rule (destination.go): a stored secret the new settings send
	// elsewhere must be given again, or is deleted when they do not need it.
	mv, ruleErr := secretRule(old, m, in, false)
	have := givenSecrets(in, old)
	have.password = have.password && !isMoved(mv, store.SecretPassword)
	have.clientSecret = have.clientSecret && !isMoved(mv, store.SecretClientSecret)
	have.certificate = have.certificate && !isMoved(mv, store.SecretCertificate)
	if verr := mergeErrors(validate(m, have), ruleErr); verr != nil {
		return store.Mailbox{}, verr
	}
	m.ID, m.CreatedAt = old.ID, old.CreatedAt
	m.Enabled, m.QueueID = old.Enabled, old.QueueID
	m.Status, m.StatusMessage, m.StatusAt, m.LastOKAt = old.Status, old.StatusMessage, old.StatusAt, old.LastOKAt
	if old.IsDefault && !m.IsDefault {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{"is_default": "make another outbound mailbox the default instead"}}
	}
	m.OAuth.Account = old.OAuth.Account
	if isMoved(mv, store.SecretRefreshToken) {
		m.OAuth.Account = "" // the person's sign-in is dropped: they sign in again
	}
	if err := s.store.UpdateMailbox(ctx, m); err != nil {
		return store.Mailbox{}, fmt.Errorf("update mailbox %q: %w", m.Name, err)
	}
	if err := s.dropMoved(ctx, id, mv); err != nil {
		return store.Mailbox{}, err
	}
	if s.OnCredentialsChange != nil {
		s.OnCredentialsChange(id)
	}
	if err := s.saveSecrets(ctx, id, in); err != nil {
		return store.Mailbox{}, err
	}
	updated, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := s.audit(ctx, actor, "mailbox.update", id, describe(old, false), describe(updated, newPassword)); err != nil {
		return store.Mailbox{}, err
	}
	return updated, nil
}

// Delete removes a disabled mailbox that is not the default outbound one.
func (s *Service) Delete(ctx context.Context, actor string, id int64) error {
	m, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return fmt.Errorf("mailbox %d: %w", id, err)
	}
	if m.Enabled {
		return ErrEnabled
	}
	if m.Direction == store.Outbound && m.IsDefault {
		others, err := s.outbound(ctx)
		if err != nil {
			return err
		}
		if len(others) > 1 {
			return ErrDefaultOutbound
		}
	}
	if err := s.store.DeleteMailbox(ctx, id); err != nil {
		return fmt.Errorf("delete mailbox %q: %w", m.Name, err)
	}
	return s.audit(ctx, actor, "mailbox.delete", id, describe(m, false), "")
}

// Enable enables a mailbox. An inbound mailbox without a queue is assigned to the Default
// queue; one whose queue is disabled stays disabled (ErrQueueDisabled).
func (s *Service) Enable(ctx context.Context, actor string, id int64) error {
	m, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return fmt.Errorf("mailbox %d: %w", id, err)
	}
	if m.Direction == store.Inbound {
		queueID := m.QueueID
		if queueID == 0 {
			q, err := s.store.EnsureDefaultQueue(ctx)
			if err != nil {
				return fmt.Errorf("default queue: %w", err)
			}
			queueID = q.ID
		}
		q, err := s.store.Queue(ctx, queueID)
		if err != nil {
			return fmt.Errorf("queue %d: %w", queueID, err)
		}
		if !q.Enabled {
			return ErrQueueDisabled
		}
		if err := s.store.AssignMailbox(ctx, id, queueID); err != nil {
			return fmt.Errorf("assign mailbox %q to queue %q: %w", m.Name, q.Name, err)
		}
	} else if err := s.store.SetMailboxEnabled(ctx, id, true); err != nil {
		return fmt.Errorf("enable mailbox %q: %w", m.Name, err)
	}
	return s.audit(ctx, actor, "mailbox.enable", id, "enabled=false", "enabled=true")
}

// Disable disables a mailbox; an inbound one keeps its queue.
func (s *Service) Disable(ctx context.Context, actor string, id int64) error {
	m, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return fmt.Errorf("mailbox %d: %w", id, err)
	}
	if err := s.store.SetMailboxEnabled(ctx, id, false); err != nil {
		return fmt.Errorf("disable mailbox %q: %w", m.Name, err)
	}
	return s.audit(ctx, actor, "mailbox.disable", id, fmt.Sprintf("enabled=%t", m.Enabled), "enabled=false")
}

// SetAllEnabled enables or disables every mailbox of a direction ("" for both), with the
// same rules as Enable for each; it returns the first error after trying all.
func (s *Service) SetAllEnabled(ctx context.Context, actor, direction string, enabled bool) error {
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return fmt.Errorf("list mailboxes: %w", err)
	}
	var first error
	for _, m := range boxes {
		if direction != "" && m.Direction != direction || m.Enabled == enabled {
			continue
		}
		if enabled {
			err = s.Enable(ctx, actor, m.ID)
		} else {
			err = s.Disable(ctx, actor, m.ID)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("mailbox %q: %w", m.Name, err)
		}
	}
	return first
}

// Copy creates a disabled mailbox with the settings of another, without its name and
// password.
func (s *Service) Copy(ctx context.Context, actor string, id int64, newName string) (store.Mailbox, error) {
	src, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %d: %w", id, err)
	}
	in := FromMailbox(src)
	in.Name = newName
	in.IsDefault = false
	m := normalize(in)
	verr := validate(m, secretsAt{password: true, clientSecret: true, certificate: true}) // the secrets are entered later
	if verr != nil {
		return store.Mailbox{}, verr
	}
	if _, err := s.store.MailboxByName(ctx, m.Name); err == nil {
		return store.Mailbox{}, &ValidationError{Fields: map[string]string{"name": "a mailbox with this name already exists"}}
	}
	m.Status = store.StatusUnknown
	created, err := s.store.CreateMailbox(ctx, m)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Mailbox{}, &ValidationError{Fields: map[string]string{"name": "a mailbox with this name already exists"}}
		}
		return store.Mailbox{}, fmt.Errorf("copy mailbox %q: %w", src.Name, err)
	}
	if err := s.audit(ctx, actor, "mailbox.copy", created.ID, "copy of "+src.Name, describe(created, false)); err != nil {
		return store.Mailbox{}, err
	}
	return created, nil
}

// Assign puts an inbound mailbox in a queue (0: in none, which disables it).
func (s *Service) Assign(ctx context.Context, actor string, mailboxID, queueID int64) error {
	m, err := s.store.Mailbox(ctx, mailboxID)
	if err != nil {
		return fmt.Errorf("mailbox %d: %w", mailboxID, err)
	}
	if m.Direction != store.Inbound {
		return ErrOutboundQueue
	}
	if err := s.store.AssignMailbox(ctx, mailboxID, queueID); err != nil {
		return fmt.Errorf("assign mailbox %q to queue %d: %w", m.Name, queueID, err)
	}
	return s.audit(ctx, actor, "mailbox.assign", mailboxID, fmt.Sprintf("queue_id=%d", m.QueueID), fmt.Sprintf("queue_id=%d", queueID))
}

// CreateQueue creates an enabled queue.
func (s *Service) CreateQueue(ctx context.Context, actor, name string) (store.Queue, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxNameLen || strings.ContainsAny(name, "\r\n\x00") {
		return store.Queue{}, &ValidationError{Fields: map[string]string{"name": fmt.Sprintf("enter a queue name of at most %d characters", maxNameLen)}}
	}
	q, err := s.store.CreateQueue(ctx, store.Queue{Name: name, Enabled: true})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Queue{}, &ValidationError{Fields: map[string]string{"name": "a queue with this name already exists"}}
		}
		return store.Queue{}, fmt.Errorf("create queue %q: %w", name, err)
	}
	return q, s.auditObject(ctx, actor, "queue.create", fmt.Sprintf("queue:%d", q.ID), "", "name="+name)
}

// SetQueueEnabled enables or disables a queue and, with it, its mailboxes.
func (s *Service) SetQueueEnabled(ctx context.Context, actor string, queueID int64, enabled bool) error {
	if err := s.store.SetQueueEnabled(ctx, queueID, enabled); err != nil {
		return fmt.Errorf("queue %d: %w", queueID, err)
	}
	return s.auditObject(ctx, actor, "queue.enable", fmt.Sprintf("queue:%d", queueID), "", fmt.Sprintf("enabled=%t", enabled))
}

// AddFromAddress adds an address agents may reply from to an outbound mailbox.
func (s *Service) AddFromAddress(ctx context.Context, actor string, mailboxID int64, address, displayName string) (store.FromAddress, error) {
	address, displayName = strings.TrimSpace(address), strings.TrimSpace(displayName)
	m, err := s.store.Mailbox(ctx, mailboxID)
	if err != nil {
		return store.FromAddress{}, fmt.Errorf("mailbox %d: %w", mailboxID, err)
	}
	if m.Direction != store.Outbound {
		return store.FromAddress{}, &ValidationError{Fields: map[string]string{"address": "From addresses belong to outbound mailboxes"}}
	}
	if verr := validateFrom(address, displayName); verr != nil {
		return store.FromAddress{}, verr
	}
	f, err := s.store.AddFromAddress(ctx, store.FromAddress{MailboxID: mailboxID, Address: address, DisplayName: displayName})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.FromAddress{}, &ValidationError{Fields: map[string]string{"address": "this address is already listed"}}
		}
		return store.FromAddress{}, fmt.Errorf("add From address to %q: %w", m.Name, err)
	}
	return f, s.audit(ctx, actor, "from_address.add", mailboxID, "", fmt.Sprintf("address=%s display_name=%s", address, displayName))
}

// DeleteFromAddress removes a From address.
func (s *Service) DeleteFromAddress(ctx context.Context, actor string, id int64) error {
	all, err := s.store.ListFromAddresses(ctx, 0)
	if err != nil {
		return fmt.Errorf("list From addresses: %w", err)
	}
	for _, f := range all {
		if f.ID == id {
			if err := s.store.DeleteFromAddress(ctx, id); err != nil {
				return fmt.Errorf("delete From address %s: %w", f.Address, err)
			}
			return s.audit(ctx, actor, "from_address.delete", f.MailboxID, "address="+f.Address, "")
		}
	}
	return fmt.Errorf("from address %d: %w", id, store.ErrNotFound)
}

// Live states shown to administrators.
const (
	StateDisabled  = "disabled"
	StateConnected = "connected"
	StateIdle      = "idle" // enabled, not checked yet
	StateError     = "error"
)

// Status is the live state of a mailbox.
type Status struct {
	State         string
	Message       string
	At            time.Time
	LastOK        time.Time
	IngestedToday int
}

// Status tells what an administrator should see about m now.
func (s *Service) Status(ctx context.Context, m store.Mailbox) (Status, error) {
	st := Status{State: StateIdle, Message: m.StatusMessage, At: m.StatusAt, LastOK: m.LastOKAt}
	switch {
	case !m.Enabled:
		st.State = StateDisabled
		if m.Status == store.StatusError {
			st.Message = "last error: " + m.StatusMessage
		}
	case m.Status == store.StatusError:
		st.State = StateError
	case m.Status == store.StatusConnected:
		st.State = StateConnected
	}
	if m.Direction == store.Inbound {
		now := s.now()
		midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
		n, err := s.store.CountMessagesSince(ctx, m.ID, midnight)
		if err != nil {
			return st, fmt.Errorf("count messages of %q: %w", m.Name, err)
		}
		st.IngestedToday = n
	}
	return st, nil
}

func (s *Service) outbound(ctx context.Context) ([]store.Mailbox, error) {
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	var out []store.Mailbox
	for _, m := range boxes {
		if m.Direction == store.Outbound {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *Service) defaultOutbound(ctx context.Context) (store.Mailbox, error) {
	boxes, err := s.store.ListMailboxes(ctx)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("list mailboxes: %w", err)
	}
	m, _ := DefaultOutbound(boxes)
	return m, nil
}

// DefaultOutbound returns the default outbound mailbox among boxes; ok is false when there
// is none. The rules above keep exactly one default whenever an outbound mailbox exists.
func DefaultOutbound(boxes []store.Mailbox) (m store.Mailbox, ok bool) {
	for _, b := range boxes {
		if b.Direction == store.Outbound && b.IsDefault {
			return b, true
		}
	}
	return store.Mailbox{}, false
}

func (s *Service) audit(ctx context.Context, actor, action string, mailboxID int64, old, new string) error {
	return s.auditObject(ctx, actor, action, fmt.Sprintf("mailbox:%d", mailboxID), old, new)
}

func (s *Service) auditObject(ctx context.Context, actor, action, object, old, new string) error {
	if err := s.store.AddAudit(ctx, store.AuditEvent{At: s.now(), Actor: actor, Action: action, Object: object, Old: old, New: new}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// describe lists a mailbox's settings for the audit log; the password is "***" when one is
// set (or being set), never its value.
func describe(m store.Mailbox, passwordGiven bool) string {
	pw := "(none)"
	if m.PasswordSet || passwordGiven {
		pw = "***"
	}
	lines := []string{
		"name=" + m.Name, "direction=" + m.Direction, "protocol=" + m.Protocol, "address=" + m.Address,
		fmt.Sprintf("host=%s port=%d security=%s", m.Host, m.Port, m.Security), "login=" + m.Login, "password=" + pw,
	}
	if m.Protocol == EWS {
		lines = append(lines, "autodiscover_host="+m.AutodiscoverHost)
	}
	if m.Direction == store.Inbound {
		lines = append(lines, "folder="+m.Folder, "after_action="+m.AfterAction, "move_folder="+m.MoveFolder,
			fmt.Sprintf("poll_interval_seconds=%d", int(m.PollInterval.Seconds())), fmt.Sprintf("max_size_mb=%d", m.MaxSizeMB))
	} else {
		lines = append(lines, fmt.Sprintf("is_default=%t", m.IsDefault))
	}
	if m.Auth != "" && m.Auth != store.AuthPassword {
		o := m.OAuth
		lines = append(lines, "auth="+m.Auth, "oauth_provider="+o.Provider, "oauth_cloud="+o.Cloud,
			"oauth_authority_url="+o.AuthorityURL, "oauth_tenant="+o.Tenant, "oauth_client_id="+o.ClientID,
			"oauth_token_url="+o.TokenURL, "oauth_scopes="+o.Scopes, "graph_url="+m.GraphURL,
			"client_secret="+mask(m.ClientSecretSet), "client_certificate="+mask(m.CertificateSet))
	}
	lines = append(lines, fmt.Sprintf("enabled=%t", m.Enabled))
	return strings.Join(lines, "\n")
}
