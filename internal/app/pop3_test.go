package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestPOP3Ingest: a POP3 mailbox over implicit TLS ingests every message once; with
// "delete" they are removed from the server after commit, with "keep" they stay and a
// restart stores nothing twice.
func TestPOP3Ingest(t *testing.T) {
	for _, action := range []string{store.AfterDelete, store.AfterKeep} {
		t.Run(action, func(t *testing.T) {
			const n = 25
			d := testenv.StartDovecot(t, nil)
			user := "support@example.test"
			d.AddUser(t, user, "support-pw")
			raws := make([][]byte, n)
			for i := range raws {
				raws[i] = customerMail(i)
			}
			d.AppendMany(t, user, "INBOX", raws)
			dir := t.TempDir()
			h := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), nil)
			host, port := hostPort(t, d.POP3SAddr)
			m, err := h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{
				Mailbox: store.Mailbox{Name: "pop", Direction: store.Inbound, Protocol: "pop3", Address: user,
					Host: host, Port: port, Security: "tls", Login: user, AfterAction: action, MaxSizeMB: 5, Enabled: true},
				Password: vault.NewSecret("support-pw"),
			})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "every message stored", func() (bool, string) {
				c, _ := h.app.Store.CountMessages(context.Background(), m.ID)
				return c == n, fmt.Sprintf("%d stored", c)
			})
			wantLeft := 0
			if action == store.AfterKeep {
				wantLeft = n
			}
			waitFor(t, "the server's maildrop after the action", func() (bool, string) {
				left := len(d.Messages(t, user, "INBOX"))
				return left == wantLeft, fmt.Sprintf("%d left on the server", left)
			})
			h.stop()
			// POP3 has no IDLE: the restarted loop finds the new message on its first login.
			d.Append(t, user, "INBOX", customerMail(n))
			h2 := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), nil)
			waitFor(t, "the new message after a restart", func() (bool, string) {
				c, _ := h2.app.Store.CountMessages(context.Background(), m.ID)
				return c == n+1, fmt.Sprintf("%d stored", c)
			})
			checkExactlyOnce(t, h2.app.Store, m.ID, n+1)
		})
	}
}
