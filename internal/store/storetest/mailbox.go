package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func testMigrate(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Run already migrated once; starting again must be harmless.
	must(t, "second Migrate", s.Migrate(ctx))
	must(t, "third Migrate", s.Migrate(ctx))
	_, err := s.Setting(ctx, "anything")
	wantErr(t, "Setting on a migrated store", err, store.ErrNotFound)
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	if len(list) != 0 {
		t.Errorf("fresh store has %d mailboxes, want 0", len(list))
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Setting(ctx, "vault.check")
	wantErr(t, "Setting missing", err, store.ErrNotFound)
	must(t, "SetSetting", s.SetSetting(ctx, "vault.check", "v1"))
	must(t, "SetSetting other", s.SetSetting(ctx, "other", "x"))
	must(t, "SetSetting again", s.SetSetting(ctx, "vault.check", "v2"))
	got, err := s.Setting(ctx, "vault.check")
	must(t, "Setting", err)
	if got != "v2" {
		t.Errorf("Setting = %q, want v2 (the last value set)", got)
	}
}

func testMailboxes(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	in := store.Mailbox{
		Name:         "support",
		Direction:    store.Inbound,
		Protocol:     "imap",
		Address:      "support@example.com",
		Host:         "imap.example.com",
		Port:         993,
		Security:     "tls",
		Login:        "support@example.com",
		Folder:       "INBOX",
		MaxSizeMB:    30,
		PollInterval: 90 * time.Second,
		Enabled:      false,
	}
	created, err := s.CreateMailbox(ctx, in)
	must(t, "CreateMailbox", err)
	if created.ID == 0 {
		t.Fatal("CreateMailbox returned no ID")
	}
	recent(t, "CreatedAt", created.CreatedAt, start)
	recent(t, "UpdatedAt", created.UpdatedAt, start)
	if created.Status != store.StatusUnknown {
		t.Errorf("new mailbox Status = %q, want %q", created.Status, store.StatusUnknown)
	}

	check := func(what string, got store.Mailbox) {
		t.Helper()
		if got.ID != created.ID || got.Name != in.Name || got.Direction != in.Direction ||
			got.Protocol != in.Protocol || got.Address != in.Address || got.Host != in.Host ||
			got.Port != in.Port || got.Security != in.Security || got.Login != in.Login ||
			got.Folder != in.Folder || got.MaxSizeMB != in.MaxSizeMB ||
			got.PollInterval != in.PollInterval || got.Enabled != in.Enabled ||
			got.IsDefault != in.IsDefault || got.Status != store.StatusUnknown {
			t.Errorf("%s = %+v, want the fields of %+v", what, got, in)
		}
		sameTime(t, what+" CreatedAt", got.CreatedAt, created.CreatedAt)
		if !got.StatusAt.IsZero() || !got.LastOKAt.IsZero() {
			t.Errorf("%s: StatusAt %v, LastOKAt %v, want both zero", what, got.StatusAt, got.LastOKAt)
		}
	}
	got, err := s.Mailbox(ctx, created.ID)
	must(t, "Mailbox", err)
	check("Mailbox", got)
	if got.PasswordSet {
		t.Error("PasswordSet is true before any secret was stored")
	}
	got, err = s.MailboxByName(ctx, "support")
	must(t, "MailboxByName", err)
	check("MailboxByName", got)

	_, err = s.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Outbound, Protocol: "smtp"})
	wantErr(t, "CreateMailbox with a name in use", err, store.ErrConflict)

	_, err = s.Mailbox(ctx, created.ID+1000)
	wantErr(t, "Mailbox missing", err, store.ErrNotFound)
	_, err = s.MailboxByName(ctx, "nope")
	wantErr(t, "MailboxByName missing", err, store.ErrNotFound)

	// Secrets.
	_, err = s.Secret(ctx, created.ID, "password")
	wantErr(t, "Secret before SetSecret", err, store.ErrNotFound)
	must(t, "SetSecret client_secret", s.SetSecret(ctx, created.ID, "client_secret", []byte{1, 2}))
	got, err = s.Mailbox(ctx, created.ID)
	must(t, "Mailbox", err)
	if got.PasswordSet {
		t.Error("PasswordSet is true with only a client_secret stored")
	}
	must(t, "SetSecret", s.SetSecret(ctx, created.ID, "password", []byte{0, 1, 2, 0xff}))
	must(t, "SetSecret replace", s.SetSecret(ctx, created.ID, "password", []byte{9, 0, 9}))
	secret, err := s.Secret(ctx, created.ID, "password")
	must(t, "Secret", err)
	if !bytes.Equal(secret, []byte{9, 0, 9}) {
		t.Errorf("Secret = %v, want the last ciphertext [9 0 9]", secret)
	}
	got, err = s.Mailbox(ctx, created.ID)
	must(t, "Mailbox", err)
	if !got.PasswordSet {
		t.Error("PasswordSet is false with a password stored")
	}
	err = s.SetSecret(ctx, created.ID+1000, "password", []byte{1})
	wantErr(t, "SetSecret of a missing mailbox", err, store.ErrNotFound)

	// Update.
	upd := got
	upd.Name = "renamed"
	upd.Host = "imap2.example.com"
	upd.Port = 143
	upd.Security = "starttls"
	upd.Enabled = true
	upd.PollInterval = 5 * time.Minute
	must(t, "UpdateMailbox", s.UpdateMailbox(ctx, upd))
	got, err = s.Mailbox(ctx, created.ID)
	must(t, "Mailbox after update", err)
	if got.Name != "support" || got.Host != "imap2.example.com" || got.Port != 143 ||
		got.Security != "starttls" || !got.Enabled || got.PollInterval != 5*time.Minute {
		t.Errorf("after UpdateMailbox: %+v, want name kept and host/port/security/enabled/poll changed", got)
	}
	if got.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v < %v", got.UpdatedAt, created.UpdatedAt)
	}
	upd.ID = created.ID + 1000
	wantErr(t, "UpdateMailbox missing", s.UpdateMailbox(ctx, upd), store.ErrNotFound)

	// Listing, by name.
	newMailbox(t, s, "billing", store.Inbound)
	newMailbox(t, s, "zeta", store.Outbound)
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if len(names) != 3 || names[0] != "billing" || names[1] != "support" || names[2] != "zeta" {
		t.Errorf("ListMailboxes names = %v, want [billing support zeta]", names)
	}
	if !list[1].PasswordSet || list[0].PasswordSet {
		t.Errorf("ListMailboxes PasswordSet = %v, %v; want false for billing, true for support", list[0].PasswordSet, list[1].PasswordSet)
	}
}

func testMailboxDefault(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.CreateMailbox(ctx, store.Mailbox{Name: "out-a", Direction: store.Outbound, Protocol: "smtp", IsDefault: true})
	must(t, "CreateMailbox a", err)
	b, err := s.CreateMailbox(ctx, store.Mailbox{Name: "out-b", Direction: store.Outbound, Protocol: "smtp", IsDefault: true})
	must(t, "CreateMailbox b", err)
	isDefault := func(id int64) bool {
		m, err := s.Mailbox(ctx, id)
		must(t, "Mailbox", err)
		return m.IsDefault
	}
	if isDefault(a.ID) || !isDefault(b.ID) {
		t.Errorf("after creating b as default: a default %v, b default %v; want only b", isDefault(a.ID), isDefault(b.ID))
	}
	a.IsDefault = true
	must(t, "UpdateMailbox a default", s.UpdateMailbox(ctx, a))
	if !isDefault(a.ID) || isDefault(b.ID) {
		t.Errorf("after making a default: a default %v, b default %v; want only a", isDefault(a.ID), isDefault(b.ID))
	}
}

func testMailboxStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	okAt := time.Date(2025, 5, 1, 8, 0, 0, 123456000, time.FixedZone("CEST", 2*3600))
	must(t, "SetMailboxStatus connected", s.SetMailboxStatus(ctx, mb.ID, store.MailboxStatus{Status: store.StatusConnected, At: okAt}))
	errAt := okAt.Add(time.Hour)
	msg := "login failed: check the password"
	must(t, "SetMailboxStatus error", s.SetMailboxStatus(ctx, mb.ID, store.MailboxStatus{Status: store.StatusError, Message: msg, At: errAt}))
	got, err := s.Mailbox(ctx, mb.ID)
	must(t, "Mailbox", err)
	if got.Status != store.StatusError || got.StatusMessage != msg {
		t.Errorf("status = %q %q, want %q %q", got.Status, got.StatusMessage, store.StatusError, msg)
	}
	sameTime(t, "StatusAt", got.StatusAt, errAt)
	sameTime(t, "LastOKAt (kept from the connected status)", got.LastOKAt, okAt)

	err = s.SetMailboxStatus(ctx, mb.ID+1000, store.MailboxStatus{Status: store.StatusConnected, At: okAt})
	wantErr(t, "SetMailboxStatus missing", err, store.ErrNotFound)
}

func testMailboxDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	empty := newMailbox(t, s, "empty", store.Inbound)
	must(t, "SetSecret", s.SetSecret(ctx, empty.ID, "password", []byte("x")))
	must(t, "SetCursor", s.SetCursor(ctx, store.Cursor{MailboxID: empty.ID, Value: "1:2"}))
	must(t, "DeleteMailbox empty", s.DeleteMailbox(ctx, empty.ID))
	_, err := s.Mailbox(ctx, empty.ID)
	wantErr(t, "Mailbox after delete", err, store.ErrNotFound)
	_, err = s.Secret(ctx, empty.ID, "password")
	wantErr(t, "Secret after delete", err, store.ErrNotFound)
	_, err = s.Cursor(ctx, empty.ID)
	wantErr(t, "Cursor after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteMailbox again", s.DeleteMailbox(ctx, empty.ID), store.ErrNotFound)

	used := newMailbox(t, s, "used", store.Inbound)
	ingest(t, s, mail(used, "imap:1:1", "a@example.org", "Hello"))
	wantErr(t, "DeleteMailbox with messages", s.DeleteMailbox(ctx, used.ID), store.ErrConflict)
	if _, err := s.Mailbox(ctx, used.ID); err != nil {
		t.Errorf("mailbox with messages is gone after a refused delete: %v", err)
	}
	if n, err := s.CountMessages(ctx, used.ID); err != nil || n != 1 {
		t.Errorf("CountMessages after a refused delete = %d, %v; want 1", n, err)
	}
}
