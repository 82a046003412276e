package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// The create and edit form of a mailbox (the seed's "Inbound Mailbox" / "Outbound
// Mailbox" forms) and its "Test connection" button. The rules live in internal/mailbox;
// this page only carries the values there and the field errors back, keyed by the API's
// JSON field names, which are also the form's field names. The password is write-only:
// never put in the page, and an empty field on edit keeps the stored one.

// Form defaults for a new mailbox (the rules' own defaults, shown so the admin sees them).
const (
	defaultPollSeconds  = 60
	defaultMaxSizeMB    = 5
	defaultSecurity     = mailbox.SecurityTLS // implicit TLS first (RFC 8314 §3)
	defaultInboundProto = mailbox.IMAP
)

// formFields lists the form's fields in page order, for the error summary.
var formFields = []string{
	"name", "direction", "max_size_mb", "address", "login", "password", "protocol", "host", "autodiscover_host", "security", "port",
	"auth", "oauth_provider", "oauth_cloud", "oauth_authority_url", "graph_url", "oauth_tenant", "oauth_client_id",
	"client_secret", "client_certificate", "oauth_secret_expires_at", "oauth_token_url", "oauth_authorize_url",
	"oauth_scopes", "refresh_token",
	"folder", "after_action", "move_folder", "poll_interval_seconds", "display_name", "is_default",
}

// fieldLabels are the labels of the form's fields, for the error summary and banners.
var fieldLabels = map[string]string{
	"name": "Mailbox Name", "direction": "Mailbox Type", "protocol": "Client Type", "address": "Email address",
	"host": "Host", "autodiscover_host": "Autodiscover host", "port": "Port", "security": "Security", "login": "Mailbox (login name)", "password": "Password",
	"folder": "Folder", "after_action": "After processing", "move_folder": "Move to folder",
	"poll_interval_seconds": "Poll interval", "max_size_mb": "Max size", "display_name": "Display name",
	"is_default": "Default outbound mailbox",
	"auth":       "Sign-in method", "oauth_provider": "OAuth 2.0 provider", "oauth_cloud": "Microsoft cloud",
	"oauth_authority_url": "Authority URL", "graph_url": "Graph host", "oauth_tenant": "Directory (tenant) ID",
	"oauth_client_id": "Application (client) ID", "client_secret": "Client secret", "client_certificate": "Certificate",
	"oauth_secret_expires_at": "Client secret expires", "oauth_token_url": "Token URL", "oauth_authorize_url": "Authorize URL",
	"oauth_scopes": "Scopes", "refresh_token": "Refresh token",
}

func fieldLabel(key string) string {
	if l, ok := fieldLabels[key]; ok {
		return l
	}
	return key
}

// formValues are the form's fields as typed (the password and the other secrets are never
// among them).
type formValues struct {
	Name, Protocol, Address, Host, Port, Security, Login   string
	AutodiscoverHost                                       string
	Folder, AfterAction, MoveFolder, PollInterval, MaxSize string
	IsDefault                                              bool
	// Sign-in: the method and its OAuth 2.0 settings.
	Auth, Provider, Cloud, AuthorityURL, GraphURL, Tenant, ClientID string
	SecretExpires, TokenURL, AuthorizeURL, Scopes                   string
}

type choice struct{ Value, Label string }

type mailboxFormData struct {
	ID          int64 // 0 for a new mailbox
	Direction   string
	Type        string // "Inbound", "Outbound"
	V           formValues
	PasswordSet bool
	// Which OAuth secrets are stored, and the account that signed in (delegated).
	ClientSecretSet, CertificateSet, RefreshTokenSet bool
	Account                                          string
	// RedirectURI is the delegated sign-in's redirect URI, for the app registration.
	RedirectURI string
	Errors      map[string]string
	Summary     []string
	Report      *diag.Report
	// Prechecks is the Microsoft 365 walk-through for the settings on the form (Graph, or
	// OAuth with Microsoft), with PowerShell filled in with the ids entered so far: one list
	// per client type, of which the style sheet shows the chosen one.
	Prechecks []precheckList
	// Google is the Google Workspace walk-through, shown while the provider is google.
	Google googleSteps
	// TypedPassword is true when the form comes back (with errors or a test report) after
	// a password was typed: the field is empty again (passwords are never put in the
	// page), so it must be typed once more.
	TypedPassword bool
	// The same for the client secret, the certificate and a pasted refresh token.
	TypedClientSecret, TypedCertificate, TypedRefreshToken bool
	Auths, Providers, Clouds                               []choice
	Action                                                 string
	TestAction                                             string
	Cancel                                                 string
	Protocols                                              []choice
	Securities                                             []choice
	AfterActions                                           []choice
}

func (d mailboxFormData) Inbound() bool { return d.Direction == store.Inbound }

func (h *handler) mailboxNew(w http.ResponseWriter, r *http.Request, v viewer) {
	dir := r.URL.Query().Get("direction")
	if dir != store.Inbound && dir != store.Outbound {
		dir = store.Inbound
	}
	fv := formValues{Security: defaultSecurity, Auth: store.AuthPassword, Provider: credential.ProviderMicrosoft, Cloud: credential.CloudGlobal}
	if dir == store.Inbound {
		// Folder and after-processing action stay empty: their defaults depend on the
		// protocol (IMAP: INBOX, mark as read; POP3: no folder, delete), and the page has no
		// script to change them when the protocol changes.
		fv.Protocol = defaultInboundProto
		fv.PollInterval, fv.MaxSize = strconv.Itoa(defaultPollSeconds), strconv.Itoa(defaultMaxSizeMB)
	} else {
		fv.Protocol, fv.Security = mailbox.SMTP, mailbox.SecurityStartTLS
	}
	h.renderForm(w, r, v, http.StatusOK, mailboxFormData{Direction: dir, V: fv})
}

func (h *handler) mailboxEdit(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok {
		return
	}
	h.renderForm(w, r, v, http.StatusOK, formOf(m))
}

// formOf is the edit form of a stored mailbox.
func formOf(m store.Mailbox) mailboxFormData {
	return mailboxFormData{ID: m.ID, Direction: m.Direction, V: valuesOf(m), PasswordSet: m.PasswordSet,
		ClientSecretSet: m.ClientSecretSet, CertificateSet: m.CertificateSet, RefreshTokenSet: m.RefreshTokenSet, Account: m.OAuth.Account}
}

func (h *handler) mailboxCreate(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.needService(w, r) {
		return
	}
	d, in, ok := readMailboxForm(r, store.Mailbox{})
	if !ok {
		h.renderForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	m, err := h.mailboxes.Create(r.Context(), v.User.Username, in)
	if err != nil {
		h.formRefused(w, r, v, d, "create the mailbox", err)
		return
	}
	http.Redirect(w, r, listView{Selected: m.ID}.URL("created"), http.StatusSeeOther)
}

func (h *handler) mailboxUpdate(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	d, in, ok := readMailboxForm(r, m)
	if !ok {
		h.renderForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	if _, err := h.mailboxes.Update(r.Context(), v.User.Username, m.ID, in); err != nil {
		h.formRefused(w, r, v, d, "save the mailbox", err)
		return
	}
	http.Redirect(w, r, listView{Selected: m.ID}.URL("saved"), http.StatusSeeOther)
}

// mailboxTestNew tests the settings of the create form before they are saved.
func (h *handler) mailboxTestNew(w http.ResponseWriter, r *http.Request, v viewer) {
	if !h.needService(w, r) {
		return
	}
	d, in, ok := readMailboxForm(r, store.Mailbox{})
	if !ok {
		h.renderForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	h.testForm(w, r, v, d, in)
}

// mailboxTest tests a stored mailbox: the settings on its edit form (the form sends
// source=form), or as stored (the detail pane's button).
func (h *handler) mailboxTest(w http.ResponseWriter, r *http.Request, v viewer) {
	m, ok := h.loadMailbox(w, r)
	if !ok || !h.needService(w, r) {
		return
	}
	if r.PostForm.Get("source") == "form" {
		d, in, ok := readMailboxForm(r, m)
		if !ok {
			h.renderForm(w, r, v, http.StatusBadRequest, d)
			return
		}
		h.testForm(w, r, v, d, in)
		return
	}
	lv := viewFrom(r).with(m.ID)
	rep, err := h.mailboxes.Test(r.Context(), m.ID)
	if err != nil {
		h.refuse(w, r, v, lv, "test the mailbox", err)
		return
	}
	// POST-redirect-GET: the report waits for the list page, so that reloading it shows
	// the report again instead of running the test again.
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: flashTestReport, id: m.ID}, &rep)
	http.Redirect(w, r, lv.URL(noticeTested)+"#test-report", http.StatusSeeOther)
}

// testForm runs the connection test of the form's settings and shows the form again with
// the report.
func (h *handler) testForm(w http.ResponseWriter, r *http.Request, v viewer, d mailboxFormData, in mailbox.Input) {
	rep, err := h.mailboxes.TestInput(r.Context(), d.ID, in)
	if err != nil {
		h.formRefused(w, r, v, d, "test the connection", err)
		return
	}
	d.Report = &rep
	h.renderForm(w, r, v, http.StatusOK, d)
}

// formRefused shows the form again with the errors of err, or a 500 page.
func (h *handler) formRefused(w http.ResponseWriter, r *http.Request, v viewer, d mailboxFormData, doing string, err error) {
	var ve *mailbox.ValidationError
	switch {
	case errors.As(err, &ve):
		d.Errors = ve.Fields
	case errors.Is(err, store.ErrConflict):
		d.Errors = map[string]string{"name": "a mailbox with this name exists: choose another name"}
	case errors.Is(err, store.ErrNotFound):
		h.mailboxNotFound(w, r)
		return
	default:
		if p, ok := actionProblem(err); ok {
			d.Errors = map[string]string{"": p.msg}
			h.renderForm(w, r, v, p.status, d)
			return
		}
		h.serverError(w, r, doing, err)
		return
	}
	status := http.StatusBadRequest
	if errors.Is(err, store.ErrConflict) {
		status = http.StatusConflict
	}
	h.renderForm(w, r, v, status, d)
}

// valuesOf is the form filled with a stored mailbox.
func valuesOf(m store.Mailbox) formValues {
	o := m.OAuth
	fv := formValues{
		Name: m.Name, Protocol: m.Protocol, Address: m.Address, Host: m.Host, AutodiscoverHost: m.AutodiscoverHost,
		Security: m.Security, Login: m.Login, Folder: m.Folder, AfterAction: m.AfterAction, MoveFolder: m.MoveFolder, IsDefault: m.IsDefault,
		Auth: m.Auth, Provider: o.Provider, Cloud: o.Cloud, AuthorityURL: o.AuthorityURL, GraphURL: m.GraphURL,
		Tenant: o.Tenant, ClientID: o.ClientID, TokenURL: o.TokenURL, AuthorizeURL: o.AuthorizeURL, Scopes: o.Scopes,
	}
	if fv.Auth == "" {
		fv.Auth = store.AuthPassword
	}
	if fv.Provider == "" {
		fv.Provider = credential.ProviderMicrosoft
	}
	if fv.Cloud == "" {
		fv.Cloud = credential.CloudGlobal
	}
	if !o.SecretExpiresAt.IsZero() {
		fv.SecretExpires = o.SecretExpiresAt.UTC().Format(time.DateOnly)
	}
	// The default port is shown as an empty field, so that changing the security (993 to
	// 143) does not keep a port that no longer fits.
	if m.Port != 0 && m.Port != mailbox.DefaultPort(m.Protocol, m.Security) {
		fv.Port = strconv.Itoa(m.Port)
	}
	if m.PollInterval != 0 {
		fv.PollInterval = strconv.Itoa(int(m.PollInterval / time.Second))
	}
	if m.MaxSizeMB != 0 {
		fv.MaxSize = strconv.Itoa(m.MaxSizeMB)
	}
	return fv
}

// readMailboxForm reads the posted form for a new mailbox (stored.ID 0) or for stored.
// ok is false when a number field is not a number; d then carries those errors.
func readMailboxForm(r *http.Request, stored store.Mailbox) (d mailboxFormData, in mailbox.Input, ok bool) {
	f := r.PostForm
	get := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	fv := formValues{
		Name: get("name"), Protocol: get("protocol"), Address: get("address"), Host: get("host"), Port: get("port"),
		Security: get("security"), Login: get("login"), Folder: get("folder"), AfterAction: get("after_action"),
		MoveFolder: get("move_folder"), PollInterval: get("poll_interval_seconds"), MaxSize: get("max_size_mb"),
		IsDefault: f.Get("is_default") != "",
		Auth:      get("auth"), Provider: get("oauth_provider"), Cloud: get("oauth_cloud"), AuthorityURL: get("oauth_authority_url"),
		GraphURL: get("graph_url"), Tenant: get("oauth_tenant"), ClientID: get("oauth_client_id"),
		SecretExpires: get("oauth_secret_expires_at"), TokenURL: get("oauth_token_url"), AuthorizeURL: get("oauth_authorize_url"),
		Scopes: get("oauth_scopes"), AutodiscoverHost: get("autodiscover_host"),
	}
	d = formOf(stored)
	d.Direction, d.V = get("direction"), fv
	d.TypedPassword = f.Get("password") != ""
	d.TypedClientSecret = strings.TrimSpace(f.Get("client_secret")) != ""
	d.TypedCertificate = strings.TrimSpace(f.Get("client_certificate")) != ""
	d.TypedRefreshToken = strings.TrimSpace(f.Get("refresh_token")) != ""
	if stored.ID != 0 {
		// Name and direction are set at creation and read-only afterwards.
		d.Direction, d.V.Name = stored.Direction, stored.Name
		fv.Name = ""
	}
	in = mailbox.Input{
		Name: fv.Name, Direction: d.Direction, Protocol: fv.Protocol, Address: fv.Address, Host: fv.Host,
		Security: fv.Security, Login: fv.Login, Folder: fv.Folder, AfterAction: fv.AfterAction,
		MoveFolder: fv.MoveFolder, IsDefault: fv.IsDefault,
		Auth: fv.Auth, GraphURL: fv.GraphURL,
		OAuth: store.OAuth{Provider: fv.Provider, Cloud: fv.Cloud, AuthorityURL: fv.AuthorityURL, Tenant: fv.Tenant,
			ClientID: fv.ClientID, TokenURL: fv.TokenURL, AuthorizeURL: fv.AuthorizeURL, Scopes: fv.Scopes},
	}
	// The autodiscover host field is in view for EWS only: what it holds while another
	// protocol is chosen is not sent.
	if strings.EqualFold(fv.Protocol, mailbox.EWS) {
		in.AutodiscoverHost = fv.AutodiscoverHost
	}
	// The password is taken as typed (spaces may belong to it); empty means "keep".
	if pw := f.Get("password"); pw != "" {
		s := vault.NewSecret(pw)
		in.Password = &s
	}
	// A client secret, certificate or refresh token has no meaningful outer spaces (a
	// pasted one often has), so they are trimmed; empty means "keep" too.
	in.ClientSecret = formSecret(f.Get("client_secret"))
	in.Certificate = formSecret(f.Get("client_certificate"))
	in.RefreshToken = formSecret(f.Get("refresh_token"))
	errs := map[string]string{}
	if fv.SecretExpires != "" {
		t, err := time.Parse(time.DateOnly, fv.SecretExpires)
		if err != nil {
			errs["oauth_secret_expires_at"] = "enter the date as YYYY-MM-DD, like 2027-05-31 (App registrations > Certificates & secrets shows it), or leave it empty"
		}
		in.OAuth.SecretExpiresAt = t
	}
	number := func(key, s string, unit string) int {
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			errs[key] = "enter a whole number" + unit
		}
		return n
	}
	in.Port = number("port", fv.Port, ", or leave it empty for the default port")
	in.PollInterval = time.Duration(number("poll_interval_seconds", fv.PollInterval, " of seconds")) * time.Second
	in.MaxSizeMB = number("max_size_mb", fv.MaxSize, " of MB from 5 to 20")
	if len(errs) > 0 {
		d.Errors = errs
		return d, in, false
	}
	return d, in, true
}

// formMailbox is the mailbox as the form describes it so far (not normalized: enough for
// the Microsoft 365 walk-through).
func formMailbox(d mailboxFormData) store.Mailbox {
	v := d.V
	return store.Mailbox{
		Name: v.Name, Direction: d.Direction, Protocol: v.Protocol, Address: v.Address, Login: v.Login, Auth: v.Auth,
		GraphURL: v.GraphURL, OAuth: store.OAuth{Provider: v.Provider, Cloud: v.Cloud, AuthorityURL: v.AuthorityURL,
			Tenant: v.Tenant, ClientID: v.ClientID, Account: d.Account},
		ClientSecretSet: d.ClientSecretSet, CertificateSet: d.CertificateSet, RefreshTokenSet: d.RefreshTokenSet,
	}
}

// microsoftMailbox reports whether m connects to Microsoft 365: through Graph, or with an
// OAuth sign-in at Microsoft.
func microsoftMailbox(m store.Mailbox) bool {
	if m.Protocol == mailbox.Graph {
		return true
	}
	return m.Auth != "" && m.Auth != store.AuthPassword && m.OAuth.Provider != credential.ProviderCustom &&
		m.OAuth.Provider != credential.ProviderGoogle
}

// precheckList is the Microsoft 365 walk-through for one client type.
type precheckList struct {
	Protocol string
	Steps    []diag.Precheck
}

// formSecret is a write-only field's value; nil when empty (keep the stored one).
func formSecret(v string) *vault.Secret {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	s := vault.NewSecret(v)
	return &s
}

// renderForm fills the form's choices and error summary and renders it.
func (h *handler) renderForm(w http.ResponseWriter, r *http.Request, v viewer, status int, d mailboxFormData) {
	d.Type = directionLabel(d.Direction)
	if d.ID == 0 {
		d.Action, d.TestAction = "/mailboxes", "/mailboxes/test"
		d.Cancel = "/mailboxes"
	} else {
		id := itoa(d.ID)
		d.Action, d.TestAction = "/mailboxes/"+id, "/mailboxes/"+id+"/test"
		d.Cancel = listView{Selected: d.ID}.URL("")
	}
	d.Securities = []choice{
		{mailbox.SecurityTLS, "TLS (implicit, e.g. 993, 995, 465)"},
		{mailbox.SecurityStartTLS, "STARTTLS (e.g. 143, 110, 587)"},
		{mailbox.SecurityNone, "None (only for a server on this machine)"},
	}
	d.RedirectURI = h.redirectURI(r)
	d.Auths = []choice{
		{store.AuthPassword, "Password"},
		{store.AuthOAuthApp, "Microsoft 365 app: client secret or certificate"},
		{store.AuthOAuthDelegated, "A person signs in (delegated)"},
		{store.AuthOAuthROPC, "Login and password for a token (ROPC, deprecated)"},
	}
	d.Providers = []choice{
		{credential.ProviderMicrosoft, "Microsoft 365 (Microsoft Entra ID)"},
		{credential.ProviderCustom, "Another OAuth 2.0 provider (token URL below)"},
	}
	d.Providers = append(d.Providers, choice{credential.ProviderGoogle, "Google Workspace (service account or Sign in with Google)"})
	for _, c := range credential.Clouds() {
		d.Clouds = append(d.Clouds, choice{c.Name, c.Label})
	}
	d.Clouds = append(d.Clouds, choice{credential.CloudCustom, "Another authority URL (below)"})
	if d.Inbound() {
		d.Protocols = []choice{{mailbox.IMAP, "IMAP"}, {mailbox.POP3, "POP3"}, {mailbox.Graph, "Microsoft Graph (Microsoft 365)"},
			{mailbox.EWS, "EWS (Exchange Server)"}}
		d.Protocols = append(d.Protocols, choice{mailbox.Gmail, "Gmail API (Google Workspace)"})
		d.AfterActions = []choice{
			{"", "default (IMAP, Graph: mark as read; POP3: delete)"},
			{store.AfterMarkRead, "IMAP, Graph: mark as read"},
			{store.AfterMove, "IMAP, Graph: move to a folder"},
			{store.AfterDelete, "IMAP, POP3: delete from the server"},
			{store.AfterKeep, "POP3, Graph: leave on the server"},
		}
	} else {
		d.Protocols = []choice{{mailbox.SMTP, "SMTP"}, {mailbox.Graph, "Microsoft Graph (Microsoft 365)"},
			{mailbox.EWS, "EWS (Exchange Server)"}}
		d.Protocols = append(d.Protocols, choice{mailbox.Gmail, "Gmail API (Google Workspace)"})
	}
	// The walk-through is on every form, one list per client type: the style sheet shows
	// the one for the chosen client type while the sign-in is a Microsoft 365 one. When
	// the form's sign-in is not (yet), the lists are for an app registration; Test
	// connection (or Save) brings the ones for the choices made.
	fm := formMailbox(d)
	if !microsoftMailbox(fm) || fm.Auth == store.AuthPassword {
		fm.Auth, fm.OAuth.Provider = store.AuthOAuthApp, credential.ProviderMicrosoft
	}
	d.Google = googleWalkthrough(formMailbox(d))
	for _, p := range d.Protocols {
		if p.Value == mailbox.Gmail {
			continue // Google's walk-through is d.Google
		}
		fm.Protocol = p.Value
		d.Prechecks = append(d.Prechecks, precheckList{Protocol: p.Value, Steps: diag.MicrosoftPrechecks(fm)})
	}
	for _, k := range formFields {
		if msg := d.Errors[k]; msg != "" {
			d.Summary = append(d.Summary, fieldLabel(k)+": "+msg)
		}
	}
	for k, msg := range d.Errors {
		if _, known := fieldLabels[k]; !known && msg != "" {
			d.Summary = append(d.Summary, msg)
		}
	}
	title := "New " + strings.ToLower(d.Type) + " mailbox"
	if d.ID != 0 {
		title = "Edit mailbox " + d.V.Name
	}
	h.render(w, r, status, "mailboxform", h.data(v, title, "mailboxes", d))
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
