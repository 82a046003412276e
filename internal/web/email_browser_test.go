package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserEmailFormattingAndSuspiciousLinks: an HTML mail's coloured, bold and large
// text keeps its look inside the sandboxed frame, nothing it names on another host is
// fetched (a remote image, a CSS url()), and a link whose text shows another site carries
// a visible marker naming where it goes.
func TestBrowserEmailFormattingAndSuspiciousLinks(t *testing.T) {
	f := newFixture(t)
	var remoteHits atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remoteHits.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(remote.Close)

	raw := "From: Fiona Format <fiona@example.org>\r\nTo: support@example.com\r\nSubject: Styled mail\r\n" +
		"Date: Tue, 03 Mar 2026 10:00:00 +0100\r\nMessage-ID: <styled-1@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n" +
		`<html><body><p style="color: #c00000; font-weight: bold; font-size: 22px">Red and bold</p>` +
		`<p><span style="color: rgb(0, 128, 0); font-style: italic">green italic</span></p>` +
		`<div style="background: url(` + remote.URL + `/bg.png); background-color: #ffff00">yellow</div>` +
		`<img src="` + remote.URL + `/pixel.gif" alt="tracker">` +
		`<p>Log in at <a href="https://bank.com.evil.example/login">www.bank.com</a> or ` +
		`<a href="https://www.example.org/help">example.org/help</a>.</p></body></html>` + "\r\n"
	m := message.Parse([]byte(raw))
	m.MailboxID, m.Direction, m.SourceID = f.inbound.ID, store.Inbound, "imap:1:99"
	res, err := f.st.IngestMessage(context.Background(), store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte(raw), Message: m})
	if err != nil {
		t.Fatal(err)
	}

	ctx := testenv.Chromium(t)
	signInInBrowser(t, ctx, f, "admin")
	do(t, ctx,
		chromedp.Navigate(fmt.Sprintf("%s/workitems/%d", f.srv.URL, res.WorkItemID)),
		chromedp.WaitVisible(chromedp.CSS("iframe.email-html")),
	)
	frameCtx := attachEmailFrame(t, ctx)
	get(t, frameCtx, chromedp.Evaluate[bool](
		`new Promise(r => document.readyState === "complete" ? r(true) : addEventListener("load", () => r(true)))`,
		chromedp.EvalAwaitPromise))
	// The sanitizer drops ids, so elements are found by their text.
	get(t, frameCtx, chromedp.Evaluate[bool](`window.byText = s => [...document.body.querySelectorAll("*")].find(e => e.firstChild && e.firstChild.nodeType === 3 && e.firstChild.textContent.trim() === s); true`))
	style := func(text, prop string) string {
		return get(t, frameCtx, chromedp.Evaluate[string](
			fmt.Sprintf(`getComputedStyle(byText(%q)).getPropertyValue(%q)`, text, prop)))
	}
	for _, c := range []struct{ text, prop, want string }{
		{"Red and bold", "color", "rgb(192, 0, 0)"},
		{"Red and bold", "font-weight", "700"},
		{"Red and bold", "font-size", "22px"},
		{"green italic", "color", "rgb(0, 128, 0)"},
		{"green italic", "font-style", "italic"},
		{"yellow", "background-color", "rgb(255, 255, 0)"},
		{"yellow", "background-image", "none"},
	} {
		if got := style(c.text, c.prop); got != c.want {
			t.Errorf("%q %s = %q, want %q: the email's formatting is not applied in the frame", c.text, c.prop, got, c.want)
		}
	}

	text := get(t, frameCtx, chromedp.Evaluate[string](`document.body.innerText`))
	if !strings.Contains(text, "www.bank.com⚠ goes to bank.com.evil.example") && !strings.Contains(text, "www.bank.com ⚠ goes to bank.com.evil.example") {
		t.Errorf("frame text lacks the marker after the deceptive link:\n%s", text)
	}
	markerShown := get(t, frameCtx, chromedp.Evaluate[bool](
		`(() => { const m = byText("www.bank.com").nextElementSibling; const r = m && m.getBoundingClientRect();
		  return !!m && m.textContent.includes("evil.example") && r.width > 0 && r.height > 0 && getComputedStyle(m).visibility === "visible"; })()`))
	if !markerShown {
		t.Error("the marker after the deceptive link is not visible in the frame")
	}
	if title := get(t, frameCtx, chromedp.Evaluate[string](`byText("www.bank.com").title`)); !strings.Contains(title, "bank.com.evil.example") {
		t.Errorf("deceptive link title = %q, want it to name the target", title)
	}
	if got := get(t, frameCtx, chromedp.Evaluate[string](`byText("example.org/help").nextElementSibling ? byText("example.org/help").nextElementSibling.outerHTML : ""`)); got != "" {
		t.Errorf("an honest link got a marker: %s", got)
	}
	if n := remoteHits.Load(); n != 0 {
		t.Errorf("the frame fetched %d resources from another host (remote image or CSS url())", n)
	}
}
