package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// phoneWidth and phoneHeight are a small phone's viewport in CSS pixels.
const (
	phoneWidth  = 360
	phoneHeight = 740
)

// TestBrowserListFitsPhone: on a phone-width screen the work item list (with the whole
// navigation of an admin) does not scroll sideways: nothing is wider than the screen.
func TestBrowserListFitsPhone(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)
	do(t, ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile))
	signInInBrowser(t, ctx, f, "admin")
	shots := screenshotDir(t)
	for _, path := range []string{"/workitems", "/workitems?q=order"} {
		do(t, ctx,
			chromedp.Navigate(f.srv.URL+path),
			chromedp.WaitVisible(chromedp.CSS("table.workitems")),
		)
		width := get(t, ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
		scroll := get(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if width > phoneWidth || scroll > width {
			wide := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")]
				.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
				.slice(0, 8).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "") + " " + Math.round(e.getBoundingClientRect().right))`))
			t.Errorf("%s at %d px: the page is %d px wide and scrolls sideways; wider than the screen: %s", path, width, scroll, strings.Join(wide, ", "))
		}
		if path == "/workitems" {
			screenshot(t, ctx, shots, "phone-list")
		}
		// Every row still shows its subject and state.
		rows := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.workitems tbody tr")].map(r => r.innerText)`))
		if len(rows) == 0 || !strings.Contains(strings.Join(rows, "\n"), "queued") {
			t.Errorf("%s: rows %q, want the items with their state", path, rows)
		}
	}
}
