package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestBackupDuringIngestAndRestore: a backup taken while mail arrives from a real Dovecot
// holds every message and work item committed before it started, each copied message has
// its work item (one commit, never half), and a restore into a new data folder opens with
// the key: the mailbox's password decrypts and the items are there.
func TestBackupDuringIngestAndRestore(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	mb := h.addInbound(d, user, "support-pw")

	// Mail keeps arriving in batches while the backup runs.
	ctx, stopMail := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil && i < 40; i++ {
			var batch [][]byte
			for j := range 10 {
				batch = append(batch, customerMail(i*10+j))
			}
			if err := d.AppendManyContext(ctx, user, "INBOX", batch); err != nil && ctx.Err() == nil {
				t.Errorf("append: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	defer func() { stopMail(); wg.Wait() }()
	waitFor(t, "the first work items", func() (bool, string) {
		n := len(allWorkItems(t, h.app.Store))
		return n >= 30, fmt.Sprint("work items so far: ", n)
	})

	before := map[int64]int64{} // work item id -> message id, committed before the backup
	for _, wi := range allWorkItems(t, h.app.Store) {
		before[wi.ID] = wi.MessageID
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := app.Backup(context.Background(), h.dir, "", copyPath); err != nil {
		t.Fatalf("backup during ingest: %v", err)
	}
	after := len(allWorkItems(t, h.app.Store))
	stopMail()
	wg.Wait()
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(copyPath)
	if !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
		t.Fatalf("the copy does not start with the SQLite header")
	}
	if err := app.Backup(context.Background(), h.dir, "", copyPath); err == nil {
		t.Errorf("a second backup onto the same file succeeded; want it refused")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	getenv := func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] }
	if _, _, err := app.Restore(context.Background(), restored, "", copyPath, getenv); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, _, err := app.Restore(context.Background(), restored, "", copyPath, getenv); err == nil {
		t.Errorf("a restore into a data folder with a database succeeded; want it refused")
	}
	a, err := app.Open(context.Background(), app.Config{DataDir: restored, Getenv: getenv, Existing: true,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatalf("open the restored data folder with the key: %v", err)
	}
	defer a.Close()
	got := map[int64]int64{}
	for _, wi := range allWorkItems(t, a.Store) {
		got[wi.ID] = wi.MessageID
		if _, err := a.Store.Message(context.Background(), wi.MessageID); err != nil {
			t.Errorf("restored work item %d: its message %d: %v", wi.ID, wi.MessageID, err)
		}
	}
	for id, msg := range before {
		if got[id] != msg {
			t.Errorf("work item %d (message %d), committed before the backup, is not in the restored copy", id, msg)
		}
	}
	n, err := a.Store.CountMessages(context.Background(), mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) || len(got) < len(before) || len(got) > after {
		t.Errorf("restored: %d messages and %d work items; want as many of each, between %d (before the backup) and %d (after it)",
			n, len(got), len(before), after)
	}
	pw, err := a.Passwords.Get(context.Background(), mb.ID)
	if err != nil || pw.Reveal() != "support-pw" {
		t.Errorf("the restored mailbox password: %v (right: %v); want it decrypted with the key", err, pw.Reveal() == "support-pw")
	}
	t.Logf("work items: %d before the backup, %d in the copy, %d after it", len(before), len(got), after)
}
