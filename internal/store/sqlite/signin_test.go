package sqlite_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// TestPendingSignInStoresStateHash looks into the database file: a sign-in in progress is
// found there only by the SHA-256 of its state, never by the state itself (which travels
// in URLs and would let whoever reads the database finish the sign-in).
func TestPendingSignInStoresStateHash(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "postroom.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mb, err := s.CreateMailbox(ctx, store.Mailbox{Name: "m365", Direction: store.Inbound, Protocol: "graph"})
	if err != nil {
		t.Fatal(err)
	}
	const state = "Zm9yZ2VkLXN0YXRlLXRoYXQtdHJhdmVscy1pbi1VUkxz"
	now := time.Now()
	err = s.AddPendingSignIn(ctx, store.PendingSignIn{State: state, SessionHash: "session", MailboxID: mb.ID,
		Verifier: []byte{1, 2, 3}, RedirectURI: "https://postroom.example.org/oauth/callback", ExpiresAt: now.Add(time.Minute)}, 10, now)
	if err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hash string
	var verifier []byte
	if err := db.QueryRowContext(ctx, `SELECT state_hash, verifier FROM pending_signins`).Scan(&hash, &verifier); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(state))
	if hash != hex.EncodeToString(sum[:]) {
		t.Errorf("state_hash = %q, want the hex SHA-256 of the state", hash)
	}
	if !bytes.Equal(verifier, []byte{1, 2, 3}) {
		t.Errorf("verifier = %v, want the sealed bytes given", verifier)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_signins WHERE state_hash = ? OR redirect_uri = ? OR session_hash = ?`,
		state, state, state).Scan(&n); err != nil || n != 0 {
		t.Errorf("the state itself is in the database (%d rows, %v)", n, err)
	}
}
