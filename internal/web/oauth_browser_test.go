package web

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// TestBrowserDelegatedSignIn drives the whole delegated sign-in in Chromium: an admin
// creates a Microsoft Graph mailbox whose account signs in, presses "Sign in with
// Microsoft", signs in on the stand-in's page as a user with Full Access to the shared
// mailbox, and lands back on the mailbox showing "Signed in as ..."; the stored refresh
// token then gives access tokens.
func TestBrowserDelegatedSignIn(t *testing.T) {
	f := newFixture(t)
	ms, sample := sampleTenant(t, f.srv.URL+callbackPath)
	ctx, shots := adminBrowser(t, f)

	// The form: a Graph mailbox, a person signs in, the stand-in as a custom authority.
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/mailboxes/new?direction=inbound"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "graph_support"),
		chromedp.SendKeys(chromedp.ID("address"), sample.Mailbox),
		chromedp.SetValue(chromedp.ID("protocol"), "graph"),
		chromedp.SetValue(chromedp.ID("auth"), store.AuthOAuthDelegated),
		chromedp.SendKeys(chromedp.ID("oauth_client_id"), sample.ClientID),
		chromedp.SendKeys(chromedp.ID("client_secret"), sample.ClientSecret),
		chromedp.SendKeys(chromedp.ID("oauth_tenant"), sample.TenantID),
		chromedp.SetValue(chromedp.ID("oauth_cloud"), credential.CloudCustom),
		chromedp.SendKeys(chromedp.ID("oauth_authority_url"), ms.LoginURL()),
		chromedp.SendKeys(chromedp.ID("graph_url"), ms.GraphURL()),
	)
	if warning := get(t, ctx, chromedp.Text(chromedp.ID("ropc-warning"))); !strings.Contains(warning, "multi-factor") || !strings.Contains(warning, "deprecates") {
		t.Errorf("ROPC warning = %q", warning)
	}
	screenshot(t, ctx, shots, "01-form")
	submit(t, ctx, chromedp.Click(chromedp.ID("save")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("detail")))
	if errs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("form-errors") || {}).innerText || ""`)); errs != "" {
		t.Fatalf("the form was refused: %s", errs)
	}
	if method := get(t, ctx, chromedp.Text(chromedp.ID("auth-method"))); method != "a person signs in (delegated)" {
		t.Errorf("sign-in method in the detail pane = %q", method)
	}
	if needed := get(t, ctx, chromedp.Text(chromedp.ID("signin-needed"))); !strings.Contains(needed, "Nobody has signed in") {
		t.Errorf("detail pane before the sign-in = %q", needed)
	}
	screenshot(t, ctx, shots, "02-not-signed-in")

	// Sign in with Microsoft: the stand-in's page, with the mailbox as the login hint.
	submit(t, ctx, chromedp.Click(chromedp.ID("signin")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("i0116")))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, ms.AuthorizeURL(sample.TenantID)+"?") {
		t.Fatalf("the button led to %s, want the stand-in's authorize endpoint", loc)
	}
	if hint := get(t, ctx, chromedp.Value(chromedp.ID("i0116"))); hint != sample.Mailbox {
		t.Errorf("user name on the sign-in page = %q, want the mailbox %s", hint, sample.Mailbox)
	}
	// The person signing in is an agent with Full Access to the shared mailbox.
	get(t, ctx, chromedp.Evaluate[bool](`(document.getElementById("i0116").value = "") === ""`))
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("i0116"), sample.Agent),
		chromedp.SendKeys(chromedp.ID("i0118"), sample.AgentPassword),
	)
	screenshot(t, ctx, shots, "03-stand-in-sign-in")
	submit(t, ctx, chromedp.Click(chromedp.ID("idSIButton9")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("notice")))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, f.srv.URL+"/mailboxes?") || strings.Contains(loc, "code=") {
		t.Errorf("after the sign-in the browser is at %s, want the mailboxes page without the code", loc)
	}
	if notice := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); !strings.HasPrefix(notice, "Signed in as "+sample.Agent+".") {
		t.Errorf("notice after the sign-in = %q", notice)
	}
	if account := get(t, ctx, chromedp.Text(chromedp.ID("oauth-account"))); account != sample.Agent {
		t.Errorf("Signed in as = %q", account)
	}
	if button := get(t, ctx, chromedp.Text(chromedp.ID("signin"))); button != "Sign in with Microsoft again" {
		t.Errorf("button after the sign-in = %q", button)
	}
	screenshot(t, ctx, shots, "04-signed-in")

	// "What happens": the page that explains the sign-in and names the redirect URI.
	do(t, ctx, chromedp.Click(chromedp.ID("signin-help")), chromedp.WaitVisible(chromedp.ID("redirect-uri")))
	if uri := get(t, ctx, chromedp.Text(chromedp.ID("redirect-uri"))); uri != f.srv.URL+callbackPath {
		t.Errorf("redirect URI on the sign-in page = %q", uri)
	}
	screenshot(t, ctx, shots, "05-signin-page")

	// Signing in again, the person declines: the page says what to do, and keeps the old
	// sign-in.
	submit(t, ctx, chromedp.Click(chromedp.ID("signin")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("i0116")))
	authURL, err := url.Parse(get(t, ctx, chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	declined := url.Values{"error": {"access_denied"}, "state": {authURL.Query().Get("state")},
		"error_description": {"AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333"}}
	do(t, ctx, chromedp.Navigate(f.srv.URL+callbackPath+"?"+declined.Encode()), chromedp.WaitVisible(chromedp.ID("signin-advice")))
	if advice := get(t, ctx, chromedp.Text(chromedp.ID("signin-advice"))); !strings.Contains(advice, "choose Accept") {
		t.Errorf("advice after declining = %q", advice)
	}
	if said := get(t, ctx, chromedp.Text(chromedp.CSS(".provider-said"))); !strings.Contains(said, "access_denied") || !strings.Contains(said, "AADSTS65004") {
		t.Errorf("the provider's answer on the page = %q", said)
	}
	screenshot(t, ctx, shots, "06-declined")

	// The edit form walks through the Microsoft 365 set-up, filled in with the ids.
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/mailboxes"), chromedp.WaitVisible(chromedp.CSS("table.mailboxes")))
	m, err := f.st.MailboxByName(context.Background(), "graph_support")
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/mailboxes/"+itoa(m.ID)+"/edit"), chromedp.WaitVisible(chromedp.ID("prechecks")))
	if ps := get(t, ctx, chromedp.Text(chromedp.CSS("#prechecks"))); !strings.Contains(ps, sample.Agent) || !strings.Contains(ps, sample.Mailbox) {
		t.Errorf("walk-through does not name the account signed in and the mailbox:\n%s", ps)
	}
	screenshot(t, ctx, shots, "07-edit-prechecks")

	// The stored sign-in works.
	bg := context.Background()
	tokens := credential.NewTokens(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	fn, err := tokens.For(bg, m, credential.AudienceGraph)
	if err != nil {
		t.Fatal(err)
	}
	if access, err := fn(bg, false); err != nil || access == "" {
		t.Fatalf("the stored sign-in gives no access token: %v", err)
	}
	html := get(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	refresh, _ := f.passwords.Secrets().Get(bg, m.ID, store.SecretRefreshToken)
	if strings.Contains(html, sample.ClientSecret) || strings.Contains(html, refresh.Reveal()) {
		t.Error("a secret or the refresh token is in the page")
	}
}
