package graph_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
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

// randomBytes returns n bytes that do not compress, seeded by seed.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// TestUSGovAttachmentOver3MBRefusedClearly: the US Government L4/L5 clouds have no upload
// sessions and take at most 4 MB per request, so an attachment of 3 MB or more cannot go
// through Graph there: the Sink refuses it for good with advice naming the limit, before
// any request (cloud known) or after Graph's refusal (cloud unknown to postroom, e.g. a
// custom Graph URL), and leaves no draft behind; nothing is sent.
func TestUSGovAttachmentOver3MBRefusedClearly(t *testing.T) {
	raw := multipart(t, []attachment{{"scan.pdf", "application/pdf", randomBytes(5<<20, 3)}})
	for _, tc := range []struct {
		name, standIn, sink string
		requests            int
	}{
		{"L4 known", mstest.CloudUSGovL4, credential.CloudUSGov, 0},
		{"L5 known", mstest.CloudUSGovL5, credential.CloudUSDoD, 0},
		{"L5 behind a custom Graph URL", mstest.CloudUSGovL5, credential.CloudCustom, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, mstest.Options{Cloud: tc.standIn})
			cfg := e.config()
			cfg.Cloud = tc.sink
			sink, err := graph.NewSink(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.ResetRequests()
			err = sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw)
			assertKind(t, err, connector.KindRejected, "US Government L4/L5", "at most 4 MB", "scan.pdf", "5.0 MB")
			if !connector.IsPermanent(err) {
				t.Errorf("the refusal is retried: %v", err)
			}
			if n := e.srv.Requests(e.sample.ClientID); tc.requests >= 0 && n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if sent := e.srv.Sent(e.sample.Mailbox); len(sent) != 0 {
				t.Errorf("%d messages went out", len(sent))
			}
			if drafts, _ := e.srv.Messages(e.sample.Mailbox, "drafts"); len(drafts) != 0 {
				t.Errorf("%d drafts left behind", len(drafts))
			}
		})
	}
}

// TestUSGovAttachmentsUnder3MBStillGo: in the L4/L5 clouds a message over 3 MB whose
// attachments are each under 3 MB goes out whole (a draft and one POST per attachment,
// each under 4 MB).
func TestUSGovAttachmentsUnder3MBStillGo(t *testing.T) {
	e := newEnv(t, mstest.Options{Cloud: mstest.CloudUSGovL4})
	a, b := randomBytes(2500<<10, 4), randomBytes(2500<<10, 5)
	raw := multipart(t, []attachment{{"a.bin", "application/octet-stream", a}, {"b.bin", "application/octet-stream", b}})
	cfg := e.config()
	cfg.Cloud = credential.CloudUSGov
	sink, err := graph.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw); err != nil {
		t.Fatal(err)
	}
	sent := e.srv.Sent(e.sample.Mailbox)
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want 1", len(sent))
	}
	files := attachments(t, sent[0].Raw)
	if !bytes.Equal(files["a.bin"], a) || !bytes.Equal(files["b.bin"], b) {
		t.Errorf("the attachments arrived with %d and %d bytes, want %d each", len(files["a.bin"]), len(files["b.bin"]), len(a))
	}
}

// TestBatchMemberThrottledWaitsRetryAfter: a 429 inside a $batch, after members that
// succeeded, is waited out (Retry-After) before the rest go in the next batch; nothing is
// sent into the throttled window again and every message ends up read.
func TestBatchMemberThrottledWaitsRetryAfter(t *testing.T) {
	e := newEnv(t, mstest.Options{RateLimit: 3, RateWindow: time.Second})
	e.deliver(t, "inbox", 0, 6)
	src := e.open(t, e.config())
	var msgs []connector.Incoming
	for len(msgs) < 6 { // the rate limit of 3 a second throttles the downloads too
		got, err := src.Next(context.Background(), 6)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, got...)
	}
	e.srv.Advance(time.Second) // a fresh window: the 4th member of the batch is the first refused
	e.srv.ResetRequests()
	if err := src.Ack(context.Background(), sourceIDs(msgs)); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests(e.sample.ClientID); n != 2 {
		t.Fatalf("%d batches, want 2 (the rest sent once, after Retry-After)", n)
	}
	assertAllRead(t, e, 6)
}

// concurrencyRefusals counts the MailboxConcurrency 429s the client logged.
func concurrencyRefusals(logs string) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "MailboxConcurrency") {
			n++
		}
	}
	return n
}

// TestLowConcurrencyAndUploadBudgetLoseNothing: a mailbox whose Graph answers
// MailboxConcurrency 429s from 2 requests in flight (below the documented 4) and takes 2 MB
// of uploads a second: ingest and replies running at once, with the Limiter they share,
// get every message in once and every reply out once (a send still throttled after its
// retries is tried again, as the outbox does); the client learns the lower concurrency
// after at most two refusals instead of being refused again and again.
func TestLowConcurrencyAndUploadBudgetLoseNothing(t *testing.T) {
	e := newEnv(t, mstest.Options{MaxConcurrent: 2, UploadLimit: 2 << 20, UploadWindow: time.Second})
	e.deliver(t, "inbox", 0, 24)
	e.srv.SetLatency(20 * time.Millisecond)
	cfg := e.config()
	cfg.Limiter = graph.NewLimiter(0)
	src := e.open(t, cfg)
	sink, err := graph.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}

	const replies = 6
	var wg sync.WaitGroup
	sendErrs := make(chan error, replies)
	for i := range replies {
		wg.Go(func() {
			raw := []byte(strings.Replace(string(reply("Content-Type: text/plain\r\n", strings.Repeat("Thank you for waiting. ", 30_000))),
				"<reply-1@", "<reply-"+strconv.Itoa(i)+"@", 1))
			var err error
			for range 10 {
				if err = sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw); err == nil || connector.IsPermanent(err) {
					break
				}
			}
			sendErrs <- err
		})
	}
	in := newIngest()
	in.drain(t, src, 12)
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		if err != nil {
			t.Errorf("a reply did not go out: %v", err)
		}
	}

	if len(in.stored) != 24 || in.dups != 0 {
		t.Fatalf("stored %d (want 24), %d twice", len(in.stored), in.dups)
	}
	assertAllRead(t, e, 24)
	sent := map[string]int{}
	for _, m := range e.srv.Sent(e.sample.Mailbox) {
		sent[headerValue(m.Raw, "Message-ID")]++
	}
	for i := range replies {
		if id := "<reply-" + strconv.Itoa(i) + "@postroom.contoso.example>"; sent[id] != 1 {
			t.Errorf("reply %s went out %d times, want once", id, sent[id])
		}
	}
	if len(sent) != replies {
		t.Errorf("%d distinct replies went out, want %d", len(sent), replies)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "upload limit") {
		t.Errorf("the upload budget never throttled a reply: the test did not test it")
	}
	if n := concurrencyRefusals(logs); n > 2 {
		t.Errorf("%d MailboxConcurrency refusals, want at most 2 (then at most 2 in flight)", n)
	}
}
