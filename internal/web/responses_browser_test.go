package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserTemplateSignatureDraft: an agent picks a canned response on the item page
// (no script), the reply box gets it filled in with the customer's name, the signature of
// the From address is previewed; a saved draft survives a reload; the sent reply is the
// text plus the signature, and the draft is gone.
func TestBrowserTemplateSignatureDraft(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.st.SaveResponseTemplate(ctx, store.ResponseTemplate{Name: "Parcel on its way",
		Body: "Hello {{.CustomerName}},\nyour parcel left our warehouse today (request {{.WorkItem}})."}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetSignature(ctx, store.Signature{Address: "support@example.com", Body: "Kind regards,\n{{.AgentName}}\nExample Support"}); err != nil {
		t.Fatal(err)
	}
	id := f.items["plain.eml"].WorkItemID
	b := testenv.Chromium(t)
	signInInBrowser(t, b, f, "ana")
	do(t, b, chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, id)), chromedp.WaitVisible(chromedp.ID("use-template")))
	if sig := get(t, b, chromedp.Text(chromedp.CSS("#signature-preview pre"))); sig != "Kind regards,\nAna Agent\nExample Support" {
		t.Errorf("signature preview = %q", sig)
	}

	submit(t, b, chromedp.Click(chromedp.ID("use-template")))
	text := get(t, b, chromedp.Value(chromedp.CSS("textarea#text")))
	want := fmt.Sprintf("Hello Carla Customer,\nyour parcel left our warehouse today (request %d).", id)
	if text != want {
		t.Fatalf("reply box after Use template = %q, want %q", text, want)
	}

	// Write on, save the draft, reload: nothing is lost.
	get(t, b, chromedp.Evaluate[bool](`(() => { const t = document.querySelector("textarea#text"); t.focus(); t.setSelectionRange(t.value.length, t.value.length); return true })()`))
	do(t, b, chromedp.KeyEvent("\nP.S. tracking follows."),
		chromedp.SendKeys(chromedp.ID("cc"), "partner@example.org"))
	submit(t, b, chromedp.Click(chromedp.ID("save-draft")))
	if n := get(t, b, chromedp.Text(chromedp.ID("draft-saved"))); !strings.Contains(n, "Draft saved") {
		t.Errorf("notice after Save draft = %q", n)
	}
	do(t, b, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("draft-restored")))
	text = get(t, b, chromedp.Value(chromedp.CSS("textarea#text")))
	if text != want+"\nP.S. tracking follows." {
		t.Fatalf("reply box after reload = %q", text)
	}
	if cc := get(t, b, chromedp.Value(chromedp.ID("cc"))); cc != "partner@example.org" {
		t.Errorf("Cc after reload = %q", cc)
	}

	submit(t, b, chromedp.Click(chromedp.CSS(`.reply button[value="done"]`)))
	do(t, b, chromedp.WaitVisible(chromedp.CSS("table.outbox")))
	outbox, err := f.st.OutboxForWorkItem(ctx, id)
	if err != nil || len(outbox) != 1 {
		t.Fatalf("%d outbox items, %v", len(outbox), err)
	}
	m, err := f.st.Message(ctx, outbox[0].MessageID)
	if err != nil {
		t.Fatal(err)
	}
	sent := strings.ReplaceAll(m.TextBody, "\r\n", "\n")
	if signed := text + "\n\nKind regards,\nAna Agent\nExample Support"; !strings.HasPrefix(sent, signed) {
		t.Errorf("sent text = %q, want it to begin %q", sent, signed)
	}
	if !strings.Contains(strings.Join(outbox[0].Recipients, ","), "partner@example.org") {
		t.Errorf("recipients %v lack the Cc of the draft", outbox[0].Recipients)
	}
	if _, err := f.st.Draft(ctx, mustUser(t, f, "ana").ID, id); !store.IsNotFound(err) {
		t.Errorf("draft after sending: %v, want none", err)
	}
	if v := get(t, b, chromedp.Value(chromedp.CSS("textarea#text"))); v != "" {
		t.Errorf("reply box after sending = %q, want empty", v)
	}
}

func mustUser(t *testing.T, f *fixture, name string) store.User {
	t.Helper()
	u, err := f.st.UserByUsername(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
