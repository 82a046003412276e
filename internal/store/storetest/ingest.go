package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func testIngestRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	mb := newMailbox(t, s, "support", store.Inbound)
	date := time.Date(2025, 3, 1, 10, 15, 30, 123456000, time.FixedZone("CET", 3600))
	pdf := []byte("%PDF-1.4 \x00\x01\x02 binary")
	png := []byte{0x89, 'P', 'N', 'G', 0, 0, 0xff}
	in := store.InboundMessage{
		MailboxID: mb.ID,
		Raw:       []byte("Message-ID: <m1@example.org>\r\nSubject: Invoice\r\n\r\nbody\r\n"),
		Message: store.Message{
			SourceID:   "imap:7:42",
			MessageID:  "m1@example.org",
			InReplyTo:  "",
			References: []string{"r1@example.org", "r2@example.org"},
			Subject:    "Invoice 42 — question",
			FromName:   "Ana Pérez",
			FromAddr:   "ana@example.org",
			To:         "Support <support@example.com>",
			Cc:         "boss@example.org",
			ReplyTo:    "ana.private@example.org",
			Date:       date,
			TextBody:   "Hello,\nwhere is my invoice?",
			HTMLBody:   "<p>Hello,</p><p>where is my invoice?</p>",
			Size:       4321,
			Attachments: []store.Attachment{
				{Filename: "invoice.pdf", ContentType: "application/pdf", Size: int64(len(pdf)), Data: pdf},
				{Filename: "logo.png", ContentType: "image/png", ContentID: "logo@x", Inline: true, Size: int64(len(png)), Data: png},
			},
		},
		Cursor: &store.Cursor{MailboxID: mb.ID, Value: "7:42"},
	}
	res, err := s.IngestMessage(ctx, in)
	must(t, "IngestMessage", err)
	if res.Duplicate || res.Threaded || res.MessageID == 0 || res.ConversationID == 0 || res.WorkItemID == 0 {
		t.Fatalf("IngestMessage = %+v, want a new message, conversation and work item", res)
	}

	want := in.Message
	check := func(what string, got store.Message) {
		t.Helper()
		if got.ID != res.MessageID || got.ConversationID != res.ConversationID ||
			got.MailboxID != mb.ID || got.Direction != store.Inbound ||
			got.SourceID != want.SourceID || got.MessageID != want.MessageID ||
			got.InReplyTo != want.InReplyTo || !slices.Equal(got.References, want.References) ||
			got.Subject != want.Subject || got.FromName != want.FromName ||
			got.FromAddr != want.FromAddr || got.To != want.To || got.Cc != want.Cc ||
			got.ReplyTo != want.ReplyTo || got.TextBody != want.TextBody ||
			got.HTMLBody != want.HTMLBody || got.Size != want.Size ||
			got.Unparsed || got.ParseError != "" {
			t.Errorf("%s = %+v\nwant the fields of %+v", what, got, want)
		}
		sameTime(t, what+" Date", got.Date, date)
		recent(t, what+" CreatedAt", got.CreatedAt, start)
		if len(got.Attachments) != 2 {
			t.Fatalf("%s has %d attachments, want 2", what, len(got.Attachments))
		}
		for i, a := range got.Attachments {
			w := want.Attachments[i]
			if a.ID == 0 || a.MessageID != res.MessageID || a.Filename != w.Filename ||
				a.ContentType != w.ContentType || a.ContentID != w.ContentID ||
				a.Inline != w.Inline || a.Size != w.Size {
				t.Errorf("%s attachment %d = %+v, want the metadata of %+v", what, i, a, w)
			}
			if a.Data != nil {
				t.Errorf("%s attachment %d carries %d bytes of data; listings carry metadata only", what, i, len(a.Data))
			}
		}
	}
	got, err := s.Message(ctx, res.MessageID)
	must(t, "Message", err)
	check("Message", got)
	bySource, err := s.MessageBySource(ctx, mb.ID, "imap:7:42")
	must(t, "MessageBySource", err)
	check("MessageBySource", bySource)

	for i, a := range got.Attachments {
		full, err := s.Attachment(ctx, a.ID)
		must(t, "Attachment", err)
		if !bytes.Equal(full.Data, want.Attachments[i].Data) || full.Filename != a.Filename || full.MessageID != res.MessageID {
			t.Errorf("Attachment(%d) = %q %q, want %q with the stored content", a.ID, full.Filename, full.Data, a.Filename)
		}
	}
	raw, err := s.RawMessage(ctx, res.MessageID)
	must(t, "RawMessage", err)
	if !bytes.Equal(raw, in.Raw) {
		t.Errorf("RawMessage = %q, want %q", raw, in.Raw)
	}
	c, err := s.Cursor(ctx, mb.ID)
	must(t, "Cursor", err)
	if c.Value != "7:42" || c.MailboxID != mb.ID {
		t.Errorf("Cursor = %+v, want 7:42 saved with the message", c)
	}

	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if w.ConversationID != res.ConversationID || w.MailboxID != mb.ID || w.MessageID != res.MessageID ||
		w.State != store.StateQueued || w.Unparsed || w.AssignedTo != 0 || w.Subject != want.Subject ||
		w.FromName != want.FromName || w.FromAddr != want.FromAddr || w.MailboxName != "support" {
		t.Errorf("WorkItem = %+v, want a queued work item for the message in mailbox support", w)
	}
	recent(t, "WorkItem ReceivedAt", w.ReceivedAt, start)
	recent(t, "WorkItem UpdatedAt", w.UpdatedAt, start)

	msgs, err := s.ConversationMessages(ctx, res.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 1 {
		t.Fatalf("conversation has %d messages, want 1", len(msgs))
	}
	check("ConversationMessages[0]", msgs[0])

	// Missing records.
	_, err = s.Message(ctx, res.MessageID+1000)
	wantErr(t, "Message missing", err, store.ErrNotFound)
	_, err = s.MessageBySource(ctx, mb.ID, "imap:7:43")
	wantErr(t, "MessageBySource missing", err, store.ErrNotFound)
	_, err = s.MessageBySource(ctx, mb.ID, "")
	wantErr(t, "MessageBySource empty source id", err, store.ErrNotFound)
	_, err = s.RawMessage(ctx, res.MessageID+1000)
	wantErr(t, "RawMessage missing", err, store.ErrNotFound)
	_, err = s.Attachment(ctx, got.Attachments[1].ID+1000)
	wantErr(t, "Attachment missing", err, store.ErrNotFound)
	_, err = s.WorkItem(ctx, res.WorkItemID+1000)
	wantErr(t, "WorkItem missing", err, store.ErrNotFound)
	_, err = s.ConversationMessages(ctx, res.ConversationID+1000)
	wantErr(t, "ConversationMessages missing", err, store.ErrNotFound)
}

func testIngestDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	first := ingest(t, s, mail(mb, "imap:1:5", "a@example.org", "Hello"))

	again := mail(mb, "imap:1:5", "a@example.org", "Hello (re-fetched)")
	again.Cursor = &store.Cursor{MailboxID: mb.ID, Value: "1:5"}
	res, err := s.IngestMessage(ctx, again)
	must(t, "IngestMessage duplicate", err)
	if !res.Duplicate || res.MessageID != first.MessageID || res.ConversationID != first.ConversationID ||
		res.WorkItemID != first.WorkItemID {
		t.Errorf("re-ingest = %+v, want Duplicate with the stored ids %+v", res, first)
	}
	if n, _ := s.CountMessages(ctx, mb.ID); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if n := len(listAll(t, s)); n != 1 {
		t.Errorf("%d work items, want 1", n)
	}
	m, err := s.Message(ctx, first.MessageID)
	must(t, "Message", err)
	if m.Subject != "Hello" {
		t.Errorf("stored subject = %q: the duplicate overwrote it", m.Subject)
	}
	_, err = s.Cursor(ctx, mb.ID)
	wantErr(t, "Cursor after a duplicate (nothing is written)", err, store.ErrNotFound)

	// The same source id in another mailbox is another message.
	other := newMailbox(t, s, "sales", store.Inbound)
	res2 := ingest(t, s, mail(other, "imap:1:5", "b@example.org", "Hello"))
	if res2.MessageID == first.MessageID {
		t.Error("the same source id in another mailbox was taken for a duplicate")
	}
}

func testIngestRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	in := mail(mb, "imap:1:1", "a@example.org", "Hello")
	in.Message.Attachments = []store.Attachment{{Filename: "a.txt", ContentType: "text/plain", Data: []byte("a")}}
	// The cursor is written last; one for a mailbox that does not exist fails the
	// transaction after the message, conversation and work item were written.
	in.Cursor = &store.Cursor{MailboxID: mb.ID + 1000, Value: "1:1"}
	if _, err := s.IngestMessage(ctx, in); err == nil {
		t.Fatal("IngestMessage with a cursor of a missing mailbox succeeded, want an error")
	}
	assertNothingStored(t, s, mb)

	// Nothing half-written blocks the retry: the message is new, not a duplicate.
	in.Cursor = &store.Cursor{MailboxID: mb.ID, Value: "1:1"}
	res := ingest(t, s, in)
	if res.Threaded {
		t.Error("retry joined a conversation left behind by the failed transaction")
	}
	if n, _ := s.CountMessages(ctx, 0); n != 1 {
		t.Errorf("%d messages after the retry, want 1", n)
	}
}

func testIngestCancelled(t *testing.T, s store.Store) {
	mb := newMailbox(t, s, "support", store.Inbound)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.IngestMessage(ctx, mail(mb, "imap:1:1", "a@example.org", "Hello")); err == nil {
		t.Fatal("IngestMessage with a cancelled context succeeded, want an error")
	}
	assertNothingStored(t, s, mb)
}

// assertNothingStored fails the test if the mailbox has any message, work item, pending
// acknowledgement or cursor.
func assertNothingStored(t *testing.T, s store.Store, mb store.Mailbox) {
	t.Helper()
	ctx := t.Context()
	if n, err := s.CountMessages(ctx, 0); err != nil || n != 0 {
		t.Errorf("CountMessages = %d, %v; want 0", n, err)
	}
	if list := listAll(t, s); len(list) != 0 {
		t.Errorf("%d work items left behind, want 0", len(list))
	}
	_, err := s.MessageBySource(ctx, mb.ID, "imap:1:1")
	wantErr(t, "MessageBySource", err, store.ErrNotFound)
	if p, err := s.PendingAcks(ctx, mb.ID); err != nil || len(p) != 0 {
		t.Errorf("PendingAcks = %v, %v; want none", p, err)
	}
	_, err = s.Cursor(ctx, mb.ID)
	wantErr(t, "Cursor", err, store.ErrNotFound)
}

func testIngestCleansText(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	in := mail(mb, "imap:1:1", "a@example.org", "bad\xff\xfebyte\x00end")
	in.Message.TextBody = "nul\x00inside"
	in.Message.Unparsed = true
	in.Message.ParseError = "malformed MIME header line: \xc3"
	res := ingest(t, s, in)
	m, err := s.Message(ctx, res.MessageID)
	must(t, "Message", err)
	if m.Subject != "bad\uFFFDbyte\uFFFDend" || m.TextBody != "nul\uFFFDinside" ||
		m.ParseError != "malformed MIME header line: \uFFFD" {
		t.Errorf("stored %q / %q / %q, want invalid UTF-8 and NUL replaced by U+FFFD", m.Subject, m.TextBody, m.ParseError)
	}
	if !m.Unparsed {
		t.Error("Unparsed lost")
	}
	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if !w.Unparsed {
		t.Error("work item of an unparsed message is not flagged Unparsed")
	}
	raw, err := s.RawMessage(ctx, res.MessageID)
	must(t, "RawMessage", err)
	if !bytes.Equal(raw, in.Raw) {
		t.Error("raw message changed: it must be stored byte for byte")
	}
}

// testIngestReceivedAt: a work item's age starts when the source received the message, not
// when postroom fetched it; a time in the future is not believed.
func testIngestReceivedAt(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	past := time.Date(2026, 11, 20, 18, 21, 0, 0, time.UTC)
	in := mail(mb, "imap:1:1", "a@example.org", "Sent on Friday")
	in.ReceivedAt = past
	res := ingest(t, s, in)
	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if !w.ReceivedAt.Equal(past) {
		t.Errorf("ReceivedAt = %v, want the server's %v", w.ReceivedAt, past)
	}
	start := time.Now()
	future := mail(mb, "imap:1:2", "b@example.org", "Clock skew")
	future.ReceivedAt = start.Add(48 * time.Hour)
	w2, err := s.WorkItem(ctx, ingest(t, s, future).WorkItemID)
	must(t, "WorkItem", err)
	recent(t, "ReceivedAt from the future", w2.ReceivedAt, start)
}
