package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/vault"
)

// tokenRequestTimeout bounds one request to a token endpoint when OAuthConfig.HTTPClient
// is nil; Microsoft's and Google's endpoints answer in well under a second.
const tokenRequestTimeout = 30 * time.Second

// Grant types (RFC 6749 §4.4 and §6).
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantPassword          = "password"
	// assertionType is RFC 7523's client assertion type.
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// OAuthConfig says how to get access tokens from an OAuth 2.0 token endpoint
// (RFC 6749 §3.2).
type OAuthConfig struct {
	// TokenURL is the token endpoint, e.g.
	// https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
	TokenURL string
	ClientID string
	// ClientSecret is empty for a public client (refresh token grant only) and for an app
	// that proves itself with a certificate (Assertion).
	ClientSecret vault.Secret
	// Assertion, when set, makes a signed client assertion (RFC 7523) for each request,
	// sent instead of the client secret: Microsoft's certificate credentials.
	Assertion func() (string, error)
	// Scopes are sent with every request, e.g. https://outlook.office365.com/.default.
	Scopes []string
	// HTTPClient, when set, makes the token requests; nil means a client with
	// tokenRequestTimeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// ClientCredentials returns a TokenFunc for the client credentials grant (RFC 6749 §4.4):
// the app signs in as itself with its secret. The token is kept until it is about to
// expire (x/oauth2's Token.Valid) and then renewed; refresh=true renews it at once.
func ClientCredentials(cfg OAuthConfig) connector.TokenFunc {
	ts := newTokenSource(cfg, grantClientCredentials)
	ts.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		cc, err := ts.clientConfig(nil)
		if err != nil {
			return nil, err
		}
		return cc.Token(ctx)
	}
	return ts.token
}

// ResourceOwnerPassword returns a TokenFunc for the resource owner password credentials
// grant (RFC 6749 §4.3, Microsoft's "ROPC"): the mailbox's login and password are traded
// for a token each time one is needed. It fails for accounts with MFA or under
// Conditional Access, and Microsoft recommends against it; postroom offers it because
// existing installations use it, and says so in the mailbox form.
func ResourceOwnerPassword(cfg OAuthConfig, username string, password vault.Secret) connector.TokenFunc {
	ts := newTokenSource(cfg, grantPassword)
	ts.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		cc, err := ts.clientConfig(url.Values{
			"grant_type": {grantPassword},
			"username":   {username},
			"password":   {password.Reveal()},
		})
		if err != nil {
			return nil, err
		}
		return cc.Token(ctx)
	}
	return ts.token
}

// RefreshToken returns a TokenFunc for the refresh token grant (RFC 6749 §6): an access
// token is bought with refresh, the long-lived token of a delegated sign-in. When the
// endpoint rotates the refresh token (Microsoft does on most renewals), the new one is
// handed to save every time it changes, before the access token is used: the old one may
// stop working at once. If save fails, the new refresh token is kept in memory, the call
// fails, and the next call tries to save it again.
func RefreshToken(cfg OAuthConfig, refresh vault.Secret, save func(ctx context.Context, newRefresh vault.Secret) error) connector.TokenFunc {
	ts := newTokenSource(cfg, grantRefreshToken)
	ts.refresh = refresh
	ts.save = save
	ts.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		// clientcredentials.Config lets grant_type be replaced (its documented escape),
		// which keeps the scopes in the request: Microsoft's v2 endpoint asks for them on a
		// refresh, and oauth2.Config's refresher does not send them.
		cc, err := ts.clientConfig(url.Values{
			"grant_type":    {grantRefreshToken},
			"refresh_token": {ts.refresh.Reveal()},
		})
		if err != nil {
			return nil, err
		}
		return cc.Token(ctx)
	}
	return ts.token
}

// tokenSource keeps the current access token of one grant. Calls are serialised, so
// concurrent callers share one renewal.
type tokenSource struct {
	cfg   OAuthConfig
	grant string
	log   *slog.Logger
	fetch func(ctx context.Context) (*oauth2.Token, error)
	sem   chan struct{} // a mutex that a caller can stop waiting for

	tok *oauth2.Token
	// Refresh token grant only: the current refresh token, the function that saves a
	// rotated one, and whether the current one still waits to be saved.
	refresh vault.Secret
	save    func(ctx context.Context, newRefresh vault.Secret) error
	unsaved bool
	// subject is the user a Google service account impersonates.
	subject string
}

func newTokenSource(cfg OAuthConfig, grant string) *tokenSource {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: tokenRequestTimeout}
	}
	return &tokenSource{cfg: cfg, grant: grant, sem: make(chan struct{}, 1),
		log: log.With(slog.String("oauth_grant", grant), slog.String("token_url", redactURL(cfg.TokenURL)))}
}

func (ts *tokenSource) clientConfig(params url.Values) (*clientcredentials.Config, error) {
	if ts.cfg.Assertion != nil {
		jwt, err := ts.cfg.Assertion()
		if err != nil {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "oauth client assertion", Err: err,
				Advice: "the app's certificate cannot sign: upload the certificate and its private key again"}
		}
		if params == nil {
			params = url.Values{}
		}
		params.Set("client_assertion_type", assertionType)
		params.Set("client_assertion", jwt)
	}
	return &clientcredentials.Config{
		ClientID:     ts.cfg.ClientID,
		ClientSecret: ts.cfg.ClientSecret.Reveal(),
		TokenURL:     ts.cfg.TokenURL,
		Scopes:       ts.cfg.Scopes,
		// In the form body: Microsoft's and Google's endpoints take it there, and with
		// auto-detection a refused request would be sent twice.
		AuthStyle:      oauth2.AuthStyleInParams,
		EndpointParams: params,
	}, nil
}

// token is the TokenFunc.
func (ts *tokenSource) token(ctx context.Context, refresh bool) (string, error) {
	select {
	case ts.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-ts.sem }()

	if ts.unsaved {
		if err := ts.saveRefresh(ctx); err != nil {
			return "", err
		}
	}
	if !refresh && ts.tok.Valid() {
		return ts.tok.AccessToken, nil
	}
	tok, err := ts.fetch(context.WithValue(ctx, oauth2.HTTPClient, ts.cfg.HTTPClient))
	if err != nil {
		return "", ts.classify(ctx, err)
	}
	ts.tok = tok
	ts.log.Info("oauth access token obtained", slog.Bool("forced", refresh), slog.Time("expires", tok.Expiry))
	if ts.grant == grantRefreshToken && tok.RefreshToken != "" && tok.RefreshToken != ts.refresh.Reveal() {
		ts.refresh = vault.NewSecret(tok.RefreshToken)
		ts.unsaved = true
		if err := ts.saveRefresh(ctx); err != nil {
			return "", err
		}
	}
	return tok.AccessToken, nil
}

// saveRefresh hands the current refresh token to save.
func (ts *tokenSource) saveRefresh(ctx context.Context) error {
	if ts.save != nil {
		if err := ts.save(ctx, ts.refresh); err != nil {
			ts.log.Error("oauth: the renewed refresh token could not be saved", slog.Any("error", err))
			return &connector.Error{Kind: connector.KindServer, Op: "oauth save refresh token", Err: err,
				Advice: "postroom could not save the renewed sign-in in its database; it tries again: if it persists, check the database"}
		}
	}
	ts.unsaved = false
	ts.log.Info("oauth refresh token rotated", slog.Bool("saved", ts.save != nil))
	return nil
}

// aadsts finds Microsoft Entra ID's error code in an error_description
// ("AADSTS7000222: The provided client secret keys ... are expired.").
var aadsts = regexp.MustCompile(`AADSTS(\d+)`)

// Advice for token endpoint errors.
const (
	adviceSignInAgain   = "the sign-in has expired or was revoked: sign in again"
	adviceClientSecret  = "the client secret is wrong or expired: create a new one"
	adviceSecretExpired = "the client secret has expired: create a new one (Microsoft Entra ID: App registrations > Certificates & secrets) and enter it here"
	adviceConsent       = "the app has no consent for the permissions it asks for: an administrator must grant consent (Microsoft Entra ID: Enterprise applications > Permissions)"
)

// classify turns a failed token request into a *connector.Error (RFC 6749 §5.2 error
// codes, and Microsoft's AADSTS codes where the description has one).
func (ts *tokenSource) classify(ctx context.Context, err error) error {
	op := "oauth token (" + ts.grant + ")"
	if ctx.Err() != nil { // the caller gave up: not the endpoint's fault
		return fmt.Errorf("%s: %w", op, err)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
			Advice: fmt.Sprintf("postroom could not get a token from %s: check the token URL; postroom tries again", redactURL(ts.cfg.TokenURL))}
	}
	ee := &EndpointError{Code: re.ErrorCode, Description: re.ErrorDescription}
	if re.Response != nil {
		ee.Status = re.Response.StatusCode
	}
	if m := aadsts.FindStringSubmatch(re.ErrorDescription); m != nil {
		ee.AADSTS = m[1]
	}
	auth := func(advice string) error {
		return &connector.Error{Kind: connector.KindAuth, Op: op, Err: ee, Advice: advice}
	}
	if ts.grant == grantJWTBearer {
		if advice := googleAdvice(ee, ts.cfg.ClientID, ts.subject); advice != "" {
			return auth(advice)
		}
	}
	switch ee.AADSTS {
	case "7000222":
		return auth(adviceSecretExpired)
	case "7000215":
		return auth(adviceClientSecret)
	case "50173", "700082", "700084":
		return auth(adviceSignInAgain)
	case "65001":
		return auth(adviceConsent)
	}
	switch ee.Code {
	case "invalid_grant":
		return auth(adviceSignInAgain)
	case "invalid_client":
		return auth(adviceClientSecret)
	case "unauthorized_client":
		return auth("the app is not allowed to use this kind of sign-in: check the app registration at the provider")
	case "invalid_scope":
		return &connector.Error{Kind: connector.KindConfig, Op: op, Err: ee,
			Advice: "the provider does not accept the scopes asked for: check the scopes of this mailbox's sign-in"}
	case "temporarily_unavailable", "server_error":
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: ee,
			Advice: "the token endpoint has a temporary problem; postroom tries again"}
	}
	if ee.Status >= 500 || ee.Status == http.StatusTooManyRequests {
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: ee,
			Advice: "the token endpoint has a temporary problem; postroom tries again"}
	}
	return &connector.Error{Kind: connector.KindConfig, Op: op, Err: ee,
		Advice: fmt.Sprintf("the token endpoint %s refused the request: check the token URL, client id and scopes", redactURL(ts.cfg.TokenURL))}
}

// EndpointError is an error answer of a token endpoint (RFC 6749 §5.2). It holds only
// what the endpoint said about the error: never the request, so never a secret.
type EndpointError struct {
	Status      int    // HTTP status
	Code        string // "error", e.g. invalid_grant
	Description string // "error_description"
	AADSTS      string // Microsoft's code from the description, e.g. "7000222"
}

func (e *EndpointError) Error() string {
	s := fmt.Sprintf("token endpoint answered %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// redactURL drops a query and user info from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable token URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
