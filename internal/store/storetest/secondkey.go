package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// ccCopy is the email customer@example.org sent To support@ and Cc sales@, as delivered to
// mailbox rcpt: the receiving servers put their own trace fields on top of each copy.
func ccCopy(mb store.Mailbox, rcpt, sourceID, queueID string) store.InboundMessage {
	raw := "Return-Path: <customer@example.org>\r\n" +
		"Delivered-To: " + rcpt + "\r\n" +
		"Received: from mx.example.org (mx.example.org [192.0.2.7])\r\n" +
		"\tby mail.example.com with ESMTPS id " + queueID + "\r\n" +
		"\tfor <" + rcpt + ">; Mon, 23 Nov 2026 10:00:0" + queueID[:1] + " +0000\r\n" +
		"X-Spam-Score: " + queueID[:1] + "\r\n" +
		"From: Customer <customer@example.org>\r\n" +
		"To: support@example.com\r\n" +
		"Cc: sales@example.com\r\n" +
		"Subject: Where is my order?\r\n" +
		"Message-ID: <cc-1@example.org>\r\n" +
		"Date: Mon, 23 Nov 2026 09:59:00 +0000\r\n" +
		"\r\n" +
		"Hello, where is my order 42?\r\n"
	in := mail(mb, sourceID, "cc-1@example.org", "Where is my order?")
	in.Raw = []byte(raw)
	return in
}

// testIngestSecondKey: the same email reaching two of our mailboxes (To one, Cc the other)
// is one message and one work item linked to both; each source is acknowledged on its
// own; the same email again in the same mailbox under a new source id (IMAP UIDVALIDITY
// change) is recognised too; a message reusing the Message-ID with other content is
// stored, in a conversation of its own (DESIGN.md invariants 2 and 8).
func testIngestSecondKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	support := newMailbox(t, s, "support", store.Inbound)
	sales := newMailbox(t, s, "sales", store.Inbound)

	toCopy := ccCopy(support, "support@example.com", "imap:1:1", "1AAA")
	toCopy.Cursor = &store.Cursor{MailboxID: support.ID, Value: "1:1"}
	first := ingest(t, s, toCopy)

	cc := ccCopy(sales, "sales@example.com", "imap:7:1", "2BBB")
	cc.Cursor = &store.Cursor{MailboxID: sales.ID, Value: "7:1"}
	res, err := s.IngestMessage(ctx, cc)
	must(t, "IngestMessage of the Cc copy", err)
	if !res.Duplicate || !res.Linked || res.MessageID != first.MessageID ||
		res.ConversationID != first.ConversationID || res.WorkItemID != first.WorkItemID {
		t.Fatalf("Cc copy = %+v, want a linked duplicate with the stored ids %+v", res, first)
	}
	if n, _ := s.CountMessages(ctx, 0); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	items := listAll(t, s)
	if len(items) != 1 || !slices.Equal(items[0].Mailboxes, []string{"support", "sales"}) {
		t.Fatalf("work items = %+v, want one linked to [support sales]", items)
	}
	w, err := s.WorkItem(ctx, first.WorkItemID)
	must(t, "WorkItem", err)
	if !slices.Equal(w.Mailboxes, []string{"support", "sales"}) || w.MailboxName != "support" {
		t.Errorf("WorkItem mailboxes = %q (own %q), want [support sales]", w.Mailboxes, w.MailboxName)
	}
	if c, err := s.Cursor(ctx, sales.ID); err != nil || c.Value != "7:1" {
		t.Errorf("cursor of sales = %+v, %v; want 7:1 saved with the link", c, err)
	}
	m, err := s.MessageBySource(ctx, sales.ID, "imap:7:1")
	must(t, "MessageBySource of the linked source", err)
	if m.ID != first.MessageID || m.MailboxID != support.ID || m.SourceID != "imap:1:1" {
		t.Errorf("MessageBySource(sales, imap:7:1) = message %d of mailbox %d source %q, want the stored %d of support imap:1:1",
			m.ID, m.MailboxID, m.SourceID, first.MessageID)
	}

	// Each source waits for its own acknowledgement.
	pending := func(mb store.Mailbox) []string {
		t.Helper()
		p, err := s.PendingAcks(ctx, mb.ID)
		must(t, "PendingAcks", err)
		return p
	}
	if p := pending(support); !slices.Equal(p, []string{"imap:1:1"}) {
		t.Errorf("PendingAcks(support) = %v, want [imap:1:1]", p)
	}
	if p := pending(sales); !slices.Equal(p, []string{"imap:7:1"}) {
		t.Errorf("PendingAcks(sales) = %v, want [imap:7:1]", p)
	}
	must(t, "MarkAcked sales", s.MarkAcked(ctx, sales.ID, "imap:7:1"))
	if p := pending(sales); len(p) != 0 {
		t.Errorf("PendingAcks(sales) after its ack = %v, want none", p)
	}
	if p := pending(support); !slices.Equal(p, []string{"imap:1:1"}) {
		t.Errorf("PendingAcks(support) after the ack in sales = %v, want [imap:1:1] still", p)
	}
	must(t, "MarkAcked support", s.MarkAcked(ctx, support.ID, "imap:1:1"))

	// The linked source fetched again is a plain duplicate.
	again, err := s.IngestMessage(ctx, cc)
	must(t, "IngestMessage of the Cc copy again", err)
	if !again.Duplicate || again.Linked || again.MessageID != first.MessageID {
		t.Errorf("Cc copy again = %+v, want a plain duplicate", again)
	}
	if p := pending(sales); len(p) != 0 {
		t.Errorf("PendingAcks(sales) after a re-fetch = %v, want none: the source is acknowledged", p)
	}

	// The folder was recreated: the same email under a new UIDVALIDITY in the same mailbox.
	refetched := ccCopy(support, "support@example.com", "imap:2:1", "1AAA")
	res, err = s.IngestMessage(ctx, refetched)
	must(t, "IngestMessage after a UIDVALIDITY change", err)
	if !res.Duplicate || !res.Linked || res.MessageID != first.MessageID {
		t.Errorf("same email under a new UIDVALIDITY = %+v, want a linked duplicate of %d", res, first.MessageID)
	}
	if p := pending(support); !slices.Equal(p, []string{"imap:2:1"}) {
		t.Errorf("PendingAcks(support) = %v, want [imap:2:1]", p)
	}
	w, _ = s.WorkItem(ctx, first.WorkItemID)
	if !slices.Equal(w.Mailboxes, []string{"support", "sales"}) {
		t.Errorf("mailboxes after a second source in support = %q, want [support sales] (each once)", w.Mailboxes)
	}

	// The same Message-ID with other content is another message, in a conversation of its
	// own (testMessageIDCollision).
	changed := ccCopy(support, "support@example.com", "imap:2:2", "3CCC")
	changed.Raw = []byte(strings.Replace(string(changed.Raw), "order 42", "order 43", 1))
	res = ingest(t, s, changed)
	if res.MessageID == first.MessageID || res.Threaded || res.ConversationID == first.ConversationID {
		t.Errorf("same Message-ID, other content = %+v, want a new message outside conversation %d", res, first.ConversationID)
	}
	if n, _ := s.CountMessages(ctx, 0); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}

	// The customer writes again through sales after the item was done: the same item is
	// reopened, and still lists its own mailbox first.
	change(t, s, store.Change{WorkItemID: first.WorkItemID, To: store.StateDone})
	follow := reply(mail(sales, "imap:7:2", "follow@example.org", "Re: Where is my order?"), "cc-1@example.org")
	fres := ingest(t, s, follow)
	w, err = s.WorkItem(ctx, fres.WorkItemID)
	must(t, "WorkItem of the follow-up", err)
	if fres.WorkItemID != first.WorkItemID || w.State != store.StateQueued || !slices.Equal(w.Mailboxes, []string{"support", "sales"}) {
		t.Errorf("follow-up work item %d (%s) mailboxes %q, want work item %d reopened, listing [support sales]", fres.WorkItemID, w.State, w.Mailboxes, first.WorkItemID)
	}
}

// testIngestSecondKeyNeedsMessageID: without a Message-ID (or with one too long to be
// real) the second key does not apply: identical messages under different source ids are
// each stored, so nothing is ever dropped for lack of an id.
func testIngestSecondKeyNeedsMessageID(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	raw := []byte("From: a@example.org\r\nSubject: no id\r\n\r\nsame body\r\n")
	long := strings.Repeat("x", 2000) + "@example.org"
	for i, id := range []string{"", "", long, long} {
		in := mail(mb, "imap:1:"+string(rune('1'+i)), id, "no id")
		in.Raw = raw
		res := ingest(t, s, in)
		if res.Threaded && id == "" {
			t.Errorf("message %d without a Message-ID joined a conversation", i)
		}
	}
	if n, _ := s.CountMessages(ctx, mb.ID); n != 4 {
		t.Errorf("%d messages stored, want 4", n)
	}
}

// testIngestLinkedOverSize: a linked copy of an over-size message is reported as the
// stored message (MessageBySource says OverSize, so it is set aside too) and queues no
// second notice.
func testIngestLinkedOverSize(t *testing.T, s store.Store) {
	ctx := t.Context()
	support := newMailbox(t, s, "support", store.Inbound)
	sales := newMailbox(t, s, "sales", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	first := ingest(t, s, overSizeNotice(support, out, "imap:1:1"))
	res, err := s.IngestMessage(ctx, overSizeNotice(sales, out, "imap:3:1"))
	must(t, "IngestMessage of the copy", err)
	if !res.Linked || res.MessageID != first.MessageID {
		t.Fatalf("copy = %+v, want linked to %d", res, first.MessageID)
	}
	m, err := s.MessageBySource(ctx, sales.ID, "imap:3:1")
	must(t, "MessageBySource", err)
	if !m.OverSize {
		t.Error("MessageBySource of the linked copy is not OverSize: it would be acknowledged instead of set aside")
	}
	items, err := s.OutboxForWorkItem(ctx, first.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(items) != 1 {
		t.Errorf("%d notices queued, want 1", len(items))
	}
}

// testIngestFailures: failed attempts are counted per (mailbox, source id) and forgotten
// once the message is stored.
func testIngestFailures(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	other := newMailbox(t, s, "sales", store.Inbound)
	record := func(m store.Mailbox, id, msg string) int {
		t.Helper()
		n, err := s.RecordIngestFailure(ctx, m.ID, id, msg)
		must(t, "RecordIngestFailure", err)
		return n
	}
	for want := 1; want <= 3; want++ {
		if got := record(mb, "imap:1:1", "boom"); got != want {
			t.Errorf("failure %d counted as %d", want, got)
		}
	}
	if got := record(other, "imap:1:1", "boom"); got != 1 {
		t.Errorf("first failure in another mailbox counted as %d, want 1", got)
	}
	if got := record(mb, "imap:1:2", strings.Repeat("é", 5000)+"\x00\xff"); got != 1 {
		t.Errorf("first failure of another source counted as %d, want 1", got)
	}
	ingest(t, s, mail(mb, "imap:1:1", "a@example.org", "stored at last"))
	if got := record(mb, "imap:1:1", "boom"); got != 1 {
		t.Errorf("failure after the message was stored counted as %d, want 1 (stored forgets failures)", got)
	}
	if _, err := s.RecordIngestFailure(ctx, mb.ID+1000, "imap:1:1", "boom"); err == nil {
		t.Error("RecordIngestFailure of a missing mailbox succeeded")
	}
}

// testCountOutbox counts outbox items by state.
func testCountOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	count := func(state string) int {
		t.Helper()
		n, err := s.CountOutbox(ctx, state)
		must(t, "CountOutbox", err)
		return n
	}
	if n := count(store.OutboxQueued); n != 0 {
		t.Errorf("queued on an empty store = %d", n)
	}
	ingest(t, s, overSizeNotice(in, out, "imap:1:1"))
	if n := count(store.OutboxQueued); n != 1 {
		t.Errorf("queued = %d, want 1", n)
	}
	items, err := s.ClaimOutbox(ctx, time.Now().Add(time.Second), time.Now().Add(time.Minute), 10)
	must(t, "ClaimOutbox", err)
	if len(items) != 1 {
		t.Fatalf("claimed %d, want 1", len(items))
	}
	must(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, items[0].ID, time.Now()))
	if q, sent := count(store.OutboxQueued), count(store.OutboxSent); q != 0 || sent != 1 {
		t.Errorf("after sending: queued %d sent %d, want 0 and 1", q, sent)
	}
}
