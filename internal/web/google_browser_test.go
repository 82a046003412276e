package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserMailboxFormGoogle: choosing Google Workspace shows Google's walk-through and
// hides Microsoft's fields and walk-through; choosing Microsoft again hides Google's.
func TestBrowserMailboxFormGoogle(t *testing.T) {
	f := newFixture(t)
	ctx, shots := adminBrowser(t, f)
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/mailboxes/new?direction=inbound"),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
	ids := []string{"google-walkthrough", "microsoft-fieldset", "custom-fieldset", "prechecks", "client_secret"}
	check := func(step string, want map[string]bool) {
		t.Helper()
		got := shown(t, ctx, ids...)
		for _, id := range ids {
			if got[id] != want[id] {
				t.Errorf("%s: #%s shown = %v, want %v", step, id, got[id], want[id])
			}
		}
	}
	check("password", map[string]bool{})
	do(t, ctx, chromedp.SetValue(chromedp.ID("auth"), "oauth_app"), chromedp.SetValue(chromedp.ID("oauth_provider"), "google"))
	check("Google service account", map[string]bool{"google-walkthrough": true, "client_secret": true})
	steps := get(t, ctx, chromedp.Evaluate[string](`document.getElementById("google-walkthrough").innerText`))
	if !strings.Contains(steps, "Manage Domain Wide Delegation") || !strings.Contains(steps, "https://mail.google.com/") {
		t.Errorf("Google walk-through = %q", steps)
	}
	screenshot(t, ctx, shots, "google-walkthrough")
	do(t, ctx, chromedp.SetValue(chromedp.ID("oauth_provider"), "microsoft"))
	check("Microsoft app", map[string]bool{"microsoft-fieldset": true, "prechecks": true, "client_secret": true})
}
