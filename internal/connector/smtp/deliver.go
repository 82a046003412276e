package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
)

// Result is the outcome of a delivery, per recipient.
type Result struct {
	// Accepted lists the recipients the server took the message for.
	Accepted []string
	// Refused lists the others, in the order they were given.
	Refused []Refusal
	// Transactions is how many SMTP transactions (MAIL ... DATA) were started.
	Transactions int
}

// Summary lists the refusals for people: "bob@x: 550 5.1.1 no such user; ...".
func (r Result) Summary() string {
	parts := make([]string, len(r.Refused))
	for i, f := range r.Refused {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// Temporary reports whether some refusal may go away on a later attempt (4xx or a broken
// connection).
func (r Result) Temporary() bool {
	return slices.ContainsFunc(r.Refused, Refusal.Temporary)
}

// Refusal is one recipient the message did not reach.
type Refusal struct {
	Recipient string
	// Code is the server's reply code (RCPT, MAIL or DATA); 0 when the connection failed.
	Code int
	// Text is the server's words with the enhanced status code (RFC 3463) when given, or
	// what went wrong with the connection.
	Text string
}

// Temporary reports whether a later attempt may succeed: a 4xx reply or a lost connection.
func (r Refusal) Temporary() bool { return r.Code < 500 }

func (r Refusal) String() string {
	if r.Code == 0 {
		return r.Recipient + ": " + r.Text
	}
	return fmt.Sprintf("%s: %d %s", r.Recipient, r.Code, r.Text)
}

// PartialError says that a message reached some recipients but not all.
type PartialError struct {
	Result Result
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("sent to %d of %d recipients; not to %s",
		len(e.Result.Accepted), len(e.Result.Accepted)+len(e.Result.Refused), e.Result.Summary())
}

// RefusedError says that every recipient was refused.
type RefusedError struct {
	Refused []Refusal
}

func (e *RefusedError) Error() string {
	return "every recipient was refused: " + Result{Refused: e.Refused}.Summary()
}

// Deliver sends raw from from to recipients, at most MaxRecipients per transaction, on the
// kept connection when it still works.
//
// The error is non-nil only when the message reached nobody; it is a *connector.Error
// (with *RefusedError inside when every recipient was refused: KindRejected when all
// refusals are 5xx, else KindServer). With a nil error at least one recipient was accepted
// and Result.Refused lists the others.
func (s *Sink) Deliver(ctx context.Context, from string, recipients []string, raw []byte) (Result, error) {
	if len(recipients) == 0 {
		return Result{}, &connector.Error{Kind: connector.KindConfig, Op: "smtp send", Err: errors.New("no recipients"),
			Advice: "the message has no recipient"}
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()

	c, err := s.session(ctx)
	if err != nil {
		return Result{}, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	res, broken, firstErr := s.transactions(c, from, recipients, raw)
	if !stop() {
		broken = true
	}
	if broken {
		c.Close()
	} else {
		s.keepLocked(c)
	}

	switch {
	case len(res.Accepted) > 0:
		if len(res.Refused) > 0 {
			s.log.Debug("smtp: some recipients refused", slog.String("server", s.cfg.addr()),
				slog.Int("accepted", len(res.Accepted)), slog.String("refused", res.Summary()))
		}
		return res, nil
	case firstErr != nil:
		// Nothing went out because of the connection, MAIL FROM or DATA: report that.
		return res, firstErr
	default:
		return res, refusedError(res.Refused)
	}
}

// transactions sends one transaction per chunk of recipients. broken says the connection
// must not be reused. firstErr is the classified error of the first failure that was not a
// recipient's own refusal (connection, MAIL FROM, DATA).
func (s *Sink) transactions(c *smtp.Client, from string, recipients []string, raw []byte) (res Result, broken bool, firstErr error) {
	opts := &smtp.MailOptions{
		Size: int64(len(raw)), // RFC 1870: a server with a size limit refuses at MAIL
		// A non-ASCII address needs SMTPUTF8 (RFC 6531).
		UTF8: !isASCII(from) || slices.ContainsFunc(recipients, func(r string) bool { return !isASCII(r) }),
	}
	max := s.cfg.maxRecipients()
	if n := serverMaxRecipients(c); n > 0 && n < max {
		max = n
	}
	for start := 0; start < len(recipients); start += max {
		chunk := recipients[start:min(start+max, len(recipients))]
		if start > 0 {
			// RFC 5321 §4.1.1.5: start each transaction from a clean state (a kept
			// connection was reset by session already).
			if err := c.Reset(); err != nil {
				refuseAll(&res, recipients[start:], err)
				return res, true, firstOf(firstErr, classifySMTP("smtp rset", err))
			}
		}
		res.Transactions++
		accepted, refused, err := transaction(c, from, chunk, raw, opts)
		res.Accepted = append(res.Accepted, accepted...)
		res.Refused = append(res.Refused, refused...)
		if err != nil {
			firstErr = firstOf(firstErr, classifySMTP("smtp send", err))
			if connectionLost(err) {
				refuseAll(&res, recipients[start+len(chunk):], err)
				return res, true, firstErr
			}
		}
	}
	return res, false, firstErr
}

// transaction runs MAIL, RCPT per recipient, DATA. err is set when the transaction failed
// as a whole (MAIL or DATA refused, connection lost); the chunk's recipients are then in
// refused with that reason.
func transaction(c *smtp.Client, from string, rcpts []string, raw []byte, opts *smtp.MailOptions) (accepted []string, refused []Refusal, err error) {
	if err := c.Mail(from, opts); err != nil {
		return nil, refusals(rcpts, err), err
	}
	for i, r := range rcpts {
		err := c.Rcpt(r, nil)
		if err == nil {
			accepted = append(accepted, r)
			continue
		}
		if connectionLost(err) {
			return nil, append(refusals(accepted, err), refusals(rcpts[i:], err)...), err
		}
		refused = append(refused, refusal(r, err))
	}
	if len(accepted) == 0 {
		return nil, refused, nil // nothing to send: the next transaction starts with RSET
	}
	w, err := c.Data()
	if err != nil {
		return nil, append(refused, refusals(accepted, err)...), err
	}
	if _, err := io.Copy(w, bytes.NewReader(raw)); err != nil {
		w.Close()
		return nil, append(refused, refusals(accepted, err)...), err
	}
	if err := w.Close(); err != nil {
		return nil, append(refused, refusals(accepted, err)...), err
	}
	return accepted, refused, nil
}

// refusedError is the error of a delivery that every recipient refused.
func refusedError(refused []Refusal) error {
	err := &RefusedError{Refused: refused}
	if (Result{Refused: refused}).Temporary() {
		return &connector.Error{Kind: connector.KindServer, Op: "smtp send", Err: err,
			Advice: "the server deferred some recipients; the message is retried"}
	}
	return &connector.Error{Kind: connector.KindRejected, Op: "smtp send", Err: err,
		Advice: "the server refused every recipient for good: check the addresses"}
}

func refusal(rcpt string, err error) Refusal {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		text := se.Message
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			text = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		}
		return Refusal{Recipient: rcpt, Code: se.Code, Text: text}
	}
	return Refusal{Recipient: rcpt, Text: "not sent: connection failed: " + err.Error()}
}

func refusals(rcpts []string, err error) []Refusal {
	out := make([]Refusal, len(rcpts))
	for i, r := range rcpts {
		out[i] = refusal(r, err)
	}
	return out
}

func refuseAll(res *Result, rcpts []string, err error) {
	res.Refused = append(res.Refused, refusals(rcpts, err)...)
}

// connectionLost reports whether err leaves the connection unusable: anything but an SMTP
// reply, or 421 (RFC 5321 §3.8: the server is closing the connection).
func connectionLost(err error) bool {
	var se *smtp.SMTPError
	return !errors.As(err, &se) || se.Code == 421
}

// serverMaxRecipients is the RCPTMAX the server announces (LIMITS, RFC 9422), 0 when none.
func serverMaxRecipients(c *smtp.Client) int {
	ok, params := c.Extension("LIMITS")
	if !ok {
		return 0
	}
	for _, f := range strings.Fields(params) {
		if v, found := strings.CutPrefix(strings.ToUpper(f), "RCPTMAX="); found {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
