package routing

import (
	"context"
	"fmt"
	"sync"

	"github.com/postroom/postroom/internal/store"
)

// maxBatch bounds the changes written in one transaction.
const maxBatch = 256

// writer funnels the engine's changes into the store in batches: while one transaction
// commits, the next changes gather, and they commit together. Each change keeps its own
// condition and outcome (store.ApplyChanges), so batching changes throughput, not
// meaning. Before Run starts (or after it ends) changes are written one by one.
type writer struct {
	st   EngineStore
	reqs chan writeReq
	on   chan struct{}
}

type writeReq struct {
	c    store.Change
	done chan error
}

func newWriter(st EngineStore) *writer {
	return &writer{st: st, reqs: make(chan writeReq, maxBatch), on: make(chan struct{})}
}

func (w *writer) apply(ctx context.Context, c store.Change) error {
	select {
	case <-w.on:
	default:
		return w.direct(ctx, c)
	}
	r := writeReq{c: c, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) direct(ctx context.Context, c store.Change) error {
	res, err := w.st.ApplyChanges(ctx, []store.Change{c})
	if err != nil {
		return err
	}
	return res[0].Err
}

// concurrent is implemented by stores that take several write transactions at once
// (PostgreSQL); the writer then runs that many batches in parallel. A store without it
// (SQLite: one writer) gets one.
type concurrent interface {
	WriteConcurrency() int
}

// run writes batches until ctx ends, with as many writers as the store takes.
func (w *writer) run(ctx context.Context) {
	n := 1
	if c, ok := w.st.(concurrent); ok {
		n = max(1, c.WriteConcurrency())
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { w.loop(ctx) })
	}
	close(w.on)
	wg.Wait()
}

// loop takes what is waiting, up to maxBatch, and writes it in one transaction.
func (w *writer) loop(ctx context.Context) {
	batch := make([]writeReq, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-w.reqs:
					r.done <- ctx.Err()
				default:
					return
				}
			}
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		more:
			for len(batch) < maxBatch {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				default:
					break more
				}
			}
			changes := make([]store.Change, len(batch))
			for i, r := range batch {
				changes[i] = r.c
			}
			res, err := w.st.ApplyChanges(context.WithoutCancel(ctx), changes)
			for i, r := range batch {
				switch {
				case err != nil:
					r.done <- fmt.Errorf("routing: write %d changes: %w", len(batch), err)
				default:
					r.done <- res[i].Err
				}
			}
		}
	}
}
