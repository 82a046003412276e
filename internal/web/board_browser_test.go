package web

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserBoardLive: the supervisor's open board follows a change (an agent pulls an
// item) without a reload, through board.js and the event stream, under the page's CSP.
func TestBrowserBoardLive(t *testing.T) {
	defer func(d time.Duration) { boardInterval = d }(boardInterval)
	boardInterval = time.Hour // the change itself must reach the page, not the timer
	f := newBoardFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f.fixture, "sam")
	depth := `#queue-` + itoa(f.queue.ID) + ` td.depth`
	load := `#agent-` + itoa(f.users["admin"].ID) + ` .load-text`
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/board"),
		chromedp.WaitVisible(chromedp.CSS(depth)),
	)
	// board.js runs (CSP script-src 'self') and shows the stream is live.
	waitText(t, ctx, "#board-live", func(s string) bool { return strings.HasPrefix(s, "Live: updated") })
	if got := get(t, ctx, chromedp.Text(chromedp.CSS(depth))); got != "3" {
		t.Fatalf("depth before = %q, want 3", got)
	}
	if got := get(t, ctx, chromedp.Text(chromedp.CSS(load))); got != "0 of 5" {
		t.Fatalf("admin's load before = %q", got)
	}
	get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`))

	if _, ok, err := f.engine.Pull(context.Background(), f.users["admin"]); err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	waitText(t, ctx, depth, func(s string) bool { return s == "2" })
	waitText(t, ctx, load, func(s string) bool { return s == "1 of 5" })
	if got := get(t, ctx, chromedp.Text(chromedp.CSS(`#queue-`+itoa(f.queue.ID)+` td.assigned`))); got != "1" {
		t.Errorf("assigned = %q, want 1", got)
	}
	if !get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)) {
		t.Error("the page was reloaded")
	}
	if dir := os.Getenv("POSTROOM_SCREENSHOTS"); dir != "" {
		png := get(t, ctx, chromedp.FullScreenshot(100))
		_ = os.WriteFile(dir+"/board.png", png, 0o644)
	}
}

// waitText waits until the text of the element sel satisfies ok.
func waitText(t *testing.T, ctx context.Context, sel string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			last = strings.TrimSpace(s)
			if ok(last) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("browser: %s still shows %q", sel, last)
}
