package ingest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestDialSlots: at most MaxDials sign-ins run at once; a slot given back (once, however
// often release is called) lets the next one in, and a wait ends with its context.
func TestDialSlots(t *testing.T) {
	r := NewRunner(Options{MaxDials: 2})
	ctx := context.Background()
	releaseA, err := r.dialSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.dialSlot(ctx); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.dialSlot(done); err == nil {
		t.Fatal("a third sign-in got a slot while two were taken (MaxDials 2)")
	}
	releaseA()
	releaseA() // a second call gives back nothing more
	if _, err := r.dialSlot(ctx); err != nil {
		t.Fatalf("no slot after one was given back: %v", err)
	}
	if _, err := r.dialSlot(done); err == nil {
		t.Fatal("a slot was given back twice: three sign-ins run with MaxDials 2")
	}
}

// TestManyMailboxesFewDials: more mailboxes than sign-in slots all connect and ingest:
// a slot is given back once the mailbox is connected, not when its session ends.
func TestManyMailboxesFewDials(t *testing.T) {
	e := newTestEnv(t)
	host, p, _ := net.SplitHostPort(e.d.IMAPAddr)
	port, _ := strconv.Atoi(p)
	const n = 8
	var ids []int64
	for i := range n {
		user := fmt.Sprintf("box%d@example.test", i)
		e.d.AddUser(t, user, "pw")
		e.d.Append(t, user, "INBOX", orderMail(i))
		m, err := e.st.CreateMailbox(context.Background(), store.Mailbox{
			Name: fmt.Sprintf("box%d", i), Direction: store.Inbound, Protocol: "imap", Address: user,
			Host: host, Port: port, Security: "none", Login: user, Folder: "INBOX",
			AfterAction: store.AfterMarkRead, MaxSizeMB: 5, PollInterval: time.Hour, Enabled: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.passwords.Set(context.Background(), m.ID, vault.NewSecret("pw")); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	e.run(Options{MaxDials: 2})
	waitFor(t, "every mailbox connected with its message stored", func() (bool, string) {
		boxes, err := e.st.ListMailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		connected, stored := 0, 0
		for _, m := range boxes {
			if m.Status == store.StatusConnected {
				connected++
			}
		}
		for _, id := range ids {
			stored += e.count(id)
		}
		return connected == n && stored == n, fmt.Sprintf("%d of %d connected, %d of %d messages stored", connected, n, stored, n)
	})
}
