package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/wakeup"
)

// EngineStore is what the assignment engine needs of the store.
type EngineStore interface {
	ConfigStore
	RoutingItems(ctx context.Context, since time.Time) ([]store.RoutingItem, error)
	ApplyChanges(ctx context.Context, changes []store.Change) ([]store.ChangeResult, error)
	ExpiredOffers(ctx context.Context, now time.Time) ([]store.RoutingItem, error)
	AgentLoads(ctx context.Context) (map[int64]int, error)
	OfferCounts(ctx context.Context) (map[int64]int, error)
	RoutingItem(ctx context.Context, id int64) (store.RoutingItem, error)
	SetAgentStatus(ctx context.Context, userID int64, status string, at time.Time) error
	WorkItem(ctx context.Context, id int64) (store.WorkItem, error)
	ListWorkItems(ctx context.Context, f store.WorkItemFilter) ([]store.WorkItem, error)
	AddEvent(ctx context.Context, e store.Event) error
	NoteSLA(ctx context.Context, now time.Time) ([]store.Event, error)
}

// ErrAtCapacity is returned by Pull when the agent has as many items as their capacity.
var ErrAtCapacity = errors.New("you have as many items as your capacity allows: finish one first")

// EngineOptions configure an Engine.
type EngineOptions struct {
	Store  EngineStore
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); tests pass a fake one.
	Now func() time.Time
	// Tick is how often the engine refreshes, expires offers and pushes (1 s when 0).
	Tick time.Duration
	// Ramp paces an agent who comes online: one more item of capacity per Ramp (60 s when
	// 0), so that the first agent in the morning does not get the whole backlog at once.
	Ramp time.Duration
	// IdleTimeout sets an agent offline after this long without a request (30 min when 0;
	// negative: never).
	IdleTimeout time.Duration
	// NoPush turns push offers off (the engine then only answers pulls).
	NoPush bool
	// OnOffer, when set, is told of each offer made (live views, the routing benchmark).
	OnOffer func(itemID, agentID int64)
	// OnDecision, when set, is told how long each choice took: from the request (a pull,
	// or a push round per offer) until the engine had chosen, the wait for the decider and
	// its lock included; the store's commit, and the pulling goroutine's wait to run
	// again, not (the benchmark's p99_decision_ms; p99_assign_ms has the rest).
	OnDecision func(d time.Duration)
	// Wakeups carries wake-ups to and from the other nodes (internal/wakeup): the engine
	// publishes its changes and what it is told of through Wake, SetStatus and
	// AgentChanged, and looks at once when another node publishes. nil: an in-process
	// bus of its own (one node).
	Wakeups *wakeup.Bus
}

// agentState is what the engine knows of an agent.
type agentState struct {
	store.Agent
	load   int // items offered or assigned
	offers int // of those, offers not yet answered
}

// Engine assigns work items to agents: it pushes offers to available agents and answers
// agents' pulls ("Get next"), both with the same choice, honouring skills, languages and
// capacity. It keeps an index of the queued items in memory for speed; the store stays the
// truth: every assignment is a conditional change (the item must still be queued, the
// agent under capacity), so that one item goes to at most one agent even with several
// processes on one PostgreSQL, and the index is refreshed from the store's changes.
type Engine struct {
	st         EngineStore
	log        *slog.Logger
	now        func() time.Time
	tick       time.Duration
	ramp       time.Duration
	idle       time.Duration
	noPush     bool
	onOffer    func(itemID, agentID int64)
	onDecision func(d time.Duration)

	cfg atomic.Pointer[Config]
	// bus carries wake-ups; work, views and agents are this engine's subscriptions.
	bus                *wakeup.Bus
	work, views, agent *wakeup.Subscription
	w                  *writer
	// decide takes pulls to the decider; deciding is closed once it runs.
	decide   chan chooseReq
	deciding chan struct{}

	mu     sync.Mutex
	index  *index
	agents map[int64]*agentState
	// seen is the newest UpdatedAt the index has read; known the UpdatedAt of each item
	// read within the refresh margin, so that a refresh skips what it has seen.
	seen time.Time
	// refreshMu serialises refreshes and guards known.
	refreshMu sync.Mutex
	known     map[int64]time.Time

	changes changeSignal
}

// NewEngine returns an Engine; Start loads it and runs it.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{st: opts.Store, log: opts.Logger, now: opts.Now, tick: opts.Tick, ramp: opts.Ramp,
		idle: opts.IdleTimeout, noPush: opts.NoPush, onOffer: opts.OnOffer, onDecision: opts.OnDecision, bus: opts.Wakeups,
		agents: map[int64]*agentState{}, known: map[int64]time.Time{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.tick <= 0 {
		e.tick = time.Second
	}
	if e.ramp <= 0 {
		e.ramp = time.Minute
	}
	if e.idle == 0 {
		e.idle = 30 * time.Minute
	}
	if e.bus == nil {
		e.bus = wakeup.NewLocal()
	}
	e.work, e.views, e.agent = e.bus.Subscribe(wakeup.Work, 0), e.bus.Subscribe(wakeup.View, 0), e.bus.Subscribe(wakeup.Agent, 0)
	e.w = newWriter(opts.Store)
	e.decide, e.deciding = make(chan chooseReq, maxBatch), make(chan struct{})
	e.index = newIndex(e.rank)
	return e
}

// rank computes an item's candidate now with the current configuration (the index's
// ordering of class heads).
func (e *Engine) rank(it store.RoutingItem) *candidate {
	cfg := e.Config()
	if cfg == nil {
		return nil
	}
	return e.makeCandidate(cfg, it, e.now())
}

// Config returns the current configuration snapshot (nil before Load).
func (e *Engine) Config() *Config { return e.cfg.Load() }

// Load reads the configuration, the agents and the queued items.
func (e *Engine) Load(ctx context.Context) error {
	if err := e.reloadConfig(ctx, true); err != nil {
		return err
	}
	items, err := e.st.RoutingItems(ctx, time.Time{})
	if err != nil {
		return fmt.Errorf("routing: load queued items: %w", err)
	}
	e.mu.Lock()
	e.index = newIndex(e.rank)
	for _, it := range items {
		e.noteSeen(it.UpdatedAt)
		if it.State == store.StateQueued {
			e.index.put(it)
		}
	}
	if e.seen.IsZero() {
		e.seen = e.now()
	}
	e.mu.Unlock()
	return e.refreshAgents(ctx)
}

// reloadConfig loads a new configuration snapshot when the stored version changed.
func (e *Engine) reloadConfig(ctx context.Context, force bool) error {
	if !force {
		v, err := e.st.RoutingVersion(ctx)
		if err != nil {
			return fmt.Errorf("routing: configuration version: %w", err)
		}
		if c := e.cfg.Load(); c != nil && c.Version == v && v != "" {
			return nil
		}
	}
	c, problems, err := LoadConfig(ctx, e.st)
	if err != nil {
		return err
	}
	for _, p := range problems {
		e.log.Warn("routing configuration object skipped: fix it on its admin page", slog.Any("error", p))
	}
	e.cfg.Store(c)
	return nil
}

// refreshAgents reloads the agents' profiles, statuses and loads.
func (e *Engine) refreshAgents(ctx context.Context) error {
	list, err := e.st.ListAgents(ctx)
	if err != nil {
		return fmt.Errorf("routing: load agents: %w", err)
	}
	loads, err := e.st.AgentLoads(ctx)
	if err != nil {
		return fmt.Errorf("routing: load agents: %w", err)
	}
	byAgent, err := e.st.OfferCounts(ctx)
	if err != nil {
		return fmt.Errorf("routing: load offers: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	agents := make(map[int64]*agentState, len(list))
	for _, a := range list {
		agents[a.UserID] = &agentState{Agent: a, load: loads[a.UserID], offers: byAgent[a.UserID]}
	}
	e.agents = agents
	return nil
}

func (e *Engine) noteSeen(t time.Time) {
	if t.After(e.seen) {
		e.seen = t
	}
}

// refreshMargin is how far back a refresh reads before the newest change it saw: commits
// of other transactions (and nodes) that started earlier land with an earlier time.
const refreshMargin = time.Second

// refreshItems reads the items changed since the last refresh (with a margin for clock
// differences between nodes and commits in flight) into the index.
func (e *Engine) refreshItems(ctx context.Context) error {
	return e.refreshSince(ctx, refreshMargin)
}

// refreshSince reads the items changed since margin before the newest change seen.
func (e *Engine) refreshSince(ctx context.Context, margin time.Duration) error {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	e.mu.Lock()
	since := e.seen.Add(-margin)
	e.mu.Unlock()
	items, err := e.st.RoutingItems(ctx, since)
	if err != nil {
		return fmt.Errorf("routing: refresh items: %w", err)
	}
	// What was read before is skipped without the engine's lock, so that pulls wait only
	// for the changes that matter.
	for id, at := range e.known {
		if at.Before(since) {
			delete(e.known, id)
		}
	}
	fresh := items[:0]
	newest := time.Time{}
	for _, it := range items {
		if it.UpdatedAt.After(newest) {
			newest = it.UpdatedAt
		}
		if at, ok := e.known[it.ID]; ok && at.Equal(it.UpdatedAt) {
			continue
		}
		e.known[it.ID] = it.UpdatedAt
		fresh = append(fresh, it)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteSeen(newest)
	for _, it := range fresh {
		if e.index.reserved[it.ID] {
			continue
		}
		if it.State == store.StateQueued {
			e.index.put(it)
		} else {
			e.index.remove(it.ID)
		}
	}
	return nil
}

// Wake asks the engines of every node to look for work now (an item arrived, an agent
// became available); the live views refresh.
func (e *Engine) Wake() {
	e.changes.notify()
	e.bus.Publish(wakeup.Work, 0)
}

// Run refreshes, expires offers and pushes until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	go e.w.run(ctx)
	go e.decider(ctx)
	t := time.NewTicker(e.tick)
	defer t.Stop()
	full := true
	for {
		step := e.Step
		if !full {
			step = e.quickStep
		}
		if err := step(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("routing step failed; retrying", slog.Any("error", err))
		}
		var ok bool
		if full, ok = e.next(ctx, t.C); !ok {
			return
		}
	}
}

// next waits for the next round: the tick (a full step) or a wake-up (a quick one). A
// change only the live views show wakes them without a round.
func (e *Engine) next(ctx context.Context, tick <-chan time.Time) (full, ok bool) {
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-tick:
			return true, true
		case <-e.views.C():
			// This node or another changed what the views show (an offer, an accept).
			e.changes.notify()
			continue
		case <-e.agent.C():
			// An agent changed on this node or another: their status and capacity count
			// at once.
			if err := e.refreshAgents(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("routing: reload agents", slog.Any("error", err))
			}
		case <-e.work.C():
		}
		e.changes.notify()
		// Wake-ups come in bursts (every accept, every stored batch): answer them at most
		// every quickEvery, together.
		select {
		case <-ctx.Done():
			return false, false
		case <-time.After(quickEvery):
		}
		return false, true
	}
}

// rerank recomputes the heads' priorities queue by queue, taking the lock for one queue at
// a time so that pulls are not held up by the whole index.
func (e *Engine) rerank() {
	now := e.now()
	e.mu.Lock()
	ids := make([]int64, 0, len(e.index.queues))
	for id := range e.index.queues {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		e.mu.Lock()
		if q := e.index.queues[id]; q != nil {
			q.rerank(e.index.rank)
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.index.rankedAt = now
	e.mu.Unlock()
}

// quickEvery is the shortest time between two wake-up rounds.
const quickEvery = 20 * time.Millisecond

// quickStep answers a wake-up: the items changed since the last look, then offers. It
// reads from the newest change seen, without the margin for commits in flight, which the
// next full step (every tick) rereads: a wake-up comes many times a second when work
// flows, and rereading a second of changes each time would cost more than it finds.
func (e *Engine) quickStep(ctx context.Context) error {
	// A configuration change (saved on any node) is taken at once: its version is one
	// small read.
	if err := e.reloadConfig(ctx, false); err != nil {
		return err
	}
	if err := e.refreshSince(ctx, 0); err != nil {
		return err
	}
	if e.noPush {
		return nil
	}
	return e.push(ctx)
}

// Step runs one round: configuration, agents and items refreshed, expired offers taken
// back, idle agents set offline, absent agents' items returned, offers pushed.
func (e *Engine) Step(ctx context.Context) error {
	if err := e.reloadConfig(ctx, false); err != nil {
		return err
	}
	if err := e.refreshAgents(ctx); err != nil {
		return err
	}
	if err := e.refreshItems(ctx); err != nil {
		return err
	}
	e.rerank()
	if err := e.expireOffers(ctx); err != nil {
		return err
	}
	if err := e.idleAgents(ctx); err != nil {
		return err
	}
	if err := e.returnAbsent(ctx); err != nil {
		return err
	}
	if _, err := e.st.NoteSLA(ctx, e.now()); err != nil {
		return fmt.Errorf("routing: SLA events: %w", err)
	}
	if e.noPush {
		return nil
	}
	return e.push(ctx)
}

// apply runs changes through the batching writer.
func (e *Engine) apply(ctx context.Context, c store.Change) error {
	err := e.w.apply(ctx, c)
	if err == nil {
		e.changes.notify()
		e.bus.Publish(wakeup.View, 0)
	}
	return err
}

// expireOffers takes back offers not answered in time: the item goes back to its queue
// with its age kept, and the agent is not offered it again.
func (e *Engine) expireOffers(ctx context.Context) error {
	now := e.now()
	list, err := e.st.ExpiredOffers(ctx, now)
	if err != nil {
		return fmt.Errorf("routing: expired offers: %w", err)
	}
	for _, it := range list {
		if err := e.returnOffer(ctx, it, it.OfferedTo, "offer not accepted in time", "offer_timeout", store.Event{}); err != nil &&
			!errors.Is(err, store.ErrStateChanged) {
			return err
		}
	}
	return nil
}

// returnOffer puts an offered item back in its queue, remembering who declined it.
func (e *Engine) returnOffer(ctx context.Context, it store.RoutingItem, agentID int64, reason, kind string, actor store.Event) error {
	declined := append(slices.Clone(it.DeclinedBy), agentID)
	zero := int64(0)
	var zt time.Time
	c := store.Change{WorkItemID: it.ID, From: []string{store.StateOffered}, IfAgent: agentID, To: store.StateQueued,
		OfferedTo: &zero, OfferExpiresAt: &zt, DeclinedBy: declined,
		Event: store.Event{Kind: kind, ActorID: actor.ActorID, Actor: actor.Actor, AgentID: agentID, QueueID: it.QueueID, Reason: reason}}
	if it.PreferredAgent == agentID {
		c.PreferredAgent = &zero
	}
	if len(declined) >= MaxDeclines {
		flag := fmt.Sprintf("declined or not accepted %d times: a supervisor should look at it", len(declined))
		c.Flag = &flag
	}
	if err := e.apply(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	if a := e.agents[agentID]; a != nil {
		a.load = max(0, a.load-1)
		a.offers = max(0, a.offers-1)
	}
	it.State, it.OfferedTo, it.DeclinedBy = store.StateQueued, 0, declined
	if it.PreferredAgent == agentID {
		it.PreferredAgent = 0
	}
	e.index.put(it)
	e.mu.Unlock()
	e.Wake()
	return nil
}

// Decline is an agent's refusal of an offer.
func (e *Engine) Decline(ctx context.Context, agent store.User, itemID int64, reason string) error {
	it, err := e.itemFromStore(ctx, itemID)
	if err != nil {
		return err
	}
	if it.State != store.StateOffered || it.OfferedTo != agent.ID {
		return store.ErrStateChanged
	}
	why := "declined"
	if reason = strings.TrimSpace(reason); reason != "" {
		why += ": " + reason
	}
	return e.returnOffer(ctx, it, agent.ID, why, "decline", store.Event{ActorID: agent.ID, Actor: agent.Username})
}

// Accept is an agent's acceptance of an offer.
func (e *Engine) Accept(ctx context.Context, agent store.User, itemID int64) error {
	zero := int64(0)
	var zt time.Time
	id := agent.ID
	err := e.apply(ctx, store.Change{WorkItemID: itemID, From: []string{store.StateOffered}, IfAgent: agent.ID,
		To: store.StateAssigned, AssignedTo: &id, OfferedTo: &zero, OfferExpiresAt: &zt, AgentAssigned: agent.ID,
		Event: store.Event{Kind: "accept", ActorID: agent.ID, Actor: agent.Username, AgentID: agent.ID, Reason: "offer accepted"}})
	if err != nil {
		return err
	}
	e.mu.Lock()
	if a := e.agents[agent.ID]; a != nil {
		a.offers = max(0, a.offers-1)
		a.LastAssignedAt = e.now()
	}
	e.mu.Unlock()
	e.Wake()
	return nil
}

func (e *Engine) itemFromStore(ctx context.Context, id int64) (store.RoutingItem, error) {
	it, err := e.st.RoutingItem(ctx, id)
	if store.IsNotFound(err) {
		return it, store.ErrStateChanged
	}
	return it, err
}

// idleAgents sets offline the agents who made no request for the idle timeout.
func (e *Engine) idleAgents(ctx context.Context) error {
	if e.idle < 0 {
		return nil
	}
	now := e.now()
	var idle []int64
	e.mu.Lock()
	for id, a := range e.agents {
		last := a.LastSeenAt
		if a.StatusAt.After(last) {
			last = a.StatusAt
		}
		if a.Status != store.AgentOffline && !last.IsZero() && now.Sub(last) > e.idle {
			idle = append(idle, id)
		}
	}
	e.mu.Unlock()
	for _, id := range idle {
		if err := e.SetStatus(ctx, id, store.AgentOffline); err != nil {
			return err
		}
	}
	// Offers to agents who went away through another node or page go back too.
	e.mu.Lock()
	var gone []*agentState
	for _, a := range e.agents {
		if a.offers > 0 && (a.Status != store.AgentAvailable || a.Disabled) {
			gone = append(gone, a)
		}
	}
	e.mu.Unlock()
	for _, a := range gone {
		if err := e.returnOffersOf(ctx, a.UserID, a.Status); err != nil {
			return err
		}
	}
	return nil
}

// AgentChanged reloads an agent whose profile or status was changed elsewhere (the pages
// and the API save it through the store): offers to an agent no longer available go back
// to their queue, and the engine looks for work at once.
func (e *Engine) AgentChanged(ctx context.Context, agentID int64) error {
	if err := e.refreshAgents(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	a := e.agents[agentID]
	away := a != nil && (a.Status != store.AgentAvailable || a.Disabled) && a.offers > 0
	status := ""
	if a != nil {
		status = a.Status
	}
	e.mu.Unlock()
	if away {
		if err := e.returnOffersOf(ctx, agentID, status); err != nil {
			return err
		}
	}
	e.bus.Publish(wakeup.Agent, agentID)
	e.Wake()
	return nil
}

// returnOffersOf puts the items offered to an agent back in their queues.
func (e *Engine) returnOffersOf(ctx context.Context, agentID int64, status string) error {
	offered, err := e.st.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateOffered, OfferedTo: agentID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, w := range offered {
		it, err := e.itemFromStore(ctx, w.ID)
		if err != nil {
			continue
		}
		if err := e.returnOffer(ctx, it, agentID, "the agent went "+status, "offer_returned", store.Event{}); err != nil &&
			!errors.Is(err, store.ErrStateChanged) {
			return err
		}
	}
	return nil
}

// ReturnAllOffers puts every item on offer back in its queue, with its age kept: a single
// node that stops calls it, since nobody can accept an offer until it is back. (With
// several nodes offers stay: the agents' other nodes serve them, and an offer expires from
// the database.) It returns how many offers went back.
func (e *Engine) ReturnAllOffers(ctx context.Context, reason string) (int, error) {
	offered, err := e.st.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateOffered, Limit: 10000})
	if err != nil {
		return 0, fmt.Errorf("routing: list offers: %w", err)
	}
	n := 0
	for _, w := range offered {
		it, err := e.itemFromStore(ctx, w.ID)
		if err != nil {
			continue
		}
		err = e.returnOffer(ctx, it, it.OfferedTo, reason, "offer_returned", store.Event{})
		switch {
		case errors.Is(err, store.ErrStateChanged):
		case err != nil:
			return n, fmt.Errorf("routing: return offer of work item %d: %w", w.ID, err)
		default:
			n++
		}
	}
	return n, nil
}

// SetStatus sets an agent's status; items offered to an agent who goes away or offline
// go back to their queue.
func (e *Engine) SetStatus(ctx context.Context, agentID int64, status string) error {
	now := e.now()
	if err := e.st.SetAgentStatus(ctx, agentID, status, now); err != nil {
		return err
	}
	e.mu.Lock()
	if a := e.agents[agentID]; a != nil {
		a.Status, a.StatusAt, a.LastSeenAt = status, now, now
	}
	e.mu.Unlock()
	if status != store.AgentAvailable {
		if err := e.returnOffersOf(ctx, agentID, status); err != nil {
			return err
		}
	}
	e.bus.Publish(wakeup.Agent, agentID)
	e.Wake()
	return nil
}

// returnAbsent returns the assigned items of agents away or offline for longer than their
// queue's ReturnAfterS.
func (e *Engine) returnAbsent(ctx context.Context) error {
	cfg := e.Config()
	if cfg == nil {
		return nil
	}
	anyReturn := false
	for _, q := range cfg.Queues {
		if q.Settings.ReturnAfterS > 0 {
			anyReturn = true
		}
	}
	if !anyReturn {
		return nil
	}
	now := e.now()
	e.mu.Lock()
	var absent []*agentState
	for _, a := range e.agents {
		if a.Status != store.AgentAvailable && a.load > 0 {
			absent = append(absent, a)
		}
	}
	e.mu.Unlock()
	for _, a := range absent {
		items, err := e.st.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateAssigned, AssignedTo: a.UserID, Limit: 1000})
		if err != nil {
			return err
		}
		for _, w := range items {
			q := cfg.Queues[w.QueueID]
			if q == nil || q.Settings.ReturnAfterS <= 0 || now.Sub(a.StatusAt) < time.Duration(q.Settings.ReturnAfterS)*time.Second {
				continue
			}
			zero := int64(0)
			err := e.apply(ctx, store.Change{WorkItemID: w.ID, From: []string{store.StateAssigned}, IfAgent: a.UserID,
				To: store.StateQueued, AssignedTo: &zero,
				Event: store.Event{Kind: "returned", AgentID: a.UserID, QueueID: w.QueueID,
					Reason: fmt.Sprintf("the agent has been %s since %s", a.Status, a.StatusAt.UTC().Format(time.RFC3339))}})
			if err != nil && !errors.Is(err, store.ErrStateChanged) {
				return err
			}
		}
	}
	return nil
}

// candidate is an item the engine may give out, with its priority now.
type candidate struct {
	it       store.RoutingItem
	q        *Queue
	priority int
	bd       Breakdown
	age      time.Duration
	skills   map[string]int // after relaxation
}

// better orders candidates: highest priority first, oldest first on ties.
func better(a, b *candidate) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if !a.it.QueuedAt.Equal(b.it.QueuedAt) {
		return a.it.QueuedAt.Before(b.it.QueuedAt)
	}
	return a.it.ID < b.it.ID
}

// overflowed reports whether an item is past its queue's overflow time (or its queue is
// over its back-pressure limit).
func (e *Engine) overflowed(q *Queue, it store.RoutingItem, age time.Duration) bool {
	s := q.Settings
	if it.Overflowed {
		return true
	}
	if s.OverflowAfterS > 0 && age >= time.Duration(s.OverflowAfterS)*time.Second {
		return true
	}
	return s.MaxDepth > 0 && e.index.depth(q.ID) > s.MaxDepth
}

// makeCandidate computes an item's priority and relaxed requirements at now.
func (e *Engine) makeCandidate(cfg *Config, it store.RoutingItem, now time.Time) *candidate {
	q := cfg.Queues[it.QueueID]
	if q == nil || !q.Enabled {
		return nil
	}
	age := now.Sub(it.QueuedAt)
	if e.overflowed(q, it, age) && !it.Overflowed {
		it.Overflowed = true
	}
	p, bd := cfg.Priority(it, now)
	return &candidate{it: it, q: q, priority: p, bd: bd, age: age, skills: q.Settings.relaxed(it.Skills, age)}
}

// exclusion says why an agent may not take an item now ("" when they may).
//
// Whether the agent may take the item is decided by agentFree, classFits and itemFits (the
// checks choices run); this only puts the reason into words, for the decision trace.
func (e *Engine) exclusion(a *agentState, c *candidate, now time.Time, push bool) string {
	if e.agentFree(a, now, push) && classFits(a, c) && itemFits(a, &c.it, now) {
		return ""
	}
	switch {
	case a.Disabled:
		return "user disabled"
	case push && a.Status != store.AgentAvailable:
		return "status " + a.Status
	case !c.q.Serves(a.UserID, c.it.Overflowed):
		return "does not serve queue " + c.q.Name
	case slices.Contains(c.it.DeclinedBy, a.UserID):
		return "declined it or let the offer expire"
	case c.it.PreferredAgent != 0 && c.it.PreferredAgent != a.UserID && now.Before(c.it.PreferredUntil):
		return "reserved for the agent who answered the conversation last until " + c.it.PreferredUntil.UTC().Format(time.RFC3339)
	}
	if c.it.Language != "" && !slices.Contains(a.Languages, c.it.Language) {
		return "does not speak " + c.it.Language
	}
	for skill, level := range c.skills {
		if a.Skills[skill] < level {
			if a.Skills[skill] == 0 {
				return fmt.Sprintf("lacks skill %s (needs %d)", skill, level)
			}
			return fmt.Sprintf("skill %s at %d, needs %d", skill, a.Skills[skill], level)
		}
	}
	capacity := a.Capacity
	if capacity <= 0 {
		capacity = 5
	}
	if a.load >= capacity {
		return fmt.Sprintf("at capacity (%d of %d)", a.load, capacity)
	}
	if push {
		if a.offers > 0 {
			return "has an offer waiting for an answer"
		}
		if paced := e.pacedCapacity(a, now); a.load >= paced {
			return fmt.Sprintf("paced after coming online (%d of %d for now)", a.load, paced)
		}
	}
	return "not eligible"
}

// classFits is the fast form of exclusion's checks that hold for a whole class: the queue,
// the language and the (relaxed) skills.
func classFits(a *agentState, c *candidate) bool {
	if !c.q.Serves(a.UserID, c.it.Overflowed) {
		return false
	}
	if c.it.Language != "" && !slices.Contains(a.Languages, c.it.Language) {
		return false
	}
	for skill, level := range c.skills {
		if a.Skills[skill] < level {
			return false
		}
	}
	return true
}

// itemFits is the fast form of exclusion's checks of one item: declines and reservations.
func itemFits(a *agentState, it *store.RoutingItem, now time.Time) bool {
	if slices.Contains(it.DeclinedBy, a.UserID) {
		return false
	}
	return it.PreferredAgent == 0 || it.PreferredAgent == a.UserID || !now.Before(it.PreferredUntil)
}

// agentFree is the fast form of exclusion's checks of the agent: enabled, under capacity
// and, for push, available, without an unanswered offer and within the pacing.
func (e *Engine) agentFree(a *agentState, now time.Time, push bool) bool {
	if a.Disabled {
		return false
	}
	capacity := a.Capacity
	if capacity <= 0 {
		capacity = 5
	}
	if a.load >= capacity {
		return false
	}
	if push {
		return a.Status == store.AgentAvailable && a.offers == 0 && a.load < e.pacedCapacity(a, now)
	}
	return true
}

// pacedCapacity is an agent's capacity while ramping up after becoming available.
func (e *Engine) pacedCapacity(a *agentState, now time.Time) int {
	online := now.Sub(a.StatusAt)
	if online < 0 {
		online = 0
	}
	return min(max(a.Capacity, 1), 1+int(online/e.ramp))
}

// proficiency sums an agent's levels in the item's required skills.
func proficiency(a *agentState, skills map[string]int) int {
	n := 0
	for s := range skills {
		n += a.Skills[s]
	}
	return n
}

// TraceCandidate is one agent (push) or item (pull) the engine considered.
type TraceCandidate struct {
	AgentID     int64  `json:"agent_id,omitempty"`
	Username    string `json:"username,omitempty"`
	ItemID      int64  `json:"item_id,omitempty"`
	Priority    int    `json:"priority,omitempty"`
	Queue       string `json:"queue,omitempty"`
	Excluded    string `json:"excluded,omitempty"`
	Proficiency int    `json:"proficiency,omitempty"`
	Load        int    `json:"load,omitempty"`
	Capacity    int    `json:"capacity,omitempty"`
	IdleS       int64  `json:"idle_s,omitempty"`
	Rank        int    `json:"rank,omitempty"`
}

// Trace is the decision trace of one assignment: why this agent, why now.
type Trace struct {
	Mode      string         `json:"mode"` // "push" or "pull"
	At        time.Time      `json:"at"`
	ItemID    int64          `json:"item_id"`
	AgentID   int64          `json:"agent_id"`
	Agent     string         `json:"agent"`
	Queue     string         `json:"queue"`
	Priority  int            `json:"priority"`
	Breakdown Breakdown      `json:"priority_breakdown"`
	Why       string         `json:"why"`
	Skills    map[string]int `json:"required_skills,omitempty"`
	Language  string         `json:"required_language,omitempty"`
	// Candidates are the agents considered (push: the winner, the runners-up and up to 40
	// excluded ones) or the items weighed (pull: the chosen item and those it beat).
	Candidates []TraceCandidate `json:"candidates"`
	// Excluded counts every excluded candidate by reason, listed or not.
	Excluded   map[string]int `json:"excluded,omitempty"`
	Considered int            `json:"considered"`
}
