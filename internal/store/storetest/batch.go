package storetest

import (
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testIngestMessages stores a batch in one call: each message as IngestMessage would, a
// later one seeing the earlier ones, one cursor per mailbox (the last).
func testIngestMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	support := newMailbox(t, s, "support", store.Inbound)
	sales := newMailbox(t, s, "sales", store.Inbound)

	if res, err := s.IngestMessages(ctx, nil); err != nil || len(res) != 0 {
		t.Fatalf("IngestMessages(nil) = %v, %v; want nothing, no error", res, err)
	}

	first := mail(support, "imap:1:1", "a@example.org", "Order 1")
	first.Cursor = &store.Cursor{MailboxID: support.ID, Value: "1:1"}
	answer := reply(mail(support, "imap:1:2", "b@example.org", "Re: Order 1"), "a@example.org")
	answer.Cursor = &store.Cursor{MailboxID: support.ID, Value: "1:2"}
	again := first // the same source twice in one batch
	ccCopy := first
	ccCopy.MailboxID = sales.ID
	ccCopy.Message.SourceID = "imap:9:1"
	ccCopy.Cursor = &store.Cursor{MailboxID: sales.ID, Value: "9:1"}
	other := mail(support, "imap:1:3", "c@example.org", "Invoice")
	other.Cursor = &store.Cursor{MailboxID: support.ID, Value: "1:3"}

	res, err := s.IngestMessages(ctx, []store.InboundMessage{first, answer, again, ccCopy, other})
	must(t, "IngestMessages", err)
	if len(res) != 5 {
		t.Fatalf("IngestMessages returned %d results for 5 messages", len(res))
	}
	if res[0].Duplicate || res[0].Threaded || res[0].MessageID == 0 || res[0].WorkItemID == 0 {
		t.Errorf("first message: %+v, want a new message and work item", res[0])
	}
	if !res[1].Threaded || res[1].ConversationID != res[0].ConversationID || res[1].WorkItemID != res[0].WorkItemID {
		t.Errorf("reply in the same batch: %+v, want it in the first message's conversation %d and work item %d",
			res[1], res[0].ConversationID, res[0].WorkItemID)
	}
	if !res[2].Duplicate || res[2].Linked || res[2].MessageID != res[0].MessageID {
		t.Errorf("the same source again: %+v, want a duplicate of message %d", res[2], res[0].MessageID)
	}
	if !res[3].Duplicate || !res[3].Linked || res[3].MessageID != res[0].MessageID {
		t.Errorf("the copy through another mailbox: %+v, want linked to message %d", res[3], res[0].MessageID)
	}
	if res[4].Duplicate || res[4].Threaded || res[4].WorkItemID == res[0].WorkItemID {
		t.Errorf("unrelated message: %+v, want a new work item", res[4])
	}

	if n, err := s.CountMessages(ctx, 0); err != nil || n != 3 {
		t.Errorf("CountMessages = %d, %v; want 3 (first, reply, invoice)", n, err)
	}
	if list := listAll(t, s); len(list) != 2 {
		t.Errorf("%d work items, want 2", len(list))
	}
	for _, c := range []store.Cursor{{MailboxID: support.ID, Value: "1:3"}, {MailboxID: sales.ID, Value: "9:1"}} {
		got, err := s.Cursor(ctx, c.MailboxID)
		must(t, "Cursor", err)
		if got.Value != c.Value {
			t.Errorf("cursor of mailbox %d = %q, want %q (its last message's)", c.MailboxID, got.Value, c.Value)
		}
	}
	pending, err := s.PendingAcks(ctx, support.ID)
	must(t, "PendingAcks", err)
	if len(pending) != 3 {
		t.Errorf("PendingAcks(support) = %v, want the 3 sources stored", pending)
	}
	m, err := s.MessageBySource(ctx, sales.ID, "imap:9:1")
	must(t, "MessageBySource of the linked copy", err)
	if m.ID != res[0].MessageID {
		t.Errorf("the linked copy reads as message %d, want %d", m.ID, res[0].MessageID)
	}
}

// testIngestMessagesRollback: when one message of a batch fails, none is stored.
func testIngestMessagesRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	good := mail(mb, "imap:1:1", "a@example.org", "Hello")
	good.Message.Attachments = []store.Attachment{{Filename: "a.txt", ContentType: "text/plain", Data: []byte("a")}}
	good.Cursor = &store.Cursor{MailboxID: mb.ID, Value: "1:1"}
	bad := mail(mb, "imap:1:2", "b@example.org", "Hello again")
	bad.MailboxID = mb.ID + 1000 // no such mailbox
	if _, err := s.IngestMessages(ctx, []store.InboundMessage{good, bad}); err == nil {
		t.Fatal("IngestMessages with a message for a missing mailbox succeeded, want an error")
	}
	assertNothingStored(t, s, mb)

	// Nothing half-written blocks the retry of the good one.
	res, err := s.IngestMessages(ctx, []store.InboundMessage{good})
	must(t, "IngestMessages retry", err)
	if len(res) != 1 || res[0].Duplicate || res[0].Threaded {
		t.Errorf("retry = %+v, want one new message", res)
	}
}
