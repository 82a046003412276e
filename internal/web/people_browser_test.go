package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// An admin creates a user on /users; the new user signs in in a second browser context
// (its own cookies), and is signed out when the admin disables them.
func TestBrowserAdminCreatesUser(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "admin")

	const pw = "zoe's first password"
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/users"),
		chromedp.WaitVisible(chromedp.ID("create-user")),
		chromedp.SendKeys(chromedp.ID("new-username"), "zoe"),
		chromedp.SendKeys(chromedp.ID("new-name"), "Zoe Zed"),
		chromedp.SendKeys(chromedp.ID("new-password"), "short"),
	)
	// A too short password is refused next to the field, the other values kept.
	submit(t, ctx, chromedp.Click(chromedp.ID("create-user")))
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("new-password-error"))); !strings.Contains(msg, "at least 12") {
		t.Errorf("password error = %q", msg)
	}
	if v := get(t, ctx, chromedp.Value(chromedp.ID("new-username"))); v != "zoe" {
		t.Errorf("user name after the refusal = %q", v)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("new-password"), pw))
	submit(t, ctx, chromedp.Click(chromedp.ID("create-user")))
	if n := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "User created") {
		t.Fatalf("notice = %q", n)
	}
	if row := get(t, ctx, chromedp.Text(chromedp.CSS("tr:has(#edit-zoe)"))); !strings.Contains(row, "Zoe Zed") || !strings.Contains(row, "agent") {
		t.Errorf("zoe's row = %q", row)
	}

	// A second browser context: no cookies of the admin's.
	zoe, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(zoe); err != nil {
		t.Fatalf("open a second browser context: %v", err)
	}
	do(t, zoe,
		chromedp.Navigate(f.srv.URL+"/workitems"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("user"), "zoe"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.CSS(".login button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("header .who")),
	)
	if who := get(t, zoe, chromedp.Text(chromedp.CSS("header .who"))); !strings.Contains(who, "Zoe Zed") {
		t.Errorf("zoe's header = %q", who)
	}
	// The admin is still the admin in the first context.
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/users"), chromedp.WaitVisible(chromedp.ID("edit-zoe")))
	if who := get(t, ctx, chromedp.Text(chromedp.CSS("header .who"))); !strings.Contains(who, "Ada Admin") {
		t.Errorf("admin's header = %q", who)
	}

	// Zoe sets herself available on her Account page.
	do(t, zoe, chromedp.Navigate(f.srv.URL+"/account"), chromedp.WaitVisible(chromedp.ID("set-status")),
		chromedp.Click(chromedp.CSS(`input[name=status][value=available]`)))
	submit(t, zoe, chromedp.Click(chromedp.ID("set-status")))
	if n := get(t, zoe, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "Status set") {
		t.Errorf("status notice = %q", n)
	}

	// The admin disables zoe: her next page is the sign-in form, which refuses her.
	submit(t, ctx, chromedp.Click(chromedp.ID("edit-zoe")))
	submit(t, ctx, chromedp.Click(chromedp.ID("toggle-user")))
	if st := get(t, ctx, chromedp.Text(chromedp.ID("user-state"))); st != "disabled" {
		t.Errorf("state after disabling = %q", st)
	}
	do(t, zoe, chromedp.Navigate(f.srv.URL+"/workitems"), chromedp.WaitVisible(chromedp.ID("password")))
	do(t, zoe,
		chromedp.SendKeys(chromedp.ID("user"), "zoe"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.CSS(".login button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if msg := get(t, zoe, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "disabled") {
		t.Errorf("disabled user's sign-in error = %q", msg)
	}
}
