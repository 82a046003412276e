package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// shown reports, for each element id, whether the browser renders it.
func shown(t *testing.T, ctx context.Context, ids ...string) map[string]bool {
	t.Helper()
	js := fmt.Sprintf(`Object.fromEntries(%q.split(",").map(id => [id, !!document.getElementById(id) && document.getElementById(id).checkVisibility()]))`, strings.Join(ids, ","))
	return get(t, ctx, chromedp.Evaluate[map[string]bool](js))
}

// TestBrowserMailboxFormAdapts: the mailbox form shows what the chosen client type,
// sign-in method and provider use, with the Microsoft 365 walk-through as soon as the
// choices are Microsoft's, before anything is saved; a field with an error stays in view.
func TestBrowserMailboxFormAdapts(t *testing.T) {
	f := newFixture(t)
	ctx, shots := adminBrowser(t, f)
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/mailboxes/new?direction=inbound"),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
	ids := []string{"password", "host", "port", "login", "client_secret", "oauth_client_id", "microsoft-fieldset", "custom-fieldset", "prechecks", "prechecks-imap", "prechecks-graph", "graph_url", "autodiscover_host"}
	check := func(step string, want map[string]bool) {
		t.Helper()
		got := shown(t, ctx, ids...)
		for _, id := range ids {
			if got[id] != want[id] {
				t.Errorf("%s: #%s shown = %v, want %v", step, id, got[id], want[id])
			}
		}
	}
	check("IMAP with a password", map[string]bool{"password": true, "host": true, "port": true, "login": true})

	do(t, ctx, chromedp.SetValue(chromedp.ID("protocol"), "ews"))
	check("EWS with a password", map[string]bool{"password": true, "host": true, "port": true, "login": true, "autodiscover_host": true})
	do(t, ctx, chromedp.SetValue(chromedp.ID("protocol"), "imap"))

	do(t, ctx, chromedp.SetValue(chromedp.ID("auth"), "oauth_app"))
	check("IMAP with a Microsoft 365 app", map[string]bool{"host": true, "port": true, "login": true, "client_secret": true,
		"oauth_client_id": true, "microsoft-fieldset": true, "prechecks": true, "prechecks-imap": true})

	do(t, ctx, chromedp.SetValue(chromedp.ID("protocol"), "graph"))
	check("Graph with a Microsoft 365 app", map[string]bool{"client_secret": true, "oauth_client_id": true,
		"microsoft-fieldset": true, "prechecks": true, "prechecks-graph": true, "graph_url": true})
	// What the administrator reads (innerText skips the hidden lists): Graph's steps only.
	steps := get(t, ctx, chromedp.Evaluate[string](`document.getElementById("prechecks").innerText`))
	if !strings.Contains(steps, "Register an app in Microsoft Entra ID") || !strings.Contains(steps, "New-ApplicationAccessPolicy") ||
		strings.Contains(steps, "IMAP.AccessAsApp") {
		t.Errorf("walk-through for Graph = %q", steps)
	}
	screenshot(t, ctx, shots, "01-graph-app")

	do(t, ctx, chromedp.SetValue(chromedp.ID("protocol"), "imap"), chromedp.SetValue(chromedp.ID("auth"), "oauth_ropc"),
		chromedp.SetValue(chromedp.ID("oauth_provider"), "custom"))
	check("IMAP, login and password for a token at another provider", map[string]bool{"password": true, "host": true, "port": true,
		"login": true, "client_secret": true, "oauth_client_id": true, "custom-fieldset": true})

	// A Graph mailbox saved with a password is refused: the fields stay as chosen and the
	// Microsoft ones, which it needs, are in view.
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("auth"), "password"), chromedp.SetValue(chromedp.ID("oauth_provider"), "microsoft"),
		chromedp.SetValue(chromedp.ID("protocol"), "graph"),
		chromedp.SendKeys(chromedp.ID("name"), "m365"), chromedp.SendKeys(chromedp.ID("address"), "support@contoso.example"),
	)
	submit(t, ctx, chromedp.Click(chromedp.ID("save")))
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("auth-error"))); !strings.Contains(msg, `choose "Microsoft 365 app"`) {
		t.Errorf("error next to Sign-in method = %q", msg)
	}
	check("Graph with a password, refused", map[string]bool{"password": true, "client_secret": true, "oauth_client_id": true,
		"microsoft-fieldset": true, "prechecks": true, "prechecks-graph": true, "graph_url": true})
	screenshot(t, ctx, shots, "02-graph-password-refused")
}
