package mstest

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// state is everything the server knows; Server.mu guards it.
type state struct {
	tenants map[string]*Tenant // by lower-case id
	domains map[string]*Tenant // by lower-case domain
	apps    map[string]*App    // by lower-case client id
	// otherCloud: tenants (by lower-case id or domain) that live in a national cloud this
	// stand-in does not play, with that cloud's name (AddOtherCloudTenant).
	otherCloud map[string]string

	refresh map[string]*refreshGrant // by refresh token
	codes   map[string]*authCode     // by code
	// accessNotBefore: access tokens issued before it are refused (ExpireAccessTokens).
	accessNotBefore time.Time
	// issued: every access token's uti -> when it was issued (to the nanosecond, which a
	// JWT's iat is not), for ExpireAccessTokens and RevokeUserSessions.
	issued map[string]time.Time
	// flows: sign-in pages in progress, by flow id.
	flows map[string]*signInFlow
	// oidc: the id token signing keys and the id token faults (oidc.go).
	oidc oidcState

	mail  mailState
	graph graphState
}

func newState() *state {
	return &state{
		tenants:    map[string]*Tenant{},
		domains:    map[string]*Tenant{},
		apps:       map[string]*App{},
		otherCloud: map[string]string{},
		refresh:    map[string]*refreshGrant{},
		codes:      map[string]*authCode{},
		issued:     map[string]time.Time{},
		flows:      map[string]*signInFlow{},
		mail:       newMailState(),
		graph:      newGraphState(),
	}
}

// guidPattern matches a directory (tenant) id, client id or object id.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// domainPattern matches a DNS name a tenant can verify.
var domainPattern = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$`)

// Tenant is a directory (Entra ID tenant) with its verified domains, app registrations,
// users and mailboxes.
type Tenant struct {
	s       *Server
	id      string
	domains []string
	users   map[string]*User // by lower-case UPN and lower-case object id
}

// AddTenant adds a tenant with directory id id (a GUID; NewGUID makes one) and verified
// domains (e.g. "contoso.example", "contoso.onmicrosoft.com"). The token endpoint then
// knows it by id and by each domain.
func (s *Server) AddTenant(id string, domains ...string) (*Tenant, error) {
	if !guidPattern.MatchString(id) {
		return nil, fmt.Errorf("mstest: tenant id %q is not a GUID", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(id)
	if _, ok := s.state.tenants[key]; ok {
		return nil, fmt.Errorf("mstest: tenant %s exists", id)
	}
	for _, d := range domains {
		if !domainPattern.MatchString(d) {
			return nil, fmt.Errorf("mstest: tenant domain %q is not a DNS name", d)
		}
		if _, ok := s.state.domains[strings.ToLower(d)]; ok {
			return nil, fmt.Errorf("mstest: domain %s belongs to another tenant", d)
		}
	}
	t := &Tenant{s: s, id: key, domains: slices.Clone(domains), users: map[string]*User{}}
	s.state.tenants[key] = t
	for _, d := range domains {
		s.state.domains[strings.ToLower(d)] = t
	}
	return t, nil
}

// Delegated Graph scopes for another user's or a shared mailbox (ms365-protocol.md §8.1):
// Mail.ReadWrite and Mail.Send cover only the signed-in user's own mailbox; these cover
// it too, and every mailbox the user holds FullAccess (read, write) or SendAs (send) on.
const (
	ScopeGraphMailReadShared      = GraphAudience + "/Mail.Read.Shared"
	ScopeGraphMailReadWriteShared = GraphAudience + "/Mail.ReadWrite.Shared"
	ScopeGraphMailSendShared      = GraphAudience + "/Mail.Send.Shared"
)

// National clouds, as Microsoft names them in AADSTS90038.
const (
	CloudUSGov = "USGov"
	CloudChina = "China"
)

// AddOtherCloudTenant makes the token and authorize endpoints answer AADSTS90038
// (NationalCloudTenantRedirection) for a tenant id or domain that lives in another cloud
// (CloudUSGov, CloudChina) than the global one this stand-in plays: what Microsoft's global
// login host says to an administrator who picked the wrong cloud.
func (s *Server) AddOtherCloudTenant(idOrDomain, cloud string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.otherCloud[strings.ToLower(idOrDomain)] = cloud
}

// ID is the tenant's directory id (lower case).
func (t *Tenant) ID() string { return t.id }

// Domains are the tenant's verified domains.
func (t *Tenant) Domains() []string { return slices.Clone(t.domains) }

// AppConfig describes an app registration (and its enterprise application).
type AppConfig struct {
	// ClientID is the application (client) id; NewGUID() when empty.
	ClientID string
	// DisplayName shows in tokens (app_displayname) and on the sign-in page.
	DisplayName string
	// Disabled: "Enabled for users to sign in" is off; every grant answers AADSTS7000112.
	Disabled bool
	// PublicClient: "Allow public client flows"; such an app must not send a secret
	// (AADSTS700025) and needs none for authorization_code, refresh_token and password.
	PublicClient bool
	// RedirectURIs are the registered redirect URIs; authorize demands an exact match
	// (AADSTS50011).
	RedirectURIs []string
	// Roles are the application permissions the app requests (RoleMailReadWrite,
	// RoleIMAPAccessAsApp, ...). They reach a token's roles claim only with AdminConsent.
	Roles []string
	// Scopes are the delegated permissions the app requests (ScopeGraphMailReadWrite,
	// ScopeGraphMailReadWriteShared, ScopeIMAP, ...). A delegated grant needs consent for
	// each scope it asks for: AdminConsent, or the user's own consent given on the sign-in
	// page. A delegated token then carries every scope consented for its API (scp), not
	// only the requested ones, as Entra ID does.
	Scopes []string
	// AdminConsent: an administrator granted consent for the tenant.
	AdminConsent bool
	// ServicePrincipalID is the enterprise application's object id (the oid of app
	// tokens); NewGUID() when empty.
	ServicePrincipalID string
}

// App is an app registration in one tenant.
type App struct {
	s      *Server
	tenant *Tenant
	cfg    AppConfig

	secrets []*secret
	certs   []*x509.Certificate
	// fullAccess: mailboxes (lower-case addresses) this app's service principal holds
	// FullAccess on (Add-MailboxPermission), needed for app-only IMAP/POP/SMTP.
	fullAccess map[string]bool
	policy     *AccessPolicy
	// userConsent: scopes each user (lower-case UPN) consented to on the sign-in page.
	userConsent map[string]map[string]bool
}

type secret struct {
	id      string
	value   string
	expires time.Time
}

// AccessPolicy is an application access policy (New-ApplicationAccessPolicy) or an RBAC
// for Applications management scope: it narrows the app's application permissions on
// Graph to some mailboxes. It does not apply to delegated tokens nor to IMAP/POP/SMTP.
type AccessPolicy struct {
	// Deny: -AccessRight DenyAccess (every mailbox except these); otherwise RestrictAccess
	// (only these).
	Deny bool
	// Mailboxes are the addresses in the policy's scope group.
	Mailboxes []string
}

// AddApp registers an app in the tenant.
func (t *Tenant) AddApp(cfg AppConfig) (*App, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = NewGUID()
	}
	if !guidPattern.MatchString(cfg.ClientID) {
		return nil, fmt.Errorf("mstest: client id %q is not a GUID", cfg.ClientID)
	}
	if cfg.ServicePrincipalID == "" {
		cfg.ServicePrincipalID = NewGUID()
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "app " + cfg.ClientID[:8]
	}
	cfg.ClientID = strings.ToLower(cfg.ClientID)
	cfg.RedirectURIs = slices.Clone(cfg.RedirectURIs)
	cfg.Roles = slices.Clone(cfg.Roles)
	cfg.Scopes = slices.Clone(cfg.Scopes)
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.state.apps[cfg.ClientID]; ok {
		return nil, fmt.Errorf("mstest: client id %s exists", cfg.ClientID)
	}
	a := &App{s: s, tenant: t, cfg: cfg, fullAccess: map[string]bool{}, userConsent: map[string]map[string]bool{}}
	s.state.apps[cfg.ClientID] = a
	return a, nil
}

// ClientID is the application (client) id.
func (a *App) ClientID() string { return a.cfg.ClientID }

// Tenant is the app's home tenant.
func (a *App) Tenant() *Tenant { return a.tenant }

// AddSecret adds a client secret with value and expiry; it returns the secret's id (the
// "Secret ID" an administrator may paste by mistake instead of the value).
func (a *App) AddSecret(value string, expires time.Time) string {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	sec := &secret{id: NewGUID(), value: value, expires: expires}
	a.secrets = append(a.secrets, sec)
	return sec.id
}

// ExpireSecret makes the secret with value expire now (AADSTS7000222 from then on).
func (a *App) ExpireSecret(value string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	now := a.s.nowLocked()
	for _, sec := range a.secrets {
		if sec.value == value {
			sec.expires = now.Add(-time.Second)
		}
	}
}

// RemoveSecret deletes the secret with value (AADSTS7000215 from then on).
func (a *App) RemoveSecret(value string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.secrets = slices.DeleteFunc(a.secrets, func(sec *secret) bool { return sec.value == value })
}

// AddCertificate uploads a certificate; client assertions signed by its key (RS256, x5t or
// x5t#S256 naming it) authenticate the app until the certificate's NotAfter.
func (a *App) AddCertificate(cert *x509.Certificate) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.certs = append(a.certs, cert)
}

// AddRedirectURI registers one more redirect URI (e.g. postroom's callback once its
// listener is known).
func (a *App) AddRedirectURI(uri string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if !slices.Contains(a.cfg.RedirectURIs, uri) {
		a.cfg.RedirectURIs = append(a.cfg.RedirectURIs, uri)
	}
}

// SetDisabled turns "Enabled for users to sign in" off (true) or on.
func (a *App) SetDisabled(disabled bool) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.cfg.Disabled = disabled
}

// SetAdminConsent grants (true) or revokes admin consent.
func (a *App) SetAdminConsent(granted bool) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.cfg.AdminConsent = granted
}

// SetRoles replaces the application permissions the app requests.
func (a *App) SetRoles(roles ...string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.cfg.Roles = slices.Clone(roles)
}

// SetScopes replaces the delegated permissions the app requests (AppConfig.Scopes).
func (a *App) SetScopes(scopes ...string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.cfg.Scopes = slices.Clone(scopes)
}

// GrantFullAccess gives the app's service principal FullAccess on mailbox
// (Add-MailboxPermission), which app-only IMAP/POP/SMTP needs.
func (a *App) GrantFullAccess(mailbox string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.fullAccess[strings.ToLower(mailbox)] = true
}

// RevokeFullAccess removes a FullAccess grant.
func (a *App) RevokeFullAccess(mailbox string) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	delete(a.fullAccess, strings.ToLower(mailbox))
}

// SetAccessPolicy sets the app's application access policy; nil removes it (the app's
// application permissions then cover every mailbox of the tenant).
func (a *App) SetAccessPolicy(p *AccessPolicy) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if p == nil {
		a.policy = nil
		return
	}
	cp := AccessPolicy{Deny: p.Deny}
	for _, m := range p.Mailboxes {
		cp.Mailboxes = append(cp.Mailboxes, strings.ToLower(m))
	}
	a.policy = &cp
}

// UserConfig describes a user or a shared mailbox.
type UserConfig struct {
	// UPN is the user principal name, which is also the primary SMTP address.
	UPN string
	// DisplayName; the UPN's local part when empty.
	DisplayName string
	// Aliases are further addresses of the mailbox (proxy addresses): sendMail may use
	// them as From; any other From answers 403 ErrorSendAsDenied.
	Aliases []string
	// Password for ROPC and the sign-in page. A shared mailbox has none (it cannot sign
	// in; AADSTS50126).
	Password string
	// ObjectID is the user's object id; NewGUID() when empty. Graph paths take it or the UPN.
	ObjectID string
	// Shared marks a shared mailbox (no sign-in, no licence needed).
	Shared bool
	// MFARequired: a password-only sign-in (ROPC) answers AADSTS50076.
	MFARequired bool
	// MFARegistrationRequired: ROPC answers AADSTS50079.
	MFARegistrationRequired bool
	// ConditionalAccessBlock: every sign-in of this user answers AADSTS53003.
	ConditionalAccessBlock bool
	// AccountDisabled: sign-in answers AADSTS50057.
	AccountDisabled bool
	// PasswordExpired: sign-in answers AADSTS50055.
	PasswordExpired bool
	// NoMailbox: no Exchange Online licence / mailbox on-premises; Graph mail answers 404
	// MailboxNotEnabledForRESTAPI. (Shared mailboxes need no licence.)
	NoMailbox bool
	// SMTPAuthDisabled, IMAPDisabled, POPDisabled (Set-CASMailbox): introspection refuses
	// tokens for that protocol. Dovecot names the protocol only with send_auth_headers =
	// yes (X-Dovecot-Auth-Service); without it, any of them set refuses every login.
	SMTPAuthDisabled, IMAPDisabled, POPDisabled bool
}

// User is a user or shared mailbox in a tenant.
type User struct {
	s      *Server
	tenant *Tenant
	cfg    UserConfig
	// sessionsValidFrom: refresh tokens and delegated access tokens issued before it are
	// revoked (RevokeUserSessions, password change).
	sessionsValidFrom time.Time
	// fullAccess: mailboxes (lower-case) this user holds FullAccess on (delegated access to
	// a shared mailbox).
	fullAccess map[string]bool
	// sendAs: mailboxes (lower-case) this user may send as (Add-RecipientPermission
	// -AccessRights SendAs).
	sendAs map[string]bool
	mbox   *mailbox
	// groups and appRoles go into the id token's groups and roles claims (SetGroups,
	// SetAppRoles).
	groups, appRoles []string
}

// AddUser adds a user with a mailbox (unless NoMailbox).
func (t *Tenant) AddUser(cfg UserConfig) (*User, error) {
	cfg.UPN = strings.TrimSpace(cfg.UPN)
	at := strings.LastIndexByte(cfg.UPN, '@')
	if at <= 0 || at == len(cfg.UPN)-1 {
		return nil, fmt.Errorf("mstest: user principal name %q is not an address", cfg.UPN)
	}
	if cfg.ObjectID == "" {
		cfg.ObjectID = NewGUID()
	}
	if !guidPattern.MatchString(cfg.ObjectID) {
		return nil, fmt.Errorf("mstest: object id %q is not a GUID", cfg.ObjectID)
	}
	cfg.ObjectID = strings.ToLower(cfg.ObjectID)
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.UPN[:at]
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	upn := strings.ToLower(cfg.UPN)
	if _, ok := t.users[upn]; ok {
		return nil, fmt.Errorf("mstest: user %s exists", cfg.UPN)
	}
	if _, ok := s.state.mail.byAddress[upn]; ok {
		return nil, fmt.Errorf("mstest: address %s is taken in another tenant", cfg.UPN)
	}
	u := &User{s: s, tenant: t, cfg: cfg, fullAccess: map[string]bool{}, sendAs: map[string]bool{}}
	u.mbox = s.state.mail.newMailbox(u)
	t.users[upn] = u
	t.users[cfg.ObjectID] = u
	return u, nil
}

// AddSharedMailbox adds a shared mailbox (no password, cannot sign in, needs no licence).
func (t *Tenant) AddSharedMailbox(address, displayName string) (*User, error) {
	return t.AddUser(UserConfig{UPN: address, DisplayName: displayName, Shared: true})
}

// UPN is the user's principal name as configured.
func (u *User) UPN() string { return u.cfg.UPN }

// ObjectID is the user's object id (lower case).
func (u *User) ObjectID() string { return u.cfg.ObjectID }

// Update changes the user's settings with f (e.g. to require MFA or remove the licence
// while a test runs). UPN and ObjectID cannot change.
func (u *User) Update(f func(*UserConfig)) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	cfg := u.cfg
	f(&cfg)
	cfg.UPN, cfg.ObjectID = u.cfg.UPN, u.cfg.ObjectID
	u.cfg = cfg
}

// SetPassword changes the password; like Entra ID it revokes the user's sessions
// (refresh tokens then answer AADSTS50173).
func (u *User) SetPassword(password string) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.cfg.Password = password
	u.sessionsValidFrom = u.s.nowLocked().Add(time.Nanosecond)
}

// GrantFullAccess gives this user FullAccess on mailbox (a shared mailbox), so delegated
// tokens of the user may open it (Graph also wants the scope Mail.ReadWrite.Shared or
// Mail.Read.Shared in the token).
func (u *User) GrantFullAccess(mailbox string) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.fullAccess[strings.ToLower(mailbox)] = true
}

// GrantSendAs gives this user SendAs on mailbox (Add-RecipientPermission -AccessRights
// SendAs), so delegated tokens of the user with Mail.Send.Shared may send from it over
// Graph; without it Graph answers 403 ErrorSendAsDenied.
func (u *User) GrantSendAs(mailbox string) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.sendAs[strings.ToLower(mailbox)] = true
}

// RevokeUserSessions revokes every refresh token and delegated access token of the user
// with upn (Revoke-MgUserSignInSession): the refresh grant then answers AADSTS50173.
func (s *Server) RevokeUserSessions(upn string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.findUserLocked(upn)
	if u == nil {
		return fmt.Errorf("mstest: no user %s", upn)
	}
	u.sessionsValidFrom = s.nowLocked().Add(time.Nanosecond)
	return nil
}

// ExpireAccessTokens makes every access token issued so far invalid: Graph answers 401
// InvalidAuthenticationToken and introspection inactive, as after their expiry.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.accessNotBefore = s.nowLocked().Add(time.Nanosecond)
}

// RevokeRefreshTokens revokes every refresh token issued to the app with clientID
// (AADSTS50173 on their next use).
func (s *Server) RevokeRefreshTokens(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.state.refresh {
		if g.clientID == strings.ToLower(clientID) {
			g.revoked = true
		}
	}
}

// findUserLocked finds a user by UPN or object id in any tenant.
func (s *Server) findUserLocked(id string) *User {
	key := strings.ToLower(id)
	for _, t := range s.state.tenants {
		if u, ok := t.users[key]; ok {
			return u
		}
	}
	return nil
}
