package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestChromiumRendersPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The text is written by script, so only a real browser engine can show it.
		fmt.Fprint(w, `<!doctype html><title>testenv</title>
<p id="greeting">static</p>
<script>document.getElementById("greeting").textContent = "Hallo, " + (6 * 7) + " Grüße";</script>`)
	}))
	defer srv.Close()

	ctx := Chromium(t)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS("#greeting"))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	text, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#greeting")))
	if err != nil {
		t.Fatalf("read text: %v", err)
	}
	if want := "Hallo, 42 Grüße"; text != want {
		t.Errorf("page text = %q, want %q", text, want)
	}
	title, err := chromedp.Run(tctx, chromedp.Title())
	if err != nil || title != "testenv" {
		t.Errorf("title = %q, %v; want testenv", title, err)
	}
}
