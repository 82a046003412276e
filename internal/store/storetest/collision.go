package storetest

import (
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// collidingMail is an email whose Message-ID is id, written by from with body.
func collidingMail(mb store.Mailbox, sourceID, id, from, subject, body string) store.InboundMessage {
	in := mail(mb, sourceID, id, subject)
	in.Raw = []byte("Message-ID: <" + id + ">\r\nSubject: " + subject + "\r\nFrom: <" + from + ">\r\n\r\n" + body + "\r\n")
	in.Message.FromName, in.Message.FromAddr, in.Message.TextBody = "", from, body
	return in
}

// testMessageIDCollision: a message whose own Message-ID equals a stored message's but
// whose content differs (a stranger's mail, a program that writes a fixed id) is a new
// message in a conversation of its own, never a member of the customer's conversation;
// a true copy is still a duplicate; a reply that names the id belongs to the conversation
// that stored it first; our own reply delivered back to an inbound mailbox joins its
// conversation.
func testMessageIDCollision(t *testing.T, s store.Store) {
	ctx := t.Context()
	support := newMailbox(t, s, "support", store.Inbound)
	sales := newMailbox(t, s, "sales", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)

	customer := collidingMail(support, "imap:1:1", "1@localhost", "ana@example.org", "My invoice", "Invoice 42 is wrong.")
	cust := ingest(t, s, customer)

	stranger := collidingMail(support, "imap:1:2", "1@localhost", "mallory@example.net", "Hello", "Buy cheap watches.")
	str := ingest(t, s, stranger)
	if str.Duplicate || str.Threaded || str.MessageID == cust.MessageID || str.ConversationID == cust.ConversationID ||
		str.WorkItemID == 0 || str.WorkItemID == cust.WorkItemID {
		t.Fatalf("stranger's mail with the customer's Message-ID = %+v, want a new message, conversation and work item (not %+v)", str, cust)
	}
	msgs, err := s.ConversationMessages(ctx, cust.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 1 || msgs[0].FromAddr != "ana@example.org" {
		t.Errorf("customer's conversation holds %d messages (%+v), want only the customer's", len(msgs), msgs)
	}
	w := getWorkItem(t, s, str.WorkItemID)
	if w.Subject != "Hello" || w.ConversationID != str.ConversationID {
		t.Errorf("stranger's work item = %+v, want its own conversation %d with subject Hello", w, str.ConversationID)
	}

	// True copies are still recognised, each as a copy of its own message: re-delivered
	// through another mailbox, and re-read under a new source id in the same one.
	for _, tc := range []struct {
		what string
		in   store.InboundMessage
		want store.IngestResult
	}{
		{"customer's mail through sales", moved(customer, sales, "imap:5:1"), cust},
		{"stranger's mail under a new UIDVALIDITY", moved(stranger, support, "imap:2:2"), str},
	} {
		res, err := s.IngestMessage(ctx, tc.in)
		must(t, "IngestMessage "+tc.what, err)
		if !res.Duplicate || !res.Linked || res.MessageID != tc.want.MessageID || res.ConversationID != tc.want.ConversationID {
			t.Errorf("%s = %+v, want a linked duplicate of message %d", tc.what, res, tc.want.MessageID)
		}
	}
	if n, _ := s.CountMessages(ctx, 0); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}

	// A third message with the id, in one batch with a reply that names the id: the
	// reply belongs to the conversation that stored the id first, the customer's.
	third := collidingMail(sales, "imap:5:2", "1@localhost", "bot@example.com", "Report", "Daily report.")
	answer := reply(collidingMail(support, "imap:1:3", "ana-2@example.org", "ana@example.org", "Re: My invoice", "Any news?"), "1@localhost", "1@localhost")
	res, err := s.IngestMessages(ctx, []store.InboundMessage{third, answer})
	must(t, "IngestMessages", err)
	if res[0].Threaded || res[0].ConversationID == cust.ConversationID || res[0].ConversationID == str.ConversationID {
		t.Errorf("third mail with the id = %+v, want a conversation of its own", res[0])
	}
	if !res[1].Threaded || res[1].ConversationID != cust.ConversationID || res[1].WorkItemID != cust.WorkItemID {
		t.Errorf("reply naming the id = %+v, want the customer's conversation %d and work item %d", res[1], cust.ConversationID, cust.WorkItemID)
	}

	// Our reply to the customer, delivered back to an inbound mailbox (a copy to
	// ourselves), is ours: it joins the customer's conversation.
	rep, err := s.CreateReply(ctx, store.ReplyInput{
		WorkItemID: cust.WorkItemID,
		Message:    store.Message{MailboxID: out.ID, MessageID: "reply-1@postroom.example", Subject: "Re: My invoice"},
		Raw:        []byte("Message-ID: <reply-1@postroom.example>\r\nSubject: Re: My invoice\r\n\r\nWe are on it.\r\n"),
		From:       "support@example.com",
		Recipients: []string{"ana@example.org"},
		NewState:   store.StatePending,
	})
	must(t, "CreateReply", err)
	back := collidingMail(support, "imap:1:4", "reply-1@postroom.example", "support@example.com", "Re: My invoice", "We are on it.")
	b := ingest(t, s, back)
	if !b.Threaded || b.ConversationID != cust.ConversationID {
		t.Errorf("our reply (message %d) delivered back = %+v, want it in the customer's conversation %d", rep.MessageID, b, cust.ConversationID)
	}
}

// moved is in as delivered to mailbox mb under source id sourceID.
func moved(in store.InboundMessage, mb store.Mailbox, sourceID string) store.InboundMessage {
	in.MailboxID = mb.ID
	in.Message.SourceID = sourceID
	return in
}
