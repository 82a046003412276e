package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// routingFixture is a queue with an inbound mailbox assigned to it, a supervisor and two
// agents.
type routingFixture struct {
	queue    store.Queue
	mb       store.Mailbox
	sup      store.User
	ana, ben store.User
	n        int
	t        *testing.T
	s        store.Store
}

func newRoutingFixture(t *testing.T, s store.Store) *routingFixture {
	t.Helper()
	f := &routingFixture{t: t, s: s}
	var err error
	f.queue, err = s.CreateQueue(t.Context(), store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue", err)
	f.mb = newMailbox(t, s, "support", store.Inbound)
	must(t, "AssignMailbox", s.AssignMailbox(t.Context(), f.mb.ID, f.queue.ID))
	f.sup, err = s.CreateUser(t.Context(), store.User{Username: "sup", Role: store.RoleSupervisor})
	must(t, "CreateUser sup", err)
	f.ana = newAgent(t, s, "ana")
	f.ben = newAgent(t, s, "ben")
	return f
}

// item ingests a new conversation and returns its work item id.
func (f *routingFixture) item(subject string) int64 {
	f.t.Helper()
	f.n++
	id := itoa(int64(f.n))
	return ingest(f.t, f.s, mail(f.mb, "imap:1:"+id, "item-"+id+"@x", subject)).WorkItemID
}

// testApplyChanges: conditional changes in one batch, each refused on its own, each
// applied one written with its event (and its trace when given).
func testApplyChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	f := newRoutingFixture(t, s)
	i1, i2, i3 := f.item("one"), f.item("two"), f.item("three")
	if w := getWorkItem(t, s, i1); w.State != store.StateQueued || w.QueueID != f.queue.ID || w.QueueName != "Billing" {
		t.Fatalf("new item = %+v, want queued in the mailbox's queue %d", w, f.queue.ID)
	}

	expires := time.Now().Add(30 * time.Second).UTC().Truncate(time.Microsecond)
	claimedAt := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	res := apply(t, s,
		store.Change{WorkItemID: i1, From: []string{store.StateQueued}, To: store.StateOffered, OfferedTo: &f.ana.ID,
			OfferExpiresAt: &expires, Event: store.Event{Kind: "offer", AgentID: f.ana.ID, Reason: "best match"},
			Trace: []byte(`{"candidates":[1,2]}`)},
		store.Change{WorkItemID: i2, From: []string{store.StateAssigned}, To: store.StateDone},
		store.Change{WorkItemID: i3, From: []string{store.StateQueued, store.StateOffered}, To: store.StateAssigned,
			AssignedTo: &f.ben.ID, AgentAssigned: f.ben.ID,
			Event: store.Event{At: claimedAt, ActorID: f.sup.ID, Actor: "sup", Kind: "transfer", AgentID: f.ben.ID, Reason: "by hand"}},
	)
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("results = %+v, want the first and the third applied", res)
	}
	wantErr(t, "change of an item not in the expected state", res[1].Err, store.ErrStateChanged)

	w1 := getWorkItem(t, s, i1)
	if w1.State != store.StateOffered || w1.OfferedTo != f.ana.ID || w1.AssignedTo != 0 {
		t.Errorf("offered item = %+v, want offered to ana", w1)
	}
	sameTime(t, "OfferExpiresAt", w1.OfferExpiresAt, expires)
	if w2 := getWorkItem(t, s, i2); w2.State != store.StateQueued || !w2.DoneAt.IsZero() {
		t.Errorf("refused item = %+v, want it queued still", w2)
	}
	w3 := getWorkItem(t, s, i3)
	if w3.State != store.StateAssigned || w3.AssignedTo != f.ben.ID || w3.AssignedName != "ben" {
		t.Errorf("assigned item = %+v, want assigned to ben", w3)
	}
	sameTime(t, "AssignedAt (the event's instant)", w3.AssignedAt, claimedAt)
	if a, _ := s.Agent(ctx, f.ben.ID); !a.LastAssignedAt.Equal(claimedAt) {
		t.Errorf("ben's LastAssignedAt = %v, want %v", a.LastAssignedAt, claimedAt)
	}
	if a, _ := s.Agent(ctx, f.ana.ID); !a.LastAssignedAt.IsZero() {
		t.Errorf("ana's LastAssignedAt = %v, want none: she was only offered an item", a.LastAssignedAt)
	}

	// Events: each item's creation, then each applied change; the refused one wrote none.
	ev1, err := s.Events(ctx, i1)
	must(t, "Events", err)
	if len(ev1) != 2 {
		t.Fatalf("events of the offered item = %+v, want created and offer", ev1)
	}
	if e := ev1[0]; e.Kind != "created" || e.From != store.StateNew || e.To != store.StateQueued || e.Actor != "system" || e.WorkItemID != i1 {
		t.Errorf("first event = %+v, want created, new -> queued, by the system", e)
	}
	if e := ev1[1]; e.ID == 0 || e.Kind != "offer" || e.From != store.StateQueued || e.To != store.StateOffered ||
		e.Actor != "system" || e.ActorID != 0 || e.AgentID != f.ana.ID || e.Reason != "best match" {
		t.Errorf("offer event = %+v, want offer queued -> offered to ana by the system, best match", e)
	} else {
		recent(t, "event At (none given)", e.At, start)
	}
	if ev2, _ := s.Events(ctx, i2); len(ev2) != 1 {
		t.Errorf("events of the refused item = %+v, want only its creation", ev2)
	}
	ev3, _ := s.Events(ctx, i3)
	if len(ev3) != 2 || ev3[1].Kind != "transfer" || ev3[1].ActorID != f.sup.ID || ev3[1].Actor != "sup" ||
		ev3[1].From != store.StateQueued || ev3[1].To != store.StateAssigned || ev3[1].Reason != "by hand" || !ev3[1].At.Equal(claimedAt) {
		t.Errorf("events of the assigned item = %+v, want the transfer by sup at %v", ev3, claimedAt)
	}
	tr, err := s.Traces(ctx, i1)
	must(t, "Traces", err)
	if len(tr) != 1 || string(tr[0].JSON) != `{"candidates":[1,2]}` || tr[0].AgentID != f.ana.ID || tr[0].WorkItemID != i1 {
		t.Errorf("Traces = %+v, want the one trace kept for ana", tr)
	}
	if tr, _ := s.Traces(ctx, i3); len(tr) != 0 {
		t.Errorf("Traces of a change without one = %+v, want none", tr)
	}

	// IfAgent: only the agent the item is offered to may accept it.
	accept := func(agent int64) store.Change {
		return store.Change{WorkItemID: i1, From: []string{store.StateOffered}, IfAgent: agent, To: store.StateAssigned,
			AssignedTo: &agent, OfferedTo: ptr(int64(0)), OfferExpiresAt: &time.Time{}, Event: store.Event{ActorID: agent, Kind: "accept"}}
	}
	res = apply(t, s, accept(f.ben.ID))
	wantErr(t, "accept by another agent", res[0].Err, store.ErrStateChanged)
	if w := getWorkItem(t, s, i1); w.State != store.StateOffered || w.OfferedTo != f.ana.ID {
		t.Errorf("item after another agent's accept = %+v, want offered to ana still", w)
	}
	res = apply(t, s, accept(f.ana.ID))
	if res[0].Err != nil {
		t.Fatalf("accept by ana: %v", res[0].Err)
	}
	w1 = getWorkItem(t, s, i1)
	if w1.State != store.StateAssigned || w1.AssignedTo != f.ana.ID || w1.OfferedTo != 0 || !w1.OfferExpiresAt.IsZero() {
		t.Errorf("accepted item = %+v, want assigned to ana, no offer left", w1)
	}
	// IfAgent holds for the assignee too.
	res = apply(t, s, store.Change{WorkItemID: i1, From: []string{store.StateAssigned}, IfAgent: f.ben.ID, To: store.StateOnHold})
	wantErr(t, "hold by an agent who does not have the item", res[0].Err, store.ErrStateChanged)
	change(t, s, store.Change{WorkItemID: i1, From: []string{store.StateAssigned}, IfAgent: f.ana.ID, To: store.StateOnHold})

	// Every field a change may set.
	due := time.Date(2025, 5, 2, 12, 0, 0, 0, time.UTC)
	preferredUntil := due.Add(-time.Hour)
	queuedAt := due.Add(-5 * time.Hour)
	other, err := s.CreateQueue(ctx, store.Queue{Name: "Sales", Enabled: true})
	must(t, "CreateQueue", err)
	change(t, s, store.Change{WorkItemID: i2, From: []string{store.StateQueued}, To: store.StateQueued,
		QueueID: &other.ID, QueuedAt: &queuedAt, SLADueAt: &due, SLARiskAt: ptr(due.Add(-time.Hour)),
		DeclinedBy: []int64{f.ana.ID, f.ben.ID}, Flag: ptr("declined twice"), PreferredAgent: &f.ben.ID,
		PreferredUntil: &preferredUntil, Overflowed: ptr(true), PriorityAdjust: ptr(-2), Reason: ptr("overflow"),
		Event: store.Event{Kind: "overflow", QueueID: other.ID}})
	w2 := getWorkItem(t, s, i2)
	if w2.QueueID != other.ID || w2.QueueName != "Sales" || !slices.Equal(w2.DeclinedBy, []int64{f.ana.ID, f.ben.ID}) ||
		w2.Flag != "declined twice" || w2.PreferredAgent != f.ben.ID || !w2.Overflowed || w2.PriorityAdjust != -2 ||
		w2.StateReason != "overflow" || w2.State != store.StateQueued {
		t.Errorf("item after a change of every field = %+v", w2)
	}
	sameTime(t, "QueuedAt", w2.QueuedAt, queuedAt)
	sameTime(t, "SLADueAt", w2.SLADueAt, due)
	sameTime(t, "SLARiskAt", w2.SLARiskAt, due.Add(-time.Hour))
	sameTime(t, "PreferredUntil", w2.PreferredUntil, preferredUntil)
	ri, err := s.RoutingItem(ctx, i2)
	must(t, "RoutingItem", err)
	if ri.QueueID != other.ID || !slices.Equal(ri.DeclinedBy, []int64{f.ana.ID, f.ben.ID}) || ri.PreferredAgent != f.ben.ID ||
		!ri.Overflowed || ri.PriorityAdjust != -2 || !ri.QueuedAt.Equal(queuedAt) || !ri.SLADueAt.Equal(due) ||
		!ri.PreferredUntil.Equal(preferredUntil) || ri.State != store.StateQueued {
		t.Errorf("RoutingItem = %+v, want the fields of the work item", ri)
	}
	if ev, _ := s.Events(ctx, i2); len(ev) != 2 || ev[1].Kind != "overflow" || ev[1].QueueID != other.ID ||
		ev[1].From != store.StateQueued || ev[1].To != store.StateQueued {
		t.Errorf("events after the overflow = %+v, want the overflow to Sales", ev)
	}

	// DeclinedBy nil leaves the list; an empty one clears it. Pending keeps the SLA remainder.
	change(t, s, store.Change{WorkItemID: i2, From: []string{store.StateQueued}, To: store.StateQueued, Flag: ptr("")})
	if w := getWorkItem(t, s, i2); len(w.DeclinedBy) != 2 || w.Flag != "" {
		t.Errorf("after a change without DeclinedBy: declined %v, flag %q; want the 2 kept, the flag cleared", w.DeclinedBy, w.Flag)
	}
	change(t, s, store.Change{WorkItemID: i2, From: []string{store.StateQueued}, To: store.StateQueued, DeclinedBy: []int64{}})
	if ri, _ := s.RoutingItem(ctx, i2); len(ri.DeclinedBy) != 0 {
		t.Errorf("DeclinedBy after clearing = %v, want none", ri.DeclinedBy)
	}
	change(t, s, store.Change{WorkItemID: i3, From: []string{store.StateAssigned}, To: store.StatePending,
		SLADueAt: &time.Time{}, SLARiskAt: &time.Time{}, SLARemaining: ptr(90 * time.Minute)})
	w3 = getWorkItem(t, s, i3)
	if w3.State != store.StatePending || w3.SLARemaining != 90*time.Minute || !w3.SLADueAt.IsZero() || w3.AssignedTo != f.ben.ID {
		t.Errorf("pending item = %+v, want 90m remaining, no due instant, still ben's", w3)
	}
	change(t, s, store.Change{WorkItemID: i3, From: []string{store.StatePending}, To: store.StateAssigned, SLARemaining: ptr(time.Duration(0)),
		SLADueAt: &due})
	if w := getWorkItem(t, s, i3); w.SLARemaining != 0 || !w.SLADueAt.Equal(due) {
		t.Errorf("resumed item: remaining %v, due %v; want none and %v", w.SLARemaining, w.SLADueAt, due)
	}

	// Done and cancelled record when; the reason says why.
	change(t, s, store.Change{WorkItemID: i3, From: []string{store.StateAssigned}, To: store.StateDone, Reason: ptr("answered by phone")})
	w3 = getWorkItem(t, s, i3)
	if w3.State != store.StateDone || w3.StateReason != "answered by phone" {
		t.Errorf("done item = %+v", w3)
	}
	recent(t, "DoneAt", w3.DoneAt, start)
	change(t, s, store.Change{WorkItemID: i2, To: store.StateCancelled, Event: store.Event{ActorID: f.sup.ID, Actor: "sup"}})
	if w := getWorkItem(t, s, i2); w.State != store.StateCancelled || w.DoneAt.IsZero() {
		t.Errorf("cancelled item = %+v, want cancelled with DoneAt", w)
	}
	ev2, _ := s.Events(ctx, i2)
	if last := ev2[len(ev2)-1]; last.Kind != "state" || last.From != store.StateQueued || last.To != store.StateCancelled || last.Actor != "sup" {
		t.Errorf("cancel event = %+v, want kind state (the default), queued -> cancelled by sup", last)
	}

	// AddEvent records what is not a state change.
	must(t, "AddEvent", s.AddEvent(ctx, store.Event{WorkItemID: i1, Kind: "sla_breach", QueueID: f.queue.ID, Reason: "first response due"}))
	ev1, _ = s.Events(ctx, i1)
	if last := ev1[len(ev1)-1]; last.Kind != "sla_breach" || last.From != "" || last.To != "" || last.Actor != "system" ||
		last.QueueID != f.queue.ID || last.Reason != "first response due" {
		t.Errorf("added event = %+v", last)
	} else {
		recent(t, "AddEvent At", last.At, start)
	}
}

// testCapacity: a claim with CapacityOf is refused with ErrCapacity when the agent has
// Capacity items offered or assigned; the item claimed does not count against itself.
func testCapacity(t *testing.T, s store.Store) {
	f := newRoutingFixture(t, s)
	items := []int64{f.item("a"), f.item("b"), f.item("c"), f.item("d")}
	claim := func(id int64, from string, capacity int) store.Change {
		return store.Change{WorkItemID: id, From: []string{from}, To: store.StateAssigned, AssignedTo: &f.ana.ID,
			OfferedTo: ptr(int64(0)), CapacityOf: f.ana.ID, Capacity: capacity, Event: store.Event{Kind: "claim"}}
	}
	change(t, s, claim(items[0], store.StateQueued, 2))
	change(t, s, store.Change{WorkItemID: items[1], From: []string{store.StateQueued}, To: store.StateOffered,
		OfferedTo: &f.ana.ID, OfferExpiresAt: ptr(time.Now().Add(time.Minute)), CapacityOf: f.ana.ID, Capacity: 2})
	// Two items (one assigned, one offered): a third is refused at capacity 2.
	res := apply(t, s, claim(items[2], store.StateQueued, 2), claim(items[3], store.StateQueued, 3))
	wantErr(t, "claim at capacity", res[0].Err, store.ErrCapacity)
	if res[1].Err != nil {
		t.Errorf("claim under a larger capacity in the same batch: %v", res[1].Err)
	}
	if w := getWorkItem(t, s, items[2]); w.State != store.StateQueued || w.AssignedTo != 0 {
		t.Errorf("item refused for capacity = %+v, want queued", w)
	}
	if ev, _ := s.Events(t.Context(), items[2]); len(ev) != 1 {
		t.Errorf("events of the item refused for capacity = %+v, want only its creation", ev)
	}
	// Accepting the offered item: it is counted once, not against itself (3 of 3 after).
	res = apply(t, s, claim(items[1], store.StateOffered, 3))
	if res[0].Err != nil {
		t.Errorf("accepting an offered item at capacity 3 with 3 items: %v", res[0].Err)
	}
	loads, err := s.AgentLoads(t.Context())
	must(t, "AgentLoads", err)
	if loads[f.ana.ID] != 3 {
		t.Errorf("ana's load = %d, want 3", loads[f.ana.ID])
	}
	// Capacity is checked after the state: an item no longer queued is ErrStateChanged.
	res = apply(t, s, claim(items[0], store.StateQueued, 10))
	wantErr(t, "claim of an item taken", res[0].Err, store.ErrStateChanged)
}

// testRoutingItems: what the assignment engine reads — every queued or offered item, the
// items changed since a moment, and the offers expired at a moment.
func testRoutingItems(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newRoutingFixture(t, s)
	in := mail(f.mb, "imap:9:1", "classified@x", "classified")
	in.Classification = &store.Classification{QueueID: f.queue.ID, Skills: map[string]int{"billing": 4}, Language: "de",
		PriorityAdjust: 2, FirstDue: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	in.ReceivedAt = time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	classified := ingest(t, s, in).WorkItemID
	queued, offered, soon, assigned, done := f.item("queued"), f.item("offered"), f.item("soon"), f.item("assigned"), f.item("done")

	now := time.Now().UTC().Truncate(time.Microsecond)
	change(t, s, store.Change{WorkItemID: offered, From: []string{store.StateQueued}, To: store.StateOffered, OfferedTo: &f.ana.ID,
		OfferExpiresAt: ptr(now.Add(-time.Second))})
	change(t, s, store.Change{WorkItemID: soon, From: []string{store.StateQueued}, To: store.StateOffered, OfferedTo: &f.ben.ID,
		OfferExpiresAt: ptr(now.Add(time.Minute))})
	change(t, s, store.Change{WorkItemID: assigned, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &f.ana.ID})
	change(t, s, store.Change{WorkItemID: done, From: []string{store.StateQueued}, To: store.StateDone})

	list, err := s.RoutingItems(ctx, time.Time{})
	must(t, "RoutingItems", err)
	var got []int64
	byID := map[int64]store.RoutingItem{}
	for _, it := range list {
		got = append(got, it.ID)
		byID[it.ID] = it
	}
	equalIDs(t, "RoutingItems(zero): queued and offered", got, []int64{classified, queued, offered, soon})
	c := byID[classified]
	if c.State != store.StateQueued || c.QueueID != f.queue.ID || !maps.Equal(c.Skills, map[string]int{"billing": 4}) ||
		c.Language != "de" || c.PriorityAdjust != 2 || !c.SLADueAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("RoutingItem of the classified message = %+v", c)
	}
	sameTime(t, "RoutingItem ReceivedAt", c.ReceivedAt, in.ReceivedAt)
	sameTime(t, "RoutingItem QueuedAt", c.QueuedAt, in.ReceivedAt)
	if o := byID[offered]; o.State != store.StateOffered || o.OfferedTo != f.ana.ID || !o.OfferExpiresAt.Equal(now.Add(-time.Second)) {
		t.Errorf("RoutingItem of the offered item = %+v", o)
	}

	expired, err := s.ExpiredOffers(ctx, now)
	must(t, "ExpiredOffers", err)
	if len(expired) != 1 || expired[0].ID != offered {
		t.Errorf("ExpiredOffers(now) = %+v, want only item %d", expired, offered)
	}
	expired, _ = s.ExpiredOffers(ctx, now.Add(time.Minute))
	if len(expired) != 2 || expired[0].ID != offered || expired[1].ID != soon {
		t.Errorf("ExpiredOffers(now+1m) = %+v, want %d, %d (the expiry instant counts)", expired, offered, soon)
	}
	if expired, _ := s.ExpiredOffers(ctx, now.Add(-time.Hour)); len(expired) != 0 {
		t.Errorf("ExpiredOffers an hour ago = %+v, want none", expired)
	}

	// Changed since a moment: any state, the changed ones only.
	last := getWorkItem(t, s, done).UpdatedAt
	waitPast(last)
	since := time.Now()
	waitPast(since)
	change(t, s, store.Change{WorkItemID: assigned, From: []string{store.StateAssigned}, To: store.StatePending})
	change(t, s, store.Change{WorkItemID: queued, From: []string{store.StateQueued}, To: store.StateQueued, PriorityAdjust: ptr(5)})
	list, err = s.RoutingItems(ctx, since)
	must(t, "RoutingItems(since)", err)
	got = nil
	for _, it := range list {
		got = append(got, it.ID)
	}
	equalIDs(t, "RoutingItems(since): the changed items by update", got, []int64{assigned, queued})
	if len(list) == 2 && (list[0].State != store.StatePending || list[1].PriorityAdjust != 5) {
		t.Errorf("RoutingItems(since) = %+v, want the pending item and the new priority", list)
	}
	_, err = s.RoutingItem(ctx, done+1000)
	wantErr(t, "RoutingItem missing", err, store.ErrNotFound)
}
