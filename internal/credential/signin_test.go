package credential_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

// testRedirect is the redirect URI the stand-in's app registers. Nothing listens there:
// the tests read the stand-in's redirect instead of following it.
const testRedirect = "http://127.0.0.1:9/oauth/callback"

// signInEnv is the stand-in's sample tenant and a delegated Graph mailbox pointed at it,
// stored in SQLite with its client secret.
type signInEnv struct {
	ms      *mstest.Server
	sample  *mstest.Sample
	st      store.Store
	secrets *credential.Secrets
	m       store.Mailbox
}

func newSignInEnv(t *testing.T) *signInEnv {
	t.Helper()
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	sample, err := ms.SampleTenant(mstest.SampleOptions{RedirectURI: testRedirect, Messages: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.CreateMailbox(ctx, store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "graph", Address: sample.Mailbox, Login: sample.Mailbox,
		Folder: "Inbox", AfterAction: store.AfterMarkRead, MaxSizeMB: 5, Auth: store.AuthOAuthDelegated,
		OAuth: store.OAuth{Provider: credential.ProviderMicrosoft, Cloud: credential.CloudCustom, AuthorityURL: ms.LoginURL(),
			Tenant: sample.TenantID, ClientID: sample.ClientID},
		GraphURL: ms.GraphURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &signInEnv{ms: ms, sample: sample, st: st, secrets: credential.NewSecrets(st, v), m: m}
	e.setSecret(t, store.SecretClientSecret, sample.ClientSecret)
	return e
}

func (e *signInEnv) setSecret(t *testing.T, name, value string) {
	t.Helper()
	ctx := context.Background()
	if err := e.secrets.Set(ctx, e.m.ID, name, vault.NewSecret(value)); err != nil {
		t.Fatal(err)
	}
	m, err := e.st.Mailbox(ctx, e.m.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
}

var (
	flowField   = regexp.MustCompile(`name="flow" value="([^"]+)"`)
	errorOnPage = regexp.MustCompile(`id="(?:passwordError|usernameError|errorCode)">([^<]*)<`)
)

// authorize plays the person at the stand-in's sign-in page: it opens authURL, signs in
// as user, answers the consent page with consent ("accept" or "decline") when one comes,
// and returns where the stand-in sends the browser back to.
func authorize(t *testing.T, authURL, user, password, consent string) *url.URL {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(resp *http.Response, err error) (string, *url.URL) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusFound {
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			return "", loc
		}
		if m := errorOnPage.FindSubmatch(body); m != nil {
			t.Fatalf("the sign-in page shows an error: %s", m[1])
		}
		return string(body), nil
	}
	body, loc := page(hc.Get(authURL))
	for step := "signin"; loc == nil; {
		m := flowField.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no sign-in form on the stand-in's page:\n%s", body)
		}
		form := url.Values{"flow": {m[1]}, "step": {step}}
		if step == "signin" {
			form.Set("loginfmt", user)
			form.Set("passwd", password)
		} else {
			form.Set("consent", consent)
		}
		body, loc = page(hc.PostForm(strings.Split(authURL, "?")[0], form))
		step = "consent"
	}
	return loc
}

// TestSignInAtStandIn runs a delegated sign-in against the stand-in of Microsoft's
// identity platform: the authorize URL carries PKCE S256 and the parameters of
// ms365-protocol.md §1.5, the code is redeemed with the verifier and the client secret,
// the account is read from the answer, and the refresh token then gives access tokens
// through Tokens. The code works once only.
func TestSignInAtStandIn(t *testing.T) {
	e := newSignInEnv(t)
	ctx := context.Background()
	start, err := credential.StartSignIn(e.m, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if want := e.ms.AuthorizeURL(e.sample.TenantID); strings.Split(start.URL, "?")[0] != want {
		t.Errorf("authorize endpoint %q, want %q", strings.Split(start.URL, "?")[0], want)
	}
	sum := sha256.Sum256([]byte(start.Verifier.Reveal()))
	for k, want := range map[string]string{
		"client_id": e.sample.ClientID, "response_type": "code", "redirect_uri": testRedirect, "state": start.State,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
		"prompt": "select_account", "login_hint": e.sample.Mailbox,
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize parameter %s = %q, want %q", k, got, want)
		}
	}
	scopes := strings.Fields(q.Get("scope"))
	for _, want := range []string{"offline_access", mstest.ScopeGraphMailReadWriteShared, mstest.ScopeGraphMailSendShared, "openid"} {
		if !slices.Contains(scopes, want) {
			t.Errorf("scope %q lacks %s", q.Get("scope"), want)
		}
	}
	if strings.Contains(start.URL, start.Verifier.Reveal()) || len(start.Verifier.Reveal()) < 43 {
		t.Error("the code verifier is in the URL, or shorter than RFC 7636's 43 characters")
	}
	if len(start.State) < 43 {
		t.Errorf("state %q is shorter than 256 bits", start.State)
	}

	back := authorize(t, start.URL, e.sample.Agent, e.sample.AgentPassword, "")
	if got := back.Scheme + "://" + back.Host + back.Path; got != testRedirect || back.Query().Get("state") != start.State {
		t.Fatalf("the stand-in sent the browser to %s, want %s with the state", back, testRedirect)
	}
	code := back.Query().Get("code")
	si := credential.NewSignIn(e.secrets, credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	res, err := si.Redeem(ctx, e.m, code, start.Verifier, testRedirect)
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if res.Account != e.sample.Agent {
		t.Errorf("account %q, want %q", res.Account, e.sample.Agent)
	}
	if res.RefreshToken.Reveal() == "" {
		t.Fatal("no refresh token")
	}

	// The stored refresh token gives Graph access tokens.
	e.setSecret(t, store.SecretRefreshToken, res.RefreshToken.Reveal())
	tokens := credential.NewTokens(e.secrets, credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	fn, err := tokens.For(ctx, e.m, credential.AudienceGraph)
	if err != nil {
		t.Fatal(err)
	}
	access, err := fn(ctx, false)
	if err != nil || access == "" {
		t.Fatalf("access token from the signed-in refresh token: %q, %v", access, err)
	}

	// The same code again: Microsoft answers AADSTS54005.
	_, err = si.Redeem(ctx, e.m, code, start.Verifier, testRedirect)
	var se *credential.SignInError
	if !errors.As(err, &se) || se.AADSTS != "54005" || !strings.Contains(se.Advice, "already used") {
		t.Errorf("second redemption of a code: %v, want AADSTS54005 with advice to sign in again", err)
	}
}

// TestSignInOpensSharedMailbox: an app registration set up with only Mail.ReadWrite and
// Mail.Send (admin-consented) does not let a person's token open a shared mailbox, even
// with FullAccess and SendAs (Graph wants the .Shared scopes, ms365-protocol.md §8.1).
// postroom's sign-in asks for Mail.ReadWrite.Shared and Mail.Send.Shared: the stand-in
// shows the consent page for them, the person accepts, and the stored sign-in reads the
// shared mailbox and sends from it.
func TestSignInOpensSharedMailbox(t *testing.T) {
	e := newSignInEnv(t)
	ctx := context.Background()
	app, err := e.sample.Tenant.AddApp(mstest.AppConfig{DisplayName: "postroom (old permissions)", RedirectURIs: []string{testRedirect},
		Scopes: []string{mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead}, AdminConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	secret := "oLd8Q~" + strings.Repeat("s", 30)
	app.AddSecret(secret, time.Now().Add(24*time.Hour))
	m := e.m
	m.OAuth.ClientID = app.ClientID()
	if err := e.st.UpdateMailbox(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.setSecret(t, store.SecretClientSecret, secret)

	start, err := credential.StartSignIn(e.m, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	back := authorize(t, start.URL, e.sample.Agent, e.sample.AgentPassword, "accept")
	si := credential.NewSignIn(e.secrets, credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	res, err := si.Redeem(ctx, e.m, back.Query().Get("code"), start.Verifier, testRedirect)
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	for _, want := range []string{mstest.ScopeGraphMailReadWriteShared, mstest.ScopeGraphMailSendShared} {
		if !strings.Contains(res.Scopes, want) {
			t.Errorf("granted scopes %q lack %s", res.Scopes, want)
		}
	}
	e.setSecret(t, store.SecretRefreshToken, res.RefreshToken.Reveal())
	fn, err := credential.NewTokens(e.secrets, credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)}).For(ctx, e.m, credential.AudienceGraph)
	if err != nil {
		t.Fatal(err)
	}
	access, err := fn(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	graphCall := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, e.ms.GraphURL()+"/v1.0/users/"+e.sample.Mailbox+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+access)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := graphCall("GET", "/mailFolders/inbox/messages", ""); status != http.StatusOK {
		t.Errorf("the signed-in agent reads the shared mailbox: %d %s", status, body)
	}
	mail := `{"message":{"subject":"Re: your order","toRecipients":[{"emailAddress":{"address":"ana@example.net"}}]}}`
	if status, body := graphCall("POST", "/sendMail", mail); status != http.StatusAccepted {
		t.Errorf("the signed-in agent sends as the shared mailbox: %d %s", status, body)
	}
}

// TestSignInRefusals: the answers of the identity platform that end a sign-in come back
// as *SignInError with the advice an administrator needs.
func TestSignInRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong verifier", func(t *testing.T) {
		e := newSignInEnv(t)
		start, err := credential.StartSignIn(e.m, testRedirect)
		if err != nil {
			t.Fatal(err)
		}
		back := authorize(t, start.URL, e.sample.Agent, e.sample.AgentPassword, "")
		si := credential.NewSignIn(e.secrets, credential.TokensOptions{})
		_, err = si.Redeem(ctx, e.m, back.Query().Get("code"), vault.NewSecret(strings.Repeat("x", 43)), testRedirect)
		var se *credential.SignInError
		if !errors.As(err, &se) || se.AADSTS != "501481" || se.Code != "invalid_grant" {
			t.Errorf("redeem with another verifier: %v, want invalid_grant AADSTS501481", err)
		}
	})
	t.Run("consent declined", func(t *testing.T) {
		e := newSignInEnv(t)
		e.sample.App.SetAdminConsent(false)
		start, err := credential.StartSignIn(e.m, testRedirect)
		if err != nil {
			t.Fatal(err)
		}
		back := authorize(t, start.URL, e.sample.Agent, e.sample.AgentPassword, "decline")
		se := credential.CallbackError(back.Query(), testRedirect)
		if se == nil || se.Code != "access_denied" || se.AADSTS != "65004" {
			t.Fatalf("callback after declining consent: %+v, want access_denied AADSTS65004", se)
		}
		if !strings.Contains(se.Advice, "Accept") || !strings.Contains(se.Advice, "Grant admin consent") {
			t.Errorf("advice %q does not say to accept or to grant admin consent", se.Advice)
		}
		if se.TraceID == "" || strings.Contains(se.Description, "Trace ID") {
			t.Errorf("trace id %q, description %q: want the trace id apart", se.TraceID, se.Description)
		}
	})
	t.Run("public client sends a secret", func(t *testing.T) {
		e := newSignInEnv(t)
		tn := e.sample.Tenant
		app, err := tn.AddApp(mstest.AppConfig{PublicClient: true, RedirectURIs: []string{testRedirect},
			Scopes: []string{mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead}, AdminConsent: true})
		if err != nil {
			t.Fatal(err)
		}
		e.m.OAuth.ClientID = app.ClientID()
		start, err := credential.StartSignIn(e.m, testRedirect)
		if err != nil {
			t.Fatal(err)
		}
		back := authorize(t, start.URL, e.sample.Agent, e.sample.AgentPassword, "")
		si := credential.NewSignIn(e.secrets, credential.TokensOptions{})
		_, err = si.Redeem(ctx, e.m, back.Query().Get("code"), start.Verifier, testRedirect)
		var se *credential.SignInError
		if !errors.As(err, &se) || se.AADSTS != "700025" || !strings.Contains(se.Advice, "remove the client secret") {
			t.Errorf("public client redeeming with a secret: %v, want AADSTS700025 and advice to remove the secret", err)
		}
	})
	t.Run("redirect URI mismatch", func(t *testing.T) {
		se := credential.CallbackError(url.Values{"error": {"invalid_request"},
			"error_description": {"AADSTS50011: The redirect URI 'x' specified in the request does not match."}}, "https://postroom.example.org/oauth/callback")
		if se == nil || !strings.Contains(se.Advice, "https://postroom.example.org/oauth/callback") {
			t.Errorf("redirect URI mismatch: %+v, want advice naming the redirect URI to register", se)
		}
	})
	t.Run("no error", func(t *testing.T) {
		if se := credential.CallbackError(url.Values{"code": {"abc"}, "state": {"s"}}, testRedirect); se != nil {
			t.Errorf("a callback with a code is an error: %v", se)
		}
	})
}

func TestStartSignInNeedsDelegatedSettings(t *testing.T) {
	m := store.Mailbox{Name: "x", Protocol: "imap", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Provider: credential.ProviderMicrosoft, Cloud: credential.CloudGlobal, Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}}
	if _, err := credential.StartSignIn(m, testRedirect); err == nil {
		t.Error("an app mailbox started a person's sign-in")
	}
	m.Auth = store.AuthOAuthDelegated
	m.OAuth = store.OAuth{Provider: credential.ProviderCustom, TokenURL: "https://idp.example.org/token", ClientID: "c"}
	if _, err := credential.StartSignIn(m, testRedirect); err == nil || !strings.Contains(err.Error(), "authorize URL") {
		t.Errorf("custom provider without an authorize URL: %v, want an error naming the authorize URL", err)
	}
	m.OAuth.AuthorizeURL = "https://idp.example.org/authorize"
	m.OAuth.Scopes = "https://mail.example.org/"
	st, err := credential.StartSignIn(m, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(st.URL)
	if u.Query().Get("scope") != "https://mail.example.org/" || u.Query().Get("access_type") != "offline" {
		t.Errorf("custom provider's authorize URL %s: want its scopes only (no openid) and access_type=offline", st.URL)
	}
}

func TestSignInNeeded(t *testing.T) {
	m := store.Mailbox{Auth: store.AuthOAuthDelegated}
	if !credential.SignInNeeded(m) {
		t.Error("a delegated mailbox nobody signed in to does not need a sign-in")
	}
	m.RefreshTokenSet = true
	if credential.SignInNeeded(m) {
		t.Error("a signed-in mailbox needs a sign-in")
	}
	m.Status, m.StatusMessage = store.StatusError, "imap login: dial tcp: connection refused"
	if credential.SignInNeeded(m) {
		t.Error("a network error asks for a sign-in")
	}
	m.StatusMessage = "oauth token (refresh_token): token endpoint answered 400 invalid_grant: AADSTS50173: ...: the sign-in has expired or was revoked: sign in again"
	if !credential.SignInNeeded(m) {
		t.Error("a revoked sign-in does not ask for a new one")
	}
	m.Auth = store.AuthOAuthApp
	if credential.SignInNeeded(m) {
		t.Error("an app mailbox asks for a person's sign-in")
	}
}
