package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

func TestAgeSince(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{10 * time.Second, "just now"},
		{5 * time.Minute, "5 min"},
		{59 * time.Minute, "59 min"},
		{3*time.Hour + 20*time.Minute, "3 h"},
		{23 * time.Hour, "23 h"},
		{49 * time.Hour, "2 d"},
		{-time.Hour, "just now"}, // clock skew: a date in the future
	}
	for _, tc := range tests {
		if got := ageSince(now.Add(-tc.ago), now); got != tc.want {
			t.Errorf("ageSince(%v ago) = %q, want %q", tc.ago, got, tc.want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "ana")
	for _, path := range []string{"/login", "/workitems", fmt.Sprintf("/workitems/%d", f.items["html.eml"].WorkItemID), "/nowhere"} {
		p := c.get(path)
		h := p.header
		csp := h.Get("Content-Security-Policy")
		script := "script-src 'none'"
		if strings.HasPrefix(path, "/workitems") { // workspace.js, of this origin only
			script = "script-src 'self'"
		}
		for _, want := range []string{script, "frame-ancestors 'none'", "default-src 'self'"} {
			if !strings.Contains(csp, want) || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}

func TestSignInRequired(t *testing.T) {
	f := newFixture(t)
	c := f.httpClient(t)
	p := c.get("/workitems/1")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2Fworkitems%2F1" {
		t.Errorf("signed out GET /workitems/1: %d %q, want 303 to /login?next=...", p.status, p.header.Get("Location"))
	}
	if p := c.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2F" {
		t.Errorf("signed out GET /: %d %q", p.status, p.header.Get("Location"))
	}

	// Wrong password: the form says so and keeps the user name.
	login := c.get("/login")
	p = c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {"wrong"}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Wrong user name or password.") || !strings.Contains(p.body, `value="ana"`) {
		t.Errorf("wrong password: %d\n%s", p.status, p.body)
	}

	// An expired session sends the browser back to the sign-in page.
	token := "expired-session-token"
	if err := f.st.CreateSession(context.Background(), store.Session{
		TokenHash: auth.HashToken(token), UserID: 1, CSRFToken: "x",
		CreatedAt: time.Now().Add(-13 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(f.srv.URL)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: auth.SessionCookie, Value: token}})
	if p := c.get("/workitems"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("expired session: %d %q, want a redirect to /login", p.status, p.header.Get("Location"))
	}

	// Roles: an agent may not see the mailboxes, a supervisor may.
	if p := f.signIn(t, "ana").get("/mailboxes"); p.status != http.StatusForbidden || !strings.Contains(p.body, "supervisor") {
		t.Errorf("agent GET /mailboxes: %d, want 403 naming the role", p.status)
	}
	p = f.signIn(t, "sam").get("/mailboxes")
	if p.status != 200 || !strings.Contains(p.body, "login refused: check the password") || !strings.Contains(p.body, "support-out") {
		t.Errorf("supervisor GET /mailboxes: %d\n%s", p.status, p.body)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	id := f.items["plain.eml"].WorkItemID
	replyPath := fmt.Sprintf("/workitems/%d/reply", id)
	c := f.signIn(t, "ana")
	wp := c.get(fmt.Sprintf("/workitems/%d", id))
	token := wp.csrf(t)

	other := f.signIn(t, "sam")
	otherToken := other.get("/workitems").csrf(t)

	tests := []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"text": {"forged"}}},
		{"empty token", url.Values{"csrf": {""}, "text": {"forged"}}},
		{"wrong token", url.Values{"csrf": {token + "x"}, "text": {"forged"}}},
		{"another session's token", url.Values{"csrf": {otherToken}, "text": {"forged"}}},
	}
	for _, tc := range tests {
		p := c.post(replyPath, tc.form)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "security token") {
			t.Errorf("%s: %d, want a 403 page\n%s", tc.name, p.status, p.body)
		}
	}
	if ob, _ := f.st.OutboxForWorkItem(context.Background(), id); len(ob) != 0 {
		t.Fatalf("a refused form queued %d replies", len(ob))
	}
	// Sign-out is a form too.
	if p := c.post("/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("sign-out without token: %d, want 403", p.status)
	}
	// A cross-site POST is refused even with the right token.
	req, _ := http.NewRequest("POST", f.srv.URL+replyPath, strings.NewReader(url.Values{"csrf": {token}, "text": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if p := readPage(t, resp); p.status != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", p.status)
	}
	// The sign-in form needs its own token.
	if p := f.httpClient(t).post("/login", url.Values{"user": {"ana"}, "password": {testPassword}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in without the form token: %d, want 403", p.status)
	}

	// Empty reply: the form says what to do.
	p := c.post(replyPath, url.Values{"csrf": {token}, "text": {"   "}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "write a reply before sending") {
		t.Errorf("empty reply: %d\n%s", p.status, p.body)
	}
	// With the right token the reply goes through.
	p = c.post(replyPath, url.Values{"csrf": {token}, "text": {"Your parcel left today."}, "then": {"done"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("reply with token: %d\n%s", p.status, p.body)
	}
	p = c.get(p.header.Get("Location"))
	if !strings.Contains(p.body, `id="state">done<`) || !strings.Contains(p.body, "Your parcel left today.") || !strings.Contains(p.body, ">queued<") {
		t.Errorf("after reply the page lacks state replied, the reply or its outbox state:\n%s", p.body)
	}
	// Sign-out with the token ends the session.
	if p := c.post("/logout", url.Values{"csrf": {token}}); p.status != http.StatusSeeOther {
		t.Errorf("sign-out: %d", p.status)
	}
	if p := c.get("/workitems"); p.status != http.StatusSeeOther {
		t.Errorf("after sign-out GET /workitems: %d, want a redirect", p.status)
	}
}

func TestSignedAttachmentURL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	msg, err := f.st.Message(ctx, f.items["html.eml"].MessageID)
	if err != nil {
		t.Fatal(err)
	}
	var logo, other int64
	for _, a := range msg.Attachments {
		if a.Filename == "logo.png" {
			logo = a.ID
		} else {
			other = a.ID
		}
	}
	// A signed-in page view creates the key; its URLs work without a cookie.
	page := f.signIn(t, "ana").get(fmt.Sprintf("/workitems/%d", f.items["html.eml"].WorkItemID))
	if !strings.Contains(page.body, fmt.Sprintf("/attachments/%d?exp=", logo)) {
		t.Fatalf("the email frame does not use a signed URL for the inline image:\n%s", page.body)
	}
	signer := &attachmentSigner{st: f.st}
	now := time.Now()
	fresh, err := signer.urlFunc(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := signer.urlFunc(ctx, now.Add(-signedURLLifetime-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	anon := f.httpClient(t)
	if p := anon.get(fresh(logo)); p.status != 200 || p.header.Get("Content-Type") != "image/png" || p.header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("signed URL without a cookie: %d %v", p.status, p.header)
	}
	tampered := strings.Replace(fresh(logo), fmt.Sprintf("/attachments/%d?", logo), fmt.Sprintf("/attachments/%d?", other), 1)
	for name, u := range map[string]string{
		"expired":                       expired(logo),
		"signed for another attachment": tampered,
		"bad signature":                 fresh(logo) + "x",
		"no signature":                  fmt.Sprintf("/attachments/%d", logo),
	} {
		if p := anon.get(u); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Errorf("%s URL without a cookie: %d, want a redirect to /login", name, p.status)
		}
	}
}

// TestFavicon: every page links an icon, and /favicon.ico (which browsers ask for anyway)
// answers with it instead of a 404.
func TestFavicon(t *testing.T) {
	f := newFixture(t)
	c := f.httpClient(t)
	login := c.get("/login")
	if !strings.Contains(login.body, `<link rel="icon" href="/static/favicon.svg"`) {
		t.Errorf("the page links no icon:\n%s", login.body)
	}
	for _, path := range []string{"/favicon.ico", "/static/favicon.svg"} {
		p := c.get(path)
		if p.status != http.StatusOK || p.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(p.body, "<svg") {
			t.Errorf("GET %s: %d %q", path, p.status, p.header.Get("Content-Type"))
		}
	}
}
