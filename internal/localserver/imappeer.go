package localserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// IMAPPeer is an in-memory IMAP server (go-imap's imapserver and imapmemserver) that holds
// many users, each with an empty INBOX, all with the same password. It is the peer of
// `postroom bench idle` where Dovecot cannot be: Dovecot forks a process per IMAP
// connection, so a machine that runs the benchmark cannot hold 10,000 of them, where this
// server holds one goroutine pair and a few buffers per connection.
//
// It speaks plain-text IMAP4rev1 with IDLE, ENABLE, UNSELECT (imapserver), UIDPLUS, MOVE
// and NAMESPACE, over loopback only: LOGIN without TLS is allowed. A message APPENDed to a
// user's INBOX wakes that user's sessions in IDLE at once.
//
// Run it in a process of its own (StartIMAPPeer, RunIMAPPeer) when the memory or the file
// descriptors of the other side of the connections are measured.
type IMAPPeer struct {
	users  map[string]*peerUser
	server *imapserver.Server

	loggedIn atomic.Int64 // sessions past LOGIN, not yet closed
	idling   atomic.Int64 // sessions in IDLE now
}

// peerUser is one user of the peer and the signal its idling sessions wait for.
type peerUser struct {
	*imapmemserver.User
	changes changeSignal
}

// IMAPPeerUser is the login of the peer's user number i (from 0) in a run with the given
// format, e.g. "idle%05d@example.test".
func IMAPPeerUser(format string, i int) string { return fmt.Sprintf(format, i) }

// NewIMAPPeer creates the server with n users named by format (IMAPPeerUser) and password;
// errors are written to errLog.
func NewIMAPPeer(format string, n int, password string, errLog io.Writer) (*IMAPPeer, error) {
	if n < 1 {
		return nil, errors.New("imap peer: need at least one user")
	}
	if !strings.Contains(format, "%") {
		return nil, fmt.Errorf("imap peer: user format %q has no verb for the number", format)
	}
	p := &IMAPPeer{users: make(map[string]*peerUser, n)}
	for i := range n {
		name := IMAPPeerUser(format, i)
		u := imapmemserver.NewUser(name, password)
		if err := u.Create("INBOX", nil); err != nil {
			return nil, fmt.Errorf("imap peer: create INBOX of %s: %w", name, err)
		}
		p.users[name] = &peerUser{User: u}
	}
	if len(p.users) != n {
		return nil, fmt.Errorf("imap peer: user format %q gives %d distinct names for %d users", format, len(p.users), n)
	}
	p.server = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &peerSession{peer: p}, nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapUIDPlus:   {},
			imap.CapMove:      {},
			imap.CapNamespace: {},
		},
		Logger:       log.New(errLog, "imap peer: ", log.LstdFlags),
		InsecureAuth: true, // loopback only
	})
	return p, nil
}

// Serve accepts connections on l until Close.
func (p *IMAPPeer) Serve(l net.Listener) error { return p.server.Serve(l) }

// Close stops the listeners and closes every connection.
func (p *IMAPPeer) Close() error { return p.server.Close() }

// Sessions is how many connections are logged in, and how many of them are in IDLE now.
func (p *IMAPPeer) Sessions() (loggedIn, idling int) {
	return int(p.loggedIn.Load()), int(p.idling.Load())
}

// peerSession is one connection: imapmemserver does the mailbox work once LOGIN succeeded.
type peerSession struct {
	*imapmemserver.UserSession // nil until LOGIN succeeds

	peer *IMAPPeer
	user *peerUser
}

var (
	_ imapserver.SessionIMAP4rev2 = (*peerSession)(nil)
	_ imapserver.SessionMove      = (*peerSession)(nil)
	_ imapserver.SessionNamespace = (*peerSession)(nil)
)

func (s *peerSession) Login(username, password string) error {
	if s.UserSession != nil {
		return errors.New("already logged in")
	}
	u := s.peer.users[username]
	if u == nil {
		return imapserver.ErrAuthFailed
	}
	if err := u.Login(username, password); err != nil {
		return err
	}
	s.UserSession, s.user = imapmemserver.NewUserSession(u.User), u
	s.peer.loggedIn.Add(1)
	return nil
}

func (s *peerSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	s.peer.loggedIn.Add(-1)
	return s.UserSession.Close()
}

// Append stores a message and wakes the user's idling sessions.
func (s *peerSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	data, err := s.UserSession.Append(mailbox, r, options)
	if err == nil {
		s.user.changes.notify()
	}
	return data, err
}

// Idle reports mailbox changes until stop is closed (RFC 2177). imapmemserver's own IDLE
// wakes only on changes queued after it started, and so misses a message appended while
// the command is set up; here the wake-up channel is taken before each poll, so an append
// is either in the queue polled or closes the channel. There is no timer: an idle session
// costs nothing until its user gets mail.
func (s *peerSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.peer.idling.Add(1)
	defer s.peer.idling.Add(-1)
	for {
		changed := s.user.changes.wait()
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stop:
			return nil
		}
	}
}

// changeSignal wakes every waiter once per notify: waiters take the current channel,
// notify closes it and the next wait makes a new one.
type changeSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changeSignal) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changeSignal) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// The peer process's line protocol on its standard input and output: it prints
// "listening ADDR" once it accepts connections, answers every "sessions" line with
// "sessions logged_in=N idling=M", and exits when its standard input closes (so it never
// outlives the benchmark that started it).
const (
	peerListening     = "listening "
	peerAskSessions   = "sessions"
	peerSessionsReply = "sessions logged_in=%d idling=%d"
)

// RunIMAPPeer is the main of the peer process: it serves an IMAPPeer on a free loopback
// port until in closes or ctx ends. The password is read from the environment variable
// IMAPPeerPasswordEnv, not from the command line, where ps would show it.
func RunIMAPPeer(ctx context.Context, format string, n int, in io.Reader, out, errLog io.Writer) error {
	password := os.Getenv(IMAPPeerPasswordEnv)
	if password == "" {
		return fmt.Errorf("imap peer: set %s to the users' password", IMAPPeerPasswordEnv)
	}
	p, err := NewIMAPPeer(format, n, password, errLog)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(LoopbackHost, "0"))
	if err != nil {
		return fmt.Errorf("imap peer: listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(l) }()
	defer p.Close()
	if _, err := fmt.Fprintf(out, "%s%s\n", peerListening, l.Addr()); err != nil {
		return fmt.Errorf("imap peer: write the address: %w", err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("imap peer: serve: %w", err)
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if strings.TrimSpace(line) != peerAskSessions {
				fmt.Fprintf(errLog, "imap peer: unknown request %q\n", line)
				continue
			}
			li, idle := p.Sessions()
			if _, err := fmt.Fprintf(out, peerSessionsReply+"\n", li, idle); err != nil {
				return fmt.Errorf("imap peer: answer: %w", err)
			}
		}
	}
}

// IMAPPeerPasswordEnv names the environment variable that gives the peer process its
// users' password.
const IMAPPeerPasswordEnv = "POSTROOM_IMAP_PEER_PASSWORD"

// peerStartTimeout bounds the wait for the peer process to listen: creating 10,000 users
// takes well under a second.
const peerStartTimeout = 30 * time.Second

// IMAPPeerProcess is an IMAPPeer running in a child process (StartIMAPPeer).
type IMAPPeerProcess struct {
	Addr string // host:port on 127.0.0.1

	proc   *Process
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  *bufio.Scanner
	stderr *lockedBuffer
}

// StartIMAPPeer starts cmd (a program that calls RunIMAPPeer, e.g. this executable with a
// hidden subcommand) with password in its environment, and waits until it listens.
func StartIMAPPeer(cmd *exec.Cmd, password string) (*IMAPPeerProcess, error) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, IMAPPeerPasswordEnv+"="+password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("imap peer: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("imap peer: %w", err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	proc, err := StartProcess("imap peer", cmd)
	if err != nil {
		return nil, err
	}
	pp := &IMAPPeerProcess{proc: proc, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: stderr}
	got := make(chan string, 1)
	go func() {
		if pp.lines.Scan() {
			got <- pp.lines.Text()
		}
		close(got)
	}()
	select {
	case line, ok := <-got:
		if addr, found := strings.CutPrefix(line, peerListening); ok && found {
			pp.Addr = addr
			return pp, nil
		}
		pp.Stop()
		return nil, fmt.Errorf("imap peer did not start (first line %q): %s", line, strings.TrimSpace(stderr.String()))
	case <-time.After(peerStartTimeout):
		pp.Stop()
		return nil, fmt.Errorf("imap peer did not listen within %s", peerStartTimeout)
	}
}

// Sessions asks the peer how many connections are logged in and how many are in IDLE.
func (pp *IMAPPeerProcess) Sessions() (loggedIn, idling int, err error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if _, err := io.WriteString(pp.stdin, peerAskSessions+"\n"); err != nil {
		return 0, 0, fmt.Errorf("ask the imap peer: %w", err)
	}
	if !pp.lines.Scan() {
		return 0, 0, fmt.Errorf("the imap peer did not answer: %v", pp.lines.Err())
	}
	if _, err := fmt.Sscanf(pp.lines.Text(), peerSessionsReply, &loggedIn, &idling); err != nil {
		return 0, 0, fmt.Errorf("imap peer answer %q: %w", pp.lines.Text(), err)
	}
	return loggedIn, idling, nil
}

// Stop closes the peer's standard input, which ends it, and stops its process.
func (pp *IMAPPeerProcess) Stop() error {
	pp.stdin.Close()
	return pp.proc.Stop()
}

// Pid is the peer process's id.
func (pp *IMAPPeerProcess) Pid() int { return pp.proc.cmd.Process.Pid }

// Stderr is what the peer wrote to its standard error so far.
func (pp *IMAPPeerProcess) Stderr() string { return pp.stderr.String() }

// maxPeerStderr bounds what is kept of the peer's standard error.
const maxPeerStderr = 64 << 10

// lockedBuffer keeps the child's standard error, copied by a goroutine of os/exec while
// others may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > maxPeerStderr { // a flood of errors: the first ones say enough
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
