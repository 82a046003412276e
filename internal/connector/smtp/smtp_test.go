package smtp_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const user, password = "alice@example.test", "alice-pw"

func port(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func setup(t *testing.T) (*testenv.SMTPSink, smtp.Config) {
	t.Helper()
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	d.AddUser(t, user, password)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	return sink, smtp.Config{Host: "localhost", Port: port(t, d.SubmissionAddr), Security: smtp.SecurityStartTLS,
		Login: user, Password: vault.NewSecret(password), RootCAs: roots}
}

const raw = "From: alice@example.test\r\nTo: bob@example.net\r\nSubject: hello\r\nMessage-ID: <hello-1@example.test>\r\n\r\nHi Bob.\r\n"

// TestSendThroughSubmission: STARTTLS, AUTH PLAIN, then the message reaches the peer with
// the envelope and content intact.
func TestSendThroughSubmission(t *testing.T) {
	sink, cfg := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := smtp.New(cfg).Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := smtp.New(cfg).Send(ctx, user, []string{"bob@example.net", "carol@example.net"}, []byte(raw)); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := sink.Wait(t, 1, time.Minute)[0]
	if got.MailFrom != user || strings.Join(got.Rcpts, ",") != "bob@example.net,carol@example.net" {
		t.Errorf("envelope %q -> %v", got.MailFrom, got.Rcpts)
	}
	if !strings.Contains(string(got.Data), "Message-ID: <hello-1@example.test>") || !strings.Contains(string(got.Data), "Hi Bob.") {
		t.Errorf("relayed message lost content:\n%s", got.Data)
	}
}

func TestSendErrorsCarryAdvice(t *testing.T) {
	sink, cfg := setup(t)
	tests := []struct {
		name   string
		cfg    smtp.Config
		kind   connector.Kind
		advice string
	}{
		{"wrong password", func() smtp.Config { c := cfg; c.Password = vault.NewSecret("nope"); return c }(), connector.KindAuth, "check the login name and password"},
		{"starttls required but not offered", smtp.Config{Host: "127.0.0.1", Port: port(t, sink.Addr), Security: smtp.SecurityStartTLS}, connector.KindConfig, "does not offer STARTTLS"},
		{"implicit tls on a plain port", func() smtp.Config { c := cfg; c.Security = smtp.SecurityTLS; return c }(), connector.KindTLS, "does not speak TLS on this port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := smtp.New(tt.cfg).Send(ctx, user, []string{"bob@example.net"}, []byte(raw))
			var ce *connector.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *connector.Error", err)
			}
			if ce.Kind != tt.kind || !strings.Contains(ce.Advice, tt.advice) {
				t.Errorf("got kind %q advice %q, want %q containing %q", ce.Kind, ce.Advice, tt.kind, tt.advice)
			}
		})
	}
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages reached the peer through failing configurations", n)
	}
}

// TestPlainPeerWithoutAuth: a loopback peer without TLS or AUTH (security none, no login).
func TestPlainPeerWithoutAuth(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	cfg := smtp.Config{Host: "127.0.0.1", Port: port(t, sink.Addr), Security: smtp.SecurityNone}
	if err := smtp.New(cfg).Send(context.Background(), "a@example.test", []string{"b@example.net"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if got := sink.Wait(t, 1, time.Minute); len(got) != 1 {
		t.Fatalf("peer got %d messages", len(got))
	}
}

// TestSubmissionKeepsConnection: against Dovecot submission, a Sink logs in once for
// several sends; a message with more recipients than MaxRecipients goes out in several
// transactions on the same authenticated connection (RSET, then EHLO again after AUTH).
func TestSubmissionKeepsConnection(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	d.AddUser(t, user, password)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	cfg := smtp.Config{Host: "localhost", Port: port(t, d.SubmissionAddr), Security: smtp.SecurityStartTLS,
		Login: user, Password: vault.NewSecret(password), RootCAs: roots,
		MaxRecipients: 2, NoopAfter: time.Nanosecond}
	s := smtp.New(cfg)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.Deliver(ctx, user, []string{"a@example.net", "b@example.net", "c@example.net"}, []byte(raw))
	if err != nil || res.Transactions != 2 || len(res.Accepted) != 3 {
		t.Fatalf("first send: %+v %v", res, err)
	}
	if err := s.Send(ctx, user, []string{"d@example.net"}, []byte(raw)); err != nil {
		t.Fatalf("second send on the kept connection: %v", err)
	}
	got := sink.Wait(t, 3, time.Minute)
	var rcpts []string
	for _, m := range got {
		rcpts = append(rcpts, m.Rcpts...)
	}
	slices.Sort(rcpts)
	if strings.Join(rcpts, ",") != "a@example.net,b@example.net,c@example.net,d@example.net" {
		t.Errorf("relayed to %v", rcpts)
	}
	if log := d.WaitLog(t, "Login: user=<"+user+">"); strings.Count(log, "Login: user=<"+user+">") != 1 {
		t.Errorf("%d logins for 2 sends and 3 transactions, want 1:\n%s", strings.Count(log, "Login: user=<"+user+">"), log)
	}
}
