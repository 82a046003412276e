package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testSessionList: a user's sessions are listed with their id, times and client, without
// the credential; one or all of them can be ended, and only by naming their owner.
func testSessionList(t *testing.T, s store.Store) {
	ctx := t.Context()
	ana, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent})
	must(t, "CreateUser ana", err)
	bob, err := s.CreateUser(ctx, store.User{Username: "bob", Role: store.RoleAgent})
	must(t, "CreateUser bob", err)
	now := time.Now().UTC().Truncate(time.Microsecond)
	later := now.Add(time.Hour)
	longUA := strings.Repeat("Mozilla/5.0 ", 100) + "é"
	must(t, "CreateSession a1", s.CreateSession(ctx, store.Session{TokenHash: "a1", UserID: ana.ID, CSRFToken: "c",
		CreatedAt: now.Add(-time.Minute), ExpiresAt: later, ClientAddr: "192.0.2.1", UserAgent: "curl/8.5.0"}))
	must(t, "CreateSession a2", s.CreateSession(ctx, store.Session{TokenHash: "a2", UserID: ana.ID, CSRFToken: "c",
		CreatedAt: now, ExpiresAt: later, ClientAddr: "2001:db8::1", UserAgent: longUA}))
	must(t, "CreateSession old", s.CreateSession(ctx, store.Session{TokenHash: "a-old", UserID: ana.ID, CSRFToken: "c",
		CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))
	must(t, "CreateSession b1", s.CreateSession(ctx, store.Session{TokenHash: "b1", UserID: bob.ID, CSRFToken: "c", ExpiresAt: later}))

	a1, err := s.SessionByTokenHash(ctx, "a1")
	must(t, "SessionByTokenHash a1", err)
	if a1.ID == 0 || a1.ClientAddr != "192.0.2.1" || a1.UserAgent != "curl/8.5.0" {
		t.Errorf("SessionByTokenHash a1 = %+v, want an id, its address and user agent", a1)
	}
	sameTime(t, "LastSeenAt of a new session", a1.LastSeenAt, a1.CreatedAt)

	list, err := s.ListSessions(ctx, ana.ID, now)
	must(t, "ListSessions", err)
	if len(list) != 2 {
		t.Fatalf("ListSessions = %+v, want ana's two unexpired sessions", list)
	}
	// The most recently seen first.
	if list[0].ClientAddr != "2001:db8::1" || list[1].ID != a1.ID {
		t.Errorf("ListSessions = %+v, want a2 then a1", list)
	}
	if got := list[0].UserAgent; len(got) > 512 || !strings.HasPrefix(got, "Mozilla/5.0 ") {
		t.Errorf("a long user agent is kept as %d bytes %q, want at most 512", len(got), got)
	}
	for _, se := range list {
		if se.TokenHash != "" || se.CSRFToken != "" {
			t.Errorf("ListSessions carries a credential: %+v", se)
		}
		if se.UserID != ana.ID {
			t.Errorf("ListSessions of ana lists %+v", se)
		}
	}

	// Touch moves a1 to the top.
	must(t, "TouchSession", s.TouchSession(ctx, a1.ID, now.Add(5*time.Minute)))
	list, err = s.ListSessions(ctx, ana.ID, now)
	must(t, "ListSessions after touch", err)
	if len(list) != 2 || list[0].ID != a1.ID {
		t.Errorf("ListSessions after touching a1 = %+v, want a1 first", list)
	} else {
		sameTime(t, "LastSeenAt after touch", list[0].LastSeenAt, now.Add(5*time.Minute))
	}
	wantErr(t, "TouchSession of an unknown id", s.TouchSession(ctx, a1.ID+1000, now), store.ErrNotFound)

	// Bob cannot end ana's session by its id.
	_, err = s.DeleteSessionOf(ctx, bob.ID, a1.ID)
	wantErr(t, "DeleteSessionOf with another user", err, store.ErrNotFound)
	ended, err := s.DeleteSessionOf(ctx, ana.ID, a1.ID)
	must(t, "DeleteSessionOf", err)
	if ended.ID != a1.ID || ended.ClientAddr != "192.0.2.1" || ended.TokenHash != "" {
		t.Errorf("DeleteSessionOf = %+v, want a1 without its hash", ended)
	}
	_, err = s.SessionByTokenHash(ctx, "a1")
	wantErr(t, "SessionByTokenHash of an ended session", err, store.ErrNotFound)
	_, err = s.DeleteSessionOf(ctx, ana.ID, a1.ID)
	wantErr(t, "DeleteSessionOf again", err, store.ErrNotFound)

	n, err := s.DeleteSessionsOf(ctx, ana.ID)
	must(t, "DeleteSessionsOf", err)
	if n != 1 { // a2 (the expired one went when b1 was created)
		t.Errorf("DeleteSessionsOf = %d, want 1", n)
	}
	if list, err := s.ListSessions(ctx, ana.ID, now.Add(-3*time.Hour)); err != nil || len(list) != 0 {
		t.Errorf("ListSessions after DeleteSessionsOf = %+v, %v; want none", list, err)
	}
	if _, err := s.SessionByTokenHash(ctx, "b1"); err != nil {
		t.Errorf("bob's session after ending ana's: %v", err)
	}
}

// testAPITokenScopes: a token keeps its scopes, expiry and last use; the per-user listing
// lists one user's tokens only.
func testAPITokenScopes(t *testing.T, s store.Store) {
	ctx := t.Context()
	ana, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent})
	must(t, "CreateUser ana", err)
	root, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin})
	must(t, "CreateUser root", err)
	expires := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	tok, err := s.CreateAPIToken(ctx, store.APIToken{UserID: ana.ID, Name: "report", TokenHash: "h-ana",
		Scopes: []string{store.ScopeRead}, ExpiresAt: expires})
	must(t, "CreateAPIToken ana", err)
	_, err = s.CreateAPIToken(ctx, store.APIToken{UserID: root.ID, Name: "ops", TokenHash: "h-root"})
	must(t, "CreateAPIToken root", err)

	got, err := s.APITokenByHash(ctx, "h-ana")
	must(t, "APITokenByHash", err)
	if !slices.Equal(got.Scopes, []string{store.ScopeRead}) || got.Username != "ana" || got.TokenHash != "h-ana" || !got.LastUsedAt.IsZero() {
		t.Errorf("APITokenByHash = %+v, want scope read of ana, never used", got)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, expires.Truncate(time.Microsecond))
	sameTime(t, "ExpiresAt returned by CreateAPIToken", tok.ExpiresAt, expires.Truncate(time.Microsecond))

	used := time.Now().UTC().Truncate(time.Microsecond)
	must(t, "TouchAPIToken", s.TouchAPIToken(ctx, tok.ID, used))
	wantErr(t, "TouchAPIToken of an unknown id", s.TouchAPIToken(ctx, tok.ID+1000, used), store.ErrNotFound)

	byID, err := s.APIToken(ctx, tok.ID)
	must(t, "APIToken", err)
	if byID.Name != "report" || byID.Username != "ana" || byID.TokenHash != "" || !slices.Equal(byID.Scopes, []string{store.ScopeRead}) {
		t.Errorf("APIToken = %+v, want ana's report without hash", byID)
	}
	sameTime(t, "LastUsedAt", byID.LastUsedAt, used)
	_, err = s.APIToken(ctx, tok.ID+1000)
	wantErr(t, "APIToken of an unknown id", err, store.ErrNotFound)

	mine, err := s.ListAPITokensOf(ctx, ana.ID)
	must(t, "ListAPITokensOf", err)
	if len(mine) != 1 || mine[0].ID != tok.ID || mine[0].TokenHash != "" {
		t.Errorf("ListAPITokensOf ana = %+v, want only her token, without hash", mine)
	} else {
		sameTime(t, "listed LastUsedAt", mine[0].LastUsedAt, used)
		sameTime(t, "listed ExpiresAt", mine[0].ExpiresAt, expires.Truncate(time.Microsecond))
	}
	all, err := s.ListAPITokens(ctx)
	must(t, "ListAPITokens", err)
	if len(all) != 2 || len(all[0].Scopes) != 0 || !all[0].ExpiresAt.IsZero() {
		t.Errorf("ListAPITokens = %+v, want both, root's without scopes or expiry", all)
	}
}
