package storetest

import (
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testCreateForward: a forward is an outbound message of the work item's conversation
// with a queued outbox row; the item's state, assignment and SLA clock stay as they were.
func testCreateForward(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	agent := newAgent(t, s, "fwd-agent")
	res := ingest(t, s, mail(mb, "imap:1:1", "order-7@example.org", "Order 7"))
	before := getWorkItem(t, s, res.WorkItemID)

	ob, err := s.CreateForward(ctx, store.ForwardInput{
		WorkItemID: res.WorkItemID, UserID: agent.ID,
		Message: store.Message{MailboxID: out.ID, MessageID: "fwd-1@example.com", Subject: "Fwd: Order 7", AuthorID: agent.ID},
		Raw:     []byte("Message-ID: <fwd-1@example.com>\r\nSubject: Fwd: Order 7\r\n\r\nsee below\r\n"),
		From:    "out@example.com", Recipients: []string{"supplier@example.net"},
	})
	must(t, "CreateForward", err)
	if ob.ID == 0 || ob.State != store.OutboxQueued || ob.WorkItemID != res.WorkItemID {
		t.Errorf("forward outbox item %+v, want a queued item of work item %d", ob, res.WorkItemID)
	}
	after := getWorkItem(t, s, res.WorkItemID)
	if after.State != before.State || after.AssignedTo != before.AssignedTo || !after.FirstResponseAt.IsZero() ||
		!after.SLADueAt.Equal(before.SLADueAt) || after.MessageID != before.MessageID {
		t.Errorf("after a forward the item is %s (assigned %d, first response %v, message %d); want it unchanged: %s (assigned %d, message %d)",
			after.State, after.AssignedTo, after.FirstResponseAt, after.MessageID, before.State, before.AssignedTo, before.MessageID)
	}
	msgs, err := s.ConversationMessages(ctx, res.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 2 || msgs[1].Direction != store.Outbound || msgs[1].Subject != "Fwd: Order 7" || msgs[1].AuthorID != agent.ID {
		t.Fatalf("conversation after the forward: %+v, want the customer's message then the forward", msgs)
	}
	items, err := s.OutboxForWorkItem(ctx, res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(items) != 1 || items[0].Recipients[0] != "supplier@example.net" {
		t.Errorf("outbox of the item: %+v", items)
	}
	// An answer to the forward threads into the conversation.
	answer := ingest(t, s, reply(mail(mb, "imap:1:2", "sup-1@example.net", "Re: Fwd: Order 7"), "fwd-1@example.com"))
	if answer.ConversationID != res.ConversationID {
		t.Errorf("the answer to the forward went to conversation %d, want %d", answer.ConversationID, res.ConversationID)
	}

	_, err = s.CreateForward(ctx, store.ForwardInput{WorkItemID: 999999, UserID: agent.ID,
		Message: store.Message{MailboxID: out.ID}, Raw: []byte("x"), From: "out@example.com", Recipients: []string{"a@x"}})
	wantErr(t, "CreateForward of a missing work item", err, store.ErrNotFound)
}

// testCreateOutbound: a new email makes a conversation, a work item assigned to the
// sender (pending by default) and a queued outbox row at once; the customer's answer
// threads into it and reopens the item; the customer's history finds both ways in.
func testCreateOutbound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	agent := newAgent(t, s, "new-agent")
	q, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)

	nc, err := s.CreateOutbound(ctx, store.NewConversationInput{
		UserID: agent.ID, QueueID: q.ID,
		Message: store.Message{MailboxID: out.ID, MessageID: "new-1@example.com", Subject: "Your refund",
			FromAddr: "out@example.com", To: "Kim <Kim@Example.org>", TextBody: "Dear Kim", AuthorID: agent.ID},
		Raw:  []byte("Message-ID: <new-1@example.com>\r\nSubject: Your refund\r\n\r\nDear Kim\r\n"),
		From: "out@example.com", Recipients: []string{"Kim@Example.org"}, Customer: "Kim@Example.org",
	})
	must(t, "CreateOutbound", err)
	if nc.ConversationID == 0 || nc.WorkItemID == 0 || nc.Outbox.ID == 0 || nc.Outbox.WorkItemID != nc.WorkItemID {
		t.Fatalf("CreateOutbound = %+v", nc)
	}
	wi := getWorkItem(t, s, nc.WorkItemID)
	if wi.State != store.StatePending || wi.AssignedTo != agent.ID || wi.QueueID != q.ID || wi.Subject != "Your refund" {
		t.Errorf("new email's item: state %s, assigned %d, queue %d, subject %q; want pending, %d, %d, Your refund",
			wi.State, wi.AssignedTo, wi.QueueID, wi.Subject, agent.ID, q.ID)
	}
	queued, err := s.OutboxForWorkItem(ctx, nc.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(queued) != 1 || queued[0].State != store.OutboxQueued {
		t.Errorf("outbox of the new email: %+v", queued)
	}

	// An earlier conversation the customer started.
	earlier := mail(mb, "imap:1:1", "kim-1@example.org", "Broken lamp")
	earlier.Message.FromAddr = "kim@example.org"
	old := ingest(t, s, earlier)

	// The customer answers the new email.
	ans := mail(mb, "imap:1:2", "kim-2@example.org", "Re: Your refund")
	ans.Message.FromAddr = "KIM@example.org"
	answer := ingest(t, s, reply(ans, "new-1@example.com", "new-1@example.com"))
	if answer.ConversationID != nc.ConversationID || answer.WorkItemID != nc.WorkItemID {
		t.Errorf("the answer went to conversation %d, item %d; want %d, %d", answer.ConversationID, answer.WorkItemID, nc.ConversationID, nc.WorkItemID)
	}
	if wi := getWorkItem(t, s, nc.WorkItemID); wi.State != store.StateQueued || wi.MessageID != answer.MessageID {
		t.Errorf("after the answer the item is %s with message %d; want queued with the answer %d", wi.State, wi.MessageID, answer.MessageID)
	}

	// Another customer's conversation stays out of Kim's history.
	ingest(t, s, mail(mb, "imap:1:3", "other@example.org", "Someone else"))

	hist, err := s.CustomerHistory(ctx, "kim@EXAMPLE.org", old.ConversationID, 20)
	must(t, "CustomerHistory", err)
	if len(hist) != 1 || hist[0].WorkItemID != nc.WorkItemID || hist[0].Subject != "Your refund" || hist[0].State != store.StateQueued {
		t.Errorf("history beside the lamp conversation: %+v, want only the refund conversation (queued)", hist)
	}
	hist, err = s.CustomerHistory(ctx, "kim@example.org", 0, 20)
	must(t, "CustomerHistory", err)
	if len(hist) != 2 || hist[0].ConversationID != nc.ConversationID || hist[1].ConversationID != old.ConversationID {
		t.Errorf("whole history: %+v, want the refund (newest activity) then the lamp", hist)
	}
	// A new email nobody answered yet is found by the address it went to.
	nc2, err := s.CreateOutbound(ctx, store.NewConversationInput{UserID: agent.ID, State: store.StateAssigned,
		Message: store.Message{MailboxID: out.ID, MessageID: "new-2@example.com", Subject: "Follow-up"},
		Raw:     []byte("Message-ID: <new-2@example.com>\r\n\r\nx\r\n"), From: "out@example.com",
		Recipients: []string{"kim@example.org"}, Customer: "kim@example.org"})
	must(t, "CreateOutbound assigned", err)
	if wi := getWorkItem(t, s, nc2.WorkItemID); wi.State != store.StateAssigned || wi.AssignedTo != agent.ID {
		t.Errorf("assigned new email: %s for %d", wi.State, wi.AssignedTo)
	}
	hist, err = s.CustomerHistory(ctx, "kim@example.org", old.ConversationID, 1)
	must(t, "CustomerHistory limit 1", err)
	if len(hist) != 1 || hist[0].ConversationID != nc2.ConversationID {
		t.Errorf("history limited to 1: %+v, want the follow-up", hist)
	}

	_, err = s.CreateOutbound(ctx, store.NewConversationInput{UserID: agent.ID, State: store.StateQueued,
		Message: store.Message{MailboxID: out.ID}, Raw: []byte("x"), From: "out@example.com", Recipients: []string{"a@x"}})
	if err == nil {
		t.Error("CreateOutbound in state queued: no error")
	}
}
