package mstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixture is a stand-in with one tenant, one app with a secret and consent, a shared
// mailbox and a user.
type fixture struct {
	s      *Server
	tenant *Tenant
	app    *App
	secret string
	shared *User // support@contoso.example
	user   *User // ana@contoso.example / ana-pw
}

const (
	testTenantID = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	testShared   = "support@contoso.example"
	testUser     = "ana@contoso.example"
	testPassword = "ana-pw"
	testRedirect = "http://127.0.0.1:9/oauth/callback"
)

func start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	s := start(t, opts)
	tn, err := s.AddTenant(testTenantID, "contoso.example", "contoso.onmicrosoft.com")
	if err != nil {
		t.Fatal(err)
	}
	app, err := tn.AddApp(AppConfig{
		DisplayName:  "postroom test",
		Roles:        []string{RoleMailReadWrite, RoleMailSend, RoleIMAPAccessAsApp, RoleSMTPSendAsApp},
		Scopes:       []string{ScopeGraphMailReadWrite, ScopeGraphMailSend, ScopeIMAP, ScopeSMTP},
		AdminConsent: true,
		RedirectURIs: []string{testRedirect},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := "qWe8Q~" + randomToken(20)
	app.AddSecret(secret, time.Now().Add(365*24*time.Hour))
	shared, err := tn.AddSharedMailbox(testShared, "Support")
	if err != nil {
		t.Fatal(err)
	}
	user, err := tn.AddUser(UserConfig{UPN: testUser, Password: testPassword, DisplayName: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	app.GrantFullAccess(testShared)
	return &fixture{s: s, tenant: tn, app: app, secret: secret, shared: shared, user: user}
}

// post sends a form to u and returns status and body.
func post(t testing.TB, u string, form url.Values) (int, []byte) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// token asks the token endpoint of tenant and wants success.
func (f *fixture) token(t testing.TB, tenant string, form url.Values) TokenResponse {
	t.Helper()
	status, body := post(t, f.s.TokenURL(tenant), form)
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func (f *fixture) appToken(t testing.TB, scope string) string {
	t.Helper()
	return f.token(t, testTenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.app.ClientID()},
		"client_secret": {f.secret}, "scope": {scope}}).AccessToken
}

func (f *fixture) userToken(t testing.TB, scope string) TokenResponse {
	t.Helper()
	return f.token(t, testTenantID, url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()},
		"client_secret": {f.secret}, "username": {testUser}, "password": {testPassword}, "scope": {scope}})
}

var descriptionPattern = regexp.MustCompile(`^AADSTS(\d+): .+\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})\r\nTimestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$`)

// wantTokenError checks a token endpoint answer is Microsoft's seven-field error with the
// given status, error and AADSTS code.
func wantTokenError(t *testing.T, status int, body []byte, wantStatus int, wantErr string, wantCode int) TokenError {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d, want %d (%s)", status, wantStatus, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	for _, k := range []string{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("field %q missing in %s", k, body)
		}
	}
	var e TokenError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error != wantErr {
		t.Errorf("error %q, want %q", e.Error, wantErr)
	}
	if len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != wantCode {
		t.Errorf("error_codes %v, want [%d]", e.ErrorCodes, wantCode)
	}
	m := descriptionPattern.FindStringSubmatch(e.ErrorDescription)
	if m == nil {
		t.Fatalf("error_description %q is not AADSTSnnnn: text + Trace ID, Correlation ID, Timestamp lines", e.ErrorDescription)
	}
	if m[1] != itoa(wantCode) || m[2] != e.TraceID || m[3] != e.CorrelationID || m[4] != e.Timestamp {
		t.Errorf("error_description %q does not match the other fields %+v", e.ErrorDescription, e)
	}
	if !strings.HasSuffix(e.ErrorURI, "/error?code="+itoa(wantCode)) {
		t.Errorf("error_uri %q", e.ErrorURI)
	}
	return e
}

func itoa(n int) string { return strconv.Itoa(n) }

// graphRequest makes a Graph request with a bearer token and returns status, header, body.
func graphRequest(t testing.TB, method, u, token string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Content-Type" {
			req.Header.Set(header[i], header[i+1])
		} else {
			req.Header.Add(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}
