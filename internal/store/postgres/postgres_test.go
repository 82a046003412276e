package postgres_test

import (
	"database/sql"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/postgres"
	"github.com/postroom/postroom/internal/store/storetest"
	"github.com/postroom/postroom/internal/testenv"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), testenv.Postgres(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}

// TestOpenUnreachable checks the message an administrator gets for a wrong URL: where it
// tried, what to check, and never the password.
func TestOpenUnreachable(t *testing.T) {
	const password = "s3cret-pw"
	_, err := postgres.Open(t.Context(), "postgres://postroom:"+password+"@127.0.0.1:1/postroom")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach PostgreSQL at", "127.0.0.1:1", "POSTROOM_DATABASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, password) {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestConcurrentMigrate starts several nodes on one empty database at once: the
// migrations are applied once, and every node starts.
func TestConcurrentMigrate(t *testing.T) {
	url := testenv.Postgres(t)
	var stores []store.Store
	for range 4 {
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate on node %d: %v", i, err)
		}
	}
	if err := stores[0].SetSetting(t.Context(), "k", "v"); err != nil {
		t.Errorf("SetSetting after concurrent migrations: %v", err)
	}
}

// v1Schema is the first migration as released, to build a database of version 1.
const v1Schema = "../sqlstore/migrations/postgres/0001_init.sql"

// TestUpgradeFromV1 migrates a version 1 database that holds data: the mailbox name's
// unique constraint becomes a partial index, and everything that pointed at a mailbox
// still does.
func TestUpgradeFromV1(t *testing.T) {
	ctx := t.Context()
	url := testenv.Postgres(t)
	schema, err := os.ReadFile(v1Schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(schema),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO mailboxes (name, direction, protocol, enabled, created_at, updated_at) VALUES
			('support', 'inbound', 'imap', TRUE, now(), now()),
			('smtp-out', 'outbound', 'smtp', TRUE, now(), now())`,
		`INSERT INTO credentials VALUES (1, 'password', '\x0102', now())`,
		`INSERT INTO cursors VALUES (1, '7:42', now())`,
		`INSERT INTO conversations (mailbox_id, created_at, updated_at) VALUES (1, now(), now())`,
		`INSERT INTO messages (conversation_id, mailbox_id, direction, source_id, subject, text_body, created_at)
			VALUES (1, 1, 'inbound', 'imap:7:42', 'Hello', 'Where is my PARCEL? Ana', now())`,
		`INSERT INTO raw_messages VALUES (1, '\x00')`,
		`INSERT INTO work_items (conversation_id, mailbox_id, message_id, state, received_at, updated_at)
			VALUES (1, 1, 1, 'new', now(), now())`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("build version 1: %v\n%s", err, q)
		}
	}
	db.Close()

	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 1: %v", err)
	}
	def, err := s.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Mailbox(ctx, 1)
	if err != nil {
		t.Fatalf("inbound mailbox after the upgrade: %v", err)
	}
	if !in.Enabled || !in.PasswordSet || in.QueueID != def.ID || in.AfterAction != store.AfterMarkRead {
		t.Errorf("inbound mailbox after the upgrade = %+v, want enabled, password set, in Default, mark_read", in)
	}
	out, err := s.Mailbox(ctx, 2)
	if err != nil {
		t.Fatalf("outbound mailbox after the upgrade: %v", err)
	}
	if !out.Enabled || out.QueueID != 0 || out.AfterAction != "" {
		t.Errorf("outbound mailbox after the upgrade = %+v, want enabled, in no queue, no after-action", out)
	}
	if w, err := s.WorkItem(ctx, 1); err != nil || w.MailboxName != "support" {
		t.Errorf("work item after the upgrade = %+v, %v; want it in support", w, err)
	}
	// Migration 8: the message stored by version 1 is in the search index, its body too.
	for _, q := range []string{"parcel", "hello ana"} {
		if list, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: q}); err != nil || len(list) != 1 || list[0].ID != 1 {
			t.Errorf("search %q after the upgrade = %d items, %v; want work item 1", q, len(list), err)
		}
	}
	// Migration 3: the message stored by version 1 is found by its source and still waits
	// for its acknowledgement.
	if m, err := s.MessageBySource(ctx, 1, "imap:7:42"); err != nil || m.Subject != "Hello" {
		t.Errorf("MessageBySource after the upgrade = %+v, %v; want the stored message", m, err)
	}
	if p, err := s.PendingAcks(ctx, 1); err != nil || len(p) != 1 || p[0] != "imap:7:42" {
		t.Errorf("PendingAcks after the upgrade = %v, %v; want [imap:7:42]", p, err)
	}
	if w, err := s.WorkItem(ctx, 1); err != nil || len(w.Mailboxes) != 1 || w.Mailboxes[0] != "support" {
		t.Errorf("work item mailboxes after the upgrade = %+v, %v; want [support]", w.Mailboxes, err)
	}
	if err := s.DeleteMailbox(ctx, 1); err != nil {
		t.Fatalf("DeleteMailbox with messages: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap"}); err != nil {
		t.Errorf("name of the deleted mailbox not free after the upgrade: %v", err)
	}
	_, err = s.CreateMailbox(ctx, store.Mailbox{Name: "smtp-out", Direction: store.Outbound, Protocol: "smtp"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateMailbox with a live name after the upgrade: %v, want ErrConflict", err)
	}
}
