package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// privacyFixture is a finished conversation in a queue: the customer's email with an
// attachment, a note, and our sent reply.
type privacyFixture struct {
	mb, out store.Mailbox
	queue   store.Queue
	in      store.InboundMessage
	res     store.IngestResult
	attID   int64
}

func newPrivacyFixture(t *testing.T, s store.Store) privacyFixture {
	t.Helper()
	ctx := t.Context()
	f := privacyFixture{mb: newMailbox(t, s, "support", store.Inbound), out: newMailbox(t, s, "out", store.Outbound)}
	var err error
	f.queue, err = s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	must(t, "AssignMailbox", s.AssignMailbox(ctx, f.mb.ID, f.queue.ID))
	f.in = mail(f.mb, "imap:1:1", "order-9@example.org", "Order 9 broken")
	f.in.Message.TextBody = "My parcel zebrafinch arrived broken."
	f.in.Message.Attachments = []store.Attachment{{Filename: "photo.jpg", ContentType: "image/jpeg", Size: 3, Data: []byte("jpg")}}
	f.res = ingest(t, s, f.in)
	m, err := s.Message(ctx, f.res.MessageID)
	must(t, "Message", err)
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments stored: %d, want 1", len(m.Attachments))
	}
	f.attID = m.Attachments[0].ID
	agent := newAgent(t, s, "privacy-agent")
	_, err = s.AddNote(ctx, store.Note{WorkItemID: f.res.WorkItemID, AuthorID: agent.ID, Text: "customer Kim called"})
	must(t, "AddNote", err)
	ob, err := s.CreateReply(ctx, store.ReplyInput{WorkItemID: f.res.WorkItemID, UserID: agent.ID,
		Message: store.Message{MailboxID: f.out.ID, MessageID: "re-9@example.com", Subject: "Re: Order 9 broken",
			To: "customer@example.org", TextBody: "Sorry about it"},
		Raw:  []byte("Message-ID: <re-9@example.com>\r\nSubject: Re: Order 9 broken\r\n\r\nSorry about it\r\n"),
		From: "out@example.com", Recipients: []string{"customer@example.org"}, NewState: store.StateDone})
	must(t, "CreateReply", err)
	must(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, ob.ID, ob.CreatedAt))
	return f
}

// due lists the conversations of the fixture's queue due for retention at now+ahead.
func (f privacyFixture) due(t *testing.T, s store.Store, ahead time.Duration, anonymise bool) []int64 {
	t.Helper()
	ids, err := s.RetentionDue(t.Context(), f.queue.ID, time.Now().Add(ahead), anonymise, 10)
	must(t, "RetentionDue", err)
	return ids
}

// testRetentionDelete: a finished conversation past its time is deleted whole, and the
// mailbox does not ingest its email again, by the same source or through a new one.
func testRetentionDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newPrivacyFixture(t, s)
	// An open conversation is never due.
	open := ingest(t, s, mail(f.mb, "imap:1:2", "open-1@example.org", "Still open"))

	if got := f.due(t, s, -time.Hour, false); len(got) != 0 {
		t.Errorf("due an hour ago: %v, want none (the conversation finished just now)", got)
	}
	equalIDs(t, "due in an hour", f.due(t, s, time.Hour, false), []int64{f.res.ConversationID})

	c, err := s.DeleteConversation(ctx, f.res.ConversationID)
	must(t, "DeleteConversation", err)
	want := store.ErasureCounts{Conversations: 1, Messages: 2, Attachments: 1, WorkItems: 1, Notes: 1, Outbox: 1}
	if c != want {
		t.Errorf("DeleteConversation counts %+v, want %+v", c, want)
	}
	_, err = s.WorkItem(ctx, f.res.WorkItemID)
	wantErr(t, "WorkItem after delete", err, store.ErrNotFound)
	_, err = s.Message(ctx, f.res.MessageID)
	wantErr(t, "Message after delete", err, store.ErrNotFound)
	_, err = s.RawMessage(ctx, f.res.MessageID)
	wantErr(t, "RawMessage after delete", err, store.ErrNotFound)
	_, err = s.Attachment(ctx, f.attID)
	wantErr(t, "Attachment after delete", err, store.ErrNotFound)
	msgs, err := s.ConversationMessages(ctx, f.res.ConversationID)
	if err == nil && len(msgs) > 0 {
		t.Errorf("ConversationMessages after delete: %d messages", len(msgs))
	}
	equalIDs(t, "search after delete", search(t, s, "zebrafinch"), nil)
	equalIDs(t, "work items after delete", ids(listAll(t, s)), []int64{open.WorkItemID})
	items, err := s.OutboxForWorkItem(ctx, f.res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(items) != 0 {
		t.Errorf("outbox after delete: %+v", items)
	}
	_, err = s.DeleteConversation(ctx, f.res.ConversationID)
	wantErr(t, "DeleteConversation again", err, store.ErrNotFound)

	// The source is still known: fetched again, it is a duplicate and nothing is stored.
	again, err := s.IngestMessage(ctx, f.in)
	must(t, "IngestMessage again", err)
	if !again.Duplicate || again.WorkItemID != 0 {
		t.Errorf("the deleted email fetched again: %+v, want a duplicate with no work item", again)
	}
	m, err := s.MessageBySource(ctx, f.mb.ID, "imap:1:1")
	must(t, "MessageBySource of a deleted message", err)
	if m.ID != 0 || m.SourceID != "imap:1:1" {
		t.Errorf("MessageBySource of a deleted message = %+v, want ID 0 and the source", m)
	}
	must(t, "MarkAcked of a deleted message", s.MarkAcked(ctx, f.mb.ID, "imap:1:1"))
	// The same email through a new source identity (UIDVALIDITY changed) is known too.
	moved := f.in
	moved.Message.SourceID = "imap:2:1"
	again, err = s.IngestMessage(ctx, moved)
	must(t, "IngestMessage through a new source", err)
	if !again.Duplicate {
		t.Errorf("the deleted email through a new source: %+v, want a duplicate", again)
	}
	if n, err := s.CountMessages(ctx, f.mb.ID); err != nil || n != 1 {
		t.Errorf("CountMessages = %d, %v; want 1 (the open conversation's)", n, err)
	}
	pending, err := s.PendingAcks(ctx, f.mb.ID)
	must(t, "PendingAcks", err)
	for _, p := range pending {
		if _, err := s.MessageBySource(ctx, f.mb.ID, p); err != nil {
			t.Errorf("pending source %s cannot be read: %v", p, err)
		}
	}
	// A new email still comes in.
	ingest(t, s, mail(f.mb, "imap:2:2", "new-1@example.org", "New question"))
}

// testRetentionAnonymise: an anonymised conversation keeps its skeleton (work item, state,
// queue, times, events) and loses its content and the customer's identity.
func testRetentionAnonymise(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newPrivacyFixture(t, s)
	before := getWorkItem(t, s, f.res.WorkItemID)
	events, err := s.Events(ctx, f.res.WorkItemID)
	must(t, "Events", err)

	equalIDs(t, "due", f.due(t, s, time.Hour, true), []int64{f.res.ConversationID})
	c, err := s.AnonymiseConversation(ctx, f.res.ConversationID)
	must(t, "AnonymiseConversation", err)
	if c.Messages != 2 || c.Attachments != 1 || c.Notes != 1 || c.WorkItems != 1 {
		t.Errorf("AnonymiseConversation counts %+v", c)
	}
	if got := f.due(t, s, time.Hour, true); len(got) != 0 {
		t.Errorf("due again after anonymising: %v, want none", got)
	}

	wi := getWorkItem(t, s, f.res.WorkItemID)
	if wi.State != store.StateDone || wi.QueueID != f.queue.ID || !wi.ReceivedAt.Equal(before.ReceivedAt) || !wi.DoneAt.Equal(before.DoneAt) {
		t.Errorf("anonymised item: state %s queue %d received %v done %v; want %s %d %v %v", wi.State, wi.QueueID, wi.ReceivedAt, wi.DoneAt,
			before.State, before.QueueID, before.ReceivedAt, before.DoneAt)
	}
	if wi.Subject != store.Anonymised || wi.FromAddr != store.Anonymised || wi.FromName != "" {
		t.Errorf("anonymised item shows subject %q, from %q <%s>", wi.Subject, wi.FromName, wi.FromAddr)
	}
	after, err := s.Events(ctx, f.res.WorkItemID)
	must(t, "Events", err)
	if len(after) != len(events) {
		t.Errorf("events after anonymising: %d, want %d", len(after), len(events))
	}
	msgs, err := s.ConversationMessages(ctx, f.res.ConversationID)
	must(t, "ConversationMessages", err)
	if len(msgs) != 2 {
		t.Fatalf("messages kept: %d, want 2", len(msgs))
	}
	for _, m := range msgs {
		text := strings.Join([]string{m.Subject, m.FromName, m.To, m.Cc, m.TextBody, m.HTMLBody}, "|")
		if strings.Contains(text, "Order") || strings.Contains(text, "customer@") || strings.Contains(text, "parcel") ||
			strings.Contains(text, "Sorry") || len(m.Attachments) != 0 || m.Subject != store.Anonymised {
			t.Errorf("anonymised message %d still holds %q, %d attachments", m.ID, text, len(m.Attachments))
		}
		if m.Direction == store.Inbound && m.FromAddr != store.Anonymised {
			t.Errorf("anonymised inbound message from %q", m.FromAddr)
		}
		_, err := s.RawMessage(ctx, m.ID)
		wantErr(t, "RawMessage of an anonymised message", err, store.ErrNotFound)
	}
	_, err = s.Attachment(ctx, f.attID)
	wantErr(t, "Attachment after anonymising", err, store.ErrNotFound)
	notes, err := s.Notes(ctx, f.res.WorkItemID)
	must(t, "Notes", err)
	if len(notes) != 0 {
		t.Errorf("notes after anonymising: %+v", notes)
	}
	equalIDs(t, "search after anonymising", search(t, s, "zebrafinch"), nil)
	equalIDs(t, "search for the customer after anonymising", search(t, s, "customer"), nil)

	// Fetched again, it is a duplicate.
	again, err := s.IngestMessage(ctx, f.in)
	must(t, "IngestMessage again", err)
	if !again.Duplicate {
		t.Errorf("the anonymised email fetched again: %+v, want a duplicate", again)
	}
	// A late answer of the customer threads into the anonymised conversation and reopens
	// it; once done again, it is due again, and anonymising it removes the new text.
	late := ingest(t, s, reply(mail(f.mb, "imap:1:7", "late-9@example.org", "Re: Order 9 broken"), "order-9@example.org"))
	if late.ConversationID != f.res.ConversationID {
		t.Fatalf("the late answer went to conversation %d, want %d", late.ConversationID, f.res.ConversationID)
	}
	wi = getWorkItem(t, s, late.WorkItemID)
	change(t, s, store.Change{WorkItemID: late.WorkItemID, From: []string{wi.State}, To: store.StateDone, Event: store.Event{Kind: "close"}})
	equalIDs(t, "due after a late answer", f.due(t, s, time.Hour, true), []int64{f.res.ConversationID})
	if _, err := s.AnonymiseConversation(ctx, f.res.ConversationID); err != nil {
		t.Fatalf("AnonymiseConversation again: %v", err)
	}
	equalIDs(t, "search for the late answer", search(t, s, "Hello"), nil)

	// Deleting it later (the queue switched to delete) still works.
	if _, err := s.DeleteConversation(ctx, f.res.ConversationID); err != nil {
		t.Errorf("DeleteConversation of an anonymised conversation: %v", err)
	}
}

// testErasure: erasing an address deletes every conversation whose customer it is (written
// by it, or started by us to it), its bookkeeping and drafts naming it, and leaves other
// customers' data; the audit event commits with it.
func testErasure(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newPrivacyFixture(t, s)
	second := ingest(t, s, mail(f.mb, "imap:1:2", "second@example.org", "Another question"))
	other := mail(f.mb, "imap:1:3", "other@example.org", "Somebody else")
	other.Message.FromAddr, other.Message.FromName = "other@example.net", "Other"
	o := ingest(t, s, other)
	agent := newAgent(t, s, "erasure-agent")
	nc, err := s.CreateOutbound(ctx, store.NewConversationInput{UserID: agent.ID, QueueID: f.queue.ID,
		Message: store.Message{MailboxID: f.out.ID, MessageID: "new-9@example.com", Subject: "Your refund",
			FromAddr: "out@example.com", To: "customer@example.org", TextBody: "Dear customer"},
		Raw:  []byte("Message-ID: <new-9@example.com>\r\nSubject: Your refund\r\n\r\nDear customer\r\n"),
		From: "out@example.com", Recipients: []string{"customer@example.org"}, Customer: "Customer@Example.org"})
	must(t, "CreateOutbound", err)
	// A draft on the other customer's item copies our customer in: it goes.
	_, err = s.SaveDraft(ctx, store.Draft{UserID: agent.ID, WorkItemID: o.WorkItemID, Text: "see", Cc: []string{"Customer@example.org"}})
	must(t, "SaveDraft", err)

	// Our reply bounced: the address has a bounce record, and the report joined the
	// conversation.
	dsn := mail(f.mb, "imap:1:9", "dsn-9@mx.example.org", "Undelivered Mail Returned to Sender")
	dsn.Message.FromAddr, dsn.Message.FromName, dsn.Message.Automatic = "mailer-daemon@mx.example.org", "Mail Delivery System", "dsn"
	dsn.Bounce = &store.Bounce{OriginalMessageID: "re-9@example.com",
		Recipients: []store.BounceRecipient{{Address: "customer@example.org", Action: "failed", Status: "5.1.1", Diagnostic: "550 5.1.1 user unknown"}}}
	ingest(t, s, dsn)
	_, err = s.AddressBounce(ctx, "customer@example.org")
	must(t, "AddressBounce", err)

	preview, err := s.ErasureOf(ctx, " CUSTOMER@example.org ")
	must(t, "ErasureOf", err)
	if preview.Conversations != 3 || preview.WorkItems != 3 || preview.Messages != 5 || preview.Attachments != 1 || preview.Drafts != 1 || preview.Bounces != 1 {
		t.Errorf("ErasureOf = %+v, want 3 conversations, 3 work items, 5 messages, 1 attachment, 1 draft, 1 bounce record", preview)
	}
	if n := len(listAll(t, s)); n != 4 {
		t.Fatalf("a preview changed something: %d work items, want 4", n)
	}

	got, err := s.EraseAddress(ctx, "customer@example.org", func(c store.ErasureCounts) store.AuditEvent {
		return store.AuditEvent{Actor: "ana", Action: "erasure", Object: "address-sha256:x", New: fmt.Sprintf("%d conversations", c.Conversations)}
	})
	must(t, "EraseAddress", err)
	if got != preview {
		t.Errorf("EraseAddress = %+v, want the preview %+v", got, preview)
	}
	equalIDs(t, "work items left", ids(listAll(t, s)), []int64{o.WorkItemID})
	for _, id := range []int64{f.res.WorkItemID, second.WorkItemID, nc.WorkItemID} {
		_, err := s.WorkItem(ctx, id)
		wantErr(t, fmt.Sprintf("erased work item %d", id), err, store.ErrNotFound)
	}
	_, err = s.Draft(ctx, agent.ID, o.WorkItemID)
	wantErr(t, "draft naming the address", err, store.ErrNotFound)
	_, err = s.AddressBounce(ctx, "customer@example.org")
	wantErr(t, "bounce record of the address", err, store.ErrNotFound)
	events, err := s.SearchAudit(ctx, store.AuditFilter{Action: "erasure"})
	must(t, "SearchAudit", err)
	if len(events) != 1 || events[0].New != "3 conversations" || events[0].Actor != "ana" {
		t.Errorf("erasure audit: %+v", events)
	}
	after, err := s.ErasureOf(ctx, "customer@example.org")
	must(t, "ErasureOf after", err)
	if after != (store.ErasureCounts{}) {
		t.Errorf("ErasureOf after erasure = %+v, want nothing", after)
	}
	// The erased customer's email fetched again is not stored again.
	again, err := s.IngestMessage(ctx, f.in)
	must(t, "IngestMessage again", err)
	if !again.Duplicate {
		t.Errorf("an erased email fetched again: %+v, want a duplicate", again)
	}
}

// testAuditSearch: the audit log filters by free text, action, actor, object and time,
// pages, counts, and takes any text as plain text.
func testAuditSearch(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	add := func(min int, actor, action, object, old, new string) {
		t.Helper()
		must(t, "AddAudit", s.AddAudit(ctx, store.AuditEvent{At: base.Add(time.Duration(min) * time.Minute),
			Actor: actor, Action: action, Object: object, Old: old, New: new}))
	}
	add(0, "ana", "login.failure", "user:ana", "", "from 10.0.0.1")
	add(1, "ana", "login.success", "user:ana", "", "")
	add(2, "bo", "mailbox.create", "mailbox:3", "", `{"name":"Sales_100%"}`)
	add(3, "system", "retention.delete", "queue:1", "", `{"conversations":2}`)
	add(4, "bo", "login.failure", "user:bo", "", "from 10.0.0.2")

	list := func(f store.AuditFilter) []string {
		t.Helper()
		ev, err := s.SearchAudit(ctx, f)
		must(t, "SearchAudit", err)
		n, err := s.CountAudit(ctx, f)
		must(t, "CountAudit", err)
		var out []string
		for _, e := range ev {
			out = append(out, e.Actor+" "+e.Action)
		}
		if f.Limit == 0 && n != len(out) {
			t.Errorf("CountAudit(%+v) = %d, listed %d", f, n, len(out))
		}
		return out
	}
	for _, tc := range []struct {
		f    store.AuditFilter
		want string
	}{
		{store.AuditFilter{Query: "login.failure"}, "[bo login.failure ana login.failure]"},
		{store.AuditFilter{Query: "LOGIN.FAIL"}, "[bo login.failure ana login.failure]"},
		{store.AuditFilter{Query: "10.0.0.1"}, "[ana login.failure]"},
		{store.AuditFilter{Query: "mailbox:3"}, "[bo mailbox.create]"},
		{store.AuditFilter{Query: "100%"}, "[bo mailbox.create]"},
		{store.AuditFilter{Query: "%"}, "[bo mailbox.create]"},
		{store.AuditFilter{Query: "_"}, "[bo mailbox.create]"},
		{store.AuditFilter{Action: "login.failure", Actor: "ana"}, "[ana login.failure]"},
		{store.AuditFilter{Actor: "system"}, "[system retention.delete]"},
		{store.AuditFilter{Object: "user:ana"}, "[ana login.success ana login.failure]"},
		{store.AuditFilter{From: base.Add(time.Minute), To: base.Add(3 * time.Minute)}, "[bo mailbox.create ana login.success]"},
		{store.AuditFilter{Limit: 2, Offset: 1}, "[system retention.delete bo mailbox.create]"},
		{store.AuditFilter{Query: strings.Repeat("a%", 25000)}, "[]"},
	} {
		if got := fmt.Sprint(list(tc.f)); got != tc.want {
			t.Errorf("SearchAudit(%.80v) = %s, want %s", fmt.Sprintf("%+v", tc.f), got, tc.want)
		}
	}
	n, err := s.CountAudit(ctx, store.AuditFilter{Query: "login", Limit: 1})
	must(t, "CountAudit", err)
	if n != 3 {
		t.Errorf("CountAudit(login) = %d, want 3", n)
	}
}
