package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// sinkReadyTimeout bounds smtp-sink start-up until its 220 greeting; it starts at once
	// (testmail.md §7), the margin is for a loaded CI machine.
	sinkReadyTimeout = 10 * time.Second
	// sinkStartAttempts is how many times a start that lost a port race is retried.
	sinkStartAttempts = 5
	// sinkBacklog is smtp-sink's listen backlog (its required last argument).
	sinkBacklog = "100"
	// sinkPollInterval is how often Wait looks for new message files.
	sinkPollInterval = 20 * time.Millisecond
	// sinkDumpTemplate is smtp-sink's -d template, relative to its root: one file per mail
	// transaction, strftime-expanded, with a random hex suffix appended by smtp-sink.
	sinkDumpDir      = "msg"
	sinkDumpTemplate = sinkDumpDir + "/%Y%m%d%H%M%S."
)

// sinkInstallAdvice is the message for a missing smtp-sink.
const sinkInstallAdvice = "run ./scripts/test, which installs postfix (for smtp-sink) non-interactively (or debconf-set-selections 'postfix postfix/main_mailer_type select No configuration' && apt-get install -y postfix)"

// SMTPSink is a running Postfix smtp-sink on 127.0.0.1 (testmail.md §5): a real SMTP server
// that accepts every message and writes it to a file under Dir. It offers neither AUTH nor
// TLS (-a; smtp-sink has no TLS at all).
type SMTPSink struct {
	Addr string // "127.0.0.1:port"
	Dir  string // temp dir; messages are written under Dir/sink/msg

	dumpDir string
	proc    *serverProcess

	mu       sync.Mutex
	inotify  int            // inotify descriptor watching dumpDir for IN_CLOSE_WRITE
	seq      map[string]int // dump file name -> completion order
	nextSeq  int
	overflow bool // the inotify queue overflowed: the order is lost
}

// SinkMessage is one mail transaction smtp-sink received.
type SinkMessage struct {
	MailFrom string   // reverse-path without <>; "" for the null sender
	Rcpts    []string // forward-paths without <>, in the order sent
	// Data is the message as the client sent it (CRLF line ends, dot-stuffing undone), with
	// the X-* and Received lines smtp-sink put in front removed.
	Data []byte
}

// StartSMTPSink starts smtp-sink on a free loopback port; it is stopped at t.Cleanup.
func StartSMTPSink(t testing.TB) *SMTPSink {
	t.Helper()
	s, err := startSMTPSink(t)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}

func startSMTPSink(t testing.TB) (*SMTPSink, error) {
	bin, err := findBinary("smtp-sink", sinkInstallAdvice)
	if err != nil {
		return nil, err
	}
	if err := requireRoot("smtp-sink"); err != nil {
		return nil, err
	}
	dir, err := makeWorldTraversableDir("postroom-smtpsink-")
	if err != nil {
		return nil, fmt.Errorf("smtp-sink: %w", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // registered first, so it runs after the stop
	root := filepath.Join(dir, "sink")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, fmt.Errorf("smtp-sink dir: %w", err)
	}
	uid, gid, err := nobodyIDs()
	if err != nil {
		return nil, fmt.Errorf("smtp-sink: %w", err)
	}
	// smtp-sink chroots to root (-R) and writes there as nobody (-u).
	if err := os.Chown(root, uid, gid); err != nil {
		return nil, fmt.Errorf("smtp-sink dir: %w", err)
	}
	s := &SMTPSink{Dir: dir, dumpDir: filepath.Join(root, sinkDumpDir), seq: map[string]int{}}
	if err := os.Mkdir(s.dumpDir, 0o755); err != nil {
		return nil, fmt.Errorf("smtp-sink dump dir: %w", err)
	}
	if err := os.Chown(s.dumpDir, uid, gid); err != nil {
		return nil, fmt.Errorf("smtp-sink dump dir: %w", err)
	}
	// smtp-sink keeps a dump file open for the whole transaction and closes it at the end of
	// DATA (it deletes it on RSET), so a close event marks a complete message, and the
	// order of the events is the order of arrival. File times cannot tell: two messages a
	// millisecond apart get the same coarse-clock mtime, and names only hold the second.
	s.inotify, err = syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("smtp-sink inotify: %w", err)
	}
	t.Cleanup(func() { syscall.Close(s.inotify) }) // registered before the stop, so it runs after
	if _, err := syscall.InotifyAddWatch(s.inotify, s.dumpDir, syscall.IN_CLOSE_WRITE); err != nil {
		return nil, fmt.Errorf("smtp-sink inotify watch %s: %w", s.dumpDir, err)
	}
	logPath := filepath.Join(dir, "smtp-sink.log")

	var lastErr error
	for range sinkStartAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return nil, fmt.Errorf("smtp-sink: %w", err)
		}
		s.Addr = hostPort(ports[0])
		lastErr = s.startOnce(bin, root, logPath)
		if lastErr == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("testenv: smtp-sink output (%s), last %d lines:\n%s", logPath, logTailLines, tailFile(logPath, logTailLines))
				}
				if err := s.proc.stop(); err != nil {
					t.Logf("testenv: %v", err)
				}
			})
			return s, nil
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	return nil, fmt.Errorf("smtp-sink: %w", lastErr)
}

func (s *SMTPSink) startOnce(bin, root, logPath string) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("smtp-sink log: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor
	cmd := exec.Command(bin, "-a", "-u", "nobody", "-R", root, "-d", sinkDumpTemplate, s.Addr, sinkBacklog)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc, err := startProcess("smtp-sink", cmd)
	if err != nil {
		return err
	}
	s.proc = proc
	deadline := time.Now().Add(sinkReadyTimeout)
	for {
		if done, err := proc.exited(); done {
			return fmt.Errorf("smtp-sink exited during start-up (%v): %s", err, tailFile(logPath, logTailLines))
		}
		err := sinkGreeting(s.Addr, deadline)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = proc.stop()
			return fmt.Errorf("smtp-sink not ready after %s: %w", sinkReadyTimeout, err)
		}
		time.Sleep(sinkPollInterval)
	}
}

// sinkGreeting connects, expects "220 " (RFC 5321 §4.2) and says QUIT.
func sinkGreeting(addr string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, "220 ") {
		return fmt.Errorf("greeting from %s: %q", addr, strings.TrimSpace(line))
	}
	_, _ = conn.Write([]byte("QUIT\r\n"))
	return nil
}

// Messages returns the completed mail transactions so far, in order of arrival. A transaction
// still in progress is left out. smtp-sink finishes its file before it answers the final ".",
// so a message a client has sent successfully is there; for a sender running in the
// background, use Wait.
func (s *SMTPSink) Messages(t testing.TB) []SinkMessage {
	t.Helper()
	msgs, err := s.messages()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return msgs
}

// Wait polls until at least n messages have arrived and returns them all; after timeout it
// fails the test, listing what did arrive.
func (s *SMTPSink) Wait(t testing.TB, n int, timeout time.Duration) []SinkMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.messages()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, m := range msgs {
				fmt.Fprintf(&b, "\n  %d: from <%s> to %v, %d bytes", i+1, m.MailFrom, m.Rcpts, len(m.Data))
			}
			t.Fatalf("testenv: smtp-sink got %d messages within %s, want %d:%s", len(msgs), timeout, n, b.String())
		}
		time.Sleep(sinkPollInterval)
	}
}

func (s *SMTPSink) messages() ([]SinkMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readCloseEvents(); err != nil {
		return nil, fmt.Errorf("smtp-sink messages: %w", err)
	}
	if s.overflow {
		return nil, errors.New("smtp-sink messages: the inotify queue overflowed, so the arrival order is lost; call Messages or Wait more often")
	}
	names := make([]string, 0, len(s.seq))
	for name := range s.seq {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return s.seq[a] - s.seq[b] })
	msgs := make([]SinkMessage, 0, len(names))
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(s.dumpDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			delete(s.seq, name) // a transaction ended by RSET: smtp-sink closed and deleted it
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("smtp-sink message %s: %w", name, err)
		}
		m, err := parseSinkDump(raw)
		if err != nil {
			return nil, fmt.Errorf("smtp-sink message %s: %w", name, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// readCloseEvents consumes the queued inotify events and numbers newly closed dump files.
func (s *SMTPSink) readCloseEvents() error {
	buf := make([]byte, 64*1024)
	for {
		n, err := syscall.Read(s.inotify, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read inotify events: %w", err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			// struct inotify_event {int wd; uint32 mask, cookie, len; char name[len]} (inotify(7))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			nameStart := off + syscall.SizeofInotifyEvent
			off = nameStart + nameLen
			if mask&syscall.IN_Q_OVERFLOW != 0 {
				s.overflow = true
				continue
			}
			if mask&syscall.IN_CLOSE_WRITE == 0 || nameLen == 0 || off > n {
				continue
			}
			name := string(bytes.TrimRight(buf[nameStart:off], "\x00"))
			if _, seen := s.seq[name]; !seen {
				s.seq[name] = s.nextSeq
				s.nextSeq++
			}
		}
	}
}

// parseSinkDump splits an smtp-sink dump file (smtp-sink(1), DUMP FILE FORMAT): X-* records,
// a three-line Received header, the message as received, then one empty line. smtp-sink
// writes each line with a bare LF; the SMTP client sent CRLF (RFC 5321 §2.3.8), restored here.
func parseSinkDump(raw []byte) (SinkMessage, error) {
	var m SinkMessage
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" || lines[len(lines)-2] != "" {
		return m, errors.New("dump does not end with the empty line smtp-sink writes after the message")
	}
	lines = lines[:len(lines)-2] // the final "\n" and the trailing empty line
	i := 0
	for ; i < len(lines) && strings.HasPrefix(lines[i], "X-"); i++ {
		name, value, _ := strings.Cut(lines[i], ": ")
		arg, _, _ := strings.Cut(value, " ") // the path; ESMTP parameters follow
		arg = strings.TrimSuffix(strings.TrimPrefix(arg, "<"), ">")
		switch name {
		case "X-Mail-Args":
			m.MailFrom = arg
		case "X-Rcpt-Args":
			m.Rcpts = append(m.Rcpts, arg)
		}
	}
	if i >= len(lines) || !strings.HasPrefix(lines[i], "Received: ") {
		return m, errors.New("no Received header after smtp-sink's X-* records")
	}
	start := i
	for i++; i < len(lines) && (strings.HasPrefix(lines[i], "\t") || strings.HasPrefix(lines[i], " ")); i++ {
	}
	if !strings.Contains(strings.Join(lines[start:i], " "), "(smtp-sink)") {
		return m, errors.New("the Received header after smtp-sink's X-* records is not smtp-sink's")
	}
	var data bytes.Buffer
	for _, l := range lines[i:] {
		data.WriteString(l)
		data.WriteString("\r\n")
	}
	m.Data = data.Bytes()
	return m, nil
}

// gateDialTimeout bounds the gate's connection to smtp-sink on loopback.
const gateDialTimeout = 5 * time.Second

// RcptGate is an SMTP relay on 127.0.0.1 in front of an SMTPSink that answers RCPT for
// chosen recipients itself. smtp-sink refuses every RCPT alike or none (-r, -f), while a
// sender's handling of per-recipient answers (RFC 5321 §4.2.5: in one transaction some
// recipients accepted, some 4xx, some 5xx) needs a server that tells them apart. Every
// other command and every recipient without an answer goes to smtp-sink unchanged, and
// each reply comes back from it, so what a transaction delivers is in the sink's Messages,
// with exactly the recipients that were accepted.
//
// Commands are relayed one at a time, each reply before the next command is read, which
// keeps replies in order for a client that pipelines (RFC 2920).
type RcptGate struct {
	Addr string // "127.0.0.1:port"

	sink *SMTPSink
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers map[string]string // lower-cased address -> reply line
	conns   map[net.Conn]bool
	closed  bool
}

// StartRcptGate starts a gate in front of s; it is stopped at t.Cleanup.
func (s *SMTPSink) StartRcptGate(t testing.TB) *RcptGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: RCPT gate: %v", err)
	}
	g := &RcptGate{Addr: ln.Addr().String(), sink: s, ln: ln, answers: map[string]string{}, conns: map[net.Conn]bool{}}
	g.wg.Go(g.accept)
	t.Cleanup(g.close)
	return g
}

// Answer makes the gate reply to RCPT TO:<rcpt> with reply, a whole reply line such as
// "452 4.2.2 Mailbox full" (a 4xx or 5xx code, a space, text), instead of passing it to
// smtp-sink; reply "" passes rcpt on again. Addresses compare without regard to case.
func (g *RcptGate) Answer(t testing.TB, rcpt, reply string) {
	t.Helper()
	if reply != "" && (len(reply) < 5 || (reply[0] != '4' && reply[0] != '5') ||
		reply[1] < '0' || reply[1] > '9' || reply[2] < '0' || reply[2] > '9' || reply[3] != ' ' ||
		strings.ContainsAny(reply, "\r\n")) {
		t.Fatalf("testenv: RCPT gate answer %q: want one line like \"452 4.2.2 Mailbox full\" with a 4xx or 5xx code", reply)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := strings.ToLower(rcpt)
	if reply == "" {
		delete(g.answers, key)
		return
	}
	g.answers[key] = reply
}

func (g *RcptGate) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return // closed
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			return
		}
		g.conns[c] = true
		g.mu.Unlock()
		g.wg.Go(func() {
			defer func() {
				g.mu.Lock()
				delete(g.conns, c)
				g.mu.Unlock()
				c.Close()
			}()
			g.relay(c)
		})
	}
}

// close stops accepting, closes every connection and waits for their goroutines.
func (g *RcptGate) close() {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.ln.Close()
	g.wg.Wait()
}

// relay carries one client session to smtp-sink and back, answering RCPTs that have an
// answer itself.
func (g *RcptGate) relay(client net.Conn) {
	up, err := net.DialTimeout("tcp", g.sink.Addr, gateDialTimeout)
	if err != nil {
		_, _ = io.WriteString(client, "421 4.3.0 RCPT gate: smtp-sink unreachable\r\n")
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		up.Close()
		return
	}
	g.conns[up] = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.conns, up)
		g.mu.Unlock()
		up.Close()
	}()
	fromClient, fromSink := bufio.NewReader(client), bufio.NewReader(up)
	if _, err := relayReply(fromSink, client); err != nil { // the greeting
		return
	}
	inData := false
	for {
		line, err := fromClient.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			// RFC 5321 §4.5.2: the message ends with a line holding one dot.
			if _, err := io.WriteString(up, line); err != nil {
				return
			}
			if line == ".\r\n" {
				inData = false
				if _, err := relayReply(fromSink, client); err != nil {
					return
				}
			}
			continue
		}
		if reply, ok := g.answerFor(line); ok {
			if _, err := io.WriteString(client, reply+"\r\n"); err != nil {
				return
			}
			continue
		}
		if _, err := io.WriteString(up, line); err != nil {
			return
		}
		code, err := relayReply(fromSink, client)
		if err != nil {
			return
		}
		if verb, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.EqualFold(verb, "DATA") && code == 354 {
			inData = true
		}
	}
}

// answerFor returns the answer set for the recipient of a RCPT command line.
func (g *RcptGate) answerFor(line string) (string, bool) {
	const prefix = "RCPT TO:"
	if len(line) < len(prefix) || !strings.EqualFold(line[:len(prefix)], prefix) {
		return "", false
	}
	path := strings.TrimSpace(line[len(prefix):])
	if rest, ok := strings.CutPrefix(path, "<"); ok {
		path, _, _ = strings.Cut(rest, ">")
	} else {
		path, _, _ = strings.Cut(path, " ")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	reply, ok := g.answers[strings.ToLower(path)]
	return reply, ok
}

// relayReply copies one reply, all its lines (RFC 5321 §4.2.1: "NNN-" continues,
// "NNN " ends), from r to w and returns its code.
func relayReply(r *bufio.Reader, w io.Writer) (int, error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if _, err := io.WriteString(w, line); err != nil {
			return 0, err
		}
		if len(line) < 4 || line[3] != '-' {
			code, err := strconv.Atoi(line[:min(3, len(line))])
			if err != nil {
				return 0, fmt.Errorf("smtp-sink reply %q: %w", line, err)
			}
			return code, nil
		}
	}
}
