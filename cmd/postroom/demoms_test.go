package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDemoShowsMicrosoftSecret: the demo tells a newcomer the client secret of its local
// Microsoft 365 stand-in (in its start-up text and, for administrators, on the Mailboxes
// page), and that secret signs in at the stand-in, so that a Graph mailbox can be added
// or Migrate to OAuth 2.0 tried against it.
func TestDemoShowsMicrosoftSecret(t *testing.T) {
	d := startDemo(t)
	m := regexp.MustCompile(`Another authority URL" (\S+), client secret (\S+)`).FindStringSubmatch(d.banner)
	tenant := regexp.MustCompile(`tenant (\S+), app \(client\) id (\S+),`).FindStringSubmatch(d.banner)
	if m == nil || tenant == nil {
		t.Fatalf("the demo's start-up text does not give the stand-in's authority URL, tenant, client id and client secret:\n%s", d.banner)
	}
	login, secret, tenantID, clientID := m[1], m[2], tenant[1], tenant[2]

	// The secret shown is the one the stand-in takes.
	resp, err := http.PostForm(login+"/"+tenantID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://graph.microsoft.com/.default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Errorf("sign-in at the stand-in with the secret shown: %d %s", resp.StatusCode, body)
	}

	page := func(user string) (int, string) {
		c := apiSignIn(t, d.web, user, "demo")
		resp, err := c.Get(d.web + "/mailboxes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, html := page("admin")
	for _, want := range []string{`id="demo-microsoft"`, ">" + secret + "<", ">" + clientID + "<", ">" + tenantID + "<", ">" + login + "<"} {
		if status != http.StatusOK || !strings.Contains(html, want) {
			t.Errorf("the admin's Mailboxes page lacks %s (%d)", want, status)
		}
	}
	if status, html := page("supervisor"); status != http.StatusOK || strings.Contains(html, secret) {
		t.Errorf("a supervisor's Mailboxes page (%d) shows the stand-in's client secret", status)
	}
}
