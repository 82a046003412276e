package web

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestMailboxFormEWS: the form offers EWS (Exchange Server) and creates an EWS mailbox on
// port 443 reading its inbox; STARTTLS is refused with advice.
func TestMailboxFormEWS(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	if !strings.Contains(form.body, `value="ews"`) || !strings.Contains(form.body, "EWS (Exchange Server)") {
		t.Fatalf("the form does not offer EWS")
	}
	token := form.csrf(t)
	vals := inboundForm(token, "exchange")
	vals.Set("protocol", "ews")
	vals.Set("host", "mail.example.com")
	vals.Set("security", "starttls")
	p := c.post("/mailboxes", vals)
	if p.status != http.StatusBadRequest || !strings.Contains(fieldError(p.body, "security"), "HTTPS") {
		t.Fatalf("starttls: %d %q", p.status, fieldError(p.body, "security"))
	}
	vals.Set("security", "tls")
	if p := c.post("/mailboxes", vals); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, banner(p.body))
	}
	m := f.mailboxNamed(t, "exchange")
	if m.Protocol != "ews" || m.Port != 443 || m.Folder != "inbox" || m.AfterAction != "mark_read" {
		t.Errorf("stored %+v", m)
	}
}

// TestMailboxFormEWSAutodiscoverHost: the EWS form takes an autodiscover host beside an
// empty host and shows it again; with a host typed too it is refused next to the field
// with what to do; a value left in the field for another protocol is not sent.
func TestMailboxFormEWSAutodiscoverHost(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	if !strings.Contains(form.body, `id="autodiscover_host"`) {
		t.Fatalf("the form has no autodiscover host field")
	}
	token := form.csrf(t)
	vals := inboundForm(token, "exchange")
	vals.Set("protocol", "ews")
	vals.Set("address", "support@contoso.example")
	vals.Set("host", "mail.contoso.example")
	vals.Set("port", "")
	vals.Set("autodiscover_host", "autodiscover.hoster.example")
	p := c.post("/mailboxes", vals)
	if msg := fieldError(p.body, "autodiscover_host"); p.status != http.StatusBadRequest || !strings.Contains(msg, "leave the host empty to find the server through the autodiscover host, or clear the autodiscover host") {
		t.Fatalf("host and autodiscover host: %d %q", p.status, msg)
	}
	vals.Set("host", "")
	if p := c.post("/mailboxes", vals); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, banner(p.body))
	}
	m := f.mailboxNamed(t, "exchange")
	if m.AutodiscoverHost != "autodiscover.hoster.example" || m.Host != "" {
		t.Fatalf("stored %+v", m)
	}
	edit := c.get("/mailboxes/" + strconv.FormatInt(m.ID, 10) + "/edit")
	if !strings.Contains(edit.body, `value="autodiscover.hoster.example"`) {
		t.Errorf("the edit form does not show the autodiscover host")
	}
	list := c.get("/mailboxes")
	if !strings.Contains(list.body, "autodiscover at autodiscover.hoster.example") {
		t.Errorf("the mailboxes table does not name the autodiscover host")
	}

	vals = inboundForm(token, "imap_left")
	vals.Set("autodiscover_host", "autodiscover.hoster.example")
	if p := c.post("/mailboxes", vals); p.status != http.StatusSeeOther {
		t.Fatalf("IMAP with a leftover autodiscover host: %d %s", p.status, banner(p.body))
	}
	if m := f.mailboxNamed(t, "imap_left"); m.AutodiscoverHost != "" {
		t.Errorf("IMAP mailbox stored with autodiscover host %q", m.AutodiscoverHost)
	}
}
