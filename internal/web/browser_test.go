package web

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// browserStepTimeout bounds each browser step so that a broken page fails the test
// instead of hanging it; a page here loads in well under a second.
const browserStepTimeout = 60 * time.Second

// do runs chromedp steps with browserStepTimeout.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// submit clicks (a submit button or a link) and waits until the NEXT page has loaded: the
// current document is marked first, so that a wait for an element the old page also has
// cannot pass before the navigation.
func submit(t *testing.T, ctx context.Context, click chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, chromedp.Evaluate[bool](`window.__oldPage = true`))
	do(t, ctx, click)
	deadline := time.Now().Add(browserStepTimeout)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		old, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.__oldPage === true && document.readyState === "complete"`))
		cancel()
		if err == nil && !old {
			if ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete"`)); err == nil && ready {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("browser: the page did not change after the click")
}

// get runs one chromedp action that returns a value, with browserStepTimeout.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// signInInBrowser opens a page that needs a session, lands on the sign-in form, signs in
// as user and waits for the work item list.
func signInInBrowser(t *testing.T, ctx context.Context, f *fixture, user string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/workitems"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if loc := get(t, ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("signed-out browser is at %s, want the sign-in page", loc)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(".login button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("table.workitems")),
	)
}

func TestBrowserAgentReplies(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)

	// A wrong password is shown on the form.
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/login"),
		chromedp.SendKeys(chromedp.ID("user"), "ana"),
		chromedp.SendKeys(chromedp.ID("password"), "not-the-password"),
		chromedp.Click(chromedp.CSS(".login button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error"))); msg != "Wrong user name or password." {
		t.Errorf("sign-in error = %q", msg)
	}

	signInInBrowser(t, ctx, f, "ana")
	rows := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.workitems tbody tr")].map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	if len(rows) != 3 {
		t.Fatalf("work item list has %d rows, want 3: %q", len(rows), rows)
	}
	for _, want := range []string{"Order 1234 has not arrived", "Carla Customer", "support", "just now", "queued"} {
		if !strings.Contains(strings.Join(rows, "\n"), want) {
			t.Errorf("list lacks %q: %q", want, rows)
		}
	}
	unparsedRow := get(t, ctx, chromedp.Text(chromedp.CSS("table.workitems tr:has(.badge.unparsed)")))
	if !strings.Contains(unparsedRow, "Broken structure") || !strings.Contains(unparsedRow, "unparsed") {
		t.Errorf("row with the unparsed badge = %q", unparsedRow)
	}

	// Search narrows the list.
	do(t, ctx, chromedp.SendKeys(chromedp.ID("q"), "order 1234"))
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.search button")))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("table.workitems")))
	if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.workitems tbody tr").length`)); n != 1 {
		t.Errorf("search for %q shows %d rows, want 1", "order 1234", n)
	}

	// Open the work item, reply, see "replied".
	do(t, ctx,
		chromedp.Click(`//a[text()="Order 1234 has not arrived"]`),
		chromedp.WaitVisible(chromedp.CSS("textarea#text")),
	)
	if body := get(t, ctx, chromedp.Text(chromedp.CSS("pre.email-text"))); !strings.Contains(body, "my order 1234 has not arrived yet") {
		t.Errorf("message text = %q", body)
	}
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "queued" {
		t.Errorf("state after opening = %q, want open", state)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("textarea#text"), "Hello Carla,\nyour parcel left our warehouse today."),
		chromedp.Click(chromedp.CSS(".reply button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("table.outbox")),
	)
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "done" {
		t.Errorf("state after sending = %q, want replied", state)
	}
	if row := get(t, ctx, chromedp.Text(chromedp.CSS("table.outbox tbody tr"))); !strings.Contains(row, "carla@example.net") || !strings.Contains(row, "queued") {
		t.Errorf("outbox row = %q, want the recipient and state queued", row)
	}
	text := get(t, ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, "your parcel left our warehouse today.") || !strings.Contains(text, "Reply sent to the outbox.") {
		t.Errorf("page after sending lacks the reply or the notice:\n%s", text)
	}
}

// hostileTitle is the title of the hostile email's page; the email's script would change it.
const hostileTitle = "Invoice question · postroom"

func TestBrowserHostileHTMLDoesNotRun(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "ana")

	do(t, ctx,
		chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, f.items["html.eml"].WorkItemID)),
		chromedp.WaitVisible(chromedp.CSS("iframe.email-html")),
	)

	// Inside the sandboxed frame: its origin is opaque, so the page itself cannot look in.
	// Chrome runs sandboxed frames in their own process, as a target of type "iframe";
	// attach to it and evaluate there.
	frameCtx := attachEmailFrame(t, ctx)
	// Wait for the frame's load event, after which an onerror handler would have run.
	frameTitle := get(t, frameCtx, chromedp.Evaluate[string](
		`new Promise(r => document.readyState === "complete" ? r() : addEventListener("load", () => r())).then(() => document.title)`,
		chromedp.EvalAwaitPromise))
	frameText := get(t, frameCtx, chromedp.Evaluate[string](`document.body.innerText`))
	frameFlag := get(t, frameCtx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
	imageLoaded := get(t, frameCtx, chromedp.Evaluate[bool](
		`[...document.images].some(i => (i.getAttribute("src") || "").startsWith("/attachments/") && i.complete && i.naturalWidth === 1)`))

	if !strings.Contains(frameText, "Please see invoice 77.") {
		t.Fatalf("frame text = %q: the probe did not read the email frame", frameText)
	}
	if strings.Contains(frameTitle, "pwned") || frameFlag {
		t.Errorf("frame title = %q, window.pwned set %v: script from the email ran in the frame", frameTitle, frameFlag)
	}
	if !imageLoaded {
		t.Errorf("the inline cid: image did not load in the frame")
	}
	// The page itself: neither its title nor a window flag was touched.
	if title := get(t, ctx, chromedp.Title()); title != hostileTitle {
		t.Errorf("page title = %q, want %q: script from the email ran", title, hostileTitle)
	}
	if set := get(t, ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`)); set {
		t.Errorf("window.pwned is set: script from the email ran in the page")
	}
}

func TestBrowserUnparsedRawDownload(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "ana")

	do(t, ctx,
		chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, f.items["broken.eml"].WorkItemID)),
		chromedp.WaitVisible(chromedp.CSS(".unparsed-note")),
	)
	if note := get(t, ctx, chromedp.Text(chromedp.CSS(".unparsed-note"))); !strings.Contains(note, "unparsed") || !strings.Contains(note, "declares no boundary") {
		t.Errorf("unparsed note = %q, want the flag and the parse error", note)
	}

	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	dlCtx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	progress := chromedp.BrowserEvents(dlCtx, browser.DownloadProgress)
	do(t, ctx, chromedp.Click(`//a[text()="Download raw source"]`))
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the raw source download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the browser canceled the raw source download")
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.raw["broken.eml"]) {
		t.Errorf("downloaded %d bytes, want the %d bytes of the stored source:\n%s", len(got), len(f.raw["broken.eml"]), got)
	}
}

// attachEmailFrame returns a chromedp context on the one email frame of the current page.
func attachEmailFrame(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var frames []*target.Info
	for _, info := range infos {
		if info.Type == "iframe" && info.URL == "about:srcdoc" {
			frames = append(frames, info)
		}
	}
	if len(frames) != 1 {
		t.Fatalf("%d sandboxed srcdoc frame targets, want the one email frame (targets: %v)", len(frames), infos)
	}
	frameCtx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(frames[0].TargetID))
	t.Cleanup(cancel)
	// The first run attaches to the target for the life of its context, so it must not
	// have a timeout (the later, bounded runs reuse the attachment).
	if err := chromedp.Do(frameCtx); err != nil {
		t.Fatalf("attach to the email frame: %v", err)
	}
	return frameCtx
}
