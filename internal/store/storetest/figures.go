package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// classified is an inbound message for mailbox mb in queue q, received at received, with
// the SLA clock due at due and at risk at risk (none when zero).
func classified(mb store.Mailbox, n int, q int64, received, due, risk time.Time) store.InboundMessage {
	id := itoa(int64(n))
	in := mail(mb, "imap:3:"+id, "fig-"+id+"@x", "figure "+id)
	in.ReceivedAt = received
	in.Classification = &store.Classification{QueueID: q, FirstDue: due, FirstRisk: risk}
	return in
}

// testQueueDepths: open items per queue and state, the oldest waiting, and the SLA
// figures at a chosen moment (pending items are paused, done ones gone).
func testQueueDepths(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	ana := newAgent(t, s, "ana")
	newQueue := func(name string) store.Queue {
		q, err := s.CreateQueue(ctx, store.Queue{Name: name, Enabled: true})
		must(t, "CreateQueue "+name, err)
		return q
	}
	q1, q2 := newQueue("Billing"), newQueue("Sales")
	newQueue("Empty")
	now := time.Now().UTC().Truncate(time.Microsecond)
	var n int
	item := func(q int64, received, due, risk time.Time) int64 {
		t.Helper()
		n++
		return ingest(t, s, classified(mb, n, q, received, due, risk)).WorkItemID
	}
	queued := []string{store.StateQueued}
	item(q1.ID, now.Add(-2*time.Hour), now.Add(time.Hour), now.Add(30*time.Minute))          // fine
	item(q1.ID, now.Add(-time.Hour), now.Add(time.Hour), now.Add(-time.Minute))              // at risk
	c := item(q1.ID, now.Add(-3*time.Hour), now.Add(-time.Minute), now.Add(-20*time.Minute)) // breached
	change(t, s, store.Change{WorkItemID: c, From: queued, To: store.StateAssigned, AssignedTo: &ana.ID})
	d := item(q1.ID, now.Add(-4*time.Hour), now.Add(-time.Hour), now.Add(-2*time.Hour)) // paused
	change(t, s, store.Change{WorkItemID: d, From: queued, To: store.StatePending})
	e := item(q1.ID, now.Add(-6*time.Hour), now.Add(-time.Hour), now.Add(-2*time.Hour)) // gone
	change(t, s, store.Change{WorkItemID: e, From: queued, To: store.StateDone})
	g := item(q1.ID, now.Add(-5*time.Hour), now.Add(2*time.Hour), now.Add(time.Hour)) // on hold, fine now
	change(t, s, store.Change{WorkItemID: g, From: queued, To: store.StateOnHold, AssignedTo: &ana.ID})
	item(q2.ID, now.Add(-30*time.Minute), time.Time{}, time.Time{}) // no SLA
	h := item(q2.ID, now.Add(-10*time.Minute), now.Add(-time.Second), now.Add(-time.Minute))
	change(t, s, store.Change{WorkItemID: h, From: queued, To: store.StateOffered, OfferedTo: &ana.ID, OfferExpiresAt: ptr(now.Add(time.Minute))})

	check := func(at time.Time, want []store.QueueDepth) {
		t.Helper()
		got, err := s.QueueDepths(ctx, at)
		must(t, "QueueDepths", err)
		if len(got) != len(want) {
			t.Fatalf("QueueDepths(%v) = %+v, want %+v", at, got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.QueueID != w.QueueID || !maps.Equal(g.ByState, w.ByState) || g.AtRisk != w.AtRisk || g.Breached != w.Breached {
				t.Errorf("QueueDepths(%v)[%d] = %+v, want %+v", at, i, g, w)
			}
			sameTime(t, "OldestAt", g.OldestAt, w.OldestAt)
		}
	}
	check(now, []store.QueueDepth{
		{QueueID: q1.ID, ByState: map[string]int{store.StateQueued: 2, store.StateAssigned: 1, store.StatePending: 1, store.StateOnHold: 1},
			OldestAt: now.Add(-2 * time.Hour), AtRisk: 1, Breached: 1},
		{QueueID: q2.ID, ByState: map[string]int{store.StateQueued: 1, store.StateOffered: 1},
			OldestAt: now.Add(-30 * time.Minute), Breached: 1},
	})
	// Ninety minutes later both queued items are breached and the one on hold is at risk.
	check(now.Add(90*time.Minute), []store.QueueDepth{
		{QueueID: q1.ID, ByState: map[string]int{store.StateQueued: 2, store.StateAssigned: 1, store.StatePending: 1, store.StateOnHold: 1},
			OldestAt: now.Add(-2 * time.Hour), AtRisk: 1, Breached: 3},
		{QueueID: q2.ID, ByState: map[string]int{store.StateQueued: 1, store.StateOffered: 1},
			OldestAt: now.Add(-30 * time.Minute), Breached: 1},
	})
}

// testHourlyStats: arrivals by the hour they were received, first responses by the hour
// they were sent, met when no later than the first response's due instant.
func testHourlyStats(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	base := time.Now().UTC().Truncate(time.Hour)
	since := base.Add(-4 * time.Hour)
	respond := func(id int64) {
		t.Helper()
		_, err := s.CreateReply(ctx, store.ReplyInput{WorkItemID: id, Message: store.Message{MailboxID: out.ID, Subject: "Re"},
			Raw: []byte("x"), From: "out@example.com", Recipients: []string{"customer@example.org"}})
		must(t, "CreateReply", err)
	}
	// Received before since, answered late now: a response, not an arrival.
	x := ingest(t, s, classified(mb, 1, 0, base.Add(-5*time.Hour), base.Add(-270*time.Minute), time.Time{})).WorkItemID
	// Two arrivals three hours ago, one answered in time.
	y := ingest(t, s, classified(mb, 2, 0, base.Add(-170*time.Minute), time.Now().Add(time.Hour), time.Time{})).WorkItemID
	ingest(t, s, classified(mb, 3, 0, base.Add(-160*time.Minute), time.Now().Add(time.Hour), time.Time{}))
	// An arrival an hour ago without SLA, answered: met.
	w := mail(mb, "imap:3:4", "fig-4@x", "no sla")
	w.ReceivedAt = base.Add(-55 * time.Minute)
	wid := ingest(t, s, w).WorkItemID
	for _, id := range []int64{x, y, wid} {
		respond(id)
	}
	// A second reply is not a first response.
	respond(y)

	for _, from := range []time.Time{since, since.Add(10 * time.Minute)} {
		stats, err := s.HourlyStats(ctx, from)
		must(t, "HourlyStats", err)
		arrivals := map[time.Time]int{}
		responded, met := 0, 0
		for i, h := range stats {
			if h.Hour.Location() != time.UTC || !h.Hour.Equal(h.Hour.Truncate(time.Hour)) {
				t.Errorf("Hour %v is not a UTC hour", h.Hour)
			}
			if i > 0 && !h.Hour.After(stats[i-1].Hour) {
				t.Errorf("hours out of order: %v after %v", h.Hour, stats[i-1].Hour)
			}
			if h.Arrivals > 0 {
				arrivals[h.Hour] = h.Arrivals
			}
			if h.Responded > 0 && h.Hour.Before(base) {
				t.Errorf("responses in hour %v, before any reply was sent", h.Hour)
			}
			responded += h.Responded
			met += h.ResponseMet
		}
		want := map[time.Time]int{base.Add(-3 * time.Hour): 2, base.Add(-time.Hour): 1}
		if !maps.Equal(arrivals, want) {
			t.Errorf("HourlyStats(%v) arrivals = %v, want %v", from, arrivals, want)
		}
		if responded != 3 || met != 2 {
			t.Errorf("HourlyStats(%v): %d first responses, %d met; want 3 and 2 (one late)", from, responded, met)
		}
	}
	if stats, err := s.HourlyStats(ctx, time.Now().Add(time.Hour)); err != nil || len(stats) != 0 {
		t.Errorf("HourlyStats from the next hour = %+v, %v; want none", stats, err)
	}
}

// testHistory: the events of a time range, oldest first, with their items' figures.
func testHistory(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newRoutingFixture(t, s)
	due := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	received := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	in := mail(f.mb, "imap:4:1", "hist-1@x", "Invoice 7")
	in.ReceivedAt = received
	in.Classification = &store.Classification{QueueID: f.queue.ID, FirstDue: due}
	i := ingest(t, s, in).WorkItemID
	j := f.item("Other")
	t1 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	change(t, s, store.Change{WorkItemID: i, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &f.ana.ID,
		Event: store.Event{At: t1, ActorID: f.sup.ID, Actor: "sup", Kind: "transfer", AgentID: f.ana.ID, QueueID: f.queue.ID, Reason: "by hand"}})
	change(t, s, store.Change{WorkItemID: j, To: store.StateCancelled, Event: store.Event{At: t1.Add(30 * time.Minute), Reason: "duplicate"}})
	change(t, s, store.Change{WorkItemID: i, From: []string{store.StateAssigned}, To: store.StateDone,
		Event: store.Event{At: t2, ActorID: f.ana.ID, Actor: "ana"}})

	rows, err := s.History(ctx, t1, t2)
	must(t, "History", err)
	if len(rows) != 2 {
		t.Fatalf("History [10:00, 11:00) = %+v, want the transfer and the cancellation (the end is exclusive)", rows)
	}
	r := rows[0]
	if r.WorkItemID != i || r.Kind != "transfer" || r.From != store.StateQueued || r.To != store.StateAssigned ||
		r.Actor != "sup" || r.ActorID != f.sup.ID || r.AgentID != f.ana.ID || r.Reason != "by hand" ||
		r.Subject != "Invoice 7" || r.QueueName != "Billing" || r.QueueID != f.queue.ID {
		t.Errorf("History[0] = %+v, want sup's transfer of Invoice 7 in Billing", r)
	}
	sameTime(t, "History At", r.At, t1)
	sameTime(t, "History ReceivedAt", r.ReceivedAt, received)
	sameTime(t, "History FirstDueAt", r.FirstDueAt, due)
	sameTime(t, "History AssignedAt", r.AssignedAt, t1)
	sameTime(t, "History DoneAt", r.DoneAt, t2)
	if r := rows[1]; r.WorkItemID != j || r.To != store.StateCancelled || r.Subject != "Other" || r.QueueName != "Billing" ||
		r.Actor != "system" || r.Reason != "duplicate" {
		t.Errorf("History[1] = %+v, want the system's cancellation of Other", r)
	}
	rows, err = s.History(ctx, t1.Add(time.Minute), t2.Add(time.Microsecond))
	must(t, "History", err)
	if len(rows) != 2 || rows[0].WorkItemID != j || rows[1].WorkItemID != i || rows[1].To != store.StateDone || rows[1].Actor != "ana" {
		t.Errorf("History [10:01, 11:00] = %+v, want the cancellation, then ana's done", rows)
	}
	if rows, _ := s.History(ctx, t2.Add(time.Hour), t2.Add(2*time.Hour)); len(rows) != 0 {
		t.Errorf("History of an empty range = %+v", rows)
	}
	// The items' creation events happened now.
	rows, _ = s.History(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	if len(rows) != 2 || rows[0].Kind != "created" || rows[1].Kind != "created" {
		t.Errorf("History of the last hour = %+v, want the two creations", rows)
	}
}
