package gmail_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2/jwt"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/gmail"
	"github.com/postroom/postroom/internal/googletest"
)

const user = "support@acme.test"

func setup(t *testing.T) (*googletest.Server, connector.TokenFunc) {
	t.Helper()
	g, err := googletest.Start(googletest.Options{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	sa.Delegate(googletest.ScopeMail)
	cfg := keyConfig(t, sa)
	ts := cfg.TokenSource(context.Background())
	return g, func(ctx context.Context, refresh bool) (string, error) {
		tok, err := ts.Token()
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
}

func keyConfig(t *testing.T, sa *googletest.ServiceAccount) *jwt.Config {
	t.Helper()
	pk := sa.PrivateKeyPEM()
	return &jwt.Config{Email: sa.Email, PrivateKey: pk, Subject: user, Scopes: []string{googletest.ScopeMail}, TokenURL: sa.TokenURL()}
}

type store struct {
	ids    map[string]int
	cursor string
}

// drain reads the source as the ingest pipeline does: a batch is "stored" (and the cursor
// of its last message saved) before the next Next; then acknowledged.
func drain(t *testing.T, src *gmail.Source, st *store) {
	t.Helper()
	for range 100 {
		got, err := src.Next(context.Background(), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return
		}
		var ack []string
		for _, in := range got {
			st.ids[in.SourceID]++
			if in.Cursor != "" {
				st.cursor = in.Cursor
			}
			ack = append(ack, in.SourceID)
		}
		if err := src.Ack(context.Background(), ack); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the source never ran dry")
}

// TestSourceRoundsAndResync: the first sync takes the unread mail of INBOX, later rounds
// follow history from the saved historyId (across pages), a too-old historyId reads the
// label again without storing anything twice, a 429 is waited out, and mark_read
// removes UNREAD.
func TestSourceRoundsAndResync(t *testing.T) {
	g, token := setup(t)
	ctx := context.Background()
	for i := range 4 {
		if _, err := g.Deliver(user, []byte(fmt.Sprintf("Subject: old %d\r\n\r\nbody\r\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	st := &store{ids: map[string]int{}}
	open := func() *gmail.Source {
		src, err := gmail.Open(ctx, gmail.Config{BaseURL: g.GmailURL(), Mailbox: user, Cursor: st.cursor, Token: token, PageSize: 3,
			Skip:       func(id string) bool { return st.ids[id] > 0 },
			SaveCursor: func(_ context.Context, c string) error { st.cursor = c; return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := open()
	drain(t, src, st)
	if len(st.ids) != 4 || st.cursor == "" {
		t.Fatalf("first sync stored %d, cursor %q", len(st.ids), st.cursor)
	}
	for _, m := range g.Messages(user) {
		if slices.Contains(m.Labels, "UNREAD") {
			t.Errorf("message %s still unread after ack", m.ID)
		}
	}
	for i := range 5 {
		_, _ = g.Deliver(user, []byte(fmt.Sprintf("Subject: new %d\r\n\r\nbody\r\n", i)))
	}
	g.RateLimitNext(1)
	src = open() // a new session from the saved cursor
	drain(t, src, st)
	if len(st.ids) != 9 {
		t.Fatalf("after history: %d stored", len(st.ids))
	}
	// Gmail forgets the history; the unread messages that arrive meanwhile are still found.
	_, _ = g.Deliver(user, []byte("Subject: during\r\n\r\nbody\r\n"))
	g.ExpireHistory(user)
	src = open()
	drain(t, src, st)
	if len(st.ids) != 10 {
		t.Fatalf("after resync: %d stored", len(st.ids))
	}
	for id, n := range st.ids {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	raw := g.Messages(user)[9].Raw
	if !strings.Contains(string(raw), "Subject: during") {
		t.Errorf("raw %q", raw)
	}
}

// TestSinkAndErrors: send keeps the raw message, once even after a 429; a suspended
// user's error says so.
func TestSinkAndErrors(t *testing.T) {
	g, token := setup(t)
	sink, err := gmail.NewSink(gmail.Config{BaseURL: g.GmailURL(), Mailbox: user, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	g.RateLimitNext(1) // a 429 was not carried out: the send is repeated, once
	raw := "From: support@acme.test\r\nTo: c@example.test\r\nSubject: Re: help\r\nIn-Reply-To: <a@b>\r\n\r\nhello\r\n"
	if err := sink.Send(context.Background(), user, []string{"c@example.test"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if sent := g.Sent(user); len(sent) != 1 || string(sent[0]) != raw {
		t.Fatalf("sent %q", sent)
	}
	g.SetUser(user, googletest.UserConfig{Suspended: true})
	_, err = gmail.Open(context.Background(), gmail.Config{BaseURL: g.GmailURL(), Mailbox: user, Token: token})
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != connector.KindAuth || !strings.Contains(ce.Advice, "suspended") {
		t.Errorf("suspended user: %v", err)
	}
}
