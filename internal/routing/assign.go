package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// maxTraceCandidates bounds the candidates listed in a trace (all are counted).
const maxTraceCandidates = 20

// Pull gives the agent the best item they may take now ("Get next"), assigned to them;
// ok is false when nothing fits. It honours skills, languages and capacity like push.
func (e *Engine) Pull(ctx context.Context, agent store.User) (store.WorkItem, bool, error) {
	id, ok, err := e.PullID(ctx, agent)
	if err != nil || !ok {
		return store.WorkItem{}, ok, err
	}
	w, err := e.st.WorkItem(ctx, id)
	if err != nil {
		return store.WorkItem{}, false, err
	}
	return w, true, nil
}

// PullID is Pull answering the id of the item assigned, without reading it back.
func (e *Engine) PullID(ctx context.Context, agent store.User) (int64, bool, error) {
	// An item another node took meanwhile leaves the index: choose again (each retry
	// removes one stale item, so this ends).
	for ctx.Err() == nil {
		c, tr, err := e.choose(ctx, agent.ID)
		if err != nil {
			return 0, false, err
		}
		if c == nil {
			return 0, false, nil
		}
		tr.Agent = agent.Username
		err = e.assign(ctx, c, agent.ID, agent.ID, agent.Username, store.StateAssigned, tr)
		switch {
		case errors.Is(err, store.ErrStateChanged):
			continue
		case errors.Is(err, store.ErrCapacity):
			return 0, false, ErrAtCapacity
		case err != nil:
			return 0, false, err
		}
		return c.it.ID, true, nil
	}
	return 0, false, ctx.Err()
}

// choose picks the best item for the agent and reserves it. While Run runs, the choice is
// made by the decider, which takes every pull waiting and decides them under one hold of
// the lock: hundreds of agents pulling at once then queue once, not hand the lock from one
// to the next (a convoy that, on a busy machine, costs a scheduling delay per hand-over).
func (e *Engine) choose(ctx context.Context, agentID int64) (*candidate, *Trace, error) {
	select {
	case <-e.deciding:
	default:
		return e.chooseNow(agentID)
	}
	r := chooseReq{agentID: agentID, done: make(chan chooseRes, 1), at: time.Now()}
	select {
	case e.decide <- r:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.c, res.tr, res.err
	case <-ctx.Done():
		// The decider may still reserve an item for this pull: give it back.
		go func() {
			if res := <-r.done; res.c != nil {
				e.mu.Lock()
				delete(e.index.reserved, res.c.it.ID)
				if a := e.agents[agentID]; a != nil {
					a.load = max(0, a.load-1)
				}
				e.index.put(res.c.it)
				e.mu.Unlock()
			}
		}()
		return nil, nil, ctx.Err()
	}
}

// chooseReq is a pull waiting for the decider.
type chooseReq struct {
	agentID int64
	done    chan chooseRes
	at      time.Time // when the pull asked
}

type chooseRes struct {
	c   *candidate
	tr  *Trace
	err error
}

// decider answers the pulls waiting, in batches, until ctx ends.
func (e *Engine) decider(ctx context.Context) {
	close(e.deciding)
	batch := make([]chooseReq, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-e.decide:
					r.done <- chooseRes{err: ctx.Err()}
				default:
					return
				}
			}
		case r := <-e.decide:
			batch = append(batch[:0], r)
		more:
			for len(batch) < maxBatch {
				select {
				case r := <-e.decide:
					batch = append(batch, r)
				default:
					break more
				}
			}
			cfg := e.Config()
			now := e.now()
			e.mu.Lock()
			res := make([]chooseRes, len(batch))
			for i, r := range batch {
				res[i].c, res[i].tr, res[i].err = e.chooseLocked(cfg, r.agentID, now)
			}
			e.mu.Unlock()
			for i, r := range batch {
				if e.onDecision != nil {
					e.onDecision(time.Since(r.at))
				}
				r.done <- res[i]
			}
		}
	}
}

// chooseNow is choose without the decider.
func (e *Engine) chooseNow(agentID int64) (*candidate, *Trace, error) {
	t := time.Now()
	cfg := e.Config()
	now := e.now()
	e.mu.Lock()
	defer func() {
		e.mu.Unlock()
		if e.onDecision != nil {
			e.onDecision(time.Since(t))
		}
	}()
	return e.chooseLocked(cfg, agentID, now)
}

// chooseLocked picks the best item for the agent and reserves it; the caller holds the lock.
func (e *Engine) chooseLocked(cfg *Config, agentID int64, now time.Time) (*candidate, *Trace, error) {
	if cfg == nil {
		return nil, nil, errors.New("routing: the engine is not loaded")
	}
	a := e.agents[agentID]
	if a == nil {
		a = &agentState{Agent: store.Agent{UserID: agentID, Capacity: 5, Status: store.AgentOffline}}
	}
	if !e.agentFree(a, now, false) {
		return nil, nil, ErrAtCapacity
	}
	e.index.fresh(now)
	best, weighed := e.bestFor(cfg, a, now, maxTraceCandidates/2)
	if best == nil {
		return nil, nil, nil
	}
	e.index.remove(best.it.ID)
	e.index.reserved[best.it.ID] = true
	a.load++
	tr := &Trace{Mode: "pull", At: now, ItemID: best.it.ID, AgentID: agentID, Queue: best.q.Name,
		Priority: best.priority, Breakdown: best.bd, Skills: best.skills, Language: best.it.Language,
		Considered: len(weighed),
		Why: fmt.Sprintf("the agent asked for the next item; of the items they may take, this has the highest priority (%d), oldest first on ties",
			best.priority)}
	for i, c := range weighed {
		tr.Candidates = append(tr.Candidates, TraceCandidate{ItemID: c.it.ID, Priority: c.priority, Queue: c.q.Name, Rank: i + 1})
	}
	return best, tr, nil
}

// bestFor returns the best item the agent may take now, and the best item of each class it
// weighed on the way (for the trace, at most keep, best first). Classes are visited in
// their queue's order, so the walk stops at the first class whose head cannot beat the
// best found.
func (e *Engine) bestFor(cfg *Config, a *agentState, now time.Time, keep int) (*candidate, []*candidate) {
	var best *candidate
	var weighed []*candidate
	for qid, q := range e.index.queues {
		cq := cfg.Queues[qid]
		if cq == nil || !cq.Enabled || !cq.servesAny(a.UserID) {
			continue
		}
		for _, cl := range q.order {
			h := cl.head
			if h == nil {
				break // the rest have no candidate either
			}
			if best != nil && better(best, h) {
				break
			}
			if !classFits(a, h) {
				continue
			}
			var c *candidate
			for i, it := range cl.items {
				if itemFits(a, it, now) {
					if i == 0 {
						c = h
					} else {
						c = e.makeCandidate(cfg, *it, now)
					}
					break
				}
			}
			if c == nil {
				continue
			}
			if len(weighed) < keep {
				weighed = append(weighed, c)
			}
			if best == nil || better(c, best) {
				best = c
			}
		}
	}
	sort.Slice(weighed, func(i, j int) bool { return better(weighed[i], weighed[j]) })
	return best, weighed
}

// assign writes an offer or an assignment of a reserved candidate, and settles the index.
func (e *Engine) assign(ctx context.Context, c *candidate, agentID, actorID int64, actor, to string, tr *Trace) error {
	trace, _ := json.Marshal(tr) // a Trace always marshals
	id := agentID
	zero := int64(0)
	ch := store.Change{WorkItemID: c.it.ID, From: []string{store.StateQueued}, To: to, CapacityOf: agentID,
		Capacity: e.capacityOf(agentID), Trace: trace,
		Event: store.Event{ActorID: actorID, Actor: actor, AgentID: agentID, QueueID: c.it.QueueID, Reason: tr.Why}}
	if to == store.StateAssigned {
		ch.AssignedTo, ch.OfferedTo, ch.AgentAssigned = &id, &zero, agentID
		ch.Event.Kind = "assign"
	} else {
		exp := e.now().Add(c.q.Settings.OfferTimeout())
		ch.OfferedTo, ch.OfferExpiresAt = &id, &exp
		ch.Event.Kind = "offer"
	}
	if c.it.Overflowed || (c.age > 0 && e.overflowed(c.q, c.it, c.age)) {
		t := true
		ch.Overflowed = &t
	}
	err := e.apply(ctx, ch)
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.index.reserved, c.it.ID)
	a := e.agents[agentID]
	switch {
	case err == nil:
		if a != nil && to == store.StateAssigned {
			a.LastAssignedAt = e.now()
		}
	case errors.Is(err, store.ErrStateChanged):
		// Taken by someone else: it stays out of the index until a refresh says otherwise.
		e.release(a, to)
	default:
		e.release(a, to)
		e.index.put(c.it)
	}
	return err
}

// release undoes what a reservation counted for the agent.
func (e *Engine) release(a *agentState, to string) {
	if a == nil {
		return
	}
	a.load = max(0, a.load-1)
	if to == store.StateOffered {
		a.offers = max(0, a.offers-1)
	}
}

func (e *Engine) capacityOf(agentID int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.agents[agentID]; a != nil && a.Capacity > 0 {
		return a.Capacity
	}
	return 5
}

// push offers items to the available agents with free capacity, in rounds: each such
// agent proposes the best item it may take; every proposed item, highest priority first,
// goes to the best of its proposers (most proficient, then least loaded, then longest
// idle); the others propose again in the next round.
func (e *Engine) push(ctx context.Context) error {
	cfg := e.Config()
	if cfg == nil {
		return nil
	}
	for range 1000 {
		t := time.Now()
		offers := e.pickPush(cfg)
		if len(offers) == 0 {
			return nil
		}
		if e.onDecision != nil {
			d := time.Since(t) / time.Duration(len(offers))
			for range offers {
				e.onDecision(d)
			}
		}
		// Written concurrently, so that the writer commits them together.
		var wg sync.WaitGroup
		errs := make([]error, len(offers))
		sem := make(chan struct{}, 64)
		for i, o := range offers {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := e.assign(ctx, o.c, o.a.UserID, 0, "system", store.StateOffered, o.tr)
				if err == nil && e.onOffer != nil {
					e.onOffer(o.c.it.ID, o.a.UserID)
				}
				if errors.Is(err, store.ErrStateChanged) || errors.Is(err, store.ErrCapacity) {
					err = nil
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// pushRound bounds the agents of one push round.
const pushRound = 64

// offer is one offer of a push round.
type offer struct {
	c  *candidate
	a  *agentState
	tr *Trace
}

// pickPush runs one round of proposals under the lock and reserves the items offered.
func (e *Engine) pickPush(cfg *Config) []offer {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var ready []*agentState
	for _, a := range e.agents {
		if e.agentFree(a, now, true) {
			ready = append(ready, a)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	// A round takes the longest idle agents first, and at most pushRound of them, so that
	// the lock is not held for long; the next round takes the others.
	if len(ready) > pushRound {
		slices.SortFunc(ready, func(x, y *agentState) int { return x.LastAssignedAt.Compare(y.LastAssignedAt) })
		ready = ready[:pushRound]
	}
	e.index.fresh(now)
	proposals := map[int64][]*agentState{}
	cands := map[int64]*candidate{}
	for _, a := range ready {
		c, _ := e.bestFor(cfg, a, now, 0)
		if c == nil {
			continue
		}
		proposals[c.it.ID] = append(proposals[c.it.ID], a)
		cands[c.it.ID] = c
	}
	items := make([]*candidate, 0, len(cands))
	for _, c := range cands {
		items = append(items, c)
	}
	sort.Slice(items, func(i, j int) bool { return better(items[i], items[j]) })
	var out []offer
	for _, c := range items {
		fit := proposals[c.it.ID]
		slices.SortFunc(fit, func(x, y *agentState) int {
			if e.betterAgent(x, y, c) {
				return -1
			}
			if e.betterAgent(y, x, c) {
				return 1
			}
			return 0
		})
		best := fit[0]
		tr := &Trace{Mode: "push", At: now, ItemID: c.it.ID, AgentID: best.UserID, Agent: best.Username, Queue: c.q.Name,
			Priority: c.priority, Breakdown: c.bd, Skills: c.skills, Language: c.it.Language, Excluded: map[string]int{},
			Considered: len(ready),
			Why: fmt.Sprintf("the best waiting item (priority %d) for %d available agents with free capacity; of them, %s is the most proficient (%d), then least loaded (%d of %d), then longest idle",
				c.priority, len(fit), best.Username, proficiency(best, c.skills), best.load, best.Capacity)}
		for i, a := range fit {
			if i == maxTraceCandidates/2 {
				break
			}
			tc := e.traceAgent(a, c, now, "")
			tc.Rank = i + 1
			tr.Candidates = append(tr.Candidates, tc)
		}
		listed := 0
		for _, a := range ready {
			if slices.Contains(fit, a) {
				continue
			}
			why := e.exclusion(a, c, now, true)
			if why == "" {
				why = "has a better item to take"
			}
			tr.Excluded[why]++
			if listed < maxTraceCandidates/2 && c.q.Serves(a.UserID, c.it.Overflowed) {
				tr.Candidates = append(tr.Candidates, e.traceAgent(a, c, now, why))
				listed++
			}
		}
		e.index.remove(c.it.ID)
		e.index.reserved[c.it.ID] = true
		best.load++
		best.offers++
		out = append(out, offer{c: c, a: best, tr: tr})
	}
	return out
}

// betterAgent orders agents for an item: most proficient, least loaded, longest idle.
func (e *Engine) betterAgent(a, b *agentState, c *candidate) bool {
	pa, pb := proficiency(a, c.skills), proficiency(b, c.skills)
	if pa != pb {
		return pa > pb
	}
	la, lb := float64(a.load)/float64(max(a.Capacity, 1)), float64(b.load)/float64(max(b.Capacity, 1))
	if la != lb {
		return la < lb
	}
	if !a.LastAssignedAt.Equal(b.LastAssignedAt) {
		return a.LastAssignedAt.Before(b.LastAssignedAt)
	}
	return a.UserID < b.UserID
}

func (e *Engine) traceAgent(a *agentState, c *candidate, now time.Time, why string) TraceCandidate {
	idle := int64(0)
	if !a.LastAssignedAt.IsZero() {
		idle = int64(now.Sub(a.LastAssignedAt).Seconds())
	}
	return TraceCandidate{AgentID: a.UserID, Username: a.Username, Excluded: why, Proficiency: proficiency(a, c.skills),
		Load: a.load, Capacity: a.Capacity, IdleS: idle}
}
