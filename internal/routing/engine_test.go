package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is a store with a mailbox, queues, agents and an engine on a fake clock.
type world struct {
	t      *testing.T
	st     store.Store
	clk    *clock
	engine *routing.Engine
	mb     store.Mailbox
	queues map[string]store.Queue
	users  map[string]store.User
	n      int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newWorldOn(t, st)
}

func newWorldOn(t *testing.T, st store.Store) *world {
	t.Helper()
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mb, err := st.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap",
		Host: "127.0.0.1", Port: 143, Security: "none", Folder: "INBOX", MaxSizeMB: 5, PollInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, mb: mb, queues: map[string]store.Queue{}, users: map[string]store.User{},
		clk: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	return w
}

// queue creates a queue with settings.
func (w *world) queue(name string, s routing.QueueSettings) store.Queue {
	w.t.Helper()
	q, err := w.st.CreateQueue(w.t.Context(), store.Queue{Name: name, Enabled: true})
	if err != nil {
		w.t.Fatal(err)
	}
	spec, _ := json.Marshal(s)
	if err := w.st.SetQueueSpec(w.t.Context(), q.ID, name, spec); err != nil {
		w.t.Fatal(err)
	}
	w.queues[name] = q
	return q
}

// agent creates an agent with a profile and status.
func (w *world) agent(name string, skills map[string]int, langs []string, capacity int, status string) store.User {
	w.t.Helper()
	ctx := w.t.Context()
	u, err := w.st.CreateUser(ctx, store.User{Username: name, Role: store.RoleAgent})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.SaveAgent(ctx, store.Agent{UserID: u.ID, Skills: skills, Languages: langs, Capacity: capacity}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.SetAgentStatus(ctx, u.ID, status, w.clk.Now()); err != nil {
		w.t.Fatal(err)
	}
	w.users[name] = u
	return u
}

// item stores a queued item that arrived age ago.
func (w *world) item(queue string, age time.Duration, c store.Classification) int64 {
	w.t.Helper()
	w.n++
	c.QueueID = w.queues[queue].ID
	at := w.clk.Now().Add(-age)
	res, err := w.st.IngestMessage(w.t.Context(), store.InboundMessage{MailboxID: w.mb.ID, Raw: []byte("Subject: x\r\n\r\nx\r\n"),
		ReceivedAt: at, Classification: &c, Message: store.Message{MailboxID: w.mb.ID, Direction: store.Inbound,
			SourceID: fmt.Sprintf("test:%d", w.n), MessageID: fmt.Sprintf("m%d@example.org", w.n), Subject: fmt.Sprintf("item %d", w.n),
			FromAddr: "c@example.org", Date: at}})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.WorkItemID
}

// start loads the engine (push only when push is true).
func (w *world) start(push bool) *routing.Engine {
	w.t.Helper()
	w.engine = routing.NewEngine(routing.EngineOptions{Store: w.st, Now: w.clk.Now, NoPush: !push, Ramp: time.Millisecond, IdleTimeout: -1})
	if err := w.engine.Load(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
	return w.engine
}

func (w *world) step() {
	w.t.Helper()
	if err := w.engine.Step(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

// pull returns the id the agent gets, 0 for none.
func (w *world) pull(name string) int64 {
	w.t.Helper()
	wi, ok, err := w.engine.Pull(w.t.Context(), w.users[name])
	if err != nil && !errors.Is(err, routing.ErrAtCapacity) {
		w.t.Fatal(err)
	}
	if !ok {
		return 0
	}
	if wi.State != store.StateAssigned || wi.AssignedTo != w.users[name].ID {
		w.t.Fatalf("pulled item %d is %s for %d, want assigned to %s", wi.ID, wi.State, wi.AssignedTo, name)
	}
	return wi.ID
}

func (w *world) state(id int64) store.WorkItem {
	w.t.Helper()
	wi, err := w.st.WorkItem(w.t.Context(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return wi
}

func TestPullHonoursSkillsLanguagesAndCapacity(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{})
	billing := w.item("Support", time.Hour, store.Classification{Skills: map[string]int{"billing": 5}})
	german := w.item("Support", 50*time.Minute, store.Classification{Language: "de"})
	plain1 := w.item("Support", 10*time.Minute, store.Classification{})
	plain2 := w.item("Support", 5*time.Minute, store.Classification{})
	w.agent("ann", map[string]int{"billing": 3}, []string{"en"}, 2, store.AgentOffline)
	w.agent("bob", map[string]int{"billing": 8}, []string{"en", "de"}, 5, store.AgentOffline)
	w.start(false)

	// ann lacks billing 5 and German: she gets the plain items, oldest first, then her
	// capacity of 2 is full.
	if got := w.pull("ann"); got != plain1 {
		t.Errorf("ann's first pull = %d, want the older plain item %d", got, plain1)
	}
	if got := w.pull("ann"); got != plain2 {
		t.Errorf("ann's second pull = %d, want %d", got, plain2)
	}
	if _, _, err := w.engine.Pull(t.Context(), w.users["ann"]); !errors.Is(err, routing.ErrAtCapacity) {
		t.Errorf("ann's third pull: err %v, want ErrAtCapacity", err)
	}
	// bob has both: the oldest (billing) first.
	if got := w.pull("bob"); got != billing {
		t.Errorf("bob's pull = %d, want the billing item %d", got, billing)
	}
	if got := w.pull("bob"); got != german {
		t.Errorf("bob's second pull = %d, want the German item %d", got, german)
	}
	if got := w.pull("bob"); got != 0 {
		t.Errorf("bob's third pull = %d, want nothing left", got)
	}
	// The decision trace says why.
	traces, err := w.st.Traces(t.Context(), billing)
	if err != nil || len(traces) != 1 {
		t.Fatalf("traces of %d: %v, %v", billing, traces, err)
	}
	var tr routing.Trace
	if err := json.Unmarshal(traces[0].JSON, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Mode != "pull" || tr.AgentID != w.users["bob"].ID || tr.Skills["billing"] != 5 || !strings.Contains(tr.Why, "highest priority") {
		t.Errorf("trace = %+v", tr)
	}
}

func TestPriorityOverTimeReordersPulls(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	schema := routing.Schema{Name: "Aging", Start: 10, Points: []routing.Point{{AgeS: 1800, Priority: 50}}}
	spec, _ := json.Marshal(schema)
	o, err := w.st.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSchema, Name: schema.Name, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	w.queue("Support", routing.QueueSettings{SchemaID: o.ID})
	// A young urgent item (10 + 30) and an older plain one (10, 50 from 30 min of age).
	urgent := w.item("Support", time.Minute, store.Classification{PriorityAdjust: 30})
	old := w.item("Support", 20*time.Minute, store.Classification{})
	w.agent("ann", nil, nil, 5, store.AgentOffline)
	w.agent("bob", nil, nil, 5, store.AgentOffline)
	e := w.start(false)
	// Now the urgent one is first (40 > 10).
	cfg := e.Config()
	pu, _ := cfg.Priority(routing.ItemOf(w.state(urgent)), w.clk.Now())
	po, _ := cfg.Priority(routing.ItemOf(w.state(old)), w.clk.Now())
	if pu != 40 || po != 10 {
		t.Fatalf("priorities now: urgent %d, old %d; want 40 and 10", pu, po)
	}
	// Ten minutes later the old item has reached 30 minutes and 50: it goes first.
	w.clk.Add(10 * time.Minute)
	if got := w.pull("ann"); got != old {
		t.Errorf("after 10 minutes ann got %d, want the aged item %d", got, old)
	}
	if got := w.pull("bob"); got != urgent {
		t.Errorf("bob got %d, want %d", got, urgent)
	}
}

func TestOfferTimeoutDeclineAndFlag(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{OfferTimeoutS: 60})
	id := w.item("Support", time.Minute, store.Classification{})
	for _, n := range []string{"ann", "bob", "cyd"} {
		w.agent(n, nil, nil, 5, store.AgentAvailable)
	}
	w.start(true)
	offeredTo := func() int64 { return w.state(id).OfferedTo }

	w.step()
	first := offeredTo()
	if w.state(id).State != store.StateOffered || first == 0 {
		t.Fatalf("after a step the item is %s to %d, want offered", w.state(id).State, first)
	}
	// Not accepted within 60 s: back to the queue (age kept), offered to someone else.
	w.clk.Add(61 * time.Second)
	w.step()
	second := offeredTo()
	if second == 0 || second == first {
		t.Fatalf("after the timeout the offer went to %d (first was %d), want another agent", second, first)
	}
	// The second agent declines: the third gets it.
	var decliner store.User
	for _, u := range w.users {
		if u.ID == second {
			decliner = u
		}
	}
	if err := w.engine.Decline(t.Context(), decliner, id, "not my area"); err != nil {
		t.Fatal(err)
	}
	w.step()
	third := offeredTo()
	if third == 0 || third == first || third == second {
		t.Fatalf("after the decline the offer went to %d, want the third agent", third)
	}
	var last store.User
	for _, u := range w.users {
		if u.ID == third {
			last = u
		}
	}
	if err := w.engine.Decline(t.Context(), last, id, ""); err != nil {
		t.Fatal(err)
	}
	wi := w.state(id)
	if wi.State != store.StateQueued || len(wi.DeclinedBy) != 3 || !strings.Contains(wi.Flag, "3 times") {
		t.Errorf("after three refusals: state %s, declined by %v, flag %q", wi.State, wi.DeclinedBy, wi.Flag)
	}
	// Nobody is offered it again.
	w.step()
	if wi := w.state(id); wi.State != store.StateQueued {
		t.Errorf("offered again after every agent refused it: %s to %d", wi.State, wi.OfferedTo)
	}
	// Its age in the queue was kept throughout.
	if wi.QueuedAt.After(w.clk.Now().Add(-time.Minute)) {
		t.Errorf("queued at %v: the age was reset", wi.QueuedAt)
	}
	events, _ := w.st.Events(t.Context(), id)
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "created,offer,offer_timeout,offer,decline,offer,decline" {
		t.Errorf("history = %s", got)
	}
}

func TestPushChoosesMostProficientThenLeastLoaded(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{})
	id := w.item("Support", time.Minute, store.Classification{Skills: map[string]int{"billing": 3}})
	w.agent("novice", map[string]int{"billing": 3}, nil, 5, store.AgentAvailable)
	w.agent("expert", map[string]int{"billing": 9}, nil, 5, store.AgentAvailable)
	w.agent("none", nil, nil, 5, store.AgentAvailable)
	w.start(true)
	w.step()
	if got := w.state(id).OfferedTo; got != w.users["expert"].ID {
		t.Errorf("offered to %d, want the expert %d", got, w.users["expert"].ID)
	}
	traces, _ := w.st.Traces(t.Context(), id)
	if len(traces) != 1 {
		t.Fatalf("%d traces", len(traces))
	}
	var tr routing.Trace
	_ = json.Unmarshal(traces[0].JSON, &tr)
	if tr.Mode != "push" || len(tr.Candidates) < 3 || tr.Candidates[0].Username != "expert" || tr.Candidates[1].Username != "novice" {
		t.Errorf("trace candidates = %+v", tr.Candidates)
	}
	if tr.Excluded["lacks skill billing (needs 3)"] != 1 {
		t.Errorf("excluded = %v, want the agent without billing counted", tr.Excluded)
	}
}

func TestRelaxationRings(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{Relax: []routing.RelaxStep{{AfterS: 600, DropLevels: 3}, {AfterS: 1800, DropSkills: true}}})
	id := w.item("Support", time.Minute, store.Classification{Skills: map[string]int{"tech": 7}})
	w.agent("junior", map[string]int{"tech": 4}, nil, 5, store.AgentOffline)
	w.agent("generalist", nil, nil, 5, store.AgentOffline)
	w.start(false)
	if got := w.pull("junior"); got != 0 {
		t.Fatalf("junior (tech 4) got %d while tech 7 is required", got)
	}
	w.clk.Add(10 * time.Minute) // 11 minutes: tech 7 - 3 = 4
	if got := w.pull("generalist"); got != 0 {
		t.Fatalf("generalist got %d in the first ring", got)
	}
	if got := w.pull("junior"); got != id {
		t.Fatalf("junior got %d after the first ring, want %d", got, id)
	}
	// The second ring drops the skill altogether.
	id2 := w.item("Support", 31*time.Minute, store.Classification{Skills: map[string]int{"tech": 7}})
	if err := w.engine.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := w.pull("generalist"); got != id2 {
		t.Errorf("generalist got %d after the second ring, want %d", got, id2)
	}
}

func TestPreferredAgentGetsTheReplyFirst(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{PreferredWaitS: 3600})
	ann := w.agent("ann", nil, nil, 5, store.AgentOffline)
	w.agent("bob", nil, nil, 5, store.AgentOffline)
	w.start(false)
	first := w.item("Support", time.Minute, store.Classification{})
	w.step()
	if got := w.pull("ann"); got != first {
		t.Fatalf("ann got %d", got)
	}
	// ann answers (done); the customer writes again in the conversation.
	if _, err := w.st.CreateReply(t.Context(), store.ReplyInput{WorkItemID: first, UserID: ann.ID, Raw: []byte("x"),
		Message: store.Message{MailboxID: w.mb.ID, Subject: "Re"}, From: "s@example.com", Recipients: []string{"c@example.org"}}); err != nil {
		t.Fatal(err)
	}
	c := store.Classification{QueueID: w.queues["Support"].ID, PreferredWait: time.Hour}
	if _, err := w.st.IngestMessage(t.Context(), store.InboundMessage{MailboxID: w.mb.ID, Raw: []byte("x"), Classification: &c,
		Message: store.Message{MailboxID: w.mb.ID, Direction: store.Inbound, SourceID: "reply:1", InReplyTo: "m1@example.org",
			Subject: "Re: item", FromAddr: "c@example.org", MessageID: "reply1@example.org"}}); err != nil {
		t.Fatal(err)
	}
	reopened := first
	if wi := w.state(first); wi.State != store.StateQueued || wi.PreferredAgent != ann.ID {
		t.Fatalf("the customer's reply left the item %s with preferred agent %d, want queued for ann", wi.State, wi.PreferredAgent)
	}
	w.step()
	if got := w.pull("bob"); got == reopened {
		t.Errorf("bob got the item reserved for ann")
	}
	if got := w.pull("ann"); got != reopened {
		t.Errorf("ann got %d, want her conversation %d back", got, reopened)
	}
}

func TestOverflowToAnotherTeamWithBoost(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	team, err := w.st.CreateTeam(ctx, "Backup")
	if err != nil {
		t.Fatal(err)
	}
	core := w.agent("core", nil, nil, 5, store.AgentOffline)
	backup := w.agent("backup", nil, nil, 5, store.AgentOffline)
	if err := w.st.SetUserTeams(ctx, backup.ID, []int64{team.ID}); err != nil {
		t.Fatal(err)
	}
	w.queue("Support", routing.QueueSettings{Agents: []int64{core.ID}, OverflowAfterS: 900, OverflowTeams: []int64{team.ID}, OverflowBoost: 100})
	id := w.item("Support", 5*time.Minute, store.Classification{})
	e := w.start(false)
	if got := w.pull("backup"); got != 0 {
		t.Fatalf("backup got %d before the overflow time", got)
	}
	w.clk.Add(11 * time.Minute)
	p, _ := e.Config().Priority(routing.ItemOf(w.state(id)), w.clk.Now())
	if got := w.pull("backup"); got != id {
		t.Fatalf("backup got %d after 16 minutes, want the overflowed item %d", got, id)
	}
	if wi := w.state(id); !wi.Overflowed {
		t.Errorf("item not marked overflowed")
	}
	if q, _ := e.Config().Priority(routing.ItemOf(w.state(id)), w.clk.Now()); q != p+100 {
		t.Errorf("priority after overflow %d, want %d + the boost 100", q, p)
	}
}

func TestAwayAgentsOffersGoBack(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{})
	id := w.item("Support", time.Minute, store.Classification{})
	ann := w.agent("ann", nil, nil, 5, store.AgentAvailable)
	w.start(true)
	w.step()
	if w.state(id).OfferedTo != ann.ID {
		t.Fatalf("not offered to ann")
	}
	if err := w.engine.SetStatus(t.Context(), ann.ID, store.AgentAway); err != nil {
		t.Fatal(err)
	}
	wi := w.state(id)
	if wi.State != store.StateQueued || wi.OfferedTo != 0 {
		t.Errorf("after ann went away: %s offered to %d, want queued", wi.State, wi.OfferedTo)
	}
	// Offline agents get no offers.
	w.step()
	if wi := w.state(id); wi.State != store.StateQueued {
		t.Errorf("offered to an away agent: %s", wi.State)
	}
}

func TestReturnAssignedAfterAbsence(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{ReturnAfterS: 3600})
	id := w.item("Support", time.Minute, store.Classification{})
	ann := w.agent("ann", nil, nil, 5, store.AgentAvailable)
	w.start(false)
	if got := w.pull("ann"); got != id {
		t.Fatal("ann did not get the item")
	}
	if err := w.engine.SetStatus(t.Context(), ann.ID, store.AgentOffline); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(30 * time.Minute)
	w.step()
	if wi := w.state(id); wi.State != store.StateAssigned {
		t.Fatalf("returned after 30 minutes: %s", wi.State)
	}
	w.clk.Add(31 * time.Minute)
	w.step()
	if wi := w.state(id); wi.State != store.StateQueued || wi.AssignedTo != 0 {
		t.Errorf("after 61 minutes offline: %s to %d, want queued", wi.State, wi.AssignedTo)
	}
}

// TestConcurrentPullersOnSQLite: 50 agents pull 5,000 items at once; each item goes to
// exactly one agent.
func TestConcurrentPullersOnSQLite(t *testing.T) {
	w := newWorld(t)
	q := w.queue("Support", routing.QueueSettings{})
	batch := make([]store.InboundMessage, 0, 500)
	for i := range 5000 {
		c := &store.Classification{QueueID: q.ID}
		at := w.clk.Now().Add(-time.Duration(i) * time.Second)
		batch = append(batch, store.InboundMessage{MailboxID: w.mb.ID, Raw: []byte("x"), ReceivedAt: at, Classification: c,
			Message: store.Message{MailboxID: w.mb.ID, Direction: store.Inbound, SourceID: fmt.Sprintf("c:%d", i), Subject: "x", Date: at}})
		if len(batch) == cap(batch) {
			if _, err := w.st.IngestMessages(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var agents []store.User
	for i := range 50 {
		agents = append(agents, w.agent(fmt.Sprintf("a%02d", i), nil, nil, 1000, store.AgentOffline))
	}
	e := w.start(false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go e.Run(ctx)
	got := pullAll(t, e, agents)
	checkOnce(t, w.st, got, 5000)
}

// pullAll lets every agent pull until nothing is left and returns item -> agents.
func pullAll(t *testing.T, e *routing.Engine, agents []store.User) map[int64][]int64 {
	t.Helper()
	var mu sync.Mutex
	got := map[int64][]int64{}
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Go(func() {
			for {
				wi, ok, err := e.Pull(t.Context(), a)
				if err != nil {
					t.Errorf("pull: %v", err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				got[wi.ID] = append(got[wi.ID], a.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

func checkOnce(t *testing.T, st store.Store, got map[int64][]int64, want int) {
	t.Helper()
	if len(got) != want {
		t.Errorf("%d distinct items pulled, want %d", len(got), want)
	}
	for id, who := range got {
		if len(who) != 1 {
			t.Errorf("item %d given to %v", id, who)
		}
		wi, err := st.WorkItem(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if wi.State != store.StateAssigned || wi.AssignedTo != who[0] {
			t.Errorf("item %d is %s to %d, want assigned to %d", id, wi.State, wi.AssignedTo, who[0])
		}
	}
	n, err := st.CountWorkItems(t.Context(), store.WorkItemFilter{State: store.StateAssigned})
	if err != nil || n != want {
		t.Errorf("%d items assigned in the store (%v), want %d", n, err, want)
	}
}

// TestConfigurationTakesEffectAtOnce: a configuration change saved (here a queue's schema)
// is what the engine uses as soon as it is woken, without waiting for its tick, and as one
// snapshot: the new schema and the queue that names it together.
func TestConfigurationTakesEffectAtOnce(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	q := w.queue("Support", routing.QueueSettings{})
	id := w.item("Support", time.Minute, store.Classification{})
	e := routing.NewEngine(routing.EngineOptions{Store: w.st, Now: w.clk.Now, NoPush: true, IdleTimeout: -1, Tick: time.Hour})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.Run(rctx)
	before, _ := e.Config().Priority(routing.ItemOf(w.state(id)), w.clk.Now())

	spec, _ := json.Marshal(routing.Schema{Name: "High", Start: 500})
	o, err := w.st.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSchema, Name: "High", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	qs, _ := json.Marshal(routing.QueueSettings{SchemaID: o.ID})
	if err := w.st.SetQueueSpec(ctx, q.ID, q.Name, qs); err != nil {
		t.Fatal(err)
	}
	e.Wake()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, _ := e.Config().Priority(routing.ItemOf(w.state(id)), w.clk.Now())
		if after == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("priority %d before, %d five seconds after the change; want 500", before, after)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReturnAllOffersAtStop: a stopping single node puts every open offer back in its
// queue.
func TestReturnAllOffersAtStop(t *testing.T) {
	w := newWorld(t)
	w.queue("Support", routing.QueueSettings{})
	a := w.item("Support", 2*time.Minute, store.Classification{})
	b := w.item("Support", time.Minute, store.Classification{})
	ann := w.agent("ann", nil, nil, 1, store.AgentAvailable)
	bob := w.agent("bob", nil, nil, 1, store.AgentAvailable)
	w.start(true)
	w.step()
	for _, id := range []int64{a, b} {
		if wi := w.state(id); wi.State != store.StateOffered || (wi.OfferedTo != ann.ID && wi.OfferedTo != bob.ID) {
			t.Fatalf("item %d: %s offered to %d, want offered to ann or bob", id, wi.State, wi.OfferedTo)
		}
	}
	n, err := w.engine.ReturnAllOffers(t.Context(), "the server stopped")
	if err != nil || n != 2 {
		t.Fatalf("ReturnAllOffers = %d, %v; want 2 offers returned", n, err)
	}
	for _, id := range []int64{a, b} {
		if wi := w.state(id); wi.State != store.StateQueued || wi.OfferedTo != 0 {
			t.Errorf("item %d after the stop: %s offered to %d, want queued", id, wi.State, wi.OfferedTo)
		}
	}
	if n, err := w.engine.ReturnAllOffers(t.Context(), "the server stopped"); err != nil || n != 0 {
		t.Errorf("second ReturnAllOffers = %d, %v; want 0", n, err)
	}
}
