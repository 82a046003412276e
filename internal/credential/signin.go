package credential

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Delegated sign-in: the authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256),
// Microsoft's "a person signs in" (ms365-protocol.md §1.5). A caller (the web pages) starts
// one with StartSignIn, keeps its State and Verifier on the server, sends the browser to its
// URL, and on the callback checks the state, reads an error with CallbackError, and trades
// the code for tokens with SignIn.Redeem. The refresh token it returns is what
// Tokens.For later renews access tokens with.

// SignInLifetime is how long a started sign-in can be finished: Microsoft's authorization
// codes live about ten minutes, and a sign-in left open longer is started again.
const SignInLifetime = 10 * time.Minute

// stateBytes is the entropy of a sign-in's state: 256 bits, like postroom's session tokens.
const stateBytes = 32

// OpenID Connect scopes added to a Microsoft sign-in, so that the answer carries an
// id_token naming the account (preferred_username). Microsoft takes them next to any one
// resource's scopes.
var microsoftIDScopes = []string{"openid", "profile"}

// SignInStart is a delegated sign-in in progress. State and Verifier stay on the server
// (the state travels through the browser, the verifier never does).
type SignInStart struct {
	// State is the opaque random value sent with the request and echoed on the callback
	// (RFC 6749 §10.12): the callback is accepted only with a state its session started.
	State string
	// Verifier is the PKCE code_verifier; only its S256 challenge is in URL.
	Verifier vault.Secret
	// URL is the provider's authorize URL with every parameter: send the browser there.
	URL string
	// RedirectURI is the callback the provider sends the browser back to; the code is
	// redeemed with the same value.
	RedirectURI string
	// Scopes are the scopes asked for.
	Scopes []string
}

// SignInScopes are the scopes a delegated sign-in of m asks for: those of its plan for the
// mailbox's protocol, plus openid and profile at Microsoft (an id_token names the account).
func SignInScopes(m store.Mailbox) ([]string, Plan, error) {
	plan, err := PlanFor(m, AudienceOf(m.Protocol))
	if err != nil {
		return nil, Plan{}, err
	}
	scopes := slices.Clone(plan.Scopes)
	if m.OAuth.Provider == ProviderGoogle {
		// Google's id_token names the account by its email.
		for _, s := range []string{"openid", "email"} {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		return scopes, plan, nil
	}
	if m.OAuth.Provider != ProviderCustom {
		for _, s := range microsoftIDScopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes, plan, nil
}

// StartSignIn begins a delegated sign-in for mailbox m that comes back to redirectURI.
// Errors name the setting that is missing.
func StartSignIn(m store.Mailbox, redirectURI string) (SignInStart, error) {
	if m.Auth != store.AuthOAuthDelegated {
		return SignInStart{}, fmt.Errorf("mailbox %q does not sign in with a person's account: choose that sign-in method first", m.Name)
	}
	scopes, plan, err := SignInScopes(m)
	if err != nil {
		return SignInStart{}, err
	}
	if plan.AuthorizeURL == "" {
		return SignInStart{}, fmt.Errorf("mailbox %q has no authorize URL: enter the provider's authorize endpoint, or paste a refresh token obtained elsewhere", m.Name)
	}
	b := make([]byte, stateBytes)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	st := SignInStart{
		State:       base64.RawURLEncoding.EncodeToString(b),
		Verifier:    vault.NewSecret(oauth2.GenerateVerifier()),
		RedirectURI: redirectURI,
		Scopes:      scopes,
	}
	cfg := oauth2.Config{
		ClientID:    m.OAuth.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: plan.AuthorizeURL, TokenURL: plan.TokenURL},
		RedirectURL: redirectURI,
		Scopes:      scopes,
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(st.Verifier.Reveal()),
		// The browser may be signed in to Microsoft as the administrator; the mailbox's
		// account is usually another one.
		oauth2.SetAuthURLParam("prompt", "select_account"),
	}
	if hint := loginHint(m); hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	if m.OAuth.Provider == ProviderGoogle {
		// A refresh token only at the first consent, unless consent is asked again.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account consent"))
	}
	if m.OAuth.Provider == ProviderCustom || m.OAuth.Provider == ProviderGoogle {
		// Google gives a refresh token only with access_type=offline; other servers ignore
		// a parameter they do not know (RFC 6749 §3.1).
		opts = append(opts, oauth2.AccessTypeOffline)
	}
	st.URL = cfg.AuthCodeURL(st.State, opts...)
	return st, nil
}

// loginHint is the account a sign-in of m suggests: its address, else its login.
func loginHint(m store.Mailbox) string {
	if m.Address != "" {
		return m.Address
	}
	if strings.Contains(m.Login, "@") {
		return m.Login
	}
	return ""
}

// SignedIn is the result of a finished delegated sign-in.
type SignedIn struct {
	// Account is the account that signed in (its user principal name), from the
	// id_token or the access token; "" when the provider names none.
	Account string
	// RefreshToken is the long-lived token to store, encrypted.
	RefreshToken vault.Secret
	// Scopes are the scopes the provider granted (may be fewer than asked).
	Scopes string
}

// SignIn redeems authorization codes for mailboxes, with the client secret or certificate
// stored for the mailbox when its app is a confidential client.
type SignIn struct {
	secrets *Secrets
	opts    TokensOptions
}

// NewSignIn returns a SignIn. It does no I/O.
func NewSignIn(secrets *Secrets, opts TokensOptions) *SignIn {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: tokenRequestTimeout}
	}
	return &SignIn{secrets: secrets, opts: opts}
}

// SealVerifier encrypts the PKCE verifier of a started sign-in with the vault, so that it
// can wait in the store for the callback, which any node may receive.
func (s *SignIn) SealVerifier(verifier vault.Secret) ([]byte, error) {
	ct, err := s.secrets.vault.Seal([]byte(verifier.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("encrypt the sign-in's verifier: %w", err)
	}
	return ct, nil
}

// OpenVerifier decrypts a verifier sealed by SealVerifier (with the same key: every node
// of one database has it).
func (s *SignIn) OpenVerifier(sealed []byte) (vault.Secret, error) {
	pt, err := s.secrets.vault.Open(sealed)
	if err != nil {
		return vault.Secret{}, fmt.Errorf("decrypt the sign-in's verifier: %w", err)
	}
	return vault.NewSecret(string(pt)), nil
}

// Redeem trades the code of a sign-in of mailbox m for tokens (RFC 6749 §4.1.3 with the
// PKCE code_verifier, RFC 7636 §4.5). It sends the mailbox's client secret (or a client
// assertion signed with its certificate) when one is stored, and nothing for a public
// client. A refused request is a *SignInError with advice.
func (s *SignIn) Redeem(ctx context.Context, m store.Mailbox, code string, verifier vault.Secret, redirectURI string) (SignedIn, error) {
	scopes, plan, err := SignInScopes(m)
	if err != nil {
		return SignedIn{}, err
	}
	secret, err := s.secrets.Get(ctx, m.ID, store.SecretClientSecret)
	if err != nil {
		return SignedIn{}, err
	}
	cfg := oauth2.Config{
		ClientID:     m.OAuth.ClientID,
		ClientSecret: secret.Reveal(),
		// In the form body, as Microsoft documents it; with auto-detection a refused
		// request would be sent twice, and a code is good for one try only.
		Endpoint:    oauth2.Endpoint{AuthURL: plan.AuthorizeURL, TokenURL: plan.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirectURI,
		Scopes:      scopes,
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.VerifierOption(verifier.Reveal()),
		oauth2.SetAuthURLParam("scope", strings.Join(scopes, " ")),
	}
	if secret.Reveal() == "" && m.CertificateSet {
		cert, err := s.secrets.Get(ctx, m.ID, store.SecretCertificate)
		if err != nil {
			return SignedIn{}, err
		}
		assert, err := NewClientAssertion(cert, m.OAuth.ClientID, plan.TokenURL)
		if err != nil {
			return SignedIn{}, &SignInError{Description: err.Error(),
				Advice: "the stored certificate cannot be used: upload the app's certificate and private key as one PEM file, then sign in again"}
		}
		jwt, err := assert()
		if err != nil {
			return SignedIn{}, &SignInError{Description: err.Error(),
				Advice: "the app's certificate cannot sign: upload the certificate and its private key again, then sign in again"}
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", assertionType),
			oauth2.SetAuthURLParam("client_assertion", jwt))
	}
	log := s.opts.Logger.With(slog.Int64("mailbox_id", m.ID), slog.String("mailbox", m.Name), slog.String("token_url", redactURL(plan.TokenURL)))
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, s.opts.HTTPClient), code, opts...)
	if err != nil {
		serr := redeemError(err, plan.TokenURL, redirectURI)
		log.Warn("oauth sign-in: the code was refused", slog.String("error", serr.Code), slog.String("aadsts", serr.AADSTS))
		return SignedIn{}, serr
	}
	if tok.RefreshToken == "" {
		advice := "the provider gave no refresh token, so postroom could not keep the sign-in: add offline_access to the scopes (or allow offline access at the provider) and sign in again"
		return SignedIn{}, &SignInError{Code: "no_refresh_token", Advice: advice}
	}
	out := SignedIn{RefreshToken: vault.NewSecret(tok.RefreshToken), Account: accountOf(tok)}
	if sc, ok := tok.Extra("scope").(string); ok {
		out.Scopes = sc
	}
	log.Info("oauth sign-in finished", slog.String("account", out.Account))
	return out, nil
}

// accountOf names the account of a token answer: the id_token's preferred_username (or
// upn, email), else the access token's upn (or preferred_username, unique_name). The
// tokens came straight from the token endpoint over TLS, which OpenID Connect Core §3.1.3.7
// accepts in place of checking their signature; the name is only shown, never trusted
// for access.
func accountOf(tok *oauth2.Token) string {
	if idt, ok := tok.Extra("id_token").(string); ok {
		if a := jwtClaim(idt, "preferred_username", "upn", "email"); a != "" {
			return a
		}
	}
	return jwtClaim(tok.AccessToken, "upn", "preferred_username", "unique_name", "email")
}

// jwtClaim returns the first of names that the JWT's payload holds as a non-empty string;
// "" for a token that is not a JWT (opaque tokens are fine).
func jwtClaim(token string, names ...string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	for _, n := range names {
		if v, ok := claims[n].(string); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// SignInError is a delegated sign-in that did not finish: the provider sent an error back
// to the redirect URI (RFC 6749 §4.1.2.1), or refused to redeem the code (§5.2). Advice
// says what to do. It holds only what the provider said, never a token or secret.
type SignInError struct {
	Code        string // OAuth "error", e.g. access_denied
	Description string // the first line of error_description
	AADSTS      string // Microsoft's code, e.g. "65004"
	TraceID     string // Microsoft's Trace ID, for a support case
	Advice      string
}

func (e *SignInError) Error() string {
	s := "sign-in not finished"
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Advice != "" {
		s += ": " + e.Advice
	}
	return s
}

// CallbackError returns the error a provider sent back to the redirect URI (the query of
// the callback), or nil when it sent none. redirectURI is the one the sign-in used, named
// in the advice for a mismatch.
func CallbackError(q url.Values, redirectURI string) *SignInError {
	code := q.Get("error")
	if code == "" {
		return nil
	}
	return newSignInError(code, q.Get("error_description"), redirectURI)
}

func newSignInError(code, description, redirectURI string) *SignInError {
	e := &SignInError{Code: code}
	lines := strings.Split(strings.ReplaceAll(description, "\r\n", "\n"), "\n")
	e.Description = strings.TrimSpace(lines[0])
	for _, l := range lines[1:] {
		if id, ok := strings.CutPrefix(strings.TrimSpace(l), "Trace ID:"); ok {
			e.TraceID = strings.TrimSpace(id)
		}
	}
	if m := aadsts.FindStringSubmatch(description); m != nil {
		e.AADSTS = m[1]
	}
	e.Advice = signInAdvice(e.Code, e.AADSTS, redirectURI)
	return e
}

// redeemError turns a failed code redemption into a *SignInError.
func redeemError(err error, tokenURL, redirectURI string) *SignInError {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return &SignInError{Code: "unreachable", Description: err.Error(),
			Advice: fmt.Sprintf("postroom could not reach the token endpoint %s: check the authority URL and this server's network, then sign in again", redactURL(tokenURL))}
	}
	e := newSignInError(re.ErrorCode, re.ErrorDescription, redirectURI)
	if e.Code == "" && re.Response != nil {
		e.Code = fmt.Sprintf("http_%d", re.Response.StatusCode)
		e.Advice = fmt.Sprintf("the token endpoint %s answered %s: check the authority (or token) URL, then sign in again", redactURL(tokenURL), re.Response.Status)
	}
	return e
}

// signInAdvice says what to do about a sign-in error (ms365-protocol.md §1.8; RFC 6749
// §4.1.2.1 and §5.2 for other providers).
func signInAdvice(code, aadsts, redirectURI string) string {
	switch aadsts {
	case "65004":
		return "the account declined the permissions postroom asks for: sign in again and choose Accept, or have an administrator grant consent for the organisation (Microsoft Entra admin center: Enterprise applications > the app > Permissions > Grant admin consent)"
	case "65001":
		return "the app has no consent for these permissions: an administrator grants it (Enterprise applications > the app > Permissions > Grant admin consent), or the account signs in again and accepts them"
	case "50011", "500112", "500113":
		return fmt.Sprintf("the redirect URI is not registered for the app: add %s exactly, as a Web redirect URI (App registrations > the app > Authentication), then sign in again", redirectURI)
	case "53003":
		return "Conditional Access blocked the sign-in: look at the account's sign-in log in Microsoft Entra ID and exclude this app, or meet the policy (device, location), then sign in again"
	case "50105":
		return "the account is not assigned to the app: assign it (Enterprise applications > the app > Users and groups), or turn off 'Assignment required', then sign in again"
	case "700016":
		return "the application (client) id is not known in this directory: check the client id and the directory (tenant) id in the mailbox settings"
	case "90002", "900023":
		return "the directory (tenant) is not known at this authority: check the directory (tenant) id and the Microsoft cloud in the mailbox settings"
	case "7000112":
		return "the app is disabled: enable it (Enterprise applications > the app > Properties > Enabled for users to sign in), then sign in again"
	case "7000215":
		return "the client secret is wrong: paste the secret's Value (not its Secret ID) in the mailbox settings, then sign in again"
	case "7000222":
		return "the client secret has expired: create a new one (App registrations > the app > Certificates & secrets), enter it in the mailbox settings, then sign in again"
	case "7000218":
		return "the app is a confidential client and needs its client secret or certificate: enter one in the mailbox settings (or turn on 'Allow public client flows'), then sign in again"
	case "700025":
		return "the app is a public client and must not send a secret: remove the client secret from the mailbox settings (or turn off 'Allow public client flows'), then sign in again"
	case "54005", "70000", "70008":
		return "the sign-in code was already used or has expired: sign in again"
	case "501481":
		return "the sign-in could not be verified (PKCE): sign in again, in one browser tab"
	case "50076", "50079":
		return "the account must finish multi-factor authentication: sign in again and complete it"
	case "50057":
		return "the account is disabled: enable it or sign in with another account"
	case "50055":
		return "the account's password has expired: reset it, then sign in again"
	case "500011":
		return "the permissions name a service this tenant does not have: check the Microsoft cloud (and Graph host) of the mailbox, and that the tenant has Exchange Online"
	}
	switch code {
	case "access_denied":
		return "the sign-in was cancelled or refused: sign in again and accept the permissions, or ask an administrator to grant consent for the organisation"
	case "consent_required", "interaction_required", "login_required":
		return "the provider needs the account to sign in interactively and accept the permissions: sign in again"
	case "invalid_grant":
		return "the sign-in code was refused (used twice, expired, or for another redirect URI): sign in again"
	case "invalid_client", "unauthorized_client":
		return "the provider refused the app: check the client id and the client secret or certificate in the mailbox settings, then sign in again"
	case "invalid_scope":
		return "the provider does not accept the permissions asked for: check the scopes of the mailbox (empty: postroom's defaults for the protocol) and the app's API permissions"
	case "temporarily_unavailable", "server_error":
		return "the provider has a temporary problem: sign in again in a few minutes"
	}
	return "the provider refused the sign-in: check the mailbox's OAuth settings and the app registration, then sign in again"
}

// SignInNeeded reports whether a delegated mailbox needs someone to sign in: nobody has
// yet, or its refresh token died (expired, revoked by a password reset) and its status
// says to sign in again.
func SignInNeeded(m store.Mailbox) bool {
	if m.Auth != store.AuthOAuthDelegated {
		return false
	}
	if !m.RefreshTokenSet {
		return true
	}
	return m.Status == store.StatusError && strings.Contains(m.StatusMessage, adviceSignInAgain)
}
