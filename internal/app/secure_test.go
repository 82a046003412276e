package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestSecureCookiesFromPublicURL: an https public URL, or SecureCookies for TLS at a
// proxy, makes the session cookie Secure and puts HSTS on pages, the API and /metrics;
// an http public URL does neither.
func TestSecureCookiesFromPublicURL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    app.Config
		secure bool
	}{
		{"http public URL", app.Config{PublicURL: "http://postroom.example.org"}, false},
		{"https public URL", app.Config{PublicURL: "https://postroom.example.org"}, true},
		{"TLS at a proxy", app.Config{SecureCookies: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tc.cfg
			cfg.DataDir = t.TempDir()
			cfg.Getenv = func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] }
			cfg.Logger = slog.New(slog.DiscardHandler)
			a, err := app.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			if _, err := a.Auth.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "ana's long password"); err != nil {
				t.Fatal(err)
			}
			base := serveHandler(t, a)
			req, _ := http.NewRequest("POST", base+"/api/v1/session", strings.NewReader(`{"user":"ana","password":"ana's long password"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if c := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusOK || strings.Contains(c, "; Secure") != tc.secure {
				t.Errorf("sign-in: %d Set-Cookie %q, want Secure=%v", resp.StatusCode, c, tc.secure)
			}
			for _, path := range []string{"/login", "/api/v1/openapi.json", "/metrics"} {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				hsts := resp.Header.Get("Strict-Transport-Security")
				if tc.secure && hsts != "max-age=31536000" || !tc.secure && hsts != "" {
					t.Errorf("GET %s: Strict-Transport-Security %q, want it=%v", path, hsts, tc.secure)
				}
			}
		})
	}
}
