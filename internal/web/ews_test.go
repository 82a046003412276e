package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// TestMailboxFormEWSAutodiscover: the form says an EWS mailbox's host may be left empty for
// autodiscover, and such a mailbox is saved without a host.
func TestMailboxFormEWSAutodiscover(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	if !strings.Contains(form.body, `id="host-help-ews"`) || !strings.Contains(form.body, "leave the host empty to find the server by autodiscover") {
		t.Fatal("the form does not say that an EWS mailbox's host may be left empty for autodiscover")
	}
	values := url.Values{
		"csrf": {form.csrf(t)}, "direction": {store.Inbound}, "name": {"exchange"}, "protocol": {mailbox.EWS},
		"address": {"support@contoso.com"}, "security": {mailbox.SecurityTLS}, "login": {"CONTOSO\\svc-postroom"}, "password": {"pw"},
		"max_size_mb": {"5"}, "poll_interval_seconds": {"60"}, "auth": {store.AuthPassword},
	}
	resp := c.post("/mailboxes", values)
	if resp.status != http.StatusSeeOther {
		t.Fatalf("create an EWS mailbox without a host: %d\n%s", resp.status, resp.body)
	}
	m, err := f.st.MailboxByName(context.Background(), "exchange")
	if err != nil {
		t.Fatal(err)
	}
	if m.Host != "" || m.Protocol != mailbox.EWS {
		t.Fatalf("stored %+v, want an EWS mailbox without a host", m)
	}
	detail := c.get("/mailboxes?selected=" + itoa(m.ID))
	if !strings.Contains(detail.body, `<dd id="mailbox-host">found by autodiscover from the address</dd>`) || !strings.Contains(detail.body, "<td>autodiscover</td>") {
		t.Error("the mailboxes page does not say that the EWS server is found by autodiscover")
	}
}

// TestBrowserMailboxFormEWSHostHelp: the autodiscover help shows only for EWS.
func TestBrowserMailboxFormEWSHostHelp(t *testing.T) {
	f := newFixture(t)
	ctx, _ := adminBrowser(t, f)
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/mailboxes/new?direction=inbound"),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
	if shown(t, ctx, "host-help-ews")["host-help-ews"] {
		t.Error("the EWS autodiscover help shows for IMAP")
	}
	do(t, ctx, chromedp.SetValue(chromedp.ID("protocol"), mailbox.EWS))
	if !shown(t, ctx, "host-help-ews")["host-help-ews"] {
		t.Error("the EWS autodiscover help is hidden for EWS")
	}
}
