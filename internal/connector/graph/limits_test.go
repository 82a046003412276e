package graph_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
)

// TestSyncStateNotFound400Resyncs: an expired delta token answered with 400 and a
// lower-case syncStateNotFound (what the delta overview allows, §8.7) restarts the sync
// from scratch like Outlook's 410: only the new messages are handed out.
func TestSyncStateNotFound400Resyncs(t *testing.T) {
	e := newEnv(t, mstest.Options{DeltaExpiredStatus: http.StatusBadRequest, DeltaExpiredCode: "syncStateNotFound"})
	e.deliver(t, "inbox", 0, 5)
	cfg := e.config()
	cfg.PageSize = 2
	cfg.AfterAction = store.AfterKeep
	src := e.open(t, cfg)
	in := newIngest()
	in.drain(t, src, 3)

	e.deliver(t, "inbox", 10, 2)
	e.srv.ExpireDeltaTokens()
	if n := in.drain(t, src, 3); n != 2 || in.dups != 0 || len(in.stored) != 7 {
		t.Fatalf("after the token expired: %d handed out (want the 2 new), %d twice, %d stored (want 7)", n, in.dups, len(in.stored))
	}
	if !strings.Contains(e.logs.String(), "delta token has expired") {
		t.Fatalf("the resync was not logged:\n%s", e.logs)
	}
}

// TestDeltaLinksExpiringByThemselves: Outlook forgets delta and skip tokens after a while;
// a deltaLink older than that and a nextLink of a round left unfinished meanwhile both
// restart the round, and every message is stored once.
func TestDeltaLinksExpiringByThemselves(t *testing.T) {
	e := newEnv(t, mstest.Options{DeltaTokenLifetime: time.Hour})
	e.deliver(t, "inbox", 0, 10)
	cfg := e.config()
	cfg.PageSize = 3
	cfg.AfterAction = store.AfterKeep
	src := e.open(t, cfg)
	in := newIngest()

	// Part of the first round, then a pause longer than the nextLink lives.
	msgs, err := src.Next(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	in.store(msgs)
	e.srv.Advance(2 * time.Hour)
	in.drain(t, src, 3)
	if len(in.stored) != 10 || in.dups != 0 {
		t.Fatalf("after the nextLink expired: %d stored (want 10), %d twice", len(in.stored), in.dups)
	}

	// A deltaLink older than its lifetime.
	e.deliver(t, "inbox", 20, 4)
	e.srv.Advance(2 * time.Hour)
	if n := in.drain(t, src, 3); n != 4 || in.dups != 0 {
		t.Fatalf("after the deltaLink expired: %d handed out (want the 4 new), %d twice", n, in.dups)
	}
}

// tickingClock is a server clock that moves a minute forward each time it is read while
// on: every link Graph hands out is older than a short lifetime when it is followed.
type tickingClock struct {
	mu  sync.Mutex
	t   time.Time
	on  atomic.Bool
	now func() time.Time
}

func newTickingClock() *tickingClock {
	c := &tickingClock{t: time.Now()}
	c.now = func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.on.Load() {
			c.t = c.t.Add(time.Minute)
		}
		return c.t
	}
	return c
}

// TestDeadDeltaLinksNotFollowedForever: when each link of a round is dead by the time it
// is followed, the round is restarted once; the second failure in a row is a KindServer
// error that says what happened, after a bounded number of requests. The next try starts
// afresh (not at the dead link) and hands out every message once.
func TestDeadDeltaLinksNotFollowedForever(t *testing.T) {
	clock := newTickingClock()
	e := newEnv(t, mstest.Options{Now: clock.now, DeltaTokenLifetime: time.Second, AccessTokenLifetime: 24 * time.Hour})
	e.deliver(t, "inbox", 0, 10)
	cfg := e.config()
	cfg.PageSize = 4
	cfg.AfterAction = store.AfterKeep
	src := e.open(t, cfg)
	in := newIngest()

	clock.on.Store(true)
	e.srv.ResetRequests()
	_, err := src.Next(context.Background(), 10)
	assertKind(t, err, connector.KindServer, "SyncStateNotFound", "twice in a row", "from the beginning")
	if n := e.srv.Requests(e.sample.ClientID); n != 4 {
		t.Fatalf("%d requests, want 4 (start, dead nextLink, start again, dead nextLink)", n)
	}

	clock.on.Store(false)
	e.srv.ResetRequests()
	in.drain(t, src, 10)
	if len(in.stored) != 10 || in.dups != 0 {
		t.Fatalf("the try after: %d stored (want 10), %d twice", len(in.stored), in.dups)
	}
	if n := e.srv.Requests(e.sample.ClientID); n > 10+4 {
		t.Fatalf("the try after took %d requests: it followed a dead link again", n)
	}
}
