package web

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/vault"
)

const testPassword = "pw-for-tests-1"

// fixture is the pages on an httptest server over the real SQLite store, seeded with the
// work items of testdata/*.eml and users admin, sam (supervisor) and ana (agent).
type fixture struct {
	st   store.Store
	auth *auth.Service
	mbox *mailbox.Service
	// passwords reads the mailbox passwords the pages stored.
	passwords *credential.Passwords
	// inbound and outbound are the seeded mailboxes "support" and "support-out".
	inbound, outbound store.Mailbox
	srv               *httptest.Server
	items             map[string]store.IngestResult
	raw               map[string][]byte
	// routes is the handler's route table.
	routes []pageRoute
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	f := &fixture{st: st, auth: auth.NewService(st, nil), items: map[string]store.IngestResult{}, raw: map[string][]byte{}}
	for _, u := range []struct{ name, display, role string }{
		{"admin", "Ada Admin", store.RoleAdmin}, {"sam", "Sam Supervisor", store.RoleSupervisor}, {"ana", "Ana Agent", store.RoleAgent},
	} {
		if _, err := f.auth.EnsureUser(ctx, u.name, u.display, u.role, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	f.passwords = credential.NewPasswords(st, v)
	f.mbox = mailbox.NewService(st, f.passwords, slog.New(slog.DiscardHandler))
	defaultQueue, err := st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.CreateMailbox(ctx, store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "imap", Address: "support@example.com",
		Host: "imap.example.com", Port: 993, Security: "tls", Login: "support", Folder: "INBOX", MaxSizeMB: 10,
		PollInterval: time.Minute, Enabled: true, QueueID: defaultQueue.ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetMailboxStatus(ctx, in.ID, store.MailboxStatus{Status: store.StatusError, Message: "login refused: check the password", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	out, err := st.CreateMailbox(ctx, store.Mailbox{
		Name: "support-out", Direction: store.Outbound, Protocol: "smtp", Address: "support@example.com",
		Host: "smtp.example.com", Port: 587, Security: "starttls", Login: "support", IsDefault: true, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.inbound, f.outbound = in, out
	for i, name := range []string{"plain.eml", "html.eml", "broken.eml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		m := message.Parse(raw)
		m.MailboxID = in.ID
		m.Direction = store.Inbound
		m.SourceID = fmt.Sprintf("imap:1:%d", i+1)
		res, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: in.ID, Raw: raw, Message: m})
		if err != nil {
			t.Fatalf("ingest %s: %v", name, err)
		}
		f.items[name] = res
		f.raw[name] = raw
	}
	hd, h, err := build(Options{
		Store: st, Auth: f.auth, Replier: outbound.NewService(st, slog.New(slog.DiscardHandler)),
		Mailboxes: f.mbox, ProductVersion: "test",
		SignIn: credential.NewSignIn(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.routes = hd.routes.routes
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// browserless is a plain HTTP client with cookies that does not follow redirects.
type browserless struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (f *fixture) httpClient(t *testing.T) *browserless {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{t: t, base: f.srv.URL, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type webPage struct {
	status int
	header http.Header
	body   string
}

func (c *browserless) get(path string) webPage {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return readPage(c.t, resp)
}

func (c *browserless) post(path string, form url.Values) webPage {
	c.t.Helper()
	resp, err := c.hc.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return readPage(c.t, resp)
}

func readPage(t *testing.T, resp *http.Response) webPage {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return webPage{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the first form on the page.
func (p webPage) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field on the page:\n%s", p.body)
	}
	return m[1]
}

// signIn signs in through the form and returns the client.
func (f *fixture) signIn(t *testing.T, user string) *browserless {
	t.Helper()
	c := f.httpClient(t)
	login := c.get("/login")
	resp := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {user}, "password": {testPassword}})
	if resp.status != http.StatusSeeOther || (resp.header.Get("Location") != "/" && !strings.HasPrefix(resp.header.Get("Location"), "/workitems")) {
		t.Fatalf("sign in as %s: %d %s\n%s", user, resp.status, resp.header.Get("Location"), resp.body)
	}
	return c
}

// sampleTenant starts the Microsoft 365 stand-in with its sample tenant and no mail,
// closed with the test; redirectURI ("" for none) is registered on the sample app for
// "Sign in with Microsoft".
func sampleTenant(t *testing.T, redirectURI string) (*mstest.Server, *mstest.Sample) {
	t.Helper()
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	sample, err := ms.SampleTenant(mstest.SampleOptions{RedirectURI: redirectURI, Messages: -1})
	if err != nil {
		t.Fatal(err)
	}
	return ms, sample
}
