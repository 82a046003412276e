package diag_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// msEnv is one stand-in of Microsoft's cloud and one real Dovecot that takes its tokens
// through introspection (IMAP, POP3 and submission relaying to smtp-sink). Every case gets
// a tenant of its own, so one case's faults never reach another.
type msEnv struct {
	s     *mstest.Server
	d     *testenv.Dovecot
	roots *x509.CertPool
}

func startMS(t *testing.T) *msEnv {
	t.Helper()
	s := startStandIn(t)
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: s.IntrospectURL(), SubmissionRelay: sink.Addr})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return &msEnv{s: s, d: d, roots: roots}
}

func startStandIn(t *testing.T) *mstest.Server {
	t.Helper()
	s, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tenant is one case's directory: an app with a secret, every permission the product uses
// and admin consent; a shared mailbox the app holds FullAccess on, with two messages; a
// person who may sign in and holds FullAccess on the shared mailbox.
type tenant struct {
	s        *mstest.Server
	t        *mstest.Tenant
	app      *mstest.App
	sp       string // the app's service principal object id
	secret   string
	secretID string
	shared   string // support@tN.example
	sharedMB *mstest.User
	user     *mstest.User
	userPW   string
}

var tenantSeq struct {
	sync.Mutex
	n int
}

func newTenant(t *testing.T, s *mstest.Server) *tenant {
	t.Helper()
	tenantSeq.Lock()
	tenantSeq.n++
	n := tenantSeq.n
	tenantSeq.Unlock()
	domain := fmt.Sprintf("t%d.example", n)
	tn, err := s.AddTenant(mstest.NewGUID(), domain)
	if err != nil {
		t.Fatal(err)
	}
	sp := mstest.NewGUID()
	app, err := tn.AddApp(mstest.AppConfig{
		DisplayName: "postroom diag test",
		Roles: []string{mstest.RoleMailReadWrite, mstest.RoleMailSend, mstest.RoleIMAPAccessAsApp,
			mstest.RolePOPAccessAsApp, mstest.RoleSMTPSendAsApp},
		Scopes: []string{mstest.ScopeGraphMailReadWriteShared, mstest.ScopeGraphMailSendShared, mstest.ScopeGraphUserRead,
			mstest.ScopeIMAP, mstest.ScopePOP, mstest.ScopeSMTP, mstest.ScopeOfflineAccess},
		AdminConsent:       true,
		ServicePrincipalID: sp,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &tenant{s: s, t: tn, app: app, sp: sp, secret: fmt.Sprintf("Sx8Q~diag-secret-value-%d-%s", n, mstest.NewGUID()[:8]),
		shared: "support@" + domain, userPW: fmt.Sprintf("agent-Pw-%d-secret", n)}
	f.secretID = app.AddSecret(f.secret, time.Now().Add(10*365*24*time.Hour))
	if f.sharedMB, err = tn.AddSharedMailbox(f.shared, "Support"); err != nil {
		t.Fatal(err)
	}
	app.GrantFullAccess(f.shared)
	f.user, err = tn.AddUser(mstest.UserConfig{UPN: "agent@" + domain, DisplayName: "Agent", Password: f.userPW})
	if err != nil {
		t.Fatal(err)
	}
	f.user.GrantFullAccess(f.shared)
	f.user.GrantSendAs(f.shared)
	for i := range 2 {
		if _, err := s.Deliver(f.shared, "inbox", mstest.SampleMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// graph is a Graph mailbox of the tenant signing in as the app.
func (f *tenant) graph(dir string) store.Mailbox {
	m := store.Mailbox{Name: "support", Direction: dir, Protocol: "graph", Address: f.shared, Login: f.shared,
		Auth: store.AuthOAuthApp, GraphURL: f.s.GraphURL(), ClientSecretSet: true,
		OAuth: store.OAuth{Provider: "microsoft", Cloud: "custom", AuthorityURL: f.s.LoginURL(),
			Tenant: f.t.ID(), ClientID: f.app.ClientID()}}
	if dir == store.Inbound {
		m.Folder, m.AfterAction = "Inbox", store.AfterMarkRead
	}
	return m
}

// exchange is an IMAP, POP3 or SMTP mailbox of the tenant at Dovecot, signing in as the app.
func (f *tenant) exchange(t *testing.T, e *msEnv, protocol string) store.Mailbox {
	m := store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: protocol, Address: f.shared, Login: f.shared,
		Auth: store.AuthOAuthApp, ClientSecretSet: true, Folder: "INBOX", AfterAction: store.AfterMarkRead,
		OAuth: store.OAuth{Provider: "microsoft", Cloud: "custom", AuthorityURL: f.s.LoginURL(),
			Tenant: f.t.ID(), ClientID: f.app.ClientID()}}
	addr, sec := e.d.IMAPSAddr, "tls"
	switch protocol {
	case "pop3":
		addr = e.d.POP3SAddr
	case "smtp":
		addr, sec = e.d.SubmissionAddr, "starttls"
		m.Direction, m.Folder, m.AfterAction = store.Outbound, "", ""
	}
	m.Host, m.Port = hostPort(t, addr)
	m.Security = sec
	return m
}

// creds are what a case's token source signs in with.
type creds struct {
	secret   string // client secret ("" = none)
	cert     *credential.Certificate
	password string // ROPC
	refresh  string // delegated
}

// seen collects every secret a case handed out or got back, to check none is in a report.
type seen struct {
	mu     sync.Mutex
	values []string
}

func (s *seen) add(v string) {
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, v)
}

func (s *seen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...)
}

// tokenSource builds m's TokenFunc the way credential.Tokens does, recording every token.
func tokenSource(t *testing.T, m store.Mailbox, c creds, rec *seen) connector.TokenFunc {
	t.Helper()
	rec.add(c.secret)
	rec.add(c.password)
	rec.add(c.refresh)
	plan, err := credential.PlanFor(m, credential.AudienceOf(m.Protocol))
	if err != nil {
		t.Fatal(err)
	}
	cfg := credential.OAuthConfig{TokenURL: plan.TokenURL, ClientID: m.OAuth.ClientID, ClientSecret: vault.NewSecret(c.secret), Scopes: plan.Scopes}
	if c.secret == "" {
		cfg.ClientSecret = vault.Secret{}
	}
	if c.cert != nil {
		cert := *c.cert
		cfg.Assertion = func() (string, error) { return cert.Assertion(m.OAuth.ClientID, plan.TokenURL, time.Now()) }
	}
	var fn connector.TokenFunc
	switch m.Auth {
	case store.AuthOAuthApp:
		fn = credential.ClientCredentials(cfg)
	case store.AuthOAuthROPC:
		fn = credential.ResourceOwnerPassword(cfg, m.Login, vault.NewSecret(c.password))
	default:
		fn = credential.RefreshToken(cfg, vault.NewSecret(c.refresh), func(_ context.Context, r vault.Secret) error {
			rec.add(r.Reveal())
			return nil
		})
	}
	return func(ctx context.Context, refresh bool) (string, error) {
		tok, err := fn(ctx, refresh)
		rec.add(tok)
		return tok, err
	}
}

// signInOnce gets a refresh token for the tenant's person (as "Sign in with Microsoft"
// leaves one), with the scopes m's delegated sign-in asks for.
func (f *tenant) signInOnce(t *testing.T, m store.Mailbox) string {
	t.Helper()
	return f.signInAs(t, m, f.user.UPN(), f.userPW)
}

// signInAs gets a refresh token for upn.
func (f *tenant) signInAs(t *testing.T, m store.Mailbox, upn, password string) string {
	t.Helper()
	plan, err := credential.PlanFor(m, credential.AudienceOf(m.Protocol))
	if err != nil {
		t.Fatal(err)
	}
	return f.signInWith(t, plan.TokenURL, upn, password, plan.Scopes...)
}

// signInWith gets a refresh token for upn with the given scopes.
func (f *tenant) signInWith(t *testing.T, tokenURL, upn, password string, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret},
		"username": {upn}, "password": {password}, "scope": {strings.Join(scopes, " ")}}
	resp, err := http.PostForm(tokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body mstest.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.RefreshToken == "" {
		t.Fatalf("sign-in for a refresh token: HTTP %d, %v", resp.StatusCode, err)
	}
	return body.RefreshToken
}

// msCase is one row: it sets the stand-in up to fail one way (or not at all).
type msCase struct {
	name string
	// setup builds the mailbox and credentials; it may break the tenant.
	setup func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds)
	// server: the case needs a stand-in of its own (it moves the clock).
	ownServer bool
	want      msWant
}

type msWant struct {
	last     string                         // name of the last step
	lastFor  func(m store.Mailbox) string   // or: computed from the case's mailbox
	fail     bool                           // the last step fails
	steps    []string                       // when set, every step's name in order
	stepsFor func(m store.Mailbox) []string // or: computed from the case's mailbox
	advice   []string                       // substrings of the last step's advice
	detail   []string                       // substrings of the last step's detail
	check    func(t *testing.T, f *tenant, rep diag.Report)
}

func runMS(t *testing.T, e *msEnv, cases []msCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := e.s
			if tc.ownServer {
				s = startStandIn(t)
			}
			f := newTenant(t, s)
			m, c := tc.setup(t, e, f)
			rec := &seen{}
			rec.add(f.secret)
			rec.add(f.userPW)
			w := tc.want
			if w.lastFor != nil {
				w.last = w.lastFor(m)
			}
			if w.stepsFor != nil {
				w.steps = w.stepsFor(m)
			}
			w.last = f.fill(w.last)
			w.steps = fillAll(f, w.steps)
			w.advice = fillAll(f, w.advice)
			w.detail = fillAll(f, w.detail)
			opts := &diag.Options{RootCAs: e.roots, Token: tokenSource(t, m, c, rec)}
			rep := diag.Test(context.Background(), m, vault.NewSecret(c.password), opts)
			checkMS(t, rep, w, rec.all())
			if w.check != nil {
				w.check(t, f, rep)
			}
		})
	}
}

// checkMS checks what an administrator sees: the steps stop at the first failure, a
// failed step has detail and advice, a passing one no advice, and no secret anywhere.
func checkMS(t *testing.T, rep diag.Report, w msWant, secrets []string) {
	t.Helper()
	dump := func() string {
		var b strings.Builder
		for _, s := range rep.Steps {
			fmt.Fprintf(&b, "\n  %-50q ok=%v\n      detail=%q\n      advice=%q", s.Name, s.OK, s.Detail, s.Advice)
		}
		return b.String()
	}
	t.Logf("report:%s", dump())
	if len(rep.Steps) == 0 {
		t.Fatal("no steps")
	}
	if w.steps != nil {
		var names []string
		for _, s := range rep.Steps {
			names = append(names, s.Name)
		}
		if strings.Join(names, " | ") != strings.Join(w.steps, " | ") {
			t.Fatalf("steps %q,\nwant %q", names, w.steps)
		}
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != w.last {
		t.Fatalf("last step %q, want %q", last.Name, w.last)
	}
	if rep.OK == w.fail {
		t.Fatalf("report OK = %v, want %v", rep.OK, !w.fail)
	}
	for i, s := range rep.Steps {
		isLast := i == len(rep.Steps)-1
		if wantOK := !(isLast && w.fail); s.OK != wantOK {
			t.Fatalf("step %q OK = %v, want %v", s.Name, s.OK, wantOK)
		}
		if s.OK && s.Advice != "" {
			t.Errorf("passing step %q has advice %q", s.Name, s.Advice)
		}
		if !s.OK && (s.Advice == "" || s.Detail == "") {
			t.Errorf("failed step %q lacks detail or advice", s.Name)
		}
	}
	for _, a := range w.advice {
		if !strings.Contains(last.Advice, a) {
			t.Errorf("advice of %q = %q\nwant it to contain %q", last.Name, last.Advice, a)
		}
	}
	for _, d := range w.detail {
		if !strings.Contains(last.Detail, d) {
			t.Errorf("detail of %q = %q\nwant it to contain %q", last.Name, last.Detail, d)
		}
	}
	noSecrets(t, rep, secrets)
}

// noSecrets fails when any secret appears anywhere in the report, as a whole or in JSON.
func noSecrets(t *testing.T, rep diag.Report, secrets []string) {
	t.Helper()
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	text := string(js) + fmt.Sprintf("%+v", rep)
	for _, s := range secrets {
		if len(s) < 8 {
			continue // too short to be told apart from ordinary words
		}
		if strings.Contains(text, s) {
			t.Fatalf("the report shows a secret or token (%d characters starting %q)", len(s), s[:4])
		}
	}
}

// appSteps are the steps of an app-only sign-in with a client secret, then more.
func appSteps(more ...string) func(m store.Mailbox) []string {
	return func(m store.Mailbox) []string {
		s := []string{reachStep(m), tenantStep(m), appStep(m), "Client secret", "Consent and permissions"}
		return append(s, more...)
	}
}

func hostOf(u string) string {
	p, _ := url.Parse(u)
	return p.Host
}

// closedURL is an http URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	return "http://127.0.0.1:" + strconv.Itoa(closedPort(t))
}

func appCreds(f *tenant) creds { return creds{secret: f.secret} }

// TestMicrosoftSignIn: each way the identity platform refuses (or half-accepts) a sign-in
// is named at its own step, with its own fix. No Graph request is needed for these.
func TestMicrosoftSignIn(t *testing.T) {
	e := startMS(t)
	notMicrosoft := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notMicrosoft.Close)
	cases := []msCase{
		{name: "authority unreachable", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.AuthorityURL = closedURL(t)
			return m, appCreds(f)
		}, want: msWant{lastFor: reachStep, fail: true, advice: []string{"postroom cannot reach", "allow this machine to connect out over HTTPS (port 443)"}}},
		{name: "authority is not Microsoft's sign-in service", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.AuthorityURL = notMicrosoft.URL
			return m, appCreds(f)
		}, want: msWant{last: "Reach the sign-in service at " + hostOf(notMicrosoft.URL), fail: true,
			advice: []string{"answered, but not as Microsoft's sign-in service: check the authority URL"}, detail: []string{"404"}}},
		{name: "tenant not found", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.Tenant = mstest.NewGUID()
			return m, appCreds(f)
		}, want: msWant{lastFor: tenantStep, fail: true, advice: []string{"Microsoft does not know the tenant", "copy the Directory (tenant) ID"}, detail: []string{"AADSTS90002"}}},
		{name: "tenant of another cloud", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.Tenant = mstest.NewGUID()
			f.s.AddOtherCloudTenant(m.OAuth.Tenant, mstest.CloudUSGov)
			return m, appCreds(f)
		}, want: msWant{lastFor: tenantStep, fail: true, advice: []string{"belongs to another Microsoft cloud than the one chosen", "choose the tenant's cloud (US Government or China) under Cloud"}, detail: []string{"AADSTS90038"}}},
		{name: "tenant neither id nor domain", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.Tenant = "contoso"
			return m, appCreds(f)
		}, want: msWant{last: "Tenant contoso", fail: true, advice: []string{`"contoso" is neither a tenant id nor a domain`}, detail: []string{"AADSTS900023"}}},
		{name: "tenant missing for an app sign-in", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.Tenant = ""
			return m, appCreds(f)
		}, want: msWant{last: "Tenant organizations", fail: true, advice: []string{"enter the Directory (tenant) ID"}, detail: []string{"AADSTS9001023"}}},
		{name: "app not registered in the tenant", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.ClientID = mstest.NewGUID()
			return m, appCreds(f)
		}, want: msWant{lastFor: appStep, fail: true, advice: []string{"there is no app with the client id", "copy the Application (client) ID"}, detail: []string{"AADSTS700016"}}},
		{name: "app disabled", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetDisabled(true)
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{lastFor: appStep, fail: true, advice: []string{`set "Enabled for users to sign in" to Yes`}, detail: []string{"AADSTS7000112"}}},
		{name: "client secret wrong (the Secret ID pasted)", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.graph(store.Inbound), creds{secret: f.secretID}
		}, want: msWant{last: "Client secret", fail: true, advice: []string{"paste the secret's Value", "not its Secret ID"}, detail: []string{"AADSTS7000215"}}},
		{name: "client secret expired", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.ExpireSecret(f.secret)
			m := f.graph(store.Inbound)
			m.OAuth.SecretExpiresAt = time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
			return m, appCreds(f)
		}, want: msWant{last: "Client secret", fail: true, advice: []string{"the client secret has expired: create a new one", "record its expiry date"},
			detail: []string{"AADSTS7000222", "recorded expiry 2026-01-31"},
			check: func(t *testing.T, _ *tenant, rep diag.Report) {
				if !rep.SecretExpired {
					t.Error("Report.SecretExpired not set")
				}
			}}},
		{name: "certificate not registered on the app", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			cert, key, err := mstest.NewCertificate("postroom", time.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			m := f.graph(store.Inbound)
			m.ClientSecretSet, m.CertificateSet = false, true
			return m, creds{cert: &credential.Certificate{Cert: cert, Key: key}}
		}, want: msWant{last: "Certificate", fail: true, advice: []string{"is not registered on this app", "Certificates & secrets > Certificates"}, detail: []string{"AADSTS700027"}}},
		{name: "certificate expired", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			cert, key, err := mstest.NewCertificate("postroom", time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			f.app.AddCertificate(cert)
			m := f.graph(store.Inbound)
			m.ClientSecretSet, m.CertificateSet = false, true
			return m, creds{cert: &credential.Certificate{Cert: cert, Key: key}}
		}, want: msWant{last: "Certificate", fail: true, advice: []string{"certificate has expired: make a new certificate"}, detail: []string{"AADSTS700027"}}},
		{name: "no admin consent: a token without roles", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetAdminConsent(false)
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{stepsFor: appSteps(), last: "Consent and permissions", fail: true,
			advice: []string{"admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration", "Grant admin consent for the tenant",
				"a new token or a new sign-in does not help"},
			detail: []string{"no roles"}}},
		{name: "Graph permission Mail.ReadWrite missing", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetRoles(mstest.RoleMailSend)
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"lacks the application permission Mail.ReadWrite", "Microsoft Graph > Application permissions > Mail.ReadWrite"},
			detail: []string{"roles: Mail.Send"}}},
		{name: "Exchange permission IMAP.AccessAsApp missing", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetRoles(mstest.RoleMailReadWrite, mstest.RoleSMTPSendAsApp)
			return f.exchange(t, e, "imap"), appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"lacks the application permission IMAP.AccessAsApp", "Office 365 Exchange Online > Application permissions"}}},
		{name: "EWS on premises: permission full_access_as_app missing", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetRoles(mstest.RoleIMAPAccessAsApp)
			m := f.exchange(t, e, "imap")
			m.Protocol, m.Folder = "ews", "inbox"
			f.s.AddServicePrincipalName("https://" + m.Host) // hybrid modern authentication: the token is for the server
			return m, appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"lacks the application permission full_access_as_app", "Office 365 Exchange Online > Application permissions"}}},
		{name: "wrong audience: an IMAP mailbox with Graph's scope", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.exchange(t, e, "imap")
			m.OAuth.Scopes = "https://graph.microsoft.com/.default"
			return m, appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"cannot be used with Exchange Online", "clear the custom scopes"}, detail: []string{"the token is for https://graph.microsoft.com"}}},
		{name: "wrong audience: a Graph mailbox with Exchange's scope", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.OAuth.Scopes = "https://outlook.office365.com/.default"
			return m, appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"cannot be used with Microsoft Graph", "clear the custom scopes"}, detail: []string{"the token is for https://outlook.office365.com"}}},
		{name: "sign-in service temporarily unavailable", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.s.FailTokenRequests(1)
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{lastFor: reachStep, fail: true, advice: []string{"temporary problem", "not a settings problem"}, detail: []string{"temporarily_unavailable"}}},

		// The password grant (ROPC).
		{name: "password grant: MFA required", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.MFARequired = true })
			return ropc(t, e, f), creds{secret: f.secret, password: f.userPW}
		}, want: msWant{lastFor: ropcStep, fail: true, advice: []string{"must use multi-factor authentication, which the password grant cannot do", "Sign in with Microsoft", "recommends against the password grant"}, detail: []string{"AADSTS50076"}}},
		{name: "password grant: MFA registration required", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.MFARegistrationRequired = true })
			return ropc(t, e, f), creds{secret: f.secret, password: f.userPW}
		}, want: msWant{lastFor: ropcStep, fail: true, advice: []string{"must register for multi-factor authentication", "recommends against the password grant"}, detail: []string{"AADSTS50079"}}},
		{name: "password grant: wrong password", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return ropc(t, e, f), creds{secret: f.secret, password: "not-the-Password-1"}
		}, want: msWant{lastFor: ropcStep, fail: true, advice: []string{"refused the login name or password", "recommends against the password grant"}, detail: []string{"AADSTS50126"}}},
		{name: "password grant: blocked by Conditional Access", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.ConditionalAccessBlock = true })
			return ropc(t, e, f), creds{secret: f.secret, password: f.userPW}
		}, want: msWant{lastFor: ropcStep, fail: true, advice: []string{"Conditional Access policy blocks this sign-in", "Sign-in logs"}, detail: []string{"AADSTS53003"}}},

		// A person's stored sign-in (refresh token).
		{name: "delegated: sign-in revoked", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.graph(store.Inbound), f)
			rt := f.signInOnce(t, m)
			if err := f.s.RevokeUserSessions(f.user.UPN()); err != nil {
				t.Fatal(err)
			}
			return m, creds{secret: f.secret, refresh: rt}
		}, want: msWant{lastFor: storedStep, fail: true, advice: []string{"revoked or has expired", "sign in again"}, detail: []string{"AADSTS50173"}}},
		{name: "delegated: sign-in unused for 90 days", ownServer: true, setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.graph(store.Inbound), f)
			rt := f.signInOnce(t, m)
			f.s.Advance(91 * 24 * time.Hour)
			return m, creds{secret: f.secret, refresh: rt}
		}, want: msWant{lastFor: storedStep, fail: true, advice: []string{"expired after 90 days without use: sign in again"}, detail: []string{"AADSTS700082"}}},
		{name: "delegated: consent withdrawn", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.graph(store.Inbound), f)
			rt := f.signInOnce(t, m)
			f.app.SetAdminConsent(false)
			return m, creds{secret: f.secret, refresh: rt}
		}, want: msWant{last: "Consent and permissions", fail: true, advice: []string{"an administrator grants admin consent", "the account consents itself when it signs in again"}, detail: []string{"AADSTS65001"}}},
	}
	runMS(t, e, cases)
}

// Names of sign-in steps, for cases whose failing step depends on the mailbox.
func reachStep(m store.Mailbox) string {
	plan, _ := credential.PlanFor(m, credential.AudienceOf(m.Protocol))
	return "Reach the sign-in service at " + hostOf(plan.TokenURL)
}

func tenantStep(m store.Mailbox) string { return "Tenant " + m.OAuth.Tenant }
func appStep(m store.Mailbox) string    { return "App " + m.OAuth.ClientID }
func ropcStep(m store.Mailbox) string   { return "Sign in as " + m.Login + " (password grant)" }
func storedStep(m store.Mailbox) string { return "Stored sign-in of " + m.OAuth.Account }

// ropc is an IMAP mailbox of the tenant's person (own mailbox) signing in with the
// password grant.
func ropc(t *testing.T, e *msEnv, f *tenant) store.Mailbox {
	m := f.exchange(t, e, "imap")
	m.Auth, m.Login, m.Address = store.AuthOAuthROPC, f.user.UPN(), f.user.UPN()
	return m
}

// delegated makes m a mailbox the tenant's person signed in for.
func delegated(m store.Mailbox, f *tenant) store.Mailbox {
	m.Auth = store.AuthOAuthDelegated
	m.OAuth.Account = f.user.UPN()
	m.RefreshTokenSet = true
	return m
}

// TestMicrosoftExchange: IMAP, POP3 and SMTP AUTH with tokens from the stand-in against
// real Dovecot, whose oauth2 passdb asks the stand-in whether a token may open the mailbox
// (as Exchange Online decides): what passes, and the refusals that only the mailbox's
// settings in Exchange Online explain.
func TestMicrosoftExchange(t *testing.T) {
	e := startMS(t)
	exchange := func(proto string, more ...string) func(m store.Mailbox) []string {
		return func(m store.Mailbox) []string {
			addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
			s := appSteps("Resolve 127.0.0.1", "Connect to "+addr, "TLS")(m)
			return append(s, more...)
		}
	}
	cases := []msCase{
		{name: "imap app-only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.exchange(t, e, "imap"), appCreds(f)
		}, want: msWant{stepsFor: exchange("imap", "Log in as {mailbox}", "Open folder INBOX"), last: "Open folder INBOX",
			check: loginDetail("logged in (AUTHENTICATE XOAUTH2)")}},
		{name: "pop3 app-only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.exchange(t, e, "pop3"), appCreds(f)
		}, want: msWant{last: "List messages", check: loginDetail("logged in (OAuth 2.0)")}},
		{name: "smtp app-only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.exchange(t, e, "smtp"), appCreds(f)
		}, want: msWant{lastFor: func(m store.Mailbox) string { return "Authenticate as " + m.Login }, detail: []string{"accepted (AUTH XOAUTH2)"}}},
		{name: "imap with a certificate", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			cert, key, err := mstest.NewCertificate("postroom", time.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			f.app.AddCertificate(cert)
			m := f.exchange(t, e, "imap")
			m.ClientSecretSet, m.CertificateSet = false, true
			return m, creds{cert: &credential.Certificate{Cert: cert, Key: key}}
		}, want: msWant{last: "Open folder INBOX", check: stepDetail("Certificate", "accepted")}},
		{name: "imap app-only, secret expires in 5 days", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.exchange(t, e, "imap")
			m.OAuth.SecretExpiresAt = time.Now().Add(5*24*time.Hour + time.Hour)
			return m, appCreds(f)
		}, want: msWant{last: "Open folder INBOX", check: stepDetail("Client secret", "accepted, but it expires on", "(in 5 days)", "create a new secret before then")}},
		{name: "imap password grant", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return ropc(t, e, f), creds{secret: f.secret, password: f.userPW}
		}, want: msWant{last: "Open folder INBOX", check: func(t *testing.T, f *tenant, rep diag.Report) {
			stepDetail("Sign in as "+f.user.UPN()+" (password grant)", "signed in", "recommends against the password grant")(t, f, rep)
			stepDetail("Consent and permissions", "signed in as "+f.user.UPN(), "IMAP.AccessAsUser.All")(t, f, rep)
		}}},
		{name: "imap delegated", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.exchange(t, e, "imap"), f)
			m.Login, m.Address = f.user.UPN(), f.user.UPN()
			return m, creds{secret: f.secret, refresh: f.signInOnce(t, m)}
		}, want: msWant{last: "Open folder INBOX", check: stepDetail("Stored sign-in of {user}", "valid (renewed now)")}},

		{name: "imap app-only without FullAccess on the mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.RevokeFullAccess(f.shared)
			return f.exchange(t, e, "imap"), appCreds(f)
		}, want: msWant{stepsFor: exchange("imap", "Log in as {mailbox}"), last: "Log in as {mailbox}", fail: true,
			advice: []string{"Exchange Online refused the app's valid token for {mailbox}", "needs FullAccess on the mailbox",
				"New-ServicePrincipal -AppId {client} -ObjectId {sp}",
				"Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess",
				"Set-CASMailbox -Identity {mailbox} -ImapEnabled $true"}}},
		{name: "pop3 app-only without FullAccess on the mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.RevokeFullAccess(f.shared)
			return f.exchange(t, e, "pop3"), appCreds(f)
		}, want: msWant{last: "Log in as {mailbox}", fail: true,
			advice: []string{"Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess", "-PopEnabled $true"}}},
		{name: "smtp AUTH disabled for the mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.sharedMB.Update(func(c *mstest.UserConfig) { c.SMTPAuthDisabled = true })
			return f.exchange(t, e, "smtp"), appCreds(f)
		}, want: msWant{last: "Authenticate as {mailbox}", fail: true, detail: []string{"535"},
			advice: []string{"SMTP AUTH must be enabled for the mailbox: Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
				"Set-TransportConfig -SmtpClientAuthenticationDisabled $false"}}},
		{name: "imap mailbox without licence (password grant)", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.NoMailbox = true })
			return ropc(t, e, f), creds{secret: f.secret, password: f.userPW}
		}, want: msWant{last: "Log in as {user}", fail: true,
			advice: []string{"Exchange Online refused the account's valid token for {user}", "Set-CASMailbox -Identity {user} -ImapEnabled $true", "Exchange Online licence"}}},
	}
	runMS(t, e, cases)
}

func fillAll(f *tenant, in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f.fill(s)
	}
	return out
}

// loginDetail checks the detail of the "Log in" step.
func loginDetail(want string) func(t *testing.T, f *tenant, rep diag.Report) {
	return func(t *testing.T, f *tenant, rep diag.Report) {
		for _, s := range rep.Steps {
			if strings.HasPrefix(s.Name, "Log in as ") {
				if !strings.Contains(s.Detail, want) {
					t.Errorf("log in detail %q, want %q", s.Detail, want)
				}
				return
			}
		}
		t.Error("no Log in step")
	}
}

// stepDetail checks the detail of the step called name ({user} is the tenant's person).
func stepDetail(name string, want ...string) func(t *testing.T, f *tenant, rep diag.Report) {
	return func(t *testing.T, f *tenant, rep diag.Report) {
		name := f.fill(name)
		for _, s := range rep.Steps {
			if s.Name == name {
				for _, w := range want {
					if !strings.Contains(s.Detail, f.fill(w)) {
						t.Errorf("detail of %q = %q, want %q", name, s.Detail, f.fill(w))
					}
				}
				return
			}
		}
		t.Errorf("no step %q", name)
	}
}

// fill replaces {mailbox}, {user}, {client}, {sp} and {tenant} with the tenant's values.
func (f *tenant) fill(s string) string {
	return strings.NewReplacer("{mailbox}", f.shared, "{user}", f.user.UPN(), "{client}", f.app.ClientID(),
		"{sp}", f.sp, "{tenant}", f.t.ID()).Replace(s)
}

// TestMicrosoftGraph: Graph mailboxes at the stand-in: what passes, and each way Graph
// refuses a mailbox, a folder or sending, with its fix.
func TestMicrosoftGraph(t *testing.T) {
	e := startMS(t)
	graphSteps := func(more ...string) func(m store.Mailbox) []string {
		return func(m store.Mailbox) []string {
			return appSteps(append([]string{"Reach Microsoft Graph at " + hostOf(m.GraphURL), "Mailbox " + m.Login}, more...)...)(m)
		}
	}
	cases := []msCase{
		{name: "inbound app-only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{stepsFor: graphSteps("Read folder Inbox"), last: "Read folder Inbox", detail: []string{"2 messages"},
			check: stepDetail("Consent and permissions", "roles: Mail.ReadWrite, Mail.Send")}},
		{name: "outbound app-only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return f.graph(store.Outbound), appCreds(f)
		}, want: msWant{stepsFor: graphSteps("Send as {mailbox}"), last: "Send as {mailbox}",
			detail: []string{"Mail.Send granted", "postroom sends no test message"},
			check: func(t *testing.T, f *tenant, _ diag.Report) {
				if sent := f.s.Sent(f.shared); len(sent) != 0 {
					t.Errorf("the test sent %d messages", len(sent))
				}
			}}},
		{name: "folder below the inbox, by name", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			if _, err := f.s.CreateFolder(f.shared, "Inbox/Cases"); err != nil {
				t.Fatal(err)
			}
			m := f.graph(store.Inbound)
			m.Folder = "Cases"
			return m, appCreds(f)
		}, want: msWant{last: "Read folder Cases", detail: []string{"0 messages"}}},
		{name: "move folder not there yet", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.AfterAction, m.MoveFolder = store.AfterMove, "Handled"
			return m, appCreds(f)
		}, want: msWant{stepsFor: graphSteps("Read folder Inbox", "Move folder Handled"), last: "Move folder Handled",
			detail: []string{"postroom creates it when it moves the first message", "Inbox", "Sent Items"}}},
		{name: "delegated on a shared mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.graph(store.Inbound), f)
			return m, creds{secret: f.secret, refresh: f.signInOnce(t, m)}
		}, want: msWant{last: "Read folder Inbox", check: func(t *testing.T, f *tenant, rep diag.Report) {
			stepDetail("Mailbox {mailbox}", "the signed-in account may open it")(t, f, rep)
			stepDetail("Consent and permissions", "signed in as {user}", "Mail.ReadWrite.Shared")(t, f, rep)
		}}},
		{name: "delegated outbound on a shared mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := delegated(f.graph(store.Outbound), f)
			return m, creds{secret: f.secret, refresh: f.signInOnce(t, m)}
		}, want: msWant{last: "Send as {mailbox}", detail: []string{"Mail.Send.Shared granted", "{user} sends as {mailbox} only with SendAs on it"}}},
		{name: "delegated on the account's own mailbox with Mail.ReadWrite", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetScopes(mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead)
			if _, err := f.s.Deliver(f.user.UPN(), "inbox", mstest.SampleMessage(0)); err != nil {
				t.Fatal(err)
			}
			m := delegated(f.graph(store.Outbound), f)
			m.Address, m.Login = f.user.UPN(), f.user.UPN()
			m.OAuth.Scopes = "offline_access " + mstest.ScopeGraphMailReadWrite + " " + mstest.ScopeGraphMailSend
			return m, creds{secret: f.secret, refresh: f.signInOnce(t, m)}
		}, want: msWant{last: "Send as {user}", detail: []string{"Mail.Send granted"}}},
		{name: "delegated on a shared mailbox, sign-in from before the .Shared permissions", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			// The app registration as the old walk-through had it, and a sign-in made then.
			f.app.SetScopes(mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead)
			m := delegated(f.graph(store.Inbound), f)
			plan, _ := credential.PlanFor(m, credential.AudienceGraph)
			rt := f.signInWith(t, plan.TokenURL, f.user.UPN(), f.userPW, "offline_access", mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend)
			return m, creds{secret: f.secret, refresh: rt}
		}, want: msWant{last: "Consent and permissions", fail: true, detail: []string{"AADSTS65001"},
			advice: []string{"postroom asks for the delegated permissions Mail.ReadWrite.Shared, Mail.Send.Shared and User.Read", "Grant admin consent"}}},
		{name: "delegated on a shared mailbox with Mail.ReadWrite only", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetScopes(mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead)
			m := delegated(f.graph(store.Inbound), f)
			m.OAuth.Scopes = "offline_access " + mstest.ScopeGraphMailReadWrite + " " + mstest.ScopeGraphMailSend
			return m, creds{secret: f.secret, refresh: f.signInOnce(t, m)}
		}, want: msWant{last: "Consent and permissions", fail: true, detail: []string{"signed in as {user}", "Mail.ReadWrite"},
			advice: []string{"{mailbox} is not {user}'s own mailbox", "needs the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared",
				"Delegated permissions > Mail.ReadWrite.Shared and Mail.Send.Shared, then Grant admin consent"}}},

		{name: "mailbox does not exist", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.Login = "nobody@" + f.t.Domains()[0]
			return m, appCreds(f)
		}, want: msWant{lastFor: func(m store.Mailbox) string { return "Mailbox " + m.Login }, fail: true,
			advice: []string{"there is no mailbox nobody@", "a distribution list or a Microsoft 365 group address is not a mailbox"},
			detail: []string{"404 ErrorInvalidUser"}}},
		{name: "mailbox without an Exchange Online licence", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.NoMailbox = true })
			m := f.graph(store.Inbound)
			m.Login = f.user.UPN()
			return m, appCreds(f)
		}, want: msWant{last: "Mailbox {user}", fail: true,
			advice: []string{"assign the user a licence that includes Exchange Online", "or use a shared mailbox"},
			detail: []string{"404 MailboxNotEnabledForRESTAPI"}}},
		{name: "application access policy leaves the mailbox out", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetAccessPolicy(&mstest.AccessPolicy{Mailboxes: []string{f.user.UPN()}})
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{last: "Mailbox {mailbox}", fail: true,
			advice: []string{"is not one of them", "Test-ApplicationAccessPolicy -Identity {mailbox} -AppId {client}",
				"Add-DistributionGroupMember -Identity <policy group address> -Member {mailbox}",
				"Test-ServicePrincipalAuthorization -Identity {sp} -Resource {mailbox}", "30 minutes to 2 hours"},
			detail: []string{"403 ErrorAccessDenied", "[RAOP]"}}},
		{name: "folder missing: the folders that exist are listed", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			if _, err := f.s.CreateFolder(f.shared, "Inbox/Cases"); err != nil {
				t.Fatal(err)
			}
			m := f.graph(store.Inbound)
			m.Folder = "Archive/Cases"
			return m, appCreds(f)
		}, want: msWant{last: "Read folder Archive/Cases", fail: true,
			advice: []string{"the folder Archive/Cases does not exist in {mailbox} (the mailbox has Inbox/Cases): check its name", "the mailbox's folders are: ", "Sent Items"}}},
		{name: "throttled", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.s.FailNext(mstest.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second, Mailbox: f.shared})
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{last: "Mailbox {mailbox}", fail: true,
			advice: []string{"throttling", "this is not a settings problem", "Test again in 7s"}, detail: []string{"429"}}},
		{name: "Graph temporarily unavailable", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.s.FailNext(mstest.Fault{Status: http.StatusServiceUnavailable, Mailbox: f.shared})
			return f.graph(store.Inbound), appCreds(f)
		}, want: msWant{last: "Mailbox {mailbox}", fail: true, advice: []string{"temporary problem (HTTP 503)", "not a settings problem"}}},
		{name: "Graph host is not Microsoft Graph", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.GraphURL = f.s.LoginURL()
			return m, appCreds(f)
		}, want: msWant{lastFor: func(m store.Mailbox) string { return "Reach Microsoft Graph at " + hostOf(m.GraphURL) }, fail: true,
			advice: []string{"answered, but not as Microsoft Graph: check the Graph host"}}},
		{name: "Graph host unreachable", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			m := f.graph(store.Inbound)
			m.GraphURL = closedURL(t)
			return m, appCreds(f)
		}, want: msWant{lastFor: func(m store.Mailbox) string { return "Reach Microsoft Graph at " + hostOf(m.GraphURL) }, fail: true,
			advice: []string{"postroom cannot reach", "port 443"}}},
		{name: "outbound without Mail.Send", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetRoles(mstest.RoleMailReadWrite)
			return f.graph(store.Outbound), appCreds(f)
		}, want: msWant{last: "Send as {mailbox}", fail: true,
			advice: []string{"the app may not send mail", "Application permissions > Mail.Send, then Grant admin consent"}, detail: []string{"no Mail.Send role"}}},
		{name: "outbound without Mail.ReadWrite (replies are drafts first)", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.SetRoles(mstest.RoleMailSend)
			return f.graph(store.Outbound), appCreds(f)
		}, want: msWant{last: "Consent and permissions", fail: true,
			advice: []string{"the app lacks the application permission Mail.ReadWrite", "Application permissions > Mail.ReadWrite, then Grant admin consent"}, detail: []string{"roles: Mail.Send"}}},
		{name: "delegated account without access to the shared mailbox", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			other, err := f.t.AddUser(mstest.UserConfig{UPN: "temp@" + f.t.Domains()[0], Password: f.userPW})
			if err != nil {
				t.Fatal(err)
			}
			m := delegated(f.graph(store.Inbound), f)
			m.OAuth.Account = other.UPN()
			return m, creds{secret: f.secret, refresh: f.signInAs(t, m, other.UPN(), f.userPW)}
		}, want: msWant{last: "Mailbox {mailbox}", fail: true,
			advice: []string{"the signed-in account temp@", "Add-MailboxPermission -Identity {mailbox} -User temp@", "-AccessRights FullAccess"},
			detail: []string{"403 ErrorAccessDenied"}}},
	}
	runMS(t, e, cases)
}

// TestOtherOAuthProvider: a provider other than Microsoft (a token URL of its own) gets one
// token step with the token source's advice, then the usual IMAP steps. The stand-in's
// token endpoint plays the provider.
func TestOtherOAuthProvider(t *testing.T) {
	e := startMS(t)
	custom := func(t *testing.T, e *msEnv, f *tenant) store.Mailbox {
		m := f.exchange(t, e, "imap")
		m.OAuth = store.OAuth{Provider: "custom", ClientID: f.app.ClientID(), TokenURL: f.s.TokenURL(f.t.ID()),
			Scopes: "https://outlook.office365.com/.default"}
		return m
	}
	tokenStep := func(m store.Mailbox) string { return "Get an OAuth token from " + hostOf(m.OAuth.TokenURL) }
	runMS(t, e, []msCase{
		{name: "token and login", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return custom(t, e, f), appCreds(f)
		}, want: msWant{stepsFor: func(m store.Mailbox) []string {
			addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
			return []string{tokenStep(m), "Resolve 127.0.0.1", "Connect to " + addr, "TLS", "Log in as " + m.Login, "Open folder INBOX"}
		}, last: "Open folder INBOX"}},
		{name: "secret refused", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			return custom(t, e, f), creds{secret: "not-the-secret-value"}
		}, want: msWant{lastFor: tokenStep, fail: true, advice: []string{"the client secret is wrong or expired"}, detail: []string{"invalid_client"}}},
		{name: "login refused", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.RevokeFullAccess(f.shared)
			return custom(t, e, f), appCreds(f)
		}, want: msWant{last: "Log in as {mailbox}", fail: true, advice: []string{"the server refused the OAuth token for {mailbox}", "may use IMAP for this account"}}},
	})
}

// TestSignInServiceSilent: a sign-in service that accepts the request but never answers
// fails the first step within the test's time limit, with the advice for a host that does
// not answer.
func TestSignInServiceSilent(t *testing.T) {
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client hang up
		<-r.Context().Done()
	}))
	t.Cleanup(silent.Close)
	s := startStandIn(t)
	f := newTenant(t, s)
	m := f.graph(store.Inbound)
	m.OAuth.AuthorityURL = silent.URL
	rec := &seen{}
	opts := &diag.Options{Timeout: time.Second, Token: tokenSource(t, m, appCreds(f), rec)}
	rep := diag.Test(context.Background(), m, vault.Secret{}, opts)
	checkMS(t, rep, msWant{last: reachStep(m), fail: true, detail: []string{"no answer within 1s"},
		advice: []string{hostOf(silent.URL) + " did not answer in time"}}, rec.all())
}
