package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/testenv"
)

// TestLeaseLocksWithAWriteInFlight holds a lease holder's write open (its fence check,
// as IngestMessages makes it, inside a transaction not yet committed) and checks what
// PostgreSQL's row locks let through meanwhile: the holder's own lease round renews at
// once instead of queuing behind its ingest (a round stuck there let the leases lapse
// and stopped every loop of the node), while another node, finding the lease expired,
// does not take it until the write has committed (fencing), and takes it afterwards.
func TestLeaseLocksWithAWriteInFlight(t *testing.T) {
	ctx := t.Context()
	url := testenv.Postgres(t)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	mb, err := s.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap",
		Address: "support@example.com", Host: "mail.example.com", Port: 993, Security: "tls", Login: "support", Folder: "INBOX"})
	if err != nil {
		t.Fatalf("CreateMailbox: %v", err)
	}
	const ttl = 6 * time.Second
	now := time.Now().Truncate(time.Millisecond)
	node := func(name string, at time.Time) store.Node {
		n := store.Node{ID: name + "/1", Name: name, Instance: "1", StartedAt: at, HeartbeatAt: at}
		if err := s.NodeHeartbeat(ctx, n, time.Time{}); err != nil {
			t.Fatalf("NodeHeartbeat %s: %v", n.ID, err)
		}
		return n
	}
	// round runs one lease round, failing the test if it waits for a lock longer than
	// bound (a round that does not wait takes milliseconds).
	round := func(n store.Node, at time.Time) []store.Lease {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		held, err := s.BalanceLeases(rctx, store.BalanceRequest{NodeID: n.ID, Mailboxes: []int64{mb.ID}, Now: at, TTL: ttl, LiveSince: at.Add(-ttl)})
		if err != nil {
			t.Fatalf("lease round of %s while a write of the holder is in flight: %v", n.ID, err)
		}
		return held
	}
	a := node("a", now)
	held := round(a, now)
	if len(held) != 1 || held[0].Generation != 1 {
		t.Fatalf("a holds %+v, want the mailbox at generation 1", held)
	}
	fence := held[0].Fence()

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	write, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer write.Rollback()
	var one int
	if err := write.QueryRowContext(ctx, `SELECT 1 FROM mailbox_leases WHERE mailbox_id = $1 AND node_id = $2 AND generation = $3 FOR KEY SHARE`,
		fence.MailboxID, fence.NodeID, fence.Generation).Scan(&one); err != nil {
		t.Fatalf("the holder's fence check: %v", err)
	}

	// The holder renews while its write is in flight.
	renewAt := now.Add(time.Second)
	held = round(a, renewAt)
	if len(held) != 1 || held[0].Generation != 1 || !held[0].ExpiresAt.Equal(renewAt.Add(ttl)) {
		t.Fatalf("after a's renewal a holds %+v, want generation 1 until %s", held, renewAt.Add(ttl))
	}

	// a stalls; b finds the lease expired but must not take it under a's open write.
	later := renewAt.Add(2 * ttl)
	b := node("b", later)
	if held := round(b, later); len(held) != 0 {
		t.Fatalf("b took %+v while a's write was in flight: a could commit behind it", held)
	}
	if err := write.Commit(); err != nil {
		t.Fatalf("commit a's write: %v", err)
	}
	held = round(b, later)
	if len(held) != 1 || held[0].NodeID != b.ID || held[0].Generation != 2 {
		t.Fatalf("after a's write committed b holds %+v, want the mailbox at generation 2", held)
	}
}
