package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// secretPassword is the password given to mailboxes in these tests; no page may contain it.
const secretPassword = "S3cret-Never-Shown-7x"

// inboundForm is a valid create form for an inbound IMAP mailbox.
func inboundForm(token, name string) url.Values {
	return url.Values{
		"csrf": {token}, "direction": {"inbound"}, "name": {name}, "protocol": {"imap"},
		"address": {"orders@example.com"}, "login": {"orders@example.com"}, "password": {secretPassword},
		"host": {"imap.example.com"}, "security": {"tls"}, "port": {""}, "folder": {""}, "after_action": {""},
		"poll_interval_seconds": {"60"}, "max_size_mb": {"5"},
	}
}

// fieldError returns the text of the error shown next to field, "" when there is none.
func fieldError(body, field string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(field) + `-error">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// banner returns the text of the page's error banner, "" when there is none.
func banner(body string) string {
	m := regexp.MustCompile(`(?s)id="error-banner">(.*?)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func (f *fixture) mailboxNamed(t *testing.T, name string) store.Mailbox {
	t.Helper()
	m, err := f.st.MailboxByName(context.Background(), name)
	if err != nil {
		t.Fatalf("mailbox %q: %v", name, err)
	}
	return m
}

func TestMailboxFormValidation(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	if form.status != 200 || !strings.Contains(form.body, `value="5"`) || !strings.Contains(form.body, "New inbound mailbox") {
		t.Fatalf("new inbound form: %d, want the form with Max size 5\n%s", form.status, form.body)
	}
	token := form.csrf(t)

	refused := []struct {
		name, field, value, want string
	}{
		{"41-character name", "name", strings.Repeat("a", 41), "at most 40"},
		{"name with a space", "name", "a b", "no spaces"},
		{"Max size 4", "max_size_mb", "4", "from 5 to 20"},
		{"Max size 21", "max_size_mb", "21", "from 5 to 20"},
		{"Max size not a number", "max_size_mb", "five", "whole number"},
		{"port out of range", "port", "70000", "1 to 65535"},
		{"plain text to a remote host", "security", "none", "only for a server on this machine"},
	}
	for _, tc := range refused {
		vals := inboundForm(token, "orders")
		vals.Set(tc.field, tc.value)
		p := c.post("/mailboxes", vals)
		if p.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, p.status)
			continue
		}
		if got := fieldError(p.body, tc.field); !strings.Contains(got, tc.want) {
			t.Errorf("%s: error next to %s = %q, want it to contain %q", tc.name, tc.field, got, tc.want)
		}
		if !strings.Contains(p.body, `id="form-errors"`) {
			t.Errorf("%s: no error summary on the form", tc.name)
		}
		// The entered values are kept, the password is not.
		if tc.field != "name" && !strings.Contains(p.body, `value="orders"`) {
			t.Errorf("%s: the form lost the name it was sent", tc.name)
		}
		if !strings.Contains(p.body, `value="orders@example.com"`) {
			t.Errorf("%s: the form lost the login it was sent", tc.name)
		}
		if strings.Contains(p.body, secretPassword) {
			t.Fatalf("%s: the form shows the password it was sent", tc.name)
		}
	}
	if mbs, _ := f.st.ListMailboxes(context.Background()); len(mbs) != 2 {
		t.Fatalf("refused forms created mailboxes: %d mailboxes, want the 2 of the fixture", len(mbs))
	}

	for _, size := range []string{"5", "20"} {
		name := "orders_" + size
		vals := inboundForm(token, name)
		vals.Set("max_size_mb", size)
		p := c.post("/mailboxes", vals)
		if p.status != http.StatusSeeOther {
			t.Fatalf("Max size %s: %d, want a redirect\n%s", size, p.status, p.body)
		}
		m := f.mailboxNamed(t, name)
		if fmt.Sprint(m.MaxSizeMB) != size || m.Enabled || !m.PasswordSet || m.Folder != "INBOX" || m.Port != 993 {
			t.Errorf("created %+v, want Max size %s, disabled, password set, the defaults INBOX and 993", m, size)
		}
		p = c.get(p.header.Get("Location"))
		if !strings.Contains(p.body, "Mailbox created.") || !strings.Contains(p.body, `id="mailbox-`+fmt.Sprint(m.ID)+`" class="disabled selected"`) {
			t.Errorf("after create the list lacks the notice or the selected, disabled row:\n%s", p.body)
		}
	}
	// The name is unique.
	p := c.post("/mailboxes", inboundForm(token, "orders_5"))
	if (p.status != http.StatusConflict && p.status != http.StatusBadRequest) || !strings.Contains(fieldError(p.body, "name"), "exists") {
		t.Errorf("duplicate name: %d, error %q", p.status, fieldError(p.body, "name"))
	}
}

func TestMailboxEditKeepsPassword(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes").csrf(t)
	if p := c.post("/mailboxes", inboundForm(token, "orders")); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	m := f.mailboxNamed(t, "orders")
	edit := c.get(fmt.Sprintf("/mailboxes/%d/edit", m.ID))
	for _, want := range []string{`id="name" name="name" value="orders" readonly`, "A password is set; leave empty to keep it.", `name="password" type="password" value=""`} {
		if !strings.Contains(edit.body, want) {
			t.Errorf("edit form lacks %q", want)
		}
	}
	// Saving without a password keeps it; the name cannot be changed by the form.
	vals := inboundForm(token, "renamed")
	vals.Del("password")
	vals.Set("max_size_mb", "12")
	// A new host without the password: the stored one is not sent there.
	vals.Set("host", "mail2.example.com")
	if p := c.post(fmt.Sprintf("/mailboxes/%d", m.ID), vals); p.status != http.StatusBadRequest ||
		!strings.Contains(fieldError(p.body, "password"), "you changed the host: enter the password again; the stored one is only sent to "+m.Host) {
		t.Errorf("save with a new host and no password: %d, password error %q", p.status, fieldError(p.body, "password"))
	}
	vals.Set("host", m.Host)
	if p := c.post(fmt.Sprintf("/mailboxes/%d", m.ID), vals); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	got, err := f.st.Mailbox(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "orders" || got.Host != m.Host || got.MaxSizeMB != 12 || !got.PasswordSet {
		t.Errorf("after save: %+v, want name orders, the new size, the password kept", got)
	}
	secret, err := f.passwords.Get(context.Background(), m.ID)
	if err != nil || secret.Reveal() != secretPassword {
		t.Errorf("stored password changed by a save without one")
	}
}

func TestMailboxCSRFAndRoles(t *testing.T) {
	f := newFixture(t)
	admin := f.signIn(t, "admin")
	token := admin.get("/mailboxes").csrf(t)
	id := f.inbound.ID
	posts := []struct {
		path string
		form url.Values
	}{
		{"/mailboxes", inboundForm("", "forged")},
		{fmt.Sprintf("/mailboxes/%d/disable", id), url.Values{}},
		{fmt.Sprintf("/mailboxes/%d/delete", f.outbound.ID), url.Values{}},
		{"/mailboxes/disable-all", url.Values{}},
		{"/queues", url.Values{"name": {"Forged"}}},
	}
	for _, p := range posts {
		p.form.Del("csrf")
		if r := admin.post(p.path, p.form); r.status != http.StatusForbidden || !strings.Contains(r.body, "security token") {
			t.Errorf("POST %s without token: %d, want 403", p.path, r.status)
		}
		p.form.Set("csrf", token+"x")
		if r := admin.post(p.path, p.form); r.status != http.StatusForbidden {
			t.Errorf("POST %s with a wrong token: %d, want 403", p.path, r.status)
		}
	}
	if m := f.mailboxNamed(t, "support"); !m.Enabled {
		t.Error("a refused form disabled the mailbox")
	}
	if _, err := f.st.MailboxByName(context.Background(), "forged"); !store.IsNotFound(err) {
		t.Errorf("a refused form created a mailbox: %v", err)
	}

	// Agents see none of it; supervisors see the pages without the buttons and may not act.
	agent := f.signIn(t, "ana")
	for _, path := range []string{"/mailboxes", "/queues", "/mailboxes/new", fmt.Sprintf("/mailboxes/%d/from-addresses", f.outbound.ID)} {
		if p := agent.get(path); p.status != http.StatusForbidden {
			t.Errorf("agent GET %s: %d, want 403", path, p.status)
		}
	}
	if p := agent.get("/workitems"); strings.Contains(p.body, `href="/mailboxes"`) || strings.Contains(p.body, `href="/queues"`) {
		t.Error("an agent's navigation shows Mailboxes or Queues")
	}
	sup := f.signIn(t, "sam")
	p := sup.get(fmt.Sprintf("/mailboxes?selected=%d", id))
	if p.status != 200 || !strings.Contains(p.body, `href="/queues"`) || !strings.Contains(p.body, `id="detail"`) {
		t.Errorf("supervisor list: %d, want the page with Queues in the navigation", p.status)
	}
	for _, button := range []string{`id="add-inbound"`, `id="edit"`, `id="toggle"`, "Enable all"} {
		if strings.Contains(p.body, button) {
			t.Errorf("supervisor sees the admin control %s", button)
		}
	}
	supToken := p.csrf(t)
	for _, path := range []string{fmt.Sprintf("/mailboxes/%d/disable", id), "/mailboxes", "/queues"} {
		if r := sup.post(path, url.Values{"csrf": {supToken}, "name": {"x"}}); r.status != http.StatusForbidden || !strings.Contains(r.body, "admin role") {
			t.Errorf("supervisor POST %s: %d, want 403 naming the admin role", path, r.status)
		}
	}
	if r := sup.get("/mailboxes/new"); r.status != http.StatusForbidden {
		t.Errorf("supervisor GET /mailboxes/new: %d, want 403", r.status)
	}
}

func TestMailboxLifecycleOnThePage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes").csrf(t)
	if p := c.post("/mailboxes", inboundForm(token, "orders")); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	m := f.mailboxNamed(t, "orders")
	queues, err := f.st.ListQueues(ctx)
	if err != nil || len(queues) != 1 {
		t.Fatalf("queues %v %v, want Default", queues, err)
	}

	// Assigning to the Default queue enables it.
	p := c.post(fmt.Sprintf("/mailboxes/%d/assign", m.ID), url.Values{"csrf": {token}, "queue_id": {fmt.Sprint(queues[0].ID)}, "show": {"inbound"}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "show=inbound") {
		t.Fatalf("assign: %d %s, want a redirect keeping the filter", p.status, p.header.Get("Location"))
	}
	if got := f.mailboxNamed(t, "orders"); !got.Enabled || got.QueueID != queues[0].ID {
		t.Fatalf("after assign: enabled %v queue %d", got.Enabled, got.QueueID)
	}
	p = c.get(p.header.Get("Location"))
	if !strings.Contains(p.body, `class="enabled selected"`) || !strings.Contains(p.body, `id="queue">Default<`) {
		t.Errorf("the list does not show the enabled row and its queue:\n%s", p.body)
	}

	// An enabled mailbox cannot be deleted: the banner says to disable it first.
	p = c.post(fmt.Sprintf("/mailboxes/%d/delete", m.ID), url.Values{"csrf": {token}})
	if p.status != http.StatusConflict || !strings.Contains(banner(p.body), "disable it first") {
		t.Fatalf("delete while enabled: %d, banner %q", p.status, banner(p.body))
	}
	confirm := c.get(fmt.Sprintf("/mailboxes/%d/delete", m.ID))
	if !strings.Contains(confirm.body, "disable it first") {
		t.Errorf("the delete confirmation does not warn that the mailbox is enabled")
	}

	// Disable, then delete through the confirmation.
	if p := c.post(fmt.Sprintf("/mailboxes/%d/disable", m.ID), url.Values{"csrf": {token}}); p.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.status)
	}
	if got := f.mailboxNamed(t, "orders"); got.Enabled {
		t.Fatal("still enabled after disable")
	}
	confirm = c.get(fmt.Sprintf("/mailboxes/%d/delete", m.ID))
	if !strings.Contains(confirm.body, `action="/mailboxes/`+fmt.Sprint(m.ID)+`/delete"`) || strings.Contains(confirm.body, "disable it first") {
		t.Errorf("confirmation page:\n%s", confirm.body)
	}
	p = c.post(fmt.Sprintf("/mailboxes/%d/delete", m.ID), url.Values{"csrf": {token}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", p.status, p.body)
	}
	if _, err := f.st.Mailbox(ctx, m.ID); !store.IsNotFound(err) {
		t.Errorf("mailbox still there after delete: %v", err)
	}
	if p := c.get(p.header.Get("Location")); !strings.Contains(p.body, "Mailbox deleted.") || strings.Contains(p.body, ">orders<") {
		t.Errorf("list after delete lacks the notice or still shows the mailbox")
	}
	// The history of the seeded mailbox's changes is in its detail pane.
	if p := c.post(fmt.Sprintf("/mailboxes/%d/disable", f.inbound.ID), url.Values{"csrf": {token}}); p.status != http.StatusSeeOther {
		t.Fatalf("disable support: %d", p.status)
	}
	p = c.get(fmt.Sprintf("/mailboxes?selected=%d", f.inbound.ID))
	if !strings.Contains(p.body, "mailbox.disable") || !strings.Contains(p.body, "by admin") {
		t.Errorf("the detail pane does not list the disable event:\n%s", p.body)
	}
}

func TestMailboxBulkCopyAndFilters(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes").csrf(t)

	// Bulk disable of the ticked rows, then bulk delete with its confirmation.
	p := c.post("/mailboxes/bulk", url.Values{"csrf": {token}, "action": {"disable"}, "id": {fmt.Sprint(f.inbound.ID), fmt.Sprint(f.outbound.ID)}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("bulk disable: %d\n%s", p.status, p.body)
	}
	if f.mailboxNamed(t, "support").Enabled || f.mailboxNamed(t, "support-out").Enabled {
		t.Fatal("bulk disable left a mailbox enabled")
	}
	p = c.post("/mailboxes/bulk", url.Values{"csrf": {token}, "action": {"enable"}})
	if p.status != http.StatusBadRequest || !strings.Contains(banner(p.body), "No mailbox is ticked") {
		t.Errorf("bulk without ticks: %d %q", p.status, banner(p.body))
	}

	// Copy: a bad name is refused next to the field; a good one makes a disabled copy
	// without the password.
	p = c.post(fmt.Sprintf("/mailboxes/%d/copy", f.inbound.ID), url.Values{"csrf": {token}, "name": {"a b"}})
	if p.status != http.StatusBadRequest || fieldError(p.body, "copy") == "" {
		t.Errorf("copy as %q: %d, copy error %q", "a b", p.status, fieldError(p.body, "copy"))
	}
	p = c.post(fmt.Sprintf("/mailboxes/%d/copy", f.inbound.ID), url.Values{"csrf": {token}, "name": {"support.copy"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("copy: %d\n%s", p.status, p.body)
	}
	cp := f.mailboxNamed(t, "support.copy")
	if cp.Enabled || cp.PasswordSet || cp.Host != f.inbound.Host || cp.Login != f.inbound.Login {
		t.Errorf("copy = %+v, want the settings without the password, disabled", cp)
	}

	// Filters and search.
	rows := func(p webPage) []string {
		var names []string
		for _, m := range regexp.MustCompile(`<td class="name"><a [^>]*>([^<]+)</a>`).FindAllStringSubmatch(p.body, -1) {
			names = append(names, m[1])
		}
		return names
	}
	tests := []struct {
		query string
		want  string
	}{
		{"", "support support-out support.copy"},
		{"show=inbound", "support support.copy"},
		{"show=outbound", "support-out"},
		{"q=SMTP.example", "support-out"},
		{"q=copy", "support.copy"},
		{"show=outbound&q=copy", ""},
	}
	for _, tc := range tests {
		p := c.get("/mailboxes?" + tc.query)
		if got := strings.Join(rows(p), " "); got != tc.want {
			t.Errorf("/mailboxes?%s shows %q, want %q", tc.query, got, tc.want)
		}
	}
	if p := c.get("/mailboxes?show=outbound&q=copy"); !strings.Contains(p.body, "No mailbox matches this filter.") {
		t.Error("an empty result does not say so")
	}

	// Bulk delete asks first, then deletes the disabled ones.
	p = c.post("/mailboxes/bulk", url.Values{"csrf": {token}, "action": {"delete"}, "id": {fmt.Sprint(cp.ID)}})
	if p.status != 200 || !strings.Contains(p.body, `value="delete-confirm"`) || !strings.Contains(p.body, "support.copy") {
		t.Fatalf("bulk delete: %d, want the confirmation\n%s", p.status, p.body)
	}
	p = c.post("/mailboxes/bulk", url.Values{"csrf": {token}, "action": {"delete-confirm"}, "id": {fmt.Sprint(cp.ID)}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("bulk delete confirmed: %d\n%s", p.status, p.body)
	}
	if _, err := f.st.MailboxByName(context.Background(), "support.copy"); !store.IsNotFound(err) {
		t.Errorf("copy still there: %v", err)
	}
}

func TestFromAddressesAndQueues(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	path := fmt.Sprintf("/mailboxes/%d/from-addresses", f.outbound.ID)
	page := c.get(path)
	if page.status != 200 || !strings.Contains(page.body, "No extra From addresses yet.") {
		t.Fatalf("From addresses: %d\n%s", page.status, page.body)
	}
	token := page.csrf(t)
	p := c.post(path, url.Values{"csrf": {token}, "address": {"not an address"}, "display_name": {"Sales"}})
	if p.status != http.StatusBadRequest || fieldError(p.body, "address") == "" || !strings.Contains(p.body, `value="Sales"`) {
		t.Errorf("bad address: %d, error %q", p.status, fieldError(p.body, "address"))
	}
	p = c.post(path, url.Values{"csrf": {token}, "address": {"sales@example.com"}, "display_name": {"Example Sales"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", p.status, p.body)
	}
	p = c.get(p.header.Get("Location"))
	if !strings.Contains(p.body, "sales@example.com") || !strings.Contains(p.body, "Example Sales") {
		t.Errorf("the list lacks the new address:\n%s", p.body)
	}
	froms, err := f.st.ListFromAddresses(ctx, f.outbound.ID)
	if err != nil || len(froms) != 1 {
		t.Fatalf("From addresses %v %v", froms, err)
	}
	if p := c.get(fmt.Sprintf("/mailboxes?selected=%d", f.outbound.ID)); !strings.Contains(p.body, "Example Sales") {
		t.Errorf("the detail pane of the outbound mailbox does not list its From addresses")
	}
	if p := c.get(fmt.Sprintf("/mailboxes/%d/from-addresses", f.inbound.ID)); p.status != http.StatusNotFound {
		t.Errorf("From addresses of an inbound mailbox: %d, want 404", p.status)
	}
	p = c.post(fmt.Sprintf("%s/%d/delete", path, froms[0].ID), url.Values{"csrf": {token}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("delete From address: %d", p.status)
	}
	if froms, _ := f.st.ListFromAddresses(ctx, f.outbound.ID); len(froms) != 0 {
		t.Errorf("From address still there after delete")
	}

	// Queues: create one, disable Default: its mailbox is disabled.
	p = c.post("/queues", url.Values{"csrf": {token}, "name": {"Billing"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create queue: %d\n%s", p.status, p.body)
	}
	p = c.get("/queues")
	if !strings.Contains(p.body, ">Billing<") || !strings.Contains(p.body, ">support</a>") {
		t.Errorf("queues page lacks the new queue or Default's mailbox:\n%s", p.body)
	}
	if p := c.post("/queues", url.Values{"csrf": {token}, "name": {"Billing"}}); p.status != http.StatusConflict && p.status != http.StatusBadRequest {
		t.Errorf("duplicate queue: %d, want a refusal", p.status)
	}
	def := f.inbound.QueueID
	if p := c.post(fmt.Sprintf("/queues/%d/disable", def), url.Values{"csrf": {token}}); p.status != http.StatusSeeOther {
		t.Fatalf("disable Default: %d\n%s", p.status, p.body)
	}
	if f.mailboxNamed(t, "support").Enabled {
		t.Error("disabling the queue left its mailbox enabled")
	}
}

func TestReplyFromChoice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.mbox.AddFromAddress(ctx, "admin", f.outbound.ID, "sales@example.com", "Example Sales"); err != nil {
		t.Fatal(err)
	}
	id := f.items["plain.eml"].WorkItemID
	c := f.signIn(t, "ana")
	page := c.get(fmt.Sprintf("/workitems/%d", id))
	if !strings.Contains(page.body, `<select id="from" name="from"`) ||
		!strings.Contains(page.body, `<option value="support@example.com" selected>`) ||
		!strings.Contains(page.body, "Example Sales &lt;sales@example.com&gt;") {
		t.Fatalf("reply form lacks the From select with the address written to preselected:\n%s", page.body)
	}
	token := page.csrf(t)
	p := c.post(fmt.Sprintf("/workitems/%d/reply", id), url.Values{"csrf": {token}, "text": {"Hello"}, "from": {"someone@elsewhere.example"}})
	if p.status != http.StatusBadRequest || fieldError(p.body, "from") == "" {
		t.Errorf("unknown From: %d, error %q", p.status, fieldError(p.body, "from"))
	}
	p = c.post(fmt.Sprintf("/workitems/%d/reply", id), url.Values{"csrf": {token}, "text": {"Hello"}, "from": {"sales@example.com"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("reply: %d\n%s", p.status, p.body)
	}
	ob, err := f.st.OutboxForWorkItem(ctx, id)
	if err != nil || len(ob) != 1 {
		t.Fatalf("outbox %v %v", ob, err)
	}
	if !strings.Contains(string(ob[0].Raw), "sales@example.com") {
		t.Errorf("the reply is not from the chosen address:\n%s", ob[0].Raw)
	}
}

func TestMailboxPasswordNeverInPages(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes").csrf(t)
	if p := c.post("/mailboxes", inboundForm(token, "orders")); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	out := url.Values{
		"csrf": {token}, "direction": {"outbound"}, "name": {"sales_out"}, "protocol": {"smtp"},
		"address": {"sales@example.com"}, "login": {"sales"}, "password": {secretPassword},
		"host": {"smtp.example.com"}, "security": {"starttls"},
	}
	if p := c.post("/mailboxes", out); p.status != http.StatusSeeOther {
		t.Fatalf("create outbound: %d\n%s", p.status, p.body)
	}
	in, outbox := f.mailboxNamed(t, "orders"), f.mailboxNamed(t, "sales_out")
	if _, err := f.mbox.AddFromAddress(context.Background(), "admin", outbox.ID, "deals@example.com", "Deals"); err != nil {
		t.Fatal(err)
	}
	if err := f.mbox.Enable(context.Background(), "admin", in.ID); err != nil {
		t.Fatal(err)
	}
	pages := []webPage{}
	for _, path := range []string{
		"/mailboxes",
		fmt.Sprintf("/mailboxes?selected=%d", in.ID),
		fmt.Sprintf("/mailboxes?selected=%d", outbox.ID),
		fmt.Sprintf("/mailboxes/%d/edit", in.ID),
		fmt.Sprintf("/mailboxes/%d/edit", outbox.ID),
		fmt.Sprintf("/mailboxes/%d/from-addresses", outbox.ID),
		fmt.Sprintf("/mailboxes/%d/delete", in.ID),
		"/queues",
	} {
		p := c.get(path)
		if p.status != 200 {
			t.Errorf("GET %s: %d", path, p.status)
		}
		pages = append(pages, p)
	}
	// Forms sent back with an error, and the connection test of typed settings.
	bad := inboundForm(token, "a b")
	pages = append(pages, c.post("/mailboxes", bad))
	bad = inboundForm(token, "orders")
	bad.Set("max_size_mb", "21")
	pages = append(pages, c.post(fmt.Sprintf("/mailboxes/%d", in.ID), bad))
	test := inboundForm(token, "orders2")
	test.Set("host", "127.0.0.1")
	test.Set("security", "none")
	test.Set("port", fmt.Sprint(closedPort(t)))
	pages = append(pages, c.post("/mailboxes/test", test))
	for i, p := range pages {
		if strings.Contains(p.body, secretPassword) {
			t.Errorf("page %d contains the mailbox password", i)
		}
	}
	if !strings.Contains(pages[1].body, `id="password-state">set<`) {
		t.Error("the detail pane does not say the password is set")
	}
}
