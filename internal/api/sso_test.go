package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/vault"
)

// ssoSecret is the client secret the tests enter; no response may contain it.
const ssoSecret = "sso8Q~never-shown-" + "0123456789abcdef"

// newSSOFixture is the API fixture with single sign-on and a Microsoft stand-in whose
// tenant postroom may use as its provider.
func newSSOFixture(t *testing.T) (*fixture, *mstest.Server, string) {
	t.Helper()
	f := newFixture(t)
	v, err := vault.New(make([]byte, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sso.New(sso.Options{Store: f.st, Vault: v, Auth: f.auth})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", New(Options{Store: f.st, Auth: f.auth, Mailboxes: f.mailboxes, SSO: svc, Logger: slog.New(slog.DiscardHandler)}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	const tenant = "2a4c6e80-1b3d-4f5a-8c7e-9d0f1a2b3c4d"
	tn, err := ms.AddTenant(tenant, "fabrikam.example")
	if err != nil {
		t.Fatal(err)
	}
	app, err := tn.AddApp(mstest.AppConfig{DisplayName: "postroom", RedirectURIs: []string{f.srv.URL + sso.CallbackPath}})
	if err != nil {
		t.Fatal(err)
	}
	app.AddSecret(ssoSecret, time.Now().Add(time.Hour))
	return f, ms, fmt.Sprintf(`"issuer": %q, "client_id": %q`, ms.OpenIDIssuer(tenant), app.ClientID())
}

// TestSSOSettings: only admins read and change the settings; the secret is write-only and
// must be entered again for another issuer; bad fields are 400 with advice; with local
// passwords off, POST /api/v1/session refuses everyone but the break-glass admin.
func TestSSOSettings(t *testing.T) {
	f, ms, provider := newSSOFixture(t)
	admin := f.signedIn(t, "admin")
	if r := f.signedIn(t, "sam").get("/api/v1/sso"); r.status != http.StatusForbidden {
		t.Errorf("supervisor reads the settings: %d", r.status)
	}
	r := admin.get("/api/v1/sso")
	if r.status != http.StatusOK || r.json(t)["issuer"] != "" {
		t.Fatalf("empty settings: %d %s", r.status, r.body)
	}
	r = admin.putJSON("/api/v1/sso", `{`+provider+`, "client_secret": "`+ssoSecret+`", "auto_create": true,
		"mappings": [{"value": "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "role": "supervisor"}]}`)
	if r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["client_secret_set"] != true || got["button_label"] != "Sign in with Microsoft" || got["callback_path"] != sso.CallbackPath {
		t.Errorf("saved: %s", r.body)
	}
	// Another issuer without the secret: refused, the secret goes to no other issuer.
	other := strings.Replace(provider, "/2a4c6e80-1b3d-4f5a-8c7e-9d0f1a2b3c4d/", "/fabrikam.example/", 1)
	r = admin.putJSON("/api/v1/sso", `{`+other+`}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "enter the client secret again") {
		t.Errorf("issuer changed without the secret: %d %s", r.status, r.body)
	}
	r = admin.putJSON("/api/v1/sso", `{`+provider+`, "local_passwords_off": true, "break_glass": ["sam"]}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "break-glass users must be admins") {
		t.Errorf("a supervisor as break-glass: %d %s", r.status, r.body)
	}
	r = admin.putJSON("/api/v1/sso", `{`+provider+`, "mappings": [{"value": "x", "role": "boss"}]}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `mappings[0]`) {
		t.Errorf("unknown role: %d %s", r.status, r.body)
	}
	r = admin.putJSON("/api/v1/sso", `{`+provider+`, "local_passwords_off": true, "break_glass": ["admin"]}`)
	if r.status != http.StatusOK {
		t.Fatalf("passwords off: %d %s", r.status, r.body)
	}
	r = f.client(t).postJSON("/api/v1/session", `{"user": "ana", "password": "`+testPassword+`"}`)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "Passwords are switched off") {
		t.Errorf("ana's password with passwords off: %d %s", r.status, r.body)
	}
	f.signedIn(t, "admin") // the break-glass admin still can
	for _, b := range f.responses {
		if strings.Contains(string(b), ssoSecret) {
			t.Errorf("the client secret is in a response: %s", b)
		}
	}
	_ = ms
}
