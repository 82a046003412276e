package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserNotesAndAutosave: in a real browser an agent writes an internal note that
// mentions a colleague: it shows in the notes section, set apart from the conversation,
// and on the colleague's My work; nothing is queued to the customer. Text typed into the
// reply box is saved as a draft by the page's script without pressing anything, and is
// back after a reload.
func TestBrowserNotesAndAutosave(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	id := f.items["plain.eml"].WorkItemID
	b := testenv.Chromium(t)
	signInInBrowser(t, b, f, "sam")
	do(t, b, chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, id)), chromedp.WaitVisible(chromedp.ID("note")))
	do(t, b, chromedp.SendKeys(chromedp.ID("note"), "@ana the customer called, please phone back"))
	submit(t, b, chromedp.Click(chromedp.CSS(".note-form button")))
	do(t, b, chromedp.WaitVisible(chromedp.CSS("section.notes article.note")))
	if n := get(t, b, chromedp.Text(chromedp.CSS("section.notes article.note"))); !strings.Contains(n, "please phone back") || !strings.Contains(n, "Sam") {
		t.Errorf("note on the page = %q", n)
	}
	if bg := get(t, b, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("section.notes")).backgroundColor`)); bg == "rgba(0, 0, 0, 0)" {
		t.Errorf("the notes section is not set apart (background %s)", bg)
	}
	if ob, _ := f.st.OutboxForWorkItem(ctx, id); len(ob) != 0 {
		t.Errorf("a note queued %d messages", len(ob))
	}

	// Autosave: type, wait for the script to save, reload.
	do(t, b, chromedp.SendKeys(chromedp.CSS("textarea#text"), "Dear Carla, we are checking with the carrier."))
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := get(t, b, chromedp.Text(chromedp.ID("draft-autosave")))
		if strings.Contains(s, "Draft saved") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no autosave after 15 s (status %q)", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	do(t, b, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("textarea#text")))
	if text := get(t, b, chromedp.Value(chromedp.CSS("textarea#text"))); text != "Dear Carla, we are checking with the carrier." {
		t.Errorf("reply box after reload = %q", text)
	}

	ana := testenv.Chromium(t)
	signInInBrowser(t, ana, f, "ana")
	do(t, ana, chromedp.Navigate(f.srv.URL+"/my"), chromedp.WaitVisible(chromedp.ID("mentions-heading")))
	if m := get(t, ana, chromedp.Text(chromedp.CSS("section.mentions"))); !strings.Contains(m, "please phone back") {
		t.Errorf("ana's My work mentions = %q", m)
	}
}
