package web

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const (
	ssoTenant      = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	ssoSupervisors = "3f2504e0-4f89-41d3-9a0c-0305e82c3301" // a group's object id
)

// ssoFixture is the pages with single sign-on against the Microsoft stand-in: tenant
// fabrikam.example with the app "postroom" (its redirect URI this server's callback),
// Sofia in the supervisors group and Noah in no group.
type ssoFixture struct {
	*fixture
	ms     *mstest.Server
	app    *mstest.App
	secret string
	svc    *sso.Service
}

func newSSOFixture(t *testing.T) *ssoFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := auth.NewService(st, nil)
	if _, err := a.EnsureUser(ctx, "admin", "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnsureUser(ctx, "ana", "Ana Agent", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sso.New(sso.Options{Store: st, Vault: v, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Store: st, Auth: a, ProductVersion: "test", SSO: svc})
	if err != nil {
		t.Fatal(err)
	}
	f := &ssoFixture{fixture: &fixture{st: st, auth: a}, svc: svc}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)

	f.ms, err = mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.ms.Close() })
	tn, err := f.ms.AddTenant(ssoTenant, "fabrikam.example")
	if err != nil {
		t.Fatal(err)
	}
	f.app, err = tn.AddApp(mstest.AppConfig{DisplayName: "postroom", RedirectURIs: []string{f.srv.URL + sso.CallbackPath}})
	if err != nil {
		t.Fatal(err)
	}
	f.secret = "pst8Q~" + auth.RandomToken()[:30]
	f.app.AddSecret(f.secret, time.Now().Add(24*time.Hour))
	sofia, err := tn.AddUser(mstest.UserConfig{UPN: "sofia@fabrikam.example", DisplayName: "Sofia Supervisor", Password: "sofia-pw"})
	if err != nil {
		t.Fatal(err)
	}
	sofia.SetGroups(ssoSupervisors)
	if _, err := tn.AddUser(mstest.UserConfig{UPN: "noah@fabrikam.example", DisplayName: "Noah Newcomer", Password: "noah-pw"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// signInWithMicrosoft signs out whoever is signed in, presses the login page's button and
// signs in on the stand-in's page.
func (f *ssoFixture) signInWithMicrosoft(t *testing.T, ctx context.Context, upn, password string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("main")))
	if ok := get(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector("form.signout")`)); ok {
		submit(t, ctx, chromedp.Click(chromedp.CSS("form.signout button")))
	}
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("password")))
	if b := get(t, ctx, chromedp.Text(chromedp.ID("sso-button"))); b != "Sign in with Microsoft" {
		t.Errorf("button on the login page = %q", b)
	}
	submit(t, ctx, chromedp.Click(chromedp.ID("sso-button")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("i0116")))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, f.ms.AuthorizeURL(ssoTenant)+"?") {
		t.Fatalf("the button led to %s, want the stand-in's authorize endpoint", loc)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("i0116"), upn), chromedp.SendKeys(chromedp.ID("i0118"), password))
	submit(t, ctx, chromedp.Click(chromedp.ID("idSIButton9")))
}

// TestBrowserSingleSignOn: an admin sets single sign-on up on its page; a person in the
// mapped group signs in through the stand-in and is a supervisor; a person in no mapped
// group is refused with advice, and created as an agent once the admin says so; with
// local passwords off, only the break-glass admin signs in with a password.
func TestBrowserSingleSignOn(t *testing.T) {
	f := newSSOFixture(t)
	ctx := testenv.Chromium(t)
	shots := screenshotDir(t)
	do(t, ctx, chromedp.EmulateViewport(screenshotWidth, screenshotHeight))
	passwordSignIn(t, ctx, f.srv.URL, "admin")

	// The admin's settings page.
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/users"), chromedp.WaitVisible(chromedp.ID("sso-settings-link")))
	submit(t, ctx, chromedp.Click(chromedp.ID("sso-settings-link")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("issuer")))
	if uri := get(t, ctx, chromedp.Text(chromedp.ID("redirect-uri"))); uri != f.srv.URL+sso.CallbackPath {
		t.Errorf("redirect URI on the page = %q", uri)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("issuer"), f.ms.OpenIDIssuer(ssoTenant)),
		chromedp.SendKeys(chromedp.ID("client_id"), f.app.ClientID()),
		chromedp.SendKeys(chromedp.ID("client_secret"), f.secret),
		chromedp.SendKeys(chromedp.CSS(`input[name=map_value]`), ssoSupervisors),
		chromedp.SetValue(chromedp.CSS(`select[name=map_role]`), store.RoleSupervisor),
		chromedp.Click(chromedp.ID("auto_create")),
	)
	screenshot(t, ctx, shots, "01-settings")
	submit(t, ctx, chromedp.Click(chromedp.ID("save")))
	if notice := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); notice != "Single sign-on settings saved." {
		html := get(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("after saving: %q\n%s", notice, html)
	}
	html := get(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(html, f.secret) {
		t.Error("the client secret is in the settings page")
	}

	// Sofia, in the supervisors group, signs in and is a supervisor (who lands on the work
	// item list).
	f.signInWithMicrosoft(t, ctx, "sofia@fabrikam.example", "sofia-pw")
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".who")))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, f.srv.URL+"/workitems") {
		t.Errorf("a supervisor lands at %s, want /workitems", loc)
	}
	if who := get(t, ctx, chromedp.Text(chromedp.CSS(".who"))); !strings.Contains(who, "Sofia Supervisor") || !strings.Contains(who, "supervisor") {
		t.Errorf("signed in as %q, want Sofia Supervisor, supervisor", who)
	}
	screenshot(t, ctx, shots, "02-signed-in-supervisor")
	u, err := f.st.UserByUsername(context.Background(), "sofia@fabrikam.example")
	if err != nil || u.Role != store.RoleSupervisor {
		t.Errorf("stored user %+v %v, want a supervisor", u, err)
	}

	// An id token meant for another application, and one signed by a key the stand-in no
	// longer publishes after a rotation, are refused with advice; nobody is signed in.
	for _, c := range []struct {
		fault mstest.IDTokenFault
		want  string
	}{
		{mstest.IDTokenFault{Audience: "00000000-1111-2222-3333-444444444444"}, "meant for another application"},
		{mstest.IDTokenFault{RetiredKey: true}, "not signed with a key the sign-in service publishes"},
	} {
		if c.fault.RetiredKey {
			if _, err := f.ms.RotateSigningKey(0); err != nil {
				t.Fatal(err)
			}
		}
		f.ms.SpoilNextIDToken(c.fault)
		f.signInWithMicrosoft(t, ctx, "sofia@fabrikam.example", "sofia-pw")
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("login-error")))
		if msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, c.want) {
			t.Errorf("refusal on the page = %q, want %q", msg, c.want)
		}
		if signedIn := get(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector("form.signout")`)); signedIn {
			t.Error("signed in with a refused id token")
		}
	}
	screenshot(t, ctx, shots, "03-token-refused")

	// Noah, in no mapped group, is refused with advice.
	f.signInWithMicrosoft(t, ctx, "noah@fabrikam.example", "noah-pw")
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("login-error")))
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "none of your groups or roles gives you a role") || !strings.Contains(msg, "Ask an administrator") {
		t.Errorf("refusal on the page = %q", msg)
	}
	screenshot(t, ctx, shots, "04-no-group-refused")

	// Once people in no group become agents, Noah is created as one.
	c, err := f.svc.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.UnmappedRole = store.RoleAgent
	if _, err := f.svc.Save(context.Background(), "admin", sso.Input{Config: c}); err != nil {
		t.Fatal(err)
	}
	f.signInWithMicrosoft(t, ctx, "noah@fabrikam.example", "noah-pw")
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".who")))
	if who := get(t, ctx, chromedp.Text(chromedp.CSS(".who"))); !strings.Contains(who, "Noah Newcomer") || !strings.Contains(who, "agent") {
		t.Errorf("signed in as %q, want Noah Newcomer, agent", who)
	}
	if loc := get(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, f.srv.URL+"/my") {
		t.Errorf("an agent lands at %s, want /my", loc)
	}

	// Local passwords off: Ana's password is refused with advice, the break-glass admin's
	// is not.
	c.LocalPasswordsOff, c.BreakGlass = true, []string{"admin"}
	if _, err := f.svc.Save(context.Background(), "admin", sso.Input{Config: c}); err != nil {
		t.Fatal(err)
	}
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.signout button")))
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("user"), "ana"), chromedp.SendKeys(chromedp.ID("password"), testPassword))
	submit(t, ctx, chromedp.Click(chromedp.CSS(".login button[type=submit]")))
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "Passwords are switched off") || !strings.Contains(msg, "Sign in with Microsoft") {
		t.Errorf("password refusal = %q", msg)
	}
	screenshot(t, ctx, shots, "05-passwords-off")
	passwordSignIn(t, ctx, f.srv.URL, "admin")
}

// passwordSignIn signs in with the password form and waits for the signed-in header (the
// work item list of this fixture is empty).
func passwordSignIn(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("user"), user), chromedp.SendKeys(chromedp.ID("password"), testPassword))
	submit(t, ctx, chromedp.Click(chromedp.CSS(".login button[type=submit]")))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".who")))
}

// TestSSOPasswordsOffOnPages: the password form answers 403 with advice for everyone but
// the break-glass admin; the callback without a sign-in in progress says to start again.
func TestSSOPasswordsOffOnPages(t *testing.T) {
	f := newSSOFixture(t)
	if _, err := f.svc.Save(context.Background(), "admin", sso.Input{Config: sso.Config{Issuer: f.ms.OpenIDIssuer(ssoTenant),
		ClientID: f.app.ClientID(), LocalPasswordsOff: true, BreakGlass: []string{"admin"}}, ClientSecret: vault.NewSecret(f.secret)}); err != nil {
		t.Fatal(err)
	}
	login := func(user string) webPage {
		c := f.httpClient(t)
		form := c.get("/login")
		return c.post("/login", url.Values{"csrf": {form.csrf(t)}, "user": {user}, "password": {testPassword}})
	}
	if p := login("ana"); p.status != http.StatusForbidden || !strings.Contains(p.body, "Passwords are switched off") {
		t.Errorf("ana's password sign-in: %d %s", p.status, p.body)
	}
	if p := login("admin"); p.status != http.StatusSeeOther {
		t.Errorf("break-glass admin's password sign-in: %d", p.status)
	}
	resp, err := http.Get(f.srv.URL + sso.CallbackPath + "?" + url.Values{"state": {"forged"}, "code": {"x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a sign-in: %d, want 400", resp.StatusCode)
	}
	// The discovery document is the provider's (the stand-in's), never postroom's.
	resp, err = http.Get(f.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("postroom's /.well-known/openid-configuration: %d, want 404", resp.StatusCode)
	}
}

// TestSSOSettingsPage: only admins see the settings; a bad issuer and a changed issuer
// without the secret are shown at their fields, with nothing saved.
func TestSSOSettingsPage(t *testing.T) {
	f := newSSOFixture(t)
	if _, err := f.auth.EnsureUser(context.Background(), "sam", "Sam", store.RoleSupervisor, testPassword); err != nil {
		t.Fatal(err)
	}
	if p := f.httpClient(t).get(sso.StartPath); p.status != http.StatusNotFound || !strings.Contains(p.body, "Single sign-on is not configured") {
		t.Errorf("the start before single sign-on is set up: %d\n%s", p.status, p.body)
	}
	if p := f.httpClient(t).get("/login"); strings.Contains(p.body, "sso-button") {
		t.Error("a single sign-on button before single sign-on is set up")
	}
	if p := f.signIn(t, "sam").get("/settings/sso"); p.status != http.StatusForbidden {
		t.Errorf("a supervisor opens the settings: %d", p.status)
	}
	admin := f.signIn(t, "admin")
	page := admin.get("/settings/sso")
	if page.status != http.StatusOK || !strings.Contains(page.body, f.srv.URL+sso.CallbackPath) {
		t.Fatalf("settings page: %d\n%s", page.status, page.body)
	}
	p := admin.post("/settings/sso", url.Values{"csrf": {page.csrf(t)}, "issuer": {"http://login.example.org/t/v2.0"}, "client_id": {"x"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "must start with https://") {
		t.Errorf("bad issuer: %d\n%s", p.status, p.body)
	}
	p = admin.post("/settings/sso", url.Values{"csrf": {page.csrf(t)}, "issuer": {f.ms.OpenIDIssuer(ssoTenant)}, "client_id": {f.app.ClientID()},
		"client_secret": {f.secret}, "map_value": {ssoSupervisors, ""}, "map_role": {"supervisor", ""}, "map_team": {"", ""}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	p = admin.post("/settings/sso", url.Values{"csrf": {page.csrf(t)}, "issuer": {f.ms.LoginURL() + "/fabrikam.example/v2.0"}, "client_id": {f.app.ClientID()}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "enter the client secret again") {
		t.Errorf("issuer changed without the secret: %d\n%s", p.status, p.body)
	}
	c, err := f.svc.Config(context.Background())
	if err != nil || c.Issuer != f.ms.OpenIDIssuer(ssoTenant) || len(c.Mappings) != 1 {
		t.Errorf("stored %+v %v", c, err)
	}
	if strings.Contains(admin.get("/settings/sso").body, f.secret) {
		t.Error("the client secret is on the page")
	}
}
