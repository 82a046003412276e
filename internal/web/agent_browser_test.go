package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserAgentTakesAnOffer: an agent goes available on My work, the engine offers her
// an item, she sees it with the time left, accepts it, replies, and sees it done.
func TestBrowserAgentTakesAnOffer(t *testing.T) {
	f := newRoutingFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f.fixture, "ana")

	do(t, ctx, chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("my-status")))
	if s := get(t, ctx, chromedp.Text(chromedp.ID("my-status"))); s != "offline" {
		t.Errorf("status on My work = %q, want offline", s)
	}
	if empty := get(t, ctx, chromedp.Text(chromedp.CSS("section.offers"))); !strings.Contains(empty, "No offers waiting for you.") {
		t.Errorf("offers before going available: %q", empty)
	}
	submit(t, ctx, chromedp.Click(chromedp.CSS(`.status-switch button[value="available"]`)))
	if s := get(t, ctx, chromedp.Text(chromedp.ID("my-status"))); s != "available" {
		t.Fatalf("status after the switch = %q, want available", s)
	}
	if note := get(t, ctx, chromedp.Text(chromedp.ID("note"))); note != "Status changed." {
		t.Errorf("note = %q", note)
	}

	// The engine pushes an offer; My work shows it (the page refreshes itself; reload now).
	f.step(t)
	offer := f.offeredTo(t, f.ana)
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("tr.offer")))
	row := get(t, ctx, chromedp.Text(chromedp.CSS("tr.offer")))
	if !strings.Contains(row, offer.Subject) || !strings.Contains(row, "left") {
		t.Errorf("offer row = %q, want the subject and the time left", row)
	}

	// Accept: the item's page, assigned to her.
	submit(t, ctx, chromedp.Click(chromedp.CSS(`tr.offer button[value="accept"]`)))
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "assigned" {
		t.Errorf("state after accept = %q, want assigned", state)
	}
	if done := get(t, ctx, chromedp.Text(chromedp.ID("action-done"))); done != "Accepted: the work item is yours." {
		t.Errorf("notice after accept = %q", done)
	}
	if who := get(t, ctx, chromedp.Text(chromedp.ID("assigned"))); who != "Ana Agent" {
		t.Errorf("assigned to %q", who)
	}

	// Reply: done.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("textarea#text"), "Hello, your parcel is on its way."))
	submit(t, ctx, chromedp.Click(chromedp.CSS(".reply button[type=submit]")))
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "done" {
		t.Errorf("state after the reply = %q, want done", state)
	}
	main := get(t, ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(main, "Reply sent to the outbox.") || !strings.Contains(main, "assigned → done") {
		t.Errorf("page after the reply lacks the notice or the history:\n%s", main)
	}

	// Back on My work: nothing assigned any more.
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/my"), chromedp.WaitVisible(chromedp.CSS("section.mine")))
	if mine := get(t, ctx, chromedp.Text(chromedp.CSS("section.mine"))); !strings.Contains(mine, "Nothing assigned to you") {
		t.Errorf("My work after the reply: %q", mine)
	}
}
