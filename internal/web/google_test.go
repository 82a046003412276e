package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// TestMailboxFormGoogle: the form offers Google Workspace and the Gmail API with the
// walk-through (service account, domain-wide delegation with the scope, IMAP for the
// organisation); a Google IMAP mailbox created with a pasted key file gets Gmail's host and
// the key file's client id, which the edit form's walk-through then names; the key is
// never put in a page.
func TestMailboxFormGoogle(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	key := string(sa.KeyJSON())
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	form := c.get("/mailboxes/new?direction=inbound")
	for _, want := range []string{`value="google"`, `value="gmail"`, `id="google-walkthrough"`, `id="google-delegation"`,
		"Manage Domain Wide Delegation", "https://mail.google.com/", "Enable IMAP access for all users"} {
		if !strings.Contains(form.body, want) {
			t.Errorf("the new mailbox form lacks %s", want)
		}
	}
	values := url.Values{
		"csrf": {form.csrf(t)}, "direction": {store.Inbound}, "name": {"google_desk"}, "protocol": {mailbox.IMAP},
		"address": {"support@acme.test"}, "max_size_mb": {"5"}, "poll_interval_seconds": {"60"},
		"auth": {store.AuthOAuthApp}, "oauth_provider": {credential.ProviderGoogle}, "client_secret": {key},
	}
	resp := c.post("/mailboxes", values)
	if resp.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", resp.status, resp.body)
	}
	m, err := f.st.MailboxByName(ctx, "google_desk")
	if err != nil {
		t.Fatal(err)
	}
	if m.Host != credential.GoogleIMAPHost || m.Port != 993 || m.OAuth.ClientID != sa.ClientID || !m.ClientSecretSet {
		t.Fatalf("stored %+v", m)
	}
	edit := c.get("/mailboxes/" + itoa(m.ID) + "/edit")
	if !strings.Contains(html.UnescapeString(edit.body), "Client ID: "+sa.ClientID) {
		t.Error("the edit form's walk-through does not name the service account's client id")
	}
	detail := c.get("/mailboxes?selected=" + itoa(m.ID))
	if !strings.Contains(detail.body, "Google service account with domain-wide delegation") || !strings.Contains(detail.body, "Google Workspace") {
		t.Error("the detail pane does not say the mailbox signs in as a Google service account")
	}
	for name, p := range map[string]webPage{"form": form, "edit": edit, "detail": detail} {
		if strings.Contains(p.body, string(sa.PrivateKeyPEM()[40:80])) || strings.Contains(p.body, sa.KeyID) {
			t.Errorf("the %s page shows the key", name)
		}
	}
	// A key file that is not one is refused with advice, not stored.
	bad := c.get("/mailboxes/new?direction=inbound")
	values.Set("csrf", bad.csrf(t))
	values.Set("name", "google_bad")
	values.Set("client_secret", `{"type":"authorized_user"}`)
	resp = c.post("/mailboxes", values)
	if resp.status != http.StatusUnprocessableEntity && resp.status != http.StatusBadRequest {
		t.Errorf("a user credential file as the key: %d", resp.status)
	}
	if !strings.Contains(resp.body, "service account") {
		t.Error("the refusal does not explain what key file to paste")
	}
}
