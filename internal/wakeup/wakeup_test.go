package wakeup

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postroom/postroom/internal/testenv"
)

func woken(t *testing.T, s *Subscription, within time.Duration, what string) {
	t.Helper()
	select {
	case <-s.C():
	case <-time.After(within):
		t.Fatalf("%s: no wake-up within %s", what, within)
	}
}

func quiet(t *testing.T, s *Subscription, d time.Duration, what string) {
	t.Helper()
	select {
	case <-s.C():
		t.Fatalf("%s: woken, but should not have been", what)
	case <-time.After(d):
	}
}

func TestLocalCoalescesAndFilters(t *testing.T) {
	b := NewLocal()
	all := b.Subscribe(Mailbox, 0)
	seven := b.Subscribe(Mailbox, 7)
	other := b.Subscribe(Outbox, 0)
	for range 5 {
		b.Publish(Mailbox, 8)
	}
	woken(t, all, time.Second, "any mailbox")
	quiet(t, all, 50*time.Millisecond, "five signals are one wake-up")
	quiet(t, seven, 10*time.Millisecond, "mailbox 7 for a signal of 8")
	quiet(t, other, 10*time.Millisecond, "another topic")
	b.Publish(Mailbox, 0)
	woken(t, seven, time.Second, "mailbox 7 for a signal to every mailbox")
	seven.Close()
	b.Publish(Mailbox, 7)
	quiet(t, seven, 50*time.Millisecond, "closed subscription")
}

func runBus(t *testing.T, url string) *Bus {
	t.Helper()
	b, err := NewPostgres(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-b.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("the bus does not listen")
	}
	return b
}

// Two buses on one database (two nodes) see each other's signals; a node does not get
// its own back from the database.
func TestPostgresTwoNodes(t *testing.T) {
	url := testenv.Postgres(t)
	a, b := runBus(t, url), runBus(t, url)
	onA := a.Subscribe(Mailbox, 42)
	onB := b.Subscribe(Mailbox, 42)
	onBOther := b.Subscribe(Mailbox, 43)

	a.Publish(Mailbox, 42)
	woken(t, onA, time.Second, "the publishing node")
	woken(t, onB, 2*time.Second, "the other node")
	quiet(t, onBOther, 200*time.Millisecond, "another mailbox on the other node")
	quiet(t, onA, 300*time.Millisecond, "the publishing node, by its own notification")

	b.Publish(Outbox, 0)
	outA := a.Subscribe(Outbox, 0)
	b.Publish(Outbox, 0)
	woken(t, outA, 2*time.Second, "outbox on node A")
}

// A listening connection killed by the server is replaced; everything is woken because
// signals may have been lost meanwhile, and signals flow again afterwards.
func TestPostgresReconnect(t *testing.T) {
	url := testenv.Postgres(t)
	a, b := runBus(t, url), runBus(t, url)
	sub := b.Subscribe(Work, 0)
	mb := b.Subscribe(Mailbox, 5)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, ListenerName).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d listeners, want 2", killed)
	}
	woken(t, sub, 5*time.Second, "wake everything after the lost connection")
	woken(t, mb, time.Second, "wake everything reaches every topic and id")
	deadline := time.Now().Add(10 * time.Second)
	for b.losses() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b.losses() == 0 {
		t.Fatal("the loss was not counted")
	}
	// Listening again: wait until the new connection is there, then a signal gets through.
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
			ListenerName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners after the kill, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // LISTEN follows the connection
	select {
	case <-sub.C(): // a second wake-everything (the reconnect's)
	default:
	}
	a.Publish(Work, 0)
	woken(t, sub, 2*time.Second, "a signal after the reconnect")
}
