package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
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

// TestSubjectWithoutStackedPrefixes: a conversation whose subject grew "Re: AW: Re: ..."
// is listed and titled by its topic alone, and the reply's subject has exactly one "Re: ".
func TestSubjectWithoutStackedPrefixes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := []byte("From: Ivo <ivo@example.org>\r\nTo: support@example.com\r\nSubject: Re: AW: RE: Re: Parcel 12 is late\r\n" +
		"Message-ID: <late-12@example.org>\r\n\r\nStill nothing.\r\n")
	m := message.Parse(raw)
	m.MailboxID, m.Direction, m.SourceID = f.inbound.ID, store.Inbound, "imap:1:99"
	res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: raw, Message: m})
	if err != nil {
		t.Fatal(err)
	}
	c := f.signIn(t, "ana")
	list := c.get("/workitems")
	row := fmt.Sprintf(`<a href="/workitems/%d">Parcel 12 is late</a>`, res.WorkItemID)
	if !strings.Contains(list.body, row) || strings.Contains(list.body, "Re: AW:") {
		t.Errorf("the list does not show the topic alone (%s):\n%s", row, list.body)
	}
	path := fmt.Sprintf("/workitems/%d", res.WorkItemID)
	page := c.get(path)
	if !strings.Contains(page.body, "<h1>Parcel 12 is late</h1>") || !strings.Contains(page.body, "<title>Parcel 12 is late") {
		t.Errorf("the page's heading or title is not the topic:\n%s", page.body)
	}
	if p := c.post(path+"/reply", url.Values{"csrf": {page.csrf(t)}, "text": {"It left today."}}); p.status != http.StatusSeeOther {
		t.Fatalf("reply: %d\n%s", p.status, p.body)
	}
	out, err := f.st.OutboxForWorkItem(ctx, res.WorkItemID)
	if err != nil || len(out) != 1 {
		t.Fatalf("outbox: %v %d items", err, len(out))
	}
	if !strings.Contains(string(out[0].Raw), "Subject: Re: Parcel 12 is late\r\n") {
		t.Errorf("the reply's subject is not \"Re: Parcel 12 is late\":\n%s", out[0].Raw)
	}
}
