package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	bob, err := s.CreateUser(ctx, store.User{Username: "bob", DisplayName: "Bob", Role: store.RoleSupervisor, PasswordHash: "hash-b"})
	must(t, "CreateUser bob", err)
	if bob.ID == 0 {
		t.Fatal("CreateUser returned no ID")
	}
	recent(t, "CreatedAt", bob.CreatedAt, start)
	_, err = s.CreateUser(ctx, store.User{Username: "admin", Role: store.RoleAdmin, PasswordHash: "hash-a"})
	must(t, "CreateUser admin", err)
	_, err = s.CreateUser(ctx, store.User{Username: "bob", Role: store.RoleAgent})
	wantErr(t, "CreateUser with a username in use", err, store.ErrConflict)

	check := func(what string, got store.User) {
		t.Helper()
		if got.ID != bob.ID || got.Username != "bob" || got.DisplayName != "Bob" ||
			got.Role != store.RoleSupervisor || got.PasswordHash != "hash-b" {
			t.Errorf("%s = %+v, want %+v", what, got, bob)
		}
		sameTime(t, what+" CreatedAt", got.CreatedAt, bob.CreatedAt)
	}
	got, err := s.UserByID(ctx, bob.ID)
	must(t, "UserByID", err)
	check("UserByID", got)
	got, err = s.UserByUsername(ctx, "bob")
	must(t, "UserByUsername", err)
	check("UserByUsername", got)

	list, err := s.ListUsers(ctx)
	must(t, "ListUsers", err)
	if len(list) != 2 || list[0].Username != "admin" || list[1].Username != "bob" {
		t.Errorf("ListUsers = %+v, want admin, bob", list)
	}

	must(t, "SetUserPassword", s.SetUserPassword(ctx, bob.ID, "hash-b2"))
	got, err = s.UserByID(ctx, bob.ID)
	must(t, "UserByID", err)
	if got.PasswordHash != "hash-b2" {
		t.Errorf("PasswordHash = %q, want hash-b2", got.PasswordHash)
	}

	_, err = s.UserByID(ctx, bob.ID+1000)
	wantErr(t, "UserByID missing", err, store.ErrNotFound)
	_, err = s.UserByUsername(ctx, "carol")
	wantErr(t, "UserByUsername missing", err, store.ErrNotFound)
	wantErr(t, "SetUserPassword missing", s.SetUserPassword(ctx, bob.ID+1000, "x"), store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreateUser(ctx, store.User{Username: "alice", Role: store.RoleAgent})
	must(t, "CreateUser", err)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	expired := store.Session{TokenHash: "hash-old", UserID: u.ID, CSRFToken: "csrf-1", CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	must(t, "CreateSession", s.CreateSession(ctx, expired))
	got, err := s.SessionByTokenHash(ctx, "hash-old")
	must(t, "SessionByTokenHash of an expired session", err)
	if got.TokenHash != "hash-old" || got.UserID != u.ID || got.CSRFToken != "csrf-1" {
		t.Errorf("SessionByTokenHash = %+v, want %+v", got, expired)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, expired.CreatedAt)
	sameTime(t, "ExpiresAt", got.ExpiresAt, expired.ExpiresAt)

	// The next sign-in clears the expired session; live ones stay.
	live := store.Session{TokenHash: "hash-live", UserID: u.ID, CSRFToken: "csrf-2", ExpiresAt: time.Now().Add(time.Hour)}
	must(t, "CreateSession", s.CreateSession(ctx, live))
	_, err = s.SessionByTokenHash(ctx, "hash-old")
	wantErr(t, "SessionByTokenHash of an expired session after another sign-in", err, store.ErrNotFound)
	must(t, "CreateSession", s.CreateSession(ctx, store.Session{TokenHash: "hash-live-2", UserID: u.ID, CSRFToken: "csrf-3", ExpiresAt: time.Now().Add(time.Hour)}))
	_, err = s.SessionByTokenHash(ctx, "hash-live")
	must(t, "SessionByTokenHash of a live session after another sign-in", err)

	err = s.CreateSession(ctx, store.Session{TokenHash: "hash-live", UserID: u.ID, CSRFToken: "x", ExpiresAt: time.Now().Add(time.Hour)})
	wantErr(t, "CreateSession with a token hash in use", err, store.ErrConflict)

	must(t, "DeleteSession", s.DeleteSession(ctx, "hash-live"))
	_, err = s.SessionByTokenHash(ctx, "hash-live")
	wantErr(t, "SessionByTokenHash after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteSession again", s.DeleteSession(ctx, "hash-live"), store.ErrNotFound)
}

func testAPITokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	u, err := s.CreateUser(ctx, store.User{Username: "admin", Role: store.RoleAdmin})
	must(t, "CreateUser", err)
	tok, err := s.CreateAPIToken(ctx, store.APIToken{UserID: u.ID, Name: "backup script", TokenHash: "th-1"})
	must(t, "CreateAPIToken", err)
	if tok.ID == 0 {
		t.Fatal("CreateAPIToken returned no ID")
	}
	recent(t, "CreatedAt", tok.CreatedAt, start)
	got, err := s.APITokenByHash(ctx, "th-1")
	must(t, "APITokenByHash", err)
	if got.ID != tok.ID || got.UserID != u.ID || got.Name != "backup script" || got.TokenHash != "th-1" {
		t.Errorf("APITokenByHash = %+v, want %+v", got, tok)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, tok.CreatedAt)
	_, err = s.CreateAPIToken(ctx, store.APIToken{UserID: u.ID, Name: "again", TokenHash: "th-1"})
	wantErr(t, "CreateAPIToken with a hash in use", err, store.ErrConflict)
	_, err = s.APITokenByHash(ctx, "th-2")
	wantErr(t, "APITokenByHash missing", err, store.ErrNotFound)

	// The listing names each token and its owner, newest first, and carries no hash.
	ops, err := s.CreateUser(ctx, store.User{Username: "ops", Role: store.RoleAdmin})
	must(t, "CreateUser ops", err)
	tok2, err := s.CreateAPIToken(ctx, store.APIToken{UserID: ops.ID, Name: "nightly report", TokenHash: "th-3"})
	must(t, "CreateAPIToken 2", err)
	list, err := s.ListAPITokens(ctx)
	must(t, "ListAPITokens", err)
	if len(list) != 2 {
		t.Fatalf("ListAPITokens = %+v, want the two tokens", list)
	}
	for i, want := range []struct {
		tok  store.APIToken
		user string
	}{{tok2, "ops"}, {tok, "admin"}} {
		got := list[i]
		if got.ID != want.tok.ID || got.UserID != want.tok.UserID || got.Name != want.tok.Name || got.Username != want.user {
			t.Errorf("ListAPITokens[%d] = %+v, want %q of %s (newest first)", i, got, want.tok.Name, want.user)
		}
		sameTime(t, fmt.Sprintf("ListAPITokens[%d].CreatedAt", i), got.CreatedAt, want.tok.CreatedAt)
		if got.TokenHash != "" {
			t.Errorf("ListAPITokens[%d] carries the hash %q", i, got.TokenHash)
		}
	}

	// A deleted (revoked) token no longer resolves; the other one still does.
	must(t, "DeleteAPIToken", s.DeleteAPIToken(ctx, tok.ID))
	_, err = s.APITokenByHash(ctx, "th-1")
	wantErr(t, "APITokenByHash of a deleted token", err, store.ErrNotFound)
	wantErr(t, "DeleteAPIToken again", s.DeleteAPIToken(ctx, tok.ID), store.ErrNotFound)
	wantErr(t, "DeleteAPIToken of an unknown id", s.DeleteAPIToken(ctx, tok2.ID+100), store.ErrNotFound)
	if got, err := s.APITokenByHash(ctx, "th-3"); err != nil || got.ID != tok2.ID {
		t.Errorf("APITokenByHash of the other token = %+v, %v; want token %d", got, err, tok2.ID)
	}
	list, err = s.ListAPITokens(ctx)
	must(t, "ListAPITokens after delete", err)
	if len(list) != 1 || list[0].ID != tok2.ID {
		t.Errorf("ListAPITokens after delete = %+v, want only %q", list, "nightly report")
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	at := time.Date(2025, 2, 3, 4, 5, 6, 7000, time.FixedZone("X", -5*3600))
	must(t, "AddAudit 1", s.AddAudit(ctx, store.AuditEvent{At: at, Actor: "admin", Action: "mailbox.create", Object: "mailbox:1", New: `{"name":"support"}`}))
	must(t, "AddAudit 2", s.AddAudit(ctx, store.AuditEvent{At: at.Add(time.Minute), Actor: "admin", Action: "mailbox.update", Object: "mailbox:1", Old: "a", New: "b"}))
	must(t, "AddAudit 3", s.AddAudit(ctx, store.AuditEvent{Actor: "system", Action: "mailbox.status", Object: "mailbox:1"}))

	all, err := s.ListAudit(ctx, 0)
	must(t, "ListAudit", err)
	if len(all) != 3 || all[0].Action != "mailbox.status" || all[1].Action != "mailbox.update" || all[2].Action != "mailbox.create" {
		t.Fatalf("ListAudit = %+v, want newest first: status, update, create", all)
	}
	recent(t, "At of an event added without one", all[0].At, start)
	sameTime(t, "At", all[2].At, at)
	if e := all[1]; e.ID == 0 || e.Actor != "admin" || e.Object != "mailbox:1" || e.Old != "a" || e.New != "b" {
		t.Errorf("event = %+v, want the update by admin", e)
	}
	two, err := s.ListAudit(ctx, 2)
	must(t, "ListAudit 2", err)
	if len(two) != 2 || two[0].ID != all[0].ID || two[1].ID != all[1].ID {
		t.Errorf("ListAudit(2) = %+v, want the two newest", two)
	}
}

func testAuditFor(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	for i, e := range []store.AuditEvent{
		{At: at, Actor: "admin", Action: "mailbox.create", Object: "mailbox:1"},
		{At: at.Add(time.Minute), Actor: "admin", Action: "mailbox.create", Object: "mailbox:12"},
		{At: at.Add(2 * time.Minute), Actor: "admin", Action: "mailbox.enable", Object: "mailbox:1"},
		{At: at.Add(3 * time.Minute), Actor: "bob", Action: "mailbox.update", Object: "mailbox:1", Old: "host=a", New: "host=b"},
		{At: at.Add(4 * time.Minute), Actor: "admin", Action: "queue.create", Object: "queue:1"},
	} {
		must(t, fmt.Sprintf("AddAudit %d", i), s.AddAudit(ctx, e))
	}
	list, err := s.ListAuditFor(ctx, "mailbox:1", 0)
	must(t, "ListAuditFor", err)
	var actions []string
	for _, e := range list {
		if e.Object != "mailbox:1" {
			t.Errorf("ListAuditFor(mailbox:1) returned an event of %q", e.Object)
		}
		actions = append(actions, e.Action)
	}
	if !slices.Equal(actions, []string{"mailbox.update", "mailbox.enable", "mailbox.create"}) {
		t.Errorf("ListAuditFor(mailbox:1) = %v, want update, enable, create (newest first; not mailbox:12)", actions)
	}
	if e := list[0]; e.Actor != "bob" || e.Old != "host=a" || e.New != "host=b" {
		t.Errorf("newest event = %+v, want bob's update with old and new values", e)
	}
	sameTime(t, "At", list[2].At, at)
	two, err := s.ListAuditFor(ctx, "mailbox:1", 2)
	must(t, "ListAuditFor 2", err)
	if len(two) != 2 || two[0].ID != list[0].ID || two[1].ID != list[1].ID {
		t.Errorf("ListAuditFor(mailbox:1, 2) = %+v, want the two newest", two)
	}
	none, err := s.ListAuditFor(ctx, "mailbox:99", 10)
	must(t, "ListAuditFor unknown", err)
	if len(none) != 0 {
		t.Errorf("ListAuditFor(mailbox:99) = %+v, want none", none)
	}
}
