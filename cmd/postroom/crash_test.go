package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
)

// The crash tests run the real binary, `postroom serve`, as a child process ingesting from
// real Dovecot, kill it with SIGKILL at random moments and start it again on the same data
// folder, as a power cut or the OOM killer would. At the end every message must be stored
// exactly once (DESIGN.md invariants 1 and 2: commit, then acknowledge; the dedup key).
//
// Kills are placed by the child's own progress rather than by the clock, so that they land
// inside the ingest on a fast or a slow machine: the test reads the child's log, and after
// a random number of "message ingested" lines (each written right after a commit, before
// the batch is acknowledged) it waits a random fraction of a millisecond to a few
// milliseconds and kills. Depending on the draw the kill lands before the first commit of a
// run (log-in, search, fetch), inside a commit, between commits and the acknowledgement of
// their batch, or inside the acknowledgement and the next fetch. After each kill the test
// reads the store to log where it landed.
const (
	// crashIMAPMessages and crashIMAPKills: the 2,000 messages and 20 kills.
	crashIMAPMessages = 2000
	crashIMAPKills    = 20
	// crashPOP3Messages and crashPOP3Kills: the 500 messages.
	crashPOP3Messages = 500
	crashPOP3Kills    = 20
	// crashBatch is the ingest's batch size (ingest.defaultBatchSize): each run fetches 50
	// messages, commits them one by one, acknowledges the 50 and fetches the next 50.
	crashBatch = 50
	// crashBoundaryKillChance is the share of kills aimed just after the last commit of a
	// batch, where the acknowledgement and the next fetch run.
	crashBoundaryKillChance = 0.25
	// crashEarlyKillChance is the share of kills placed by time before the first commit of a
	// run (start-up, log-in, the first fetch) instead of after a number of commits.
	crashEarlyKillChance = 0.15
	// crashEarlyWindow is the window after the child says it serves in which early kills land.
	crashEarlyWindow = 150 * time.Millisecond
	// crashMaxJitter is the most a kill waits after the chosen log line; after the last
	// commit of a batch it may wait up to crashBoundaryJitter, past the acknowledgement
	// (one STORE or DELE+QUIT, then one store update per message) into the next fetch.
	crashMaxJitter      = 5 * time.Millisecond
	crashBoundaryJitter = 60 * time.Millisecond
	// crashRunLimit bounds one child run (a run that never reaches its kill point, and the
	// final run until every message is acknowledged): a deadline, not a goal.
	crashRunLimit = 2 * time.Minute
	// crashStopGrace is how long the final run may take to stop after SIGTERM.
	crashStopGrace = 15 * time.Second
	// crashLineBuffer holds the "message ingested" lines a run logs before the test counts
	// them: more than any test's messages, so that none is dropped.
	crashLineBuffer = 4096
	// crashSeedEnv names the environment variable that fixes the kill schedule's seed.
	crashSeedEnv = "POSTROOM_TEST_CRASH_SEED"
	// crashSecretKey is the child's vault key (base64 of 32 bytes).
	crashSecretKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// TestCrashIMAP: `postroom serve` ingesting 2,000 messages over IMAP is killed 20 times;
// every message ends up stored exactly once and \Seen at the server.
func TestCrashIMAP(t *testing.T) {
	n, kills := crashIMAPMessages, crashIMAPKills
	if testing.Short() {
		n, kills = 400, 6
	}
	bin := buildPostroom(t)
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.AppendMany(t, user, "INBOX", crashMails(n))

	c := newCrashRun(t, bin, map[string]string{
		envInboundURL:  fmt.Sprintf("imap+insecure://support%%40example.test@%s/INBOX", d.IMAPAddr),
		envInboundPass: "support-pw",
	})
	c.killRepeatedly(kills, n)
	c.runUntil("every message \\Seen at the server", func() (bool, string) {
		seen, total := 0, 0
		for _, m := range d.Messages(t, user, "INBOX") {
			total++
			for _, f := range m.Flags {
				if f == `\Seen` {
					seen++
				}
			}
		}
		return seen == n && total == n, fmt.Sprintf("%d of %d \\Seen", seen, total)
	})
	c.checkExactlyOnce("inbound", n)
}

// TestCrashPOP3: the same with a POP3 mailbox (created with `postroom mailbox add`) and 500
// messages, deleted at the server after commit; at the end the maildrop is empty.
func TestCrashPOP3(t *testing.T) {
	n, kills := crashPOP3Messages, crashPOP3Kills
	if testing.Short() {
		n, kills = 150, 6
	}
	bin := buildPostroom(t)
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.AppendMany(t, user, "INBOX", crashMails(n))

	c := newCrashRun(t, bin, nil)
	pwFile := filepath.Join(t.TempDir(), "pop3-password")
	if err := os.WriteFile(pwFile, []byte("support-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, d.POP3Addr)
	c.cli("migrate")
	c.cli("mailbox", "add", "pop", "-direction", "inbound", "-protocol", "pop3", "-host", host, "-port", port,
		"-security", "none", "-login", user, "-address", user, "-after-action", store.AfterDelete, "-password-file", pwFile)
	c.cli("mailbox", "enable", "pop")

	c.killRepeatedly(kills, n)
	c.runUntil("the maildrop empty", func() (bool, string) {
		left := len(d.Messages(t, user, "INBOX"))
		return left == 0, fmt.Sprintf("%d messages left on the server", left)
	})
	c.checkExactlyOnce("pop", n)
}

// crashMails returns n distinct customer mails; the i-th has Message-ID <crash-i@example.org>.
func crashMails(n int) [][]byte {
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = fmt.Appendf(nil, "From: Customer %d <customer%d@example.org>\r\n"+
			"To: support@example.test\r\n"+
			"Subject: Crash test order %d\r\n"+
			"Message-ID: <crash-%d@example.org>\r\n"+
			"Date: Tue, 24 Nov 2026 08:%02d:00 +0000\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
			"Where is my order %d?\r\n", i, i, i, i, i%60, i)
	}
	return raws
}

func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q has no port", addr)
	}
	return host, port
}

// buildPostroom builds this package's binary into a temporary folder.
func buildPostroom(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "postroom")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build postroom for the crash test: %v", err)
	}
	start := time.Now()
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// crashRun runs `postroom serve` children on one data folder.
type crashRun struct {
	t       *testing.T
	bin     string
	dataDir string
	env     []string
	logPath string // every child's stderr, appended
	rng     *rand.Rand
	runs    int
	// progress is the log text of one unit of work done (default: a message ingested);
	// child.ingested receives one value per line holding it.
	progress string
}

func newCrashRun(t *testing.T, bin string, env map[string]string) *crashRun {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, v, err)
		}
	}
	t.Logf("kill schedule seed %d (%s=%d draws the same kill points again)", seed, crashSeedEnv, seed)
	c := &crashRun{
		t: t, bin: bin, dataDir: filepath.Join(t.TempDir(), "data"),
		logPath:  filepath.Join(t.TempDir(), "serve.log"),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		progress: `msg="message ingested"`,
	}
	// The child gets a clean environment: nothing of the developer's POSTROOM_* settings
	// (a POSTROOM_DATABASE_URL would send it to PostgreSQL).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTROOM_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "POSTROOM_SECRET_KEY="+crashSecretKey, envAdminPassword+"=crash-admin-pw")
	for k, v := range env {
		c.env = append(c.env, k+"="+v)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(c.logPath)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("serve log (%s), last lines:\n%s", c.logPath, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	return c
}

// cli runs a postroom command other than serve against the data folder and fails the test
// if it fails.
func (c *crashRun) cli(args ...string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "-data", c.dataDir)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("postroom %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// child is one running `postroom serve`.
type child struct {
	cmd *exec.Cmd
	// serving is closed when the child has printed its address (the ingest loops start
	// right after); ingested receives one value per "message ingested" log line.
	serving  chan struct{}
	ingested chan struct{}
	exited   chan struct{} // closed when the process has exited and its output is read
	err      error         // Wait's result, set before exited is closed
}

// start starts a child with its stdout and stderr read line by line.
func (c *crashRun) start() *child {
	c.t.Helper()
	c.runs++
	cmd := exec.Command(c.bin, "serve", "-data", c.dataDir, "-listen", "127.0.0.1:0", "-log-level", "info")
	cmd.Env = c.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logFile, "==== run %d\n", c.runs)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		c.t.Fatalf("start postroom serve: %v", err)
	}
	ch := &child{cmd: cmd, serving: make(chan struct{}), ingested: make(chan struct{}, crashLineBuffer), exited: make(chan struct{})}
	var readers sync.WaitGroup
	var logMu sync.Mutex
	logLine := func(line string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(logFile, line)
	}
	readers.Go(func() {
		once := sync.Once{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			logLine(sc.Text())
			if strings.Contains(sc.Text(), " serving http://") {
				once.Do(func() { close(ch.serving) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			logLine(sc.Text())
			if strings.Contains(sc.Text(), c.progress) {
				select {
				case ch.ingested <- struct{}{}:
				default: // more lines than messages: the count check will tell
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	})
	go func() {
		readers.Wait() // the pipes must be drained before Wait closes them
		ch.err = cmd.Wait()
		logFile.Close()
		close(ch.exited)
	}()
	c.t.Cleanup(func() { ch.kill() })
	return ch
}

// kill sends SIGKILL to the child's process group and waits for it to be gone.
func (ch *child) kill() {
	_ = syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGKILL)
	<-ch.exited
}

// killRepeatedly starts and kills the child kills times, each time at a random point of
// its progress, and logs where each kill landed.
func (c *crashRun) killRepeatedly(kills, n int) {
	c.t.Helper()
	var beforeFirstCommit, inFetch, beforeAck, afterAck int
	prevStored, prevPending := 0, 0
	for k := 1; k <= kills; k++ {
		ch := c.start()
		select {
		case <-ch.serving:
		case <-ch.exited:
			c.t.Fatalf("run %d: postroom serve exited before serving: %v", c.runs, ch.err)
		case <-time.After(crashRunLimit):
			c.t.Fatalf("run %d: postroom serve did not start serving within %v", c.runs, crashRunLimit)
		}
		// On average a run commits its share of what is left, so that the kills cover the
		// whole ingest and the final run still has work to do.
		remaining := n - prevStored
		share := remaining / (kills - k + 2)
		var plan string
		if remaining == 0 || c.rng.Float64() < crashEarlyKillChance {
			delay := time.Duration(c.rng.Int64N(int64(crashEarlyWindow)))
			plan = fmt.Sprintf("%v after start", delay.Round(time.Microsecond))
			time.Sleep(delay)
		} else {
			target := 1 + c.rng.IntN(max(1, 2*share))
			jitter := time.Duration(c.rng.Int64N(int64(crashMaxJitter)))
			if c.rng.Float64() < crashBoundaryKillChance {
				target = crashBatch * (1 + c.rng.IntN(max(1, 2*share/crashBatch)))
				jitter = time.Duration(c.rng.Int64N(int64(crashBoundaryJitter)))
			}
			target = min(remaining, target)
			plan = fmt.Sprintf("%v after commit %d of the run", jitter.Round(time.Microsecond), target)
			if !c.waitIngested(ch, target) {
				plan += " (the run ran out of messages first)"
			}
			time.Sleep(jitter)
		}
		ch.kill()
		stored, pending := c.storeState()
		switch {
		case stored == prevStored && pending < prevPending:
			inFetch++ // the last run's leftovers acknowledged: in the first fetch
		case stored == prevStored:
			beforeFirstCommit++ // start-up, log-in, acknowledging the last run's leftovers
		case pending > 0:
			beforeAck++ // this run committed messages it had not acknowledged yet
		default:
			afterAck++ // everything committed was acknowledged: in the next fetch
		}
		c.t.Logf("kill %2d, %s: %d stored (+%d), %d stored but not acknowledged", k, plan, stored, stored-prevStored, pending)
		prevStored, prevPending = stored, pending
	}
	c.t.Logf("%d kills: %d before the run's first commit, %d in its first fetch, %d between commits and their acknowledgement, %d after an acknowledgement",
		kills, beforeFirstCommit, inFetch, beforeAck, afterAck)
}

// waitIngested waits until the child has logged target ingested messages; false when it
// exited or the run limit passed first (the kill then lands wherever the child is).
func (c *crashRun) waitIngested(ch *child, target int) bool {
	timeout := time.After(crashRunLimit)
	for range target {
		select {
		case <-ch.ingested:
		case <-ch.exited:
			c.t.Fatalf("run %d: postroom serve exited by itself: %v", c.runs, ch.err)
		case <-timeout:
			return false
		}
	}
	return true
}

// runUntil runs a child until it serves and done holds, then stops it with SIGTERM.
func (c *crashRun) runUntil(what string, done func() (bool, string)) {
	c.t.Helper()
	ch := c.start()
	deadline := time.Now().Add(crashRunLimit)
	select {
	case <-ch.serving:
	case <-ch.exited:
		c.t.Fatalf("final run: postroom serve exited before serving: %v", ch.err)
	case <-time.After(crashRunLimit):
		c.t.Fatalf("final run: postroom serve did not start serving within %v", crashRunLimit)
	}
	state := ""
	for {
		ok, s := done()
		if ok {
			break
		}
		state = s
		select {
		case <-ch.exited:
			c.t.Fatalf("final run: postroom serve exited by itself (%v) before %s; last state: %s", ch.err, what, state)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("final run: timed out after %v waiting for %s; last state: %s", crashRunLimit, what, state)
		}
	}
	_ = syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-ch.exited:
		if ch.err != nil {
			c.t.Errorf("postroom serve exited with %v after SIGTERM", ch.err)
		}
	case <-time.After(crashStopGrace):
		c.t.Errorf("postroom serve did not stop within %v of SIGTERM", crashStopGrace)
	}
}

// openStore opens the child's SQLite database; call only while no child runs.
func (c *crashRun) openStore() store.Store {
	c.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "postroom.db"))
	if err != nil {
		c.t.Fatalf("open the store: %v", err)
	}
	return st
}

// storeState returns how many messages are stored and how many of those are not
// acknowledged at the source yet, over all mailboxes (zero before the first commit).
func (c *crashRun) storeState() (stored, pending int) {
	c.t.Helper()
	ctx := context.Background()
	st := c.openStore()
	defer st.Close()
	boxes, err := st.ListMailboxes(ctx)
	if err != nil {
		return 0, 0 // killed before the schema existed
	}
	for _, m := range boxes {
		ids, err := st.PendingAcks(ctx, m.ID)
		if err != nil {
			c.t.Fatalf("pending acks of %s: %v", m.Name, err)
		}
		pending += len(ids)
	}
	stored, err = st.CountMessages(ctx, 0)
	if err != nil {
		c.t.Fatalf("count messages: %v", err)
	}
	return stored, pending
}

// checkExactlyOnce reads the store after the last child stopped: the mailbox holds n
// messages, one work item each, and every Message-ID <crash-i@example.org> is stored once.
func (c *crashRun) checkExactlyOnce(mailbox string, n int) {
	c.t.Helper()
	ctx := context.Background()
	st := c.openStore()
	defer st.Close()
	m, err := st.MailboxByName(ctx, mailbox)
	if err != nil {
		c.t.Fatalf("mailbox %q: %v", mailbox, err)
	}
	count, err := st.CountMessages(ctx, m.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	if count != n {
		c.t.Errorf("stored messages: %d, want %d", count, n)
	}
	var items []store.WorkItem
	for off := 0; ; off += 100 {
		page, err := st.ListWorkItems(ctx, store.WorkItemFilter{Limit: 100, Offset: off})
		if err != nil {
			c.t.Fatalf("list work items: %v", err)
		}
		items = append(items, page...)
		if len(page) < 100 {
			break
		}
	}
	if len(items) != n {
		c.t.Errorf("work items: %d, want %d", len(items), n)
	}
	byID := map[string]int{}
	sources := map[string]int{}
	for _, wi := range items {
		msgs, err := st.ConversationMessages(ctx, wi.ConversationID)
		if err != nil {
			c.t.Fatalf("messages of conversation %d: %v", wi.ConversationID, err)
		}
		for _, msg := range msgs {
			byID[msg.MessageID]++
			sources[msg.SourceID]++
		}
	}
	missing, doubled := 0, 0
	for i := range n {
		id := fmt.Sprintf("crash-%d@example.org", i)
		switch got := byID[id]; {
		case got == 0:
			missing++
			if missing <= 10 {
				c.t.Errorf("message <%s> is not stored", id)
			}
		case got > 1:
			doubled++
			if doubled <= 10 {
				c.t.Errorf("message <%s> is stored %d times", id, got)
			}
		}
		delete(byID, id)
	}
	for id, got := range byID {
		c.t.Errorf("unexpected stored message <%s> (%d times)", id, got)
	}
	for src, got := range sources {
		if got > 1 {
			c.t.Errorf("source id %s stored %d times", src, got)
		}
	}
	c.t.Logf("after %d runs: %d stored, %d missing, %d stored more than once", c.runs, count, missing, doubled)
}
