package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// replyFixture is an inbound work item, an agent and an outbound mailbox to reply from.
type replyFixture struct {
	in    store.Mailbox
	out   store.Mailbox
	agent store.User
	res   store.IngestResult
}

func newReplyFixture(t *testing.T, s store.Store) replyFixture {
	t.Helper()
	f := replyFixture{
		in:  newMailbox(t, s, "support", store.Inbound),
		out: newMailbox(t, s, "smtp-out", store.Outbound),
	}
	var err error
	f.agent, err = s.CreateUser(t.Context(), store.User{Username: "alice", DisplayName: "Alice", Role: store.RoleAgent, PasswordHash: "h"})
	must(t, "CreateUser", err)
	f.res = ingest(t, s, mail(f.in, "imap:1:1", "q@example.org", "Question"))
	return f
}

// replyInput is a reply of the fixture's agent to its work item.
func (f replyFixture) replyInput(messageID string) store.ReplyInput {
	return store.ReplyInput{
		WorkItemID: f.res.WorkItemID,
		UserID:     f.agent.ID,
		Message: store.Message{
			MailboxID:  f.out.ID,
			MessageID:  messageID,
			InReplyTo:  "q@example.org",
			References: []string{"q@example.org"},
			Subject:    "Re: Question",
			FromName:   "Support",
			FromAddr:   "support@example.com",
			To:         "customer@example.org",
			TextBody:   "Here is the answer.",
		},
		Raw:        []byte("Message-ID: <" + messageID + ">\r\nSubject: Re: Question\r\n\r\nHere is the answer.\r\n"),
		From:       "support@example.com",
		Recipients: []string{"customer@example.org", "cc@example.org"},
	}
}

func testCreateReply(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	f := newReplyFixture(t, s)
	// The agent works on the item, whose SLA clock runs.
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	change(t, s, store.Change{WorkItemID: f.res.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned,
		AssignedTo: &f.agent.ID, SLADueAt: &due, SLARiskAt: ptr(due.Add(-10 * time.Minute))})
	if w := getWorkItem(t, s, f.res.WorkItemID); !w.SLADueAt.Equal(due) || w.SLARiskAt.IsZero() {
		t.Fatalf("SLA clock before the reply: due %v, at risk %v; want due %v", w.SLADueAt, w.SLARiskAt, due)
	}
	in := f.replyInput("r1@example.com")
	o, err := s.CreateReply(ctx, in)
	must(t, "CreateReply", err)
	if o.ID == 0 || o.MessageID == 0 || o.MailboxID != f.out.ID || o.WorkItemID != f.res.WorkItemID ||
		o.From != in.From || !slices.Equal(o.Recipients, in.Recipients) || !bytes.Equal(o.Raw, in.Raw) ||
		o.State != store.OutboxQueued || o.Attempts != 0 || o.LastError != "" || !o.SentAt.IsZero() {
		t.Errorf("CreateReply = %+v, want a queued outbox item for the reply", o)
	}
	recent(t, "NextAttemptAt", o.NextAttemptAt, start)
	recent(t, "CreatedAt", o.CreatedAt, start)

	got, err := s.OutboxItem(ctx, o.ID)
	must(t, "OutboxItem", err)
	if got.ID != o.ID || got.MessageID != o.MessageID || got.MailboxID != o.MailboxID ||
		got.WorkItemID != o.WorkItemID || got.From != o.From || !slices.Equal(got.Recipients, o.Recipients) ||
		!bytes.Equal(got.Raw, o.Raw) || got.State != store.OutboxQueued {
		t.Errorf("OutboxItem = %+v, want %+v", got, o)
	}
	sameTime(t, "OutboxItem NextAttemptAt", got.NextAttemptAt, o.NextAttemptAt)
	sameTime(t, "OutboxItem CreatedAt", got.CreatedAt, o.CreatedAt)

	m, err := s.Message(ctx, o.MessageID)
	must(t, "Message", err)
	if m.Direction != store.Outbound || m.ConversationID != f.res.ConversationID || m.MailboxID != f.out.ID ||
		m.MessageID != "r1@example.com" || m.Subject != "Re: Question" || m.SourceID != "" || m.Date.IsZero() {
		t.Errorf("stored reply = %+v, want an outbound message in the work item's conversation", m)
	}
	raw, err := s.RawMessage(ctx, o.MessageID)
	must(t, "RawMessage", err)
	if !bytes.Equal(raw, in.Raw) {
		t.Errorf("raw reply = %q, want %q", raw, in.Raw)
	}
	w, err := s.WorkItem(ctx, f.res.WorkItemID)
	must(t, "WorkItem", err)
	if w.State != store.StateDone || w.MessageID != f.res.MessageID || w.AssignedTo != f.agent.ID {
		t.Errorf("work item after reply = %+v, want done, assigned to the agent who replied, still pointing at the inbound message", w)
	}
	// The reply is the first response: the SLA clock stops.
	recent(t, "FirstResponseAt", w.FirstResponseAt, start)
	recent(t, "DoneAt", w.DoneAt, start)
	if !w.SLADueAt.IsZero() || !w.SLARiskAt.IsZero() {
		t.Errorf("SLA clock after the reply: due %v, at risk %v; want none", w.SLADueAt, w.SLARiskAt)
	}
	ev, err := s.Events(ctx, f.res.WorkItemID)
	must(t, "Events", err)
	if last := ev[len(ev)-1]; last.Kind != "reply" || last.From != store.StateAssigned || last.To != store.StateDone ||
		last.ActorID != f.agent.ID || last.Actor != "alice" {
		t.Errorf("last event = %+v, want alice's reply from assigned to done", last)
	}
	if p, _ := s.PendingAcks(ctx, f.out.ID); len(p) != 0 {
		t.Errorf("outbound reply waits for an acknowledgement: %v", p)
	}

	events, err := s.ListAudit(ctx, 10)
	must(t, "ListAudit", err)
	if len(events) != 1 || events[0].Actor != "alice" || events[0].Action != "workitem.reply" ||
		events[0].Object != "workitem:"+itoa(f.res.WorkItemID) {
		t.Errorf("audit events = %+v, want one workitem.reply by alice on workitem:%d", events, f.res.WorkItemID)
	}

	second, err := s.CreateReply(ctx, f.replyInput("r2@example.com"))
	must(t, "second CreateReply", err)
	list, err := s.OutboxForWorkItem(ctx, f.res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(list) != 2 || list[0].ID != o.ID || list[1].ID != second.ID {
		t.Errorf("OutboxForWorkItem = %d items, want [%d %d]", len(list), o.ID, second.ID)
	}
	if list, _ := s.OutboxForWorkItem(ctx, f.res.WorkItemID+1000); len(list) != 0 {
		t.Errorf("OutboxForWorkItem of a missing work item = %v, want none", list)
	}
	_, err = s.OutboxItem(ctx, second.ID+1000)
	wantErr(t, "OutboxItem missing", err, store.ErrNotFound)

	// The second reply leaves the first response as it was.
	if w2 := getWorkItem(t, s, f.res.WorkItemID); !w2.FirstResponseAt.Equal(w.FirstResponseAt) {
		t.Errorf("FirstResponseAt after a second reply = %v, want the first %v", w2.FirstResponseAt, w.FirstResponseAt)
	}

	// The customer answers the reply: it threads through the reply's Message-ID and the
	// done work item is queued again.
	ans := ingest(t, s, reply(mail(f.in, "imap:1:2", "a2@example.org", "Re: Re: Question"), "r1@example.com"))
	if !ans.Threaded || ans.ConversationID != f.res.ConversationID || ans.WorkItemID != f.res.WorkItemID {
		t.Errorf("answer to the reply = %+v, want conversation %d, work item %d", ans, f.res.ConversationID, f.res.WorkItemID)
	}
	if w, _ := s.WorkItem(ctx, f.res.WorkItemID); w.State != store.StateQueued {
		t.Errorf("work item after the customer's answer is %q, want queued", w.State)
	}
}

func testCreateReplyMissingWorkItem(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	in := f.replyInput("r1@example.com")
	in.WorkItemID = f.res.WorkItemID + 1000
	_, err := s.CreateReply(ctx, in)
	wantErr(t, "CreateReply to a missing work item", err, store.ErrNotFound)

	in = f.replyInput("r1@example.com")
	in.UserID = f.agent.ID + 1000
	_, err = s.CreateReply(ctx, in)
	wantErr(t, "CreateReply by a missing user", err, store.ErrNotFound)

	if n, _ := s.CountMessages(ctx, 0); n != 1 {
		t.Errorf("%d messages after failed replies, want only the inbound one", n)
	}
	if list, _ := s.OutboxForWorkItem(ctx, f.res.WorkItemID); len(list) != 0 {
		t.Errorf("failed replies left %d outbox items", len(list))
	}
	if events, _ := s.ListAudit(ctx, 10); len(events) != 0 {
		t.Errorf("failed replies left audit events: %+v", events)
	}
	if w, _ := s.WorkItem(ctx, f.res.WorkItemID); w.State != store.StateQueued || !w.FirstResponseAt.IsZero() {
		t.Errorf("work item after failed replies = %+v, want queued, unanswered", w)
	}
}

func testOutboxLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	a, err := s.CreateReply(ctx, f.replyInput("a@example.com"))
	must(t, "CreateReply a", err)
	b, err := s.CreateReply(ctx, f.replyInput("b@example.com"))
	must(t, "CreateReply b", err)
	now := a.NextAttemptAt.Add(time.Second)
	if b.NextAttemptAt.After(now) {
		now = b.NextAttemptAt.Add(time.Second)
	}
	lease := now.Add(time.Minute)

	claim := func(at time.Time, limit int) []int64 {
		t.Helper()
		items, err := s.ClaimOutbox(ctx, at, at.Add(time.Minute), limit)
		must(t, "ClaimOutbox", err)
		var out []int64
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	equalIDs(t, "claim before anything is due", claim(a.NextAttemptAt.Add(-time.Hour), 10), nil)

	items, err := s.ClaimOutbox(ctx, now, lease, 1)
	must(t, "ClaimOutbox", err)
	if len(items) != 1 || items[0].ID != a.ID || !bytes.Equal(items[0].Raw, a.Raw) ||
		!slices.Equal(items[0].Recipients, a.Recipients) || items[0].From != a.From {
		t.Fatalf("ClaimOutbox limit 1 = %+v, want the oldest item %d with its raw message", items, a.ID)
	}
	sameTime(t, "claimed NextAttemptAt", items[0].NextAttemptAt, lease)
	equalIDs(t, "claim again", claim(now, 10), []int64{b.ID})
	equalIDs(t, "claim while leased", claim(now, 10), nil)
	equalIDs(t, "claim after the lease", claim(lease.Add(time.Second), 10), []int64{a.ID, b.ID})

	// b fails for good; a fails once, then is sent.
	must(t, "MarkOutboxFailed", s.MarkOutboxFailed(ctx, b.ID, 5, "550 no such user"))
	got, err := s.OutboxItem(ctx, b.ID)
	must(t, "OutboxItem", err)
	if got.State != store.OutboxFailed || got.Attempts != 5 || got.LastError != "550 no such user" || !got.SentAt.IsZero() {
		t.Errorf("after failed: %+v, want failed, 5 attempts, the error", got)
	}
	next := lease.Add(time.Hour)
	must(t, "MarkOutboxRetry", s.MarkOutboxRetry(ctx, a.ID, 1, next, "451 try later"))
	got, err = s.OutboxItem(ctx, a.ID)
	must(t, "OutboxItem", err)
	if got.State != store.OutboxQueued || got.Attempts != 1 || got.LastError != "451 try later" {
		t.Errorf("after retry: %+v, want queued, 1 attempt, the error", got)
	}
	sameTime(t, "NextAttemptAt after retry", got.NextAttemptAt, next)
	equalIDs(t, "claim before the retry is due", claim(next.Add(-time.Second), 10), nil)
	equalIDs(t, "claim when the retry is due", claim(next, 10), []int64{a.ID})

	sentAt := next.Add(time.Second)
	must(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, a.ID, sentAt))
	got, err = s.OutboxItem(ctx, a.ID)
	must(t, "OutboxItem", err)
	if got.State != store.OutboxSent || got.Attempts != 2 {
		t.Errorf("after sent: %+v, want sent after 2 attempts", got)
	}
	sameTime(t, "SentAt", got.SentAt, sentAt)

	equalIDs(t, "claim after sent and failed", claim(next.Add(24*time.Hour), 10), nil)

	missing := b.ID + 1000
	wantErr(t, "MarkOutboxSent missing", s.MarkOutboxSent(ctx, missing, sentAt), store.ErrNotFound)
	wantErr(t, "MarkOutboxRetry missing", s.MarkOutboxRetry(ctx, missing, 1, next, "x"), store.ErrNotFound)
	wantErr(t, "MarkOutboxFailed missing", s.MarkOutboxFailed(ctx, missing, 1, "x"), store.ErrNotFound)
}

// testOutboxConcurrentClaims has several workers claim at once: every item is handed out
// exactly once.
func testOutboxConcurrentClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	const items = 24
	var latest time.Time
	for i := range items {
		o, err := s.CreateReply(ctx, f.replyInput("c"+itoa(int64(i))+"@example.com"))
		must(t, "CreateReply", err)
		latest = o.NextAttemptAt
	}
	now := latest.Add(time.Second)
	lease := now.Add(time.Hour)

	const workers = 6
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbox(ctx, now, lease, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					claimed[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ClaimOutbox: %v", err)
	}
	if len(claimed) != items {
		t.Errorf("%d distinct items claimed, want %d", len(claimed), items)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("outbox item %d claimed %d times, want once", id, n)
		}
	}
}

// testOutboxOutcome: a server that accepts some recipients, defers some (4xx) and refuses
// some for good (5xx). The reply's row is narrowed to the deferred recipients and retried;
// the delivered and the failed ones become rows of their own, with the server's words, so
// that nobody gets the message twice and the agent sees what happened to each.
func testOutboxOutcome(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	in := f.replyInput("split@example.com")
	in.Recipients = []string{"ana@example.org", "bob@example.org", "carol@example.org", "dave@example.org"}
	o, err := s.CreateReply(ctx, in)
	must(t, "CreateReply", err)
	now := o.NextAttemptAt.Add(time.Second)
	lease := now.Add(time.Minute)
	claimed, err := s.ClaimOutbox(ctx, now, lease, 10)
	must(t, "ClaimOutbox", err)
	if len(claimed) != 1 || claimed[0].ID != o.ID {
		t.Fatalf("claimed %+v, want item %d", claimed, o.ID)
	}

	at := now.Add(2 * time.Second)
	next := at.Add(30 * time.Second)
	must(t, "RecordOutboxOutcome", s.RecordOutboxOutcome(ctx, o.ID, store.OutboxOutcome{
		Attempts:      1,
		At:            at,
		Delivered:     []string{"ana@example.org", "carol@example.org"},
		Deferred:      []string{"dave@example.org"},
		DeferredError: "dave@example.org: 452 4.2.2 mailbox full",
		NextAttemptAt: next,
		Failed:        []string{"bob@example.org"},
		FailedError:   "bob@example.org: 550 5.1.1 no such user",
	}))
	list, err := s.OutboxForWorkItem(ctx, f.res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(list) != 3 {
		t.Fatalf("after the outcome the work item has %d outbox items, want 3 (deferred, delivered, failed): %+v", len(list), list)
	}
	deferred, delivered, failed := list[0], list[1], list[2]
	if deferred.ID != o.ID || deferred.State != store.OutboxQueued || !slices.Equal(deferred.Recipients, []string{"dave@example.org"}) ||
		deferred.Attempts != 1 || deferred.LastError != "dave@example.org: 452 4.2.2 mailbox full" || !deferred.SentAt.IsZero() {
		t.Errorf("the reply's own item = %+v, want it queued for dave only, 1 attempt, the 452", deferred)
	}
	sameTime(t, "deferred NextAttemptAt", deferred.NextAttemptAt, next)
	if delivered.State != store.OutboxSent || !slices.Equal(delivered.Recipients, []string{"ana@example.org", "carol@example.org"}) ||
		delivered.Attempts != 1 || delivered.LastError != "" {
		t.Errorf("delivered item = %+v, want sent to ana and carol after 1 attempt", delivered)
	}
	sameTime(t, "delivered SentAt", delivered.SentAt, at)
	if failed.State != store.OutboxFailed || !slices.Equal(failed.Recipients, []string{"bob@example.org"}) ||
		failed.Attempts != 1 || failed.LastError != "bob@example.org: 550 5.1.1 no such user" || !failed.SentAt.IsZero() {
		t.Errorf("failed item = %+v, want failed for bob with the server's words", failed)
	}
	for _, it := range list {
		if it.MessageID != o.MessageID || it.MailboxID != o.MailboxID || it.WorkItemID != o.WorkItemID ||
			it.From != o.From || !bytes.Equal(it.Raw, o.Raw) {
			t.Errorf("item %d = %+v, want the same reply (message %d from %s through mailbox %d)", it.ID, it, o.MessageID, o.From, o.MailboxID)
		}
		sameTime(t, fmt.Sprintf("item %d CreatedAt", it.ID), it.CreatedAt, o.CreatedAt)
	}
	for state, want := range map[string]int{store.OutboxQueued: 1, store.OutboxSent: 1, store.OutboxFailed: 1} {
		if n, err := s.CountOutbox(ctx, state); err != nil || n != want {
			t.Errorf("CountOutbox(%s) = %d, %v; want %d", state, n, err, want)
		}
	}

	// Only the deferred recipient is tried again, when the backoff is over.
	if items, err := s.ClaimOutbox(ctx, next.Add(-time.Second), next.Add(time.Minute), 10); err != nil || len(items) != 0 {
		t.Errorf("claim before the retry is due = %d items, %v; want none", len(items), err)
	}
	items, err := s.ClaimOutbox(ctx, next, next.Add(time.Minute), 10)
	must(t, "ClaimOutbox", err)
	if len(items) != 1 || items[0].ID != o.ID || !slices.Equal(items[0].Recipients, []string{"dave@example.org"}) {
		t.Fatalf("claim when the retry is due = %+v, want item %d for dave only", items, o.ID)
	}

	// The outcome must split the item's recipients exactly; otherwise nothing is written.
	for name, bad := range map[string]store.OutboxOutcome{
		"a recipient left out":    {Attempts: 2, Delivered: []string{}},
		"a stranger":              {Attempts: 2, Delivered: []string{"dave@example.org", "eve@example.org"}},
		"a recipient twice":       {Attempts: 2, Delivered: []string{"dave@example.org"}, Failed: []string{"dave@example.org"}},
		"someone already handled": {Attempts: 2, Delivered: []string{"ana@example.org"}},
		"deferred without a time": {Attempts: 2, Deferred: []string{"dave@example.org"}},
	} {
		if err := s.RecordOutboxOutcome(ctx, o.ID, bad); err == nil {
			t.Errorf("RecordOutboxOutcome with %s succeeded, want an error", name)
		}
	}
	wantErr(t, "RecordOutboxOutcome of a missing item", s.RecordOutboxOutcome(ctx, failed.ID+1000,
		store.OutboxOutcome{Attempts: 1, Delivered: []string{"x@example.org"}}), store.ErrNotFound)
	if err := s.RecordOutboxOutcome(ctx, delivered.ID, store.OutboxOutcome{Attempts: 2, Delivered: delivered.Recipients}); err == nil {
		t.Errorf("RecordOutboxOutcome of a sent item succeeded, want an error")
	}
	if got, _ := s.OutboxForWorkItem(ctx, f.res.WorkItemID); len(got) != 3 || got[0].State != store.OutboxQueued ||
		!slices.Equal(got[0].Recipients, []string{"dave@example.org"}) || got[0].Attempts != 1 || got[1].Attempts != 1 {
		t.Fatalf("refused outcomes changed the outbox: %+v", got)
	}

	// The retry reaches dave: the reply's own item is sent, nothing new is written.
	sentAt := next.Add(time.Second)
	must(t, "RecordOutboxOutcome delivered", s.RecordOutboxOutcome(ctx, o.ID, store.OutboxOutcome{
		Attempts: 2, At: sentAt, Delivered: []string{"dave@example.org"},
	}))
	got, err := s.OutboxItem(ctx, o.ID)
	must(t, "OutboxItem", err)
	if got.State != store.OutboxSent || got.Attempts != 2 || !slices.Equal(got.Recipients, []string{"dave@example.org"}) {
		t.Errorf("after the retry: %+v, want sent to dave after 2 attempts", got)
	}
	sameTime(t, "SentAt after the retry", got.SentAt, sentAt)
	if n, _ := s.CountOutbox(ctx, store.OutboxQueued); n != 0 {
		t.Errorf("%d items still queued, want none", n)
	}
	if list, _ := s.OutboxForWorkItem(ctx, f.res.WorkItemID); len(list) != 3 {
		t.Errorf("after the retry the work item has %d outbox items, want still 3", len(list))
	}

	// No deferred recipient: the item itself is sent and the refused ones split off.
	second, err := s.CreateReply(ctx, f.replyInput("split2@example.com"))
	must(t, "CreateReply", err)
	must(t, "RecordOutboxOutcome", s.RecordOutboxOutcome(ctx, second.ID, store.OutboxOutcome{
		Attempts: 1, At: sentAt, Delivered: []string{"cc@example.org"},
		Failed: []string{"customer@example.org"}, FailedError: "customer@example.org: 554 5.7.1 rejected",
	}))
	list, err = s.OutboxForWorkItem(ctx, f.res.WorkItemID)
	must(t, "OutboxForWorkItem", err)
	if len(list) != 5 || list[3].ID != second.ID || list[3].State != store.OutboxSent ||
		!slices.Equal(list[3].Recipients, []string{"cc@example.org"}) || list[4].State != store.OutboxFailed ||
		!slices.Equal(list[4].Recipients, []string{"customer@example.org"}) || list[4].LastError != "customer@example.org: 554 5.7.1 rejected" {
		t.Errorf("second reply's items = %+v, want it sent to cc and a failed item for customer", list[3:])
	}
}
