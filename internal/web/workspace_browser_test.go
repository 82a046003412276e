package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// secondBrowser returns a second browser context of the browser of ctx, with its own
// cookies: another user at another desk.
func secondBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run opens the context's tab, which lives as long as the run's context:
	// that must be other itself, without a deadline.
	if err := chromedp.Do(other); err != nil {
		t.Fatalf("browser: open a second browser context: %v", err)
	}
	return other
}

// customerWritesAgain stores a follow-up of the customer to the conversation of the
// seeded item name and tells the engine (as ingest does).
func (f *routingFixture) customerWritesAgain(t *testing.T, name, text string) store.IngestResult {
	t.Helper()
	ctx := context.Background()
	orig, err := f.st.Message(ctx, f.items[name].MessageID)
	if err != nil {
		t.Fatal(err)
	}
	m := store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: "imap:1:follow-up-" + text,
		MessageID: "follow-up-" + fmt.Sprint(time.Now().UnixNano()) + "@example.org", InReplyTo: orig.MessageID,
		Subject: "Re: " + orig.Subject, FromAddr: orig.FromAddr, FromName: orig.FromName, To: "support@example.com", TextBody: text}
	res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte("Subject: follow-up\r\n\r\n" + text + "\r\n"), Message: m})
	if err != nil {
		t.Fatal(err)
	}
	if res.ConversationID != f.items[name].ConversationID {
		t.Fatalf("the follow-up started conversation %d, want %d", res.ConversationID, f.items[name].ConversationID)
	}
	f.engine.Wake()
	return res
}

// TestBrowserCollisionGuard: Ana opens an item and Sam, at another desk, sees her there
// and then writing; the customer writes again after Ana loaded the page, her page says
// so, and her reply is refused with the explanation and the new message until she sends
// it anyway.
func TestBrowserCollisionGuard(t *testing.T) {
	f := newRoutingFixture(t)
	ana := testenv.Chromium(t)
	sam := secondBrowser(t, ana)
	signInInBrowser(t, ana, f.fixture, "ana")
	signInInBrowser(t, sam, f.fixture, "sam")
	item := f.items["plain.eml"].WorkItemID
	page := fmt.Sprintf("%s/workitems/%d", f.srv.URL, item)

	do(t, ana, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("text")))
	waitText(t, ana, "html", func(string) bool {
		return get(t, ana, chromedp.Evaluate[bool](`document.documentElement.getAttribute("data-live") === "1"`))
	})
	do(t, sam, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("presence")))
	if got := get(t, sam, chromedp.Text(chromedp.ID("presence"))); strings.TrimSpace(got) != "Ana Agent is viewing" {
		t.Errorf("Sam's page shows %q, want Ana Agent is viewing", got)
	}
	// Ana's open page learns that Sam came, without a reload.
	waitText(t, ana, "#presence", func(s string) bool { return s == "Sam Supervisor is viewing" })

	// Ana writes: Sam sees it.
	do(t, ana, chromedp.SendKeys(chromedp.ID("text"), "Your parcel left today."))
	waitText(t, sam, "#presence", func(s string) bool { return s == "Ana Agent is writing a reply" })

	// The customer writes again: Ana's page says so.
	follow := f.customerWritesAgain(t, "plain.eml", "Where is my parcel? It is urgent.")
	waitText(t, ana, "#new-message", func(s string) bool { return strings.HasPrefix(s, "New message arrived — reload") })

	// Her reply is refused: the explanation, the new message marked, her text kept.
	submit(t, ana, chromedp.Click(chromedp.CSS(`.reply button[value="assigned"]`)))
	alert := get(t, ana, chromedp.Text(chromedp.ID("collision")))
	if !strings.Contains(alert, "Your reply was not sent: the conversation changed since you opened it (1 new message from the customer)") ||
		!strings.Contains(alert, "Send anyway") {
		t.Errorf("refusal = %q", alert)
	}
	newMsg := get(t, ana, chromedp.Text(chromedp.CSS(fmt.Sprintf("article#message-%d.new-since", follow.MessageID))))
	if !strings.Contains(newMsg, "Where is my parcel? It is urgent.") || !strings.Contains(newMsg, "Arrived after you opened this item.") {
		t.Errorf("the new message shows %q", newMsg)
	}
	if kept := get(t, ana, chromedp.Value(chromedp.ID("text"))); kept != "Your parcel left today." {
		t.Errorf("reply box after the refusal = %q", kept)
	}
	if out, err := f.st.OutboxForWorkItem(context.Background(), item); err != nil || len(out) != 0 {
		t.Fatalf("outbox after the refusal: %d items, %v", len(out), err)
	}

	// Send anyway: sent, and it stays with her (the state the refused reply asked for).
	submit(t, ana, chromedp.Click(chromedp.ID("send-anyway")))
	main := get(t, ana, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(main, "Reply sent to the outbox.") {
		t.Errorf("after Send anyway:\n%s", main)
	}
	if state := get(t, ana, chromedp.Text(chromedp.ID("state"))); state != "assigned" {
		t.Errorf("state = %q, want assigned", state)
	}
	if out, err := f.st.OutboxForWorkItem(context.Background(), item); err != nil || len(out) != 1 {
		t.Fatalf("outbox after Send anyway: %d items, %v", len(out), err)
	}
	// Sam's page: Ana is no longer writing (her reply went out).
	waitText(t, sam, "#presence", func(s string) bool { return s == "Ana Agent is viewing" })

	// Sam marks the item done: Ana's open page shows the new state and asks for a reload.
	do(t, ana, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("text")))
	waitText(t, ana, "html", func(string) bool {
		return get(t, ana, chromedp.Evaluate[bool](`document.documentElement.getAttribute("data-live") === "1"`))
	})
	do(t, sam, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`button.action-close`)))
	submit(t, sam, chromedp.Click(chromedp.CSS(`button.action-close`)))
	waitText(t, ana, "#state", func(s string) bool { return s == "done" })
	waitText(t, ana, "#state-changed", func(s string) bool { return strings.HasPrefix(s, "This item changed meanwhile") })
}

// TestBrowserLiveList: a new item appears in the open list without a reload.
func TestBrowserLiveList(t *testing.T) {
	f := newRoutingFixture(t)
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f.fixture, "ana")
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/workitems"), chromedp.WaitVisible(chromedp.CSS("table.workitems")))
	waitText(t, ctx, "html", func(string) bool {
		return get(t, ctx, chromedp.Evaluate[bool](`document.documentElement.getAttribute("data-live") === "1"`))
	})
	get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`))
	if rows := get(t, ctx, chromedp.Text(chromedp.ID("workitem-results"))); strings.Contains(rows, "Fresh arrival") {
		t.Fatal("the new item is listed before it arrived")
	}
	ctxb := context.Background()
	m := store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: "imap:1:fresh", MessageID: "fresh@example.org",
		Subject: "Fresh arrival", FromAddr: "new@example.org", To: "support@example.com", TextBody: "hello"}
	if _, err := f.st.IngestMessage(ctxb, store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte("Subject: Fresh arrival\r\n\r\nhello\r\n"), Message: m}); err != nil {
		t.Fatal(err)
	}
	f.engine.Wake() // as ingest does
	waitText(t, ctx, "#workitem-results", func(s string) bool { return strings.Contains(s, "Fresh arrival") })
	if !get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)) {
		t.Error("the page was reloaded")
	}

	// j, j, Enter: the second row opens (the newest first: the fresh item, then the next).
	do(t, ctx, chromedp.KeyEvent("j"))
	first := get(t, ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if first != "Fresh arrival" {
		t.Errorf("j chose %q, want the first row", first)
	}
	do(t, ctx, chromedp.KeyEvent("j"))
	second := get(t, ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if second == first || !get(t, ctx, chromedp.Evaluate[bool](`document.querySelectorAll("tr.kbd-current").length === 1`)) {
		t.Errorf("second j chose %q", second)
	}
	submit(t, ctx, chromedp.KeyEvent("\r"))
	if h1 := get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h1 != second {
		t.Errorf("Enter opened %q, want %q", h1, second)
	}
}

// TestBrowserItemShortcuts: "?" lists the shortcuts, "r" goes to the reply box, letters
// typed there stay text, and "d" marks the item done.
func TestBrowserItemShortcuts(t *testing.T) {
	f := newRoutingFixture(t)
	wi, ok, err := f.engine.Pull(context.Background(), f.ana)
	if err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f.fixture, "ana")
	do(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, wi.ID)), chromedp.WaitVisible(chromedp.ID("text")))
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "assigned" {
		t.Fatalf("state = %q, want assigned", state)
	}
	waitText(t, ctx, "html", func(string) bool {
		return get(t, ctx, chromedp.Evaluate[bool](`document.documentElement.getAttribute("data-live") === "1"`))
	})

	do(t, ctx, chromedp.KeyEvent("?"), chromedp.WaitVisible(chromedp.ID("shortcuts")))
	list := get(t, ctx, chromedp.Text(chromedp.ID("shortcuts")))
	for _, want := range []string{"r", "write the reply", "d", "mark done", "n", "get next"} {
		if !strings.Contains(list, want) {
			t.Errorf("shortcut list lacks %q:\n%s", want, list)
		}
	}
	do(t, ctx, chromedp.KeyEvent("?"), chromedp.WaitNotVisible(chromedp.ID("shortcuts")))

	do(t, ctx, chromedp.KeyEvent("r"))
	if id := get(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); id != "text" {
		t.Fatalf("after r the focus is on %q, want the reply box", id)
	}
	do(t, ctx, chromedp.KeyEvent("done"))
	if v := get(t, ctx, chromedp.Value(chromedp.ID("text"))); v != "done" {
		t.Errorf("typed in the reply box: %q, want the text itself", v)
	}
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "assigned" {
		t.Fatalf("typing d in the reply box changed the state to %q", state)
	}

	get(t, ctx, chromedp.Evaluate[bool](`document.activeElement.blur(), true`))
	submit(t, ctx, chromedp.KeyEvent("d"))
	if state := get(t, ctx, chromedp.Text(chromedp.ID("state"))); state != "done" {
		t.Errorf("state after d = %q, want done", state)
	}
}
