package routing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// TestSLAClockInBusinessTime follows one item's SLA through a weekend, a holiday and the
// change to summer time in Berlin: the classifier sets the clock, the engine records the
// at-risk and breach events at the right minute, and pending pauses the clock.
func TestSLAClockInBusinessTime(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	save := func(kind, name string, v any) int64 {
		spec, _ := json.Marshal(v)
		o, err := w.st.SaveRoutingObject(ctx, store.RoutingObject{Kind: kind, Name: name, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	var hours []routing.Hours
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri"} {
		hours = append(hours, routing.Hours{Day: d, Start: "09:00", End: "17:00"})
	}
	// Easter Monday 2026 is 6 April; the clocks go forward on Sunday 29 March. Take
	// Monday 30 March as a holiday so that the clock jumps the weekend, the change and it.
	cal := save(store.KindCalendar, "Office", routing.Calendar{Name: "Office", TimeZone: "Europe/Berlin", Hours: hours,
		Holidays: []routing.Holiday{{Date: "2026-03-30", Name: "Closed"}}})
	sla := save(store.KindSLA, "4h", routing.SLAPolicy{Name: "4h", FirstResponseS: 4 * 3600, AtRiskPercent: 75, BusinessTime: true})
	w.queue("Support", routing.QueueSettings{CalendarID: cal, SLAPolicyID: sla})
	// Friday 27 March 2026, 15:00 in Berlin (winter time).
	w.clk.t = time.Date(2026, 3, 27, 15, 0, 0, 0, berlin).UTC()
	w.agent("ann", nil, nil, 5, store.AgentOffline)
	e := w.start(false)

	in := store.InboundMessage{MailboxID: w.mb.ID, Raw: []byte("Subject: help\r\n\r\nhelp\r\n"), ReceivedAt: w.clk.Now(),
		Message: store.Message{MailboxID: w.mb.ID, Direction: store.Inbound, SourceID: "sla:1", Subject: "help", FromAddr: "c@example.org"}}
	mb := w.mb
	mb.QueueID = w.queues["Support"].ID
	routing.Classifier{Config: e.Config, Now: w.clk.Now}.Classify(mb, &in)
	res, err := w.st.IngestMessage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	id := res.WorkItemID
	// 2 h on Friday (15-17), Monday closed, 2 h on Tuesday: due Tuesday 11:00 (summer
	// time); at risk after 3 h: Tuesday 10:00.
	wantDue := time.Date(2026, 3, 31, 11, 0, 0, 0, berlin)
	wantRisk := time.Date(2026, 3, 31, 10, 0, 0, 0, berlin)
	wi := w.state(id)
	if !wi.SLADueAt.Equal(wantDue) || !wi.SLARiskAt.Equal(wantRisk) {
		t.Fatalf("due %v, at risk %v; want %v and %v", wi.SLADueAt.In(berlin), wi.SLARiskAt.In(berlin), wantDue, wantRisk)
	}
	kinds := func() map[string]int {
		evs, err := w.st.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, ev := range evs {
			m[ev.Kind]++
		}
		return m
	}
	at := func(tm time.Time) {
		t.Helper()
		w.clk.t = tm.UTC()
		w.step()
	}
	at(wantRisk.Add(-time.Minute))
	if k := kinds(); k["sla_at_risk"] != 0 {
		t.Fatalf("at risk a minute early: %v", k)
	}
	at(wantRisk)
	if k := kinds(); k["sla_at_risk"] != 1 || k["sla_breach"] != 0 {
		t.Fatalf("at %v: events %v, want one at-risk", wantRisk, k)
	}
	at(wantRisk.Add(30 * time.Minute))
	if k := kinds(); k["sla_at_risk"] != 1 {
		t.Fatalf("at-risk recorded twice: %v", k)
	}

	// ann takes it at 10:30 and sets it pending: 30 business minutes are left.
	if got := w.pull("ann"); got != id {
		t.Fatalf("ann got %d", got)
	}
	svc := workitem.NewService(w.st, e)
	svc.SetClock(w.clk.Now)
	if _, err := svc.Do(ctx, w.users["ann"], id, workitem.Request{Action: workitem.Pend}); err != nil {
		t.Fatal(err)
	}
	wi = w.state(id)
	if wi.State != store.StatePending || wi.SLARemaining != 30*time.Minute || !wi.SLADueAt.IsZero() {
		t.Fatalf("pending: state %s, remaining %v, due %v; want 30m left and no due time", wi.State, wi.SLARemaining, wi.SLADueAt)
	}
	// Past the old due time nothing breaches while the clock is paused.
	at(wantDue.Add(2 * time.Hour))
	if k := kinds(); k["sla_breach"] != 0 {
		t.Fatalf("breached while pending: %v", k)
	}
	// Resumed Wednesday 16:50: 10 minutes today, 20 on Thursday: due Thursday 09:20.
	w.clk.t = time.Date(2026, 4, 1, 16, 50, 0, 0, berlin).UTC()
	if _, err := svc.Do(ctx, w.users["ann"], id, workitem.Request{Action: workitem.Resume}); err != nil {
		t.Fatal(err)
	}
	wi = w.state(id)
	if want := time.Date(2026, 4, 2, 9, 20, 0, 0, berlin); wi.State != store.StateAssigned || !wi.SLADueAt.Equal(want) {
		t.Fatalf("resumed: state %s, due %v; want assigned, due %v", wi.State, wi.SLADueAt.In(berlin), want)
	}
	at(time.Date(2026, 4, 2, 9, 19, 0, 0, berlin))
	if k := kinds(); k["sla_breach"] != 0 {
		t.Fatalf("breach a minute early: %v", k)
	}
	at(time.Date(2026, 4, 2, 9, 20, 0, 0, berlin))
	if k := kinds(); k["sla_breach"] != 1 {
		t.Fatalf("no breach at the due minute: %v", k)
	}
}

// TestSLANoEventForClosedItem: an item closed before its SLA instants records no at-risk or
// breach event when they pass.
func TestSLANoEventForClosedItem(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	w.queue("Support", routing.QueueSettings{})
	now := w.clk.Now()
	id := w.item("Support", time.Minute, store.Classification{FirstDue: now.Add(time.Hour), FirstRisk: now.Add(30 * time.Minute)})
	res, err := w.st.ApplyChanges(ctx, []store.Change{{WorkItemID: id, From: []string{store.StateQueued}, To: store.StateDone}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("close: %v %v", err, res)
	}
	for _, at := range []time.Duration{45 * time.Minute, 2 * time.Hour} {
		evs, err := w.st.NoteSLA(ctx, now.Add(at))
		if err != nil || len(evs) != 0 {
			t.Errorf("at +%v: events %v (%v), want none for a closed item", at, evs, err)
		}
	}
	// An open item still gets its event.
	open := w.item("Support", time.Minute, store.Classification{FirstDue: now.Add(time.Hour), FirstRisk: now.Add(30 * time.Minute)})
	evs, err := w.st.NoteSLA(ctx, now.Add(2*time.Hour))
	if err != nil || len(evs) != 1 || evs[0].WorkItemID != open || evs[0].Kind != "sla_breach" {
		t.Errorf("open item past due: %v (%v), want one sla_breach", evs, err)
	}
}
