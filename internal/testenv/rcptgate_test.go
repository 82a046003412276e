package testenv

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestRcptGatePerRecipient: in one transaction the gate refuses the recipients it has an
// answer for, with exactly that answer, and smtp-sink receives the message for the others
// only; an answer taken back lets the recipient through again.
func TestRcptGatePerRecipient(t *testing.T) {
	sink := StartSMTPSink(t)
	gate := sink.StartRcptGate(t)
	gate.Answer(t, "Bob@Example.org", "452 4.2.2 Mailbox full")
	gate.Answer(t, "carol@example.org", "550 5.1.1 No such user")

	c, err := smtp.Dial(gate.Addr)
	if err != nil {
		t.Fatalf("dial the gate: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO through the gate: %v", err)
	}
	if err := c.Mail("support@example.test", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	wantRcpt := map[string]int{"ana@example.org": 0, "bob@example.org": 452, "carol@example.org": 550, "dan@example.org": 0}
	for _, r := range []string{"ana@example.org", "bob@example.org", "carol@example.org", "dan@example.org"} {
		err := c.Rcpt(r, nil)
		var se *smtp.SMTPError
		switch code := wantRcpt[r]; {
		case code == 0 && err != nil:
			t.Errorf("RCPT %s: %v, want it accepted", r, err)
		case code != 0 && (!errors.As(err, &se) || se.Code != code):
			t.Errorf("RCPT %s: %v, want %d", r, err, code)
		}
	}
	// A line starting with a dot is stuffed by the client: the gate must not take it
	// for the end of the message.
	data := []byte("Subject: through the gate\r\n\r\n.\r\nline after a lone dot\r\n")
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("write the message: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}

	gate.Answer(t, "bob@example.org", "")
	if err := c.Mail("support@example.test", nil); err != nil {
		t.Fatalf("second MAIL: %v", err)
	}
	if err := c.Rcpt("bob@example.org", nil); err != nil {
		t.Fatalf("RCPT bob after the answer was taken back: %v", err)
	}
	w, err = c.Data()
	if err != nil {
		t.Fatalf("second DATA: %v", err)
	}
	if _, err := w.Write([]byte("Subject: again\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of the second DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}

	msgs := sink.Wait(t, 2, sinkWait)
	if len(msgs) != 2 {
		t.Fatalf("smtp-sink got %d messages, want 2", len(msgs))
	}
	if want := []string{"ana@example.org", "dan@example.org"}; !slices.Equal(msgs[0].Rcpts, want) || !bytes.Equal(msgs[0].Data, data) {
		t.Errorf("first message to %v:\n%q\nwant to %v:\n%q", msgs[0].Rcpts, msgs[0].Data, want, data)
	}
	if want := []string{"bob@example.org"}; !slices.Equal(msgs[1].Rcpts, want) {
		t.Errorf("second message to %v, want %v", msgs[1].Rcpts, want)
	}
}
