package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testConcurrentClaims: many agents claim the same items at once, each in its own order,
// as the assignment engines of several nodes and agents picking from the queue do. Every
// item is assigned exactly once, to the one agent whose claim succeeded; the others get
// ErrStateChanged and nothing else (on PostgreSQL a claim skips a row another transaction
// holds: FOR UPDATE SKIP LOCKED).
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	const (
		agents = 50
		items  = 200
	)
	mb := newMailbox(t, s, "support", store.Inbound)
	var batch []store.InboundMessage
	for i := range items {
		id := fmt.Sprintf("imap:1:%d", i)
		batch = append(batch, mail(mb, id, id+"@x", "claim "+id))
	}
	res, err := s.IngestMessages(ctx, batch)
	must(t, "IngestMessages", err)
	ids := make([]int64, len(res))
	index := map[int64]int{}
	for i, r := range res {
		ids[i] = r.WorkItemID
		index[r.WorkItemID] = i
	}
	users := make([]store.User, agents)
	for i := range users {
		users[i] = newAgent(t, s, fmt.Sprintf("agent%02d", i))
	}

	var wins [items]atomic.Int32
	winner := make([]int64, items)
	var mu sync.Mutex
	perAgent := make([]int, agents)
	errs := make(chan error, agents)
	var wg sync.WaitGroup
	for a := range agents {
		wg.Go(func() {
			agent := users[a].ID
			order := append([]int64(nil), ids...)
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, id := range order {
				r, err := s.ApplyChanges(ctx, []store.Change{{
					WorkItemID: id, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent,
					CapacityOf: agent, Capacity: 1000, AgentAssigned: agent,
					Event: store.Event{Kind: "claim", AgentID: agent, Reason: "concurrent claim"},
				}})
				if err != nil {
					errs <- fmt.Errorf("agent %d claims item %d: %w", agent, id, err)
					return
				}
				switch {
				case r[0].Err == nil:
					i := index[id]
					wins[i].Add(1)
					mu.Lock()
					winner[i] = agent
					perAgent[a]++
					mu.Unlock()
				case errors.Is(r[0].Err, store.ErrStateChanged):
				default:
					errs <- fmt.Errorf("agent %d claims item %d: %w, want nil or ErrStateChanged", agent, id, r[0].Err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	total := 0
	for i, id := range ids {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("item %d was claimed %d times, want exactly once", id, n)
			continue
		}
		total++
		w := getWorkItem(t, s, id)
		if w.State != store.StateAssigned || w.AssignedTo != winner[i] {
			t.Errorf("item %d is %s, assigned to %d; want assigned to the one winner %d", id, w.State, w.AssignedTo, winner[i])
		}
		ev, err := s.Events(ctx, id)
		must(t, "Events", err)
		if len(ev) != 2 || ev[1].Kind != "claim" || ev[1].AgentID != winner[i] || ev[1].From != store.StateQueued {
			t.Errorf("events of item %d = %+v, want its creation and one claim by %d", id, ev, winner[i])
		}
	}
	if total != items {
		t.Errorf("%d items assigned once, want %d", total, items)
	}
	loads, err := s.AgentLoads(ctx)
	must(t, "AgentLoads", err)
	sum := 0
	for a, u := range users {
		if loads[u.ID] != perAgent[a] {
			t.Errorf("AgentLoads[%s] = %d, want the %d items it won", u.Username, loads[u.ID], perAgent[a])
		}
		sum += loads[u.ID]
	}
	if sum != items {
		t.Errorf("AgentLoads sum to %d, want %d", sum, items)
	}
	if left, err := s.RoutingItems(ctx, time.Time{}); err != nil || len(left) != 0 {
		t.Errorf("RoutingItems after the claims = %d items, %v; want none queued", len(left), err)
	}
}
