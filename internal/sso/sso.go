// Package sso signs staff (agents, supervisors, admins) in through an OpenID Connect
// provider: Microsoft Entra ID first (issuer https://login.microsoftonline.com/{tenant
// id}/v2.0), or any standard provider by its issuer URL. It uses the authorization code
// grant with PKCE (golang.org/x/oauth2) and verifies the id token with
// github.com/coreos/go-oidc/v3: signature against the provider's JWKS, issuer, audience
// (the client id), expiry, and the nonce.
//
// The flow:
//
//   - Start makes a state, a nonce, a PKCE verifier and a random browser value; it keeps
//     them in the store (store.SSOSignIn: state, nonce and browser value hashed, verifier
//     sealed by the vault) for SignInLifetime, and returns the provider's authorize URL and
//     the browser value, which the web page puts in a cookie. Any node may get the
//     callback; a sign-in is taken from the store once.
//   - Finish takes the sign-in of the callback's state, checks that it comes from the
//     browser that started it and that the configuration's issuer is still the one it was
//     started with, redeems the code (sending the client secret only to the issuer it was
//     entered for), verifies the id token, maps its claims to a user and starts a postroom
//     session (auth.Service.StartSession). Every refusal is a *Refusal with a message for
//     the person and a reason that goes to the log and to the audit log ("login.failure");
//     a success is audited as "login.success" (object "user:<name>", New "address=<client
//     ip> method=sso").
//
// Claims to user: the person is found by their identity at the issuer (Entra ID: the
// object id oid, which is stable; other providers: sub), else, the first time, by a user
// name or email address equal to Entra ID's preferred_username (the UPN) or email, or to
// another provider's email when email_verified is true; a user linked to another person at
// the same issuer is never matched (then the identity is linked). Their role comes from
// the mappings (Config.Mappings: a value of the groups or roles claim to a role and/or a
// team); the highest role mapped wins, and without one the Config.UnmappedRole. With role
// mappings configured, the role is set again at every sign-in (except for the break-glass
// admins, who keep theirs); with team mappings, the teams too. An unknown person is created when
// Config.AutoCreate allows it (with an unusable random password), otherwise refused with
// "ask an administrator to create your user". A disabled user is refused.
//
// Local passwords: with Config.LocalPasswordsOff, PasswordRefusal refuses the password
// sign-in (page and API) to everyone but the Config.BreakGlass administrators.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Paths of the web pages, for the redirect URI to register at the provider.
const (
	// StartPath is where the login page's "Sign in with ..." button leads.
	StartPath = "/login/sso"
	// CallbackPath is the redirect URI's path: register PublicURL + CallbackPath.
	CallbackPath = "/sso/callback"
)

// BrowserCookie carries the random value that binds a sign-in to the browser that
// started it.
const BrowserCookie = "postroom_sso"

// SignInLifetime is how long a started sign-in can be finished.
const SignInLifetime = 10 * time.Minute

// maxPending bounds the sign-ins in progress, so that a script cannot fill the database.
const maxPending = 1000

// requestTimeout bounds each request to the provider.
const requestTimeout = 15 * time.Second

// Options configure a Service.
type Options struct {
	Store store.Store
	Vault *vault.Vault
	Auth  *auth.Service
	// HTTPClient talks to the provider (default: a client with a 15 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock that id tokens' expiry is checked against (default time.Now).
	Now func() time.Time
}

// Service runs single sign-on. A nil *Service is "not configured" for Button and
// PasswordRefusal.
type Service struct {
	st     store.Store
	vault  *vault.Vault
	auth   *auth.Service
	client *http.Client
	logger *slog.Logger
	now    func() time.Time
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Vault == nil || o.Auth == nil {
		return nil, errors.New("sso: Store, Vault and Auth are required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: requestTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: o.Store, vault: o.Vault, auth: o.Auth, client: o.HTTPClient, logger: o.Logger, now: o.Now}, nil
}

// Button is the label of the login page's single sign-on button ("Sign in with
// Microsoft"), or "" when single sign-on is off.
func (s *Service) Button(ctx context.Context) string {
	if s == nil {
		return ""
	}
	c, err := s.Config(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "single sign-on settings unreadable", slog.Any("error", err))
		return ""
	}
	if !c.Enabled() {
		return ""
	}
	return "Sign in with " + c.ProviderName()
}

// PasswordRefusal says whether a password sign-in of username must be refused because
// local passwords are switched off: status 0 when it may go on, else the HTTP status and
// the message to show. Handlers call it before checking the password.
func (s *Service) PasswordRefusal(ctx context.Context, username string) (int, string) {
	if s == nil {
		return 0, ""
	}
	c, err := s.Config(ctx)
	if err != nil {
		s.logger.ErrorContext(ctx, "single sign-on settings unreadable at password sign-in", slog.Any("error", err))
		return http.StatusServiceUnavailable, "Sign-in is not possible at the moment: the settings could not be read. Try again in a minute."
	}
	if !c.LocalPasswordsOff || !c.Enabled() {
		return 0, ""
	}
	username = strings.TrimSpace(username)
	if slices.ContainsFunc(c.BreakGlass, func(n string) bool { return strings.EqualFold(n, username) }) {
		return 0, ""
	}
	return http.StatusForbidden, fmt.Sprintf("Passwords are switched off for this site: use “Sign in with %s”. "+
		"Only the break-glass administrators sign in with a password.", c.ProviderName())
}

// discover reads the provider's discovery document.
func (s *Service) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), issuer)
	if err != nil {
		return nil, fmt.Errorf("could not read the OpenID configuration at %s/.well-known/openid-configuration (%v): "+
			"check the issuer URL (Entra ID: https://login.microsoftonline.com/<tenant id>/v2.0, with the tenant's id, not its domain)",
			strings.TrimSuffix(issuer, "/"), err)
	}
	return p, nil
}

func randomValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashHex(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func oauthConfig(c Config, p *oidc.Provider, secret, redirectURI string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirectURI,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

// Started is a sign-in on its way to the provider.
type Started struct {
	// URL is the provider's authorize URL to send the browser to.
	URL string
	// Browser is the value for BrowserCookie.
	Browser string
}

// Start begins a sign-in that will come back to redirectURI and then go to next (a path
// of this site, checked by the caller).
func (s *Service) Start(ctx context.Context, redirectURI, next string) (Started, error) {
	c, err := s.Config(ctx)
	if err != nil {
		return Started{}, err
	}
	if !c.Enabled() {
		return Started{}, ErrNotConfigured
	}
	p, err := s.discover(ctx, c.Issuer)
	if err != nil {
		return Started{}, &Refusal{Status: http.StatusBadGateway, Message: "The sign-in service cannot be reached at the moment. Try again in a minute, or ask an administrator.",
			Reason: err.Error()}
	}
	state, nonce, verifier, browser := randomValue(), randomValue(), oauth2.GenerateVerifier(), randomValue()
	sealed, err := s.vault.Seal([]byte(verifier))
	if err != nil {
		return Started{}, fmt.Errorf("start single sign-on: encrypt the verifier: %w", err)
	}
	now := s.now()
	err = s.st.AddSSOSignIn(ctx, store.SSOSignIn{State: state, BrowserHash: hashHex(browser), NonceHash: hashHex(nonce), Verifier: sealed,
		Issuer: c.Issuer, RedirectURI: redirectURI, Next: next, ExpiresAt: now.Add(SignInLifetime), CreatedAt: now}, maxPending, now)
	if errors.Is(err, store.ErrTooManySignIns) {
		return Started{}, &Refusal{Status: http.StatusServiceUnavailable, Message: "Too many sign-ins were started in the last minutes. Wait a few minutes and try again.",
			Reason: "too many sign-ins in progress"}
	}
	if err != nil {
		return Started{}, fmt.Errorf("start single sign-on: %w", err)
	}
	u := oauthConfig(c, p, "", redirectURI).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	return Started{URL: u, Browser: browser}, nil
}

// Refusal is a sign-in that did not succeed: Message is for the person (what happened and
// what to do), Reason for the log and the audit log.
type Refusal struct {
	Status  int
	Message string
	Reason  string
}

func (r *Refusal) Error() string { return "single sign-on refused: " + r.Reason }

// Callback is what the provider's redirect brought.
type Callback struct {
	Query url.Values
	// Browser is the value of BrowserCookie ("" when the browser sent none).
	Browser string
	// ClientAddress is the client's address (host or host:port), for the audit log.
	ClientAddress string
}

// Result is a finished sign-in: the session token for the cookie, the session, the user
// and the page to go to.
type Result struct {
	Token   string
	Session store.Session
	User    store.User
	Next    string
}

// claims are the id token claims postroom reads.
type claims struct {
	Subject           string   `json:"sub"`
	ObjectID          string   `json:"oid"`
	TenantID          string   `json:"tid"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	PreferredUsername string   `json:"preferred_username"`
	Name              string   `json:"name"`
	Groups            []string `json:"groups"`
	Roles             []string `json:"roles"`
}

// Finish completes the sign-in of a callback. Every refusal is a *Refusal and is audited.
func (s *Service) Finish(ctx context.Context, cb Callback) (Result, error) {
	res, who, err := s.finish(ctx, cb)
	addr := clientIP(cb.ClientAddress)
	var ref *Refusal
	switch {
	case err == nil:
		s.audit(ctx, res.User.Username, "login.success", fmt.Sprintf("address=%s method=sso", addr))
		s.logger.InfoContext(ctx, "signed in through single sign-on", slog.String("user", res.User.Username), slog.String("remote", addr))
	case errors.As(err, &ref):
		if who == "" {
			who = "unknown"
		}
		s.audit(ctx, who, "login.failure", fmt.Sprintf("address=%s method=sso reason=%s", addr, ref.Reason))
		s.logger.InfoContext(ctx, "single sign-on refused", slog.String("user", who), slog.String("remote", addr), slog.String("reason", ref.Reason))
	}
	return res, err
}

func (s *Service) audit(ctx context.Context, who, action, detail string) {
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: who, Action: action, Object: "user:" + who, New: detail}); err != nil {
		s.logger.ErrorContext(ctx, "audit sign-in", slog.String("action", action), slog.Any("error", err))
	}
}

// clientIP is the host part of a client address.
func clientIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// startAgain is the advice of a sign-in that cannot be finished.
const startAgain = "Go back to the sign-in page and sign in again."

func (s *Service) finish(ctx context.Context, cb Callback) (Result, string, error) {
	q := cb.Query
	p, err := s.st.TakeSSOSignIn(ctx, q.Get("state"), s.now())
	if store.IsNotFound(err) {
		return Result{}, "", &Refusal{Status: http.StatusBadRequest, Message: "This sign-in is unknown, was used already or took too long. " + startAgain,
			Reason: "unknown, used or expired state"}
	}
	if err != nil {
		return Result{}, "", fmt.Errorf("finish single sign-on: %w", err)
	}
	if cb.Browser == "" || subtle.ConstantTimeCompare([]byte(hashHex(cb.Browser)), []byte(p.BrowserHash)) != 1 {
		return Result{}, "", &Refusal{Status: http.StatusBadRequest, Message: "This sign-in was started in another browser (or its cookie was lost). " + startAgain,
			Reason: "callback from another browser"}
	}
	if e := q.Get("error"); e != "" {
		desc := q.Get("error_description")
		if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
			desc = desc[:i]
		}
		msg := "The sign-in service did not sign you in"
		if desc != "" {
			msg += ": " + desc
		}
		return Result{}, "", &Refusal{Status: http.StatusForbidden, Message: msg + ". " + startAgain + " If it happens again, ask an administrator.",
			Reason: "provider error " + e + ": " + desc}
	}
	c, err := s.Config(ctx)
	if err != nil {
		return Result{}, "", err
	}
	if !c.Enabled() || c.Issuer != p.Issuer {
		return Result{}, "", &Refusal{Status: http.StatusBadRequest, Message: "Single sign-on was reconfigured while you were signing in. " + startAgain,
			Reason: "issuer changed during the sign-in"}
	}
	code := q.Get("code")
	if code == "" {
		return Result{}, "", &Refusal{Status: http.StatusBadRequest, Message: "The sign-in service sent no code back. " + startAgain, Reason: "no code"}
	}
	verifier, err := s.vault.Open(p.Verifier)
	if err != nil {
		return Result{}, "", fmt.Errorf("finish single sign-on: decrypt the verifier: %w", err)
	}
	secret, err := s.clientSecret(ctx, c)
	if err != nil {
		return Result{}, "", err
	}
	hctx := oidc.ClientContext(ctx, s.client)
	prov, err := s.discover(hctx, c.Issuer)
	if err != nil {
		return Result{}, "", &Refusal{Status: http.StatusBadGateway, Message: "The sign-in service cannot be reached at the moment. Try again in a minute, or ask an administrator.",
			Reason: err.Error()}
	}
	tok, err := oauthConfig(c, prov, secret, p.RedirectURI).Exchange(hctx, code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		reason := err.Error()
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			reason = "token endpoint: " + re.ErrorCode + ": " + firstLine(re.ErrorDescription)
		}
		return Result{}, "", &Refusal{Status: http.StatusBadGateway,
			Message: "The sign-in service refused to complete the sign-in. Ask an administrator to check postroom's single sign-on settings (client id and secret). Details: " + reason,
			Reason:  reason}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Result{}, "", &Refusal{Status: http.StatusBadGateway, Message: "The sign-in service sent no id token: ask an administrator to check that the app may sign users in (scope openid).",
			Reason: "no id token in the token response"}
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: c.ClientID, Now: s.now}).Verify(hctx, raw)
	if err != nil {
		return Result{}, "", refuseToken(err, c)
	}
	if subtle.ConstantTimeCompare([]byte(hashHex(idt.Nonce)), []byte(p.NonceHash)) != 1 {
		return Result{}, "", &Refusal{Status: http.StatusForbidden, Message: "The sign-in could not be verified: its answer belongs to another sign-in (nonce). " + startAgain,
			Reason: "id token refused: wrong nonce"}
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		return Result{}, "", &Refusal{Status: http.StatusForbidden, Message: "The sign-in service's answer could not be read. " + startAgain,
			Reason: "id token claims unreadable: " + err.Error()}
	}
	u, who, err := s.userFor(ctx, c, cl)
	if err != nil {
		return Result{}, who, err
	}
	token, sess, err := s.auth.StartSession(ctx, u)
	if errors.Is(err, auth.ErrDisabled) {
		return Result{}, u.Username, &Refusal{Status: http.StatusForbidden, Message: "Your postroom user is disabled. Ask an administrator to enable it.", Reason: "user disabled"}
	}
	if err != nil {
		return Result{}, u.Username, err
	}
	return Result{Token: token, Session: sess, User: u, Next: p.Next}, u.Username, nil
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// refuseToken turns go-oidc's verification error into a refusal that says what was wrong.
func refuseToken(err error, c Config) *Refusal {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	r := &Refusal{Status: http.StatusForbidden}
	switch {
	case errors.As(err, &expired):
		r.Reason = "id token refused: expired at " + expired.Expiry.UTC().Format(time.RFC3339)
		r.Message = "The sign-in could not be verified: the sign-in service's answer has expired. Check that this server's clock is right, then sign in again."
	case strings.Contains(msg, "expected audience"):
		r.Reason = "id token refused: wrong audience (" + msg + ")"
		r.Message = "The sign-in could not be verified: the sign-in service's answer was meant for another application, not postroom (client id " + c.ClientID + ")."
	case strings.Contains(msg, "issued by a different provider"):
		r.Reason = "id token refused: wrong issuer (" + msg + ")"
		r.Message = "The sign-in could not be verified: the answer was issued by another provider than " + c.Issuer + "."
	case strings.Contains(msg, "signature"):
		r.Reason = "id token refused: signature not verified with the provider's published keys (" + msg + ")"
		r.Message = "The sign-in could not be verified: the answer is not signed with a key the sign-in service publishes."
	default:
		r.Reason = "id token refused: " + msg
		r.Message = "The sign-in could not be verified (" + msg + ")."
	}
	r.Message += " " + startAgain + " If it happens again, tell an administrator."
	return r
}
