package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestDemoShowsGoogleMailbox: the demo has a Google Workspace mailbox (provider google,
// Gmail API) on its local stand-in, and its sample mail becomes work items.
func TestDemoShowsGoogleMailbox(t *testing.T) {
	d := startDemo(t)
	c := apiSignIn(t, d.web, "admin", "demo")
	resp, err := c.Get(d.web + "/api/v1/mailboxes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"google_local_support"`, `"google"`, `"gmail"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /api/v1/mailboxes lacks %s:\n%s", want, body)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		if len(listItems(t, c, d.web, "Rechnung doppelt abgebucht").Items) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Google mailbox's sample mail never became a work item")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
