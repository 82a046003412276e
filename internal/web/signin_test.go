package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
)

// secondNode is another postroom node on the fixture's store (and vault key): its own
// pages handler, sessions service and mailbox service, nothing shared in memory with the
// fixture's. It stands for a second node behind a load balancer, or for the first node
// after a restart. Its public URL is the fixture's, as every node behind one balancer has
// the same, so that its sign-ins come back to the redirect URI registered.
func secondNode(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	h, err := New(Options{
		Store: f.st, Auth: auth.NewService(f.st, nil), Mailboxes: mailbox.NewService(f.st, f.passwords, log), ProductVersion: "test",
		PublicURL: f.srv.URL,
		SignIn:    credential.NewSignIn(f.passwords.Secrets(), credential.TokensOptions{Logger: log}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// on is c (its cookies: the same browser session) talking to another node.
func (c *browserless) on(srv *httptest.Server) *browserless {
	return &browserless{t: c.t, base: srv.URL, hc: c.hc}
}

// TestSignInFinishesOnAnotherNode: a sign-in started on one node is finished by the
// callback reaching another node (several nodes on one database, no sticky sessions, or a
// restart in between); its answer is then refused on both nodes.
func TestSignInFinishesOnAnotherNode(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	ctx := context.Background()
	a := f.signIn(t, "admin")
	b := a.on(secondNode(t, f))

	callback := msAuthorize(t, s.startSignIn(t, a), s.sample.Agent, s.sample.AgentPassword, "")
	resp := b.get(callback)
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != (listView{Selected: s.m.ID}).URL("signed-in") {
		t.Fatalf("callback on the second node: %d to %q\n%s", resp.status, resp.header.Get("Location"), resp.body)
	}
	if page := b.get(resp.header.Get("Location")); !strings.Contains(page.body, "Signed in as "+s.sample.Agent+".") {
		t.Errorf("the second node's mailbox page does not say who signed in:\n%s", page.body)
	}
	if stored, err := f.passwords.Secrets().Get(ctx, s.m.ID, store.SecretRefreshToken); err != nil || stored.Reveal() == "" {
		t.Fatalf("no refresh token stored (%v)", err)
	}
	for name, c := range map[string]*browserless{"first": a, "second": b} {
		if resp := c.get(callback); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "This sign-in cannot be finished") {
			t.Errorf("the used answer again on the %s node: %d, want the page saying it cannot be finished", name, resp.status)
		}
	}

	// Started on the second node, finished on the first.
	callback = msAuthorize(t, s.startSignIn(t, b), s.sample.Agent, s.sample.AgentPassword, "")
	if resp := a.get(callback); resp.status != http.StatusSeeOther {
		t.Errorf("sign-in started on the second node, callback on the first: %d\n%s", resp.status, resp.body)
	}
}

// TestSignInCallbackOnTwoNodesAtOnce: the same answer reaching two nodes at the same
// moment (a double click, a retrying proxy) finishes the sign-in once; the other request
// gets the page saying it cannot be finished.
func TestSignInCallbackOnTwoNodesAtOnce(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	a := f.signIn(t, "admin")
	b := a.on(secondNode(t, f))
	for round := range 3 {
		callback := msAuthorize(t, s.startSignIn(t, a), s.sample.Agent, s.sample.AgentPassword, "")
		statuses := make([]int, 2)
		bodies := make([]string, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range []*browserless{a, b} {
			wg.Go(func() {
				<-start
				resp, err := c.hc.Get(c.base + callback)
				if err != nil {
					t.Errorf("round %d: GET on node %d: %v", round, i, err)
					return
				}
				defer resp.Body.Close()
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				statuses[i], bodies[i] = resp.StatusCode, buf.String()
			})
		}
		close(start)
		wg.Wait()
		finished, refused := 0, 0
		for i := range statuses {
			switch {
			case statuses[i] == http.StatusSeeOther:
				finished++
			case statuses[i] == http.StatusBadRequest && strings.Contains(bodies[i], "This sign-in cannot be finished"):
				refused++
			}
		}
		if finished != 1 || refused != 1 {
			t.Errorf("round %d: answers %v, want one sign-in finished (303) and one refused (400)", round, statuses)
		}
	}
}

// TestSignInKeptSealed: what the button keeps in the store is the sign-in of this
// mailbox, with the verifier of the URL's challenge sealed by the vault, never in clear;
// a state taken from the store (by another node) cannot be finished here.
func TestSignInKeptSealed(t *testing.T) {
	f := newFixture(t)
	s := newSignInSetup(t, f)
	c := f.signIn(t, "admin")
	before := time.Now()
	authURL := s.startSignIn(t, c)
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	p, err := f.st.TakePendingSignIn(context.Background(), q.Get("state"), time.Now())
	if err != nil {
		t.Fatalf("the sign-in started is not in the store: %v", err)
	}
	if p.MailboxID != s.m.ID || p.RedirectURI != f.srv.URL+callbackPath || p.SessionHash == "" {
		t.Errorf("kept sign-in = mailbox %d, redirect URI %q, session %q; want mailbox %d, %s and the admin's session",
			p.MailboxID, p.RedirectURI, p.SessionHash, s.m.ID, f.srv.URL+callbackPath)
	}
	if exp := p.ExpiresAt.Sub(before); exp < credential.SignInLifetime-time.Minute || exp > credential.SignInLifetime+time.Minute {
		t.Errorf("kept sign-in expires %v after the button, want about %v", exp, credential.SignInLifetime)
	}
	si := credential.NewSignIn(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	verifier, err := si.OpenVerifier(p.Verifier)
	if err != nil {
		t.Fatalf("the kept verifier does not open with the vault: %v", err)
	}
	if oauth2.S256ChallengeFromVerifier(verifier.Reveal()) != q.Get("code_challenge") {
		t.Error("the kept verifier is not the one of the URL's code_challenge")
	}
	if bytes.Contains(p.Verifier, []byte(verifier.Reveal())) {
		t.Error("the verifier is kept in clear")
	}

	callback := msAuthorize(t, authURL, s.sample.Agent, s.sample.AgentPassword, "")
	if resp := c.get(callback); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "This sign-in cannot be finished") {
		t.Errorf("callback of a sign-in taken meanwhile: %d, want the page saying it cannot be finished", resp.status)
	}
	if m, _ := f.st.Mailbox(context.Background(), s.m.ID); m.RefreshTokenSet {
		t.Error("a refused callback stored a sign-in")
	}
}
