package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testIngestClassification: what classification decided is written on the new work item;
// a rule may close it at once; automatic mail does not reopen a done item.
func testIngestClassification(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	def, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	billing, err := s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue", err)
	mb := newMailbox(t, s, "support", store.Inbound)
	must(t, "AssignMailbox", s.AssignMailbox(ctx, mb.ID, def.ID))
	schema, err := s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSchema, Name: "vip first", Spec: []byte(`{}`)})
	must(t, "SaveRoutingObject schema", err)
	sla, err := s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSLA, Name: "4h", Spec: []byte(`{}`)})
	must(t, "SaveRoutingObject sla", err)

	// Without a classification the item waits in its mailbox's queue, with no requirements.
	plain := ingest(t, s, mail(mb, "imap:1:1", "plain@x", "Plain"))
	w := getWorkItem(t, s, plain.WorkItemID)
	if w.State != store.StateQueued || w.QueueID != def.ID || w.QueueName != store.DefaultQueue || w.Category != "" ||
		len(w.Tags) != 0 || len(w.Skills) != 0 || w.PriorityAdjust != 0 || !w.SLADueAt.IsZero() || w.SchemaID != 0 {
		t.Errorf("unclassified item = %+v, want queued in Default with no requirements", w)
	}
	sameTime(t, "QueuedAt of a new item", w.QueuedAt, w.ReceivedAt)
	if ev, err := s.Events(ctx, plain.WorkItemID); err != nil || len(ev) != 1 || ev[0].Kind != "created" || ev[0].QueueID != def.ID {
		t.Errorf("events of the unclassified item = %+v, %v; want its creation in Default (%d)", ev, err, def.ID)
	}

	due := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	risk := due.Add(-time.Hour)
	in := mail(mb, "imap:1:2", "cls@x", "Invoice wrong")
	in.Classification = &store.Classification{
		QueueID: billing.ID, Category: "billing", Tags: []string{"vip", "invoice"}, PriorityAdjust: 3,
		Skills: map[string]int{"billing": 4, "german": 2}, Language: "de", SchemaID: schema.ID, SLAPolicyID: sla.ID,
		FirstDue: due, FirstRisk: risk,
	}
	res := ingest(t, s, in)
	w = getWorkItem(t, s, res.WorkItemID)
	if w.State != store.StateQueued || w.QueueID != billing.ID || w.QueueName != "Billing" || w.Category != "billing" ||
		!slices.Equal(w.Tags, []string{"vip", "invoice"}) || w.PriorityAdjust != 3 ||
		!maps.Equal(w.Skills, map[string]int{"billing": 4, "german": 2}) || w.Language != "de" ||
		w.SchemaID != schema.ID || w.SLAPolicyID != sla.ID || w.StateReason != "" || !w.DoneAt.IsZero() {
		t.Errorf("classified item = %+v, want the classification's queue and requirements", w)
	}
	sameTime(t, "SLADueAt", w.SLADueAt, due)
	sameTime(t, "SLARiskAt", w.SLARiskAt, risk)
	sameTime(t, "SLAFirstDueAt", w.SLAFirstDueAt, due)
	recent(t, "QueuedAt", w.QueuedAt, start)
	ev, err := s.Events(ctx, res.WorkItemID)
	must(t, "Events", err)
	if len(ev) != 1 || ev[0].Kind != "created" || ev[0].From != store.StateNew || ev[0].To != store.StateQueued || ev[0].QueueID != billing.ID {
		t.Errorf("events of the classified item = %+v, want its creation in Billing", ev)
	}
	if list, _ := s.ListWorkItems(ctx, store.WorkItemFilter{QueueID: billing.ID}); len(list) != 1 || list[0].ID != res.WorkItemID {
		t.Errorf("ListWorkItems in Billing = %v, want the classified item", ids(list))
	}

	// A rule that closes: the item is done at once, with the reason, and never routed.
	spam := mail(mb, "imap:1:3", "spam@x", "You won")
	spam.Classification = &store.Classification{Close: "spam", QueueID: billing.ID}
	sres := ingest(t, s, spam)
	w = getWorkItem(t, s, sres.WorkItemID)
	if w.State != store.StateDone || w.StateReason != "spam" || w.QueueID != billing.ID {
		t.Errorf("item closed by a rule = %+v, want done, reason spam", w)
	}
	recent(t, "DoneAt of an item closed by a rule", w.DoneAt, start)
	ev, _ = s.Events(ctx, sres.WorkItemID)
	if len(ev) != 1 || ev[0].From != store.StateNew || ev[0].To != store.StateDone {
		t.Errorf("events of the spam item = %+v, want its creation, new -> done", ev)
	}
	items, err := s.RoutingItems(ctx, time.Time{})
	must(t, "RoutingItems", err)
	for _, it := range items {
		if it.ID == sres.WorkItemID {
			t.Errorf("RoutingItems lists the item closed by a rule")
		}
	}

	// Automatic mail (an out-of-office) in the conversation of a done item leaves it done;
	// so does a message a rule closes.
	ana := newAgent(t, s, "ana")
	change(t, s, store.Change{WorkItemID: res.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &ana.ID})
	change(t, s, store.Change{WorkItemID: res.WorkItemID, From: []string{store.StateAssigned}, To: store.StateDone})
	auto := reply(mail(mb, "imap:1:4", "ooo@x", "Out of office"), "cls@x")
	auto.Classification = &store.Classification{NoReopen: true, PreferredWait: time.Hour}
	ares := ingest(t, s, auto)
	w = getWorkItem(t, s, res.WorkItemID)
	if ares.WorkItemID != res.WorkItemID || w.State != store.StateDone || w.MessageID != ares.MessageID || w.AssignedTo != ana.ID ||
		w.PreferredAgent != 0 {
		t.Errorf("done item after automatic mail = %+v, want it done still, assigned to ana, with the message", w)
	}
	closed := reply(mail(mb, "imap:1:5", "spam2@x", "Re: Invoice wrong"), "ooo@x")
	closed.Classification = &store.Classification{Close: "spam"}
	ingest(t, s, closed)
	if w := getWorkItem(t, s, res.WorkItemID); w.State != store.StateDone {
		t.Errorf("done item after a message a rule closed = %+v, want done", w)
	}

	// The customer writes again: the item reopens with the next SLA clock.
	next := due.Add(24 * time.Hour)
	again := reply(mail(mb, "imap:1:6", "again@x", "Re: Invoice wrong"), "cls@x")
	again.Classification = &store.Classification{NextDue: next, NextRisk: next.Add(-time.Hour), FirstDue: due.Add(time.Minute)}
	ingest(t, s, again)
	w = getWorkItem(t, s, res.WorkItemID)
	if w.State != store.StateQueued || w.QueueID != billing.ID {
		t.Errorf("reopened item = %+v, want queued in Billing, its queue", w)
	}
	sameTime(t, "SLADueAt of the reopened item", w.SLADueAt, next)
	sameTime(t, "SLARiskAt of the reopened item", w.SLARiskAt, next.Add(-time.Hour))
	sameTime(t, "SLAFirstDueAt of the reopened item", w.SLAFirstDueAt, due)
	if n := len(listAll(t, s)); n != 3 {
		t.Errorf("%d work items, want 3 (plain, classified, spam)", n)
	}
}

// testNextResponseClock: the agent answered and keeps the item (a reply that leaves it
// assigned); the customer's next message starts the clock for the next response.
func testNextResponseClock(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	ana := newAgent(t, s, "ana")
	due := time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)
	in := mail(mb, "imap:1:1", "q@x", "Question")
	in.Classification = &store.Classification{FirstDue: due, FirstRisk: due.Add(-time.Hour)}
	res := ingest(t, s, in)
	change(t, s, store.Change{WorkItemID: res.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &ana.ID})

	// A follow-up before any answer leaves the first clock alone.
	early := reply(mail(mb, "imap:1:2", "early@x", "Re: Question"), "q@x")
	early.Classification = &store.Classification{NextDue: due.Add(time.Hour), NextRisk: due}
	ingest(t, s, early)
	if w := getWorkItem(t, s, res.WorkItemID); !w.SLADueAt.Equal(due) {
		t.Errorf("SLADueAt after a follow-up before the answer = %v, want the first due %v", w.SLADueAt, due)
	}

	_, err := s.CreateReply(ctx, store.ReplyInput{WorkItemID: res.WorkItemID, UserID: ana.ID, NewState: store.StateAssigned,
		Message: store.Message{MailboxID: out.ID, Subject: "Re: Question"}, Raw: []byte("x"), From: "out@example.com",
		Recipients: []string{"customer@example.org"}})
	must(t, "CreateReply", err)
	w := getWorkItem(t, s, res.WorkItemID)
	if w.State != store.StateAssigned || !w.SLADueAt.IsZero() || w.FirstResponseAt.IsZero() || !w.DoneAt.IsZero() {
		t.Errorf("item after a reply that keeps it = %+v, want assigned, clock stopped, first response recorded", w)
	}

	next := due.Add(48 * time.Hour)
	later := reply(mail(mb, "imap:1:3", "later@x", "Re: Re: Question"), "early@x")
	later.Classification = &store.Classification{NextDue: next, NextRisk: next.Add(-time.Hour)}
	lres := ingest(t, s, later)
	w = getWorkItem(t, s, res.WorkItemID)
	if lres.WorkItemID != res.WorkItemID || w.State != store.StateAssigned || w.AssignedTo != ana.ID || w.MessageID != lres.MessageID {
		t.Errorf("item after the customer's next message = %+v, want it assigned to ana still", w)
	}
	sameTime(t, "SLADueAt for the next response", w.SLADueAt, next)
	sameTime(t, "SLARiskAt for the next response", w.SLARiskAt, next.Add(-time.Hour))
}
