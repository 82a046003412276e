package mstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/postroom/postroom/internal/testenv"
)

// browser is a plain HTTP client that walks the sign-in pages the way a person would.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var flowPattern = regexp.MustCompile(`name="flow" value="([^"]+)"`)

// page GETs or POSTs and returns status, Location and body.
func (b *browser) do(method, u string, form url.Values) (int, string, string) {
	b.t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		resp, err = b.c.Get(u)
	} else {
		resp, err = b.c.PostForm(u, form)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// signIn opens authURL, signs in and returns the next page's status, Location and body
// along with the flow id and the form action.
func (b *browser) signIn(authURL, user, password string) (int, string, string, string, string) {
	b.t.Helper()
	status, _, body := b.do(http.MethodGet, authURL, nil)
	m := flowPattern.FindStringSubmatch(body)
	if status != 200 || m == nil {
		b.t.Fatalf("authorize page: %d %s", status, body)
	}
	action := strings.SplitN(authURL, "?", 2)[0]
	status, loc, body := b.do(http.MethodPost, action, url.Values{"flow": {m[1]}, "step": {"signin"}, "loginfmt": {user}, "passwd": {password}})
	return status, loc, body, m[1], action
}

func (f *fixture) oauthConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: f.app.ClientID(), ClientSecret: f.secret, RedirectURL: testRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: f.s.AuthorizeURL(testTenantID), TokenURL: f.s.TokenURL(testTenantID), AuthStyle: oauth2.AuthStyleInParams}}
}

// codeFrom reads code and state from a redirect to testRedirect.
func codeFrom(t *testing.T, loc string) (code, state string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, testRedirect+"?") {
		t.Fatalf("redirect %q is not to the registered URI", loc)
	}
	if e := u.Query().Get("error"); e != "" {
		t.Fatalf("redirect with error %s: %s", e, u.Query().Get("error_description"))
	}
	return u.Query().Get("code"), u.Query().Get("state")
}

func wantRetrieveError(t *testing.T, err error, wantErr string, wantCode int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want *oauth2.RetrieveError", err)
	}
	wantTokenError(t, re.Response.StatusCode, re.Body, 400, wantErr, wantCode)
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	cfg := f.oauthConfig("offline_access", ScopeGraphMailReadWrite, ScopeGraphMailSend)
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	status, loc, body, _, _ := b.signIn(cfg.AuthCodeURL("6f1c0b7e", oauth2.S256ChallengeOption(verifier)), testUser, testPassword)
	if status != http.StatusFound {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	code, state := codeFrom(t, loc)
	if state != "6f1c0b7e" {
		t.Errorf("state %q", state)
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token with offline_access")
	}
	c, _ := f.s.ParseToken(tok.AccessToken)
	if c.Audience != GraphAudience || c.Scope != "Mail.ReadWrite Mail.Send" || c.UPN != testUser {
		t.Errorf("claims %+v", c)
	}
	// The code is single use.
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantRetrieveError(t, err, "invalid_grant", 54005)

	// A wrong verifier.
	_, loc, _, _, _ = b.signIn(cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), testUser, testPassword)
	code, _ = codeFrom(t, loc)
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantRetrieveError(t, err, "invalid_grant", 501481)

	// An expired code.
	_, loc, _, _, _ = b.signIn(cfg.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)), testUser, testPassword)
	code, _ = codeFrom(t, loc)
	f.s.Advance(11 * time.Minute)
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantRetrieveError(t, err, "invalid_grant", 70008)

	// form_post answers with a page that posts code and state to the redirect URI.
	_, _, body, _, _ = b.signIn(cfg.AuthCodeURL("s4", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post")), testUser, testPassword)
	if !strings.Contains(body, `action="`+testRedirect+`"`) || !strings.Contains(body, `name="code"`) || !strings.Contains(body, `value="s4"`) {
		t.Errorf("form_post page: %s", body)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	f := newFixture(t, Options{})
	cfg := f.oauthConfig("offline_access", ScopeIMAP)
	b := newBrowser(t)

	// Errors that cannot be sent back show on a page.
	bad := *cfg
	bad.RedirectURL = "http://127.0.0.1:9/elsewhere"
	status, _, body := b.do(http.MethodGet, bad.AuthCodeURL("x"), nil)
	if status != 400 || !strings.Contains(body, "AADSTS50011") {
		t.Errorf("redirect mismatch: %d %s", status, body)
	}
	f.app.AddRedirectURI(bad.RedirectURL)
	if status, _, body := b.do(http.MethodGet, bad.AuthCodeURL("x"), nil); status != 200 || !strings.Contains(body, "i0116") {
		t.Errorf("after AddRedirectURI: %d %s", status, body)
	}
	unknown := *cfg
	unknown.Endpoint.AuthURL = f.s.AuthorizeURL("fabrikam.example")
	if status, _, body := b.do(http.MethodGet, unknown.AuthCodeURL("x"), nil); status != 400 || !strings.Contains(body, "AADSTS90002") {
		t.Errorf("unknown tenant: %d %s", status, body)
	}

	// Wrong password and unknown user stay on the sign-in page with the reason.
	status, _, body, _, _ = b.signIn(cfg.AuthCodeURL("x"), testUser, "wrong")
	if status != 200 || !strings.Contains(body, `id="passwordError"`) || !strings.Contains(body, "AADSTS50126") {
		t.Errorf("wrong password: %d %s", status, body)
	}
	if _, _, body, _, _ := b.signIn(cfg.AuthCodeURL("x"), "nobody@contoso.example", "x"); !strings.Contains(body, "AADSTS50034") {
		t.Errorf("unknown user: %s", body)
	}

	// Conditional Access ends the flow with a redirect carrying the error and the state.
	if _, err := f.tenant.AddUser(UserConfig{UPN: "ca@contoso.example", Password: "pw", ConditionalAccessBlock: true}); err != nil {
		t.Fatal(err)
	}
	_, loc, _, _, _ := b.signIn(cfg.AuthCodeURL("st"), "ca@contoso.example", "pw")
	u, _ := url.Parse(loc)
	if q := u.Query(); q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS53003: ") || q.Get("state") != "st" {
		t.Errorf("CA block redirect %q", loc)
	}

	// prompt=none cannot sign anybody in.
	_, loc, _ = b.do(http.MethodGet, cfg.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")), nil)
	if u, _ := url.Parse(loc); u.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none redirect %q", loc)
	}

	// MFA: a second page to approve, then the code.
	if _, err := f.tenant.AddUser(UserConfig{UPN: "mfa@contoso.example", Password: "pw", MFARequired: true}); err != nil {
		t.Fatal(err)
	}
	status, _, body, flow, action := b.signIn(cfg.AuthCodeURL("m"), "mfa@contoso.example", "pw")
	if status != 200 || !strings.Contains(body, "idSubmit_SAOTCC_Continue") {
		t.Fatalf("MFA page: %d %s", status, body)
	}
	status, loc, _ = b.do(http.MethodPost, action, url.Values{"flow": {flow}, "step": {"mfa"}})
	if code, _ := codeFrom(t, loc); status != http.StatusFound || code == "" {
		t.Errorf("after MFA approval: %d %q", status, loc)
	}
}

func TestAuthorizeConsent(t *testing.T) {
	f := newFixture(t, Options{})
	f.app.SetAdminConsent(false)
	cfg := f.oauthConfig("offline_access", ScopeIMAP)
	b := newBrowser(t)

	// Without consent the token endpoint refuses a delegated grant...
	_, err := cfg.PasswordCredentialsToken(context.Background(), testUser, testPassword)
	wantRetrieveError(t, err, "invalid_grant", 65001)

	// ...and the sign-in page asks the user; Cancel returns access_denied (AADSTS65004).
	status, _, body, flow, action := b.signIn(cfg.AuthCodeURL("c1"), testUser, testPassword)
	if status != 200 || !strings.Contains(body, "idBtn_Accept") || !strings.Contains(body, ScopeIMAP) {
		t.Fatalf("consent page: %d %s", status, body)
	}
	_, loc, _ := b.do(http.MethodPost, action, url.Values{"flow": {flow}, "step": {"consent"}, "consent": {"decline"}})
	u, _ := url.Parse(loc)
	if q := u.Query(); q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004: ") || q.Get("state") != "c1" {
		t.Errorf("declined consent redirect %q", loc)
	}
	// Accept: a code, and the user's consent now counts for ROPC too.
	_, _, _, flow, action = b.signIn(cfg.AuthCodeURL("c2"), testUser, testPassword)
	_, loc, _ = b.do(http.MethodPost, action, url.Values{"flow": {flow}, "step": {"consent"}, "consent": {"accept"}})
	code, _ := codeFrom(t, loc)
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.PasswordCredentialsToken(context.Background(), testUser, testPassword); err != nil {
		t.Errorf("ROPC after the user consented: %v", err)
	}
}

// TestSignInPageInChromium signs in through the real page in headless Chromium, as an
// administrator connecting a mailbox would.
func TestSignInPageInChromium(t *testing.T) {
	s := start(t, Options{})
	codes := make(chan url.Values, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, `<!doctype html><title>done</title><p id="done">signed in</p>`)
	}))
	defer callback.Close()
	sample, err := s.SampleTenant(SampleOptions{RedirectURI: callback.URL + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: sample.ClientID, ClientSecret: sample.ClientSecret, RedirectURL: callback.URL + "/oauth/callback",
		Scopes:   []string{"offline_access", ScopeIMAP, ScopeSMTP},
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthorizeURL(sample.TenantID), TokenURL: s.TokenURL(sample.TenantID), AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()

	ctx, cancel := context.WithTimeout(testenv.Chromium(t), 60*time.Second)
	defer cancel()
	err = chromedp.Do(ctx,
		chromedp.Navigate(cfg.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(chromedp.CSS("#i0116")),
		chromedp.SendKeys(chromedp.CSS("#i0116"), sample.Agent),
		chromedp.SendKeys(chromedp.CSS("#i0118"), sample.AgentPassword),
		chromedp.Click(chromedp.CSS("#idSIButton9")),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	if err != nil {
		t.Fatalf("browser sign-in: %v", err)
	}
	q := <-codes
	if q.Get("state") != "browser-state" || q.Get("code") == "" {
		t.Fatalf("callback got %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.ParseToken(tok.AccessToken); c.UPN != SampleAgent || c.Audience != OutlookAudience {
		t.Errorf("claims %+v", c)
	}
}
