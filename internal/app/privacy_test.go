package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/privacy"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestErasedMailNotFetchedAgain: a POP3 mailbox that keeps its mail on the real Dovecot
// server lists the erased customer's message at every login; after the erasure and a
// restart, it is not stored again, while a new message still comes in.
func TestErasedMailNotFetchedAgain(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.AppendMany(t, user, "INBOX", [][]byte{customerMail(1), customerMail(2)})
	dir := t.TempDir()
	h := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), nil)
	host, port := hostPort(t, d.POP3SAddr)
	m, err := h.app.EnsureMailbox(context.Background(), "test", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "pop", Direction: store.Inbound, Protocol: "pop3", Address: user,
			Host: host, Port: port, Security: "tls", Login: user, AfterAction: store.AfterKeep, MaxSizeMB: 5, Enabled: true},
		Password: vault.NewSecret("support-pw"),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both messages stored", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(context.Background(), m.ID)
		return c == 2, fmt.Sprintf("%d stored", c)
	})
	c, err := privacy.Erase(context.Background(), h.app.Store, "admin", "customer1@example.org")
	if err != nil || c.Messages != 1 {
		t.Fatalf("Erase = %+v, %v; want one message erased", c, err)
	}
	h.stop()

	d.Append(t, user, "INBOX", customerMail(3))
	h2 := startAppIn(t, dir, "sqlite", "", certPool(t, d.CertPEM), nil)
	waitFor(t, "the new message after a restart", func() (bool, string) {
		c, _ := h2.app.Store.CountMessages(context.Background(), m.ID)
		return c == 2, fmt.Sprintf("%d stored", c)
	})
	if n := len(d.Messages(t, user, "INBOX")); n != 3 {
		t.Errorf("%d messages on the server, want the 3 kept there", n)
	}
	for _, w := range allWorkItems(t, h2.app.Store) {
		if w.FromAddr == "customer1@example.org" {
			t.Errorf("the erased customer's message came back as work item %d", w.ID)
		}
	}
	if n := len(allWorkItems(t, h2.app.Store)); n != 2 {
		t.Errorf("%d work items, want 2 (customers 2 and 3)", n)
	}
}
