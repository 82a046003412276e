package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// maxTraceCandidates bounds the candidates listed in a trace (all are counted).
const maxTraceCandidates = 40

// Pull gives the agent the best item they may take now ("Get next"), assigned to them;
// ok is false when nothing fits. It honours skills, languages and capacity like push.
func (e *Engine) Pull(ctx context.Context, agent store.User) (store.WorkItem, bool, error) {
	for range 50 { // an item another node took meanwhile: choose again
		c, tr, err := e.choose(agent.ID)
		if err != nil {
			return store.WorkItem{}, false, err
		}
		if c == nil {
			return store.WorkItem{}, false, nil
		}
		tr.Agent = agent.Username
		err = e.assign(ctx, c, agent.ID, agent.ID, agent.Username, store.StateAssigned, tr)
		switch {
		case errors.Is(err, store.ErrStateChanged):
			continue
		case errors.Is(err, store.ErrCapacity):
			return store.WorkItem{}, false, ErrAtCapacity
		case err != nil:
			return store.WorkItem{}, false, err
		}
		w, err := e.st.WorkItem(ctx, c.it.ID)
		if err != nil {
			return store.WorkItem{}, false, err
		}
		return w, true, nil
	}
	return store.WorkItem{}, false, nil
}

// choose picks, under the lock, the best item for the agent and reserves it.
func (e *Engine) choose(agentID int64) (*candidate, *Trace, error) {
	cfg := e.Config()
	if cfg == nil {
		return nil, nil, errors.New("routing: the engine is not loaded")
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.agents[agentID]
	if a == nil {
		a = &agentState{Agent: store.Agent{UserID: agentID, Capacity: 5, Status: store.AgentOffline}}
	}
	capacity := a.Capacity
	if capacity <= 0 {
		capacity = 5
	}
	if a.load >= capacity {
		return nil, nil, ErrAtCapacity
	}
	var best *candidate
	var weighed []*candidate
	excluded := map[string]int{}
	for qid, classes := range e.index.queues {
		q := cfg.Queues[qid]
		if q == nil || !q.Enabled || !q.servesAny(agentID) {
			continue
		}
		for _, cl := range classes {
			for _, it := range cl.items {
				c := e.makeCandidate(cfg, it, now)
				if c == nil {
					break
				}
				why := e.exclusion(a, c, now, false)
				if why == "" {
					weighed = append(weighed, c)
					if best == nil || better(c, best) {
						best = c
					}
					break
				}
				excluded[why]++
				// Skills, language and queue exclude the whole class (the head is the most
				// relaxed); a decline or a reservation only this item.
				if !slices.Contains(it.DeclinedBy, agentID) && it.PreferredAgent == 0 {
					break
				}
			}
		}
	}
	if best == nil {
		return nil, nil, nil
	}
	e.index.remove(best.it.ID)
	e.index.reserved[best.it.ID] = true
	a.load++
	sort.Slice(weighed, func(i, j int) bool { return better(weighed[i], weighed[j]) })
	tr := &Trace{Mode: "pull", At: now, ItemID: best.it.ID, AgentID: agentID, Queue: best.q.Name,
		Priority: best.priority, Breakdown: best.bd, Skills: best.skills, Language: best.it.Language,
		Excluded: excluded, Considered: len(weighed) + sumCounts(excluded),
		Why: fmt.Sprintf("the agent asked for the next item; of %d items they may take, this has the highest priority (%d)",
			len(weighed), best.priority)}
	for i, c := range weighed {
		if i == maxTraceCandidates {
			break
		}
		tr.Candidates = append(tr.Candidates, TraceCandidate{ItemID: c.it.ID, Priority: c.priority, Queue: c.q.Name, Rank: i + 1})
	}
	return best, tr, nil
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
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
		if a != nil && to == store.StateOffered {
			a.offers++
		}
		if a != nil && to == store.StateAssigned {
			a.LastAssignedAt = e.now()
		}
	case errors.Is(err, store.ErrStateChanged):
		// Taken by someone else: it stays out of the index until a refresh says otherwise.
		if a != nil {
			a.load = max(0, a.load-1)
		}
	default:
		if a != nil {
			a.load = max(0, a.load-1)
		}
		e.index.put(c.it)
	}
	return err
}

func (e *Engine) capacityOf(agentID int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.agents[agentID]; a != nil && a.Capacity > 0 {
		return a.Capacity
	}
	return 5
}

// push offers the best items to the best available agents until no item or agent fits.
func (e *Engine) push(ctx context.Context) error {
	cfg := e.Config()
	if cfg == nil {
		return nil
	}
	for range 10000 {
		c, a, tr := e.pickPush(cfg)
		if c == nil {
			return nil
		}
		err := e.assign(ctx, c, a.UserID, 0, "system", store.StateOffered, tr)
		if err != nil && !errors.Is(err, store.ErrStateChanged) && !errors.Is(err, store.ErrCapacity) {
			return err
		}
		if err == nil && e.onOffer != nil {
			e.onOffer(c.it.ID, a.UserID)
		}
	}
	return nil
}

// pickPush chooses, under the lock, the highest-priority item that some available agent
// may take and the best such agent (most proficient, then least loaded, then longest
// idle), and reserves the item.
func (e *Engine) pickPush(cfg *Config) (*candidate, *agentState, *Trace) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var ready []*agentState
	for _, a := range e.agents {
		if a.Status == store.AgentAvailable && !a.Disabled && a.offers == 0 && a.load < e.pacedCapacity(a, now) {
			ready = append(ready, a)
		}
	}
	if len(ready) == 0 {
		return nil, nil, nil
	}
	slices.SortFunc(ready, func(x, y *agentState) int { return int(x.UserID - y.UserID) })
	// The heads of every class, best first.
	var heads []*candidate
	for qid, classes := range e.index.queues {
		q := cfg.Queues[qid]
		if q == nil || !q.Enabled {
			continue
		}
		for _, cl := range classes {
			for i, it := range cl.items {
				if i == 8 { // declined or reserved items are rare: look a little further only
					break
				}
				if c := e.makeCandidate(cfg, it, now); c != nil {
					heads = append(heads, c)
				}
			}
		}
	}
	sort.Slice(heads, func(i, j int) bool { return better(heads[i], heads[j]) })
	for _, c := range heads {
		var best *agentState
		excluded := map[string]int{}
		var listed []TraceCandidate
		var fit []*agentState
		for _, a := range ready {
			if why := e.exclusion(a, c, now, true); why != "" {
				excluded[why]++
				if len(listed) < maxTraceCandidates/2 && c.q.Serves(a.UserID, c.it.Overflowed) {
					listed = append(listed, e.traceAgent(a, c, now, why))
				}
				continue
			}
			fit = append(fit, a)
			if best == nil || e.betterAgent(a, best, c) {
				best = a
			}
		}
		if best == nil {
			continue
		}
		slices.SortFunc(fit, func(x, y *agentState) int {
			if e.betterAgent(x, y, c) {
				return -1
			}
			if e.betterAgent(y, x, c) {
				return 1
			}
			return 0
		})
		tr := &Trace{Mode: "push", At: now, ItemID: c.it.ID, AgentID: best.UserID, Agent: best.Username, Queue: c.q.Name,
			Priority: c.priority, Breakdown: c.bd, Skills: c.skills, Language: c.it.Language, Excluded: excluded,
			Considered: len(ready),
			Why: fmt.Sprintf("highest-priority waiting item (%d) that an available agent may take; of %d agents who fit, %s is the most proficient (%d), then least loaded (%d of %d), then longest idle",
				c.priority, len(fit), best.Username, proficiency(best, c.skills), best.load, best.Capacity)}
		for i, a := range fit {
			if i == maxTraceCandidates/2 {
				break
			}
			tc := e.traceAgent(a, c, now, "")
			tc.Rank = i + 1
			tr.Candidates = append(tr.Candidates, tc)
		}
		tr.Candidates = append(tr.Candidates, listed...)
		e.index.remove(c.it.ID)
		e.index.reserved[c.it.ID] = true
		best.load++
		return c, best, tr
	}
	return nil, nil, nil
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
