package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// Values of the OAuth tests; no response may contain the secrets.
const (
	testTenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClientID     = "11111111-2222-3333-4444-555555555555"
	testClientSecret = "qWe8Q~client-secret-never-shown"
	testRefreshToken = "0.AAAA-refresh-token-never-shown"
)

// testCertificatePEM returns a self-signed certificate and its RSA private key as one PEM
// bundle, and the base64 text of the key block (which no response may contain).
func testCertificatePEM(t *testing.T) (bundle, keyText string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "postroom"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	lines := strings.Split(string(keyPEM), "\n")
	return string(certPEM) + string(keyPEM), lines[1] // the first line of the key's base64
}

// graphBody is a valid inbound Graph mailbox that signs in as an app with a client secret,
// at loopback URLs (nothing may reach Microsoft from a test), with some fields replaced (a
// nil value removes the field).
func graphBody(t *testing.T, name string, change map[string]any) string {
	t.Helper()
	b := map[string]any{
		"name": name, "direction": "inbound", "protocol": "graph", "address": "support@contoso.com", "auth": "oauth_app",
		"oauth": map[string]any{
			"cloud": "custom", "authority_url": fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
			"tenant": testTenant, "client_id": testClientID, "secret_expires_at": "2026-12-31",
		},
		"graph_url":     fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
		"client_secret": testClientSecret,
	}
	for k, v := range change {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// oauthOf returns the body's "oauth" object with members replaced (nil removes one).
func oauthOf(change map[string]any) map[string]any {
	o := map[string]any{"tenant": testTenant, "client_id": testClientID}
	for k, v := range change {
		if v == nil {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	return o
}

// storedSecret reads a mailbox's secret back from the vault.
func (f *fixture) storedSecret(t *testing.T, id int64, name string) string {
	t.Helper()
	s, err := f.passwords.Secrets().Get(context.Background(), id, name)
	if err != nil {
		t.Fatalf("secret %s of mailbox %d: %v", name, id, err)
	}
	return s.Reveal()
}

// TestGraphMailboxJSON creates a Microsoft Graph mailbox with a client secret through the
// API and changes its OAuth settings the ways an administrator would.
func TestGraphMailboxJSON(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")

	resp := c.postJSON("/api/v1/mailboxes", graphBody(t, "graph", nil))
	want(t, "create graph mailbox", resp, http.StatusCreated)
	v := mailboxView(t, resp)
	o := v.OAuth
	if v.Protocol != "graph" || v.Auth != "oauth_app" || v.Host != "" || v.Port != 0 || v.Folder != "Inbox" ||
		v.Login != "support@contoso.com" || v.AfterAction != "mark_read" || v.Enabled {
		t.Errorf("graph mailbox %+v: want protocol graph, oauth_app, no host, Inbox, login = address, mark_read, disabled", v)
	}
	if o.Provider != "microsoft" || o.Cloud != "custom" || o.Tenant != testTenant || o.ClientID != testClientID ||
		o.SecretExpiresAt == nil || *o.SecretExpiresAt != "2026-12-31" || o.Account != "" {
		t.Errorf("oauth %+v: want microsoft, custom cloud, the tenant and client id, expiry 2026-12-31", o)
	}
	if !v.ClientSecretSet || v.ClientCertificateSet || v.RefreshTokenSet || v.PasswordSet {
		t.Errorf("secrets set: client secret %v, certificate %v, refresh token %v, password %v; want only the client secret",
			v.ClientSecretSet, v.ClientCertificateSet, v.RefreshTokenSet, v.PasswordSet)
	}
	if got := f.storedSecret(t, v.ID, store.SecretClientSecret); got != testClientSecret {
		t.Errorf("stored client secret %q, want the one sent", got)
	}
	path := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)

	// A partial change of one OAuth member keeps the others, and the secret.
	v = mailboxView(t, c.putJSON(path, `{"oauth": {"scopes": "https://graph.microsoft.com/.default"}}`))
	if v.OAuth.Scopes != "https://graph.microsoft.com/.default" || v.OAuth.Tenant != testTenant || v.OAuth.ClientID != testClientID ||
		v.OAuth.SecretExpiresAt == nil || !v.ClientSecretSet {
		t.Errorf("after changing the scopes: %+v", v)
	}
	// The object GET returns, sent back, changes nothing (read-only members included).
	before := c.get(path).body
	want(t, "PUT back", c.putJSON(path, string(before)), http.StatusOK)
	var a, b map[string]any
	_ = json.Unmarshal(before, &a)
	_ = json.Unmarshal(c.get(path).body, &b)
	delete(a, "updated_at")
	delete(b, "updated_at")
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GET, PUT back, GET changed the mailbox:\n%v\n%v", a, b)
	}
	if got := f.storedSecret(t, v.ID, store.SecretClientSecret); got != testClientSecret {
		t.Errorf("client secret after PUT back: %q", got)
	}

	// The expiry date: a new one, a date-time, then none.
	for _, tc := range []struct{ body, want string }{
		{`{"oauth": {"secret_expires_at": "2027-03-01"}}`, "2027-03-01"},
		{`{"oauth": {"secret_expires_at": "2027-04-02T10:00:00+02:00"}}`, "2027-04-02"},
		{`{"oauth": {"tenant": "contoso.onmicrosoft.com"}, "client_secret": "` + testClientSecret + `"}`, "2027-04-02"}, // a new tenant needs the secret again
		{`{"oauth": {"secret_expires_at": null}}`, ""},
		{`{"oauth": {"secret_expires_at": "2027-05-03"}}`, "2027-05-03"},
		{`{"oauth": {"secret_expires_at": ""}}`, ""},
	} {
		v = mailboxView(t, c.putJSON(path, tc.body))
		got := ""
		if v.OAuth.SecretExpiresAt != nil {
			got = *v.OAuth.SecretExpiresAt
		}
		if got != tc.want {
			t.Errorf("PUT %s: secret_expires_at %q, want %q", tc.body, got, tc.want)
		}
	}
	if m, err := f.st.Mailbox(context.Background(), v.ID); err != nil || !m.OAuth.SecretExpiresAt.IsZero() || m.OAuth.Tenant != "contoso.onmicrosoft.com" {
		t.Errorf("stored: %+v (%v)", m.OAuth, err)
	}

	// A certificate instead of (besides) the secret.
	bundle, _ := testCertificatePEM(t)
	body, _ := json.Marshal(map[string]any{"client_certificate": bundle})
	v = mailboxView(t, c.putJSON(path, string(body)))
	if !v.ClientCertificateSet || !v.ClientSecretSet {
		t.Errorf("after uploading a certificate: %+v", v)
	}
	if got := f.storedSecret(t, v.ID, store.SecretCertificate); got != bundle {
		t.Error("the stored certificate is not the one sent")
	}

	// An outbound Graph mailbox has no folder.
	out := mailboxView(t, c.postJSON("/api/v1/mailboxes", graphBody(t, "graphout", map[string]any{"direction": "outbound", "address": "sales@contoso.com"})))
	if out.Protocol != "graph" || out.Folder != "" || out.AfterAction != "" || out.Login != "sales@contoso.com" || !out.ClientSecretSet {
		t.Errorf("outbound graph mailbox: %+v", out)
	}
}

// TestExchangeOnlineOAuthJSON: IMAP, POP3 and SMTP mailboxes with a Microsoft OAuth method
// and no host get Exchange Online's hosts; a password mailbox switched to OAuth does too.
func TestExchangeOnlineOAuthJSON(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	app := map[string]any{"host": nil, "port": nil, "security": nil, "password": nil, "login": nil, "folder": nil,
		"address": "support@contoso.com", "auth": "oauth_app", "oauth": oauthOf(nil), "client_secret": testClientSecret}
	with := func(more map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range app {
			m[k] = v
		}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		change map[string]any
		host   string
		port   int
		sec    string
	}{
		{"exoimap", with(nil), "outlook.office365.com", 993, "tls"},
		{"exopop", with(map[string]any{"protocol": "pop3"}), "outlook.office365.com", 995, "tls"},
		{"exogov", with(map[string]any{"oauth": oauthOf(map[string]any{"cloud": "usgov"})}), "outlook.office365.us", 993, "tls"},
		{"exoport", with(map[string]any{"port": 1993}), "outlook.office365.com", 1993, "tls"},
	} {
		resp := c.postJSON("/api/v1/mailboxes", inboundBody(t, tc.name, tc.change))
		want(t, "create "+tc.name, resp, http.StatusCreated)
		v := mailboxView(t, resp)
		if v.Host != tc.host || v.Port != tc.port || v.Security != tc.sec || v.Login != "support@contoso.com" || v.Auth != "oauth_app" || v.PasswordSet {
			t.Errorf("%s: %s:%d %s login %q auth %s password_set %v; want %s:%d %s, login = address",
				tc.name, v.Host, v.Port, v.Security, v.Login, v.Auth, v.PasswordSet, tc.host, tc.port, tc.sec)
		}
	}
	body, _ := json.Marshal(with(map[string]any{"name": "exosmtp", "direction": "outbound", "address": "sales@contoso.com"}))
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", string(body)))
	if v.Host != "smtp.office365.com" || v.Port != 587 || v.Security != "starttls" || v.Login != "sales@contoso.com" {
		t.Errorf("exosmtp: %s:%d %s login %q, want smtp.office365.com:587 starttls", v.Host, v.Port, v.Security, v.Login)
	}

	// A password mailbox moves to OAuth: "host": "" asks for the preset.
	pw := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "pw", nil)))
	path := fmt.Sprintf("/api/v1/mailboxes/%d", pw.ID)
	body, _ = json.Marshal(map[string]any{"auth": "oauth_app", "host": "", "port": 0, "oauth": oauthOf(nil), "client_secret": testClientSecret})
	resp := c.putJSON(path, string(body))
	want(t, "switch to OAuth", resp, http.StatusOK)
	v = mailboxView(t, resp)
	if v.Auth != "oauth_app" || v.Host != "outlook.office365.com" || v.Port != 993 || !v.ClientSecretSet || v.OAuth.Provider != "microsoft" || v.OAuth.Cloud != "global" {
		t.Errorf("switched to OAuth: %+v", v)
	}
	// ... and back: its OAuth settings are dropped.
	v = mailboxView(t, c.putJSON(path, `{"auth": "password", "host": "imap.example.com", "password": "`+secretPassword+`"}`))
	if v.Auth != "password" || v.OAuth.Tenant != "" || v.OAuth.Provider != "" || v.Host != "imap.example.com" || !v.PasswordSet {
		t.Errorf("switched back to a password: %+v", v)
	}

	// A person's sign-in at another provider, with a refresh token obtained elsewhere.
	body = []byte(inboundBody(t, "gmail", with(map[string]any{
		"address": "help@example.org", "login": "help@example.org", "host": "imap.gmail.com", "auth": "oauth_delegated",
		"client_secret": nil, "refresh_token": testRefreshToken,
		"oauth": map[string]any{"provider": "custom", "client_id": "postroom.apps.example.org",
			"token_url": "https://oauth2.example.org/token", "authorize_url": "https://accounts.example.org/auth", "scopes": "https://mail.example.org/"},
	})))
	resp = c.postJSON("/api/v1/mailboxes", string(body))
	want(t, "create gmail", resp, http.StatusCreated)
	v = mailboxView(t, resp)
	if v.Auth != "oauth_delegated" || !v.RefreshTokenSet || v.ClientSecretSet || v.OAuth.Provider != "custom" || v.OAuth.Cloud != "" ||
		v.OAuth.TokenURL != "https://oauth2.example.org/token" || v.Host != "imap.gmail.com" {
		t.Errorf("custom delegated mailbox: %+v", v)
	}
	if got := f.storedSecret(t, v.ID, store.SecretRefreshToken); got != testRefreshToken {
		t.Errorf("stored refresh token %q", got)
	}
}

func TestOAuthMailboxValidation(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	badPEM := "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name   string
		change map[string]any
		field  string
		msg    string
	}{
		{"unknown auth", map[string]any{"auth": "kerberos"}, "auth", "oauth_app"},
		{"graph with a password", map[string]any{"auth": "password"}, "auth", "OAuth"},
		{"auth as a number", map[string]any{"auth": 3}, "auth", "text"},
		{"oauth not an object", map[string]any{"oauth": "contoso"}, "oauth", "object"},
		{"oauth as a list", map[string]any{"oauth": []string{"a"}}, "oauth", "object"},
		{"unknown oauth member", map[string]any{"oauth": oauthOf(map[string]any{"colour": "blue"})}, "oauth_colour", "unknown field"},
		{"tenant as a number", map[string]any{"oauth": oauthOf(map[string]any{"tenant": 7})}, "oauth_tenant", "text"},
		{"scopes as a list", map[string]any{"oauth": oauthOf(map[string]any{"scopes": []string{"a", "b"}})}, "oauth_scopes", "text"},
		{"no tenant", map[string]any{"oauth": oauthOf(map[string]any{"tenant": nil})}, "oauth_tenant", "Tenant ID"},
		{"tenant not an id", map[string]any{"oauth": oauthOf(map[string]any{"tenant": "contoso corp"})}, "oauth_tenant", "GUID"},
		{"app on common", map[string]any{"oauth": oauthOf(map[string]any{"tenant": "common"})}, "oauth_tenant", "own directory"},
		{"no client id", map[string]any{"oauth": oauthOf(map[string]any{"client_id": nil})}, "oauth_client_id", "App registrations"},
		{"client id not a GUID", map[string]any{"oauth": oauthOf(map[string]any{"client_id": "postroom"})}, "oauth_client_id", "GUID"},
		{"unknown cloud", map[string]any{"oauth": oauthOf(map[string]any{"cloud": "mars"})}, "oauth_cloud", "usgov"},
		{"custom cloud without authority", map[string]any{"oauth": oauthOf(map[string]any{"cloud": "custom"})}, "oauth_authority_url", "authority"},
		{"authority over plain http", map[string]any{"oauth": oauthOf(map[string]any{"cloud": "custom", "authority_url": "http://login.example.com"})}, "oauth_authority_url", "https"},
		{"unknown provider", map[string]any{"oauth": oauthOf(map[string]any{"provider": "okta"})}, "oauth_provider", "microsoft, google or custom"},
		{"graph at another provider", map[string]any{"oauth": oauthOf(map[string]any{"provider": "custom", "token_url": "https://o.example.org/token"})}, "oauth_provider", "Microsoft"},
		{"graph host over http", map[string]any{"graph_url": "http://graph.example.com"}, "graph_url", "https"},
		{"graph host not a URL", map[string]any{"graph_url": "graph.microsoft.com"}, "graph_url", "URL"},
		{"no client secret", map[string]any{"client_secret": nil}, "client_secret", "Certificates & secrets"},
		{"client secret as a number", map[string]any{"client_secret": 12345}, "client_secret", "text"},
		{"certificate that is not one", map[string]any{"client_certificate": badPEM}, "client_certificate", "certificate"},
		{"certificate without a key", map[string]any{"client_certificate": "no pem here"}, "client_certificate", "PEM"},
		{"expiry not a date", map[string]any{"oauth": oauthOf(map[string]any{"secret_expires_at": "31/12/2026"})}, "oauth_secret_expires_at", "2026-12-31"},
		{"expiry as a number", map[string]any{"oauth": oauthOf(map[string]any{"secret_expires_at": 20261231})}, "oauth_secret_expires_at", "2026-12-31"},
		{"refresh token as an object", map[string]any{"refresh_token": map[string]any{}}, "refresh_token", "text"},
		{"secret set flag as a number", map[string]any{"client_secret_set": 1}, "", ""}, // read-only: ignored
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.postJSON("/api/v1/mailboxes", graphBody(t, "valid", tc.change))
			if tc.field == "" {
				want(t, "create", resp, http.StatusCreated)
				want(t, "delete", c.del(fmt.Sprintf("/api/v1/mailboxes/%d", mailboxView(t, resp).ID)), http.StatusNoContent)
				return
			}
			out := want(t, "create", resp, http.StatusBadRequest)
			fields, _ := out["fields"].(map[string]any)
			msg, _ := fields[tc.field].(string)
			if msg == "" {
				t.Fatalf("no error for field %q: %s", tc.field, resp.body)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("fields.%s = %q, want it to say %q", tc.field, msg, tc.msg)
			}
			if errText, _ := out["error"].(string); !strings.HasPrefix(errText, "the mailbox has errors: ") || !strings.Contains(errText, tc.field+": ") {
				t.Errorf("error %q does not name the field %q", errText, tc.field)
			}
		})
	}
	// IMAP with OAuth: the tenant and client id checks apply the same way.
	resp := c.postJSON("/api/v1/mailboxes", inboundBody(t, "exo", map[string]any{"host": nil, "password": nil, "auth": "oauth_ropc",
		"oauth": oauthOf(map[string]any{"client_id": "x"})}))
	out := want(t, "ropc with a bad client id", resp, http.StatusBadRequest)
	if fields, _ := out["fields"].(map[string]any); fields["oauth_client_id"] == nil || fields["password"] == nil {
		t.Errorf("ROPC without a password and with a bad client id: %s", resp.body)
	}
	mbs, err := f.st.ListMailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(mbs) != 2 {
		t.Errorf("refused bodies created mailboxes: %d mailboxes, want the fixture's 2", len(mbs))
	}
}

// TestOAuthSecretsNeverShown drives every endpoint that returns a mailbox (or tests one)
// with a client secret, a certificate and a refresh token stored or sent, and searches
// each response, the audit events and the database file for them.
func TestOAuthSecretsNeverShown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signedIn(t, "admin")
	sup := f.signedIn(t, "sam")
	bundle, keyText := testCertificatePEM(t)
	secrets := []string{testClientSecret, testRefreshToken, keyText, secretPassword}

	g := mailboxView(t, c.postJSON("/api/v1/mailboxes", graphBody(t, "graph", map[string]any{"client_certificate": bundle})))
	imapBody := inboundBody(t, "exo", map[string]any{
		"host": "127.0.0.1", "port": testenv.FreePort(t), "security": "none", "auth": "oauth_delegated", "password": nil,
		"oauth":         map[string]any{"provider": "custom", "client_id": "postroom", "token_url": fmt.Sprintf("http://127.0.0.1:%d/token", testenv.FreePort(t))},
		"refresh_token": testRefreshToken, "client_secret": testClientSecret,
	})
	x := mailboxView(t, c.postJSON("/api/v1/mailboxes", imapBody))
	if !g.ClientSecretSet || !g.ClientCertificateSet || !x.RefreshTokenSet || !x.ClientSecretSet {
		t.Fatalf("secrets not stored: %+v %+v", g, x)
	}
	queue := want(t, "queue", c.postJSON("/api/v1/queues", `{"name": "Microsoft"}`), http.StatusCreated)
	for _, m := range []MailboxView{g, x} {
		p := fmt.Sprintf("/api/v1/mailboxes/%d", m.ID)
		c.get("/api/v1/mailboxes")
		sup.get("/api/v1/mailboxes?q=contoso")
		sup.get(p)
		c.putJSON(p, `{"max_size_mb": 7, "client_secret": "`+testClientSecret+`"}`)
		c.putJSON(p, `{"max_size_mb": 70, "client_secret": "`+testClientSecret+`", "refresh_token": "`+testRefreshToken+`"}`)     // refused: must not echo them
		c.putJSON(p, `{"max_size_mb": 70, "oauth": {"tenant": "`+testClientSecret+`"}, "client_secret": "`+testClientSecret+`"}`) // refused
		body, _ := json.Marshal(map[string]any{"client_certificate": bundle, "oauth": map[string]any{"secret_expires_at": "soon"}})
		c.putJSON(p, string(body)) // refused
		body, _ = json.Marshal(map[string]any{"client_certificate": bundle})
		c.putJSON(p, string(body))
		c.postJSON(p+"/test", "")
		c.postJSON(p+"/test", `{"client_secret": "`+testClientSecret+`", "refresh_token": "`+testRefreshToken+`"}`)
		c.postJSON(p+"/copy", fmt.Sprintf(`{"name": "%s2"}`, m.Name))
		c.postJSON(p+"/enable", "")
		c.postJSON(p+"/disable", "")
		c.putJSON(p+"/queue", fmt.Sprintf(`{"queue_id": %v}`, queue["id"]))
		c.putJSON(p+"/queue", `{"queue_id": null}`)
	}
	c.postJSON("/api/v1/mailboxes/test", graphBody(t, "unsaved", map[string]any{"client_certificate": bundle}))
	c.postJSON("/api/v1/mailboxes/test", imapBody)
	c.postJSON("/api/v1/mailboxes/test", graphBody(t, "bad name", map[string]any{"client_certificate": bundle}))
	c.postJSON("/api/v1/mailboxes/enable-all", "")
	c.postJSON("/api/v1/mailboxes/disable-all", "")
	c.postJSON("/api/v1/mailboxes", graphBody(t, "bad name", map[string]any{"client_certificate": bundle, "refresh_token": testRefreshToken}))
	c.postJSON("/api/v1/mailboxes", graphBody(t, "graph", nil)) // refused: the name is taken
	c.del(fmt.Sprintf("/api/v1/mailboxes/%d", g.ID))

	if len(f.responses) < 40 {
		t.Fatalf("only %d responses recorded", len(f.responses))
	}
	sawFlags := false
	for _, b := range f.responses {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("a response shows a secret (%.12s...): %s", s, b)
			}
		}
		sawFlags = sawFlags || bytes.Contains(b, []byte(`"client_certificate_set":true`))
	}
	if !sawFlags {
		t.Error("no response said client_certificate_set: true")
	}
	events, err := f.st.ListAudit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 10 {
		t.Fatalf("only %d audit events", len(events))
	}
	for _, e := range events {
		for _, s := range secrets {
			if strings.Contains(e.Old+e.New, s) {
				t.Errorf("audit event %s shows a secret (%.12s...)", e.Action, s)
			}
		}
	}
	if err := f.st.Close(); err != nil { // flush the WAL into the file
		t.Fatal(err)
	}
	files, _ := filepath.Glob(f.dbPath + "*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret (%.12s...) in plain text", filepath.Base(name), s)
			}
		}
	}
}

// TestOpenAPIMailboxFields checks the mailbox schemas against what the handlers read and
// write: every member of MailboxView and of the request bodies is described, and nothing
// else.
func TestOpenAPIMailboxFields(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schema := func(name string) []string {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("no schema %s", name)
		}
		var keys []string
		for k := range s.Properties {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	jsonNames := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	keys := func(m map[string]member, also ...string) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		out = append(out, also...)
		slices.Sort(out)
		return out
	}
	same := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n openapi.json %v\n handlers     %v", what, got, want)
		}
	}
	same("schema Mailbox vs MailboxView", schema("Mailbox"), jsonNames(MailboxView{}))
	same("schema MailboxOAuth vs OAuthView", schema("MailboxOAuth"), jsonNames(OAuthView{}))
	same("schema MailboxInput vs the members a body may set", schema("MailboxInput"), keys((&mailboxBody{}).members()))
	same("schema MailboxOAuth vs the members of oauth a body may set", schema("MailboxOAuth"), keys((&oauthBody{}).members(), "account"))
	for _, name := range readOnlyMailboxFields {
		if p := doc.Components.Schemas["Mailbox"].Properties[name]; p["readOnly"] != true {
			t.Errorf("Mailbox.%s is ignored in requests but not readOnly in openapi.json", name)
		}
	}
	for _, name := range []string{"password", "client_secret", "client_certificate", "refresh_token"} {
		if p := doc.Components.Schemas["MailboxInput"].Properties[name]; p["writeOnly"] != true {
			t.Errorf("MailboxInput.%s is not writeOnly", name)
		}
	}
}
