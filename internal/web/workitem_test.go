package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// With no outbound mailbox enabled the work item still opens, and its reply form says
// that nothing can be sent and how to set up an outbound mailbox.
func TestWorkItemWithoutOutboundMailbox(t *testing.T) {
	f := newFixture(t)
	if err := f.st.SetMailboxEnabled(context.Background(), f.outbound.ID, false); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/workitems/%d", f.items["plain.eml"].WorkItemID)
	for user, how := range map[string]string{"ana": "Ask an administrator to add one", "admin": `href="/mailboxes/new?direction=outbound"`} {
		p := f.signIn(t, user).get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: GET %s: %d\n%s", user, path, p.status, p.body)
		}
		if !strings.Contains(p.body, `id="no-outbound"`) || !strings.Contains(p.body, "No outbound mailbox is enabled") || !strings.Contains(p.body, how) {
			t.Errorf("%s: the reply form does not say that no outbound mailbox is enabled and how to add one:\n%s", user, p.body)
		}
	}
	// With the outbound mailbox enabled the note is gone.
	if err := f.st.SetMailboxEnabled(context.Background(), f.outbound.ID, true); err != nil {
		t.Fatal(err)
	}
	p := f.signIn(t, "ana").get(path)
	if strings.Contains(p.body, "no-outbound") {
		t.Errorf("the note shows with an outbound mailbox enabled:\n%s", p.body)
	}
}

// TestReplySentShowsOnce: the "Reply sent" banner shows on the page the reply redirected
// to, and not again when that page is reloaded.
func TestReplySentShowsOnce(t *testing.T) {
	f := newFixture(t)
	id := f.items["plain.eml"].WorkItemID
	c := f.signIn(t, "ana")
	path := fmt.Sprintf("/workitems/%d", id)
	token := c.get(path).csrf(t)
	p := c.post(path+"/reply", url.Values{"csrf": {token}, "text": {"Your parcel left today."}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("reply: %d\n%s", p.status, p.body)
	}
	next := p.header.Get("Location")
	if strings.Contains(next, "?") {
		t.Errorf("the reply redirects to %q: the banner must not live in the URL", next)
	}
	if p := c.get(next); !strings.Contains(p.body, "Reply sent to the outbox.") || !strings.Contains(p.body, "Your parcel left today.") {
		t.Errorf("after the reply the page lacks the banner or the reply:\n%s", p.body)
	}
	if p := c.get(next); strings.Contains(p.body, "Reply sent to the outbox.") || !strings.Contains(p.body, "Your parcel left today.") {
		t.Errorf("reloaded, the page shows the banner again (or lost the reply):\n%s", p.body)
	}
}
