package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testConcurrentIngest ingests from several goroutines while another lists work items, as
// ingest loops, the web UI and the outbox do at once: nothing fails (on SQLite: no
// "database is locked") and everything is stored.
func testConcurrentIngest(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	const (
		writers   = 8
		perWriter = 15
	)
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers+1)
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			if _, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: "concurrent"}); err != nil {
				errs <- fmt.Errorf("ListWorkItems: %w", err)
				return
			}
			if done.Load() {
				return
			}
		}
	})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("imap:%d:%d", w, i)
				in := mail(mb, id, id+"@x", "concurrent "+id)
				in.Cursor = &store.Cursor{MailboxID: mb.ID, Value: id}
				if _, err := s.IngestMessage(ctx, in); err != nil {
					errs <- fmt.Errorf("IngestMessage %s: %w", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := s.CountMessages(ctx, mb.ID)
	must(t, "CountMessages", err)
	if n != writers*perWriter {
		t.Errorf("%d messages stored, want %d", n, writers*perWriter)
	}
	if got := len(listAll(t, s)); got != writers*perWriter {
		t.Errorf("%d work items, want %d", got, writers*perWriter)
	}
}
