package demo

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	// maxMessageBytes is the largest message the demo SMTP server accepts
	// (SIZE, RFC 1870): 25 MB, the common limit of hosted mail services.
	maxMessageBytes = 25 << 20
	// maxRecipients per message: RFC 5321 §4.5.3.1.8 asks servers to accept
	// at least 100.
	maxRecipients = 100
	// smtpReadTimeout bounds the wait for the client's next command or data
	// chunk: the longest server timeout of RFC 5321 §4.5.3.2.7 (10 minutes).
	smtpReadTimeout = 10 * time.Minute
	// smtpWriteTimeout bounds writing one reply: RFC 5321 §4.5.3.2 (5 minutes).
	smtpWriteTimeout = 5 * time.Minute
	// queueIDLength is the length of the id in our Received header.
	queueIDLength = 12
)

// newSMTPServer returns an SMTP server that delivers into the in-memory
// mailboxes of be. It accepts mail without authentication; AUTH PLAIN is
// offered without TLS because the demo runs on loopback.
func newSMTPServer(be *smtpBackend, log *slog.Logger) *smtp.Server {
	srv := smtp.NewServer(be)
	srv.Domain = serverHostname
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = maxRecipients
	srv.ReadTimeout = smtpReadTimeout
	srv.WriteTimeout = smtpWriteTimeout
	srv.AllowInsecureAuth = true
	srv.ErrorLog = printfLogger{log}
	return srv
}

// smtpBackend routes accepted mail: recipients at demoDomain to the support
// INBOX, all others to the customers INBOX.
type smtpBackend struct {
	store    *mailStore
	password string
	log      *slog.Logger
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	remote := c.Conn().RemoteAddr()
	b.log.Debug("smtp connection", slog.String("remote_addr", remote.String()), slog.String("helo", c.Hostname()))
	return &smtpSession{backend: b, remote: remote, helo: c.Hostname()}, nil
}

// smtpSession is one SMTP connection; its envelope is reset after each
// message (RSET or end of DATA).
type smtpSession struct {
	backend  *smtpBackend
	remote   net.Addr
	helo     string
	authUser string // empty unless AUTH succeeded

	from  string
	rcpts []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

// AuthMechanisms offers PLAIN only (RFC 4616).
func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth accepts SendLogin and SupportLogin with the demo password, so an
// outbound mailbox configured with either login can send.
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		known := strings.EqualFold(username, SendLogin) || strings.EqualFold(username, SupportLogin)
		samePassword := subtle.ConstantTimeCompare([]byte(password), []byte(s.backend.password)) == 1
		if !known || !samePassword || (identity != "" && identity != username) {
			s.backend.log.Warn("smtp auth failed", slog.String("remote_addr", s.remote.String()), slog.String("username", username))
			return smtp.ErrAuthFailed
		}
		s.authUser = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.Contains(to, "@") {
		return &smtp.SMTPError{
			Code:         550,
			EnhancedCode: smtp.EnhancedCode{5, 1, 3}, // RFC 3463: bad destination mailbox address syntax
			Message:      "recipient must be a full address (name@domain)",
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data stores the message once in each INBOX that has a recipient (one
// mailbox is one delivery, however many of its addresses were named).
func (s *smtpSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		var smtpErr *smtp.SMTPError
		if errors.As(err, &smtpErr) { // ErrDataTooLarge
			return smtpErr
		}
		return fmt.Errorf("smtp read data: %w", err)
	}
	body = toCRLF(body)
	if hasEmptyMultipart(imapserver.ExtractBodyStructure(bytes.NewReader(body))) {
		s.backend.log.Warn("smtp message has a multipart without readable parts; IMAP clients that FETCH BODYSTRUCTURE will be disconnected (go-imap imapmemserver limitation), BODY[] still works",
			slog.String("from", s.from))
	}

	var toSupport, toCustomers []string
	for _, rcpt := range s.rcpts {
		if isDemoDomain(rcpt) {
			toSupport = append(toSupport, rcpt)
		} else {
			toCustomers = append(toCustomers, rcpt)
		}
	}
	now := time.Now()
	queueID := rand.Text()[:queueIDLength]
	for _, d := range []struct {
		mailbox string
		rcpts   []string
	}{
		{SupportLogin, toSupport},
		{CustomersLogin, toCustomers},
	} {
		if len(d.rcpts) == 0 {
			continue
		}
		raw := append(s.traceHeaders(queueID, d.rcpts, now), body...)
		data, err := s.backend.store.deliver(d.mailbox, raw, now)
		if err != nil {
			s.backend.log.Error("smtp delivery failed", slog.String("mailbox", d.mailbox), slog.Any("error", err))
			return &smtp.SMTPError{
				Code:         451,
				EnhancedCode: smtp.EnhancedCode{4, 3, 0}, // RFC 3463: other mail system problem
				Message:      "could not store the message, try again",
			}
		}
		s.backend.log.Info("demo mail delivered",
			slog.String("mailbox", d.mailbox), slog.Uint64("uid", uint64(data.UID)),
			slog.String("queue_id", queueID), slog.String("from", s.from),
			slog.Int("recipients", len(d.rcpts)), slog.Int("size", len(raw)))
	}
	return nil
}

// traceHeaders returns the Return-Path and Received fields a delivering
// server prepends (RFC 5321 §4.4). The "for" clause is only written for a
// single recipient, so Bcc recipients stay hidden.
func (s *smtpSession) traceHeaders(queueID string, rcpts []string, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", printable(s.from))
	with := "ESMTP"
	if s.authUser != "" {
		with = "ESMTPA" // RFC 3848
	}
	host := s.remote.String()
	if tcp, ok := s.remote.(*net.TCPAddr); ok {
		host = tcp.IP.String()
	}
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (postroom demo) with %s id %s",
		printable(s.helo), host, serverHostname, with, queueID)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", printable(rcpts[0]))
	}
	fmt.Fprintf(&b, "; %s\r\n", now.Format(time.RFC1123Z))
	return b.Bytes()
}

func (s *smtpSession) Reset() {
	s.from = ""
	s.rcpts = nil
}

func (s *smtpSession) Logout() error { return nil }

// hasEmptyMultipart reports whether bs holds a multipart with no child
// (a missing or wrong boundary). imapserver panics when it has to write such
// a BODYSTRUCTURE and drops the connection (go-imap v2.0.0-beta.8).
func hasEmptyMultipart(bs imap.BodyStructure) bool {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(bs.Children) == 0 {
			return true
		}
		return slices.ContainsFunc(bs.Children, hasEmptyMultipart)
	case *imap.BodyStructureSinglePart:
		return bs.MessageRFC822 != nil && hasEmptyMultipart(bs.MessageRFC822.BodyStructure)
	}
	return false
}

// isDemoDomain reports whether addr (local@domain) belongs to demoDomain.
func isDemoDomain(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	return at >= 0 && strings.EqualFold(addr[at+1:], demoDomain)
}

// printable keeps client-supplied text from breaking the header it is
// written into: anything but visible ASCII becomes '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return '?'
		}
		return r
	}, s)
}
