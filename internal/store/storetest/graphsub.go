package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testGraphSubscriptions: a subscription written by one caller is read back by another
// (any node checks notifications against it), renewal moves its expiry, expired ones of
// the mailbox go at the next write, delete forgets, mailboxes do not mix.
func testGraphSubscriptions(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newMailbox(t, s, "graph-a", "inbound")
	b := newMailbox(t, s, "graph-b", "inbound")
	now := time.Now().UTC().Truncate(time.Second)
	subA := store.GraphSubscription{ID: "sub-a", MailboxID: a.ID, ClientStateHash: sha256.Sum256([]byte("state-a")), ExpiresAt: now.Add(70 * time.Hour)}
	must(t, "PutGraphSubscription", s.PutGraphSubscription(ctx, subA))
	must(t, "PutGraphSubscription b", s.PutGraphSubscription(ctx, store.GraphSubscription{ID: "sub-b", MailboxID: b.ID,
		ClientStateHash: sha256.Sum256([]byte("state-b")), ExpiresAt: now.Add(time.Hour)}))

	got, err := s.GraphSubscriptionsOf(ctx, a.ID)
	must(t, "GraphSubscriptionsOf", err)
	if len(got) != 1 || got[0].ID != "sub-a" || got[0].MailboxID != a.ID || got[0].ClientStateHash != subA.ClientStateHash {
		t.Fatalf("GraphSubscriptionsOf(a) = %+v, want sub-a with its hash", got)
	}
	sameTime(t, "expiry", got[0].ExpiresAt, subA.ExpiresAt)

	// Renewal: the same id, a later expiry.
	subA.ExpiresAt = now.Add(100 * time.Hour)
	must(t, "renew", s.PutGraphSubscription(ctx, subA))
	got, err = s.GraphSubscriptionsOf(ctx, a.ID)
	must(t, "GraphSubscriptionsOf after renewal", err)
	if len(got) != 1 {
		t.Fatalf("after renewal: %d subscriptions, want 1", len(got))
	}
	sameTime(t, "renewed expiry", got[0].ExpiresAt, subA.ExpiresAt)

	// An expired one goes when the mailbox's next subscription is written.
	must(t, "put expired", s.PutGraphSubscription(ctx, store.GraphSubscription{ID: "old", MailboxID: a.ID,
		ClientStateHash: sha256.Sum256([]byte("old")), ExpiresAt: now.Add(-time.Hour)}))
	if got, _ := s.GraphSubscriptionsOf(ctx, a.ID); len(got) != 2 || got[0].ID != "old" {
		t.Fatalf("with an expired one: %+v, want old first, then sub-a", got)
	}
	must(t, "put new", s.PutGraphSubscription(ctx, store.GraphSubscription{ID: "sub-a2", MailboxID: a.ID,
		ClientStateHash: sha256.Sum256([]byte("state-a2")), ExpiresAt: now.Add(200 * time.Hour)}))
	got, _ = s.GraphSubscriptionsOf(ctx, a.ID)
	if len(got) != 2 || got[0].ID != "sub-a" || got[1].ID != "sub-a2" {
		t.Fatalf("after the next write: %+v, want sub-a and sub-a2 (the expired one gone)", got)
	}

	must(t, "DeleteGraphSubscription", s.DeleteGraphSubscription(ctx, "sub-a"))
	must(t, "DeleteGraphSubscription again", s.DeleteGraphSubscription(ctx, "sub-a"))
	got, _ = s.GraphSubscriptionsOf(ctx, a.ID)
	if len(got) != 1 || got[0].ID != "sub-a2" {
		t.Fatalf("after delete: %+v, want sub-a2", got)
	}
	if got, _ := s.GraphSubscriptionsOf(ctx, b.ID); len(got) != 1 || got[0].ID != "sub-b" {
		t.Fatalf("mailbox b: %+v, want sub-b alone", got)
	}
	if err := s.PutGraphSubscription(ctx, store.GraphSubscription{MailboxID: a.ID, ExpiresAt: now}); err == nil {
		t.Fatal("a subscription without id was recorded")
	}
}
