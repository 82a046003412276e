package main

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDemoSingleSignOn: the demo's sample person signs in with "Sign in with Microsoft"
// through the local stand-in and is a supervisor, from her group.
func TestDemoSingleSignOn(t *testing.T) {
	d := startDemo(t)
	m := regexp.MustCompile(`(?m)^\s+(\S+@\S+) / (\S+)\s+\(group Supervisors: supervisor`).FindStringSubmatch(d.banner)
	if m == nil {
		t.Fatalf("the demo's start-up text does not name the single sign-on person:\n%s", d.banner)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(resp *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	_, login := read(c.Get(d.web + "/login"))
	if !strings.Contains(login, "Sign in with Microsoft") {
		t.Fatalf("no single sign-on button on the sign-in page:\n%s", login)
	}
	resp, _ := read(c.Get(d.web + "/login/sso"))
	authorize := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || authorize == "" {
		t.Fatalf("the button: %d %q", resp.StatusCode, authorize)
	}
	_, page := read(c.Get(authorize))
	flow := regexp.MustCompile(`name="flow" value="([^"]+)"`).FindStringSubmatch(page)
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)
	if flow == nil || action == nil {
		t.Fatalf("the stand-in's sign-in page:\n%s", page)
	}
	au, _ := url.Parse(authorize)
	resp, page = read(c.PostForm(au.Scheme+"://"+au.Host+html.UnescapeString(action[1]),
		url.Values{"flow": {flow[1]}, "step": {"signin"}, "loginfmt": {m[1]}, "passwd": {m[2]}}))
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, d.web+"/sso/callback?") {
		t.Fatalf("the stand-in sent the browser to %q (%d)\n%s", callback, resp.StatusCode, page)
	}
	resp, page = read(c.Get(callback))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d\n%s", resp.StatusCode, page)
	}
	_, me := read(c.Get(d.web + "/api/v1/me"))
	var who struct {
		User struct{ Username, Role string } `json:"user"`
	}
	if err := json.Unmarshal([]byte(me), &who); err != nil || who.User.Username != m[1] || who.User.Role != "supervisor" {
		t.Errorf("signed in as %s", me)
	}
}
