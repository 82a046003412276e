package sso

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

const (
	tenantID    = "5d8f7a2c-1b3e-4c6d-9e0f-a1b2c3d4e5f6"
	redirectURI = "http://127.0.0.1:9/sso/callback"
	supervisors = "0b1c2d3e-4f50-4617-8283-949596979899" // a group's object id
	agentsGroup = "11111111-aaaa-4bbb-8ccc-dddddddddddd"
)

type fixture struct {
	ms     *mstest.Server
	app    *mstest.App
	secret string
	st     store.Store
	svc    *Service
	ana    *mstest.User // in the supervisors group
	bo     *mstest.User // in no group
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	tn, err := ms.AddTenant(tenantID, "fabrikam.example")
	if err != nil {
		t.Fatal(err)
	}
	app, err := tn.AddApp(mstest.AppConfig{DisplayName: "postroom", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	secret := "sso8Q~" + strings.Repeat("x", 30)
	app.AddSecret(secret, time.Now().Add(24*time.Hour))
	ana, err := tn.AddUser(mstest.UserConfig{UPN: "ana@fabrikam.example", DisplayName: "Ana Lima", Password: "ana-pw"})
	if err != nil {
		t.Fatal(err)
	}
	ana.SetGroups(supervisors)
	bo, err := tn.AddUser(mstest.UserConfig{UPN: "bo@fabrikam.example", DisplayName: "Bo", Password: "bo-pw"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(make([]byte, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewService(st, nil)
	if _, err := a.EnsureUser(t.Context(), "root", "Root", store.RoleAdmin, "root-password-1"); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Store: st, Vault: v, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ms: ms, app: app, secret: secret, st: st, svc: svc, ana: ana, bo: bo}
	f.save(t, func(c *Input) {})
	return f
}

// save stores the standard configuration changed by edit.
func (f *fixture) save(t *testing.T, edit func(c *Input)) Config {
	t.Helper()
	in := Input{Config: Config{Issuer: f.ms.OpenIDIssuer(tenantID), ClientID: f.app.ClientID(), AutoCreate: true,
		Mappings: []Mapping{{Value: supervisors, Role: store.RoleSupervisor}, {Value: agentsGroup, Role: store.RoleAgent}}},
		ClientSecret: vault.NewSecret(f.secret)}
	edit(&in)
	c, err := f.svc.Save(t.Context(), "root", in)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return c
}

var (
	flowRe   = regexp.MustCompile(`name="flow" value="([^"]+)"`)
	actionRe = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// signInAt drives the stand-in's sign-in page like a browser and returns the callback
// query the provider redirected to.
func signInAt(t *testing.T, authURL, user, password string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fm, am := flowRe.FindSubmatch(body), actionRe.FindSubmatch(body)
	if fm == nil || am == nil {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(authURL)
	action := u.Scheme + "://" + u.Host + html.UnescapeString(string(am[1]))
	resp, err = client.PostForm(action, url.Values{"flow": {string(fm[1])}, "step": {"signin"}, "loginfmt": {user}, "passwd": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURI+"?") {
		t.Fatalf("sign-in: %d %q %s", resp.StatusCode, loc, body)
	}
	cb, _ := url.Parse(loc)
	return cb.Query()
}

// signIn runs a whole sign-in of user through the stand-in.
func (f *fixture) signIn(t *testing.T, user, password string) (Result, error) {
	t.Helper()
	st, err := f.svc.Start(t.Context(), redirectURI, "/board")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	q := signInAt(t, st.URL, user, password)
	return f.svc.Finish(t.Context(), Callback{Query: q, Browser: st.Browser, ClientAddress: "192.0.2.7:51234"})
}

func wantRefusal(t *testing.T, err error, reason, message string) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("err = %v, want a refusal (%s)", err, reason)
	}
	if !strings.Contains(r.Reason, reason) || !strings.Contains(r.Message, message) {
		t.Errorf("refusal reason %q message %q, want %q and %q", r.Reason, r.Message, reason, message)
	}
	if r.Status < 400 || r.Status >= 600 || r.Status == 500 {
		t.Errorf("status %d", r.Status)
	}
	return r
}

func lastAudit(t *testing.T, st store.Store, action string) store.AuditEvent {
	t.Helper()
	list, err := st.ListAudit(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Action == action {
			return e
		}
	}
	t.Fatalf("no %s audit event in %+v", action, list)
	return store.AuditEvent{}
}

// TestSignInMapsGroupToRole: a person in the supervisors group signs in for the first
// time, is created as a supervisor, gets a session and the page they came for; the
// sign-in is audited with the address.
func TestSignInMapsGroupToRole(t *testing.T) {
	f := newFixture(t)
	res, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if res.User.Username != "ana@fabrikam.example" || res.User.Role != store.RoleSupervisor || res.User.DisplayName != "Ana Lima" {
		t.Errorf("user %+v", res.User)
	}
	if res.Token == "" || res.Next != "/board" {
		t.Errorf("token %q next %q", res.Token, res.Next)
	}
	if _, err := f.st.SessionByTokenHash(t.Context(), auth.HashToken(res.Token)); err != nil {
		t.Errorf("session not stored: %v", err)
	}
	e := lastAudit(t, f.st, "login.success")
	if e.Object != "user:ana@fabrikam.example" || e.New != "address=192.0.2.7 method=sso" {
		t.Errorf("audit %+v", e)
	}

	// The same person again is the same user, found by their identity; leaving the group
	// for the agents group makes them an agent at the next sign-in.
	f.ana.SetGroups(agentsGroup)
	res2, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
	if err != nil {
		t.Fatal(err)
	}
	if res2.User.ID != res.User.ID || res2.User.Role != store.RoleAgent {
		t.Errorf("second sign-in: user %d role %s, want %d agent", res2.User.ID, res2.User.Role, res.User.ID)
	}
	ids, err := f.st.IdentitiesOf(t.Context(), res.User.ID)
	if err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0].Subject, "oid:") {
		t.Errorf("identities %+v %v, want one by object id", ids, err)
	}
}

// TestUnmappedPerson: a person in no mapped group is refused, or created as an agent when
// the administrator says so; without automatic creation an unknown person is told to ask
// an administrator.
func TestUnmappedPerson(t *testing.T) {
	f := newFixture(t)
	_, err := f.signIn(t, "bo@fabrikam.example", "bo-pw")
	wantRefusal(t, err, "no mapped group", "none of your groups or roles gives you a role")
	if e := lastAudit(t, f.st, "login.failure"); !strings.Contains(e.New, "reason=no mapped group") || !strings.Contains(e.New, "address=192.0.2.7") {
		t.Errorf("audit %+v", e)
	}

	f.save(t, func(c *Input) { c.UnmappedRole = store.RoleAgent; c.ClientSecret = vault.Secret{} })
	res, err := f.signIn(t, "bo@fabrikam.example", "bo-pw")
	if err != nil {
		t.Fatal(err)
	}
	if res.User.Role != store.RoleAgent {
		t.Errorf("role %s, want agent", res.User.Role)
	}

	f.save(t, func(c *Input) { c.AutoCreate = false; c.ClientSecret = vault.Secret{} })
	_, err = f.signIn(t, "ana@fabrikam.example", "ana-pw")
	wantRefusal(t, err, "automatic creation is off", "Ask an administrator to create your user")

	// An existing user of that name is matched the first time, and linked.
	if _, err := f.st.CreateUser(t.Context(), store.User{Username: "ana@fabrikam.example", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	res, err = f.signIn(t, "ana@fabrikam.example", "ana-pw")
	if err != nil {
		t.Fatal(err)
	}
	if res.User.Role != store.RoleSupervisor {
		t.Errorf("existing user's role %s, want supervisor from the group", res.User.Role)
	}
}

// TestIDTokenRefused: an id token with a wrong audience, issuer or nonce, an expired one
// and one signed by a key no longer in the JWKS are each refused with a clear message.
func TestIDTokenRefused(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name            string
		fault           mstest.IDTokenFault
		reason, message string
	}{
		{"audience", mstest.IDTokenFault{Audience: "00000000-1111-2222-3333-444444444444"}, "wrong audience", "meant for another application"},
		{"issuer", mstest.IDTokenFault{Issuer: "https://evil.example/v2.0"}, "wrong issuer", "issued by another provider"},
		{"nonce", mstest.IDTokenFault{Nonce: "replayed"}, "wrong nonce", "belongs to another sign-in"},
		{"expired", mstest.IDTokenFault{Expired: true}, "expired", "has expired"},
		{"retired key", mstest.IDTokenFault{RetiredKey: true}, "signature", "not signed with a key the sign-in service publishes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.ms.SpoilNextIDToken(c.fault)
			res, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
			wantRefusal(t, err, c.reason, c.message)
			if res.Token != "" {
				t.Error("a session was started")
			}
			if e := lastAudit(t, f.st, "login.failure"); !strings.Contains(e.New, c.reason) {
				t.Errorf("audit %+v", e)
			}
		})
	}
}

// TestKeyRotation: after a rotation the new key signs and sign-in works; a token signed
// by a key removed after its grace is refused.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	if _, err := f.signIn(t, "ana@fabrikam.example", "ana-pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ms.RotateSigningKey(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.signIn(t, "ana@fabrikam.example", "ana-pw"); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if _, err := f.ms.RotateSigningKey(0); err != nil { // the previous keys leave the JWKS now
		t.Fatal(err)
	}
	f.ms.SpoilNextIDToken(mstest.IDTokenFault{RetiredKey: true})
	_, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
	wantRefusal(t, err, "signature", "not signed with a key")
}

// TestCallbackChecks: a callback from another browser, a state used twice and the
// provider's error are refused with advice.
func TestCallbackChecks(t *testing.T) {
	f := newFixture(t)
	st, err := f.svc.Start(t.Context(), redirectURI, "/")
	if err != nil {
		t.Fatal(err)
	}
	q := signInAt(t, st.URL, "ana@fabrikam.example", "ana-pw")
	_, err = f.svc.Finish(t.Context(), Callback{Query: q, Browser: "someone-else", ClientAddress: "192.0.2.9:1"})
	wantRefusal(t, err, "another browser", "started in another browser")
	_, err = f.svc.Finish(t.Context(), Callback{Query: q, Browser: st.Browser})
	wantRefusal(t, err, "unknown, used or expired", "sign in again")

	st, _ = f.svc.Start(t.Context(), redirectURI, "/")
	state := mustQuery(t, st.URL).Get("state")
	_, err = f.svc.Finish(t.Context(), Callback{Browser: st.Browser, Query: url.Values{"state": {state}, "error": {"access_denied"},
		"error_description": {"AADSTS65004: User declined to consent to access the app.\r\nTrace ID: x"}}})
	wantRefusal(t, err, "access_denied", "AADSTS65004: User declined")
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestPasswordsOff: with local passwords off, only the break-glass admins may use one.
func TestPasswordsOff(t *testing.T) {
	f := newFixture(t)
	if st, _ := f.svc.PasswordRefusal(t.Context(), "ana"); st != 0 {
		t.Errorf("passwords refused while allowed: %d", st)
	}
	f.save(t, func(c *Input) {
		c.LocalPasswordsOff = true
		c.BreakGlass = []string{"root"}
		c.ClientSecret = vault.Secret{}
	})
	st, msg := f.svc.PasswordRefusal(t.Context(), "ana")
	if st != http.StatusForbidden || !strings.Contains(msg, "Passwords are switched off") || !strings.Contains(msg, "Sign in with Microsoft") {
		t.Errorf("refusal %d %q", st, msg)
	}
	if st, _ := f.svc.PasswordRefusal(t.Context(), " ROOT"); st != 0 {
		t.Errorf("break-glass admin refused: %d", st)
	}
	var nilSvc *Service
	if st, _ := nilSvc.PasswordRefusal(t.Context(), "ana"); st != 0 || nilSvc.Button(t.Context()) != "" {
		t.Error("a nil service refuses")
	}
	if b := f.svc.Button(t.Context()); b != "Sign in with Microsoft" {
		t.Errorf("button %q", b)
	}
}

// TestSaveRules: bad settings are refused field by field; a changed issuer needs the
// secret again; the secret is never in the stored configuration or the audit log.
func TestSaveRules(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	base := func() Input {
		return Input{Config: Config{Issuer: f.ms.OpenIDIssuer(tenantID), ClientID: f.app.ClientID()}}
	}
	check := func(in Input, field, want string) {
		t.Helper()
		_, err := f.svc.Save(ctx, "root", in)
		var fe FieldErrors
		if !errors.As(err, &fe) || !strings.Contains(fe[field], want) {
			t.Errorf("Save: %v, want %s: %q", err, field, want)
		}
	}
	in := base()
	in.Issuer = "http://login.example.org/t/v2.0"
	check(in, "issuer", "must start with https://")
	in = base()
	in.Issuer = f.ms.OpenIDIssuer("6d8f7a2c-1b3e-4c6d-9e0f-a1b2c3d4e5f6")
	in.ClientSecret = vault.NewSecret("new")
	check(in, "issuer", "could not read the OpenID configuration")
	in = base()
	in.Issuer = f.ms.LoginURL() + "/fabrikam.example/v2.0" // a different issuer: the secret is not sent there
	check(in, "client_secret", "enter the client secret again")
	in = base()
	in.LocalPasswordsOff = true
	check(in, "break_glass", "name at least one break-glass administrator")
	in.BreakGlass = []string{"nobody"}
	check(in, "break_glass", `there is no user "nobody"`)
	in = base()
	in.Mappings = []Mapping{{Value: "g", Role: "boss"}}
	check(in, "mappings[0]", `role "boss" is unknown`)
	in.Mappings = []Mapping{{Value: "g", Team: "Nope"}}
	check(in, "mappings[0]", `there is no team "Nope"`)

	raw, err := f.st.Setting(ctx, settingConfig)
	if err != nil || strings.Contains(raw, f.secret) {
		t.Errorf("stored configuration %q %v", raw, err)
	}
	list, _ := f.st.ListAudit(ctx, 50)
	for _, e := range list {
		if strings.Contains(e.Old+e.New, f.secret) {
			t.Errorf("secret in audit %+v", e)
		}
	}
	c, err := f.svc.Config(ctx)
	if err != nil || !c.ClientSecretSet || c.SecretIssuer != f.ms.OpenIDIssuer(tenantID) {
		t.Errorf("config %+v %v", c, err)
	}
}

// TestFirstTimeNames: Entra ID's UPN and email may match an existing user the first time;
// another provider's email only when it says it verified it, and its preferred_username
// never.
func TestFirstTimeNames(t *testing.T) {
	entra := claims{Subject: "s", ObjectID: "o", TenantID: "t", PreferredUsername: "ana@fabrikam.example", Email: "ana@fabrikam.example"}
	if got := firstTimeNames(entra); len(got) != 2 {
		t.Errorf("Entra ID: %v", got)
	}
	other := claims{Subject: "s", PreferredUsername: "admin", Email: "admin@example.org"}
	if got := firstTimeNames(other); len(got) != 0 {
		t.Errorf("unverified email of another provider: %v", got)
	}
	other.EmailVerified = true
	if got := firstTimeNames(other); len(got) != 1 || got[0] != "admin@example.org" {
		t.Errorf("verified email of another provider: %v", got)
	}
}

// TestNoTakeOverOfLinkedUser: a second person whose name matches a user linked to someone
// else at this issuer is not given that user; a break-glass admin keeps their role.
func TestNoTakeOverOfLinkedUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	res, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another person of the same tenant with ana's address as their email claim.
	cl := claims{Subject: "x", ObjectID: "99999999-0000-4000-8000-000000000000", TenantID: tenantID,
		PreferredUsername: "eve@fabrikam.example", Email: "ana@fabrikam.example", Groups: []string{supervisors}}
	u, _, err := f.svc.userFor(ctx, c, cl)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == res.User.ID {
		t.Errorf("eve was given ana's user")
	}

	// root is break-glass and in no admin group: signing in keeps root an admin (another
	// admin exists, so the last-admin rule would not stop a demotion).
	if _, err := f.st.CreateUser(ctx, store.User{Username: "ada", Role: store.RoleAdmin, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	c.BreakGlass = []string{"root"}
	rootClaims := claims{Subject: "r", ObjectID: "88888888-0000-4000-8000-000000000000", TenantID: tenantID, PreferredUsername: "root", Groups: []string{agentsGroup}}
	u, _, err = f.svc.userFor(ctx, c, rootClaims)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "root" || u.Role != store.RoleAdmin {
		t.Errorf("break-glass admin after sign-in: %s %s", u.Username, u.Role)
	}
}

// TestTeamsFromGroups: a mapping with a team puts the person in it; leaving the group
// takes them out at the next sign-in.
func TestTeamsFromGroups(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	billing, err := f.st.CreateTeam(ctx, "Billing")
	if err != nil {
		t.Fatal(err)
	}
	f.save(t, func(c *Input) {
		c.Mappings = append(c.Mappings, Mapping{Value: supervisors, Team: "billing"})
		c.ClientSecret = vault.Secret{}
	})
	res, err := f.signIn(t, "ana@fabrikam.example", "ana-pw")
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.st.UserByID(ctx, res.User.ID)
	if err != nil || len(u.Teams) != 1 || u.Teams[0] != billing.ID || u.Role != store.RoleSupervisor {
		t.Errorf("user %+v %v, want a supervisor in Billing", u, err)
	}
	f.ana.SetGroups(agentsGroup)
	if _, err := f.signIn(t, "ana@fabrikam.example", "ana-pw"); err != nil {
		t.Fatal(err)
	}
	u, err = f.st.UserByID(ctx, res.User.ID)
	if err != nil || len(u.Teams) != 0 || u.Role != store.RoleAgent {
		t.Errorf("after leaving the group: %+v %v, want an agent in no team", u, err)
	}
}

// TestRoleFromAppRole: an app role in the roles claim maps like a group; the highest
// role mapped wins.
func TestRoleFromAppRole(t *testing.T) {
	f := newFixture(t)
	f.save(t, func(c *Input) {
		c.Mappings = append(c.Mappings, Mapping{Value: "Postroom.Admin", Role: store.RoleAdmin})
		c.ClientSecret = vault.Secret{}
	})
	f.bo.SetAppRoles("Postroom.Admin")
	f.bo.SetGroups(agentsGroup)
	res, err := f.signIn(t, "bo@fabrikam.example", "bo-pw")
	if err != nil {
		t.Fatal(err)
	}
	if res.User.Role != store.RoleAdmin {
		t.Errorf("role %s, want admin from the app role", res.User.Role)
	}
}
