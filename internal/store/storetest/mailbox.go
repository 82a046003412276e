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
	queues, err := s.ListQueues(ctx)
	must(t, "ListQueues", err)
	if len(queues) != 1 || queues[0].Name != store.DefaultQueue || !queues[0].Enabled {
		t.Errorf("fresh store has queues %+v, want only %q, enabled", queues, store.DefaultQueue)
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

// testMailboxDelete: a deleted mailbox disappears from every lookup and listing, loses its
// secrets, cursor and From addresses, and frees its name; what customers wrote stays, and
// the work items still name the mailbox.
func testMailboxDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	empty := newMailbox(t, s, "empty", store.Inbound)
	must(t, "DeleteMailbox empty", s.DeleteMailbox(ctx, empty.ID))
	_, err := s.Mailbox(ctx, empty.ID)
	wantErr(t, "Mailbox after delete", err, store.ErrNotFound)

	used := newMailbox(t, s, "used", store.Inbound)
	keep := newMailbox(t, s, "keep", store.Inbound)
	out := newMailbox(t, s, "out", store.Outbound)
	must(t, "SetSecret", s.SetSecret(ctx, used.ID, "password", []byte("x")))
	must(t, "SetSecret keep", s.SetSecret(ctx, keep.ID, "password", []byte("k")))
	res := ingest(t, s, mail(used, "imap:1:1", "a@example.org", "Hello"))
	must(t, "SetCursor", s.SetCursor(ctx, store.Cursor{MailboxID: used.ID, Value: "1:1"}))
	_, err = s.AddFromAddress(ctx, store.FromAddress{MailboxID: out.ID, Address: "sales@example.com"})
	must(t, "AddFromAddress", err)
	kept, err := s.AddFromAddress(ctx, store.FromAddress{MailboxID: keep.ID, Address: "keep@example.com"})
	must(t, "AddFromAddress keep", err)

	must(t, "DeleteMailbox with messages", s.DeleteMailbox(ctx, used.ID))
	must(t, "DeleteMailbox outbound", s.DeleteMailbox(ctx, out.ID))

	_, err = s.Mailbox(ctx, used.ID)
	wantErr(t, "Mailbox after delete", err, store.ErrNotFound)
	_, err = s.MailboxByName(ctx, "used")
	wantErr(t, "MailboxByName after delete", err, store.ErrNotFound)
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	if len(list) != 1 || list[0].ID != keep.ID {
		t.Errorf("ListMailboxes after deletes = %+v, want only keep", list)
	}
	_, err = s.Secret(ctx, used.ID, "password")
	wantErr(t, "Secret after delete", err, store.ErrNotFound)
	_, err = s.Cursor(ctx, used.ID)
	wantErr(t, "Cursor after delete", err, store.ErrNotFound)
	if secret, err := s.Secret(ctx, keep.ID, "password"); err != nil || string(secret) != "k" {
		t.Errorf("Secret of another mailbox = %q, %v; want it untouched", secret, err)
	}
	froms, err := s.ListFromAddresses(ctx, 0)
	must(t, "ListFromAddresses", err)
	if len(froms) != 1 || froms[0].ID != kept.ID {
		t.Errorf("ListFromAddresses after deleting out = %+v, want only keep's", froms)
	}

	// What customers wrote stays, under the mailbox's name.
	if n, err := s.CountMessages(ctx, used.ID); err != nil || n != 1 {
		t.Errorf("CountMessages after delete = %d, %v; want 1 (messages are kept)", n, err)
	}
	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem after delete", err)
	if w.MailboxID != used.ID || w.MailboxName != "used" {
		t.Errorf("work item after delete: mailbox %d %q, want %d \"used\"", w.MailboxID, w.MailboxName, used.ID)
	}
	if items := listAll(t, s); len(items) != 1 || items[0].MailboxName != "used" {
		t.Errorf("ListWorkItems after delete = %+v, want the work item naming \"used\"", items)
	}
	msgs, err := s.ConversationMessages(ctx, res.ConversationID)
	must(t, "ConversationMessages after delete", err)
	if len(msgs) != 1 || msgs[0].MailboxID != used.ID {
		t.Errorf("ConversationMessages after delete = %+v, want the message kept", msgs)
	}

	// Gone for every operation.
	wantErr(t, "DeleteMailbox again", s.DeleteMailbox(ctx, used.ID), store.ErrNotFound)
	upd := used
	upd.Host = "other.example.com"
	wantErr(t, "UpdateMailbox of a deleted mailbox", s.UpdateMailbox(ctx, upd), store.ErrNotFound)
	wantErr(t, "SetMailboxEnabled of a deleted mailbox", s.SetMailboxEnabled(ctx, used.ID, true), store.ErrNotFound)
	wantErr(t, "SetMailboxStatus of a deleted mailbox",
		s.SetMailboxStatus(ctx, used.ID, store.MailboxStatus{Status: store.StatusConnected}), store.ErrNotFound)
	wantErr(t, "SetSecret of a deleted mailbox", s.SetSecret(ctx, used.ID, "password", []byte("y")), store.ErrNotFound)
	_, err = s.AddFromAddress(ctx, store.FromAddress{MailboxID: out.ID, Address: "new@example.com"})
	wantErr(t, "AddFromAddress to a deleted mailbox", err, store.ErrNotFound)
	q, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	wantErr(t, "AssignMailbox of a deleted mailbox", s.AssignMailbox(ctx, used.ID, q.ID), store.ErrNotFound)
	_, err = s.IngestMessage(ctx, mail(used, "imap:1:2", "b@example.org", "Late"))
	wantErr(t, "IngestMessage into a deleted mailbox", err, store.ErrNotFound)
	must(t, "SetAllMailboxesEnabled", s.SetAllMailboxesEnabled(ctx, "", true))
	if _, err := s.Mailbox(ctx, used.ID); !store.IsNotFound(err) {
		t.Errorf("SetAllMailboxesEnabled brought a deleted mailbox back: %v", err)
	}

	// The name is free again, twice over.
	for i := range 2 {
		again := newMailbox(t, s, "used", store.Inbound)
		if again.ID == used.ID {
			t.Fatalf("new mailbox \"used\" reuses the deleted one's id %d", used.ID)
		}
		got, err := s.MailboxByName(ctx, "used")
		must(t, "MailboxByName of the new mailbox", err)
		if got.ID != again.ID || got.PasswordSet {
			t.Errorf("MailboxByName(\"used\") = id %d PasswordSet %v, want the new mailbox %d without a password", got.ID, got.PasswordSet, again.ID)
		}
		_, err = s.CreateMailbox(ctx, store.Mailbox{Name: "used", Direction: store.Inbound, Protocol: "imap"})
		wantErr(t, "CreateMailbox with the name of a live mailbox", err, store.ErrConflict)
		if i == 0 {
			must(t, "DeleteMailbox the new one", s.DeleteMailbox(ctx, again.ID))
		}
	}
	if w, err := s.WorkItem(ctx, res.WorkItemID); err != nil || w.MailboxID != used.ID {
		t.Errorf("work item after the name was reused: mailbox %d, %v; want the deleted mailbox %d", w.MailboxID, err, used.ID)
	}
}

// testMailboxAdminFields: the after-processing action, the move folder and the queue are
// stored by CreateMailbox and UpdateMailbox and read back by every lookup.
func testMailboxAdminFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	q, err := s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue", err)
	created, err := s.CreateMailbox(ctx, store.Mailbox{
		Name: "support", Direction: store.Inbound, Protocol: "imap", Folder: "INBOX",
		AfterAction: store.AfterMove, MoveFolder: "Done/2025", QueueID: q.ID,
	})
	must(t, "CreateMailbox", err)
	if created.AfterAction != store.AfterMove || created.MoveFolder != "Done/2025" || created.QueueID != q.ID {
		t.Errorf("CreateMailbox = %+v, want the after-action, move folder and queue given", created)
	}
	check := func(what string, got store.Mailbox, action, folder string, queue int64) {
		t.Helper()
		if got.AfterAction != action || got.MoveFolder != folder || got.QueueID != queue {
			t.Errorf("%s: AfterAction %q MoveFolder %q QueueID %d, want %q %q %d",
				what, got.AfterAction, got.MoveFolder, got.QueueID, action, folder, queue)
		}
	}
	check("Mailbox", getMailbox(t, s, created.ID), store.AfterMove, "Done/2025", q.ID)
	byName, err := s.MailboxByName(ctx, "support")
	must(t, "MailboxByName", err)
	check("MailboxByName", byName, store.AfterMove, "Done/2025", q.ID)

	pop, err := s.CreateMailbox(ctx, store.Mailbox{Name: "pop", Direction: store.Inbound, Protocol: "pop3", AfterAction: store.AfterKeep})
	must(t, "CreateMailbox pop3", err)
	check("POP3 mailbox without a queue", getMailbox(t, s, pop.ID), store.AfterKeep, "", 0)

	upd := getMailbox(t, s, created.ID)
	upd.AfterAction = store.AfterDelete
	upd.MoveFolder = ""
	upd.QueueID = 0
	must(t, "UpdateMailbox", s.UpdateMailbox(ctx, upd))
	check("after UpdateMailbox", getMailbox(t, s, created.ID), store.AfterDelete, "", 0)
	upd.QueueID = q.ID
	upd.AfterAction = store.AfterMarkRead
	must(t, "UpdateMailbox back into the queue", s.UpdateMailbox(ctx, upd))
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	if len(list) != 2 || list[1].ID != created.ID {
		t.Fatalf("ListMailboxes = %+v, want pop and support", list)
	}
	check("ListMailboxes", list[1], store.AfterMarkRead, "", q.ID)
	check("ListMailboxes pop", list[0], store.AfterKeep, "", 0)

	_, err = s.CreateMailbox(ctx, store.Mailbox{Name: "lost", Direction: store.Inbound, Protocol: "imap", QueueID: q.ID + 1000})
	wantErr(t, "CreateMailbox with an unknown queue", err, store.ErrNotFound)
	if _, err := s.MailboxByName(ctx, "lost"); !store.IsNotFound(err) {
		t.Errorf("a mailbox with an unknown queue was stored: %v", err)
	}
	upd.QueueID = q.ID + 1000
	wantErr(t, "UpdateMailbox with an unknown queue", s.UpdateMailbox(ctx, upd), store.ErrNotFound)
	check("after a refused update", getMailbox(t, s, created.ID), store.AfterMarkRead, "", q.ID)
}

// testMailboxEnabled: enabling and disabling moves UpdatedAt (the ingest supervisor
// restarts a loop when it moves); a status report does not.
func testMailboxEnabled(t *testing.T, s store.Store) {
	ctx := t.Context()
	in1, err := s.CreateMailbox(ctx, store.Mailbox{Name: "in1", Direction: store.Inbound, Protocol: "imap"})
	must(t, "CreateMailbox in1", err)
	in2, err := s.CreateMailbox(ctx, store.Mailbox{Name: "in2", Direction: store.Inbound, Protocol: "pop3", Enabled: true})
	must(t, "CreateMailbox in2", err)
	out, err := s.CreateMailbox(ctx, store.Mailbox{Name: "out", Direction: store.Outbound, Protocol: "smtp"})
	must(t, "CreateMailbox out", err)

	waitPast(out.UpdatedAt)
	must(t, "SetMailboxEnabled", s.SetMailboxEnabled(ctx, in1.ID, true))
	got := getMailbox(t, s, in1.ID)
	if !got.Enabled || !got.UpdatedAt.After(in1.UpdatedAt) {
		t.Errorf("after SetMailboxEnabled(true): Enabled %v UpdatedAt %v, want enabled and UpdatedAt after %v", got.Enabled, got.UpdatedAt, in1.UpdatedAt)
	}
	prev := got.UpdatedAt

	waitPast(prev)
	must(t, "SetMailboxStatus", s.SetMailboxStatus(ctx, in1.ID, store.MailboxStatus{Status: store.StatusConnected}))
	must(t, "SetMailboxStatus error", s.SetMailboxStatus(ctx, in1.ID, store.MailboxStatus{Status: store.StatusError, Message: "x"}))
	got = getMailbox(t, s, in1.ID)
	if !got.UpdatedAt.Equal(prev) {
		t.Errorf("SetMailboxStatus moved UpdatedAt from %v to %v: a status report is not a settings change", prev, got.UpdatedAt)
	}

	must(t, "SetMailboxEnabled false", s.SetMailboxEnabled(ctx, in1.ID, false))
	got = getMailbox(t, s, in1.ID)
	if got.Enabled || !got.UpdatedAt.After(prev) {
		t.Errorf("after SetMailboxEnabled(false): Enabled %v UpdatedAt %v, want disabled and UpdatedAt after %v", got.Enabled, got.UpdatedAt, prev)
	}
	wantErr(t, "SetMailboxEnabled missing", s.SetMailboxEnabled(ctx, out.ID+1000, true), store.ErrNotFound)

	// All inbound: in1 changes; in2 was enabled already and keeps its UpdatedAt; out stays.
	before := map[int64]store.Mailbox{}
	for _, id := range []int64{in1.ID, in2.ID, out.ID} {
		before[id] = getMailbox(t, s, id)
	}
	waitPast(got.UpdatedAt)
	must(t, "SetAllMailboxesEnabled inbound", s.SetAllMailboxesEnabled(ctx, store.Inbound, true))
	a, b, o := getMailbox(t, s, in1.ID), getMailbox(t, s, in2.ID), getMailbox(t, s, out.ID)
	if !a.Enabled || !b.Enabled || o.Enabled {
		t.Errorf("after enabling all inbound: in1 %v in2 %v out %v, want true true false", a.Enabled, b.Enabled, o.Enabled)
	}
	if !a.UpdatedAt.After(before[in1.ID].UpdatedAt) {
		t.Errorf("in1 UpdatedAt %v did not move when it was enabled", a.UpdatedAt)
	}
	if !b.UpdatedAt.Equal(before[in2.ID].UpdatedAt) || !o.UpdatedAt.Equal(before[out.ID].UpdatedAt) {
		t.Errorf("UpdatedAt moved for a mailbox whose flag did not change: in2 %v→%v, out %v→%v",
			before[in2.ID].UpdatedAt, b.UpdatedAt, before[out.ID].UpdatedAt, o.UpdatedAt)
	}

	must(t, "SetAllMailboxesEnabled outbound", s.SetAllMailboxesEnabled(ctx, store.Outbound, true))
	if !getMailbox(t, s, out.ID).Enabled {
		t.Error("enabling all outbound left out disabled")
	}
	must(t, "SetAllMailboxesEnabled both off", s.SetAllMailboxesEnabled(ctx, "", false))
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	for _, m := range list {
		if m.Enabled {
			t.Errorf("mailbox %s still enabled after disabling all", m.Name)
		}
	}
	if err := s.SetAllMailboxesEnabled(ctx, "sideways", true); err == nil {
		t.Error("SetAllMailboxesEnabled with an unknown direction succeeded, want an error")
	}
	if getMailbox(t, s, in1.ID).Enabled {
		t.Error("SetAllMailboxesEnabled with an unknown direction changed a mailbox")
	}
}

// testMailboxAuth: the sign-in method and its OAuth settings survive a round trip, a
// mailbox stored without a method signs in with a password, and the flags of the stored
// OAuth secrets follow SetSecret.
func testMailboxAuth(t *testing.T, s store.Store) {
	ctx := t.Context()
	plain, err := s.CreateMailbox(ctx, store.Mailbox{Name: "plain", Direction: store.Inbound, Protocol: "imap"})
	must(t, "CreateMailbox without a method", err)
	if got := getMailbox(t, s, plain.ID); got.Auth != store.AuthPassword || got.OAuth != (store.OAuth{}) {
		t.Errorf("mailbox stored without a method: Auth %q OAuth %+v, want password and no OAuth settings", got.Auth, got.OAuth)
	}
	expires := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	want := store.OAuth{
		Provider: "microsoft", Cloud: "usgov", AuthorityURL: "https://login.microsoftonline.us",
		Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "6731de76-14a6-49ae-97bc-6eba6914391e",
		Scopes: "https://graph.microsoft.us/.default", Account: "support@contoso.com",
		SecretExpiresAt: expires,
	}
	created, err := s.CreateMailbox(ctx, store.Mailbox{
		Name: "graph", Direction: store.Inbound, Protocol: "graph", Address: "support@contoso.com",
		Folder: "Inbox", Auth: store.AuthOAuthApp, OAuth: want, GraphURL: "https://graph.microsoft.us",
	})
	must(t, "CreateMailbox with OAuth", err)
	got := getMailbox(t, s, created.ID)
	if got.Auth != store.AuthOAuthApp || got.OAuth != want || got.GraphURL != "https://graph.microsoft.us" {
		t.Errorf("Mailbox = Auth %q OAuth %+v GraphURL %q, want %q %+v and the Graph host", got.Auth, got.OAuth, got.GraphURL, store.AuthOAuthApp, want)
	}
	if got.ClientSecretSet || got.CertificateSet || got.RefreshTokenSet || got.PasswordSet {
		t.Errorf("new mailbox claims stored secrets: %+v", got)
	}
	must(t, "SetSecret client_secret", s.SetSecret(ctx, created.ID, store.SecretClientSecret, []byte("sealed")))
	must(t, "SetSecret refresh_token", s.SetSecret(ctx, created.ID, store.SecretRefreshToken, []byte("sealed")))
	got = getMailbox(t, s, created.ID)
	if got.RefreshTokenAt.IsZero() || time.Since(got.RefreshTokenAt) > time.Hour {
		t.Errorf("RefreshTokenAt = %v, want the time the refresh token was stored", got.RefreshTokenAt)
	}
	if !got.ClientSecretSet || !got.RefreshTokenSet || got.CertificateSet || got.PasswordSet {
		t.Errorf("after storing a client secret and a refresh token: ClientSecretSet %v RefreshTokenSet %v CertificateSet %v PasswordSet %v",
			got.ClientSecretSet, got.RefreshTokenSet, got.CertificateSet, got.PasswordSet)
	}

	must(t, "DeleteSecret client_secret", s.DeleteSecret(ctx, created.ID, store.SecretClientSecret))
	must(t, "DeleteSecret of nothing stored", s.DeleteSecret(ctx, created.ID, store.SecretCertificate))
	got = getMailbox(t, s, created.ID)
	if got.ClientSecretSet || !got.RefreshTokenSet {
		t.Errorf("after DeleteSecret client_secret: ClientSecretSet %v RefreshTokenSet %v, want false and true", got.ClientSecretSet, got.RefreshTokenSet)
	}
	if _, err := s.Secret(ctx, created.ID, store.SecretClientSecret); !store.IsNotFound(err) {
		t.Errorf("Secret after DeleteSecret: %v, want not found", err)
	}

	got.Auth = store.AuthOAuthDelegated
	got.OAuth.Cloud, got.OAuth.AuthorityURL = "custom", "http://127.0.0.1:9999"
	got.OAuth.SecretExpiresAt = time.Time{}
	must(t, "UpdateMailbox", s.UpdateMailbox(ctx, got))
	after := getMailbox(t, s, created.ID)
	if after.Auth != store.AuthOAuthDelegated || after.OAuth.Cloud != "custom" || after.OAuth.AuthorityURL != "http://127.0.0.1:9999" || !after.OAuth.SecretExpiresAt.IsZero() {
		t.Errorf("after UpdateMailbox: Auth %q OAuth %+v, want the delegated method, the custom authority and no expiry", after.Auth, after.OAuth)
	}
	list, err := s.ListMailboxes(ctx)
	must(t, "ListMailboxes", err)
	if len(list) != 2 || list[0].Auth != store.AuthOAuthDelegated || list[0].OAuth.Tenant != want.Tenant {
		t.Errorf("ListMailboxes = %+v, want the Graph mailbox with its OAuth settings first", list)
	}
}
