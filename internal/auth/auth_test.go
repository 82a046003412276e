package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

func newTestService(t *testing.T) (*Service, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return NewService(st, nil), st
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		role, need string
		want       bool
	}{
		{"admin", "admin", true},
		{"admin", "supervisor", true},
		{"admin", "agent", true},
		{"supervisor", "admin", false},
		{"supervisor", "supervisor", true},
		{"supervisor", "agent", true},
		{"agent", "admin", false},
		{"agent", "supervisor", false},
		{"agent", "agent", true},
		{"", "agent", false},
		{"root", "agent", false},
		{"admin", "", false},
	}
	for _, tc := range tests {
		if got := Allowed(tc.role, tc.need); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.role, tc.need, got, tc.want)
		}
	}
}

func TestLogin(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	if _, err := s.EnsureUser(ctx, "ana", "Ana Agent", store.RoleAgent, "correct horse"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		wantErr              error
	}{
		{"good", "ana", "correct horse", nil},
		{"user name with spaces around", " ana ", "correct horse", nil},
		{"wrong password", "ana", "battery staple", ErrBadCredentials},
		{"unknown user", "bob", "correct horse", ErrBadCredentials},
		{"empty password", "ana", "", ErrBadCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, sess, u, err := s.Login(ctx, tc.user, tc.password)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Login error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if u.Username != "ana" || u.Role != store.RoleAgent {
				t.Errorf("user = %+v", u)
			}
			if token == "" || sess.TokenHash != HashToken(token) || strings.Contains(sess.TokenHash, token) {
				t.Errorf("session stores %q for token %q: want only its hash", sess.TokenHash, token)
			}
			if sess.CSRFToken == "" || sess.CSRFToken == token {
				t.Errorf("CSRF token %q: want its own random value", sess.CSRFToken)
			}
			if d := sess.ExpiresAt.Sub(sess.CreatedAt); d != SessionLifetime {
				t.Errorf("session lasts %v, want %v", d, SessionLifetime)
			}
		})
	}
}

func TestEnsureUserKeepsExisting(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	first, err := s.EnsureUser(ctx, "admin", "Admin", store.RoleAdmin, "first password")
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.EnsureUser(ctx, "admin", "Other", store.RoleAgent, "second password")
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.Role != store.RoleAdmin {
		t.Errorf("EnsureUser changed the existing user: %+v", second)
	}
	if _, _, _, err := s.Login(ctx, "admin", "first password"); err != nil {
		t.Errorf("first password no longer works: %v", err)
	}
	for _, bad := range []struct{ user, role, pw string }{
		{"x", "boss", "pw"},
		{"", store.RoleAgent, "pw"},
		{"y", store.RoleAgent, ""},
		{"z", store.RoleAgent, strings.Repeat("p", MaxPasswordBytes+1)},
	} {
		if _, err := s.EnsureUser(ctx, bad.user, "", bad.role, bad.pw); err == nil {
			t.Errorf("EnsureUser(%q, role %q, %d-byte password) accepted", bad.user, bad.role, len(bad.pw))
		}
	}
}

func TestAuthenticate(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, "sam", "Sam", store.RoleSupervisor, "pw-sam-123-long")
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := s.Login(ctx, "sam", "pw-sam-123-long")
	if err != nil {
		t.Fatal(err)
	}
	apiToken, _, err := s.CreateAPIToken(ctx, u, "nightly report")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(apiToken, APITokenPrefix) {
		t.Errorf("api token %q lacks prefix %q", apiToken, APITokenPrefix)
	}

	// An expired session, stored directly.
	expired := "expired-session-token"
	if err := st.CreateSession(ctx, store.Session{
		TokenHash: HashToken(expired), UserID: u.ID, CSRFToken: "c",
		CreatedAt: time.Now().Add(-13 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour),
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		cookie      string
		auth        string
		wantErr     error
		wantSession bool
	}{
		{"session cookie", token, "", nil, true},
		{"bearer token", "", "Bearer " + apiToken, nil, false},
		{"bearer scheme in lower case", "", "bearer " + apiToken, nil, false},
		{"nothing", "", "", ErrUnauthenticated, false},
		{"unknown cookie", "nope", "", ErrUnauthenticated, false},
		{"expired session", expired, "", ErrUnauthenticated, false},
		{"unknown bearer", "", "Bearer prt_nope", ErrUnauthenticated, false},
		{"session token as bearer", "", "Bearer " + token, ErrUnauthenticated, false},
		{"basic auth", "", "Basic c2FtOnB3", ErrUnauthenticated, false},
		{"bad bearer wins over good cookie", token, "Bearer prt_nope", ErrUnauthenticated, false},
		{"proxy basic auth beside the cookie", token, "Basic c2FtOnB3", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: tc.cookie})
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			got, sess, err := s.Authenticate(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Authenticate error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && got.ID != u.ID {
				t.Errorf("user = %+v, want %q", got, u.Username)
			}
			if ViaSession(sess) != tc.wantSession {
				t.Errorf("ViaSession = %v, want %v", ViaSession(sess), tc.wantSession)
			}
		})
	}

	if _, err := st.SessionByTokenHash(ctx, HashToken(expired)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session still stored (err %v)", err)
	}

	// After logout the cookie no longer works.
	if err := s.Logout(ctx, token); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: token})
	if _, _, err := s.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("after logout: %v, want ErrUnauthenticated", err)
	}
}

func TestCheckCSRF(t *testing.T) {
	sess := store.Session{CSRFToken: "abc123"}
	for _, tc := range []struct {
		token string
		want  bool
	}{{"abc123", true}, {"abc124", false}, {"", false}, {"abc1234", false}} {
		if got := CheckCSRF(sess, tc.token); got != tc.want {
			t.Errorf("CheckCSRF(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if CheckCSRF(store.Session{}, "") {
		t.Error("empty session CSRF token matched an empty form value")
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		if tls {
			r = httptest.NewRequest(http.MethodPost, "https://example.test/login", nil)
		}
		w := httptest.NewRecorder()
		SetSessionCookie(w, r, "tok", time.Now().Add(time.Hour))
		cs := w.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("cookies = %v", cs)
		}
		c := cs[0]
		if c.Name != SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tls {
			t.Errorf("tls=%v: cookie %+v: want HttpOnly, SameSite=Lax, Path=/, Secure=%v", tls, c, tls)
		}
	}
}
