package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// MailboxView is a mailbox as the API (and `postroom mailbox show -json`) shows it. There
// are deliberately no fields for its secrets (password, client secret, certificate, refresh
// token): PasswordSet, ClientSecretSet, ClientCertificateSet and RefreshTokenSet only say
// whether one is stored.
type MailboxView struct {
	ID                   int64      `json:"id"`
	Name                 string     `json:"name"`
	Direction            string     `json:"direction"`
	Protocol             string     `json:"protocol"`
	Address              string     `json:"address"`
	Host                 string     `json:"host"`
	AutodiscoverHost     string     `json:"autodiscover_host"`
	Port                 int        `json:"port"`
	Security             string     `json:"security"`
	Login                string     `json:"login"`
	PasswordSet          bool       `json:"password_set"`
	Auth                 string     `json:"auth"`
	OAuth                OAuthView  `json:"oauth"`
	GraphURL             string     `json:"graph_url"`
	ClientSecretSet      bool       `json:"client_secret_set"`
	ClientCertificateSet bool       `json:"client_certificate_set"`
	RefreshTokenSet      bool       `json:"refresh_token_set"`
	Folder               string     `json:"folder"`
	AfterAction          string     `json:"after_action"`
	MoveFolder           string     `json:"move_folder"`
	PollIntervalSeconds  int64      `json:"poll_interval_seconds"`
	MaxSizeMB            int        `json:"max_size_mb"`
	Enabled              bool       `json:"enabled"`
	IsDefault            bool       `json:"is_default"`
	QueueID              *int64     `json:"queue_id"`
	Queue                string     `json:"queue"`
	Status               string     `json:"status"` // connected, idle, error or disabled
	StatusMessage        string     `json:"status_message"`
	StatusAt             *time.Time `json:"status_at"`
	LastOKAt             *time.Time `json:"last_ok_at"`
	IngestedToday        int        `json:"ingested_today"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

// OAuthView is a mailbox's OAuth 2.0 settings (MailboxView.OAuth); all empty for the
// password method. Account is read-only: a person's sign-in sets it.
type OAuthView struct {
	Provider     string `json:"provider"` // microsoft or custom
	Cloud        string `json:"cloud"`    // global, usgov, usgov-dod, china or custom
	AuthorityURL string `json:"authority_url"`
	Tenant       string `json:"tenant"`
	ClientID     string `json:"client_id"`
	TokenURL     string `json:"token_url"`
	AuthorizeURL string `json:"authorize_url"`
	Scopes       string `json:"scopes"`
	Account      string `json:"account"`
	// SecretExpiresAt is the client secret's expiry date (RFC 3339 full-date, UTC), nil
	// when none is recorded.
	SecretExpiresAt *string `json:"secret_expires_at"`
}

// ParseSecretExpiry reads a client secret's expiry date as the API and the CLI take it: an
// RFC 3339 full-date (2026-12-31, the start of that day in UTC) or date-time. "" is no date.
func ParseSecretExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New(hintSecretExpiry)
	}
	return t.UTC(), nil
}

// FormatSecretExpiry is the full-date (UTC) of a client secret's expiry; nil when unknown.
func FormatSecretExpiry(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.DateOnly)
	return &s
}

// NewMailboxView returns the view of m with its live status and the name of its queue.
func NewMailboxView(m store.Mailbox, st mailbox.Status, queue string) MailboxView {
	o := m.OAuth
	v := MailboxView{
		ID: m.ID, Name: m.Name, Direction: m.Direction, Protocol: m.Protocol, Address: m.Address,
		Host: m.Host, AutodiscoverHost: m.AutodiscoverHost, Port: m.Port, Security: m.Security, Login: m.Login, PasswordSet: m.PasswordSet,
		Auth: m.Auth, GraphURL: m.GraphURL, ClientSecretSet: m.ClientSecretSet,
		ClientCertificateSet: m.CertificateSet, RefreshTokenSet: m.RefreshTokenSet,
		OAuth: OAuthView{
			Provider: o.Provider, Cloud: o.Cloud, AuthorityURL: o.AuthorityURL, Tenant: o.Tenant, ClientID: o.ClientID,
			TokenURL: o.TokenURL, AuthorizeURL: o.AuthorizeURL, Scopes: o.Scopes, Account: o.Account,
			SecretExpiresAt: FormatSecretExpiry(o.SecretExpiresAt),
		},
		Folder: m.Folder, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder,
		PollIntervalSeconds: int64(m.PollInterval / time.Second), MaxSizeMB: m.MaxSizeMB,
		Enabled: m.Enabled, IsDefault: m.IsDefault, Queue: queue,
		Status: st.State, StatusMessage: st.Message, StatusAt: timePtr(st.At), LastOKAt: timePtr(st.LastOK),
		IngestedToday: st.IngestedToday, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if v.Auth == "" {
		v.Auth = store.AuthPassword
	}
	if m.QueueID != 0 {
		id := m.QueueID
		v.QueueID = &id
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Field errors for values of the wrong JSON type (the service words the range errors).
const (
	hintText      = "use text (a JSON string)"
	hintPort      = "use a port number from 1 to 65535"
	hintPoll      = "use a whole number of seconds from 10 to 3600"
	hintMaxSize   = "use a whole number of MB from 5 to 20"
	hintBool      = "use true or false"
	hintQueueID   = "use the id of a queue (a whole number), or null for no queue"
	hintDirection = "use inbound or outbound (or leave it out for both)"
	hintOAuth     = `use an object, like {"tenant": "contoso.onmicrosoft.com", "client_id": "11111111-2222-3333-4444-555555555555"}, or leave it out`
	// hintSecretExpiry is also ParseSecretExpiry's error.
	hintSecretExpiry = "use the date the client secret expires, like 2026-12-31 (as the app registration's Certificates & secrets page shows it), or null for none"
)

// maxPollSeconds bounds poll_interval_seconds before it becomes a time.Duration, so that a
// huge number cannot overflow into an accepted value; the service's own limit is far lower.
const maxPollSeconds = 1 << 31

// mailboxErrors prefixes the error text of a mailbox body with field errors, as
// mailbox.ValidationError does.
const mailboxErrors = "the mailbox has errors"

// readOnlyMailboxFields may be sent back in a mailbox body (a GET, edited, PUT back); they
// are ignored: enabled and queue_id change through their own endpoints.
var readOnlyMailboxFields = []string{
	"id", "password_set", "client_secret_set", "client_certificate_set", "refresh_token_set",
	"enabled", "queue_id", "queue", "status", "status_message",
	"status_at", "last_ok_at", "ingested_today", "created_at", "updated_at",
}

// oauthFieldPrefix turns a member of "oauth" into its field error key (tenant:
// oauth_tenant), the keys mailbox.ValidationError uses.
const oauthFieldPrefix = "oauth_"

// mailboxBody is a mailbox as a client sends it. A nil field was absent (or null): on
// create it takes the default, on update it keeps the stored value. An empty password,
// client secret, certificate or refresh token keeps the stored one too.
type mailboxBody struct {
	Name, Direction, Protocol, Address, Host, Security, Login, Password *string
	Folder, AfterAction, MoveFolder                                     *string
	Port, MaxSizeMB                                                     *int
	PollIntervalSeconds                                                 *int64
	IsDefault                                                           *bool
	Auth, GraphURL, ClientSecret, ClientCertificate, RefreshToken       *string
	AutodiscoverHost                                                    *string
	// OAuth holds the members of "oauth" that were sent (nil: none, or null).
	OAuth *oauthBody
}

// oauthBody is the "oauth" object of a mailbox body: each member sent replaces the stored
// value, the others keep theirs. secret_expires_at null or "" removes the date.
type oauthBody struct {
	Provider, Cloud, AuthorityURL, Tenant, ClientID, TokenURL, AuthorizeURL, Scopes *string
	expirySent                                                                      bool
	SecretExpiresAt                                                                 time.Time
}

// members maps each member of a mailbox body to its destination in b.
func (b *mailboxBody) members() map[string]member {
	return map[string]member{
		"name": {&b.Name, hintText}, "direction": {&b.Direction, hintText}, "protocol": {&b.Protocol, hintText},
		"address": {&b.Address, hintText}, "host": {&b.Host, hintText}, "autodiscover_host": {&b.AutodiscoverHost, hintText},
		"port":     {&b.Port, hintPort},
		"security": {&b.Security, hintText}, "login": {&b.Login, hintText}, "password": {&b.Password, hintText},
		"folder": {&b.Folder, hintText}, "after_action": {&b.AfterAction, hintText}, "move_folder": {&b.MoveFolder, hintText},
		"poll_interval_seconds": {&b.PollIntervalSeconds, hintPoll}, "max_size_mb": {&b.MaxSizeMB, hintMaxSize},
		"is_default": {&b.IsDefault, hintBool},
		"auth":       {&b.Auth, hintText}, "graph_url": {&b.GraphURL, hintText}, "client_secret": {&b.ClientSecret, hintText},
		"client_certificate": {&b.ClientCertificate, hintText}, "refresh_token": {&b.RefreshToken, hintText},
		"oauth": {new(json.RawMessage), hintOAuth}, // decoded by decodeOAuth
	}
}

// members maps each writable member of "oauth" to its destination in o; secret_expires_at
// is read apart, "account" is read-only.
func (o *oauthBody) members() map[string]member {
	return map[string]member{
		"provider": {&o.Provider, hintText}, "cloud": {&o.Cloud, hintText}, "authority_url": {&o.AuthorityURL, hintText},
		"tenant": {&o.Tenant, hintText}, "client_id": {&o.ClientID, hintText}, "token_url": {&o.TokenURL, hintText},
		"authorize_url": {&o.AuthorizeURL, hintText}, "scopes": {&o.Scopes, hintText},
		"secret_expires_at": {new(json.RawMessage), hintSecretExpiry},
	}
}

// decode fills b from the members of a JSON object; it returns field errors.
func (b *mailboxBody) decode(obj map[string]json.RawMessage) map[string]string {
	errs := decodeFields(obj, b.members(), readOnlyMailboxFields...)
	if p := b.PollIntervalSeconds; p != nil && (*p < 0 || *p > maxPollSeconds) {
		errs["poll_interval_seconds"] = hintPoll
	}
	if raw, ok := obj["oauth"]; ok {
		b.OAuth = decodeOAuth(raw, errs)
	}
	return errs
}

// decodeOAuth reads the "oauth" member; it adds field errors under the keys of
// mailbox.ValidationError (oauth_tenant, ...).
func decodeOAuth(raw json.RawMessage, errs map[string]string) *oauthBody {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		errs["oauth"] = hintOAuth
		return nil
	}
	if obj == nil { // null: as if absent
		return nil
	}
	var o oauthBody
	for name, msg := range decodeFields(obj, o.members(), "account") {
		errs[oauthFieldPrefix+name] = msg
	}
	if raw, ok := obj["secret_expires_at"]; ok {
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			errs[oauthFieldPrefix+"secret_expires_at"] = hintSecretExpiry
		} else if s != nil {
			t, err := ParseSecretExpiry(*s)
			if err != nil {
				errs[oauthFieldPrefix+"secret_expires_at"] = hintSecretExpiry
			}
			o.SecretExpiresAt = t
		}
		o.expirySent = true
	}
	return &o
}

// apply overlays the members that were sent on in.
func (o *oauthBody) apply(in *store.OAuth) {
	for _, x := range []struct{ dst, v *string }{
		{&in.Provider, o.Provider}, {&in.Cloud, o.Cloud}, {&in.AuthorityURL, o.AuthorityURL}, {&in.Tenant, o.Tenant},
		{&in.ClientID, o.ClientID}, {&in.TokenURL, o.TokenURL}, {&in.AuthorizeURL, o.AuthorizeURL}, {&in.Scopes, o.Scopes},
	} {
		if x.v != nil {
			*x.dst = *x.v
		}
	}
	if o.expirySent {
		in.SecretExpiresAt = o.SecretExpiresAt
	}
}

// secretOf wraps a write-only member; nil when absent, null or empty (keep the stored one).
func secretOf(v *string) *vault.Secret {
	if v == nil || *v == "" {
		return nil
	}
	s := vault.NewSecret(*v)
	return &s
}

// apply overlays the fields that were sent on in.
func (b *mailboxBody) apply(in mailbox.Input) mailbox.Input {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&in.Name, b.Name)
	set(&in.Direction, b.Direction)
	set(&in.Protocol, b.Protocol)
	set(&in.Address, b.Address)
	set(&in.Host, b.Host)
	set(&in.AutodiscoverHost, b.AutodiscoverHost)
	set(&in.Security, b.Security)
	set(&in.Login, b.Login)
	set(&in.Folder, b.Folder)
	set(&in.AfterAction, b.AfterAction)
	set(&in.MoveFolder, b.MoveFolder)
	set(&in.Auth, b.Auth)
	set(&in.GraphURL, b.GraphURL)
	if b.OAuth != nil {
		b.OAuth.apply(&in.OAuth)
	}
	if b.Port != nil {
		in.Port = *b.Port
	}
	if b.MaxSizeMB != nil {
		in.MaxSizeMB = *b.MaxSizeMB
	}
	if b.PollIntervalSeconds != nil {
		in.PollInterval = time.Duration(*b.PollIntervalSeconds) * time.Second
	}
	if b.IsDefault != nil {
		in.IsDefault = *b.IsDefault
	}
	if pw := secretOf(b.Password); pw != nil {
		in.Password = pw
	}
	if sec := secretOf(b.ClientSecret); sec != nil {
		in.ClientSecret = sec
	}
	if cert := secretOf(b.ClientCertificate); cert != nil {
		in.Certificate = cert
	}
	if rt := secretOf(b.RefreshToken); rt != nil {
		in.RefreshToken = rt
	}
	return in
}

// readMailboxBody reads a mailbox body; on failure it has written the error response.
func readMailboxBody(w http.ResponseWriter, r *http.Request, optional bool) (body *mailboxBody, ok bool) {
	obj, ok := readObject(w, r, optional)
	if !ok || obj == nil {
		return nil, ok
	}
	var b mailboxBody
	if errs := b.decode(obj); len(errs) > 0 {
		writeInvalid(w, mailboxErrors, errs)
		return nil, false
	}
	return &b, true
}

// idHandler handles a request about one object, named by the path's {id}.
type idHandler func(w http.ResponseWriter, r *http.Request, user store.User, id int64)

// withMailboxes runs h only when the server has the mailbox service (every change to the
// mailbox set-up goes through it); otherwise it answers 503.
func (s *server) withMailboxes(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session) {
		if s.mailboxes == nil {
			writeError(w, http.StatusServiceUnavailable, "mailbox administration is not configured on this server")
			return
		}
		h(w, r, user, sess)
	}
}

// withMailboxID is withMailboxes for a handler of the object {id} of the path (what names
// its kind in the 404 of a malformed id).
func (s *server) withMailboxID(what string, h idHandler) authedHandler {
	return s.withMailboxes(func(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
		if id, ok := pathID(w, r, what); ok {
			h(w, r, user, id)
		}
	})
}

// queueNames maps queue ids to names.
func (s *server) queueNames(ctx context.Context) (map[int64]string, error) {
	qs, err := s.st.ListQueues(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[int64]string, len(qs))
	for _, q := range qs {
		names[q.ID] = q.Name
	}
	return names, nil
}

// status is the live status of m (from the stored one when the service is missing).
func (s *server) status(ctx context.Context, m store.Mailbox) (mailbox.Status, error) {
	if s.mailboxes != nil {
		return s.mailboxes.Status(ctx, m)
	}
	st := mailbox.Status{State: mailbox.StateIdle, Message: m.StatusMessage, At: m.StatusAt, LastOK: m.LastOKAt}
	switch {
	case !m.Enabled:
		st.State = mailbox.StateDisabled
	case m.Status == store.StatusConnected:
		st.State = mailbox.StateConnected
	case m.Status == store.StatusError:
		st.State = mailbox.StateError
	}
	return st, nil
}

// view builds the view of m; queues may be nil (then it is read).
func (s *server) view(ctx context.Context, m store.Mailbox, queues map[int64]string) (MailboxView, error) {
	if queues == nil && m.QueueID != 0 {
		var err error
		if queues, err = s.queueNames(ctx); err != nil {
			return MailboxView{}, err
		}
	}
	st, err := s.status(ctx, m)
	if err != nil {
		return MailboxView{}, err
	}
	return NewMailboxView(m, st, queues[m.QueueID]), nil
}

// writeMailbox reads mailbox id again and writes its view with status.
func (s *server) writeMailbox(w http.ResponseWriter, r *http.Request, status int, id int64) {
	ctx := r.Context()
	m, err := s.st.Mailbox(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("mailbox %d", id), err)
		return
	}
	v, err := s.view(ctx, m, nil)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("mailbox %d", id), err)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/api/v1/mailboxes/"+strconv.FormatInt(id, 10))
	}
	writeJSON(w, status, v)
}

// MatchMailbox reports whether m matches a search text: a case-insensitive part of its
// name, address, host or login.
func MatchMailbox(m store.Mailbox, q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	for _, s := range []string{m.Name, m.Address, m.Host, m.Login} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// listMailboxes lists the mailboxes, filtered by ?direction= and ?q=.
func (s *server) listMailboxes(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	q := r.URL.Query()
	direction := strings.ToLower(strings.TrimSpace(q.Get("direction")))
	if direction != "" && direction != store.Inbound && direction != store.Outbound {
		writeFieldErrors(w, map[string]string{"direction": hintDirection})
		return
	}
	s.writeMailboxList(w, r, direction, q.Get("q"))
}

func (s *server) writeMailboxList(w http.ResponseWriter, r *http.Request, direction, text string) {
	ctx := r.Context()
	mbs, err := s.st.ListMailboxes(ctx)
	if err != nil {
		s.writeStoreError(w, r, "mailboxes", err)
		return
	}
	queues, err := s.queueNames(ctx)
	if err != nil {
		s.writeStoreError(w, r, "queues", err)
		return
	}
	out := struct {
		Items []MailboxView `json:"items"`
	}{Items: make([]MailboxView, 0, len(mbs))}
	for _, m := range mbs {
		if direction != "" && m.Direction != direction || !MatchMailbox(m, text) {
			continue
		}
		v, err := s.view(ctx, m, queues)
		if err != nil {
			s.writeStoreError(w, r, "mailbox status", err)
			return
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getMailbox(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "mailbox")
	if !ok {
		return
	}
	s.writeMailbox(w, r, http.StatusOK, id)
}

func (s *server) createMailbox(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	b, ok := readMailboxBody(w, r, false)
	if !ok {
		return
	}
	m, err := s.mailboxes.Create(r.Context(), user.Username, b.apply(mailbox.Input{}))
	if err != nil {
		s.writeChangeError(w, r, "the mailbox", "create", err)
		return
	}
	s.writeMailbox(w, r, http.StatusCreated, m.ID)
}

// storedInput reads mailbox id and overlays b (nil: nothing) on its settings.
func (s *server) storedInput(w http.ResponseWriter, r *http.Request, id int64, b *mailboxBody) (mailbox.Input, bool) {
	m, err := s.st.Mailbox(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("mailbox %d", id), err)
		return mailbox.Input{}, false
	}
	in := mailbox.FromMailbox(m)
	if b != nil {
		in = b.apply(in)
	}
	return in, true
}

// updateMailbox changes the fields that were sent and keeps the others.
func (s *server) updateMailbox(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	b, ok := readMailboxBody(w, r, false)
	if !ok {
		return
	}
	in, ok := s.storedInput(w, r, id, b)
	if !ok {
		return
	}
	if _, err := s.mailboxes.Update(r.Context(), user.Username, id, in); err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "update", err)
		return
	}
	s.writeMailbox(w, r, http.StatusOK, id)
}

func (s *server) deleteMailbox(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	if err := s.mailboxes.Delete(r.Context(), user.Username, id); err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "delete", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) setEnabled(enabled bool) idHandler {
	return func(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
		var err error
		if enabled {
			err = s.mailboxes.Enable(r.Context(), user.Username, id)
		} else {
			err = s.mailboxes.Disable(r.Context(), user.Username, id)
		}
		if err != nil {
			s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), enableVerb(enabled), err)
			return
		}
		s.writeMailbox(w, r, http.StatusOK, id)
	}
}

// setAllEnabled enables or disables every mailbox, or those of {"direction": ...}, and
// lists all mailboxes afterwards.
func (s *server) setAllEnabled(enabled bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
		obj, ok := readObject(w, r, true)
		if !ok {
			return
		}
		var direction string
		errs := decodeFields(obj, map[string]member{"direction": {&direction, hintDirection}})
		direction = strings.ToLower(strings.TrimSpace(direction))
		if direction != "" && direction != store.Inbound && direction != store.Outbound {
			errs["direction"] = hintDirection
		}
		if len(errs) > 0 {
			writeInvalid(w, "the request has invalid fields", errs)
			return
		}
		if err := s.mailboxes.SetAllEnabled(r.Context(), user.Username, direction, enabled); err != nil {
			s.writeChangeError(w, r, "the mailboxes", enableVerb(enabled), err)
			return
		}
		s.writeMailboxList(w, r, direction, "")
	}
}

func (s *server) copyMailbox(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var name string
	if errs := decodeFields(obj, map[string]member{"name": {&name, hintText}}); len(errs) > 0 {
		writeInvalid(w, mailboxErrors, errs)
		return
	}
	m, err := s.mailboxes.Copy(r.Context(), user.Username, id, name)
	if err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "copy", err)
		return
	}
	s.writeMailbox(w, r, http.StatusCreated, m.ID)
}

// assignQueue puts an inbound mailbox in a queue ({"queue_id": N}), which enables it when
// the queue is enabled, or in none ({"queue_id": null}), which disables it.
func (s *server) assignQueue(w http.ResponseWriter, r *http.Request, user store.User, id int64) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var queueID *int64
	errs := decodeFields(obj, map[string]member{"queue_id": {&queueID, hintQueueID}})
	if _, sent := obj["queue_id"]; !sent {
		errs["queue_id"] = hintQueueID
	} else if queueID != nil && *queueID <= 0 {
		errs["queue_id"] = hintQueueID
	}
	if len(errs) > 0 {
		writeInvalid(w, "the request has invalid fields", errs)
		return
	}
	var q int64
	if queueID != nil {
		q = *queueID
		if _, err := s.st.Queue(r.Context(), q); store.IsNotFound(err) {
			writeInvalid(w, "the request has invalid fields", map[string]string{"queue_id": fmt.Sprintf("there is no queue %d: see GET /api/v1/queues", q)})
			return
		} else if err != nil {
			s.writeStoreError(w, r, fmt.Sprintf("queue %d", q), err)
			return
		}
	}
	if err := s.mailboxes.Assign(r.Context(), user.Username, id, q); err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "assign", err)
		return
	}
	s.writeMailbox(w, r, http.StatusOK, id)
}

// testReportJSON is a connection test's checklist.
type testReportJSON struct {
	OK    bool           `json:"ok"`
	Steps []testStepJSON `json:"steps"`
}

type testStepJSON struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Advice string `json:"advice"`
}

func toTestReportJSON(rep diag.Report) testReportJSON {
	out := testReportJSON{OK: rep.OK, Steps: make([]testStepJSON, 0, len(rep.Steps))}
	for _, st := range rep.Steps {
		out.Steps = append(out.Steps, testStepJSON{Name: st.Name, OK: st.OK, Detail: st.Detail, Advice: st.Advice})
	}
	return out
}

// testMailbox runs the connection test of a stored mailbox. With a body, the fields sent
// replace the stored ones for the test only (the form's "Test connection" before Save);
// the stored password is used unless one is sent.
func (s *server) testMailbox(w http.ResponseWriter, r *http.Request, _ store.User, id int64) {
	b, ok := readMailboxBody(w, r, true)
	if !ok {
		return
	}
	var rep diag.Report
	var err error
	if b == nil {
		rep, err = s.mailboxes.Test(r.Context(), id)
	} else {
		in, ok := s.storedInput(w, r, id, b)
		if !ok {
			return
		}
		rep, err = s.mailboxes.TestInput(r.Context(), id, in)
	}
	if err != nil {
		s.writeChangeError(w, r, fmt.Sprintf("mailbox %d", id), "test", err)
		return
	}
	writeJSON(w, http.StatusOK, toTestReportJSON(rep))
}

// testUnsaved runs the connection test of settings not saved (a new mailbox's form).
func (s *server) testUnsaved(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	b, ok := readMailboxBody(w, r, false)
	if !ok {
		return
	}
	rep, err := s.mailboxes.TestInput(r.Context(), 0, b.apply(mailbox.Input{}))
	if err != nil {
		s.writeChangeError(w, r, "the mailbox", "test", err)
		return
	}
	writeJSON(w, http.StatusOK, toTestReportJSON(rep))
}

// enableVerb names the action for error messages.
func enableVerb(enabled bool) string {
	if enabled {
		return "enable"
	}
	return "disable"
}
