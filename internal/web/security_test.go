package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

var newTokenRe = regexp.MustCompile(`id="new-token-value">(prt_[A-Za-z0-9_-]+)<`)

func bearerRequest(method, token string) *http.Request {
	r := httptest.NewRequest(method, "/api/v1/workitems", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func TestSecurityPageSessions(t *testing.T) {
	f := newFixture(t)
	laptop := f.signIn(t, "ana")
	phone := f.signIn(t, "ana")
	p := laptop.get("/account")
	if !strings.Contains(p.body, `href="/account/security"`) {
		t.Errorf("the Account page does not link to Sessions and API tokens")
	}
	p = laptop.get("/account/security")
	if p.status != http.StatusOK {
		t.Fatalf("GET /account/security: %d\n%s", p.status, p.body)
	}
	if n := strings.Count(p.body, `<tr id="session-`); n != 2 {
		t.Errorf("the page lists %d sessions, want 2:\n%s", n, p.body)
	}
	if strings.Count(p.body, `id="this-session"`) != 1 || !strings.Contains(p.body, "127.0.0.1") || !strings.Contains(p.body, "Go-http-client") {
		t.Errorf("the session list does not mark this one, or lacks the address and browser:\n%s", p.body)
	}
	if !strings.Contains(p.body, "2 h without activity") || !strings.Contains(p.body, "12 h after signing in") {
		t.Errorf("the page does not say when sessions end:\n%s", p.body)
	}
	// End the phone's session (the one not marked).
	ids := regexp.MustCompile(`action="/account/sessions/(\d+)/end"[^>]*>\s*<input[^>]*>\s*<button[^>]*>End<`).FindStringSubmatch(p.body)
	if ids == nil {
		t.Fatalf("no End button for the other session:\n%s", p.body)
	}
	resp := laptop.post("/account/sessions/"+ids[1]+"/end", url.Values{"csrf": {p.csrf(t)}})
	if resp.status != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "notice=ended") {
		t.Fatalf("end the other session: %d %s", resp.status, resp.header.Get("Location"))
	}
	if got := phone.get("/workitems"); got.status != http.StatusSeeOther || !strings.HasPrefix(got.header.Get("Location"), "/login") {
		t.Errorf("the ended session still opens pages: %d %s", got.status, got.header.Get("Location"))
	}
	if got := laptop.get("/account/security?notice=ended"); !strings.Contains(got.body, "Session ended") || strings.Count(got.body, `<tr id="session-`) != 1 {
		t.Errorf("after ending: %d\n%s", got.status, got.body)
	}
	// Ending it again: 404, said on the page.
	if got := laptop.post("/account/sessions/"+ids[1]+"/end", url.Values{"csrf": {p.csrf(t)}}); got.status != http.StatusNotFound || !strings.Contains(got.body, "ended already") {
		t.Errorf("end an ended session: %d\n%s", got.status, got.body)
	}
}

func TestSecurityPageTokens(t *testing.T) {
	f := newFixture(t)
	ana := f.signIn(t, "ana")
	p := ana.get("/account/security")
	csrf := p.csrf(t)
	if strings.Contains(p.body, `value="admin"`) || strings.Contains(p.body, `value="supervisor"`) || !strings.Contains(p.body, `value="read"`) {
		t.Errorf("an agent is offered scopes above her role, or not read:\n%s", p.body)
	}
	expires := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
	created := ana.post("/account/tokens", url.Values{"csrf": {csrf}, "name": {"my report"}, "scopes": {"read"}, "expires": {expires}})
	m := newTokenRe.FindStringSubmatch(created.body)
	if created.status != http.StatusCreated || m == nil {
		t.Fatalf("create a token: %d\n%s", created.status, created.body)
	}
	token := m[1]
	if !strings.Contains(created.body, "shown only this once") {
		t.Errorf("the page does not say the token is shown once")
	}
	// The token reads, and only reads.
	if _, _, err := f.auth.Authorize(bearerRequest(http.MethodGet, token), store.RoleAgent); err != nil {
		t.Errorf("the new read token cannot read: %v", err)
	}
	var forbidden *auth.ForbiddenError
	if _, _, err := f.auth.Authorize(bearerRequest(http.MethodPost, token), store.RoleAgent); !errors.As(err, &forbidden) {
		t.Errorf("the new read token may POST: %v", err)
	}
	list := ana.get("/account/security")
	if strings.Contains(list.body, token) {
		t.Errorf("the token is shown again")
	}
	row := regexp.MustCompile(`(?s)<tr id="token-(\d+)">(.*?)</tr>`).FindStringSubmatch(list.body)
	if row == nil || !strings.Contains(row[2], "my report") || !strings.Contains(row[2], "read") || strings.Contains(row[2], "never") {
		t.Errorf("the token row does not show name, scope and last use:\n%s", list.body)
	}

	// Refused: an admin scope for an agent, a day in the past.
	for _, tc := range []struct {
		form   url.Values
		status int
		want   string
	}{
		{url.Values{"name": {"x"}, "scopes": {"admin"}}, http.StatusForbidden, "may not create a token with the scope"},
		{url.Values{"name": {"x"}, "expires": {"2020-01-01"}}, http.StatusBadRequest, "this time has passed"},
		{url.Values{"name": {"x"}, "expires": {time.Now().AddDate(6, 0, 0).Format(time.DateOnly)}}, http.StatusBadRequest, "at most five years"},
		{url.Values{"name": {""}}, http.StatusBadRequest, "say what the token is for"},
	} {
		tc.form.Set("csrf", csrf)
		got := ana.post("/account/tokens", tc.form)
		if got.status != tc.status || !strings.Contains(got.body, tc.want) || newTokenRe.MatchString(got.body) {
			t.Errorf("create %v: %d, want %d saying %q:\n%s", tc.form, got.status, tc.status, tc.want, got.body)
		}
	}

	// Another user's token cannot be revoked here; her own can.
	admin, err := f.st.UserByUsername(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := f.auth.CreateAPIToken(t.Context(), admin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if got := ana.post(fmt.Sprintf("/account/tokens/%d/revoke", other.ID), url.Values{"csrf": {csrf}}); got.status != http.StatusNotFound {
		t.Errorf("ana revokes the admin's token: %d", got.status)
	}
	if _, err := f.st.APIToken(t.Context(), other.ID); err != nil {
		t.Errorf("the admin's token after ana's attempt: %v", err)
	}
	if got := ana.post("/account/tokens/"+row[1]+"/revoke", url.Values{"csrf": {csrf}}); got.status != http.StatusSeeOther {
		t.Fatalf("revoke own token: %d\n%s", got.status, got.body)
	}
	if _, _, err := f.auth.Authenticate(bearerRequest(http.MethodGet, token)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("the revoked token still authenticates: %v", err)
	}
	if got := ana.get("/account/security?notice=revoked"); !strings.Contains(got.body, "Token revoked") || !strings.Contains(got.body, `id="no-tokens"`) {
		t.Errorf("after revoking: \n%s", got.body)
	}
}

func TestAdminEndsUserSessionsPage(t *testing.T) {
	f := newFixture(t)
	ana := f.signIn(t, "ana")
	admin := f.signIn(t, "admin")
	u, err := f.st.UserByUsername(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	p := admin.get(fmt.Sprintf("/users/%d", u.ID))
	if !strings.Contains(p.body, `id="user-sessions"`) || strings.Count(p.body, `<tr id="session-`) != 1 {
		t.Fatalf("ana's user page does not list her session:\n%s", p.body)
	}
	resp := admin.post(fmt.Sprintf("/users/%d/sessions/end", u.ID), url.Values{"csrf": {p.csrf(t)}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("end ana's sessions: %d\n%s", resp.status, resp.body)
	}
	if got := ana.get("/workitems"); got.status != http.StatusSeeOther || !strings.HasPrefix(got.header.Get("Location"), "/login") {
		t.Errorf("ana's ended session still opens pages: %d", got.status)
	}
	if got := admin.get(resp.header.Get("Location")); !strings.Contains(got.body, "signed out everywhere") || !strings.Contains(got.body, `id="no-sessions"`) {
		t.Errorf("after ending: \n%s", got.body)
	}
	if got := admin.get("/workitems"); got.status != http.StatusOK {
		t.Errorf("the admin's own session after ending ana's: %d", got.status)
	}
	events, err := f.st.ListAuditFor(t.Context(), fmt.Sprintf("user:%d", u.ID), 0)
	if err != nil || len(events) == 0 || events[0].Action != "session.end" || events[0].Actor != "admin" {
		t.Errorf("audit of ana = %+v, %v; want session.end by admin", events, err)
	}
	// Not for others than admins.
	sam := f.signIn(t, "sam")
	if got := sam.post(fmt.Sprintf("/users/%d/sessions/end", u.ID), url.Values{"csrf": {sam.get("/account").csrf(t)}}); got.status != http.StatusForbidden {
		t.Errorf("a supervisor ends ana's sessions: %d", got.status)
	}
}

func TestSessionSettingsPage(t *testing.T) {
	f := newFixture(t)
	admin := f.signIn(t, "admin")
	if got := admin.get("/users"); !strings.Contains(got.body, `href="/settings/sessions"`) {
		t.Errorf("the users page does not link the session timeouts")
	}
	p := admin.get("/settings/sessions")
	if p.status != http.StatusOK || !strings.Contains(p.body, `value="120"`) || !strings.Contains(p.body, `value="720"`) {
		t.Fatalf("GET /settings/sessions: %d\n%s", p.status, p.body)
	}
	bad := admin.post("/settings/sessions", url.Values{"csrf": {p.csrf(t)}, "idle": {"900"}, "absolute": {"600"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `id="idle-error"`) {
		t.Errorf("idle over absolute: %d\n%s", bad.status, bad.body)
	}
	bad = admin.post("/settings/sessions", url.Values{"csrf": {p.csrf(t)}, "idle": {"two hours"}, "absolute": {"600"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "whole minutes") {
		t.Errorf("idle not a number: %d\n%s", bad.status, bad.body)
	}
	ok := admin.post("/settings/sessions", url.Values{"csrf": {p.csrf(t)}, "idle": {"30"}, "absolute": {"480"}})
	if ok.status != http.StatusSeeOther {
		t.Fatalf("save timeouts: %d\n%s", ok.status, ok.body)
	}
	if got, err := f.auth.SessionTimeouts(t.Context()); err != nil || got.Idle != 30*time.Minute || got.Absolute != 8*time.Hour {
		t.Errorf("timeouts = %+v, %v", got, err)
	}
	if got := admin.get(ok.header.Get("Location")); !strings.Contains(got.body, "Saved") || !strings.Contains(got.body, `value="30"`) {
		t.Errorf("after saving:\n%s", got.body)
	}
	if got := f.signIn(t, "sam").get("/settings/sessions"); got.status != http.StatusForbidden {
		t.Errorf("a supervisor opens the session timeouts: %d", got.status)
	}
}

// TestSecureCookiesAndHSTS: an https public URL (or SecureCookies) makes the session
// cookie Secure and adds Strict-Transport-Security to every page; without, neither.
func TestSecureCookiesAndHSTS(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		opts   Options
		secure bool
	}{
		{"no public URL", Options{}, false},
		{"http public URL", Options{PublicURL: "http://postroom.example.org"}, false},
		{"https public URL", Options{PublicURL: "https://postroom.example.org"}, true},
		{"TLS at a proxy", Options{SecureCookies: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Store, opts.Auth, opts.Replier = f.st, f.auth, outbound.NewService(f.st, slog.New(slog.DiscardHandler))
			h, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := f.httpClient(t)
			c.base = srv.URL
			login := c.get("/login")
			resp := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {testPassword}})
			cookie := resp.header.Get("Set-Cookie")
			if resp.status != http.StatusSeeOther || !strings.Contains(cookie, auth.SessionCookie) || strings.Contains(cookie, "; Secure") != tc.secure {
				t.Errorf("sign-in: %d Set-Cookie %q, want Secure=%v", resp.status, cookie, tc.secure)
			}
			for _, p := range []webPage{login, resp, c.get("/static/style.css"), c.get("/nowhere")} {
				hsts := p.header.Get("Strict-Transport-Security")
				if tc.secure && hsts != "max-age=31536000" || !tc.secure && hsts != "" {
					t.Errorf("Strict-Transport-Security = %q, want it=%v", hsts, tc.secure)
				}
			}
		})
	}
}

func TestSecurityPageEndThisSessionSignsOut(t *testing.T) {
	f := newFixture(t)
	ana := f.signIn(t, "ana")
	p := ana.get("/account/security")
	m := regexp.MustCompile(`action="/account/sessions/(\d+)/end"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no session to end:\n%s", p.body)
	}
	resp := ana.post("/account/sessions/"+m[1]+"/end", url.Values{"csrf": {p.csrf(t)}})
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/login" || !strings.Contains(resp.header.Get("Set-Cookie"), auth.SessionCookie+"=;") {
		t.Errorf("end this session: %d %s %q, want a redirect to /login clearing the cookie", resp.status, resp.header.Get("Location"), resp.header.Get("Set-Cookie"))
	}
	if got := ana.get("/workitems"); got.status != http.StatusSeeOther || !strings.HasPrefix(got.header.Get("Location"), "/login") {
		t.Errorf("after ending this session /workitems: %d", got.status)
	}
}
