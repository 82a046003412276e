package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestDeltaSyncAcrossPagesThenNewMail: 23 messages over pages of 5 arrive once each,
// byte for byte, with the cursor only on the last message of the round; then new mail is
// the only thing the next round brings, and a Source opened from the saved cursor brings
// nothing old.
func TestDeltaSyncAcrossPagesThenNewMail(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	want := e.deliver(t, "inbox", 0, 23)
	cfg := e.config()
	cfg.PageSize = 5
	// Nothing changes at the source, so a restart that ignored the cursor would hand
	// everything out again.
	cfg.AfterAction = store.AfterKeep
	src := e.open(t, cfg)
	in := newIngest()
	if n := in.drain(t, src, 7); n != 23 {
		t.Fatalf("first round handed out %d messages, want 23", n)
	}
	got := in.byMessageID()
	for id, raw := range want {
		if !bytes.Equal(got[id], raw) {
			t.Errorf("message %s: got %q, want the delivered bytes %q", id, got[id], raw)
		}
	}
	if in.cursors != 1 || in.dups != 0 {
		t.Fatalf("%d messages carried a cursor and %d came twice, want 1 and 0", in.cursors, in.dups)
	}
	if _, _, link, ok := graph.ParseCursor(in.cursor); !ok || !strings.Contains(link, "deltatoken") {
		t.Fatalf("cursor %q is not a delta position", in.cursor)
	}

	more := e.deliver(t, "inbox", 100, 2)
	if n := in.drain(t, src, 7); n != 2 {
		t.Fatalf("second round handed out %d messages, want the 2 new ones", n)
	}
	for id := range more {
		if in.byMessageID()[id] == nil {
			t.Errorf("new message %s not handed out", id)
		}
	}
	if in.cursors != 2 {
		t.Fatalf("%d cursors after two rounds, want 2", in.cursors)
	}

	// A restart from the saved cursor sees only what came after it.
	cfg.Cursor = in.cursor
	again := e.open(t, cfg)
	if n := in.drain(t, again, 10); n != 0 {
		t.Fatalf("a Source opened at the saved cursor handed out %d old messages", n)
	}
	e.deliver(t, "inbox", 200, 1)
	if n := in.drain(t, again, 10); n != 1 || in.dups != 0 {
		t.Fatalf("after a restart: %d handed out (want 1), %d duplicates", n, in.dups)
	}
}

// TestCrashBetweenPagesLosesNothing: the cursor is saved only with the last message of a
// round, so a crash after storing part of a round starts the round again from the old
// position: everything comes again and dedup recognises what was stored.
func TestCrashBetweenPagesLosesNothing(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	want := e.deliver(t, "inbox", 0, 12)
	cfg := e.config()
	cfg.PageSize = 4
	cfg.AfterAction = store.AfterKeep // nothing changes at the source: the hardest case
	in := newIngest()

	first := e.open(t, cfg)
	msgs, err := first.Next(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	in.store(msgs)
	if in.cursor != "" {
		t.Fatalf("a cursor was handed out in the middle of a round: %q", in.cursor)
	}
	// Crash: the Source is gone; a new one starts from the stored cursor (none yet).
	cfg.Cursor = in.cursor
	second := e.open(t, cfg)
	in.drain(t, second, 5)
	if len(in.stored) != len(want) || in.dups != 5 {
		t.Fatalf("stored %d of %d, %d recognised duplicates (want 5)", len(in.stored), len(want), in.dups)
	}
	for id := range want {
		if in.byMessageID()[id] == nil {
			t.Errorf("message %s lost", id)
		}
	}
}

// TestAckMarksReadWithoutLoop: mark_read PATCHes isRead, and our own change does not
// bring the message back in the next round.
func TestAckMarksReadWithoutLoop(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 3)
	src := e.open(t, e.config())
	in := newIngest()
	in.drain(t, src, 10)
	msgs, err := e.srv.Messages(e.sample.Mailbox, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !m.IsRead {
			t.Errorf("message %s not marked read after Ack", m.InternetMessageID)
		}
	}
	if n := in.drain(t, src, 10); n != 0 {
		t.Fatalf("%d messages came back after being marked read", n)
	}
}

// TestFirstSyncTakesUnreadOnly: like IMAP's first start, mail read before postroom came is
// left alone when the after action is mark_read.
func TestFirstSyncTakesUnreadOnly(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	id, err := e.srv.Deliver(e.sample.Mailbox, "inbox", customerMail(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetRead(e.sample.Mailbox, id, true); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "inbox", 2, 2)
	in := newIngest()
	in.drain(t, e.open(t, e.config()), 10)
	got := in.byMessageID()
	if len(got) != 2 || got[messageID(1)] != nil {
		t.Fatalf("first sync stored %d messages (read one included: %v), want the 2 unread", len(got), got[messageID(1)] != nil)
	}
}

// TestAckMovesToNewFolder: after action move creates the folder (a path below the inbox)
// and moves the messages there; their ids stay (immutable ids).
func TestAckMovesToNewFolder(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 3)
	cfg := e.config()
	cfg.AfterAction = store.AfterMove
	cfg.MoveFolder = "Inbox/Handled"
	in := newIngest()
	in.drain(t, e.open(t, cfg), 10)
	if len(in.stored) != 3 {
		t.Fatalf("stored %d, want 3", len(in.stored))
	}
	inbox, _ := e.srv.Messages(e.sample.Mailbox, "inbox")
	moved, err := e.srv.Messages(e.sample.Mailbox, "Inbox/Handled")
	if err != nil {
		t.Fatalf("folder Inbox/Handled: %v", err)
	}
	if len(inbox) != 0 || len(moved) != 3 {
		t.Fatalf("inbox holds %d, Inbox/Handled %d; want 0 and 3", len(inbox), len(moved))
	}
	for _, m := range moved {
		if _, ok := in.stored[graph.SourceID(m.ID)]; !ok {
			t.Errorf("moved message %s has an id we did not store (%s)", m.InternetMessageID, m.ID)
		}
	}
}

// TestAckDeletes: after action delete removes the messages from the folder.
func TestAckDeletes(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 2)
	cfg := e.config()
	cfg.AfterAction = store.AfterDelete
	in := newIngest()
	in.drain(t, e.open(t, cfg), 10)
	inbox, _ := e.srv.Messages(e.sample.Mailbox, "inbox")
	if len(in.stored) != 2 || len(inbox) != 0 {
		t.Fatalf("stored %d (want 2), %d left in the inbox (want 0)", len(in.stored), len(inbox))
	}
}

// TestOverSizeHeaderOnlyAndSetAside: a message over MaxSizeBytes comes with its header
// only and its real size, and SetAside moves it to a new folder Oversize, unread.
func TestOverSizeHeaderOnlyAndSetAside(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	big := append(customerMail(7), bytes.Repeat([]byte("0123456789abcdef\r\n"), 20_000)...)
	if _, err := e.srv.Deliver(e.sample.Mailbox, "inbox", big); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "inbox", 8, 1)
	cfg := e.config()
	cfg.MaxSizeBytes = 100_000
	src := e.open(t, cfg)
	msgs, err := src.Next(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	var over, small = msgs[0], msgs[1]
	if !over.OverSize {
		over, small = small, over
	}
	if !over.OverSize || small.OverSize {
		t.Fatalf("over-size flags: %v %v", msgs[0].OverSize, msgs[1].OverSize)
	}
	if over.Size != int64(len(big)) || headerValue(over.Raw, "Message-ID") != messageID(7) || bytes.Contains(over.Raw, []byte("0123456789")) {
		t.Fatalf("over-size message: size %d (want %d), raw %q", over.Size, len(big), over.Raw)
	}
	if err := src.SetAside(context.Background(), []string{over.SourceID}); err != nil {
		t.Fatal(err)
	}
	aside, err := e.srv.Messages(e.sample.Mailbox, graph.OversizeFolder)
	if err != nil || len(aside) != 1 || aside[0].IsRead || !bytes.Equal(aside[0].Raw, big) {
		t.Fatalf("Oversize folder: %d messages, err %v", len(aside), err)
	}
}

// TestFolderByNameAndPath: a folder is found by display name below the inbox and by path.
func TestFolderByNameAndPath(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	if _, err := e.srv.CreateFolder(e.sample.Mailbox, "Inbox/Support"); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "Inbox/Support", 0, 2)
	e.deliver(t, "inbox", 10, 1)
	for _, name := range []string{"Support", "Inbox/Support", "inbox/support"} {
		cfg := e.config()
		cfg.Folder = name
		cfg.AfterAction = store.AfterKeep
		in := newIngest()
		in.drain(t, e.open(t, cfg), 10)
		if len(in.stored) != 2 || in.byMessageID()[messageID(10)] != nil {
			t.Errorf("folder %q: stored %d messages, want the 2 of Inbox/Support", name, len(in.stored))
		}
	}
}

// TestAckInBatches: acknowledgements go in JSON batches of 20 (two requests for 30
// messages); a message a person deleted meanwhile counts as done and the others of its
// batch are still marked; a throttled member is sent again after Retry-After.
func TestAckInBatches(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 30)
	src := e.open(t, e.config())
	msgs, err := src.Next(context.Background(), 30)
	if err != nil || len(msgs) != 30 {
		t.Fatalf("next: %d messages, %v", len(msgs), err)
	}
	e.srv.ResetRequests()
	if err := src.Ack(context.Background(), sourceIDs(msgs)); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests(e.sample.ClientID); n != 2 {
		t.Fatalf("%d requests to acknowledge 30 messages, want 2 batches", n)
	}
	assertAllRead(t, e, 30)

	e.deliver(t, "inbox", 100, 5)
	msgs, err = src.Next(context.Background(), 10)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("next: %d messages, %v", len(msgs), err)
	}
	gone := strings.TrimPrefix(msgs[2].SourceID, "graph:")
	if err := e.srv.DeleteMessage(e.sample.Mailbox, gone); err != nil {
		t.Fatal(err)
	}
	e.srv.FailNext(mstest.Fault{Count: 1, Status: 429, RetryAfter: time.Second, PathContains: "/messages/"})
	e.srv.ResetRequests()
	if err := src.Ack(context.Background(), sourceIDs(msgs)); err != nil {
		t.Fatal(err)
	}
	// Throttled first member: the batch again; gone third member: the rest again.
	if n := e.srv.Requests(e.sample.ClientID); n != 3 {
		t.Fatalf("%d requests, want 3 batches", n)
	}
	assertAllRead(t, e, 34)
}

func sourceIDs(msgs []connector.Incoming) []string {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.SourceID)
	}
	return ids
}

func assertAllRead(t *testing.T, e *env, want int) {
	t.Helper()
	inbox, err := e.srv.Messages(e.sample.Mailbox, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, m := range inbox {
		if m.IsRead {
			read++
		}
	}
	if len(inbox) != want || read != want {
		t.Fatalf("inbox: %d messages, %d read; want %d, all read", len(inbox), read, want)
	}
}

// TestDelegatedSignInReadsAndSendsSharedMailbox: an agent's delegated sign-in (refresh
// token, rotated) with Mail.ReadWrite.Shared and Mail.Send.Shared, Full Access and Send As
// reads the shared mailbox and sends from it.
func TestDelegatedSignInReadsAndSendsSharedMailbox(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 2)
	form := url.Values{
		"grant_type": {"password"}, "client_id": {e.sample.ClientID}, "client_secret": {e.sample.ClientSecret},
		"username": {e.sample.Agent}, "password": {e.sample.AgentPassword},
		"scope": {"offline_access " + mstest.ScopeGraphMailReadWriteShared + " " + mstest.ScopeGraphMailSendShared},
	}
	resp, err := http.PostForm(e.srv.TokenURL(e.sample.TenantID), form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("ROPC sign-in: %d, %v", resp.StatusCode, err)
	}
	saved := 0
	cfg := e.config()
	cfg.Token = credential.RefreshToken(credential.OAuthConfig{
		TokenURL: e.srv.TokenURL(e.sample.TenantID), ClientID: e.sample.ClientID, ClientSecret: vault.NewSecret(e.sample.ClientSecret),
		Scopes: []string{"offline_access", mstest.ScopeGraphMailReadWriteShared, mstest.ScopeGraphMailSendShared}, Logger: e.log,
	}, vault.NewSecret(tok.RefreshToken), func(context.Context, vault.Secret) error { saved++; return nil })
	in := newIngest()
	in.drain(t, e.open(t, cfg), 10)
	if len(in.stored) != 2 {
		t.Fatalf("delegated read stored %d, want 2", len(in.stored))
	}
	assertAllRead(t, e, 2)
	sink, err := graph.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, reply("Content-Type: text/plain\r\n", "Hi\r\n")); err != nil {
		t.Fatal(err)
	}
	if sent := e.srv.Sent(e.sample.Mailbox); len(sent) != 1 {
		t.Fatalf("%d sent from the shared mailbox, want 1", len(sent))
	}
	if saved == 0 {
		t.Fatal("the rotated refresh token was never handed to save")
	}
}

// TestCursorOfAnotherHostIgnored: a saved position that points at another host (the Graph
// URL setting changed) is not followed, so the token never goes there; the folder is read
// from the start.
func TestCursorOfAnotherHostIgnored(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 2)
	cfg := e.config()
	folderID := e.open(t, cfg).FolderID()
	cfg.Cursor = graph.FormatCursor(e.sample.Mailbox, folderID, "http://127.0.0.2:9/v1.0/users/x/mailFolders/y/messages/delta?$deltatoken=z")
	in := newIngest()
	in.drain(t, e.open(t, cfg), 10)
	if len(in.stored) != 2 || !strings.Contains(e.logs.String(), "belongs to another mailbox, folder or Graph host") {
		t.Fatalf("stored %d (want 2); log:\n%s", len(in.stored), e.logs)
	}
}

// TestSaveCursorWhenRoundHandsOutNothing: a round whose messages are all stored already
// (here after a resync) has no message to carry its position: SaveCursor saves it, and a
// Source opened there needs one request to find nothing new.
func TestSaveCursorWhenRoundHandsOutNothing(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 3)
	cfg := e.config()
	cfg.AfterAction = store.AfterKeep
	in := newIngest()
	in.drain(t, e.open(t, cfg), 10)

	e.srv.ExpireDeltaTokens()
	var savedCursor string
	cfg.Cursor = in.cursor
	cfg.Skip = func(id string) bool { _, ok := in.stored[id]; return ok }
	cfg.SaveCursor = func(_ context.Context, c string) error { savedCursor = c; return nil }
	if n := in.drain(t, e.open(t, cfg), 10); n != 0 {
		t.Fatalf("%d handed out, want none", n)
	}
	if _, _, _, ok := graph.ParseCursor(savedCursor); !ok || savedCursor == in.cursor {
		t.Fatalf("saved cursor %q (old %q)", savedCursor, in.cursor)
	}
	cfg.Cursor = savedCursor
	src := e.open(t, cfg)
	e.srv.ResetRequests()
	if n := in.drain(t, src, 10); n != 0 {
		t.Fatalf("%d handed out from the saved cursor", n)
	}
	if n := e.srv.Requests(e.sample.ClientID); n != 1 {
		t.Fatalf("%d requests from the saved cursor, want 1 (no resync)", n)
	}
}
