package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDisableAllAsksFirst: "Disable all" stops every mailbox only after a confirmation
// page that names them; the first click changes nothing, and the filter is kept.
func TestDisableAllAsksFirst(t *testing.T) {
	f := newFixture(t)
	admin := f.signIn(t, "admin")
	list := admin.get("/mailboxes")
	token := list.csrf(t)
	if !strings.Contains(list.body, `action="/mailboxes/disable-all"`) {
		t.Fatalf("no Disable all form on the page:\n%s", list.body)
	}

	p := admin.post("/mailboxes/disable-all", url.Values{"csrf": {token}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Disable all mailboxes") ||
		!strings.Contains(p.body, "<strong>support</strong>") || !strings.Contains(p.body, "<strong>support-out</strong>") ||
		!strings.Contains(p.body, `name="confirm" value="yes"`) || !strings.Contains(p.body, `id="confirm-disable-all"`) {
		t.Fatalf("first click: %d, want a confirmation page naming both mailboxes\n%s", p.status, p.body)
	}
	if !f.mailboxNamed(t, "support").Enabled || !f.mailboxNamed(t, "support-out").Enabled {
		t.Fatal("the first click of Disable all disabled mailboxes without confirmation")
	}

	// With the inbound filter only the inbound mailbox is named, and confirming keeps the filter.
	p = admin.post("/mailboxes/disable-all", url.Values{"csrf": {token}, "show": {"inbound"}})
	if !strings.Contains(p.body, "<strong>support</strong>") || strings.Contains(p.body, "<strong>support-out</strong>") ||
		!strings.Contains(p.body, `name="show" value="inbound"`) {
		t.Errorf("inbound confirmation page names the wrong mailboxes:\n%s", p.body)
	}
	p = admin.post("/mailboxes/disable-all", url.Values{"csrf": {token}, "show": {"inbound"}, "confirm": {"yes"}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "show=inbound") {
		t.Fatalf("confirmed: %d %q, want a redirect to the inbound list", p.status, p.header.Get("Location"))
	}
	if f.mailboxNamed(t, "support").Enabled || !f.mailboxNamed(t, "support-out").Enabled {
		t.Error("after confirming Disable all inbound: want support disabled and support-out enabled")
	}
	if p := admin.get(p.header.Get("Location")); !strings.Contains(p.body, "Mailboxes disabled.") {
		t.Errorf("no notice after Disable all:\n%s", p.body)
	}

	// Nothing left to disable: the page says so and offers no button.
	p = admin.post("/mailboxes/disable-all", url.Values{"csrf": {token}, "show": {"inbound"}})
	if !strings.Contains(p.body, `id="none-enabled"`) || strings.Contains(p.body, `id="confirm-disable-all"`) {
		t.Errorf("with nothing enabled the page should say so:\n%s", p.body)
	}
}
