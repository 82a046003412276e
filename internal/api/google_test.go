package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/googletest"
)

// TestGoogleMailboxJSON: a Gmail API mailbox of provider google is created with its
// service account key as client_secret: Gmail's API host, INBOX, mark_read and the key's
// client id are filled in, the key is never returned; a file that is not a service
// account key is a 400 naming the field and what to paste.
func TestGoogleMailboxJSON(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	body := func(key string) string {
		b, _ := json.Marshal(map[string]any{"name": "google_desk", "direction": "inbound", "protocol": "gmail",
			"address": "support@acme.test", "auth": "oauth_app", "oauth": map[string]any{"provider": "google"}, "client_secret": key})
		return string(b)
	}
	resp := c.postJSON("/api/v1/mailboxes", body(`{"type":"authorized_user","client_id":"x"}`))
	if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "service account") {
		t.Errorf("a user credential file: %d %s", resp.status, resp.body)
	}
	resp = c.postJSON("/api/v1/mailboxes", body(string(sa.KeyJSON())))
	want(t, "create the Gmail mailbox", resp, http.StatusCreated)
	v := mailboxView(t, resp)
	if v.Protocol != "gmail" || v.Host != "gmail.googleapis.com" || v.Port != 443 || v.Folder != "INBOX" ||
		v.AfterAction != "mark_read" || v.OAuth.Provider != "google" || v.OAuth.ClientID != sa.ClientID || !v.ClientSecretSet {
		t.Errorf("Gmail mailbox %+v", v)
	}
	if strings.Contains(string(resp.body), sa.KeyID) || strings.Contains(string(resp.body), "PRIVATE KEY") {
		t.Error("the key is in the answer")
	}
}
