package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/testenv"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	return testenv.FreePort(t)
}

// reportSteps returns the steps of the connection test report on a page: "pass Name" or
// "fail Name", in order.
func reportSteps(body string) []string {
	var steps []string
	re := regexp.MustCompile(`(?s)<span class="badge (?:pass|fail)">(pass|fail)</span>\s*<strong>([^<]*)</strong>`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		steps = append(steps, m[1]+" "+m[2])
	}
	return steps
}

func TestMailboxConnectionTest(t *testing.T) {
	f := newFixture(t)
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "orders@example.test", secretPassword)
	host, port, err := net.SplitHostPort(d.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes/new?direction=inbound").csrf(t)
	form := inboundForm(token, "orders")
	form.Set("login", "orders@example.test")
	form.Set("address", "orders@example.test")
	form.Set("host", host)
	form.Set("security", "none") // plain IMAP is allowed on loopback only
	form.Set("port", port)

	// Before saving: the typed settings are tested and the form keeps them.
	p := c.post("/mailboxes/test", form)
	steps := reportSteps(p.body)
	if p.status != 200 || !strings.Contains(p.body, "Connection test: passed") || len(steps) < 3 {
		t.Fatalf("test of typed settings: %d, steps %q\n%s", p.status, steps, p.body)
	}
	for _, s := range steps {
		if !strings.HasPrefix(s, "pass ") {
			t.Errorf("step %q failed against the real Dovecot", s)
		}
	}
	if !strings.Contains(p.body, `value="`+port+`"`) || !strings.Contains(p.body, `value="orders"`) || !strings.Contains(p.body, `id="retype-password"`) {
		t.Errorf("after the test the form lost its values or does not ask to type the password again")
	}

	// A wrong password fails at the login step, with advice.
	form.Set("password", "wrong-"+secretPassword)
	p = c.post("/mailboxes/test", form)
	steps = reportSteps(p.body)
	if !strings.Contains(p.body, "Connection test: failed") || len(steps) == 0 || !strings.HasPrefix(steps[len(steps)-1], "fail ") {
		t.Fatalf("wrong password: steps %q", steps)
	}
	if !strings.Contains(p.body, `<p class="advice">`) {
		t.Errorf("the failed step gives no advice:\n%s", p.body)
	}

	// Saved, the detail pane's button tests the stored settings with the stored password.
	form.Set("password", secretPassword)
	if p := c.post("/mailboxes", form); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	m := f.mailboxNamed(t, "orders")
	// The result lives at a GET page (POST-redirect-GET): reloading it shows the same
	// report and does not run the test again.
	p = c.post(fmt.Sprintf("/mailboxes/%d/test", m.ID), map[string][]string{"csrf": {token}})
	result := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(result, "/mailboxes?") || !strings.Contains(result, fmt.Sprintf("selected=%d", m.ID)) {
		t.Fatalf("stored mailbox test: %d to %q, want a redirect to the list with the mailbox selected", p.status, result)
	}
	p = c.get(result)
	if p.status != 200 || !strings.Contains(p.body, "Connection test: passed") || !strings.Contains(p.body, `id="detail"`) {
		t.Errorf("stored mailbox test: %d, steps %q", p.status, reportSteps(p.body))
	}
	broken := f.mailboxNamed(t, "orders")
	broken.Port = closedPort(t)
	if err := f.st.UpdateMailbox(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	if p := c.get(result); !strings.Contains(p.body, "Connection test: passed") {
		t.Errorf("reloading the result ran the test again (now on a closed port): steps %q", reportSteps(p.body))
	}
	// Another session does not see this one's report, and a plain visit shows none.
	if p := f.signIn(t, "admin").get(result); strings.Contains(p.body, "Connection test:") || !strings.Contains(p.body, "expired") {
		t.Errorf("another session sees the report, or is not told that there is none:\n%s", p.body)
	}
	if p := c.get(fmt.Sprintf("/mailboxes?selected=%d", m.ID)); strings.Contains(p.body, "Connection test:") {
		t.Errorf("the report shows on a plain visit of the mailbox")
	}
	if err := f.st.UpdateMailbox(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// The edit form's test with an empty password uses the stored one, on the server it
	// was entered for; on another port it is not sent: the form asks for it again.
	form.Set("password", "")
	form.Set("source", "form")
	form.Set("folder", "Archive")
	p = c.post(fmt.Sprintf("/mailboxes/%d/test", m.ID), form)
	if steps = reportSteps(p.body); !strings.Contains(p.body, "Connection test:") || len(steps) == 0 {
		t.Errorf("edit form test with the stored password: steps %q, want a report", steps)
	}
	if strings.Contains(p.body, `id="retype-password"`) {
		t.Error("the form asks to type the password again although the stored one was used")
	}
	form.Set("port", fmt.Sprint(closedPort(t)))
	p = c.post(fmt.Sprintf("/mailboxes/%d/test", m.ID), form)
	if p.status != http.StatusBadRequest || strings.Contains(p.body, "Connection test:") || !strings.Contains(fieldError(p.body, "password"), "you changed the port: enter the password again") {
		t.Errorf("edit form test on another port without the password: %d, password error %q, want 400 asking for it again and no test", p.status, fieldError(p.body, "password"))
	}
}
