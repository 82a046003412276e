package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestSecretCanaryScan puts one canary of every kind of secret into a running postroom
// (an IMAP password that Dovecot refuses, a Graph client secret that Microsoft's stand-in
// accepts, the single sign-on client secret, an API token, the admin's password and session),
// uses the product (ingest, a failing login, the connection tests), then reads every page a
// signed-in admin can reach by following links, every GET endpoint of the API, the whole
// log at debug level and the database files, and fails on any canary found where it must
// not be.
func TestSecretCanaryScan(t *testing.T) {
	const (
		imapCanary  = "canary-imap-Xq7vT2pL9w"
		ssoCanary   = "canary-sso-Rk4mN8zH3s"
		adminPass   = "canary-admin-Pw5yB6cJ1d"
		wrongCanary = "canary-wrong-Fh2gD9kA4e"
	)
	ms, sample := startMS(t, mstest.SampleOptions{})
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "support@example.test", "another-password-entirely")

	dir := t.TempDir()
	var logs testenv.LogBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{
		DataDir: dir, PublicURL: base,
		Getenv:  func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RootCAs: certPool(t, d.CertPEM), IngestReload: 100 * time.Millisecond,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	wait := a.Start(ctx)
	served := make(chan struct{})
	go func() { defer close(served); _ = a.Serve(ctx, ln) }()
	defer func() { cancel(); wait(); <-served; a.Close() }()

	if _, err := a.Auth.EnsureUser(ctx, "boss", "Boss", store.RoleAdmin, adminPass); err != nil {
		t.Fatal(err)
	}
	// A wrong password typed into the sign-in form is a secret too (often a near miss).
	if st, _ := newClient(base).call(t, "POST", "/api/v1/session", map[string]string{"user": "boss", "password": wrongCanary}); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	admin := newClient(base)
	if st, b := admin.call(t, "POST", "/api/v1/session", map[string]string{"user": "boss", "password": adminPass}); st != http.StatusOK {
		t.Fatalf("sign in: %d %s", st, b)
	}
	host, port := hostPort(t, d.IMAPSAddr)
	st, b := admin.call(t, "POST", "/api/v1/mailboxes", map[string]any{
		"name": "support", "direction": "inbound", "protocol": "imap", "address": "support@example.test",
		"host": host, "port": port, "security": "tls", "login": "support@example.test", "password": imapCanary,
	})
	if st != http.StatusCreated {
		t.Fatalf("create IMAP mailbox: %d %s", st, b)
	}
	imapID := idOf(t, b)
	st, b = admin.call(t, "POST", "/api/v1/mailboxes", map[string]any{
		"name": "contoso", "direction": "inbound", "protocol": "graph", "address": sample.Mailbox,
		"auth": "oauth_app", "graph_url": ms.GraphURL(), "client_secret": sample.ClientSecret,
		"oauth":                 map[string]any{"cloud": "custom", "authority_url": ms.LoginURL(), "tenant": sample.TenantID, "client_id": sample.ClientID},
		"poll_interval_seconds": 10,
	})
	if st != http.StatusCreated {
		t.Fatalf("create Graph mailbox: %d %s", st, b)
	}
	graphID := idOf(t, b)
	for _, id := range []int64{imapID, graphID} {
		if st, b := admin.call(t, "POST", fmt.Sprintf("/api/v1/mailboxes/%d/enable", id), nil); st/100 != 2 {
			t.Fatalf("enable mailbox %d: %d %s", id, st, b)
		}
		admin.call(t, "POST", fmt.Sprintf("/api/v1/mailboxes/%d/test", id), nil)
	}
	if st, b := admin.call(t, "PUT", "/api/v1/sso", map[string]any{
		"issuer": ms.OpenIDIssuer(sample.TenantID), "client_id": sample.ClientID, "client_secret": ssoCanary,
	}); st != http.StatusOK {
		t.Fatalf("single sign-on settings: %d %s", st, b)
	}
	st, b = admin.call(t, "POST", "/api/v1/tokens", map[string]any{"name": "report", "scopes": []string{"read"}})
	if st != http.StatusCreated {
		t.Fatalf("create token: %d %s", st, b)
	}
	var tok struct{ Token string }
	_ = json.Unmarshal(b, &tok)
	waitFor(t, "the Graph mailbox's messages and the IMAP login failure", func() (bool, string) {
		n, _ := a.Store.CountMessages(ctx, graphID)
		mb, _ := a.Store.Mailbox(ctx, imapID)
		return n == len(sample.MessageIDs) && mb.Status == store.StatusError, fmt.Sprintf("%d messages, IMAP %s", n, mb.Status)
	})
	session := admin.cookie(t, base)

	// Everything an admin can read.
	answers := admin.crawl(t, base, "/", 400)
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	_, b = admin.call(t, "GET", "/api/v1/openapi.json", nil)
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	apiReads := 0
	for path, ops := range spec.Paths {
		if _, ok := ops["get"]; !ok {
			continue
		}
		for _, id := range []string{"1", "2", fmt.Sprint(graphID)} {
			p := param.ReplaceAllString(path, id)
			_, body := admin.call(t, "GET", p, nil)
			answers[p] = body
			apiReads++
		}
	}
	t.Logf("scanned %d answers (%d API reads), %d bytes of log", len(answers), apiReads, len(logs.String()))
	if len(answers) < 60 || apiReads < 100 {
		t.Fatalf("read %d answers (%d API reads): the scan would prove little", len(answers), apiReads)
	}
	canaries := map[string]string{
		"IMAP password": imapCanary, "Graph client secret": sample.ClientSecret, "single sign-on client secret": ssoCanary,
		"admin password": adminPass, "wrong password": wrongCanary, "API token": tok.Token, "session token": session,
	}
	for where, body := range answers {
		for what, c := range canaries {
			if bytes.Contains(body, []byte(c)) {
				t.Errorf("%s shows the %s", where, what)
			}
		}
	}
	for what, c := range canaries {
		if strings.Contains(logs.String(), c) {
			t.Errorf("the log holds the %s", what)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "postroom.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		for what, c := range canaries {
			if bytes.Contains(raw, []byte(c)) {
				t.Errorf("%s holds the %s in plain text", filepath.Base(f), what)
			}
		}
	}
	// The scan saw the product working: the failing mailbox's advice is on its page and
	// in the log, so the secrets were in use when they were looked for.
	if !strings.Contains(logs.String(), "check the login name and password") {
		t.Error("the log does not carry the advice for the failing IMAP mailbox")
	}
}

// scanClient is a signed-in browser-like client that records every answer.
type scanClient struct {
	hc   *http.Client
	base string
}

func newClient(base string) *scanClient {
	jar, _ := cookiejar.New(nil)
	return &scanClient{base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *scanClient) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// cookie returns the session cookie's value.
func (c *scanClient) cookie(t *testing.T, base string) string {
	u, _ := url.Parse(base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "postroom_session" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

var hrefRe = regexp.MustCompile(`(?:href|src|action)="(/[^"#]*)"`)

// crawl follows the same-site links of the pages from start (GETs only, never a stream),
// up to limit pages, and returns every answer by path.
func (c *scanClient) crawl(t *testing.T, base, start string, limit int) map[string][]byte {
	t.Helper()
	seen := map[string][]byte{}
	queue := []string{start}
	for len(queue) > 0 && len(seen) < limit {
		p := queue[0]
		queue = queue[1:]
		if _, ok := seen[p]; ok || strings.HasSuffix(strings.SplitN(p, "?", 2)[0], "/events") {
			continue
		}
		req, _ := http.NewRequest("GET", base+p, nil)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[p] = b
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			continue
		}
		for _, m := range hrefRe.FindAllSubmatch(b, -1) {
			link := strings.ReplaceAll(string(m[1]), "&amp;", "&")
			if strings.HasPrefix(link, "//") || strings.HasPrefix(link, "/logout") {
				continue
			}
			if _, ok := seen[link]; !ok {
				queue = append(queue, link)
			}
		}
	}
	return seen
}

// idOf reads the "id" of a JSON object.
func idOf(t *testing.T, b []byte) int64 {
	t.Helper()
	var v struct{ ID int64 }
	if err := json.Unmarshal(b, &v); err != nil || v.ID == 0 {
		t.Fatalf("no id in %s", b)
	}
	return v.ID
}
