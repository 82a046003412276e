package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// signInAt is the clock of the sign-in tests: a fixed instant, so that expiry is exact.
var signInAt = time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC)

// pendingSignIn is a sign-in of mailbox mb started at signInAt, expiring ten minutes later.
func pendingSignIn(mb store.Mailbox, state string) store.PendingSignIn {
	return store.PendingSignIn{
		State:       state,
		SessionHash: "session-of-" + state,
		MailboxID:   mb.ID,
		Verifier:    []byte("sealed verifier of " + state),
		RedirectURI: "https://postroom.example.org/oauth/callback",
		ExpiresAt:   signInAt.Add(10 * time.Minute),
		CreatedAt:   signInAt,
	}
}

// testPendingSignIns: a sign-in kept by one caller is taken, whole, by the next, once;
// an unknown, empty or expired state is ErrNotFound.
func testPendingSignIns(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "shared", store.Inbound)
	want := pendingSignIn(mb, "state-1")
	must(t, "AddPendingSignIn", s.AddPendingSignIn(ctx, want, 10, signInAt))
	err := s.AddPendingSignIn(ctx, pendingSignIn(mb, "state-1"), 10, signInAt)
	wantErr(t, "AddPendingSignIn with a state kept already", err, store.ErrConflict)
	err = s.AddPendingSignIn(ctx, pendingSignIn(store.Mailbox{ID: mb.ID + 100}, "state-2"), 10, signInAt)
	wantErr(t, "AddPendingSignIn of a missing mailbox", err, store.ErrNotFound)

	_, err = s.TakePendingSignIn(ctx, "state-unknown", signInAt)
	wantErr(t, "TakePendingSignIn of an unknown state", err, store.ErrNotFound)
	_, err = s.TakePendingSignIn(ctx, "", signInAt)
	wantErr(t, "TakePendingSignIn of an empty state", err, store.ErrNotFound)

	got, err := s.TakePendingSignIn(ctx, "state-1", signInAt.Add(time.Minute))
	must(t, "TakePendingSignIn", err)
	if got.State != want.State || got.SessionHash != want.SessionHash || got.MailboxID != want.MailboxID ||
		!bytes.Equal(got.Verifier, want.Verifier) || got.RedirectURI != want.RedirectURI {
		t.Errorf("TakePendingSignIn = %+v, want %+v", got, want)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	_, err = s.TakePendingSignIn(ctx, "state-1", signInAt.Add(time.Minute))
	wantErr(t, "TakePendingSignIn a second time", err, store.ErrNotFound)

	// CreatedAt defaults to now.
	p := pendingSignIn(mb, "state-3")
	p.CreatedAt = time.Time{}
	must(t, "AddPendingSignIn without CreatedAt", s.AddPendingSignIn(ctx, p, 10, signInAt.Add(time.Second)))
	got, err = s.TakePendingSignIn(ctx, "state-3", signInAt.Add(time.Second))
	must(t, "TakePendingSignIn state-3", err)
	sameTime(t, "CreatedAt defaulted", got.CreatedAt, signInAt.Add(time.Second))

	// Expired: at its ExpiresAt it is gone, and taking it removed it for good.
	must(t, "AddPendingSignIn state-4", s.AddPendingSignIn(ctx, pendingSignIn(mb, "state-4"), 10, signInAt))
	_, err = s.TakePendingSignIn(ctx, "state-4", signInAt.Add(10*time.Minute))
	wantErr(t, "TakePendingSignIn at its expiry", err, store.ErrNotFound)
	_, err = s.TakePendingSignIn(ctx, "state-4", signInAt)
	wantErr(t, "TakePendingSignIn after an expired take", err, store.ErrNotFound)
	// One that expired meanwhile is deleted by the next add, and cannot be taken after.
	must(t, "AddPendingSignIn state-5", s.AddPendingSignIn(ctx, pendingSignIn(mb, "state-5"), 10, signInAt))
	must(t, "AddPendingSignIn state-6", s.AddPendingSignIn(ctx, pendingSignIn(mb, "state-6"), 10, signInAt.Add(11*time.Minute)))
	_, err = s.TakePendingSignIn(ctx, "state-5", signInAt)
	wantErr(t, "TakePendingSignIn of one purged by an add", err, store.ErrNotFound)
}

// testPendingSignInLimit: at limit unexpired sign-ins, another is refused with
// ErrTooManySignIns; a taken or expired one frees its place.
func testPendingSignInLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "shared", store.Inbound)
	const limit = 3
	for i := range limit {
		must(t, fmt.Sprintf("AddPendingSignIn %d", i), s.AddPendingSignIn(ctx, pendingSignIn(mb, fmt.Sprintf("s%d", i)), limit, signInAt))
	}
	err := s.AddPendingSignIn(ctx, pendingSignIn(mb, "one-too-many"), limit, signInAt)
	wantErr(t, "AddPendingSignIn beyond the limit", err, store.ErrTooManySignIns)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("AddPendingSignIn beyond the limit: %v is also another sentinel", err)
	}
	_, err = s.TakePendingSignIn(ctx, "one-too-many", signInAt)
	wantErr(t, "TakePendingSignIn of the refused one", err, store.ErrNotFound)

	_, err = s.TakePendingSignIn(ctx, "s0", signInAt)
	must(t, "TakePendingSignIn s0", err)
	must(t, "AddPendingSignIn after a take", s.AddPendingSignIn(ctx, pendingSignIn(mb, "s3"), limit, signInAt))
	wantErr(t, "AddPendingSignIn at the limit again", s.AddPendingSignIn(ctx, pendingSignIn(mb, "s4"), limit, signInAt), store.ErrTooManySignIns)

	// Ten minutes later all have expired: the limit counts only unexpired ones.
	later := signInAt.Add(10 * time.Minute)
	for i := range limit {
		p := pendingSignIn(mb, fmt.Sprintf("later%d", i))
		p.ExpiresAt = later.Add(10 * time.Minute)
		must(t, fmt.Sprintf("AddPendingSignIn later%d", i), s.AddPendingSignIn(ctx, p, limit, later))
	}
	for _, state := range []string{"s1", "s2", "s3"} {
		_, err := s.TakePendingSignIn(ctx, state, signInAt)
		wantErr(t, "TakePendingSignIn "+state+" after expiry", err, store.ErrNotFound)
	}
}

// testPendingSignInMailboxDelete: deleting a mailbox deletes its sign-ins in progress, and
// only its.
func testPendingSignInMailboxDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone := newMailbox(t, s, "gone", store.Inbound)
	kept := newMailbox(t, s, "kept", store.Inbound)
	must(t, "AddPendingSignIn gone", s.AddPendingSignIn(ctx, pendingSignIn(gone, "of-gone"), 10, signInAt))
	must(t, "AddPendingSignIn kept", s.AddPendingSignIn(ctx, pendingSignIn(kept, "of-kept"), 10, signInAt))
	must(t, "DeleteMailbox", s.DeleteMailbox(ctx, gone.ID))
	_, err := s.TakePendingSignIn(ctx, "of-gone", signInAt)
	wantErr(t, "TakePendingSignIn of a deleted mailbox", err, store.ErrNotFound)
	got, err := s.TakePendingSignIn(ctx, "of-kept", signInAt)
	must(t, "TakePendingSignIn of another mailbox", err)
	if got.MailboxID != kept.ID {
		t.Errorf("TakePendingSignIn of-kept: mailbox %d, want %d", got.MailboxID, kept.ID)
	}
	err = s.AddPendingSignIn(ctx, pendingSignIn(gone, "after-delete"), 10, signInAt)
	wantErr(t, "AddPendingSignIn of a deleted mailbox", err, store.ErrNotFound)
}

// testPendingSignInConcurrentTake: callbacks of one sign-in arriving at once (two nodes, a
// replayed URL) take it exactly once.
func testPendingSignInConcurrentTake(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "shared", store.Inbound)
	const (
		states = 10
		takers = 6
	)
	for i := range states {
		must(t, "AddPendingSignIn", s.AddPendingSignIn(ctx, pendingSignIn(mb, fmt.Sprintf("race%d", i)), 100, signInAt))
	}
	for i := range states {
		state := fmt.Sprintf("race%d", i)
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range takers {
			wg.Go(func() {
				<-start
				p, err := s.TakePendingSignIn(ctx, state, signInAt)
				switch {
				case err == nil:
					won.Add(1)
					if p.MailboxID != mb.ID || p.SessionHash != "session-of-"+state {
						t.Errorf("TakePendingSignIn %s = %+v", state, p)
					}
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("TakePendingSignIn %s: %v, want it or ErrNotFound", state, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Errorf("%s was taken %d times by %d takers at once, want exactly once", state, n, takers)
		}
	}
}
