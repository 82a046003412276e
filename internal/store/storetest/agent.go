package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testAgents: the routing profile of a user, a default one until saved; statuses; loads.
func testAgents(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	ana := newAgent(t, s, "ana")
	ben, err := s.CreateUser(ctx, store.User{Username: "ben", DisplayName: "Ben B", Role: store.RoleSupervisor, Disabled: true})
	must(t, "CreateUser ben", err)

	a, err := s.Agent(ctx, ana.ID)
	must(t, "Agent never saved", err)
	if a.UserID != ana.ID || a.Capacity != 5 || a.Status != store.AgentOffline || len(a.Skills) != 0 ||
		len(a.Languages) != 0 || a.Username != "ana" || a.Role != store.RoleAgent {
		t.Errorf("Agent never saved = %+v, want capacity 5, offline, no skills", a)
	}
	_, err = s.Agent(ctx, ben.ID+1000)
	wantErr(t, "Agent of a missing user", err, store.ErrNotFound)

	v0, err := s.RoutingVersion(ctx)
	must(t, "RoutingVersion", err)
	want := store.Agent{UserID: ana.ID, Skills: map[string]int{"billing": 7, "german": 3}, Languages: []string{"de", "en"}, Capacity: 2}
	must(t, "SaveAgent", s.SaveAgent(ctx, want))
	a, err = s.Agent(ctx, ana.ID)
	must(t, "Agent", err)
	if !maps.Equal(a.Skills, want.Skills) || !slices.Equal(a.Languages, want.Languages) || a.Capacity != 2 ||
		a.Status != store.AgentOffline || a.Username != "ana" {
		t.Errorf("Agent after SaveAgent = %+v, want %+v, still offline", a, want)
	}
	recent(t, "Agent UpdatedAt", a.UpdatedAt, start)
	if v, _ := s.RoutingVersion(ctx); v == v0 {
		t.Errorf("RoutingVersion %q did not change with SaveAgent", v)
	}
	// Saving again replaces skills and languages.
	must(t, "SaveAgent again", s.SaveAgent(ctx, store.Agent{UserID: ana.ID, Skills: map[string]int{"sales": 10}, Capacity: 4}))
	if a, _ := s.Agent(ctx, ana.ID); !maps.Equal(a.Skills, map[string]int{"sales": 10}) || len(a.Languages) != 0 || a.Capacity != 4 {
		t.Errorf("Agent after a second SaveAgent = %+v, want only sales 10, no languages, capacity 4", a)
	}

	at := time.Date(2025, 4, 1, 8, 0, 0, 123000, time.UTC)
	must(t, "SetAgentStatus", s.SetAgentStatus(ctx, ana.ID, store.AgentAvailable, at))
	a, _ = s.Agent(ctx, ana.ID)
	if a.Status != store.AgentAvailable || a.Capacity != 4 {
		t.Errorf("Agent after SetAgentStatus = %+v, want available, capacity kept", a)
	}
	sameTime(t, "StatusAt", a.StatusAt, at)
	sameTime(t, "LastSeenAt after SetAgentStatus", a.LastSeenAt, at)
	must(t, "TouchAgent", s.TouchAgent(ctx, ana.ID, at.Add(time.Minute)))
	a, _ = s.Agent(ctx, ana.ID)
	sameTime(t, "LastSeenAt after TouchAgent", a.LastSeenAt, at.Add(time.Minute))
	sameTime(t, "StatusAt after TouchAgent", a.StatusAt, at)
	// A status for a user whose profile was never saved creates it, with the defaults.
	must(t, "SetAgentStatus of a new agent", s.SetAgentStatus(ctx, ben.ID, store.AgentAway, at))
	b, err := s.Agent(ctx, ben.ID)
	must(t, "Agent ben", err)
	if b.Status != store.AgentAway || b.Capacity != 5 || !b.Disabled || b.DisplayName != "Ben B" || b.Role != store.RoleSupervisor {
		t.Errorf("Agent ben = %+v, want away, capacity 5, with the user's fields", b)
	}

	carl := newAgent(t, s, "carl")
	list, err := s.ListAgents(ctx)
	must(t, "ListAgents", err)
	var names []string
	for _, a := range list {
		names = append(names, a.Username)
	}
	if !slices.Equal(names, []string{"ana", "ben", "carl"}) {
		t.Fatalf("ListAgents = %v, want ana, ben, carl", names)
	}
	if l := list[0]; l.Status != store.AgentAvailable || l.Capacity != 4 || !maps.Equal(l.Skills, map[string]int{"sales": 10}) {
		t.Errorf("ListAgents[ana] = %+v, want available, capacity 4, sales 10", l)
	}
	if l := list[2]; l.UserID != carl.ID || l.Capacity != 5 || l.Status != store.AgentOffline {
		t.Errorf("ListAgents[carl] = %+v, want the default profile", l)
	}
}

// testAgentLoads: AgentLoads counts what each agent was offered or holds, as the claim's
// capacity check does.
func testAgentLoads(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	ana := newAgent(t, s, "ana")
	ben := newAgent(t, s, "ben")
	var items []int64
	for i := range 7 {
		items = append(items, ingest(t, s, mail(mb, "imap:1:"+itoa(int64(i)), itoa(int64(i))+"@x", "load")).WorkItemID)
	}
	later := ptr(time.Now().Add(time.Minute))
	queued := []string{store.StateQueued}
	change(t, s, store.Change{WorkItemID: items[0], From: queued, To: store.StateAssigned, AssignedTo: &ana.ID})
	change(t, s, store.Change{WorkItemID: items[1], From: queued, To: store.StateAssigned, AssignedTo: &ana.ID})
	change(t, s, store.Change{WorkItemID: items[2], From: queued, To: store.StateOffered, OfferedTo: &ana.ID, OfferExpiresAt: later})
	change(t, s, store.Change{WorkItemID: items[3], From: queued, To: store.StateOffered, OfferedTo: &ben.ID, OfferExpiresAt: later})
	// Not counted: pending, on hold, done.
	change(t, s, store.Change{WorkItemID: items[4], From: queued, To: store.StatePending, AssignedTo: &ben.ID})
	change(t, s, store.Change{WorkItemID: items[5], From: queued, To: store.StateOnHold, AssignedTo: &ben.ID})
	change(t, s, store.Change{WorkItemID: items[6], From: queued, To: store.StateDone, AssignedTo: &ben.ID})
	loads, err := s.AgentLoads(ctx)
	must(t, "AgentLoads", err)
	if !maps.Equal(loads, map[int64]int{ana.ID: 3, ben.ID: 1}) {
		t.Errorf("AgentLoads = %v, want ana %d: 3, ben %d: 1", loads, ana.ID, ben.ID)
	}

	// An item that ana held is offered to ben (a transfer): it is ben's load, not ana's.
	change(t, s, store.Change{WorkItemID: items[0], From: []string{store.StateAssigned}, To: store.StateOffered,
		OfferedTo: &ben.ID, OfferExpiresAt: later})
	loads, err = s.AgentLoads(ctx)
	must(t, "AgentLoads after a transfer", err)
	if !maps.Equal(loads, map[int64]int{ana.ID: 2, ben.ID: 2}) {
		t.Errorf("AgentLoads after offering ana's item to ben = %v, want ana %d: 2, ben %d: 2", loads, ana.ID, ben.ID)
	}
	// The claim's capacity check counts the same way: ana has 2, so capacity 3 admits one more.
	r := apply(t, s, store.Change{WorkItemID: items[3], From: []string{store.StateOffered}, To: store.StateAssigned,
		AssignedTo: &ana.ID, OfferedTo: ptr(int64(0)), CapacityOf: ana.ID, Capacity: 2})
	wantErr(t, "claim beyond capacity", r[0].Err, store.ErrCapacity)
	r = apply(t, s, store.Change{WorkItemID: items[3], From: []string{store.StateOffered}, To: store.StateAssigned,
		AssignedTo: &ana.ID, OfferedTo: ptr(int64(0)), CapacityOf: ana.ID, Capacity: 3})
	if r[0].Err != nil {
		t.Errorf("claim within capacity: %v", r[0].Err)
	}
}

// testRoutingObjects: calendars, schemas, SLA policies and rules, unique by kind and name,
// listed by position; every change moves RoutingVersion.
func testRoutingObjects(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	versions := map[string]string{}
	version := func(after string) {
		t.Helper()
		v, err := s.RoutingVersion(ctx)
		must(t, "RoutingVersion", err)
		if v == "" {
			t.Errorf("RoutingVersion after %s is empty", after)
		}
		for what, old := range versions {
			if old == v {
				t.Errorf("RoutingVersion after %s = %q, the same as after %s", after, v, what)
			}
		}
		versions[after] = v
	}
	if v, err := s.RoutingVersion(ctx); err != nil || v != "" {
		t.Errorf("RoutingVersion of a new store = %q, %v; want empty", v, err)
	}

	rule := func(name string, pos int) store.RoutingObject {
		t.Helper()
		o, err := s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindRule, Name: name, Position: pos,
			Spec: []byte(`{"name":"` + name + `","if":{"subject":"x"}}`)})
		must(t, "SaveRoutingObject "+name, err)
		version("saving rule " + name)
		return o
	}
	c := rule("c-last", 30)
	a := rule("a-first", 10)
	b := rule("b-middle", 20)
	b2 := rule("b-also-20", 20)
	if a.ID == 0 || a.ID == c.ID || a.Kind != store.KindRule || a.Position != 10 {
		t.Errorf("created rule = %+v", a)
	}
	recent(t, "RoutingObject UpdatedAt", a.UpdatedAt, start)

	cal, err := s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindCalendar, Name: "a-first", Spec: []byte(`{"zone":"Europe/Berlin"}`)})
	must(t, "SaveRoutingObject calendar with a rule's name", err)
	version("saving a calendar")
	_, err = s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindRule, Name: "a-first", Spec: []byte(`{}`)})
	wantErr(t, "SaveRoutingObject with a name in use", err, store.ErrConflict)

	list, err := s.ListRoutingObjects(ctx, store.KindRule)
	must(t, "ListRoutingObjects", err)
	var got []int64
	for _, o := range list {
		got = append(got, o.ID)
	}
	equalIDs(t, "rules by position, then name", got, []int64{a.ID, b2.ID, b.ID, c.ID})
	if cals, _ := s.ListRoutingObjects(ctx, store.KindCalendar); len(cals) != 1 || cals[0].ID != cal.ID ||
		string(cals[0].Spec) != `{"zone":"Europe/Berlin"}` {
		t.Errorf("calendars = %+v, want the one saved", cals)
	}
	if slas, _ := s.ListRoutingObjects(ctx, store.KindSLA); len(slas) != 0 {
		t.Errorf("SLA policies = %+v, want none", slas)
	}

	// Update: the same id, new name, position and spec.
	c.Name, c.Position, c.Spec = "c-now-first", 1, []byte(`{"name":"c","changed":true}`)
	upd, err := s.SaveRoutingObject(ctx, c)
	must(t, "SaveRoutingObject update", err)
	version("updating a rule")
	if upd.ID != c.ID {
		t.Errorf("update returned id %d, want %d", upd.ID, c.ID)
	}
	o, err := s.RoutingObject(ctx, c.ID)
	must(t, "RoutingObject", err)
	if o.Name != "c-now-first" || o.Position != 1 || string(o.Spec) != `{"name":"c","changed":true}` || o.Kind != store.KindRule {
		t.Errorf("RoutingObject after update = %+v", o)
	}
	sameTime(t, "RoutingObject UpdatedAt", o.UpdatedAt, upd.UpdatedAt)
	list, _ = s.ListRoutingObjects(ctx, store.KindRule)
	if len(list) != 4 || list[0].ID != c.ID {
		t.Errorf("rules after moving c first = %+v", list)
	}
	b.Name = "a-first"
	_, err = s.SaveRoutingObject(ctx, b)
	wantErr(t, "renaming a rule to a name in use", err, store.ErrConflict)
	_, err = s.SaveRoutingObject(ctx, store.RoutingObject{ID: cal.ID, Kind: store.KindRule, Name: "x", Spec: []byte(`{}`)})
	wantErr(t, "updating a calendar as a rule", err, store.ErrNotFound)
	_, err = s.SaveRoutingObject(ctx, store.RoutingObject{ID: c.ID + 1000, Kind: store.KindRule, Name: "y", Spec: []byte(`{}`)})
	wantErr(t, "updating a missing object", err, store.ErrNotFound)

	must(t, "DeleteRoutingObject", s.DeleteRoutingObject(ctx, a.ID))
	version("deleting a rule")
	_, err = s.RoutingObject(ctx, a.ID)
	wantErr(t, "RoutingObject deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteRoutingObject again", s.DeleteRoutingObject(ctx, a.ID), store.ErrNotFound)
	list, _ = s.ListRoutingObjects(ctx, store.KindRule)
	if len(list) != 3 {
		t.Errorf("%d rules after delete, want 3", len(list))
	}
	// The name of a deleted object is free.
	rule("a-first", 5)

	q, err := s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue", err)
	must(t, "SetQueueSpec", s.SetQueueSpec(ctx, q.ID, "Billing EU", []byte(`{"team":1}`)))
	version("SetQueueSpec")
	if got, _ := s.Queue(ctx, q.ID); got.Name != "Billing EU" {
		t.Errorf("queue name after SetQueueSpec = %q, want Billing EU", got.Name)
	}
	wantErr(t, "SetQueueSpec of a missing queue", s.SetQueueSpec(ctx, q.ID+1000, "x", []byte(`{}`)), store.ErrNotFound)
	ana := newAgent(t, s, "ana")
	must(t, "SaveAgent", s.SaveAgent(ctx, store.Agent{UserID: ana.ID, Capacity: 3}))
	version("SaveAgent")
}
