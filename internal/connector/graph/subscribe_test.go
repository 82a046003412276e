package graph_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/mstest"
)

// webhook is postroom's public notification endpoint in a test: the Subscriber served on
// 127.0.0.1.
type webhook struct {
	sub     *graph.Subscriber
	url     string
	notices atomic.Int32
	woke    chan struct{}
}

func (e *env) webhook(t *testing.T, cfg graph.Config, notify func(), opts graph.SubscribeOptions) *webhook {
	t.Helper()
	w := &webhook{woke: make(chan struct{}, 100)}
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	w.url = ts.URL + "/graph/notify/1"
	opts.NotificationURL = w.url
	opts.Notify = func() {
		w.notices.Add(1)
		w.woke <- struct{}{}
		if notify != nil {
			notify()
		}
	}
	sub, err := graph.NewSubscriber(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/graph/notify/1", sub)
	w.sub = sub
	return w
}

// waitFor waits (bounded) for cond; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscriptionHandshakeAndNotificationWakesWait: the subscription is made through
// the validation handshake, and a message arriving wakes the Source's Wait, after which
// Next finds it.
func TestSubscriptionHandshakeAndNotificationWakesWait(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	src := e.open(t, e.config())
	newIngest().drain(t, src, 10) // first sync: the delta position is set
	w := e.webhook(t, e.config(), src.Notify, graph.SubscribeOptions{})
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	subs := e.srv.Subscriptions()
	if len(subs) != 1 || subs[0].ID != w.sub.ID() || subs[0].NotificationURL != w.url || subs[0].ChangeType != "created" ||
		!strings.EqualFold(subs[0].Mailbox, e.sample.Mailbox) {
		t.Fatalf("subscriptions at Graph: %+v", subs)
	}

	waited := make(chan error, 1)
	go func() { waited <- src.Wait(context.Background(), time.Hour) }()
	e.deliver(t, "inbox", 0, 1)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after a notification")
	}
	msgs, err := src.Next(context.Background(), 10)
	if err != nil || len(msgs) != 1 || headerValue(msgs[0].Raw, "Message-ID") != messageID(0) {
		t.Fatalf("after the notification Next gave %d messages, err %v", len(msgs), err)
	}
}

// TestNotificationWithWrongClientStateRejected: a POST that does not carry the
// subscription's clientState is refused and wakes nothing.
func TestNotificationWithWrongClientStateRejected(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{})
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	body := `{"value":[{"subscriptionId":"` + w.sub.ID() + `","changeType":"created","clientState":"guessed",` +
		`"resource":"Users/x/Messages/y","tenantId":"` + e.sample.TenantID + `"}]}`
	resp, err := http.Post(w.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || w.notices.Load() != 0 {
		t.Fatalf("forged notification: %d %q, %d wake-ups; want 403 and none", resp.StatusCode, text, w.notices.Load())
	}

	// The validation answer is the token, verbatim, as text/plain.
	resp, err = http.Post(w.url+"?validationToken=Validation%3a+Testing+client+application+reachability", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(text) != "Validation: Testing client application reachability" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("validation: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), text)
	}
}

// TestSubscriptionLifecycle: Run renews on reauthorizationRequired, makes a new
// subscription (and reads the folder) on subscriptionRemoved and reads the folder on
// missed; it deletes the subscription when it stops.
func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.sub.Run(ctx) }()
	waitFor(t, "the subscription", func() bool { return len(e.srv.Subscriptions()) == 1 })
	first := e.srv.Subscriptions()[0]

	if status, err := e.srv.SendLifecycle(context.Background(), first.ID, mstest.LifecycleReauthorizationRequired); err != nil || status/100 != 2 {
		t.Fatalf("reauthorizationRequired: %d %v", status, err)
	}
	waitFor(t, "the renewal", func() bool {
		s := e.srv.Subscriptions()
		return len(s) == 1 && s[0].ID == first.ID && s[0].Expires.After(first.Expires)
	})

	if status, err := e.srv.SendLifecycle(context.Background(), first.ID, mstest.LifecycleMissed); err != nil || status/100 != 2 {
		t.Fatalf("missed: %d %v", status, err)
	}
	waitFor(t, "a read after missed notifications", func() bool { return w.notices.Load() == 1 })

	if status, err := e.srv.SendLifecycle(context.Background(), first.ID, mstest.LifecycleSubscriptionRemoved); err != nil || status/100 != 2 {
		t.Fatalf("subscriptionRemoved: %d %v", status, err)
	}
	waitFor(t, "a new subscription", func() bool {
		s := e.srv.Subscriptions()
		return len(s) == 1 && s[0].ID != first.ID && s[0].ID == w.sub.ID()
	})
	waitFor(t, "a read after the new subscription", func() bool { return w.notices.Load() == 2 })

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := e.srv.Subscriptions(); len(s) != 0 {
		t.Fatalf("%d subscriptions left after Run ended", len(s))
	}
}

// TestRenewRecreatesExpiredSubscription: a subscription Graph dropped when it expired
// (404 on renewal) is made anew, and the folder is read for what came meanwhile.
func TestRenewRecreatesExpiredSubscription(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{Lifetime: time.Hour, Now: now})
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := w.sub.ID()
	e.srv.Advance(2 * time.Hour)
	skew.Store(int64(2 * time.Hour))
	if len(e.srv.Subscriptions()) != 0 {
		t.Fatal("the subscription did not expire at Graph")
	}
	if err := w.sub.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	subs := e.srv.Subscriptions()
	if len(subs) != 1 || subs[0].ID == old || subs[0].ID != w.sub.ID() || w.notices.Load() != 1 {
		t.Fatalf("after renewing an expired subscription: %+v (old %s), %d reads", subs, old, w.notices.Load())
	}
}

// TestSubscriptionWithinOutlookCap: against Graph's stricter cap of 4,230 minutes the
// subscription is made at the first try, asked for at most 4,230 minutes, and Run renews it
// when two thirds of its lifetime have passed, nearly a day before it would expire.
func TestSubscriptionWithinOutlookCap(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{Now: now})
	start := time.Now()
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	subs := e.srv.Subscriptions()
	if len(subs) != 1 {
		t.Fatalf("%d subscriptions at Graph, want 1", len(subs))
	}
	if life := subs[0].Expires.Sub(start); life > 4230*time.Minute || life < 4230*time.Minute-time.Hour {
		t.Fatalf("the subscription lives %s, want at most 4,230 minutes and no more than an hour less", life)
	}
	first := subs[0].Expires
	if before := w.sub.Expires().Sub(w.sub.RenewAt()); before < 20*time.Hour {
		t.Fatalf("renewal planned %s before expiry, want at least 20 hours", before)
	}

	// Two thirds of the lifetime later, Run renews at once.
	late := w.sub.RenewAt().Sub(now()) + time.Minute
	skew.Store(int64(late))
	e.srv.Advance(late)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.sub.Run(ctx) }()
	waitFor(t, "the renewal", func() bool {
		s := e.srv.Subscriptions()
		return len(s) == 1 && s[0].ID == w.sub.ID() && s[0].Expires.After(first)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionLifetimeFollowsStatedCap: when Graph states a cap lower than postroom's
// (here a day), the subscription is asked for again within it, and renewals keep to it.
func TestSubscriptionLifetimeFollowsStatedCap(t *testing.T) {
	e := newEnv(t, mstest.Options{MaxSubscriptionLifetime: 24 * time.Hour})
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{})
	if err := w.sub.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if life := time.Until(w.sub.Expires()); life > 24*time.Hour || life < 23*time.Hour {
		t.Fatalf("the subscription lives %s, want just under the stated day", life)
	}
	e.srv.ResetRequests()
	if err := w.sub.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests(e.sample.ClientID); n != 1 {
		t.Fatalf("renewal took %d requests, want 1 (within the cap learnt)", n)
	}
	if !strings.Contains(e.logs.String(), "shorter subscription lifetime") {
		t.Errorf("the shorter lifetime was not logged:\n%s", e.logs)
	}
}

// TestSubscriptionRecordedForOtherNodes: Subscribed is told of each subscription made or
// renewed (id, Graph's expiry, the SHA-256 of the clientState Graph was given), and Ended
// of each id dropped: replaced after subscriptionRemoved, or deleted when Run ends. These
// are what postroom stores for every node to check notifications with.
func TestSubscriptionRecordedForOtherNodes(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	type rec struct {
		id      string
		expires time.Time
		hash    [32]byte
	}
	var mu sync.Mutex
	var subscribed []rec
	var ended []string
	w := e.webhook(t, e.config(), nil, graph.SubscribeOptions{
		Subscribed: func(id string, expires time.Time, hash [32]byte) {
			mu.Lock()
			defer mu.Unlock()
			subscribed = append(subscribed, rec{id, expires, hash})
		},
		Ended: func(id string) {
			mu.Lock()
			defer mu.Unlock()
			ended = append(ended, id)
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.sub.Run(ctx) }()
	waitFor(t, "the subscription", func() bool { return len(e.srv.Subscriptions()) == 1 })
	first := e.srv.Subscriptions()[0]
	check := func(n int, at mstest.Subscription) {
		t.Helper()
		waitFor(t, "Subscribed", func() bool { mu.Lock(); defer mu.Unlock(); return len(subscribed) == n })
		mu.Lock()
		got := subscribed[n-1]
		mu.Unlock()
		if got.id != at.ID || got.hash != sha256.Sum256([]byte(at.ClientState)) || got.expires.Sub(at.Expires).Abs() > time.Second {
			t.Fatalf("Subscribed %d: %s %s %x, want %s %s and the hash of Graph's clientState", n, got.id, got.expires, got.hash, at.ID, at.Expires)
		}
	}
	check(1, first)

	// Another node passes Graph's lifecycle events on: renew, then make anew.
	w.sub.RequestRenew()
	waitFor(t, "the renewal", func() bool { s := e.srv.Subscriptions(); return len(s) == 1 && s[0].Expires.After(first.Expires) })
	check(2, e.srv.Subscriptions()[0])
	w.sub.RequestRecreate()
	waitFor(t, "a new subscription", func() bool { s := e.srv.Subscriptions(); return len(s) == 1 && s[0].ID != first.ID })
	second := e.srv.Subscriptions()[0]
	check(3, second)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ended) != 2 || ended[0] != first.ID || ended[1] != second.ID {
		t.Fatalf("Ended %v, want %s then %s", ended, first.ID, second.ID)
	}
}
