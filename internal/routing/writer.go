package routing

import (
	"context"
	"fmt"

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

// run writes batches until ctx ends.
func (w *writer) run(ctx context.Context) {
	close(w.on)
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
