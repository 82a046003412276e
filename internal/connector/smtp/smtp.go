// Package smtp implements the SMTP Sink (RFC 5321; STARTTLS RFC 3207; AUTH RFC 4954 with
// PLAIN RFC 4616 and LOGIN) on top of emersion/go-smtp's client.
//
// Security "tls" is implicit TLS (RFC 8314, port 465), "starttls" requires STARTTLS, and
// "none" uses STARTTLS when the server offers it and plain text otherwise (loopback test
// servers). A 5xx answer is a permanent *connector.Error (KindRejected or KindAuth); 4xx
// and broken connections are temporary and the outbox retries them.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
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

// Timeouts. RFC 5321 §4.5.3.2 suggests minutes per step; a send that takes longer than
// sendTimeout as a whole is abandoned and retried.
const (
	dialTimeout = 20 * time.Second
	sendTimeout = 5 * time.Minute
)

// helloName is the name postroom gives in EHLO; go-smtp's STARTTLS path always says
// "localhost", so the other paths say the same.
const helloName = "localhost"

// Config says how to reach one outbound mailbox's SMTP server.
type Config struct {
	Host     string
	Port     int
	Security string
	Login    string // empty: no AUTH
	Password vault.Secret
	RootCAs  *x509.CertPool
	Logger   *slog.Logger
}

// Sink sends through one SMTP server, one connection per Send.
type Sink struct {
	cfg Config
}

var _ connector.Sink = (*Sink)(nil)

// New returns a Sink. It does no I/O.
func New(cfg Config) *Sink {
	return &Sink{cfg: cfg}
}

// Send delivers raw to recipients. Errors are *connector.Error.
func (s *Sink) Send(ctx context.Context, from string, recipients []string, raw []byte) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	if err := s.auth(c); err != nil {
		return err
	}
	if err := c.SendMail(from, recipients, bytes.NewReader(raw)); err != nil {
		return classifySMTP("smtp send", err)
	}
	if err := c.Quit(); err != nil {
		s.cfg.logger().Debug("smtp quit after send", slog.Any("error", err))
	}
	return nil
}

// Check connects, says EHLO and authenticates without sending anything.
func (s *Sink) Check(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := s.auth(c); err != nil {
		return err
	}
	return c.Quit()
}

func (s *Sink) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	tlsConfig := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	switch s.cfg.Security {
	case SecurityTLS:
		conn, err := s.connect(ctx, addr, tlsConfig)
		if err != nil {
			return nil, err
		}
		c := smtp.NewClient(conn)
		if err := c.Hello(helloName); err != nil {
			c.Close()
			return nil, connector.ClassifyDial("smtp ehlo", addr, err)
		}
		_ = conn.SetDeadline(time.Time{})
		return c, nil
	case SecurityStartTLS, SecurityNone, "":
		conn, err := s.connect(ctx, addr, nil)
		if err != nil {
			return nil, err
		}
		c, err := smtp.NewClientStartTLS(conn, tlsConfig)
		if err == nil {
			_ = conn.SetDeadline(time.Time{})
			return c, nil
		}
		// go-smtp reports a missing STARTTLS extension only by this text.
		if !strings.Contains(err.Error(), "support STARTTLS") {
			return nil, connector.ClassifyDial("smtp starttls", addr, err)
		}
		if s.cfg.Security == SecurityStartTLS {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "smtp starttls", Err: err,
				Advice: fmt.Sprintf("%s does not offer STARTTLS: use security tls (usually port 465) or check the port (587 is usual for STARTTLS)", addr)}
		}
		// Security none and the server has no STARTTLS: talk plain text.
		conn, err = s.connect(ctx, addr, nil)
		if err != nil {
			return nil, err
		}
		c = smtp.NewClient(conn)
		if err := c.Hello(helloName); err != nil {
			c.Close()
			return nil, connector.ClassifyDial("smtp ehlo", addr, err)
		}
		_ = conn.SetDeadline(time.Time{})
		return c, nil
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "smtp connect", Err: fmt.Errorf("unknown security %q", s.cfg.Security),
			Advice: "set security to tls, starttls or none"}
	}
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

func (s *Sink) auth(c *smtp.Client) error {
	if s.cfg.Login == "" {
		return nil
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("server offers no AUTH"),
			Advice: "the server does not offer authentication on this connection: use STARTTLS or TLS, or leave the login empty if it relays without one"}
	}
	var client sasl.Client
	switch {
	case c.SupportsAuth(sasl.Plain):
		client = sasl.NewPlainClient("", s.cfg.Login, s.cfg.Password.Reveal())
	case c.SupportsAuth(sasl.Login):
		client = sasl.NewLoginClient(s.cfg.Login, s.cfg.Password.Reveal())
	default:
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("no common mechanism"),
			Advice: "the server supports neither AUTH PLAIN nor LOGIN: use OAuth 2.0 (a later postroom version) or another submission server"}
	}
	if err := c.Auth(client); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return &connector.Error{Kind: connector.KindAuth, Op: "smtp auth", Err: err,
				Advice: fmt.Sprintf("the server refused the login %q: check the login name and password of this outbound mailbox", s.cfg.Login)}
		}
		return classifySMTP("smtp auth", err)
	}
	return nil
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

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Close releases nothing: each Send uses its own connection.
func (s *Sink) Close() error { return nil }
