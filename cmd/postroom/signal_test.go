package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// signalStopGrace is how long `postroom serve` may take to exit after SIGTERM; it only
// bounds a hung child, nothing is timed.
const signalStopGrace = time.Minute

// signalPoints are the moments of the SIGTERMs: a wait after a log line of the child. They
// spread the signal over opening and migrating the database, the secret key, the Default
// queue, the first admin ("user created" comes right before the mailboxes), the
// mailboxes and serving.
var signalPoints = []struct {
	after string
	delay time.Duration
}{
	{msgStarting, 0}, {msgStarting, 0}, {msgStarting, 0}, {msgStarting, time.Millisecond},
	{msgStarting, 3 * time.Millisecond}, {msgStarting, 10 * time.Millisecond}, {msgStarting, 30 * time.Millisecond},
	{msgStarting, 100 * time.Millisecond}, {msgAdminCreated, 0}, {msgAdminCreated, time.Millisecond},
	{msgStarting, 300 * time.Millisecond}, {msgStarting, time.Second},
}

// Log lines of `postroom serve` the SIGTERMs are timed from.
const (
	msgStarting     = `msg="postroom serve starting"`
	msgAdminCreated = `msg="user created" user=admin`
)

// serveChild is one `postroom serve` process whose output is collected.
type serveChild struct {
	cmd     *exec.Cmd
	marked  chan struct{} // closed when it logs the line given to startServeChild
	serving chan struct{} // closed when it prints its address
	exited  chan struct{} // closed when it has exited and its output is read
	err     error         // Wait's result, set before exited is closed

	mu            sync.Mutex
	stdout, stder strings.Builder
}

func startServeChild(t *testing.T, bin string, env []string, dataDir, mark string) *serveChild {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-data", dataDir, "-listen", "127.0.0.1:0", "-log-level", "info")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, marked: make(chan struct{}), serving: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postroom serve: %v", err)
	}
	var readers sync.WaitGroup
	read := func(r io.Reader, into *strings.Builder, marker string, ch chan struct{}) {
		var once sync.Once
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			c.mu.Lock()
			into.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.Contains(sc.Text(), marker) {
				once.Do(func() { close(ch) })
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}
	readers.Go(func() { read(stdout, &c.stdout, " serving http://", c.serving) })
	readers.Go(func() { read(stderr, &c.stder, mark, c.marked) })
	go func() {
		readers.Wait()
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	return c
}

func (c *serveChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "stdout:\n" + c.stdout.String() + "stderr:\n" + c.stder.String()
}

// terminate sends SIGTERM and waits for the exit; it fails the test unless the exit code
// is 0 and the log says why it stopped, with no error in it.
func (c *serveChild) terminate(t *testing.T) string {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(signalStopGrace):
		t.Fatalf("postroom serve did not stop within %v of SIGTERM:\n%s", signalStopGrace, c.output())
	}
	out := c.output()
	if c.err != nil {
		t.Fatalf("postroom serve exited with %v after SIGTERM, want 0:\n%s", c.err, out)
	}
	if !strings.Contains(out, `msg="stopped by a signal`) {
		t.Errorf("the log does not say that a signal stopped postroom serve:\n%s", out)
	}
	for line := range strings.Lines(out) {
		// "postroom serve: ..." is how a failed command ends (run).
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "context canceled") || strings.HasPrefix(line, "postroom serve: ") {
			t.Errorf("the log of a clean stop has: %s", strings.TrimSpace(line))
		}
	}
	return out
}

// TestServeSIGTERMDuringStartup: SIGTERM at any moment of `postroom serve`'s start-up
// (database, migrations, secret key, Default queue, first admin, configured mailboxes,
// serving) exits 0 with a log line saying so, and leaves nothing half written: the first
// admin and the outbound mailbox are there whole (password, enabled) or not at all, and
// the next start on the same data completes and serves.
func TestServeSIGTERMDuringStartup(t *testing.T) {
	bin := buildPostroom(t)
	for _, engine := range []string{"SQLite", "PostgreSQL"} {
		t.Run(engine, func(t *testing.T) {
			duringStartup := 0
			for i, p := range signalPoints {
				if engine == "PostgreSQL" && i%2 == 1 {
					continue // half the runs: each needs its own database
				}
				dataDir := filepath.Join(t.TempDir(), "data")
				env := serveEnv()
				if engine == "PostgreSQL" {
					env = append(env, envDatabaseURL+"="+testenv.Postgres(t))
				}
				c := startServeChild(t, bin, env, dataDir, p.after)
				select {
				case <-c.marked:
				case <-c.exited:
					t.Fatalf("postroom serve exited before it logged %s (%v):\n%s", p.after, c.err, c.output())
				case <-time.After(waitLimit):
					t.Fatalf("postroom serve did not log %s:\n%s", p.after, c.output())
				}
				time.Sleep(p.delay)
				out := c.terminate(t)
				if _, rest, ok := strings.Cut(out, `msg="stopped by a signal during start-up" step=`); ok {
					duringStartup++
					step, _, _ := strings.Cut(rest, "\n")
					t.Logf("SIGTERM %v after %s: stopped during start-up, at %s", p.delay, p.after, step)
				}
				checkWhole(t, env, dataDir)

				// The next start finishes what the interrupted one left and serves.
				again := startServeChild(t, bin, env, dataDir, msgStarting)
				select {
				case <-again.serving:
				case <-again.exited:
					t.Fatalf("after a SIGTERM %v after %s, the next start failed (%v):\n%s", p.delay, p.after, again.err, again.output())
				case <-time.After(waitLimit):
					t.Fatalf("after a SIGTERM %v after %s, the next start did not serve:\n%s", p.delay, p.after, again.output())
				}
				again.terminate(t)
				checkWhole(t, env, dataDir)
				if m := outboundMailbox(t, env, dataDir); m == nil || !m.Enabled || !m.PasswordSet {
					t.Errorf("after a complete start the outbound mailbox is %+v, want it enabled with its password", m)
				}
			}
			if duringStartup == 0 {
				t.Errorf("no SIGTERM landed during start-up: the test proved nothing about it")
			}
			t.Logf("%d SIGTERMs landed during start-up", duringStartup)
		})
	}
}

// serveEnv is the children's environment: none of the developer's POSTROOM_* settings, a
// fixed secret key, the first admin's password and an outbound mailbox on loopback (no
// connection is made to it unless a reply is sent).
func serveEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTROOM_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"POSTROOM_SECRET_KEY="+crashSecretKey,
		envAdminPassword+"=signal-admin-pw",
		envOutboundURL+"=smtp+insecure://support%40example.test@127.0.0.1:2525?address=support@example.test",
		envOutboundPass+"=outbound-pw",
	)
}

// checkWhole fails the test when the data holds a half-done start-up: an outbound mailbox
// without its password or not enabled.
func checkWhole(t *testing.T, env []string, dataDir string) {
	t.Helper()
	m := outboundMailbox(t, env, dataDir)
	if m != nil && (!m.Enabled || !m.PasswordSet) {
		t.Errorf("an interrupted start-up left the outbound mailbox half made: enabled %v, password set %v", m.Enabled, m.PasswordSet)
	}
}

// outboundMailbox reads the mailbox named "outbound" from the children's database; nil when
// there is none.
func outboundMailbox(t *testing.T, env []string, dataDir string) *store.Mailbox {
	t.Helper()
	ctx := context.Background()
	dbURL := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, envDatabaseURL+"="); ok {
			dbURL = v
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postroom.db")); dbURL == "" && err != nil {
		return nil // stopped before the database was created
	}
	st, err := app.OpenStore(ctx, dataDir, dbURL)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer st.Close()
	// A start stopped while migrating left an older schema; the missing migrations apply
	// (which the next start does too) so that the mailbox can be read.
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("an interrupted start-up left a database that does not migrate: %v", err)
	}
	m, err := st.MailboxByName(ctx, "outbound")
	switch {
	case err == nil:
		return &m
	case store.IsNotFound(err):
		return nil
	default:
		t.Fatalf("read the outbound mailbox: %v", err)
		return nil
	}
}
