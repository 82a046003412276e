package credential

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Audience says which service an access token is for: one token covers one resource
// (ms365-protocol.md §1.5), so a Graph token is refused by IMAP and the reverse.
type Audience string

// Audiences.
const (
	AudienceExchange Audience = "exchange" // IMAP, POP3 and SMTP AUTH
	AudienceGraph    Audience = "graph"    // Microsoft Graph
)

// Providers of OAuth 2.0 (store.OAuth.Provider).
const (
	ProviderMicrosoft = "microsoft"
	ProviderCustom    = "custom"
)

// Plan is how a mailbox gets its tokens for one audience: the endpoints and scopes its
// settings resolve to.
type Plan struct {
	Grant        string // store.AuthOAuthApp, AuthOAuthDelegated or AuthOAuthROPC
	TokenURL     string
	AuthorizeURL string // delegated sign-in; "" when unknown
	Scopes       []string
}

// PlanFor resolves the endpoints and scopes of mailbox m's sign-in for aud. Errors name the
// setting to fix.
func PlanFor(m store.Mailbox, aud Audience) (Plan, error) {
	o := m.OAuth
	p := Plan{Grant: m.Auth}
	switch m.Auth {
	case store.AuthOAuthApp, store.AuthOAuthDelegated, store.AuthOAuthROPC:
	default:
		return Plan{}, fmt.Errorf("mailbox %q signs in with %q, not OAuth", m.Name, m.Auth)
	}
	if o.ClientID == "" && !(o.Provider == ProviderGoogle && m.Auth == store.AuthOAuthApp) {
		return Plan{}, fmt.Errorf("mailbox %q has no OAuth client id", m.Name)
	}
	if o.Scopes != "" {
		p.Scopes = strings.Fields(o.Scopes)
	}
	if o.Provider == ProviderGoogle {
		return googlePlan(m, p)
	}
	if o.Provider == ProviderCustom {
		if o.TokenURL == "" {
			return Plan{}, fmt.Errorf("mailbox %q has no token URL", m.Name)
		}
		p.TokenURL, p.AuthorizeURL = o.TokenURL, o.AuthorizeURL
		return p, nil
	}
	cloud, ok := CloudByName(o.Cloud)
	if !ok {
		return Plan{}, fmt.Errorf("mailbox %q: unknown Microsoft cloud %q", m.Name, o.Cloud)
	}
	login := cloud.LoginURL
	if o.AuthorityURL != "" {
		login = o.AuthorityURL
	}
	tenant := o.Tenant
	if tenant == "" {
		tenant = "organizations"
	}
	p.TokenURL = MicrosoftTokenURL(login, tenant)
	p.AuthorizeURL = MicrosoftAuthorizeURL(login, tenant)
	if len(p.Scopes) == 0 {
		p.Scopes = MailboxScopes(cloud, m, aud)
	}
	return p, nil
}

// MailboxScopes are the scopes mailbox m's Microsoft sign-in asks for: MicrosoftScopes,
// except for an EWS mailbox on Exchange Server on-premises (hybrid modern authentication),
// whose tokens are for the server itself (EWSResource).
func MailboxScopes(cloud Cloud, m store.Mailbox, aud Audience) []string {
	if m.Protocol == "ews" && aud == AudienceExchange {
		if res := EWSResource(cloud, m.Host); res != "" {
			if m.Auth == store.AuthOAuthApp {
				return []string{res + graphDefaultSuffix}
			}
			return []string{offlineAccess, res + "/EWS.AccessAsUser.All"}
		}
	}
	return MicrosoftScopes(cloud, m.Auth, m.Protocol, aud)
}

// EWSResource is the resource of the OAuth tokens of an EWS mailbox on Exchange Server
// on-premises with hybrid modern authentication: https://<host>, the server's external URL,
// which the administrator registers as a service principal name of Office 365 Exchange
// Online in Entra ID (Microsoft's "hybrid modern authentication" setup), so that Entra ID
// issues tokens whose audience the server accepts. It is "" for Exchange Online (the
// cloud's Exchange hosts, outlook.office365.com, outlook.office.com) and for an empty host
// (autodiscover: the server is not known before the first token), whose tokens are for
// the cloud's Exchange Online resource.
func EWSResource(cloud Cloud, host string) string {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(strings.TrimSpace(host), "[]"), "."))
	if host == "" {
		return ""
	}
	for _, online := range []string{hostOf(cloud.ExchangeResource), hostOf(cloud.DelegatedResource), strings.ToLower(cloud.IMAPHost),
		"outlook.office365.com", "outlook.office.com"} {
		if host == online {
			return ""
		}
	}
	if strings.Contains(host, ":") { // an IPv6 address
		host = "[" + host + "]"
	}
	return "https://" + host
}

// hostOf is the lower-case host of a URL such as https://outlook.office365.com.
func hostOf(u string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(u), "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return h
}

// Delegated Graph mail permissions a person's sign-in asks for.
const (
	ScopeMailReadWriteShared = "Mail.ReadWrite.Shared"
	ScopeMailSendShared      = "Mail.Send.Shared"
)

// MicrosoftScopes are the scopes a Microsoft sign-in asks for (ms365-protocol.md §1.3,
// §2.2): app-only tokens ask for one resource's /.default; delegated ones for the
// protocol's permission and offline_access (a refresh token).
//
// A person's Graph sign-in (delegated or password grant) always asks for
// Mail.ReadWrite.Shared and Mail.Send.Shared, not Mail.ReadWrite and Mail.Send: the plain
// ones cover only the signed-in account's own mailbox, and Graph refuses another user's
// or a shared mailbox without the .Shared ones (ms365-protocol.md §8.1), whereas the
// .Shared ones cover the account's own mailbox too. Asking for them always, rather than
// only when the mailbox differs from the account, keeps one set of permissions to
// consent to, and a sign-in made before the mailbox address changes still fits.
func MicrosoftScopes(cloud Cloud, auth, protocol string, aud Audience) []string {
	if aud == AudienceGraph {
		if auth == store.AuthOAuthApp {
			return []string{cloud.GraphURL + graphDefaultSuffix}
		}
		return []string{offlineAccess, cloud.GraphURL + "/" + ScopeMailReadWriteShared, cloud.GraphURL + "/" + ScopeMailSendShared,
			cloud.GraphURL + "/User.Read"}
	}
	if auth == store.AuthOAuthApp {
		return []string{cloud.ExchangeResource + graphDefaultSuffix}
	}
	switch protocol {
	case "pop3":
		return []string{offlineAccess, cloud.DelegatedResource + "/POP.AccessAsUser.All"}
	case "smtp":
		return []string{offlineAccess, cloud.DelegatedResource + "/SMTP.Send"}
	case "ews":
		return []string{offlineAccess, cloud.DelegatedResource + "/EWS.AccessAsUser.All"}
	}
	return []string{offlineAccess, cloud.DelegatedResource + "/IMAP.AccessAsUser.All"}
}

// AudienceOf is the audience of a mailbox's protocol.
func AudienceOf(protocol string) Audience {
	if protocol == "graph" {
		return AudienceGraph
	}
	return AudienceExchange
}

// TokensOptions configures Tokens.
type TokensOptions struct {
	// HTTPClient makes the token requests (nil: a client with a timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Tokens gives each OAuth mailbox a TokenFunc and keeps it between connections, so an
// access token is reused until it is about to expire (not fetched on every reconnect),
// and a delegated mailbox's rotated refresh token is saved, encrypted, every time.
// A mailbox whose settings change (UpdatedAt moves) gets a new token source.
type Tokens struct {
	secrets *Secrets
	opts    TokensOptions

	mu      sync.Mutex
	sources map[tokenKey]tokenEntry
}

type tokenKey struct {
	mailbox int64
	aud     Audience
}

type tokenEntry struct {
	version time.Time // the mailbox's UpdatedAt when the source was made
	token   connector.TokenFunc
}

// NewTokens returns a Tokens. It does no I/O.
func NewTokens(secrets *Secrets, opts TokensOptions) *Tokens {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Tokens{secrets: secrets, opts: opts, sources: map[tokenKey]tokenEntry{}}
}

// For returns the TokenFunc of mailbox m for aud, or nil when m signs in with a password.
func (t *Tokens) For(ctx context.Context, m store.Mailbox, aud Audience) (connector.TokenFunc, error) {
	if m.Auth == "" || m.Auth == store.AuthPassword {
		return nil, nil
	}
	key := tokenKey{m.ID, aud}
	t.mu.Lock()
	e, ok := t.sources[key]
	t.mu.Unlock()
	if ok && e.version.Equal(m.UpdatedAt) {
		return e.token, nil
	}
	fn, err := t.build(ctx, m, aud)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.sources[key]; ok && e.version.Equal(m.UpdatedAt) {
		return e.token, nil // another caller built it first
	}
	t.sources[key] = tokenEntry{version: m.UpdatedAt, token: fn}
	return fn, nil
}

// Forget drops the cached token sources of a mailbox (after a new sign-in or secret).
func (t *Tokens) Forget(mailboxID int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.sources {
		if k.mailbox == mailboxID {
			delete(t.sources, k)
		}
	}
}

func (t *Tokens) build(ctx context.Context, m store.Mailbox, aud Audience) (connector.TokenFunc, error) {
	var sec MailboxSecrets
	for _, x := range []struct {
		name string
		dst  *vault.Secret
		want bool
	}{
		{store.SecretClientSecret, &sec.ClientSecret, true},
		{store.SecretCertificate, &sec.Certificate, m.CertificateSet},
		{store.SecretPassword, &sec.Password, m.Auth == store.AuthOAuthROPC},
		{store.SecretRefreshToken, &sec.RefreshToken, m.Auth == store.AuthOAuthDelegated},
	} {
		if !x.want {
			continue
		}
		v, err := t.secrets.Get(ctx, m.ID, x.name)
		if err != nil {
			return nil, err
		}
		*x.dst = v
	}
	id := m.ID
	return TokenFuncFor(m, aud, sec, t.opts, func(ctx context.Context, newRefresh vault.Secret) error {
		return t.secrets.Set(ctx, id, store.SecretRefreshToken, newRefresh)
	})
}

// MailboxSecrets are the secrets a mailbox's OAuth sign-in may use.
type MailboxSecrets struct {
	ClientSecret, Certificate, Password, RefreshToken vault.Secret
}

// TokenFuncFor makes the token source of mailbox m for aud from the given secrets (a
// connection test of settings not saved yet uses it with the secrets typed in the form).
// saveRefresh receives every rotated refresh token of a delegated sign-in; nil drops them.
func TokenFuncFor(m store.Mailbox, aud Audience, sec MailboxSecrets, opts TokensOptions, saveRefresh func(ctx context.Context, newRefresh vault.Secret) error) (connector.TokenFunc, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	plan, err := PlanFor(m, aud)
	if err != nil {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth settings", Err: err,
			Advice: "complete the mailbox's OAuth settings (client id, tenant or token URL)"}
	}
	cfg := OAuthConfig{
		TokenURL: plan.TokenURL, ClientID: m.OAuth.ClientID, ClientSecret: sec.ClientSecret, Scopes: plan.Scopes,
		HTTPClient: opts.HTTPClient,
		Logger:     opts.Logger.With(slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name), slog.String("audience", string(aud))),
	}
	if sec.ClientSecret.Reveal() == "" && sec.Certificate.Reveal() != "" {
		assert, err := NewClientAssertion(sec.Certificate, m.OAuth.ClientID, plan.TokenURL)
		if err != nil {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth certificate", Err: err,
				Advice: "the stored certificate cannot be used: upload the app's certificate and private key as one PEM file"}
		}
		cfg.Assertion = assert
	}
	if m.OAuth.Provider == ProviderGoogle && m.Auth == store.AuthOAuthApp {
		return googleServiceAccountFor(m, cfg, sec)
	}
	switch m.Auth {
	case store.AuthOAuthApp:
		if sec.ClientSecret.Reveal() == "" && cfg.Assertion == nil {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth settings", Err: fmt.Errorf("no client secret or certificate"),
				Advice: "enter the app's client secret (or upload its certificate) in the mailbox settings"}
		}
		return ClientCredentials(cfg), nil
	case store.AuthOAuthROPC:
		if m.Login == "" || sec.Password.Reveal() == "" {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth settings", Err: fmt.Errorf("no login or password"),
				Advice: "enter the login and password of the mailbox's account"}
		}
		return ResourceOwnerPassword(cfg, m.Login, sec.Password), nil
	default: // delegated
		if sec.RefreshToken.Reveal() == "" {
			return nil, &connector.Error{Kind: connector.KindAuth, Op: "oauth sign-in", Err: fmt.Errorf("nobody has signed in yet"),
				Advice: "sign in with the mailbox's account: Mailboxes > this mailbox > Sign in"}
		}
		return RefreshToken(cfg, sec.RefreshToken, saveRefresh), nil
	}
}
