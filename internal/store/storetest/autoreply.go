package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testIngestOverSize: the over-size flag of a message is stored and marks its work item,
// like Unparsed, as long as that message is the work item's latest.
func testIngestOverSize(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	big := mail(mb, "imap:1:1", "big@example.org", "Huge scan")
	big.Raw = []byte("Message-ID: <big@example.org>\r\nSubject: Huge scan\r\n\r\n")
	big.Message.OverSize = true
	big.Message.Size = 6 << 20
	big.Message.TextBody = ""
	res := ingest(t, s, big)
	m, err := s.Message(ctx, res.MessageID)
	must(t, "Message", err)
	if !m.OverSize || m.Size != 6<<20 {
		t.Errorf("Message OverSize %v Size %d, want true and the original size %d", m.OverSize, m.Size, 6<<20)
	}
	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if !w.OverSize {
		t.Error("work item of an over-size message is not flagged OverSize")
	}
	if items := listAll(t, s); len(items) != 1 || !items[0].OverSize {
		t.Errorf("ListWorkItems = %+v, want the work item flagged OverSize", items)
	}
	small := ingest(t, s, mail(mb, "imap:1:2", "small@example.org", "Small"))
	if m, _ := s.Message(ctx, small.MessageID); m.OverSize {
		t.Error("a normal message is flagged OverSize")
	}

	// The customer writes again in the same thread with a normal message.
	follow := ingest(t, s, reply(mail(mb, "imap:1:3", "f@example.org", "Re: Huge scan"), "big@example.org"))
	if follow.WorkItemID != res.WorkItemID {
		t.Fatalf("follow-up went to work item %d, want %d", follow.WorkItemID, res.WorkItemID)
	}
	w, err = s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem after follow-up", err)
	if w.OverSize {
		t.Error("work item still OverSize after a normal follow-up became its latest message")
	}
}

// overSizeNotice is the inbound over-size message of mailbox in with its auto-reply from
// mailbox out.
func overSizeNotice(in, out store.Mailbox, sourceID string) store.InboundMessage {
	msg := mail(in, sourceID, "big@example.org", "Huge scan")
	msg.Message.OverSize = true
	raw := []byte("Message-ID: <notice-1@example.com>\r\nIn-Reply-To: <big@example.org>\r\nSubject: Re: Huge scan\r\n\r\nYour message was too large.\r\n")
	msg.AutoReply = &store.AutoReply{
		Message: store.Message{
			MailboxID:  out.ID,
			MessageID:  "notice-1@example.com",
			InReplyTo:  "big@example.org",
			References: []string{"big@example.org"},
			Subject:    "Re: Huge scan",
			FromName:   "Support",
			FromAddr:   "support@example.com",
			To:         "customer@example.org",
			TextBody:   "Your message was too large.",
		},
		Raw:        raw,
		From:       "bounce@example.com",
		Recipients: []string{"customer@example.org"},
	}
	return msg
}

// testAutoReply: an auto-reply is stored as an outbound message of the conversation and
// queued once, with the inbound message, in one step; a re-fetched duplicate queues none.
func testAutoReply(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	in := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	msg := overSizeNotice(in, out, "imap:1:1")
	res := ingest(t, s, msg)

	msgs, err := s.ConversationMessages(ctx, res.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 2 || msgs[0].ID != res.MessageID {
		t.Fatalf("conversation has %+v, want the inbound message and the auto-reply", msgs)
	}
	notice := msgs[1]
	want := msg.AutoReply.Message
	if notice.Direction != store.Outbound || notice.MailboxID != out.ID || notice.MessageID != want.MessageID ||
		notice.Subject != want.Subject || notice.To != want.To || notice.TextBody != want.TextBody ||
		notice.InReplyTo != want.InReplyTo || !slices.Equal(notice.References, want.References) ||
		notice.SourceID != "" || notice.Size != int64(len(msg.AutoReply.Raw)) {
		t.Errorf("auto-reply message = %+v, want the outbound form of %+v", notice, want)
	}
	raw, err := s.RawMessage(ctx, notice.ID)
	must(t, "RawMessage of the auto-reply", err)
	if !bytes.Equal(raw, msg.AutoReply.Raw) {
		t.Errorf("auto-reply raw = %q, want %q", raw, msg.AutoReply.Raw)
	}

	items, err := s.OutboxForWorkItem(ctx, res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(items) != 1 {
		t.Fatalf("%d outbox items for the work item, want 1", len(items))
	}
	o := items[0]
	if o.MailboxID != out.ID || o.WorkItemID != res.WorkItemID || o.MessageID != notice.ID ||
		o.From != "bounce@example.com" || !slices.Equal(o.Recipients, msg.AutoReply.Recipients) ||
		!bytes.Equal(o.Raw, msg.AutoReply.Raw) || o.State != store.OutboxQueued || o.Attempts != 0 {
		t.Errorf("outbox item = %+v, want the queued auto-reply", o)
	}
	recent(t, "auto-reply NextAttemptAt", o.NextAttemptAt, start)
	claimed, err := s.ClaimOutbox(ctx, time.Now(), time.Now().Add(time.Minute), 10)
	must(t, "ClaimOutbox", err)
	if len(claimed) != 1 || claimed[0].ID != o.ID {
		t.Errorf("ClaimOutbox now = %+v, want the auto-reply (due at once)", claimed)
	}

	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if w.State != store.StateQueued || !w.OverSize || w.MessageID != res.MessageID {
		t.Errorf("work item = %+v, want queued, over size, pointing at the inbound message: the notice answers nothing", w)
	}

	// Re-fetching the message (the source was not acknowledged) queues no second notice.
	dup, err := s.IngestMessage(ctx, overSizeNotice(in, out, "imap:1:1"))
	must(t, "IngestMessage duplicate", err)
	if !dup.Duplicate {
		t.Fatalf("re-ingest = %+v, want a duplicate", dup)
	}
	items, err = s.OutboxForWorkItem(ctx, res.WorkItemID)
	must(t, "OutboxForWorkItem after the duplicate", err)
	if len(items) != 1 {
		t.Errorf("%d outbox items after a duplicate, want still 1", len(items))
	}
	if n, _ := s.CountMessages(ctx, 0); n != 2 {
		t.Errorf("%d messages after a duplicate, want still 2", n)
	}

	// The customer answering the notice lands in the same conversation.
	answer := ingest(t, s, reply(mail(in, "imap:1:2", "ans@example.org", "Re: Re: Huge scan"), "notice-1@example.com"))
	if answer.ConversationID != res.ConversationID || !answer.Threaded {
		t.Errorf("answer to the notice = %+v, want conversation %d", answer, res.ConversationID)
	}
}

// testAutoReplyRollback: when the auto-reply cannot be stored, the inbound message is not
// stored either, so the next fetch tries both again.
func testAutoReplyRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	bad := overSizeNotice(in, out, "imap:1:1")
	bad.AutoReply.Message.MailboxID = out.ID + 1000 // no such outbound mailbox
	if _, err := s.IngestMessage(ctx, bad); err == nil {
		t.Fatal("IngestMessage with an auto-reply from a missing mailbox succeeded, want an error")
	}
	assertNothingStored(t, s, in)
	if items, err := s.ClaimOutbox(ctx, time.Now(), time.Now().Add(time.Minute), 10); err != nil || len(items) != 0 {
		t.Errorf("ClaimOutbox after the failed ingest = %+v, %v; want nothing queued", items, err)
	}
	res := ingest(t, s, overSizeNotice(in, out, "imap:1:1"))
	if items, err := s.OutboxForWorkItem(ctx, res.WorkItemID); err != nil || len(items) != 1 {
		t.Errorf("OutboxForWorkItem after the retry = %d items, %v; want 1", len(items), err)
	}
}

// testAutoReplyAfterFutureDate: the notice answering a message whose Date is ahead of our
// clock (the sender's clock is fast) still comes after it in the conversation; messages
// we did not write keep their Date order.
func testAutoReplyAfterFutureDate(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	msg := overSizeNotice(in, out, "imap:1:1")
	msg.Message.Date = time.Now().Add(time.Hour)
	res := ingest(t, s, msg)
	// An earlier message of the same thread arrives later (a second mailbox catching up).
	early := reply(mail(in, "imap:1:2", "early@example.org", "Re: Huge scan"), "big@example.org")
	early.Message.Date = time.Now().Add(-time.Hour)
	ingest(t, s, early)

	msgs, err := s.ConversationMessages(ctx, res.ConversationID)
	must(t, "ConversationMessages", err)
	var got []string
	for _, m := range msgs {
		got = append(got, m.MessageID)
	}
	want := []string{"early@example.org", "big@example.org", "notice-1@example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("conversation order = %v, want %v (the notice after the message it answers)", got, want)
	}
}
