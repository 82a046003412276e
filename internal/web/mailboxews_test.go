package web

import (
	"net/http"
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
