package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// doubling locks a key for 1 s after its 3rd failure, 2 s after its 4th, and so on.
func doubling(n int) time.Duration {
	if n < 3 {
		return 0
	}
	return time.Second << (n - 3)
}

// testSignInThrottle: failures count per key, lock as LockFor says, start again after a
// quiet period, reset, prune; the state survives in the store (a new caller sees it).
func testSignInThrottle(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := signInAt
	got, err := s.SignInThrottles(ctx, "account:ana", "address:192.0.2.1")
	must(t, "SignInThrottles of new keys", err)
	if len(got) != 0 {
		t.Fatalf("SignInThrottles of new keys = %+v, want none", got)
	}
	fail := func(key string, at time.Time) store.SignInThrottle {
		t.Helper()
		th, err := s.RecordSignInFailure(ctx, store.SignInFailure{Key: key, At: at, QuietAfter: time.Hour, LockFor: doubling})
		must(t, "RecordSignInFailure", err)
		return th
	}
	for i := 1; i <= 2; i++ {
		th := fail("account:ana", at)
		if th.Failures != i || !th.LockedUntil.IsZero() {
			t.Fatalf("failure %d: %+v, want %d failures and no lock", i, th, i)
		}
	}
	th := fail("account:ana", at)
	if th.Failures != 3 {
		t.Fatalf("third failure: %+v", th)
	}
	sameTime(t, "lock after 3 failures", th.LockedUntil, at.Add(time.Second))
	th = fail("account:ana", at.Add(time.Minute))
	sameTime(t, "lock after 4 failures", th.LockedUntil, at.Add(time.Minute+2*time.Second))
	fail("address:192.0.2.1", at)

	list, err := s.SignInThrottles(ctx, "account:ana", "address:192.0.2.1", "account:nobody")
	must(t, "SignInThrottles", err)
	if len(list) != 2 {
		t.Fatalf("SignInThrottles = %+v, want 2 keys", list)
	}
	for _, th := range list {
		switch th.Key {
		case "account:ana":
			if th.Failures != 4 {
				t.Errorf("ana has %d failures, want 4", th.Failures)
			}
			sameTime(t, "ana's lock", th.LockedUntil, at.Add(time.Minute+2*time.Second))
			sameTime(t, "ana's last failure", th.LastFailure, at.Add(time.Minute))
		case "address:192.0.2.1":
			if th.Failures != 1 || !th.LockedUntil.IsZero() {
				t.Errorf("address state %+v, want 1 failure, no lock", th)
			}
		default:
			t.Errorf("unexpected key %q", th.Key)
		}
	}

	// A quiet hour forgets the count (the lock of a later failure starts again).
	th = fail("account:ana", at.Add(3*time.Hour))
	if th.Failures != 1 {
		t.Errorf("failure after a quiet period counts %d, want 1", th.Failures)
	}

	must(t, "ResetSignInThrottle", s.ResetSignInThrottle(ctx, "account:ana"))
	must(t, "ResetSignInThrottle of a key without state", s.ResetSignInThrottle(ctx, "account:nobody"))
	list, err = s.SignInThrottles(ctx, "account:ana")
	must(t, "SignInThrottles after reset", err)
	if len(list) != 0 {
		t.Errorf("after reset: %+v, want none", list)
	}

	n, err := s.PruneSignInThrottles(ctx, at.Add(time.Hour))
	must(t, "PruneSignInThrottles", err)
	if n != 1 {
		t.Errorf("pruned %d keys, want 1 (the address)", n)
	}
}

// testSignInThrottleConcurrent: failures counted at the same moment all count, and the
// lock kept is the one of the highest count.
func testSignInThrottleConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.RecordSignInFailure(ctx, store.SignInFailure{Key: "account:ben", At: signInAt, QuietAfter: time.Hour, LockFor: doubling})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, "concurrent RecordSignInFailure", err)
	}
	list, err := s.SignInThrottles(ctx, "account:ben")
	must(t, "SignInThrottles", err)
	if len(list) != 1 || list[0].Failures != n {
		t.Fatalf("after %d concurrent failures: %+v", n, list)
	}
	sameTime(t, "lock", list[0].LockedUntil, signInAt.Add(doubling(n)))
}

// testSecondFactors: a second factor is kept sealed, unconfirmed until its first step is
// used; a step is accepted once and only forwards; it goes with its user.
func testSecondFactors(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin, PasswordHash: "x"})
	must(t, "CreateUser", err)
	u, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser", err)
	_, err = s.SecondFactor(ctx, u.ID)
	wantErr(t, "SecondFactor of a user without one", err, store.ErrNotFound)
	wantErr(t, "SetSecondFactor of a missing user", s.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID + 100, Secret: []byte("s")}), store.ErrNotFound)
	must(t, "SetSecondFactor", s.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: []byte("sealed-1"), CreatedAt: signInAt}))
	f, err := s.SecondFactor(ctx, u.ID)
	must(t, "SecondFactor", err)
	if string(f.Secret) != "sealed-1" || f.Confirmed || f.LastStep != 0 {
		t.Fatalf("SecondFactor = %+v", f)
	}
	sameTime(t, "CreatedAt", f.CreatedAt, signInAt)
	must(t, "UseSecondFactorStep", s.UseSecondFactorStep(ctx, u.ID, 1000))
	wantErr(t, "UseSecondFactorStep of the same step", s.UseSecondFactorStep(ctx, u.ID, 1000), store.ErrConflict)
	wantErr(t, "UseSecondFactorStep of an earlier step", s.UseSecondFactorStep(ctx, u.ID, 999), store.ErrConflict)
	wantErr(t, "UseSecondFactorStep without a factor", s.UseSecondFactorStep(ctx, u.ID+100, 5), store.ErrNotFound)
	f, err = s.SecondFactor(ctx, u.ID)
	must(t, "SecondFactor", err)
	if !f.Confirmed || f.LastStep != 1000 {
		t.Errorf("after a used step: %+v, want confirmed at step 1000", f)
	}
	// Enrolling again replaces the secret and needs a new confirmation.
	must(t, "SetSecondFactor again", s.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: []byte("sealed-2")}))
	f, err = s.SecondFactor(ctx, u.ID)
	must(t, "SecondFactor", err)
	if string(f.Secret) != "sealed-2" || f.Confirmed || f.LastStep != 0 {
		t.Errorf("after enrolling again: %+v", f)
	}
	must(t, "DeleteSecondFactor", s.DeleteSecondFactor(ctx, u.ID))
	wantErr(t, "DeleteSecondFactor again", s.DeleteSecondFactor(ctx, u.ID), store.ErrNotFound)

	must(t, "SetSecondFactor", s.SetSecondFactor(ctx, store.SecondFactor{UserID: u.ID, Secret: []byte("sealed-3")}))
	must(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
	_, err = s.SecondFactor(ctx, u.ID)
	wantErr(t, "SecondFactor of a deleted user", err, store.ErrNotFound)
}
