package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "data", "postroom.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}

// TestOpenCreatesWALFile checks what an operator finds on disk: the data directory is
// created, and the database file is in WAL mode (a property of the file, so a plain
// connection sees it too).
func TestOpenCreatesWALFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "postroom.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b.db")} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// TestConcurrentMigrate opens the same file twice, as `postroom migrate` beside a
// starting `postroom serve` would, and migrates from both at once.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "postroom.db")
	var stores []store.Store
	for range 3 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
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
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if err := stores[0].SetSetting(t.Context(), "k", "v"); err != nil {
		t.Errorf("SetSetting after concurrent migrations: %v", err)
	}
}

// v1Schema is the first migration as released, to build a database of version 1.
const v1Schema = "../sqlstore/migrations/sqlite/0001_init.sql"

// TestUpgradeFromV1 migrates a version 1 database that holds data: migration 2 rebuilds the
// mailboxes table, and everything that pointed at a mailbox still does.
func TestUpgradeFromV1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "postroom.db")
	schema, err := os.ReadFile(v1Schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(schema),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO mailboxes (id, name, direction, protocol, enabled, created_at, updated_at) VALUES
			(1, 'support', 'inbound', 'imap', TRUE, 1, 1),
			(2, 'smtp-out', 'outbound', 'smtp', TRUE, 1, 1),
			(3, 'gone', 'inbound', 'imap', FALSE, 1, 1)`,
		`DELETE FROM mailboxes WHERE id = 3`,
		`INSERT INTO credentials VALUES (1, 'password', x'0102', 1)`,
		`INSERT INTO cursors VALUES (1, '7:42', 1)`,
		`INSERT INTO conversations (id, mailbox_id, created_at, updated_at) VALUES (1, 1, 1, 1)`,
		`INSERT INTO messages (id, conversation_id, mailbox_id, direction, source_id, subject, text_body, created_at)
			VALUES (1, 1, 1, 'inbound', 'imap:7:42', 'Hello', 'Where is my PARCEL? Ana', 1)`,
		`INSERT INTO raw_messages VALUES (1, x'00')`,
		`INSERT INTO work_items (id, conversation_id, mailbox_id, message_id, state, received_at, updated_at)
			VALUES (1, 1, 1, 1, 'new', 1, 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("build version 1: %v\n%s", err, q)
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, path)
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
	if c, err := s.Cursor(ctx, 1); err != nil || c.Value != "7:42" {
		t.Errorf("cursor after the upgrade = %+v, %v; want 7:42 kept", c, err)
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
	// Ids of deleted mailboxes are not reused after the table was rebuilt.
	m, err := s.CreateMailbox(ctx, store.Mailbox{Name: "new", Direction: store.Inbound, Protocol: "pop3"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID <= 3 {
		t.Errorf("new mailbox got id %d, want more than 3 (3 was used before)", m.ID)
	}
	// Foreign keys are on again after the migration.
	if err := s.SetCursor(ctx, store.Cursor{MailboxID: 999, Value: "x"}); err == nil {
		t.Error("SetCursor of a missing mailbox succeeded after the migration: foreign keys are off")
	}
	if err := s.DeleteMailbox(ctx, 1); err != nil {
		t.Fatalf("DeleteMailbox with messages: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap"}); err != nil {
		t.Errorf("name of the deleted mailbox not free after the upgrade: %v", err)
	}
}
