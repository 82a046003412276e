package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestSecretExpiryWarning: a mailbox whose client secret expires in 3 days is reported in
// the log (once) and as a metric; one that expires in a month only as a metric.
func TestSecretExpiryWarning(t *testing.T) {
	logs := &testenv.LogBuffer{}
	h := startAppLogged(t, t.TempDir(), nil, logs)
	ctx := context.Background()
	mk := func(name string, left time.Duration) {
		secret := vault.NewSecret("qWe8Q~secret-" + name)
		_, err := h.app.Mailboxes.Create(ctx, "admin", mailbox.Input{
			Name: name, Direction: store.Inbound, Protocol: mailbox.Graph, Address: name + "@contoso.example",
			Auth: store.AuthOAuthApp, ClientSecret: &secret,
			OAuth: store.OAuth{Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555",
				SecretExpiresAt: time.Now().Add(left)},
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	mk("soon", 3*24*time.Hour)
	mk("later", 30*24*time.Hour)
	// The watch runs at start; restart the app so it sees both mailboxes at once.
	dir := h.dir
	h.stop()
	h = startAppLogged(t, dir, nil, logs)
	waitFor(t, "the expiry metric", func() (bool, string) {
		var b bytes.Buffer
		_ = h.app.Metrics.WriteText(ctx, &b)
		// The gauge is set just before the warning is logged: wait for both.
		return strings.Contains(b.String(), `postroom_mailbox_secret_expiry_seconds{mailbox="soon"}`) &&
			strings.Contains(b.String(), `postroom_mailbox_secret_expiry_seconds{mailbox="later"}`) &&
			strings.Contains(logs.String(), "mailbox=soon"), b.String()
	})
	out := logs.String()
	if !strings.Contains(out, "expires soon") || !strings.Contains(out, "mailbox=soon") {
		t.Errorf("no expiry warning for mailbox soon in the log:\n%s", out)
	}
	if strings.Contains(out, "mailbox=later days_left") {
		t.Errorf("a secret 30 days from expiry was warned about")
	}
	if strings.Contains(out, "qWe8Q~secret") {
		t.Error("a client secret is in the log")
	}
}
