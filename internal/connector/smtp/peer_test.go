package smtp_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// peer is a small real SMTP server (go-smtp's server side) on 127.0.0.1 that refuses chosen
// recipients, records every accepted transaction and every command line it read, and counts
// connections.
type peer struct {
	Addr string

	mu       sync.Mutex
	refuse   map[string]*gosmtp.SMTPError // recipient → the RCPT reply
	accepted []transaction
	conns    []*peerConn
	// oauthToken, when set, makes the peer offer only AUTH OAUTHBEARER and accept only this
	// token; a wrong one is refused with 535.
	oauthToken string
	oauthSeen  []string // every token presented
}

type transaction struct {
	From       string
	Recipients []string
	Data       []byte
}

// peerConn records what one client connection sent.
type peerConn struct {
	net.Conn
	mu     sync.Mutex
	read   bytes.Buffer
	closed bool
}

func (c *peerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read.Write(b[:n])
	if err != nil {
		c.closed = true
	}
	c.mu.Unlock()
	return n, err
}

func (c *peerConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

type peerListener struct {
	net.Listener
	p *peer
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peerConn{Conn: c}
	l.p.mu.Lock()
	l.p.conns = append(l.p.conns, pc)
	l.p.mu.Unlock()
	return pc, nil
}

// startPeer starts a peer; configure adjusts the server before it serves.
func startPeer(t *testing.T, configure ...func(*gosmtp.Server)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{Addr: ln.Addr().String(), refuse: map[string]*gosmtp.SMTPError{}}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &peerSession{p: p}, nil }))
	srv.Domain = "peer.example.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	for _, f := range configure {
		f(srv)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(peerListener{Listener: ln, p: p}); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return p
}

// Refuse makes RCPT TO:<rcpt> answer code enhanced text.
func (p *peer) Refuse(rcpt string, code int, enhanced gosmtp.EnhancedCode, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse[rcpt] = &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

func (p *peer) AcceptAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = map[string]*gosmtp.SMTPError{}
}

func (p *peer) Transactions() []transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]transaction(nil), p.accepted...)
}

// Connections is how many connections were accepted so far.
func (p *peer) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Commands counts the command lines equal to cmd (say "NOOP") over all connections.
func (p *peer) Commands(cmd string) int {
	p.mu.Lock()
	conns := append([]*peerConn(nil), p.conns...)
	p.mu.Unlock()
	n := 0
	for _, c := range conns {
		c.mu.Lock()
		sc := bufio.NewScanner(bytes.NewReader(c.read.Bytes()))
		for sc.Scan() {
			if strings.EqualFold(strings.TrimSpace(sc.Text()), cmd) {
				n++
			}
		}
		c.mu.Unlock()
	}
	return n
}

// DropAll closes every open connection from the server side, as a server that times its
// clients out does.
func (p *peer) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// WaitClosed waits until the client has closed every connection.
func (p *peer) WaitClosed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		open := 0
		p.mu.Lock()
		for _, c := range p.conns {
			c.mu.Lock()
			if !c.closed {
				open++
			}
			c.mu.Unlock()
		}
		p.mu.Unlock()
		if open == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the client did not close its idle connection")
}

type peerSession struct {
	p     *peer
	from  string
	rcpts []string
}

func (s *peerSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *peerSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.p.mu.Lock()
	err := s.p.refuse[to]
	s.p.mu.Unlock()
	if err != nil {
		return err
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	s.p.accepted = append(s.p.accepted, transaction{From: s.from, Recipients: s.rcpts, Data: b})
	s.p.mu.Unlock()
	return nil
}

func (s *peerSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *peerSession) Logout() error { return nil }

// AuthMechanisms offers OAUTHBEARER only when the peer expects a token.
func (s *peerSession) AuthMechanisms() []string {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.oauthToken == "" {
		return nil
	}
	return []string{sasl.OAuthBearer}
}

func (s *peerSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.OAuthBearer {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return authFailed{sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		s.p.mu.Lock()
		defer s.p.mu.Unlock()
		s.p.oauthSeen = append(s.p.oauthSeen, opts.Token)
		if opts.Token != s.p.oauthToken {
			return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
		}
		return nil
	})}, nil
}

// authFailed makes a refused OAUTHBEARER exchange end with 535, as real servers do (go-smtp
// would answer 454 for a plain error).
type authFailed struct{ sasl.Server }

func (a authFailed) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := a.Server.Next(response)
	var oe *sasl.OAuthBearerError
	if errors.As(err, &oe) {
		err = gosmtp.ErrAuthFailed
	}
	return challenge, done, err
}
