package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// ack is an acknowledgement of in, composed by the store's callback with the work item's
// number, limited as given.
func ack(in store.InboundMessage, out store.Mailbox, limit store.AutoLimit) store.InboundMessage {
	in.AutoReply = &store.AutoReply{
		Recipients: []string{in.Message.FromAddr}, Kind: store.AutoKindAcknowledgement,
		NewConversationOnly: true, Limit: limit,
		Compose: func(workItemID int64) (store.Message, []byte, error) {
			id := fmt.Sprintf("ack-%s@example.com", in.Message.MessageID)
			text := fmt.Sprintf("We have your request number %d.", workItemID)
			raw := fmt.Sprintf("Message-ID: <%s>\r\nAuto-Submitted: auto-replied\r\nSubject: Re: %s\r\n\r\n%s\r\n", id, in.Message.Subject, text)
			return store.Message{MailboxID: out.ID, MessageID: id, Subject: "Re: " + in.Message.Subject, TextBody: text,
				InReplyTo: in.Message.MessageID}, []byte(raw), nil
		},
	}
	return in
}

// acksOf returns the outbox items of a work item.
func acksOf(t *testing.T, s store.Store, workItemID int64) []store.OutboxItem {
	t.Helper()
	items, err := s.OutboxForWorkItem(t.Context(), workItemID)
	must(t, "OutboxForWorkItem", err)
	return items
}

// testAcknowledgement: an acknowledgement is queued for a new conversation only, composed
// with the work item's number, with an empty envelope sender; a program's mail gets none
// however it asks; the per-conversation and per-address limits hold.
func testAcknowledgement(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "smtp-out", store.Outbound)
	limit := store.AutoLimit{PerConversation: 1, PerAddress: 2, Window: time.Hour}

	first := ingest(t, s, ack(mail(in, "imap:1:1", "m1@example.org", "Where is my order"), out, limit))
	items := acksOf(t, s, first.WorkItemID)
	if len(items) != 1 || items[0].From != "" || len(items[0].Recipients) != 1 || items[0].Recipients[0] != "customer@example.org" {
		t.Fatalf("acknowledgement of a new conversation: %+v, want one to the customer with an empty envelope sender", items)
	}
	msg, err := s.Message(ctx, items[0].MessageID)
	must(t, "Message", err)
	if want := fmt.Sprintf("We have your request number %d.", first.WorkItemID); msg.TextBody != want || msg.ConversationID != first.ConversationID {
		t.Errorf("acknowledgement text %q in conversation %d, want %q in %d", msg.TextBody, msg.ConversationID, want, first.ConversationID)
	}

	// The customer writes again in the same conversation: no second acknowledgement.
	again := ingest(t, s, ack(reply(mail(in, "imap:1:2", "m2@example.org", "Re: Where is my order"), "m1@example.org"), out, limit))
	if !again.Threaded || again.WorkItemID != first.WorkItemID {
		t.Fatalf("the second message did not join the conversation: %+v", again)
	}
	if n := len(acksOf(t, s, first.WorkItemID)); n != 1 {
		t.Errorf("%d automatic messages after the customer's second message, want still 1", n)
	}

	// An auto-reply starting a conversation gets none, even when one is attached.
	auto := mail(in, "imap:1:3", "ooo@example.org", "Out of office")
	auto.Message.Automatic = "Auto-Submitted: auto-replied"
	res := ingest(t, s, ack(auto, out, limit))
	if n := len(acksOf(t, s, res.WorkItemID)); n != 0 {
		t.Errorf("%d automatic messages to an auto-reply, want none", n)
	}

	// The per-address limit: the customer's second new conversation is acknowledged (2 of
	// 2), the third is not.
	second := ingest(t, s, ack(mail(in, "imap:1:4", "m4@example.org", "Another question"), out, limit))
	third := ingest(t, s, ack(mail(in, "imap:1:5", "m5@example.org", "A third question"), out, limit))
	if n := len(acksOf(t, s, second.WorkItemID)); n != 1 {
		t.Errorf("%d acknowledgements of the second conversation, want 1", n)
	}
	if n := len(acksOf(t, s, third.WorkItemID)); n != 0 {
		t.Errorf("%d acknowledgements of the third conversation within the window, want 0 (limit 2 per address)", n)
	}
	n, err := s.AutoSentCount(ctx, "Customer@Example.org", time.Now().Add(-time.Hour))
	must(t, "AutoSentCount", err)
	if n != 2 {
		t.Errorf("AutoSentCount = %d, want 2", n)
	}
	// Another address is not limited by this one's count.
	other := mail(in, "imap:1:6", "m6@example.org", "Hello")
	other.Message.FromAddr = "other@example.org"
	if res := ingest(t, s, ack(other, out, limit)); len(acksOf(t, s, res.WorkItemID)) != 1 {
		t.Errorf("another address got no acknowledgement")
	}

	// A per-conversation limit of one also stops a second notice of another kind.
	big := overSizeNotice(in, out, "imap:1:7")
	big.Message.FromAddr = "big@example.org"
	big.AutoReply.Recipients = []string{"big@example.org"}
	big.AutoReply.Limit = limit
	r1 := ingest(t, s, big)
	big2 := reply(overSizeNotice(in, out, "imap:1:8"), "big@example.org")
	big2.Message.MessageID = "big-2@example.org"
	big2.AutoReply.Message.MessageID = "notice-2@example.com"
	big2.AutoReply.Recipients = []string{"big@example.org"}
	big2.AutoReply.Limit = limit
	r2 := ingest(t, s, big2)
	if r2.ConversationID != r1.ConversationID {
		t.Fatalf("the second over-size message did not join the conversation")
	}
	if n := len(acksOf(t, s, r1.WorkItemID)); n != 1 {
		t.Errorf("%d over-size notices in one conversation, want 1 (per-conversation limit)", n)
	}
}

// testAutoTemplates: templates are stored per queue and name, replaced on save.
func testAutoTemplates(t *testing.T, s store.Store) {
	ctx := t.Context()
	q, err := s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue", err)
	list, err := s.AutoTemplates(ctx, q.ID)
	must(t, "AutoTemplates", err)
	if len(list) != 0 {
		t.Fatalf("new queue has templates %+v", list)
	}
	must(t, "SetAutoTemplate", s.SetAutoTemplate(ctx, store.AutoTemplate{QueueID: q.ID, Name: "acknowledgement_open", Enabled: true, Subject: "Re: {{.Subject}}", Body: "Hi ü"}))
	must(t, "SetAutoTemplate", s.SetAutoTemplate(ctx, store.AutoTemplate{QueueID: q.ID, Name: "acknowledgement_open", Enabled: false, Subject: "S2", Body: "B2"}))
	must(t, "SetAutoTemplate global", s.SetAutoTemplate(ctx, store.AutoTemplate{Name: "oversize", Enabled: true, Subject: "S", Body: "B"}))
	list, err = s.AutoTemplates(ctx, q.ID)
	must(t, "AutoTemplates", err)
	if len(list) != 1 || list[0].Enabled || list[0].Subject != "S2" || list[0].Body != "B2" || list[0].UpdatedAt.IsZero() {
		t.Errorf("queue templates = %+v, want the one saved last", list)
	}
	global, err := s.AutoTemplates(ctx, 0)
	must(t, "AutoTemplates global", err)
	if len(global) != 1 || global[0].Name != "oversize" || !global[0].Enabled {
		t.Errorf("global templates = %+v", global)
	}
}
