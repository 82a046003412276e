package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/mstest"
)

// TestAppWithoutConsentNamesConsentNotSignIn: an app whose application permissions have
// no admin consent gets tokens without roles, which Graph answers with 401
// NoPermissionsInAccessToken (ms365-protocol.md §8.4). The mailbox's error names the
// missing consent, not a new sign-in, and one attempt costs one token renewal, not a
// stream of them. Once consent is granted, the next attempt works without a restart.
func TestAppWithoutConsentNamesConsentNotSignIn(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 1)
	e.sample.App.SetAdminConsent(false)
	cfg := e.config()
	open := func() error {
		src, err := graph.Open(context.Background(), cfg)
		if err == nil {
			_, err = src.Next(context.Background(), 10)
		}
		return err
	}
	for attempt := 1; attempt <= 3; attempt++ {
		e.srv.ResetRequests()
		err := open()
		assertKind(t, err, connector.KindAuth, "admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration",
			"App registrations ▸ the app ▸ API permissions ▸ Grant admin consent")
		if strings.Contains(connector.Advice(err), "sign in again") {
			t.Errorf("advice %q asks for a new sign-in", connector.Advice(err))
		}
		if got := e.srv.TokenRequests(e.sample.ClientID); got > 2 {
			t.Errorf("attempt %d fetched %d tokens, want at most 2 (the token, one renewal)", attempt, got)
		}
		if got := e.srv.Requests(e.sample.ClientID); got > 2 {
			t.Errorf("attempt %d sent %d Graph requests, want at most 2", attempt, got)
		}
	}
	e.sample.App.SetAdminConsent(true)
	if err := open(); err != nil {
		t.Fatalf("after admin consent: %v", err)
	}
}

// TestDelegatedSubscriptionRefusedAtOnce: Graph refuses change notifications on a shared
// mailbox to a person's sign-in (ms365-protocol.md §8.2); the Subscriber recognises the
// refusal on the first try and stops, with an error that says the mailbox is polled,
// instead of retrying.
func TestDelegatedSubscriptionRefusedAtOnce(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	cfg := e.config()
	cfg.Token = e.agentToken(mstest.ScopeGraphMailReadWriteShared, mstest.ScopeGraphMailSendShared)
	src := e.open(t, cfg)
	w := e.webhook(t, cfg, src.Notify, graph.SubscribeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.srv.ResetRequests()
	err := w.sub.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run kept trying after Graph refused the subscription")
	}
	if !errors.Is(err, graph.ErrNotificationsNeedApp) {
		t.Fatalf("Run: %v, want ErrNotificationsNeedApp", err)
	}
	assertKind(t, err, connector.KindConfig, "403 ExtensionError", "only to an app", "polls the mailbox with delta queries")
	if subs := e.srv.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions at Graph: %+v", subs)
	}
	// Resolve the folder, list old subscriptions, one POST: nothing more.
	if got := e.srv.Requests(e.sample.ClientID); got > 3 {
		t.Errorf("%d Graph requests, want at most 3", got)
	}
}
