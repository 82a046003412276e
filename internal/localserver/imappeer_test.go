package localserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/localserver"
	"github.com/postroom/postroom/internal/vault"
)

// runPeerEnv makes the test binary the peer process (TestMain), as `postroom bench
// imap-peer` is for the benchmark.
const runPeerEnv = "LOCALSERVER_TEST_RUN_IMAP_PEER"

const peerUserFormat = "peer%d@example.test"

func TestMain(m *testing.M) {
	if n := os.Getenv(runPeerEnv); n != "" {
		users, _ := strconv.Atoi(n)
		if err := localserver.RunIMAPPeer(context.Background(), peerUserFormat, users, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIMAPPeerWakesIdle: postroom's IMAP source logs in to one of the peer's users, finds
// nothing, waits in IDLE; a message appended by another connection wakes it and is read
// whole. Another user's INBOX stays empty, and a wrong password is refused.
func TestIMAPPeerWakesIdle(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const password = "peer-password"
	p, err := localserver.NewIMAPPeer(peerUserFormat, 3, password, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(l)
	t.Cleanup(func() { p.Close() })
	host, portText, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(portText)
	user := localserver.IMAPPeerUser(peerUserFormat, 1)
	dial := func(login, pw string) (*imap.Source, error) {
		return imap.Dial(ctx, imap.Config{Host: host, Port: port, Security: imap.SecurityNone, Login: login,
			Password: vault.NewSecret(pw), Folder: "INBOX", AfterAction: "mark_read"})
	}

	if s, err := dial(user, "wrong"); err == nil {
		s.Close()
		t.Fatal("login with a wrong password succeeded")
	} else if ce, ok := err.(*connector.Error); !ok || ce.Kind != connector.KindAuth {
		t.Fatalf("login with a wrong password: %v, want an authentication error", err)
	}
	src, err := dial(user, password)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got, err := src.Next(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("Next on an empty INBOX = %d messages, %v", len(got), err)
	}
	woken := make(chan error, 1)
	go func() { woken <- src.Wait(ctx, time.Hour) }()
	for _, idling := p.Sessions(); idling != 1; _, idling = p.Sessions() {
		select {
		case err := <-woken:
			t.Fatalf("Wait returned before any mail: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}

	raw := "From: customer@example.org\r\nTo: " + user + "\r\nSubject: wake up\r\nMessage-ID: <wake@example.org>\r\n\r\nHello.\r\n"
	appendMessage(t, l.Addr().String(), user, password, raw)
	if err := <-woken; err != nil {
		t.Fatalf("Wait after a message arrived: %v", err)
	}
	got, err := src.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Raw, []byte(raw)) {
		t.Fatalf("after the append Next = %d messages %+v, want the appended one", len(got), got)
	}

	other, err := dial(localserver.IMAPPeerUser(peerUserFormat, 2), password)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got, err := other.Next(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("another user's INBOX has %d messages (%v), want none", len(got), err)
	}
}

// TestIMAPPeerProcess: the peer in a process of its own tells its address and how many
// sessions are logged in and in IDLE.
func TestIMAPPeerProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), runPeerEnv+"=2")
	const password = "process-password"
	pp, err := localserver.StartIMAPPeer(cmd, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pp.Stop() })
	if li, idle, err := pp.Sessions(); err != nil || li != 0 || idle != 0 {
		t.Fatalf("sessions before any client = %d logged in, %d idling, %v; want 0, 0", li, idle, err)
	}
	c, err := imapclient.DialInsecure(pp.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(localserver.IMAPPeerUser(peerUserFormat, 0), password).Wait(); err != nil {
		t.Fatalf("login with the password given in the environment: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	for {
		li, n, err := pp.Sessions()
		if err != nil {
			t.Fatal(err)
		}
		if li == 1 && n == 1 {
			break
		}
		if li != 1 {
			t.Fatalf("logged-in sessions = %d, want 1", li)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// appendMessage APPENDs raw to the INBOX of user over a connection of its own.
func appendMessage(t *testing.T, addr, user, password, raw string) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := c.Append("INBOX", int64(len(raw)), &goimap.AppendOptions{})
	if _, err := io.WriteString(cmd, raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}
