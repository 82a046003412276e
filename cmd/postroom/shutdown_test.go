package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// TestGracefulShutdown: `postroom serve` sending a reply to an SMTP server that accepts
// the connection and then says nothing gets SIGTERM. It stops within its shutdown bound
// (POSTROOM_SHUTDOWN_TIMEOUT=3s) with exit status 0, and hands back what it held: no
// outbox row stays claimed (the next process, on any node, may send them at once).
func TestGracefulShutdown(t *testing.T) {
	bin := buildPostroom(t)
	// The silent SMTP server: it takes connections and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		var once sync.Once
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(connected) })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	const bound = 3 * time.Second
	c := newCrashRun(t, bin, map[string]string{envShutdownTimeout: bound.String()})
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte("support-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port := splitAddr(t, ln.Addr().String())
	c.cli("migrate")
	c.cli("mailbox", "add", "out", "-direction", "outbound", "-protocol", "smtp", "-host", "127.0.0.1", "-port", port,
		"-security", "none", "-login", "support@example.test", "-address", "support@example.test", "-password-file", pwFile, "-default")
	c.cli("mailbox", "enable", "out")
	wi := c.queueReplies(3)

	ch := c.start()
	select {
	case <-connected: // a reply is in flight, its rows claimed
	case <-ch.exited:
		t.Fatalf("postroom serve exited early: %v", ch.err)
	case <-time.After(crashRunLimit):
		t.Fatalf("postroom serve did not connect to the SMTP server within %v", crashRunLimit)
	}
	if _, claimed := c.outboxState(wi); len(claimed) == 0 {
		t.Fatalf("no outbox row is claimed while a reply is in flight")
	}
	start := time.Now()
	if err := syscall.Kill(ch.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.exited:
	case <-time.After(bound + 5*time.Second):
		_ = syscall.Kill(ch.cmd.Process.Pid, syscall.SIGQUIT) // its goroutines go to the log
		<-ch.exited
		t.Fatalf("postroom serve did not exit within %v of SIGTERM (bound %v)", bound+5*time.Second, bound)
	}
	took := time.Since(start)
	if ch.err != nil {
		t.Errorf("postroom serve exited with %v after SIGTERM; want exit status 0", ch.err)
	}
	if took > bound+time.Second {
		t.Errorf("postroom serve took %v to stop; want within its bound %v (and a moment to exit)", took, bound)
	}
	sent, claimed := c.outboxState(wi)
	if len(claimed) != 0 || sent != 0 {
		t.Errorf("after the stop: %d rows sent, rows %v still claimed; want none sent and none claimed", sent, claimed)
	}
	st := c.openStore()
	defer st.Close()
	if q, _ := st.CountOutbox(context.Background(), store.OutboxQueued); q != 3 {
		t.Errorf("%d rows queued after the stop; want the 3 replies waiting for the next start", q)
	}
	log, _ := os.ReadFile(c.logPath)
	for _, want := range []string{"stopping: no new work is taken", "stopping: released the outbox rows claimed and not sent", "stopped by a signal"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
}
