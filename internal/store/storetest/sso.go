package storetest

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func ssoSignIn(state string) store.SSOSignIn {
	return store.SSOSignIn{
		State: state, BrowserHash: "browser-of-" + state, NonceHash: "nonce-of-" + state,
		Verifier: []byte("sealed verifier of " + state), Issuer: "https://login.example.org/t/v2.0",
		RedirectURI: "https://postroom.example.org/sso/callback", Next: "/board",
		ExpiresAt: signInAt.Add(10 * time.Minute), CreatedAt: signInAt,
	}
}

// testSSOSignIns: a single sign-on sign-in is taken whole, once; unknown, empty and
// expired states are ErrNotFound; the limit holds.
func testSSOSignIns(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := ssoSignIn("state-1")
	must(t, "AddSSOSignIn", s.AddSSOSignIn(ctx, want, 10, signInAt))
	wantErr(t, "AddSSOSignIn with a state kept already", s.AddSSOSignIn(ctx, ssoSignIn("state-1"), 10, signInAt), store.ErrConflict)
	_, err := s.TakeSSOSignIn(ctx, "state-unknown", signInAt)
	wantErr(t, "TakeSSOSignIn of an unknown state", err, store.ErrNotFound)
	_, err = s.TakeSSOSignIn(ctx, "", signInAt)
	wantErr(t, "TakeSSOSignIn of an empty state", err, store.ErrNotFound)
	got, err := s.TakeSSOSignIn(ctx, "state-1", signInAt.Add(time.Minute))
	must(t, "TakeSSOSignIn", err)
	if got.State != want.State || got.BrowserHash != want.BrowserHash || got.NonceHash != want.NonceHash ||
		!bytes.Equal(got.Verifier, want.Verifier) || got.Issuer != want.Issuer || got.RedirectURI != want.RedirectURI || got.Next != want.Next {
		t.Errorf("TakeSSOSignIn = %+v, want %+v", got, want)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	_, err = s.TakeSSOSignIn(ctx, "state-1", signInAt.Add(time.Minute))
	wantErr(t, "TakeSSOSignIn a second time", err, store.ErrNotFound)

	must(t, "AddSSOSignIn", s.AddSSOSignIn(ctx, ssoSignIn("state-2"), 10, signInAt))
	_, err = s.TakeSSOSignIn(ctx, "state-2", signInAt.Add(10*time.Minute))
	wantErr(t, "TakeSSOSignIn of an expired sign-in", err, store.ErrNotFound)

	// The limit counts unexpired sign-ins only.
	for _, st := range []string{"a", "b"} {
		must(t, "AddSSOSignIn "+st, s.AddSSOSignIn(ctx, ssoSignIn(st), 2, signInAt))
	}
	wantErr(t, "AddSSOSignIn beyond the limit", s.AddSSOSignIn(ctx, ssoSignIn("c"), 2, signInAt), store.ErrTooManySignIns)
	must(t, "AddSSOSignIn after the others expired", s.AddSSOSignIn(ctx, ssoSignIn("c"), 2, signInAt.Add(11*time.Minute)))
}

// testSSOSignInConcurrentTake: of several takes of one state at once, exactly one gets it.
func testSSOSignInConcurrentTake(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "AddSSOSignIn", s.AddSSOSignIn(ctx, ssoSignIn("raced"), 10, signInAt))
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 8 {
		wg.Go(func() {
			if _, err := s.TakeSSOSignIn(ctx, "raced", signInAt); err == nil {
				won.Add(1)
			} else if !store.IsNotFound(err) {
				t.Errorf("TakeSSOSignIn: %v", err)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Errorf("%d takes got the sign-in, want exactly 1", n)
	}
}

// testExternalIdentities: an identity links to one user, is found again, and goes with
// the user.
func testExternalIdentities(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin, PasswordHash: "x"})
	must(t, "CreateUser root", err)
	ana, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser ana", err)
	ben, err := s.CreateUser(ctx, store.User{Username: "ben", Role: store.RoleSupervisor, PasswordHash: "x"})
	must(t, "CreateUser ben", err)
	const iss = "https://login.example.org/t/v2.0"
	_, err = s.UserByIdentity(ctx, iss, "oid-ana")
	wantErr(t, "UserByIdentity before linking", err, store.ErrNotFound)
	id := store.ExternalIdentity{Issuer: iss, Subject: "oid-ana", UserID: ana.ID, CreatedAt: signInAt}
	must(t, "LinkIdentity", s.LinkIdentity(ctx, id))
	must(t, "LinkIdentity again to the same user", s.LinkIdentity(ctx, id))
	wantErr(t, "LinkIdentity to another user", s.LinkIdentity(ctx, store.ExternalIdentity{Issuer: iss, Subject: "oid-ana", UserID: ben.ID}), store.ErrConflict)
	wantErr(t, "LinkIdentity to a missing user", s.LinkIdentity(ctx, store.ExternalIdentity{Issuer: iss, Subject: "x", UserID: ben.ID + 100}), store.ErrNotFound)
	got, err := s.UserByIdentity(ctx, iss, "oid-ana")
	must(t, "UserByIdentity", err)
	if got.ID != ana.ID || got.Username != "ana" {
		t.Errorf("UserByIdentity = %d %q, want ana", got.ID, got.Username)
	}
	_, err = s.UserByIdentity(ctx, "https://other.example.org", "oid-ana")
	wantErr(t, "UserByIdentity at another issuer", err, store.ErrNotFound)
	list, err := s.IdentitiesOf(ctx, ana.ID)
	must(t, "IdentitiesOf", err)
	if len(list) != 1 || list[0].Subject != "oid-ana" || list[0].Issuer != iss {
		t.Errorf("IdentitiesOf = %+v, want the one link", list)
	} else {
		sameTime(t, "identity CreatedAt", list[0].CreatedAt, signInAt)
	}
	must(t, "DeleteUser", s.DeleteUser(ctx, ana.ID))
	_, err = s.UserByIdentity(ctx, iss, "oid-ana")
	wantErr(t, "UserByIdentity after the user's deletion", err, store.ErrNotFound)
	must(t, "LinkIdentity to a new user after the deletion", s.LinkIdentity(ctx, store.ExternalIdentity{Issuer: iss, Subject: "oid-ana", UserID: ben.ID}))
}
