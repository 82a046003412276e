package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestMigratePasswordToOAuth: the self-service switch of an IMAP mailbox from its password
// to the app's OAuth sign-in (client credentials, XOAUTH2 against real Dovecot checking
// the stand-in's tokens): the mailbox is tested with the new sign-in and keeps reading from
// where it was (IMAP cursor kept: nothing stored twice, nothing missed). A migration whose
// test fails (a wrong secret) is rolled back and the mailbox keeps working with its
// password.
func TestMigratePasswordToOAuth(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: ms.IntrospectURL()})
	user := sample.Mailbox
	d.AddUser(t, user, "old-password")
	d.Append(t, user, "INBOX", customerMail(0))
	d.Append(t, user, "INBOX", customerMail(1))
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	m := h.addInbound(d, user, "old-password")
	waitFor(t, "ingest with the password", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		return c == 2, fmt.Sprintf("%d stored", c)
	})

	oauth := store.OAuth{Cloud: "custom", AuthorityURL: ms.LoginURL(), Tenant: sample.TenantID, ClientID: sample.ClientID}
	wrong := vault.NewSecret("not-the-secret")
	res, err := h.app.Mailboxes.Migrate(ctx, "admin", []int64{m.ID}, mailbox.Migration{OAuth: oauth, ClientSecret: &wrong})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Migrated || !res[0].RolledBack || !strings.Contains(res[0].Error, "secret") {
		t.Fatalf("migration with a wrong secret: %+v, want rolled back with advice about the secret", res)
	}
	if got, _ := h.app.Store.Mailbox(ctx, m.ID); got.Auth != store.AuthPassword || !got.Enabled || got.ClientSecretSet {
		t.Fatalf("after the rollback: auth %q enabled %v client secret kept %v, want the password sign-in, still enabled, no secret left",
			got.Auth, got.Enabled, got.ClientSecretSet)
	}

	right := vault.NewSecret(sample.ClientSecret)
	res, err = h.app.Mailboxes.Migrate(ctx, "admin", []int64{m.ID}, mailbox.Migration{OAuth: oauth, ClientSecret: &right})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Migrated {
		t.Fatalf("migration: %+v, want migrated", res)
	}
	// Prove the old password is no longer what logs in: change it at the server.
	d.AddUser(t, user, "changed-after-migration")
	got, _ := h.app.Store.Mailbox(ctx, m.ID)
	if got.Auth != store.AuthOAuthApp || got.Host != m.Host {
		t.Fatalf("after migrating: auth %q host %q, want oauth_app on the same host", got.Auth, got.Host)
	}
	d.Append(t, user, "INBOX", customerMail(2))
	waitFor(t, "ingest over XOAUTH2 after the switch", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		st, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 3, fmt.Sprintf("%d stored, status %s %s", c, st.Status, st.StatusMessage)
	})
	checkExactlyOnce(t, h.app.Store, m.ID, 3)
}

// TestMigrateIMAPToGraph: a mailbox read over IMAP moves to Microsoft Graph; the messages
// read before the switch come again through Graph (a full first sync) and are recognised
// by Message-ID and content: no second work item, and a message that arrives after the
// switch comes in once.
func TestMigrateIMAPToGraph(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	d := testenv.StartDovecot(t, nil)
	user := sample.Mailbox
	d.AddUser(t, user, "old-password")
	for i := range 2 {
		raw := mstest.SampleMessage(i)
		d.Append(t, user, "INBOX", raw)
		// The same emails wait at Microsoft, unread: the first Graph sync takes them.
		if _, err := ms.Deliver(user, "inbox", raw); err != nil {
			t.Fatal(err)
		}
	}
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	m := h.addInbound(d, user, "old-password")
	waitFor(t, "ingest over IMAP", func() (bool, string) {
		n := len(allWorkItems(t, h.app.Store))
		return n == 2, fmt.Sprintf("%d work items", n)
	})
	secret := vault.NewSecret(sample.ClientSecret)
	res, err := h.app.Mailboxes.Migrate(ctx, "admin", []int64{m.ID}, mailbox.Migration{ToGraph: true, ClientSecret: &secret, GraphURL: ms.GraphURL(),
		OAuth: store.OAuth{Cloud: "custom", AuthorityURL: ms.LoginURL(), Tenant: sample.TenantID, ClientID: sample.ClientID}})
	if err != nil || len(res) != 1 || !res[0].Migrated {
		t.Fatalf("migrate to Graph: %+v %v", res, err)
	}
	late, err := ms.Deliver(user, "inbox", mstest.SampleMessage(7))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new message over Graph", func() (bool, string) {
		_, err := h.app.Store.MessageBySource(ctx, m.ID, "graph:"+late)
		return err == nil, fmt.Sprint(err)
	})
	waitFor(t, "the earlier messages seen again at Microsoft (marked read)", func() (bool, string) {
		msgs, _ := ms.Messages(user, "inbox")
		read := 0
		for _, x := range msgs {
			if x.IsRead {
				read++
			}
		}
		return read == 3, fmt.Sprintf("%d of %d read", read, len(msgs))
	})
	if n := len(allWorkItems(t, h.app.Store)); n != 3 {
		t.Errorf("%d work items after the switch, want 3: the two read over IMAP must not come again", n)
	}
}
