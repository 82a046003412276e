package smtp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/smtp"
)

func peerConfig(t *testing.T, p *peer) smtp.Config {
	return smtp.Config{Host: "127.0.0.1", Port: port(t, p.Addr), Security: smtp.SecurityNone}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRefusedRecipients: a recipient the server refuses does not stop the message for the
// others; the result names who was refused and the server's words.
func TestRefusedRecipients(t *testing.T) {
	p := startPeer(t)
	p.Refuse("bob@example.net", 550, gosmtp.EnhancedCode{5, 1, 1}, "no such user")
	p.Refuse("dan@example.net", 450, gosmtp.EnhancedCode{4, 2, 1}, "mailbox busy, try later")
	sink := smtp.New(peerConfig(t, p))
	defer sink.Close()

	res, err := sink.Deliver(ctxT(t), user, []string{"ana@example.net", "bob@example.net", "carol@example.net", "dan@example.net"}, []byte(raw))
	if err != nil {
		t.Fatalf("deliver with some refused recipients: %v", err)
	}
	if strings.Join(res.Accepted, ",") != "ana@example.net,carol@example.net" {
		t.Errorf("accepted %v", res.Accepted)
	}
	want := "bob@example.net: 550 5.1.1 no such user; dan@example.net: 450 4.2.1 mailbox busy, try later"
	if res.Summary() != want {
		t.Errorf("summary %q, want %q", res.Summary(), want)
	}
	if !res.Temporary() || res.Refused[0].Temporary() || !res.Refused[1].Temporary() {
		t.Errorf("temporary: result %v, bob %v, dan %v", res.Temporary(), res.Refused[0].Temporary(), res.Refused[1].Temporary())
	}
	got := p.Transactions()
	if len(got) != 1 || strings.Join(got[0].Recipients, ",") != "ana@example.net,carol@example.net" || !strings.Contains(string(got[0].Data), "Hi Bob.") {
		t.Fatalf("peer received %+v", got)
	}

	// Send (the connector.Sink contract) does not report a partial delivery as success,
	// and marks it permanent: retrying would send it twice to ana and carol.
	err = sink.Send(ctxT(t), user, []string{"ana@example.net", "bob@example.net"}, []byte(raw))
	var pe *smtp.PartialError
	if !errors.As(err, &pe) || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "bob@example.net: 550 5.1.1 no such user") {
		t.Errorf("Send with a refused recipient: %v", err)
	}
}

// TestEveryRecipientRefused: 5xx for all is a permanent failure with the server's words;
// a 4xx among them makes it temporary.
func TestEveryRecipientRefused(t *testing.T) {
	p := startPeer(t)
	p.Refuse("bob@example.net", 550, gosmtp.EnhancedCode{5, 1, 1}, "no such user")
	p.Refuse("carol@example.net", 553, gosmtp.EnhancedCode{5, 1, 3}, "bad address syntax")
	p.Refuse("dan@example.net", 451, gosmtp.EnhancedCode{4, 3, 0}, "greylisted, come back later")
	sink := smtp.New(peerConfig(t, p))
	defer sink.Close()

	tests := []struct {
		rcpts []string
		kind  connector.Kind
		text  string
	}{
		{[]string{"bob@example.net", "carol@example.net"}, connector.KindRejected,
			"every recipient was refused: bob@example.net: 550 5.1.1 no such user; carol@example.net: 553 5.1.3 bad address syntax"},
		{[]string{"bob@example.net", "dan@example.net"}, connector.KindServer,
			"dan@example.net: 451 4.3.0 greylisted, come back later"},
	}
	for _, tt := range tests {
		res, err := sink.Deliver(ctxT(t), user, tt.rcpts, []byte(raw))
		var ce *connector.Error
		var re *smtp.RefusedError
		if !errors.As(err, &ce) || !errors.As(err, &re) || ce.Kind != tt.kind || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%v: got %v, want kind %s with %q", tt.rcpts, err, tt.kind, tt.text)
		}
		if len(res.Accepted) != 0 || len(res.Refused) != len(tt.rcpts) {
			t.Errorf("%v: result %+v", tt.rcpts, res)
		}
	}
	if n := len(p.Transactions()); n != 0 {
		t.Errorf("the peer received %d messages", n)
	}
	// The refusals did not spoil the kept connection.
	if err := sink.Send(ctxT(t), user, []string{"ana@example.net"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestManyRecipientsAreSplit: 120 recipients go out in 3 transactions of at most 50 on one
// connection, each recipient exactly once.
func TestManyRecipientsAreSplit(t *testing.T) {
	p := startPeer(t)
	sink := smtp.New(peerConfig(t, p))
	defer sink.Close()
	var rcpts []string
	for i := range 120 {
		rcpts = append(rcpts, fmt.Sprintf("r%03d@example.net", i))
	}
	res, err := sink.Deliver(ctxT(t), user, rcpts, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 120 || len(res.Refused) != 0 || res.Transactions != 3 {
		t.Errorf("result: %d accepted, %d refused, %d transactions", len(res.Accepted), len(res.Refused), res.Transactions)
	}
	got := p.Transactions()
	seen := map[string]int{}
	var sizes []int
	for _, tr := range got {
		sizes = append(sizes, len(tr.Recipients))
		for _, r := range tr.Recipients {
			seen[r]++
		}
	}
	if fmt.Sprint(sizes) != "[50 50 20]" {
		t.Errorf("transaction sizes %v, want [50 50 20]", sizes)
	}
	for _, r := range rcpts {
		if seen[r] != 1 {
			t.Errorf("%s received %d copies", r, seen[r])
		}
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}

	// A configured lower limit.
	cfg := peerConfig(t, p)
	cfg.MaxRecipients = 7
	small := smtp.New(cfg)
	defer small.Close()
	if res, err := small.Deliver(ctxT(t), user, rcpts[:15], []byte(raw)); err != nil || res.Transactions != 3 {
		t.Errorf("15 recipients at most 7 per transaction: %d transactions, %v", res.Transactions, err)
	}
}

// TestConnectionReuse: sends share one connection; after NoopAfter idle it is checked with
// NOOP, a dead one is replaced, and after CloseAfter idle it is closed.
func TestConnectionReuse(t *testing.T) {
	send := func(t *testing.T, s *smtp.Sink) {
		t.Helper()
		if err := s.Send(ctxT(t), user, []string{"bob@example.net"}, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("three sends, one connection", func(t *testing.T) {
		p := startPeer(t)
		s := smtp.New(peerConfig(t, p))
		for range 3 {
			send(t, s)
		}
		if n, noops := p.Connections(), p.Commands("NOOP"); n != 1 || noops != 0 {
			t.Errorf("%d connections and %d NOOPs, want 1 and 0", n, noops)
		}
		if n := len(p.Transactions()); n != 3 {
			t.Errorf("the peer received %d messages", n)
		}
		s.Close()
		p.WaitClosed(t)
		if p.Commands("QUIT") != 1 {
			t.Error("Close did not say QUIT")
		}
	})
	t.Run("idle beyond NoopAfter: NOOP, then reuse", func(t *testing.T) {
		p := startPeer(t)
		cfg := peerConfig(t, p)
		cfg.NoopAfter = time.Nanosecond // every reuse comes after a longer idle
		s := smtp.New(cfg)
		defer s.Close()
		send(t, s)
		send(t, s)
		if n, noops := p.Connections(), p.Commands("NOOP"); n != 1 || noops != 1 {
			t.Errorf("%d connections and %d NOOPs, want 1 and 1", n, noops)
		}
	})
	t.Run("dropped by the server: reconnect", func(t *testing.T) {
		p := startPeer(t)
		cfg := peerConfig(t, p)
		cfg.NoopAfter = time.Nanosecond
		s := smtp.New(cfg)
		defer s.Close()
		send(t, s)
		p.DropAll()
		send(t, s)
		if n := p.Connections(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
		if n := len(p.Transactions()); n != 2 {
			t.Errorf("the peer received %d messages, want 2", n)
		}
	})
	t.Run("dropped, no NOOP due: the RSET finds out", func(t *testing.T) {
		p := startPeer(t)
		s := smtp.New(peerConfig(t, p))
		defer s.Close()
		send(t, s)
		p.DropAll()
		send(t, s)
		if n, m := p.Connections(), len(p.Transactions()); n != 2 || m != 2 {
			t.Errorf("%d connections and %d messages, want 2 and 2", n, m)
		}
	})
	t.Run("idle beyond CloseAfter: closed, next send connects anew", func(t *testing.T) {
		p := startPeer(t)
		cfg := peerConfig(t, p)
		cfg.CloseAfter = 50 * time.Millisecond
		s := smtp.New(cfg)
		defer s.Close()
		send(t, s)
		p.WaitClosed(t) // the idle timer closed it
		if p.Commands("QUIT") != 1 {
			t.Error("the idle connection was not closed with QUIT")
		}
		send(t, s)
		if n := p.Connections(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
}

// TestServerLimitsRecipients: a server announcing LIMITS RCPTMAX (RFC 9422) below the
// configured limit gets smaller transactions.
func TestServerLimitsRecipients(t *testing.T) {
	p := startPeer(t, func(srv *gosmtp.Server) { srv.MaxRecipients = 4 })
	s := smtp.New(peerConfig(t, p))
	defer s.Close()
	rcpts := []string{"a@example.net", "b@example.net", "c@example.net", "d@example.net", "e@example.net", "f@example.net"}
	res, err := s.Deliver(ctxT(t), user, rcpts, []byte(raw))
	if err != nil || len(res.Accepted) != 6 || res.Transactions != 2 {
		t.Fatalf("6 recipients with RCPTMAX=4: %+v %v", res, err)
	}
}
