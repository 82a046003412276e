package app_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := app.ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.10 ,, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, " ") != "10.0.0.0/8 192.0.2.10/32 2001:db8::/32" {
		t.Errorf("ParseTrustedProxies = %v", s)
	}
	if _, err := app.ParseTrustedProxies("10.0.0.0/8, proxy.example"); err == nil || !strings.Contains(err.Error(), `"proxy.example" is neither an address nor a prefix`) {
		t.Errorf("a host name: %v", err)
	}
	if got, err := app.ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
}

// TestSignInAddressAndVault: the app wires the sign-in service: the client address in the
// audit log is the connection's, X-Forwarded-For counts only from POSTROOM_TRUSTED_PROXIES,
// and second factors can be set up (the vault is given).
func TestSignInAddressAndVault(t *testing.T) {
	for _, tc := range []struct {
		proxies, want string
	}{{"", "address=127.0.0.1 "}, {"127.0.0.0/8", "address=203.0.113.5 "}} {
		ctx := t.Context()
		a, err := app.Open(ctx, app.Config{DataDir: t.TempDir(), Version: "test", Getenv: func(k string) string {
			if k == app.EnvTrustedProxies {
				return tc.proxies
			}
			return ""
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		u, err := a.Auth.CreateUser(ctx, "ana", "", store.RoleAgent, "a long passphrase for ana")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Auth.StartSecondFactor(ctx, u); err != nil {
			t.Errorf("second factors unavailable: %v", err)
		}
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/session", strings.NewReader(`{"user":"ana","password":"wrong password"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "203.0.113.5")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
		events, err := a.Store.ListAudit(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].Action != "login.failure" || !strings.HasPrefix(events[0].New, tc.want) {
			t.Errorf("proxies %q: audit %+v, want %s", tc.proxies, events, tc.want)
		}
	}
}
