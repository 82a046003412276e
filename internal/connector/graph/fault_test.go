package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
)

// Test410ResyncEveryMessageOnce: when Microsoft forgets the delta token (410
// syncStateNotFound), the folder is read again from scratch; within a session nothing is
// handed out twice, after a restart Skip (the store) keeps the old ones from being
// downloaded, and without Skip dedup by SourceID still stores each message once.
func Test410ResyncEveryMessageOnce(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 6)
	cfg := e.config()
	cfg.PageSize = 4
	cfg.AfterAction = store.AfterKeep // the old messages stay unread in the folder
	in := newIngest()
	src := e.open(t, cfg)
	in.drain(t, src, 5)

	e.deliver(t, "inbox", 10, 3)
	e.srv.ExpireDeltaTokens()
	if n := in.drain(t, src, 5); n != 3 || in.dups != 0 {
		t.Fatalf("after the token expired the same Source handed out %d (want the 3 new), %d twice", n, in.dups)
	}
	if !strings.Contains(e.logs.String(), "delta token has expired") {
		t.Fatalf("the resync was not logged:\n%s", e.logs)
	}

	// A restart after the token expired again, with the store asked through Skip.
	e.deliver(t, "inbox", 20, 2)
	e.srv.ExpireDeltaTokens()
	cfg.Cursor = in.cursor
	cfg.Skip = func(id string) bool { _, ok := in.stored[id]; return ok }
	if n := in.drain(t, e.open(t, cfg), 5); n != 2 || in.dups != 0 {
		t.Fatalf("restart with Skip handed out %d (want the 2 new), %d twice", n, in.dups)
	}

	// And without Skip: everything comes again, dedup stores nothing twice.
	e.srv.ExpireDeltaTokens()
	cfg.Cursor = in.cursor
	cfg.Skip = nil
	in.drain(t, e.open(t, cfg), 5)
	if len(in.stored) != 11 || in.dups != 11 {
		t.Fatalf("stored %d (want 11), recognised %d copies (want 11)", len(in.stored), in.dups)
	}
}

// TestThrottlingHonouredWithoutHammering: a burst of 429 on delta and a 503 on a
// download are each answered by exactly one more request after Retry-After, and no more
// than 4 requests are in flight for the mailbox.
func TestThrottlingHonouredWithoutHammering(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 8)
	cfg := e.config()
	cfg.AfterAction = store.AfterKeep
	src := e.open(t, cfg)
	e.srv.ResetRequests()
	e.srv.FailNext(mstest.Fault{Count: 3, Status: 429, RetryAfter: time.Second, PathContains: "/delta"})
	e.srv.FailNext(mstest.Fault{Count: 1, Status: 503, RetryAfter: time.Second, PathContains: "/$value"})
	in := newIngest()
	in.drain(t, src, 10)
	if len(in.stored) != 8 {
		t.Fatalf("stored %d, want 8", len(in.stored))
	}
	// 2 delta requests (the round, and the empty next one), 8 downloads, 3 + 1 refused.
	if n := e.srv.Requests(e.sample.ClientID); n != 14 {
		t.Fatalf("%d Graph requests, want 14 (10 + one retry per refused request)", n)
	}
	if n := e.srv.MaxInFlight(e.sample.ClientID, e.sample.Mailbox); n > graphMaxConcurrent {
		t.Fatalf("%d requests in flight at once, want at most %d", n, graphMaxConcurrent)
	}
}

const graphMaxConcurrent = 4

// TestConcurrencyLimitUnderLatency: with slow answers, downloads run in parallel but
// never more than 4 at once, so Graph's MailboxConcurrency limit is never hit.
func TestConcurrencyLimitUnderLatency(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 24)
	e.srv.SetLatency(30 * time.Millisecond)
	cfg := e.config()
	cfg.AfterAction = store.AfterMarkRead
	in := newIngest()
	e.srv.ResetRequests()
	in.drain(t, e.open(t, cfg), 12)
	if len(in.stored) != 24 {
		t.Fatalf("stored %d, want 24", len(in.stored))
	}
	if n := e.srv.MaxInFlight(e.sample.ClientID, e.sample.Mailbox); n > graphMaxConcurrent || n < 2 {
		t.Fatalf("%d requests in flight at most, want 2..%d", n, graphMaxConcurrent)
	}
	if strings.Contains(e.logs.String(), "throttled") {
		t.Fatalf("the client was throttled:\n%s", e.logs)
	}
}

// TestPersistentThrottlingIsServerError: throttling that outlasts the retries, or a
// Retry-After too long to wait inside a request, is a KindServer error with advice, after
// a bounded number of requests.
func TestPersistentThrottlingIsServerError(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	src := e.open(t, e.config())

	e.srv.ResetRequests()
	e.srv.FailNext(mstest.Fault{Count: 50, Status: 429, RetryAfter: 10 * time.Minute, PathContains: "/delta"})
	_, err := src.Next(context.Background(), 10)
	assertKind(t, err, connector.KindServer, "asks to wait 10m0s")
	if n := e.srv.Requests(e.sample.ClientID); n != 1 {
		t.Fatalf("%d requests for a 10-minute Retry-After, want 1", n)
	}
	e.srv.ClearFaults()

	e.srv.ResetRequests()
	e.srv.FailNext(mstest.Fault{Count: 50, Status: 503, RetryAfter: time.Second, PathContains: "/delta"})
	_, err = src.Next(context.Background(), 10)
	assertKind(t, err, connector.KindServer, "unavailable (HTTP 503) after 5 tries")
	if n := e.srv.Requests(e.sample.ClientID); n != 5 {
		t.Fatalf("%d requests, want 5 tries", n)
	}
}

// TestTokenExpiryMidSync: Graph refusing an expired token in the middle of a round makes
// the client fetch one new token and go on; nothing is lost.
func TestTokenExpiryMidSync(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 10)
	cfg := e.config()
	cfg.PageSize = 4
	src := e.open(t, cfg)
	in := newIngest()
	msgs, err := src.Next(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	in.store(msgs)
	before := e.srv.TokenRequests(e.sample.ClientID)
	e.srv.ExpireAccessTokens()
	in.drain(t, src, 4)
	if len(in.stored) != 10 || in.dups != 0 {
		t.Fatalf("stored %d with %d duplicates, want 10 and 0", len(in.stored), in.dups)
	}
	if n := e.srv.TokenRequests(e.sample.ClientID) - before; n != 1 {
		t.Fatalf("%d token requests after the expiry, want 1", n)
	}
}

// assertKind checks that err is a *connector.Error of kind whose text contains each of
// the words.
func assertKind(t *testing.T, err error, kind connector.Kind, words ...string) {
	t.Helper()
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *connector.Error of kind %s", err, err, kind)
	}
	if ce.Kind != kind {
		t.Fatalf("kind %s, want %s: %v", ce.Kind, kind, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}
