package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/store"
)

// TestCrashEWS: an EWS mailbox (created with `postroom mailbox add`) on the EWS stand-in,
// `postroom serve` killed with SIGKILL during the ingest and started again; at the end every
// message is marked read at the server and stored exactly once (the sync state is saved with
// the messages; what comes again is recognised by its ItemId).
func TestCrashEWS(t *testing.T) {
	n, kills := 400, 8
	if testing.Short() {
		n, kills = 150, 4
	}
	bin := buildPostroom(t)
	srv, err := ewstest.Start(ewstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const address = "support@example.test"
	sample, err := srv.SampleSetup(address, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range crashMails(n) {
		if _, err := srv.Deliver(address, raw); err != nil {
			t.Fatal(err)
		}
	}
	c := newCrashRun(t, bin, nil)
	pwFile := filepath.Join(t.TempDir(), "ews-password")
	if err := os.WriteFile(pwFile, []byte(sample.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cli("migrate")
	c.cli("mailbox", "add", "exchange", "-direction", "inbound", "-protocol", "ews", "-host", sample.Host, "-port", strconv.Itoa(sample.Port),
		"-security", "none", "-login", sample.Login, "-address", address, "-after-action", store.AfterMarkRead, "-password-file", pwFile)
	c.cli("mailbox", "enable", "exchange")

	c.killRepeatedly(kills, n)
	c.runUntil("every message read at the server", func() (bool, string) {
		read := 0
		msgs := srv.Messages(address, "inbox")
		for _, m := range msgs {
			if m.IsRead {
				read++
			}
		}
		return read == n && len(msgs) == n, fmt.Sprintf("%d of %d read", read, len(msgs))
	})
	c.checkExactlyOnce("exchange", n)
}
