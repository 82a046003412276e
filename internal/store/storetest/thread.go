package storetest

import (
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func testThreading(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)

	a := ingest(t, s, mail(mb, "imap:1:1", "a@example.org", "Order 1"))
	b := ingest(t, s, mail(mb, "imap:1:2", "b@example.org", "Order 2"))
	if a.ConversationID == b.ConversationID {
		t.Fatal("two unrelated messages share a conversation")
	}
	for _, tc := range []struct {
		name     string
		in       store.InboundMessage
		wantConv int64
	}{
		{"In-Reply-To", reply(mail(mb, "imap:1:3", "c@example.org", "Re: Order 1"), "a@example.org"), a.ConversationID},
		{"References with unknown ids", reply(mail(mb, "imap:1:4", "d@example.org", "Re: Order 2"), "", "unknown@x", "b@example.org", "unknown2@x"), b.ConversationID},
		{"most recent reference first", reply(mail(mb, "imap:1:5", "e@example.org", "Re: both"), "", "a@example.org", "b@example.org"), b.ConversationID},
		{"In-Reply-To before References", reply(mail(mb, "imap:1:6", "f@example.org", "Re: both"), "a@example.org", "b@example.org"), a.ConversationID},
		{"a reply to a threaded reply", reply(mail(mb, "imap:1:7", "g@example.org", "Re: Re: Order 1"), "c@example.org"), a.ConversationID},
	} {
		res := ingest(t, s, tc.in)
		if !res.Threaded || res.ConversationID != tc.wantConv {
			t.Errorf("%s: conversation %d, threaded %v; want conversation %d, threaded", tc.name, res.ConversationID, res.Threaded, tc.wantConv)
		}
	}

	// Unknown references start a new conversation, with the message's subject.
	lone := ingest(t, s, reply(mail(mb, "imap:1:8", "h@example.org", "Fresh start"), "nobody@x", "nobody2@x"))
	if lone.Threaded || lone.ConversationID == a.ConversationID || lone.ConversationID == b.ConversationID {
		t.Errorf("message with unknown references: %+v, want a new conversation", lone)
	}
	msgs, err := s.ConversationMessages(ctx, a.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 4 {
		t.Errorf("conversation of Order 1 has %d messages, want 4 (a, c, f, g)", len(msgs))
	}

	// A message reusing a stored Message-ID with other content is a message of its own, in
	// a conversation of its own: a Message-ID is only the sender's claim (see
	// testMessageIDCollision). An identical copy is not stored at all: see
	// testIngestSecondKey.
	sales := newMailbox(t, s, "sales", store.Inbound)
	changed := mail(sales, "imap:9:1", "b@example.org", "Order 2")
	changed.Raw = append(changed.Raw, "Sorry, one more thing.\r\n"...)
	copyRes := ingest(t, s, changed)
	if copyRes.Threaded || copyRes.ConversationID == b.ConversationID || copyRes.WorkItemID == b.WorkItemID {
		t.Errorf("same Message-ID, other content, in a second mailbox: %+v, want a new conversation and work item, not %d and %d", copyRes, b.ConversationID, b.WorkItemID)
	}
}

func testWorkItemReuse(t *testing.T, s store.Store) {
	mb := newMailbox(t, s, "support", store.Inbound)
	agent := newAgent(t, s, "alice")
	state := func(id int64) store.WorkItem {
		t.Helper()
		return getWorkItem(t, s, id)
	}

	first := ingest(t, s, mail(mb, "imap:1:1", "m1@x", "Question"))
	second := ingest(t, s, reply(mail(mb, "imap:1:2", "m2@x", "Re: Question"), "m1@x"))
	if second.WorkItemID != first.WorkItemID {
		t.Fatalf("follow-up got work item %d, want the open one %d", second.WorkItemID, first.WorkItemID)
	}
	w := state(first.WorkItemID)
	if w.MessageID != second.MessageID || w.State != store.StateQueued || w.Subject != "Re: Question" {
		t.Errorf("work item after follow-up = %+v, want it to point at the follow-up, still queued", w)
	}

	// While the item is open (assigned, on hold) a message joins it and changes nothing else.
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent.ID})
	third := ingest(t, s, reply(mail(mb, "imap:1:3", "m3@x", "Re: Question"), "m2@x"))
	w = state(first.WorkItemID)
	if third.WorkItemID != first.WorkItemID || w.State != store.StateAssigned || w.AssignedTo != agent.ID || w.MessageID != third.MessageID {
		t.Errorf("follow-up to an assigned work item: %+v, want the same work item still assigned to %d, pointing at it", w, agent.ID)
	}
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateAssigned}, To: store.StateOnHold})
	third2 := ingest(t, s, reply(mail(mb, "imap:1:31", "m31@x", "Re: Question"), "m3@x"))
	w = state(first.WorkItemID)
	if third2.WorkItemID != first.WorkItemID || w.State != store.StateOnHold || w.AssignedTo != agent.ID || w.MessageID != third2.MessageID {
		t.Errorf("follow-up to a work item on hold: %+v, want the same work item still on hold", w)
	}

	// A message to a done item reopens it: queued again, waiting a while for the agent who
	// had it (the classification's PreferredWait).
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateOnHold}, To: store.StateDone})
	before := state(first.WorkItemID)
	if before.DoneAt.IsZero() {
		t.Errorf("done item has no DoneAt")
	}
	waitPast(before.UpdatedAt)
	start := time.Now()
	in := reply(mail(mb, "imap:1:4", "m4@x", "Re: Question"), "m31@x")
	in.Classification = &store.Classification{PreferredWait: time.Hour}
	fourth := ingest(t, s, in)
	w = state(first.WorkItemID)
	if fourth.WorkItemID != first.WorkItemID || w.State != store.StateQueued || w.MessageID != fourth.MessageID {
		t.Errorf("answer to a done work item: %+v, want the same work item queued again", w)
	}
	if w.AssignedTo != 0 || w.PreferredAgent != agent.ID || !w.DoneAt.IsZero() {
		t.Errorf("reopened item: assigned to %d, preferred agent %d, done at %v; want unassigned, preferring %d, not done",
			w.AssignedTo, w.PreferredAgent, w.DoneAt, agent.ID)
	}
	if w.PreferredUntil.Before(start.Add(time.Hour-time.Second)) || w.PreferredUntil.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("PreferredUntil = %v, want about an hour after %v", w.PreferredUntil, start)
	}
	if w.ReceivedAt.Before(before.ReceivedAt) || !w.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("reopened work item times went back: received %v updated %v", w.ReceivedAt, w.UpdatedAt)
	}
	events, err := s.Events(t.Context(), first.WorkItemID)
	must(t, "Events", err)
	if last := events[len(events)-1]; last.Kind != "reopen" || last.From != store.StateDone || last.To != store.StateQueued {
		t.Errorf("last event = %+v, want the reopening from done to queued", last)
	}

	// A message to a pending item reopens it; without PreferredWait no agent is preferred.
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent.ID})
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateAssigned}, To: store.StatePending})
	fifth := ingest(t, s, reply(mail(mb, "imap:1:5", "m5@x", "Re: Question"), "m4@x"))
	w = state(first.WorkItemID)
	if fifth.WorkItemID != first.WorkItemID || fifth.ConversationID != first.ConversationID || w.State != store.StateQueued ||
		w.MessageID != fifth.MessageID || w.AssignedTo != 0 || w.PreferredAgent != 0 {
		t.Errorf("message to a pending work item: %+v, want the same work item queued, unassigned, no preferred agent", w)
	}

	// A cancelled item is reopened too.
	change(t, s, store.Change{WorkItemID: first.WorkItemID, From: []string{store.StateQueued}, To: store.StateCancelled})
	sixth := ingest(t, s, reply(mail(mb, "imap:1:6", "m6@x", "Re: Question"), "m5@x"))
	if w := state(first.WorkItemID); sixth.WorkItemID != first.WorkItemID || w.State != store.StateQueued || w.MessageID != sixth.MessageID {
		t.Errorf("message to a cancelled work item: %+v, want the same work item queued", w)
	}
	if n := len(listAll(t, s)); n != 1 {
		t.Errorf("%d work items, want 1: every message of the conversation is on the same item", n)
	}
}

func testCursorAndAcks(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	other := newMailbox(t, s, "sales", store.Inbound)

	_, err := s.Cursor(ctx, mb.ID)
	wantErr(t, "Cursor before any", err, store.ErrNotFound)
	must(t, "SetCursor", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:10"}))
	must(t, "SetCursor again", s.SetCursor(ctx, store.Cursor{MailboxID: mb.ID, Value: "1:11"}))
	c, err := s.Cursor(ctx, mb.ID)
	must(t, "Cursor", err)
	if c.Value != "1:11" || c.MailboxID != mb.ID {
		t.Errorf("Cursor = %+v, want 1:11", c)
	}
	_, err = s.Cursor(ctx, other.ID)
	wantErr(t, "Cursor of another mailbox", err, store.ErrNotFound)

	for _, id := range []string{"imap:1:3", "imap:1:1", "imap:1:2"} {
		ingest(t, s, mail(mb, id, id+"@x", "Hi"))
	}
	ingest(t, s, mail(other, "imap:5:1", "o@x", "Hi"))
	pending := func(mbID int64) []string {
		t.Helper()
		p, err := s.PendingAcks(ctx, mbID)
		must(t, "PendingAcks", err)
		return p
	}
	if p := pending(mb.ID); len(p) != 3 || p[0] != "imap:1:3" || p[1] != "imap:1:1" || p[2] != "imap:1:2" {
		t.Errorf("PendingAcks = %v, want the three in storage order [imap:1:3 imap:1:1 imap:1:2]", p)
	}
	must(t, "MarkAcked", s.MarkAcked(ctx, mb.ID, "imap:1:1"))
	if p := pending(mb.ID); len(p) != 2 || p[0] != "imap:1:3" || p[1] != "imap:1:2" {
		t.Errorf("PendingAcks after ack = %v, want [imap:1:3 imap:1:2]", p)
	}
	if p := pending(other.ID); len(p) != 1 || p[0] != "imap:5:1" {
		t.Errorf("PendingAcks of the other mailbox = %v, want [imap:5:1]", p)
	}
	wantErr(t, "MarkAcked unknown", s.MarkAcked(ctx, mb.ID, "imap:1:99"), store.ErrNotFound)
	wantErr(t, "MarkAcked in the wrong mailbox", s.MarkAcked(ctx, other.ID, "imap:1:3"), store.ErrNotFound)
	// A batch in one call, with one id repeated.
	must(t, "MarkAcked batch", s.MarkAcked(ctx, mb.ID, "imap:1:3", "imap:1:2", "imap:1:3"))
	if p := pending(mb.ID); len(p) != 0 {
		t.Errorf("PendingAcks after the batch ack = %v, want none", p)
	}
	wantErr(t, "MarkAcked batch with an unknown id", s.MarkAcked(ctx, mb.ID, "imap:1:2", "imap:1:98"), store.ErrNotFound)
}

func testCountMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newMailbox(t, s, "a", store.Inbound)
	b := newMailbox(t, s, "b", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	ra := ingest(t, s, mail(a, "imap:1:1", "1@x", "one"))
	ingest(t, s, mail(a, "imap:1:2", "2@x", "two"))
	ingest(t, s, mail(b, "imap:1:1", "3@x", "three"))
	_, err := s.CreateReply(ctx, store.ReplyInput{
		WorkItemID: ra.WorkItemID,
		Message:    store.Message{MailboxID: out.ID, MessageID: "r@x", Subject: "Re: one"},
		Raw:        []byte("Subject: Re: one\r\n\r\nok\r\n"),
		From:       "out@example.com",
		Recipients: []string{"customer@example.org"},
		NewState:   store.StateDone,
	})
	must(t, "CreateReply", err)
	for _, tc := range []struct {
		id   int64
		want int
	}{{a.ID, 2}, {b.ID, 1}, {out.ID, 1}, {0, 4}, {b.ID + 1000, 0}} {
		n, err := s.CountMessages(ctx, tc.id)
		must(t, "CountMessages", err)
		if n != tc.want {
			t.Errorf("CountMessages(%d) = %d, want %d", tc.id, n, tc.want)
		}
	}
}

func testConversationMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	day := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	// Stored out of order: the later message (by Date) arrives first.
	later := mail(mb, "imap:1:1", "later@x", "Re: Help")
	later.Message.Date = day.Add(2 * time.Hour)
	later.Message.InReplyTo = "first@x"
	first := mail(mb, "imap:1:2", "first@x", "Help")
	first.Message.Date = day
	first.Message.Attachments = []store.Attachment{{Filename: "a.txt", ContentType: "text/plain", Data: []byte("hello")}}
	rl := ingest(t, s, later)
	rf := ingest(t, s, first)
	// "first" names no known message, so it starts its own conversation; a reply to both
	// brings them together only through threading, which is not the point here: put the
	// agent reply in first's conversation.
	rep, err := s.CreateReply(ctx, store.ReplyInput{
		WorkItemID: rf.WorkItemID,
		Message:    store.Message{MailboxID: out.ID, MessageID: "reply@x", Subject: "Re: Help", Date: day.Add(time.Hour)},
		Raw:        []byte("x"),
		From:       "out@example.com",
		Recipients: []string{"customer@example.org"},
		NewState:   store.StateDone,
	})
	must(t, "CreateReply", err)
	// The customer answers the agent: it threads through the outbound Message-ID.
	answer := reply(mail(mb, "imap:1:3", "answer@x", "Re: Re: Help"), "reply@x", "first@x", "reply@x")
	answer.Message.Date = day.Add(3 * time.Hour)
	ra := ingest(t, s, answer)
	if ra.ConversationID != rf.ConversationID || !ra.Threaded {
		t.Fatalf("answer to the agent's reply: %+v, want conversation %d", ra, rf.ConversationID)
	}
	if rl.ConversationID == rf.ConversationID {
		t.Fatal("message that arrived before its parent joined a conversation that did not exist yet")
	}

	msgs, err := s.ConversationMessages(ctx, rf.ConversationID)
	must(t, "ConversationMessages", err)
	var got []int64
	for _, m := range msgs {
		got = append(got, m.ID)
	}
	equalIDs(t, "ConversationMessages by date", got, []int64{rf.MessageID, rep.MessageID, ra.MessageID})
	want := max(rf.MessageID, rep.MessageID, ra.MessageID)
	if latest, err := s.LatestMessageID(ctx, rf.ConversationID); err != nil || latest != want {
		t.Errorf("LatestMessageID = %d, %v; want %d", latest, err, want)
	}
	if latest, err := s.LatestMessageID(ctx, rf.ConversationID+1000); err != nil || latest != 0 {
		t.Errorf("LatestMessageID of no conversation = %d, %v; want 0", latest, err)
	}
	if len(msgs) == 3 {
		if msgs[1].Direction != store.Outbound || msgs[1].MailboxID != out.ID || msgs[1].ConversationID != rf.ConversationID {
			t.Errorf("agent reply = %+v, want outbound from mailbox %d in the conversation", msgs[1], out.ID)
		}
		if len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Filename != "a.txt" || msgs[0].Attachments[0].Data != nil {
			t.Errorf("first message attachments = %+v, want a.txt metadata without data", msgs[0].Attachments)
		}
	}
}

// testCountMessagesSince: what a mailbox ingested since a moment (an administrator's
// "ingested today"); replies are not ingested messages.
func testCountMessagesSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newMailbox(t, s, "a", store.Inbound)
	b := newMailbox(t, s, "b", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	first := ingest(t, s, mail(a, "imap:1:1", "1@x", "one"))
	m1, err := s.Message(ctx, first.MessageID)
	must(t, "Message", err)
	waitPast(m1.CreatedAt)
	second := ingest(t, s, mail(a, "imap:1:2", "2@x", "two"))
	m2, err := s.Message(ctx, second.MessageID)
	must(t, "Message", err)
	ingest(t, s, mail(b, "imap:1:1", "3@x", "three"))
	_, err = s.CreateReply(ctx, store.ReplyInput{
		WorkItemID: first.WorkItemID,
		Message:    store.Message{MailboxID: out.ID, MessageID: "r@x", Subject: "Re: one"},
		Raw:        []byte("Subject: Re: one\r\n\r\nok\r\n"),
		From:       "out@example.com",
		Recipients: []string{"customer@example.org"},
	})
	must(t, "CreateReply", err)
	for _, tc := range []struct {
		what  string
		id    int64
		since time.Time
		want  int
	}{
		{"a since the first", a.ID, m1.CreatedAt, 2},
		{"a since the second (at counts)", a.ID, m2.CreatedAt, 1},
		{"a since just after the second", a.ID, m2.CreatedAt.Add(time.Microsecond), 0},
		{"a since ever", a.ID, time.Time{}, 2},
		{"b", b.ID, m1.CreatedAt, 1},
		{"all mailboxes", 0, m1.CreatedAt, 3},
		{"all mailboxes in another zone", 0, m2.CreatedAt.In(time.FixedZone("X", -7*3600)), 2},
		{"out (replies are not ingested)", out.ID, time.Time{}, 0},
		{"missing mailbox", b.ID + 1000, time.Time{}, 0},
	} {
		n, err := s.CountMessagesSince(ctx, tc.id, tc.since)
		must(t, "CountMessagesSince "+tc.what, err)
		if n != tc.want {
			t.Errorf("CountMessagesSince %s = %d, want %d", tc.what, n, tc.want)
		}
	}
}
