// Package smtp implements the SMTP Sink (RFC 5321; STARTTLS RFC 3207; AUTH RFC 4954 with
// PLAIN RFC 4616, LOGIN, and for OAuth 2.0 XOAUTH2 or OAUTHBEARER RFC 7628) on top of
// emersion/go-smtp's client.
//
// Security "tls" is implicit TLS (RFC 8314, port 465), "starttls" requires STARTTLS, and
// "none" uses STARTTLS when the server offers it and plain text otherwise (loopback test
// servers).
//
// Results are per recipient: a RCPT refusal (RFC 5321 §4.2.5) is collected and the message
// still goes to the accepted recipients; Deliver reports who was refused and the server's
// words. A message with more than Config.MaxRecipients recipients (50 by default) is sent
// in several transactions on one connection, with RSET between transactions (fewer when
// the server announces a lower LIMITS RCPTMAX, RFC 9422).
//
// Connections are reused: a Sink keeps one open connection between sends. Before reusing a
// connection idle longer than Config.NoopAfter (30 s) it sends NOOP, and it reconnects when
// the NOOP or the RSET that starts a reused transaction fails (nothing was sent yet, so
// this cannot duplicate). A connection idle for Config.CloseAfter (5 minutes, RFC 5321
// §4.5.3.2.7's server timeout) is closed with QUIT by a timer.
//
// PIPELINING (RFC 2920): go-smtp's client sends one command and waits for its reply before
// the next (MAIL, each RCPT, DATA), even when the server offers PIPELINING. postroom does
// not pipeline on its own; a transaction costs one round trip per recipient.
//
// Errors are *connector.Error: a 5xx answer is permanent (KindRejected or KindAuth); 4xx
// answers and broken connections are temporary (KindServer, KindNetwork) and the outbox
// retries them. With OAuth 2.0 (Config.Token), a refused token is renewed once
// (Token(ctx, true)) and the login retried once before the error is KindAuth. Exchange
// Online's "535 5.7.139" (SMTP AUTH disabled for the mailbox or the organisation) is not a
// credentials problem: it is KindConfig, with or without OAuth, never retried with a new
// token, and its advice is the Set-CASMailbox / Set-TransportConfig command (AuthOffAdvice).
package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/vault"
)

// Security settings of a mailbox.
const (
	SecurityTLS      = "tls"
	SecurityStartTLS = "starttls"
	SecurityNone     = "none"
)

// Defaults of Config's limits.
const (
	// DefaultMaxRecipients is the most recipients per transaction. RFC 5321 §4.5.3.1.8
	// asks servers to take at least 100; hosted services often take fewer per message
	// (the issue asks for 50), so larger lists are split.
	DefaultMaxRecipients = 50
	// DefaultNoopAfter is the idle time after which a kept connection is checked with NOOP
	// before it is reused (the 30 s).
	DefaultNoopAfter = 30 * time.Second
	// DefaultCloseAfter is the idle time after which a kept connection is closed: RFC 5321
	// §4.5.3.2.7 lets a server drop an idle client after 5 minutes.
	DefaultCloseAfter = 5 * time.Minute
)

// Timeouts. RFC 5321 §4.5.3.2 suggests minutes per step; a send that takes longer than
// sendTimeout as a whole is abandoned and retried.
const (
	dialTimeout = 20 * time.Second
	sendTimeout = 10 * time.Minute
	// commandTimeout bounds the wait for one reply: RFC 5321 §4.5.3.2.1-2 (MAIL, RCPT: 5
	// minutes).
	commandTimeout = 5 * time.Minute
	// quitTimeout bounds the polite QUIT when an idle connection is closed.
	quitTimeout = 10 * time.Second
)

// helloName is the name postroom gives in EHLO; go-smtp's STARTTLS path always says
// "localhost", so the other paths say the same.
const helloName = "localhost"

// Config says how to reach one outbound mailbox's SMTP server.
type Config struct {
	Host     string
	Port     int
	Security string
	Login    string // empty: no AUTH (with Token: required, the account's address)
	Password vault.Secret
	// Token, when set, logs in with OAuth 2.0 (XOAUTH2 when offered, else OAUTHBEARER)
	// as Login instead of the password.
	Token   connector.TokenFunc
	RootCAs *x509.CertPool
	Logger  *slog.Logger

	// MaxRecipients per transaction; 0 means DefaultMaxRecipients.
	MaxRecipients int
	// NoopAfter and CloseAfter are the idle limits of a kept connection; 0 means
	// DefaultNoopAfter and DefaultCloseAfter.
	NoopAfter, CloseAfter time.Duration
}

func (c Config) maxRecipients() int {
	if c.MaxRecipients > 0 {
		return c.MaxRecipients
	}
	return DefaultMaxRecipients
}

func (c Config) noopAfter() time.Duration {
	if c.NoopAfter > 0 {
		return c.NoopAfter
	}
	return DefaultNoopAfter
}

func (c Config) closeAfter() time.Duration {
	if c.CloseAfter > 0 {
		return c.CloseAfter
	}
	return DefaultCloseAfter
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Sink sends through one SMTP server over one kept connection. It is safe for concurrent
// use; sends are serialised on the connection.
type Sink struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	client   *smtp.Client // nil when no connection is kept
	lastUsed time.Time    // end of the last command on client
	idle     *time.Timer  // closes client after CloseAfter idle
}

var _ connector.Sink = (*Sink)(nil)

// New returns a Sink. It does no I/O.
func New(cfg Config) *Sink {
	return &Sink{cfg: cfg, log: cfg.logger()}
}

// Send delivers raw to recipients. It returns nil only when every recipient was accepted.
// When some were refused and others accepted, the error is a permanent *connector.Error
// (KindRejected) wrapping *PartialError: retrying would send the message twice to those
// who got it. Callers that can record per-recipient outcomes use Deliver.
func (s *Sink) Send(ctx context.Context, from string, recipients []string, raw []byte) error {
	res, err := s.Deliver(ctx, from, recipients, raw)
	if err != nil {
		return err
	}
	if len(res.Refused) > 0 {
		return &connector.Error{Kind: connector.KindRejected, Op: "smtp send", Err: &PartialError{Result: res},
			Advice: "the message went to the accepted recipients only: write to the refused ones separately"}
	}
	return nil
}

// Check connects, says EHLO and authenticates on a connection of its own, without sending
// anything.
func (s *Sink) Check(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := s.auth(ctx, c); err != nil {
		return err
	}
	return c.Quit()
}

// Close closes the kept connection, if any, with QUIT. The Sink stays usable: a later
// Send opens a new connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	s.dropLocked(true)
	return nil
}

// session returns a connection ready for a transaction: the kept one when it still
// answers (reset by RSET), else a new authenticated one.
func (s *Sink) session(ctx context.Context) (*smtp.Client, error) {
	if s.client != nil {
		idle := time.Since(s.lastUsed)
		switch {
		case idle >= s.cfg.closeAfter():
			s.dropLocked(true)
		case s.probe(ctx, idle):
			c := s.client
			s.client = nil // in use; Deliver keeps it again when it still works
			return c, nil
		default:
			s.dropLocked(false)
		}
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = s.auth(ctx, c)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// probe checks that the kept connection still works: NOOP after NoopAfter idle, then RSET
// to start from a clean transaction state (RFC 5321 §4.1.1.5).
func (s *Sink) probe(ctx context.Context, idle time.Duration) bool {
	c := s.client
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if idle >= s.cfg.noopAfter() {
		if err := c.Noop(); err != nil {
			s.log.Info("smtp: kept connection did not answer NOOP; reconnecting", slog.String("server", s.cfg.addr()), slog.Any("error", err))
			return false
		}
	}
	if err := c.Reset(); err != nil {
		s.log.Info("smtp: kept connection did not answer RSET; reconnecting", slog.String("server", s.cfg.addr()), slog.Any("error", err))
		return false
	}
	return true
}

// keepLocked keeps c for the next send and (re)arms the idle timer.
func (s *Sink) keepLocked(c *smtp.Client) {
	s.client = c
	s.lastUsed = time.Now()
	if s.idle == nil {
		s.idle = time.AfterFunc(s.cfg.closeAfter(), s.closeIdle)
	} else {
		s.idle.Reset(s.cfg.closeAfter())
	}
}

// closeIdle runs from the idle timer.
func (s *Sink) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || time.Since(s.lastUsed) < s.cfg.closeAfter() {
		return // used meanwhile; that use re-armed the timer
	}
	s.log.Debug("smtp: closing idle connection", slog.String("server", s.cfg.addr()))
	s.dropLocked(true)
}

// dropLocked forgets the kept connection, saying QUIT first when polite.
func (s *Sink) dropLocked(polite bool) {
	c := s.client
	if c == nil {
		return
	}
	s.client = nil
	if polite {
		c.CommandTimeout = quitTimeout
		if err := c.Quit(); err == nil {
			return
		}
	}
	c.Close()
}

func (s *Sink) dial(ctx context.Context) (*smtp.Client, error) {
	addr := s.cfg.addr()
	tlsConfig := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	switch s.cfg.Security {
	case SecurityTLS:
		conn, err := s.connect(ctx, addr, tlsConfig)
		if err != nil {
			return nil, err
		}
		return s.hello(ctx, conn, addr)
	case SecurityNone, "":
		// Plain text unless the server offers STARTTLS. go-smtp cannot start TLS on a
		// client that already said EHLO, so a server that offers it is dialled again.
		conn, err := s.connect(ctx, addr, nil)
		if err != nil {
			return nil, err
		}
		c, err := s.hello(ctx, conn, addr)
		if err != nil {
			return nil, err
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return c, nil
		}
		c.CommandTimeout = quitTimeout
		if err := c.Quit(); err != nil {
			c.Close()
		}
		return s.startTLS(ctx, addr, tlsConfig)
	case SecurityStartTLS:
		return s.startTLS(ctx, addr, tlsConfig)
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "smtp connect", Err: fmt.Errorf("unknown security %q", s.cfg.Security),
			Advice: "set security to tls, starttls or none"}
	}
}

// startTLS connects and upgrades with STARTTLS (RFC 3207), which the server must offer.
func (s *Sink) startTLS(ctx context.Context, addr string, tlsConfig *tls.Config) (*smtp.Client, error) {
	conn, err := s.connect(ctx, addr, nil)
	if err != nil {
		return nil, err
	}
	cut := cutOnCancel(ctx, conn)
	c, err := smtp.NewClientStartTLS(conn, tlsConfig)
	if err != nil {
		cut()
		// go-smtp reports a missing STARTTLS extension only by this text.
		if strings.Contains(err.Error(), "support STARTTLS") {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "smtp starttls", Err: err,
				Advice: fmt.Sprintf("%s does not offer STARTTLS: use security tls (usually port 465) or check the port (587 is usual for STARTTLS)", addr)}
		}
		return nil, connector.ClassifyDial("smtp starttls", addr, err)
	}
	// EHLO again now, so that a TLS handshake failure shows here, under the dial deadline.
	err = c.Hello(helloName)
	if !cut() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, connector.ClassifyDial("smtp starttls", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c.CommandTimeout = commandTimeout
	return c, nil
}

// hello reads the greeting and says EHLO on conn; the end of ctx cuts it short.
func (s *Sink) hello(ctx context.Context, conn net.Conn, addr string) (*smtp.Client, error) {
	cut := cutOnCancel(ctx, conn)
	c := smtp.NewClient(conn)
	err := c.Hello(helloName)
	if !cut() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, connector.ClassifyDial("smtp ehlo", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c.CommandTimeout = commandTimeout
	return c, nil
}

// cutOnCancel makes the end of ctx end conn's current read or write at once (a server that
// accepted the connection and never greets holds the handshake until the dial deadline
// otherwise). The returned function stops that and reports whether ctx had not ended.
func cutOnCancel(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
}

// connect opens the TCP (or, with tlsConfig, TLS) connection with a deadline for the
// greeting and EHLO; the caller clears it.
func (s *Sink) connect(ctx context.Context, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	var conn net.Conn
	var err error
	if tlsConfig != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, connector.ClassifyDial("smtp connect", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	return conn, nil
}

func classifySMTP(op string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Code >= 500 {
			return &connector.Error{Kind: connector.KindRejected, Op: op, Err: err,
				Advice: fmt.Sprintf("the server refused the message for good (%d %s): check the recipients and the From address", se.Code, se.Message)}
		}
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: fmt.Sprintf("the server deferred the message (%d %s); it is retried", se.Code, se.Message)}
	}
	return connector.ClassifyDial(op, "", err)
}
