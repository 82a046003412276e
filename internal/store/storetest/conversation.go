package storetest

import (
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testAutomaticMail: automatic mail that starts a conversation is recorded as done, not
// queued (unless a rule routed it); automatic mail in a conversation changes nothing of
// its work item, done or open.
func testAutomaticMail(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)

	vacation := mail(mb, "imap:1:1", "ooo@x", "Out of office")
	vacation.Message.Automatic = "Auto-Submitted: auto-replied"
	res := ingest(t, s, vacation)
	wi, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if wi.State != store.StateDone || wi.StateReason != store.CloseAutomatic {
		t.Errorf("automatic mail starting a conversation: state %s (%q), want done (automatic)", wi.State, wi.StateReason)
	}
	m, err := s.Message(ctx, res.MessageID)
	must(t, "Message", err)
	if m.Automatic != "Auto-Submitted: auto-replied" {
		t.Errorf("message automatic = %q", m.Automatic)
	}

	routed := mail(mb, "imap:1:2", "list@x", "Newsletter")
	routed.Message.Automatic = "a mailing list message (List-Id)"
	routed.Classification = &store.Classification{RouteAutomatic: true}
	if wi, _ := s.WorkItem(ctx, ingest(t, s, routed).WorkItemID); wi.State != store.StateQueued {
		t.Errorf("automatic mail a rule routed: state %s, want queued", wi.State)
	}

	// A customer's conversation, done; then an auto-reply in it.
	first := ingest(t, s, mail(mb, "imap:1:3", "q@x", "Question"))
	must(t, "close", closeItem(t, s, first.WorkItemID))
	auto := reply(mail(mb, "imap:1:4", "auto@x", "Automatic reply: Question"), "q@x")
	auto.Message.Automatic = "Auto-Submitted: auto-replied"
	res = ingest(t, s, auto)
	if res.WorkItemID != first.WorkItemID || res.ConversationID != first.ConversationID {
		t.Errorf("the auto-reply went to item %d, conversation %d; want %d, %d", res.WorkItemID, res.ConversationID, first.WorkItemID, first.ConversationID)
	}
	wi, err = s.WorkItem(ctx, first.WorkItemID)
	must(t, "WorkItem", err)
	if wi.State != store.StateDone || wi.MessageID != first.MessageID {
		t.Errorf("after an auto-reply the item is %s with message %d, want done with the customer's message %d", wi.State, wi.MessageID, first.MessageID)
	}
}

// closeItem marks a work item done through the store's conditional change.
func closeItem(t *testing.T, s store.Store, id int64) error {
	t.Helper()
	_, err := s.ApplyChanges(t.Context(), []store.Change{{WorkItemID: id, From: []string{store.StateQueued}, To: store.StateDone,
		Event: store.Event{Kind: "close"}}})
	return err
}

// testBounce: a DSN naming our reply's Message-ID marks that reply's outbox item bounced
// with the diagnostic, joins the conversation, leaves the work item as it was and creates
// none; the address is remembered. A DSN about a message we never sent is just automatic.
func testBounce(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	first := ingest(t, s, mail(mb, "imap:1:1", "lamp@x", "Broken lamp"))
	ob, err := s.CreateReply(ctx, store.ReplyInput{
		WorkItemID: first.WorkItemID,
		Message:    store.Message{MailboxID: out.ID, MessageID: "reply-1@example.com", Subject: "Re: Broken lamp"},
		Raw:        []byte("Message-ID: <reply-1@example.com>\r\nSubject: Re: Broken lamp\r\n\r\nok\r\n"),
		From:       "out@example.com",
		Recipients: []string{"customer@example.org"},
		NewState:   store.StateDone,
	})
	must(t, "CreateReply", err)
	must(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, ob.ID, ob.CreatedAt))
	before := len(listAll(t, s))

	dsn := mail(mb, "imap:1:2", "dsn-1@mx.example.org", "Undelivered Mail Returned to Sender")
	dsn.Message.Automatic = "a delivery status notification"
	dsn.Bounce = &store.Bounce{OriginalMessageID: "reply-1@example.com", Recipients: []store.BounceRecipient{
		{Address: "Customer@example.org", Action: "failed", Status: "5.1.1", Diagnostic: "550 5.1.1 user unknown"}}}
	res := ingest(t, s, dsn)
	if res.ConversationID != first.ConversationID || res.WorkItemID != first.WorkItemID {
		t.Errorf("the bounce joined conversation %d / item %d, want %d / %d", res.ConversationID, res.WorkItemID, first.ConversationID, first.WorkItemID)
	}
	got, err := s.OutboxItem(ctx, ob.ID)
	must(t, "OutboxItem", err)
	if got.State != store.OutboxBounced || got.LastError != "bounced: 550 5.1.1 user unknown" {
		t.Errorf("outbox after the bounce: %s %q", got.State, got.LastError)
	}
	wi, err := s.WorkItem(ctx, first.WorkItemID)
	must(t, "WorkItem", err)
	if wi.State != store.StateDone {
		t.Errorf("the bounce reopened the item: %s", wi.State)
	}
	if after := len(listAll(t, s)); after != before {
		t.Errorf("the bounce made %d new work items", after-before)
	}
	b, err := s.AddressBounce(ctx, "customer@example.org")
	must(t, "AddressBounce", err)
	if b.Status != "5.1.1" || b.Bounces != 1 {
		t.Errorf("address bounce = %+v", b)
	}
	_, err = s.AddressBounce(ctx, "nobody@example.org")
	wantErr(t, "AddressBounce unknown", err, store.ErrNotFound)

	// A report on a message we never sent: automatic mail of its own, done.
	stray := mail(mb, "imap:1:3", "dsn-2@mx.example.org", "Undelivered")
	stray.Message.Automatic = "a delivery status notification"
	stray.Bounce = &store.Bounce{OriginalMessageID: "never-ours@example.net"}
	if wi, _ := s.WorkItem(ctx, ingest(t, s, stray).WorkItemID); wi.State != store.StateDone || wi.StateReason != store.CloseAutomatic {
		t.Errorf("a stray bounce: item %s (%q), want done (automatic)", wi.State, wi.StateReason)
	}
}

// testNotes: notes are stored in order with their mentions, listed for the mentioned user
// with the item's subject; a note on a missing item is ErrNotFound.
func testNotes(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	res := ingest(t, s, mail(mb, "imap:1:1", "n@x", "Refund?"))
	ana, err := s.CreateUser(ctx, store.User{Username: "ana", DisplayName: "Ana", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser", err)
	sam, err := s.CreateUser(ctx, store.User{Username: "sam", Role: store.RoleSupervisor, PasswordHash: "x"})
	must(t, "CreateUser", err)
	n1, err := s.AddNote(ctx, store.Note{WorkItemID: res.WorkItemID, AuthorID: ana.ID, Text: "@sam refund?", Mentions: []int64{sam.ID}})
	must(t, "AddNote", err)
	_, err = s.AddNote(ctx, store.Note{WorkItemID: res.WorkItemID, AuthorID: sam.ID, Text: "yes"})
	must(t, "AddNote", err)
	notes, err := s.Notes(ctx, res.WorkItemID)
	must(t, "Notes", err)
	if len(notes) != 2 || notes[0].ID != n1.ID || notes[0].AuthorName != "Ana" || notes[1].AuthorName != "sam" ||
		len(notes[0].Mentions) != 1 || notes[0].Mentions[0] != sam.ID || len(notes[1].Mentions) != 0 {
		t.Errorf("notes = %+v", notes)
	}
	ms, err := s.Mentions(ctx, sam.ID, 10)
	must(t, "Mentions", err)
	if len(ms) != 1 || ms[0].Note.Text != "@sam refund?" || ms[0].Subject != "Refund?" || ms[0].State != store.StateQueued {
		t.Errorf("sam's mentions = %+v", ms)
	}
	if ms, _ := s.Mentions(ctx, ana.ID, 10); len(ms) != 0 {
		t.Errorf("ana's mentions = %+v", ms)
	}
	_, err = s.AddNote(ctx, store.Note{WorkItemID: res.WorkItemID + 1000, AuthorID: ana.ID, Text: "x"})
	wantErr(t, "AddNote on a missing item", err, store.ErrNotFound)
}
