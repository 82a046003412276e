package testenv

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proxyWait bounds every read that must succeed; data on loopback takes microseconds.
const proxyWait = 10 * time.Second

// quiet is how long a read waits to show that nothing arrives while a fault holds data
// back. A bug could only make data arrive, never hold it back, so it cannot cause a flake.
const quiet = 300 * time.Millisecond

// startEcho runs a TCP echo server on 127.0.0.1 until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dialProxy(t *testing.T, p *FaultProxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, proxyWait)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// expectReset asserts that the connection was reset: a read fails with ECONNRESET.
func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
}

// expectResetOnDial asserts that a new connection is reset: the RST can come before the
// connect returns or at the first read.
func expectResetOnDial(t *testing.T, p *FaultProxy) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, proxyWait)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial proxy: %v, want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	expectReset(t, c)
}

// expectNothing asserts that no byte arrives for a while.
func expectNothing(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(quiet))
	n, err := c.Read(make([]byte, 64))
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read during the fault: %d bytes, %v; want nothing", n, err)
	}
}

func TestFaultProxyPass(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "hello")
	roundTrip(t, c, string(bytes.Repeat([]byte("x"), 100_000))) // more than one buffer
	c2 := dialProxy(t, p)
	roundTrip(t, c2, "second")
	s := p.Stats()
	if s.Accepted != 2 || s.Open != 2 {
		t.Errorf("stats %+v, want 2 accepted and 2 open", s)
	}
	if want := int64(5 + 100_000 + 6); s.BytesToServer != want || s.BytesToClient != want {
		t.Errorf("bytes forwarded %d to server, %d to client; want %d each way", s.BytesToServer, s.BytesToClient, want)
	}
}

func TestFaultProxyResetAll(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c1, c2 := dialProxy(t, p), dialProxy(t, p)
	roundTrip(t, c1, "one")
	roundTrip(t, c2, "two")
	if n := p.ResetAll(); n != 2 {
		t.Errorf("ResetAll reset %d connections, want 2", n)
	}
	expectReset(t, c1)
	expectReset(t, c2)
	// A one-shot fault: the next connection passes.
	c3 := dialProxy(t, p)
	roundTrip(t, c3, "three")
	if s := p.Stats(); s.Accepted != 3 || s.Reset != 2 || s.Open != 1 {
		t.Errorf("stats %+v, want 3 accepted, 2 reset, 1 open", s)
	}
}

func TestFaultProxyReject(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	open := dialProxy(t, p)
	roundTrip(t, open, "before")
	p.Reject()
	expectReset(t, open)
	for range 3 {
		expectResetOnDial(t, p)
	}
	p.Pass()
	roundTrip(t, dialProxy(t, p), "after")
	if s := p.Stats(); s.Accepted != 5 || s.Reset != 4 {
		t.Errorf("stats %+v, want 5 accepted, 4 reset", s)
	}
}

func TestFaultProxyStall(t *testing.T) {
	for _, dir := range []Direction{ToClient, ToServer, Both} {
		t.Run(dir.String(), func(t *testing.T) {
			p := StartFaultProxy(t, startEcho(t))
			c := dialProxy(t, p)
			roundTrip(t, c, "warm")
			p.Stall(dir)
			if _, err := c.Write([]byte("held")); err != nil {
				t.Fatal(err)
			}
			expectNothing(t, c)
			// A connection opened during the stall is stalled too.
			c2 := dialProxy(t, p)
			if _, err := c2.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			expectNothing(t, c2)
			p.Pass()
			// What the stall held back arrives, in order, and the connections go on.
			_ = c.SetReadDeadline(time.Now().Add(proxyWait))
			got := make([]byte, 4)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
				t.Fatalf("after Pass: %q, %v; want \"held\"", got, err)
			}
			_ = c2.SetReadDeadline(time.Now().Add(proxyWait))
			got = make([]byte, 3)
			if _, err := io.ReadFull(c2, got); err != nil || string(got) != "new" {
				t.Fatalf("new connection after Pass: %q, %v; want \"new\"", got, err)
			}
			roundTrip(t, c, "more")
		})
	}
}

func TestFaultProxyTruncate(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "before")
	const budget = 5000
	p.Truncate(budget)
	msg := bytes.Repeat([]byte("0123456789"), 2000) // 20,000 bytes, over the budget
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until the proxy closes: %v", err)
	}
	if !bytes.Equal(got, msg[:budget]) {
		t.Fatalf("got %d bytes before the close, want the first %d of the response", len(got), budget)
	}
	// Until Pass, a new connection is cut after the same budget.
	c2 := dialProxy(t, p)
	if _, err := c2.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(proxyWait))
	if got, err := io.ReadAll(c2); err != nil || len(got) != budget {
		t.Fatalf("new connection under Truncate: %d bytes, %v; want %d then EOF", len(got), err, budget)
	}
	p.Pass()
	roundTrip(t, dialProxy(t, p), string(msg))
	if s := p.Stats(); s.Truncated != 2 {
		t.Errorf("stats %+v, want 2 truncated", s)
	}
}

func TestFaultProxySlow(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "warm")

	// 10 bytes at 20 bytes/s go out 2 bytes every 100 ms: never faster than 400 ms, and
	// never more than 2 bytes in one read when the reader keeps up.
	p.Slow(ToClient, 20)
	start := time.Now()
	if _, err := c.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	var got []byte
	buf := make([]byte, 64)
	reads := 0
	for len(got) < 10 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read under Slow: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
		reads++
	}
	if string(got) != "0123456789" {
		t.Fatalf("got %q", got)
	}
	if elapsed := time.Since(start); elapsed < 350*time.Millisecond || reads < 3 {
		t.Errorf("10 bytes at 20 B/s came in %v in %d reads; a slow link needs about 400 ms and 5 reads", elapsed, reads)
	}

	// At 1 byte/s, 1,000 bytes would take 17 minutes: Pass releases the rest at once.
	p.Slow(Both, 1)
	msg := bytes.Repeat([]byte("s"), 1000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(quiet))
	first := make([]byte, 64)
	n, _ := c.Read(first)
	if n > 1 {
		t.Errorf("at 1 byte/s, %d bytes arrived in the first %v", n, quiet)
	}
	p.Pass()
	rest := make([]byte, len(msg)-n)
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatalf("after Pass the slowed data did not arrive: %v", err)
	}
}

func TestFaultProxyTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := StartFaultProxy(t, target)
	expectResetOnDial(t, p)
}

func TestFaultProxyOnBytesToClient(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "warm") // 4 bytes to the client before the trigger is set
	msg := bytes.Repeat([]byte("abcdefghij"), 1000)

	// The stall lands exactly at byte 3,000 of what follows, in the middle of the echo.
	fired := make(chan struct{})
	p.OnBytesToClient(3000, func() { p.Stall(ToClient); close(fired) })
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	got := make([]byte, 3000)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg[:3000]) {
		t.Fatalf("before the trigger: %v", err)
	}
	<-fired
	expectNothing(t, c)
	p.Pass()
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	rest := make([]byte, len(msg)-3000)
	if _, err := io.ReadFull(c, rest); err != nil || !bytes.Equal(rest, msg[3000:]) {
		t.Fatalf("after Pass: %v", err)
	}

	// A truncation set by the trigger cuts the connection at exactly that byte.
	p.OnBytesToClient(1234, func() { p.Truncate(0) })
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	all, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(all, msg[:1234]) {
		t.Fatalf("truncated at the trigger: %d bytes, %v; want the first 1234", len(all), err)
	}
}

// TestFaultProxyResetDuringStall: a reset ends stalled connections too.
func TestFaultProxyResetDuringStall(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "warm")
	p.Stall(Both)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if n := p.ResetAll(); n != 1 {
		t.Fatalf("ResetAll reset %d connections, want 1", n)
	}
	expectReset(t, c)
	if s := p.Stats(); s.Open != 0 {
		t.Errorf("stats %+v, want no open connection", s)
	}
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(proxyWait))
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, got)
	}
	return string(got)
}

// TestFaultProxyRewriteLines: the server's lines reach the client rewritten (a match
// replaced with $1 expanded, a line dropped, a line split over two reads matched whole),
// a swallowed line can be answered in the client's place, other lines pass unchanged, and
// RewriteLines() ends it.
func TestFaultProxyRewriteLines(t *testing.T) {
	p := StartFaultProxy(t, startEcho(t))
	c := dialProxy(t, p)
	roundTrip(t, c, "before\r\n")
	p.RewriteLines(
		LineRule{Match: regexp.MustCompile(`^535 5\.7\.8 `), Replace: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."},
		LineRule{Match: regexp.MustCompile(`^(\w+) NO \[AUTHENTICATIONFAILED\]`), Replace: "$1 NO AUTHENTICATE failed."},
		LineRule{Match: regexp.MustCompile(`^250-STARTTLS$`)},
		LineRule{Match: regexp.MustCompile(`^\+ eyJ`), Answer: "answered\r\n"},
	)

	in := "250-mail.example.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
	want := "250-mail.example.test\r\n250 8BITMIME\r\n"
	if _, err := c.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, len(want)); got != want {
		t.Errorf("EHLO answer %q, want %q (STARTTLS dropped)", got, want)
	}

	// One line in two writes, with a pause between them: held until its end arrives.
	if _, err := c.Write([]byte("A3 NO [AUTHENTICATIONFAILED] Auth")); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c)
	if _, err := c.Write([]byte("entication failed.\r\n535 5.7.8 Authentication failed\r\nplain\n")); err != nil {
		t.Fatal(err)
	}
	want = "A3 NO AUTHENTICATE failed.\r\n535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\r\nplain\n"
	if got := readN(t, c, len(want)); got != want {
		t.Errorf("got %q,\nwant %q", got, want)
	}

	// A challenge is swallowed and answered: the echo server sends the answer back.
	if _, err := c.Write([]byte("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, len("answered\r\n")); got != "answered\r\n" {
		t.Errorf("after a swallowed challenge the client got %q, want the server's echo of the answer", got)
	}

	p.RewriteLines()
	roundTrip(t, c, "535 5.7.8 Authentication failed\r\n")
	roundTrip(t, c, "no line end")
}
