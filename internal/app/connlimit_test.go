package app_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// startLimited opens an App on SQLite with the HTTP limits lim and serves it on a free
// loopback port (no background loops: only the web server matters here).
func startLimited(t *testing.T, lim app.HTTPLimits) (*app.App, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{
		DataDir: t.TempDir(),
		Getenv:  func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		HTTP:    lim,
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-served
		a.Close()
	})
	return a, "http://" + ln.Addr().String()
}

// limitFiles sets the process's descriptor limit to what it uses now plus extra, as a
// server that many held connections could exhaust (restored at the end of the test).
func limitFiles(t *testing.T, extra uint64) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("count open descriptors: %v", err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("read the descriptor limit: %v", err)
	}
	want := uint64(len(fds)) + extra
	if want > rl.Max {
		t.Skipf("the descriptor limit (hard %d) is below %d", rl.Max, want)
	}
	old := rl
	rl.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("set the descriptor limit: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestHeldConnectionsDoNotStarveOthers: more silent and slow (header sent byte by byte)
// connections than the cap do not keep a normal page from answering at once, with header
// and idle time-outs far away and a descriptor limit that the held connections would
// exhaust without the cap (the test's own client ends count too: the limit leaves room
// for them, the cap and a margin); and a kept-alive connection is closed after IdleTimeout.
func TestHeldConnectionsDoNotStarveOthers(t *testing.T) {
	const maxConns, silent, slow = 200, 200, 100
	_, url := startLimited(t, app.HTTPLimits{MaxConns: maxConns, ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute, IdleTimeout: 700 * time.Millisecond})
	addr := strings.TrimPrefix(url, "http://")
	limitFiles(t, silent+slow+maxConns+64)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		held = append(held, c)
	}
	stop := make(chan struct{})
	defer close(stop)
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		held = append(held, c)
		go func() { // a header that never ends, a byte every 100 ms
			for _, b := range []byte("GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)) {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the slow ones have begun their headers

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 20 {
		start := time.Now()
		resp, err := hc.Get(url + "/login")
		if err != nil {
			t.Fatalf("request %d with %d held connections: %v", i, silent+slow, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("request %d took %v with held connections", i, d)
		}
	}

	// A kept-alive connection waiting for its next request is closed after IdleTimeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /login HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the idle connection: read %v, want EOF (closed by the server)", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("the idle connection was closed after %v, want about the 700 ms IdleTimeout", d)
	}
}

// TestEventStreamOutlivesTimeouts: the work item list's server-sent event stream stays open
// and keeps sending past the server's read and write time-outs (it extends them itself).
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	a, url := startLimited(t, app.HTTPLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	ctx := context.Background()

	// A connection that never sends a request is closed after ReadHeaderTimeout.
	silent, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	begin := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a silent connection: read %v, want EOF (closed by the server)", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("a silent connection was closed after %v, want about the 300 ms ReadHeaderTimeout", d)
	}

	if _, err := a.Auth.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "pw-for-tests-1"); err != nil {
		t.Fatal(err)
	}
	token, _, _, err := a.Auth.Login(ctx, "ana", "pw-for-tests-1")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/workitems/events", nil)
	req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /workitems/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	start := time.Now()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended after %v (read and write time-outs are 300 ms)", time.Since(start).Round(time.Millisecond))
			}
			if strings.HasPrefix(l, ": heartbeat") {
				if d := time.Since(start); d < time.Second {
					t.Fatalf("heartbeat after %v, want one after the time-outs passed", d)
				}
				return // a heartbeat ~10 s in: the stream outlived the time-outs
			}
		case <-deadline:
			t.Fatal("no heartbeat within 30 s")
		}
	}
}
