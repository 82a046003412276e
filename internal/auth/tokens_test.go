package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func TestEffectiveRole(t *testing.T) {
	for _, tc := range []struct {
		owner    string
		scopes   []string
		role     string
		readOnly bool
	}{
		{store.RoleAdmin, nil, store.RoleAdmin, false},
		{store.RoleAdmin, []string{"read"}, store.RoleAdmin, true},
		{store.RoleAdmin, []string{"agent"}, store.RoleAgent, false},
		{store.RoleAdmin, []string{"read", "supervisor"}, store.RoleSupervisor, true},
		{store.RoleAgent, []string{"admin"}, store.RoleAgent, false}, // demoted owner: the lower role
		{store.RoleSupervisor, []string{"supervisor"}, store.RoleSupervisor, false},
	} {
		role, ro := EffectiveRole(tc.owner, tc.scopes)
		if role != tc.role || ro != tc.readOnly {
			t.Errorf("EffectiveRole(%s, %v) = %s, %v; want %s, %v", tc.owner, tc.scopes, role, ro, tc.role, tc.readOnly)
		}
	}
}

func TestCreateTokenWithinRole(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	s.now = c.now
	ana, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// No scope and no expiry: the owner's role, 90 days.
	_, tok, err := s.CreateToken(ctx, ana, TokenRequest{Name: "report"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Scopes, []string{"agent"}) || !tok.ExpiresAt.Equal(c.t.Add(90*24*time.Hour)) {
		t.Errorf("default token = scopes %v expires %v, want [agent] in 90 days", tok.Scopes, tok.ExpiresAt)
	}
	if _, tok, err := s.CreateToken(ctx, ana, TokenRequest{Name: "r", Scopes: []string{"Agent", "read", "read"}}); err != nil || !slices.Equal(tok.Scopes, []string{"read", "agent"}) {
		t.Errorf("scopes Agent, read, read = %v, %v; want [read agent]", tok.Scopes, err)
	}

	var forbidden *ForbiddenError
	for _, scope := range []string{"admin", "supervisor"} {
		_, _, err := s.CreateToken(ctx, ana, TokenRequest{Name: "x", Scopes: []string{scope}})
		if !errors.As(err, &forbidden) || !strings.Contains(err.Error(), scope) {
			t.Errorf("agent creates a %s token: %v, want a ForbiddenError naming the scope", scope, err)
		}
	}
	var input *ValidationError
	for name, req := range map[string]TokenRequest{
		"expires_at": {Name: "x", ExpiresAt: c.t.Add(-time.Second)},
		"scopes":     {Name: "x", Scopes: []string{"write"}},
		"name":       {Name: "  "},
	} {
		_, _, err := s.CreateToken(ctx, ana, req)
		if !errors.As(err, &input) || input.Fields[name] == "" {
			t.Errorf("CreateToken(%+v) = %v, want a ValidationError on %s", req, err, name)
		}
	}
	_, _, err = s.CreateToken(ctx, ana, TokenRequest{Name: "x", ExpiresAt: c.t.Add(5*365*24*time.Hour + 24*time.Hour)})
	if !errors.As(err, &input) || !strings.Contains(input.Fields["expires_at"], "five years") {
		t.Errorf("a token for five years and a day: %v, want a ValidationError saying five years at most", err)
	}
	_, _, err = s.CreateToken(ctx, ana, TokenRequest{Name: "x", Scopes: []string{"agent", "supervisor"}})
	if !errors.As(err, &input) {
		t.Errorf("two role scopes: %v, want a ValidationError", err)
	}
}

func TestAuthorizeScopesAndExpiry(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	s.now = c.now
	root, err := s.EnsureUser(ctx, "root", "Root", store.RoleAdmin, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	token := func(scopes ...string) string {
		plain, _, err := s.CreateToken(ctx, root, TokenRequest{Name: "t " + strings.Join(scopes, "+"), Scopes: scopes, ExpiresAt: c.t.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	read, agent, full := token("read"), token("agent"), token()
	do := func(method, tok, need string) error {
		r := httptest.NewRequest(method, "/api/v1/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, _, err := s.Authorize(r, need)
		return err
	}
	var forbidden *ForbiddenError
	for _, tc := range []struct {
		method, tok, need string
		ok                bool
	}{
		{http.MethodGet, read, store.RoleAdmin, true},
		{http.MethodHead, read, store.RoleAgent, true},
		{http.MethodPost, read, store.RoleAgent, false},
		{http.MethodDelete, read, store.RoleAgent, false},
		{http.MethodPost, agent, store.RoleAgent, true},
		{http.MethodGet, agent, store.RoleSupervisor, false},
		{http.MethodPost, full, store.RoleAdmin, true},
	} {
		err := do(tc.method, tc.tok, tc.need)
		if tc.ok && err != nil || !tc.ok && !errors.As(err, &forbidden) {
			t.Errorf("%s needing %s with a %s token: %v, want ok=%v (ForbiddenError)", tc.method, tc.need, map[string]string{read: "read", agent: "agent", full: "full"}[tc.tok], err, tc.ok)
		}
	}
	if err := do(http.MethodPost, read, store.RoleAgent); err == nil || !strings.Contains(err.Error(), `"read"`) {
		t.Errorf("read token POST: %v, want a message naming the read scope", err)
	}
	// Authenticate gives the capped role to callers that check roles themselves.
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Set("Authorization", "Bearer "+agent)
	if u, _, err := s.Authenticate(r); err != nil || u.Role != store.RoleAgent {
		t.Errorf("Authenticate with an agent-scoped token of an admin = %q, %v; want agent", u.Role, err)
	}

	// Use is recorded, at most once a minute.
	list, _ := st.ListAPITokensOf(ctx, root.ID)
	for _, tok := range list {
		if tok.LastUsedAt.IsZero() || !tok.LastUsedAt.Equal(c.t) {
			t.Errorf("token %q last used %v, want %v", tok.Name, tok.LastUsedAt, c.t)
		}
	}

	// An expired token is refused, saying so.
	c.advance(24 * time.Hour)
	err = do(http.MethodGet, full, store.RoleAgent)
	if !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v, want ErrTokenExpired saying it expired", err)
	}
}
