package routing_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/testenv"
)

// TestOfferExpiryTwoNodes: an offer made by one node's engine expires from the database:
// when it is past, the engines of two nodes on one PostgreSQL database both look at once,
// and the offer is taken back exactly once (a conditional change) and offered once to
// another agent; no process's timer is involved.
func TestOfferExpiryTwoNodes(t *testing.T) {
	st, err := postgres.Open(t.Context(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := newWorldOn(t, st)
	w.queue("Support", routing.QueueSettings{OfferTimeoutS: 60})
	id := w.item("Support", time.Minute, store.Classification{})
	for _, n := range []string{"ann", "bob", "cyd"} {
		w.agent(n, nil, nil, 5, store.AgentAvailable)
	}
	a := w.start(true)
	w.step()
	first := w.state(id)
	if first.State != store.StateOffered {
		t.Fatalf("node A's step: %s, want offered", first.State)
	}
	b := routing.NewEngine(routing.EngineOptions{Store: st, Now: w.clk.Now, Ramp: time.Millisecond, IdleTimeout: -1})
	if err := b.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(61 * time.Second)
	var wg sync.WaitGroup
	for _, e := range []*routing.Engine{a, b} {
		wg.Go(func() {
			if err := e.Step(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	again := w.state(id)
	if again.State != store.StateOffered || again.OfferedTo == first.OfferedTo {
		t.Fatalf("after the timeout: %s to %d (first offered to %d), want offered to another agent", again.State, again.OfferedTo, first.OfferedTo)
	}
	events, _ := st.Events(t.Context(), id)
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "created,offer,offer_timeout,offer" {
		t.Errorf("history = %s, want one timeout and one new offer", got)
	}
}
