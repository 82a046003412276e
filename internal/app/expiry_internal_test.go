package app

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// TestSignInLapseWarning: a delegated mailbox whose refresh token has not been used for 80
// days (a disabled mailbox) is warned about as a metric and in the log; past 90 days the
// log says the sign-in has lapsed and to sign in again.
func TestSignInLapseWarning(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := st.CreateMailbox(ctx, store.Mailbox{Name: "agentbox", Direction: store.Inbound, Protocol: "graph",
		Auth: store.AuthOAuthDelegated, OAuth: store.OAuth{Provider: "microsoft", ClientID: "11111111-2222-3333-4444-555555555555"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSecret(ctx, m.ID, store.SecretRefreshToken, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	reg := metrics.New()
	w := newExpiryWatch(st, reg, slog.New(slog.NewTextHandler(&logs, nil)), time.Hour)
	base := time.Now()
	w.now = func() time.Time { return base.Add(80 * 24 * time.Hour) }
	w.check(ctx)
	var text bytes.Buffer
	if err := reg.WriteText(ctx, &text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), `postroom_mailbox_signin_expiry_seconds{mailbox="agentbox"}`) {
		t.Errorf("no sign-in expiry metric:\n%s", text.String())
	}
	if !strings.Contains(logs.String(), "lapses soon") {
		t.Errorf("no warning 10 days before the sign-in lapses:\n%s", logs.String())
	}
	w.now = func() time.Time { return base.Add(91 * 24 * time.Hour) }
	w.check(ctx)
	if !strings.Contains(logs.String(), "has lapsed") || !strings.Contains(logs.String(), "sign in again") {
		t.Errorf("no error once the sign-in lapsed:\n%s", logs.String())
	}
}
