package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// In a real browser, an agent opens Account > Sessions and API tokens, sees her two
// sessions (this one marked, Chromium named), creates a read token that is shown once,
// revokes it, and ends her other session.
func TestBrowserSessionsAndTokens(t *testing.T) {
	f := newFixture(t)
	other := f.signIn(t, "ana") // a second session, from another "device"
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "ana")

	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/account"),
		chromedp.WaitVisible(chromedp.ID("security-link")),
	)
	submit(t, ctx, chromedp.Click(chromedp.ID("security-link")))
	if n := get(t, ctx, chromedp.Text(chromedp.CSS("tr:has(#this-session)"))); !strings.Contains(n, "Headless Chrome") || !strings.Contains(n, "127.0.0.1") {
		t.Errorf("this session's row = %q, want the browser and address", n)
	}
	rows := get(t, ctx, chromedp.Text(chromedp.ID("sessions")))
	if !strings.Contains(rows, "Go-http-client") {
		t.Errorf("the other session is not listed: %q", rows)
	}

	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token-name"), "dashboard"),
		chromedp.Click(chromedp.CSS(`input[name=scopes][value=read]`)),
	)
	submit(t, ctx, chromedp.Click(chromedp.ID("create-token")))
	token := get(t, ctx, chromedp.Text(chromedp.ID("new-token-value")))
	if !strings.HasPrefix(token, "prt_") {
		t.Fatalf("new token shown = %q", token)
	}
	if row := get(t, ctx, chromedp.Text(chromedp.CSS(`#tokens tbody tr`))); !strings.Contains(row, "dashboard") || !strings.Contains(row, "read") {
		t.Errorf("token row = %q", row)
	}
	// Once: a reload of the page does not show it.
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/account/security"), chromedp.WaitVisible(chromedp.ID("tokens")))
	if body := get(t, ctx, chromedp.Text(chromedp.CSS("main"))); strings.Contains(body, token) {
		t.Error("the token is shown again after a reload")
	}
	submit(t, ctx, chromedp.Click(chromedp.CSS(`#tokens button`)))
	if n := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "Token revoked") {
		t.Errorf("notice after revoking = %q", n)
	}

	// End the other session: its next page is the sign-in.
	submit(t, ctx, chromedp.Click(chromedp.CSS(`#sessions tr:not(:has(#this-session)) button`)))
	if n := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "Session ended") {
		t.Errorf("notice after ending = %q", n)
	}
	if p := other.get("/workitems"); !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("the ended session opens /workitems: %d %s", p.status, p.header.Get("Location"))
	}
}
