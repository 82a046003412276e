package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// An admin opens the audit log from the navigation in a real browser, filters it for
// login failures, sees them with the export link of that filter; then erases a customer
// on the Privacy page after the count.
func TestBrowserAuditAndErasure(t *testing.T) {
	f := newFixture(t)
	f.addAuditEvents(t, 3)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "admin")

	submit(t, ctx, chromedp.Click(chromedp.CSS(`header nav a[href="/audit"]`)))
	if cur := get(t, ctx, chromedp.Text(chromedp.CSS(`header nav a[aria-current=page]`))); cur != "Audit log" {
		t.Errorf("current navigation entry = %q", cur)
	}
	// Four events added, and the admin's own sign-in (login.success).
	if n := get(t, ctx, chromedp.Text(chromedp.ID("audit-count"))); !strings.Contains(n, "of 5") {
		t.Errorf("unfiltered count = %q", n)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("audit-q"), "login.failure"))
	submit(t, ctx, chromedp.Click(chromedp.ID("audit-apply")))
	if n := get(t, ctx, chromedp.Text(chromedp.ID("audit-count"))); n != "Events 1 to 3 of 3" {
		t.Errorf("filtered count = %q", n)
	}
	rows := get(t, ctx, chromedp.Text(chromedp.CSS("#audit-table tbody")))
	if !strings.Contains(rows, "login.failure") || strings.Contains(rows, "mailbox.create") || !strings.Contains(rows, "user2") {
		t.Errorf("filtered rows = %q", rows)
	}
	if href := get(t, ctx, chromedp.Evaluate[string](`document.getElementById("audit-export").getAttribute("href")`)); href != "/api/v1/audit.csv?q=login.failure" {
		t.Errorf("export link = %q", href)
	}

	submit(t, ctx, chromedp.Click(chromedp.CSS(`header nav a[href="/privacy"]`)))
	do(t, ctx, chromedp.SendKeys(chromedp.ID("erasure-address"), "carla@example.net"))
	submit(t, ctx, chromedp.Click(chromedp.ID("erasure-count")))
	if n := get(t, ctx, chromedp.Text(chromedp.ID("preview-conversations"))); n != "1" {
		t.Errorf("conversations to erase = %q", n)
	}
	submit(t, ctx, chromedp.Click(chromedp.ID("erasure-confirm")))
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("erased"))); !strings.Contains(msg, "Erased: 1 conversations") {
		t.Errorf("erasure result = %q", msg)
	}
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/workitems"), chromedp.WaitVisible(chromedp.CSS("table.workitems")))
	if list := get(t, ctx, chromedp.Text(chromedp.CSS("table.workitems"))); strings.Contains(list, "Carla") {
		t.Errorf("the erased customer is still listed: %q", list)
	}
}
