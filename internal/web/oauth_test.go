package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Test values of an app registration.
const (
	testTenantID     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClientID     = "11111111-2222-3333-4444-555555555555"
	testClientSecret = "pst8Q~client-secret-never-on-a-page"
)

// graphAppForm is the create form of an inbound Graph mailbox signing in as an app.
func graphAppForm(csrf string) url.Values {
	return url.Values{
		"csrf": {csrf}, "direction": {store.Inbound}, "name": {"graph_desk"}, "protocol": {mailbox.Graph},
		"address": {"support@contoso.example"}, "security": {mailbox.SecurityTLS}, "max_size_mb": {"5"},
		"poll_interval_seconds": {"60"}, "auth": {store.AuthOAuthApp}, "oauth_provider": {credential.ProviderMicrosoft},
		"oauth_cloud": {credential.CloudGlobal}, "oauth_tenant": {testTenantID}, "oauth_client_id": {testClientID},
		"client_secret": {testClientSecret},
	}
}

// TestMailboxFormGraphApp: a Microsoft Graph mailbox that signs in as an app registration is
// created and edited through the form; the client secret is stored encrypted and never put
// in a page; the detail pane shows the method, the ids and the secret's expiry in a
// warning style 14 days ahead and an error style once expired.
func TestMailboxFormGraphApp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	for _, want := range []string{`value="graph"`, `name="auth"`, `value="oauth_delegated"`, `id="ropc-warning"`,
		`value="usgov-dod"`, `value="china"`, `name="oauth_authority_url"`, `name="client_certificate"`, `name="oauth_secret_expires_at"`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("the new mailbox form lacks %s", want)
		}
	}
	values := graphAppForm(form.csrf(t))
	values.Set("oauth_secret_expires_at", time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly))
	resp := c.post("/mailboxes", values)
	if resp.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", resp.status, resp.body)
	}
	m, err := f.st.MailboxByName(ctx, "graph_desk")
	if err != nil {
		t.Fatal(err)
	}
	if m.Protocol != mailbox.Graph || m.Auth != store.AuthOAuthApp || m.OAuth.Tenant != testTenantID ||
		m.OAuth.ClientID != testClientID || !m.ClientSecretSet || m.Host != "" || m.OAuth.SecretExpiresAt.IsZero() {
		t.Fatalf("stored mailbox %+v", m)
	}
	if s, err := f.passwords.Secrets().Get(ctx, m.ID, store.SecretClientSecret); err != nil || s.Reveal() != testClientSecret {
		t.Fatalf("stored client secret is not the one typed (err %v)", err)
	}

	detail := c.get(resp.header.Get("Location"))
	for _, want := range []string{"app registration with a client secret (no user)", testTenantID, testClientID,
		`<span class="expiry-warn" id="secret-expiry-left">expires in 9 days</span>`, `id="client-secret-state">stored`, ">Graph<"} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("detail pane lacks %q", want)
		}
	}
	edit := c.get(fmt.Sprintf("/mailboxes/%d/edit", m.ID))
	if !strings.Contains(edit.body, "A client secret is stored; leave empty to keep it.") || !strings.Contains(edit.body, `value="`+testTenantID+`"`) {
		t.Errorf("edit form lacks the stored settings or the note on the secret")
	}
	// The Microsoft 365 walk-through, filled in with the ids entered.
	if !strings.Contains(edit.body, `id="prechecks"`) || !strings.Contains(edit.body, "New-ApplicationAccessPolicy -AppId "+testClientID) {
		t.Errorf("the Graph mailbox's form lacks the Microsoft 365 walk-through with its client id")
	}
	// The password form carries it for the style sheet to show once Microsoft 365 is
	// chosen (TestBrowserMailboxFormAdapts sees it hidden and shown), unfilled.
	if !strings.Contains(form.body, `class="prechecks when-microsoft" id="prechecks"`) || !strings.Contains(form.body, "New-ServicePrincipal -AppId &lt;client id&gt; -ObjectId") {
		t.Error("the new (password) mailbox form lacks the Microsoft 365 walk-through, unfilled, for the style sheet")
	}
	for name, p := range map[string]webPage{"form": form, "detail": detail, "edit": edit} {
		if strings.Contains(p.body, testClientSecret) {
			t.Errorf("the client secret is in the %s page", name)
		}
	}

	// Saving without a secret keeps it; a past expiry date shows as expired.
	values = graphAppForm(edit.csrf(t))
	values.Del("client_secret")
	values.Set("oauth_secret_expires_at", time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly))
	if resp := c.post(fmt.Sprintf("/mailboxes/%d", m.ID), values); resp.status != http.StatusSeeOther {
		t.Fatalf("update: %d\n%s", resp.status, resp.body)
	}
	if s, _ := f.passwords.Secrets().Get(ctx, m.ID, store.SecretClientSecret); s.Reveal() != testClientSecret {
		t.Error("saving without a client secret lost the stored one")
	}
	detail = c.get(listView{Selected: m.ID}.URL(""))
	if !strings.Contains(detail.body, `<span class="expiry-expired" id="secret-expiry-left">expired 3 days ago</span>`) ||
		!strings.Contains(detail.body, `<span class="badge expiry-expired">secret expired 3 days ago</span>`) {
		t.Errorf("an expired secret is not shown as expired in the detail pane and the row")
	}
	if strings.Contains(detail.body, testClientSecret) {
		t.Error("the client secret is in the page after the update")
	}
}

// TestMailboxFormOAuthErrors: a bad directory (tenant) id, client id and expiry date come
// back next to their fields; the secret typed is not sent back, with a note to paste it
// again.
func TestMailboxFormOAuthErrors(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	values := graphAppForm(c.get("/mailboxes/new?direction=inbound").csrf(t))
	values.Set("oauth_tenant", "contoso corp")
	values.Set("oauth_client_id", "my-app")
	resp := c.post("/mailboxes", values)
	if resp.status != http.StatusBadRequest {
		t.Fatalf("bad ids: %d, want 400", resp.status)
	}
	if msg := fieldError(resp.body, "oauth_tenant"); !strings.Contains(msg, "directory (tenant) id") {
		t.Errorf("error next to the tenant = %q", msg)
	}
	if msg := fieldError(resp.body, "oauth_client_id"); !strings.Contains(msg, "is a GUID") {
		t.Errorf("error next to the client id = %q", msg)
	}
	if !strings.Contains(resp.body, `value="contoso corp"`) || !strings.Contains(resp.body, `id="retype-client-secret"`) {
		t.Error("the refused form lost the tenant typed, or the note to paste the secret again")
	}
	if strings.Contains(resp.body, testClientSecret) {
		t.Error("the refused form sent the client secret back")
	}
	if !strings.Contains(resp.body, "Directory (tenant) ID: enter the directory (tenant) id") {
		t.Error("the error summary does not name the tenant field")
	}

	values.Set("oauth_tenant", testTenantID)
	values.Set("oauth_client_id", testClientID)
	values.Set("oauth_secret_expires_at", "31/12/2027")
	resp = c.post("/mailboxes", values)
	if msg := fieldError(resp.body, "oauth_secret_expires_at"); resp.status != http.StatusBadRequest || !strings.Contains(msg, "YYYY-MM-DD") {
		t.Errorf("bad expiry date: %d, error %q", resp.status, msg)
	}
	if _, err := f.st.MailboxByName(context.Background(), "graph_desk"); !store.IsNotFound(err) {
		t.Errorf("a refused form created the mailbox (%v)", err)
	}
}

// signInSetup is the stand-in's sample tenant with postroom's redirect URI registered, and
// an inbound Graph mailbox that signs in with a person's account, pointed at the stand-in.
type signInSetup struct {
	ms     *mstest.Server
	sample *mstest.Sample
	m      store.Mailbox
	// forgot records OnCredentialsChange calls.
	forgot []int64
}

func newSignInSetup(t *testing.T, f *fixture) *signInSetup {
	t.Helper()
	ms, sample := sampleTenant(t, f.srv.URL+callbackPath)
	s := &signInSetup{ms: ms, sample: sample}
	f.mbox.OnCredentialsChange = func(id int64) { s.forgot = append(s.forgot, id) }
	secret := vault.NewSecret(sample.ClientSecret)
	var err error
	s.m, err = f.mbox.Create(context.Background(), "admin", mailbox.Input{
		Name: "graph_support", Direction: store.Inbound, Protocol: mailbox.Graph, Address: sample.Mailbox,
		Auth: store.AuthOAuthDelegated, GraphURL: ms.GraphURL(), ClientSecret: &secret,
		OAuth: store.OAuth{Provider: credential.ProviderMicrosoft, Cloud: credential.CloudCustom, AuthorityURL: ms.LoginURL(),
			Tenant: sample.TenantID, ClientID: sample.ClientID},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSignIn presses the sign-in button of the setup's mailbox as c and returns the
// authorize URL the browser is sent to.
func (s *signInSetup) startSignIn(t *testing.T, c *browserless) string {
	t.Helper()
	page := c.get(fmt.Sprintf("/mailboxes/%d/signin", s.m.ID))
	resp := c.post(fmt.Sprintf("/mailboxes/%d/signin", s.m.ID), url.Values{"csrf": {page.csrf(t)}})
	loc := resp.header.Get("Location")
	if resp.status != http.StatusSeeOther || !strings.HasPrefix(loc, s.ms.AuthorizeURL(s.sample.TenantID)+"?") {
		t.Fatalf("sign-in button: %d to %q, want a redirect to the stand-in's authorize endpoint\n%s", resp.status, loc, resp.body)
	}
	return loc
}

var (
	msFlowField   = regexp.MustCompile(`name="flow" value="([^"]+)"`)
	msErrorOnPage = regexp.MustCompile(`id="(?:passwordError|usernameError|errorCode)">([^<]*)<`)
)

// msAuthorize plays the person at the stand-in's sign-in page without a browser: it signs
// in as user, answers a consent page with consent ("accept" or "decline"), and returns
// the path and query postroom's callback is called with.
func msAuthorize(t *testing.T, authURL, user, password, consent string) string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(resp *http.Response, err error) (body, location string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if m := msErrorOnPage.FindSubmatch(b); m != nil {
			t.Fatalf("the stand-in's page shows an error: %s", m[1])
		}
		return string(b), resp.Header.Get("Location")
	}
	body, loc := read(hc.Get(authURL))
	for step := "signin"; loc == ""; step = "consent" {
		m := msFlowField.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no form on the stand-in's page:\n%s", body)
		}
		form := url.Values{"flow": {m[1]}, "step": {step}, "loginfmt": {user}, "passwd": {password}, "consent": {consent}}
		body, loc = read(hc.PostForm(strings.Split(authURL, "?")[0], form))
	}
	u, err := url.Parse(loc)
	if err != nil || u.Path != callbackPath {
		t.Fatalf("the stand-in sent the browser to %q, want postroom's callback", loc)
	}
	return u.RequestURI()
}

// TestDelegatedSignIn: the sign-in button sends the browser to the authorize endpoint; the
// callback is accepted once, only with the state of a sign-in started in the same
// session; the refresh token stored then gives access tokens; when the sign-in dies the
// mailboxes page still works and offers to sign in again.
func TestDelegatedSignIn(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	ctx := context.Background()
	c := f.signIn(t, "admin")

	list := c.get(listView{Selected: s.m.ID}.URL(""))
	if csp := list.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+s.ms.LoginURL()+";") {
		t.Errorf("CSP %q does not let the sign-in form lead to the stand-in", csp)
	}
	for _, want := range []string{`id="signin"`, "Sign in with Microsoft", "Nobody has signed in to this mailbox yet",
		fmt.Sprintf(`<a class="signin-again" href="/mailboxes/%d/signin">sign in</a>`, s.m.ID), `id="oauth-account">nobody yet`} {
		if !strings.Contains(list.body, want) {
			t.Errorf("mailbox page before the sign-in lacks %q", want)
		}
	}
	if page := c.get(fmt.Sprintf("/mailboxes/%d/signin", s.m.ID)); !strings.Contains(page.body, f.srv.URL+callbackPath) ||
		!strings.Contains(page.header.Get("Content-Security-Policy"), "form-action 'self' "+s.ms.LoginURL()+";") {
		t.Error("the sign-in page does not show the redirect URI to register, or its form cannot lead to the stand-in")
	}

	authURL := s.startSignIn(t, c)
	q, _ := url.ParseQuery(strings.SplitN(authURL, "?", 2)[1])
	if q.Get("redirect_uri") != f.srv.URL+callbackPath || q.Get("login_hint") != s.sample.Mailbox || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorize URL %s: want postroom's redirect URI, the mailbox as login hint and PKCE S256", authURL)
	}
	callback := msAuthorize(t, authURL, s.sample.Agent, s.sample.AgentPassword, "")

	// A forged state is refused and leaves the real sign-in alone.
	forged := strings.Replace(callback, "state="+q.Get("state"), "state=forged", 1)
	if resp := c.get(forged); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "This sign-in cannot be finished") {
		t.Errorf("callback with a forged state: %d", resp.status)
	}
	// Another admin's session cannot finish this admin's sign-in.
	other := f.signIn(t, "admin")
	if resp := other.get(callback); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "This sign-in cannot be finished") {
		t.Errorf("callback in another session: %d", resp.status)
	}
	if m, _ := f.st.Mailbox(ctx, s.m.ID); m.RefreshTokenSet {
		t.Fatal("a refused callback stored a sign-in")
	}

	// Start again and finish in the right session.
	callback = msAuthorize(t, s.startSignIn(t, c), s.sample.Agent, s.sample.AgentPassword, "")
	s.forgot = nil
	resp := c.get(callback)
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != (listView{Selected: s.m.ID}).URL("signed-in") {
		t.Fatalf("callback: %d to %q\n%s", resp.status, resp.header.Get("Location"), resp.body)
	}
	page := c.get(resp.header.Get("Location"))
	if !strings.Contains(page.body, "Signed in as "+s.sample.Agent+".") || !strings.Contains(page.body, `id="oauth-account">`+s.sample.Agent) {
		t.Errorf("the mailbox page does not say who signed in:\n%s", page.body)
	}
	if len(s.forgot) == 0 {
		t.Error("the sign-in did not drop the cached tokens (OnCredentialsChange)")
	}
	m, err := f.st.Mailbox(ctx, s.m.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.passwords.Secrets().Get(ctx, m.ID, store.SecretRefreshToken)
	if err != nil || stored.Reveal() == "" {
		t.Fatalf("no refresh token stored (%v)", err)
	}
	if strings.Contains(page.body, stored.Reveal()) {
		t.Error("the refresh token is in the page")
	}
	tokens := credential.NewTokens(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	fn, err := tokens.For(ctx, m, credential.AudienceGraph)
	if err != nil {
		t.Fatal(err)
	}
	if access, err := fn(ctx, false); err != nil || access == "" {
		t.Fatalf("the stored sign-in gives no access token: %v", err)
	}

	// The same answer again is refused, and the stored sign-in stays.
	if resp := c.get(callback); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "This sign-in cannot be finished") {
		t.Errorf("replayed callback: %d", resp.status)
	}

	// A password reset kills the sign-in: the page still works and offers to sign in again.
	if err := s.ms.RevokeUserSessions(s.sample.Agent); err != nil {
		t.Fatal(err)
	}
	tokens.Forget(m.ID)
	fn, err = tokens.For(ctx, m, credential.AudienceGraph)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenErr := fn(ctx, true)
	if tokenErr == nil {
		t.Fatal("a revoked sign-in still gives tokens")
	}
	if err := f.st.SetMailboxStatus(ctx, m.ID, store.MailboxStatus{Status: store.StatusError, Message: tokenErr.Error(), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	page = c.get(listView{Selected: m.ID}.URL(""))
	if page.status != http.StatusOK || !strings.Contains(page.body, fmt.Sprintf(`<a class="signin-again" href="/mailboxes/%d/signin">sign in again</a>`, m.ID)) ||
		!strings.Contains(page.body, "Sign in with Microsoft again") {
		t.Errorf("mailboxes page with a dead sign-in: %d, want the sign-in-again link and button", page.status)
	}
	if again := c.get(fmt.Sprintf("/mailboxes/%d/signin", m.ID)); again.status != http.StatusOK || !strings.Contains(again.body, `id="signin"`) {
		t.Errorf("sign-in-again page: %d, want the button", again.status)
	}
	// A supervisor sees the state but gets no sign-in link or button.
	sup := f.signIn(t, "sam").get(listView{Selected: m.ID}.URL(""))
	if sup.status != http.StatusOK || strings.Contains(sup.body, `class="signin-again"`) || strings.Contains(sup.body, `id="signin"`) {
		t.Errorf("supervisor's page: %d, with sign-in controls", sup.status)
	}
}

// TestSignInCallbackErrors: when the provider sends the browser back with an error, or
// refuses the code, the page says what happened and what to do, names the provider's
// code, and stores nothing.
func TestSignInCallbackErrors(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	c := f.signIn(t, "admin")
	ctx := context.Background()
	stateOf := func(authURL string) string {
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("state")
	}
	check := func(t *testing.T, callback string, wants ...string) {
		t.Helper()
		resp := c.get(callback)
		if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "Sign-in not finished") {
			t.Fatalf("callback %s: %d\n%s", callback, resp.status, resp.body)
		}
		for _, want := range wants {
			if !strings.Contains(resp.body, want) {
				t.Errorf("error page lacks %q:\n%s", want, resp.body)
			}
		}
		if !strings.Contains(resp.body, `id="signin"`) {
			t.Error("the error page has no button to try again")
		}
		if m, _ := f.st.Mailbox(ctx, s.m.ID); m.RefreshTokenSet {
			t.Error("a failed sign-in stored a refresh token")
		}
	}

	t.Run("consent declined at the stand-in", func(t *testing.T) {
		s.sample.App.SetAdminConsent(false)
		defer s.sample.App.SetAdminConsent(true)
		callback := msAuthorize(t, s.startSignIn(t, c), s.sample.Agent, s.sample.AgentPassword, "decline")
		check(t, callback, "access_denied", "AADSTS65004", "choose Accept", "Grant admin consent")
	})
	t.Run("client secret removed at the stand-in", func(t *testing.T) {
		s.sample.App.RemoveSecret(s.sample.ClientSecret)
		defer s.sample.App.AddSecret(s.sample.ClientSecret, time.Now().Add(24*time.Hour))
		callback := msAuthorize(t, s.startSignIn(t, c), s.sample.Agent, s.sample.AgentPassword, "")
		check(t, callback, "invalid_client", "AADSTS7000215", "not its Secret ID")
	})
	for _, tc := range []struct {
		name, code, description string
		wants                   []string
	}{
		{"consent missing", "invalid_grant", "AADSTS65001: The user or administrator has not consented to use the application.",
			[]string{"AADSTS65001", "an administrator grants it"}},
		{"redirect URI mismatch", "invalid_request", "AADSTS50011: The redirect URI specified in the request does not match.",
			[]string{"add " + f.srv.URL + callbackPath + " exactly"}},
		{"another provider", "temporarily_unavailable", "", []string{"temporary problem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := stateOf(s.startSignIn(t, c))
			q := url.Values{"error": {tc.code}, "error_description": {tc.description + "\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333"}, "state": {state}}
			check(t, callbackPath+"?"+q.Encode(), tc.wants...)
		})
	}
}

// TestSignInPublicURL: with a public URL configured, the redirect URI is built from it, not
// from the request's host (postroom behind a proxy); a public URL that is not an http(s)
// origin is refused at start.
func TestSignInPublicURL(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	opts := Options{Store: f.st, Auth: f.auth, Mailboxes: f.mbox, PublicURL: "https://postroom.example.org/",
		SignIn: credential.NewSignIn(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	behind := *f
	behind.srv = httptest.NewServer(h)
	t.Cleanup(behind.srv.Close)
	c := behind.signIn(t, "admin")
	page := c.get(fmt.Sprintf("/mailboxes/%d/signin", s.m.ID))
	if !strings.Contains(page.body, `<code id="redirect-uri">https://postroom.example.org/oauth/callback</code>`) {
		t.Errorf("sign-in page behind a proxy does not show the public redirect URI:\n%s", page.body)
	}
	resp := c.post(fmt.Sprintf("/mailboxes/%d/signin", s.m.ID), url.Values{"csrf": {page.csrf(t)}})
	u, err := url.Parse(resp.header.Get("Location"))
	if err != nil || u.Query().Get("redirect_uri") != "https://postroom.example.org/oauth/callback" {
		t.Errorf("authorize URL %q: want the public redirect URI", resp.header.Get("Location"))
	}
	for _, bad := range []string{"postroom.example.org", "ftp://postroom.example.org", "https://postroom.example.org/?x=1"} {
		opts.PublicURL = bad
		if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "https://postroom.example.org") {
			t.Errorf("public URL %q: %v, want a refusal that shows the form to use", bad, err)
		}
	}
}
