package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

// tokenAnswer is what POST /api/v1/tokens answers, with the names scripts rely on.
type tokenAnswer struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
}

func createScoped(t *testing.T, c *client, body string) tokenAnswer {
	t.Helper()
	resp := c.postJSON("/api/v1/tokens", body)
	if resp.status != http.StatusCreated {
		t.Fatalf("POST /api/v1/tokens %s: %d %s, want 201", body, resp.status, resp.body)
	}
	var a tokenAnswer
	if err := json.Unmarshal(resp.body, &a); err != nil || !strings.HasPrefix(a.Token, auth.APITokenPrefix) || a.ID == 0 || a.CreatedAt.IsZero() || a.ExpiresAt.IsZero() {
		t.Fatalf("POST /api/v1/tokens %s: %s (%v), want token, id, name, scopes, expires_at, created_at", body, resp.body, err)
	}
	return a
}

func (f *fixture) bearerClient(t *testing.T, token string) *client {
	c := f.client(t)
	c.bearer = token
	return c
}

func TestTokenScopes(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	read := createScoped(t, admin, fmt.Sprintf(`{"name":"dashboard","scopes":["read"],"expires_at":%q}`, expires.Format(time.RFC3339)))
	if !slices.Equal(read.Scopes, []string{"read"}) || !read.ExpiresAt.Equal(expires) || read.Name != "dashboard" {
		t.Errorf("created read token = %+v, want scopes [read], expires %v", read, expires)
	}

	// A read token of an admin reads everything an admin reads, and changes nothing.
	script := f.bearerClient(t, read.Token)
	for _, path := range []string{"/api/v1/workitems", "/api/v1/mailboxes", "/api/v1/users"} {
		if resp := script.get(path); resp.status != http.StatusOK {
			t.Errorf("GET %s with a read token: %d %s, want 200", path, resp.status, resp.body)
		}
	}
	resp := script.postJSON("/api/v1/mailboxes", `{"name":"x"}`)
	if resp.status != http.StatusForbidden {
		t.Fatalf("POST /api/v1/mailboxes with a read token: %d %s, want 403", resp.status, resp.body)
	}
	if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, `"read"`) || !strings.Contains(msg, "only read") {
		t.Errorf("403 %q does not say that the token may only read", msg)
	}
	for _, path := range []string{"/api/v1/tokens", fmt.Sprintf("/api/v1/workitems/%d/reply", f.items["html.eml"].WorkItemID)} {
		if resp := script.postJSON(path, `{"name":"again","text":"hi"}`); resp.status != http.StatusForbidden {
			t.Errorf("POST %s with a read token: %d %s, want 403", path, resp.status, resp.body)
		}
	}

	// An agent-scoped token of an admin acts as an agent.
	agentTok := createScoped(t, admin, `{"name":"agent bot","scopes":["agent"]}`)
	bot := f.bearerClient(t, agentTok.Token)
	if resp := bot.get("/api/v1/workitems"); resp.status != http.StatusOK {
		t.Errorf("agent-scoped token lists work items: %d, want 200", resp.status)
	}
	if resp := bot.get("/api/v1/mailboxes"); resp.status != http.StatusForbidden {
		t.Errorf("agent-scoped token of an admin lists mailboxes: %d %s, want 403", resp.status, resp.body)
	} else if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "limited") {
		t.Errorf("403 %q does not say that the token's scope limits it", msg)
	}
	if resp := bot.postJSON("/api/v1/tokens", `{"name":"escalate","scopes":["admin"]}`); resp.status != http.StatusForbidden {
		t.Errorf("agent-scoped token creates an admin token: %d %s, want 403", resp.status, resp.body)
	}
	// Default expiry: 90 days.
	if d := time.Until(agentTok.ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("token without expires_at expires in %v, want 90 days", d)
	}

	// Any user creates tokens for themself, within their role.
	ana := f.signedIn(t, "ana")
	for i, scopes := range []string{`["read"]`, `["agent"]`, `[]`} {
		tok := createScoped(t, ana, fmt.Sprintf(`{"name":"ana %d","scopes":%s}`, i, scopes))
		if got := f.meStatus(t, tok.Token); got != http.StatusOK {
			t.Errorf("ana's %s token: GET /me %d, want 200", scopes, got)
		}
	}
	for _, scope := range []string{"admin", "supervisor"} {
		resp := ana.postJSON("/api/v1/tokens", fmt.Sprintf(`{"name":"x","scopes":[%q]}`, scope))
		if resp.status != http.StatusForbidden {
			t.Errorf("agent creates a %s token: %d %s, want 403", scope, resp.status, resp.body)
		} else if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, scope) {
			t.Errorf("403 %q does not name the scope %s", msg, scope)
		}
	}

	// Bad requests: a clear 400 naming the field.
	for body, field := range map[string]string{
		`{"name":"x","expires_at":"2020-01-01T00:00:00Z"}`:                                            "expires_at",
		fmt.Sprintf(`{"name":"x","expires_at":%q}`, time.Now().AddDate(6, 0, 0).Format(time.RFC3339)): "expires_at",
		`{"name":"x","expires_at":"next week"}`:                                                       "expires_at",
		`{"name":"x","scopes":["write"]}`:                                                             "scopes",
		`{"name":"x","scopes":["agent","admin"]}`:                                                     "scopes",
		`{"name":"","scopes":["read"]}`:                                                               "name",
	} {
		resp := admin.postJSON("/api/v1/tokens", body)
		if resp.status != http.StatusBadRequest {
			t.Errorf("POST /api/v1/tokens %s: %d %s, want 400", body, resp.status, resp.body)
			continue
		}
		var e errorBody
		if err := json.Unmarshal(resp.body, &e); err != nil || e.Fields[field] == "" {
			t.Errorf("POST /api/v1/tokens %s: %s, want an error on %s", body, resp.body, field)
		}
	}

	// Last use shows in the listing.
	resp = admin.get("/api/v1/tokens")
	var list struct {
		Tokens []struct {
			Name       string     `json:"name"`
			LastUsedAt *time.Time `json:"last_used_at"`
			Scopes     []string   `json:"scopes"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(resp.body, &list); err != nil {
		t.Fatal(err)
	}
	for _, tok := range list.Tokens {
		if tok.LastUsedAt == nil || time.Since(*tok.LastUsedAt) > time.Minute {
			t.Errorf("token %q used a moment ago shows last_used_at %v", tok.Name, tok.LastUsedAt)
		}
	}
}

func TestExpiredTokenRefused(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	admin, err := f.st.UserByUsername(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	plain := auth.APITokenPrefix + "expired-token-for-the-test"
	if _, err := f.st.CreateAPIToken(ctx, store.APIToken{UserID: admin.ID, Name: "old", TokenHash: auth.HashToken(plain),
		ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	resp := f.bearerClient(t, plain).get("/api/v1/workitems")
	if resp.status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d %s, want 401", resp.status, resp.body)
	}
	if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "expired") {
		t.Errorf("401 %q does not say that the token expired", msg)
	}
	if h := resp.header.Get("WWW-Authenticate"); !strings.Contains(h, "invalid_token") {
		t.Errorf("WWW-Authenticate = %q, want error=invalid_token", h)
	}
}

type sessionList struct {
	Sessions []struct {
		ID            int64     `json:"id"`
		CreatedAt     time.Time `json:"created_at"`
		LastSeenAt    time.Time `json:"last_seen_at"`
		ClientAddress string    `json:"client_address"`
		UserAgent     string    `json:"user_agent"`
		Current       bool      `json:"current"`
	} `json:"sessions"`
}

func listSessions(t *testing.T, c *client, path string) sessionList {
	t.Helper()
	resp := c.get(path)
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.status, resp.body)
	}
	var l sessionList
	if err := json.Unmarshal(resp.body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestOwnSessions(t *testing.T) {
	f := newFixture(t)
	laptop := f.signedIn(t, "ana")
	phone := f.signedIn(t, "ana")
	f.signedIn(t, "admin")

	resp := laptop.get("/api/v1/me/sessions")
	for _, c := range []string{"token_hash", "csrf"} {
		if strings.Contains(string(resp.body), c) {
			t.Errorf("session list carries %s: %s", c, resp.body)
		}
	}
	l := listSessions(t, laptop, "/api/v1/me/sessions")
	if len(l.Sessions) != 2 {
		t.Fatalf("ana's sessions = %+v, want 2", l)
	}
	var current, other int64
	for _, se := range l.Sessions {
		if se.ClientAddress != "127.0.0.1" || se.UserAgent != "Go-http-client" || se.CreatedAt.IsZero() || se.LastSeenAt.IsZero() {
			t.Errorf("session %+v, want client 127.0.0.1, agent Go-http-client and times", se)
		}
		if se.Current {
			current = se.ID
		} else {
			other = se.ID
		}
	}
	if current == 0 || other == 0 {
		t.Fatalf("sessions %+v: want exactly one marked current", l)
	}

	// Ana ends her phone's session from the laptop: the phone is signed out at once.
	if resp := laptop.del(fmt.Sprintf("/api/v1/me/sessions/%d", other)); resp.status != http.StatusNoContent {
		t.Fatalf("end the other session: %d %s", resp.status, resp.body)
	}
	if resp := phone.get("/api/v1/me"); resp.status != http.StatusUnauthorized {
		t.Errorf("the ended session: %d, want 401", resp.status)
	}
	if resp := laptop.get("/api/v1/me"); resp.status != http.StatusOK {
		t.Errorf("the session that ended the other: %d, want 200", resp.status)
	}
	// Ended already, or someone else's: 404.
	adminSessions, err := f.st.ListSessions(t.Context(), 1, time.Now())
	if err != nil || len(adminSessions) != 1 {
		t.Fatalf("admin's stored sessions = %+v, %v", adminSessions, err)
	}
	for _, id := range []int64{other, adminSessions[0].ID} {
		if resp := laptop.del(fmt.Sprintf("/api/v1/me/sessions/%d", id)); resp.status != http.StatusNotFound {
			t.Errorf("ana ends session %d: %d %s, want 404", id, resp.status, resp.body)
		}
	}
	// Ending the current one signs out.
	resp = laptop.del(fmt.Sprintf("/api/v1/me/sessions/%d", current))
	if resp.status != http.StatusNoContent || !strings.Contains(resp.header.Get("Set-Cookie"), auth.SessionCookie+"=;") {
		t.Errorf("end the current session: %d %v, want 204 clearing the cookie", resp.status, resp.header)
	}
	if resp := laptop.get("/api/v1/me"); resp.status != http.StatusUnauthorized {
		t.Errorf("after ending the current session: %d, want 401", resp.status)
	}
	events, err := f.st.ListAudit(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Action == "session.end" && e.Actor == "ana" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("session.end events by ana = %d, want 2", n)
	}
}

func TestAdminEndsSessions(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	ana1, ana2 := f.signedIn(t, "ana"), f.signedIn(t, "ana")
	anaUser, err := f.st.UserByUsername(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("/api/v1/users/%d/sessions", anaUser.ID)
	l := listSessions(t, admin, base)
	if len(l.Sessions) != 2 || l.Sessions[0].Current || l.Sessions[1].Current {
		t.Fatalf("admin lists ana's sessions: %+v, want 2, none current", l)
	}
	if resp := ana1.get(base); resp.status != http.StatusForbidden {
		t.Errorf("ana lists sessions through the admin path: %d, want 403", resp.status)
	}
	if resp := f.signedIn(t, "sam").del(base); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor ends ana's sessions: %d, want 403", resp.status)
	}
	if resp := admin.del(fmt.Sprintf("%s/%d", base, l.Sessions[0].ID)); resp.status != http.StatusNoContent {
		t.Fatalf("admin ends one of ana's sessions: %d %s", resp.status, resp.body)
	}
	left := 0
	for _, c := range []*client{ana1, ana2} {
		if c.get("/api/v1/me").status == http.StatusOK {
			left++
		}
	}
	if left != 1 {
		t.Errorf("after the admin ended one of two sessions, %d work, want 1", left)
	}
	resp := admin.del(base)
	if resp.status != http.StatusOK || resp.json(t)["ended"] != float64(1) {
		t.Errorf("admin ends all of ana's sessions: %d %s, want 200 ended 1", resp.status, resp.body)
	}
	for _, c := range []*client{ana1, ana2} {
		if resp := c.get("/api/v1/me"); resp.status != http.StatusUnauthorized {
			t.Errorf("ana's session after the admin ended all: %d, want 401", resp.status)
		}
	}
	if resp := admin.del(fmt.Sprintf("/api/v1/users/%d/sessions/1", anaUser.ID+100)); resp.status != http.StatusNotFound {
		t.Errorf("sessions of an unknown user: %d, want 404", resp.status)
	}
	if resp := admin.get("/api/v1/me"); resp.status != http.StatusOK {
		t.Errorf("the admin's own session: %d, want 200", resp.status)
	}
}

// TestDisableEndsSessionsAndTokens: disabling a user refuses their open session and API
// token on the very next request.
func TestDisableEndsSessionsAndTokens(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	ana := f.signedIn(t, "ana")
	tok := createScoped(t, ana, `{"name":"ana's script"}`)
	script := f.bearerClient(t, tok.Token)
	if ana.get("/api/v1/me").status != http.StatusOK || script.get("/api/v1/me").status != http.StatusOK {
		t.Fatal("ana's session and token do not work before the disable")
	}
	anaUser, err := f.st.UserByUsername(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	if resp := admin.putJSON(fmt.Sprintf("/api/v1/users/%d", anaUser.ID), `{"disabled": true}`); resp.status != http.StatusOK {
		t.Fatalf("disable ana: %d %s", resp.status, resp.body)
	}
	if resp := ana.get("/api/v1/workitems"); resp.status != http.StatusUnauthorized {
		t.Errorf("disabled user's session: %d %s, want 401", resp.status, resp.body)
	}
	if resp := script.get("/api/v1/workitems"); resp.status != http.StatusUnauthorized {
		t.Errorf("disabled user's token: %d %s, want 401", resp.status, resp.body)
	}
	// Enabling her again does not bring them back.
	if resp := admin.putJSON(fmt.Sprintf("/api/v1/users/%d", anaUser.ID), `{"disabled": false}`); resp.status != http.StatusOK {
		t.Fatalf("enable ana: %d %s", resp.status, resp.body)
	}
	if ana.get("/api/v1/me").status != http.StatusUnauthorized || script.get("/api/v1/me").status != http.StatusUnauthorized {
		t.Error("ana's old session or token works again after she was enabled")
	}
}

func TestSessionSettings(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	resp := admin.get("/api/v1/settings/sessions")
	if resp.status != http.StatusOK || resp.json(t)["idle_timeout_minutes"] != float64(120) || resp.json(t)["absolute_timeout_minutes"] != float64(720) {
		t.Fatalf("default session settings: %d %s, want idle 120, absolute 720", resp.status, resp.body)
	}
	for body, field := range map[string]string{
		`{"idle_timeout_minutes": 1, "absolute_timeout_minutes": 720}`:                   "idle_timeout_minutes",
		`{"idle_timeout_minutes": 800, "absolute_timeout_minutes": 720}`:                 "idle_timeout_minutes",
		`{"idle_timeout_minutes": 60, "absolute_timeout_minutes": 99999999}`:             "absolute_timeout_minutes",
		`{"idle_timeout_minutes": 60}`:                                                   "absolute_timeout_minutes",
		`{"idle_timeout_minutes": 9223372036854775807, "absolute_timeout_minutes": 720}`: "idle_timeout_minutes",
	} {
		resp := admin.putJSON("/api/v1/settings/sessions", body)
		var e errorBody
		if resp.status != http.StatusBadRequest || json.Unmarshal(resp.body, &e) != nil || e.Fields[field] == "" {
			t.Errorf("PUT %s: %d %s, want 400 on %s", body, resp.status, resp.body, field)
		}
	}
	if resp := f.signedIn(t, "sam").putJSON("/api/v1/settings/sessions", `{"idle_timeout_minutes": 30, "absolute_timeout_minutes": 60}`); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor changes the session settings: %d, want 403", resp.status)
	}
	resp = admin.putJSON("/api/v1/settings/sessions", `{"idle_timeout_minutes": 30, "absolute_timeout_minutes": 480}`)
	if resp.status != http.StatusOK || resp.json(t)["idle_timeout_minutes"] != float64(30) {
		t.Fatalf("PUT session settings: %d %s", resp.status, resp.body)
	}
	if got, err := f.auth.SessionTimeouts(t.Context()); err != nil || got.Idle != 30*time.Minute || got.Absolute != 8*time.Hour {
		t.Errorf("timeouts in force = %+v, %v; want 30 min, 8 h", got, err)
	}
	if resp := admin.get("/api/v1/settings/sessions"); resp.json(t)["absolute_timeout_minutes"] != float64(480) {
		t.Errorf("GET after PUT: %s", resp.body)
	}
}

// TestSecureCookiesAndHSTS: with SecureCookies (an https public URL, or TLS at a proxy)
// the session cookie is Secure and every answer carries HSTS; without, neither.
func TestSecureCookiesAndHSTS(t *testing.T) {
	f := newFixture(t)
	for _, secure := range []bool{false, true} {
		srv := httptest.NewServer(New(Options{Store: f.st, Auth: f.auth, Replier: outbound.NewService(f.st, slog.New(slog.DiscardHandler)), SecureCookies: secure}))
		c := f.client(t)
		c.base = srv.URL
		resp := c.postJSON("/api/v1/session", fmt.Sprintf(`{"user":"ana","password":%q}`, testPassword))
		cookie := resp.header.Get("Set-Cookie")
		if resp.status != http.StatusOK || strings.Contains(cookie, "Secure") != secure {
			t.Errorf("SecureCookies=%v: sign-in %d Set-Cookie %q, want Secure=%v", secure, resp.status, cookie, secure)
		}
		for _, r := range []response{resp, c.get("/api/v1/nothing"), c.get("/api/v1/openapi.json")} {
			if got := r.header.Get("Strict-Transport-Security"); (got == "max-age=31536000") != secure || (!secure && got != "") {
				t.Errorf("SecureCookies=%v: Strict-Transport-Security %q", secure, got)
			}
		}
		srv.Close()
	}
}
