package testenv

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sinkWait is generous: delivery to smtp-sink takes milliseconds (testmail.md §7).
const sinkWait = 10 * time.Second

func TestSMTPSinkReceivesEnvelopeAndData(t *testing.T) {
	sink := StartSMTPSink(t)
	if got := sink.Messages(t); len(got) != 0 {
		t.Fatalf("fresh sink has %d messages", len(got))
	}
	// A line starting with "." tests that dot-stuffing is undone; "X-Custom" that the client's
	// own X- headers are kept.
	data := []byte("X-Custom: kept\r\n" +
		"From: alice@example.test\r\n" +
		"To: rcpt@example.net, other@example.org\r\n" +
		"Subject: to the sink\r\n" +
		"\r\n" +
		"line one\r\n" +
		".leading dot\r\n")
	to := []string{"rcpt@example.net", "other@example.org"}
	sendPlain(t, sink.Addr, "alice@example.test", to, data)
	sendPlain(t, sink.Addr, "", []string{"bounce@example.net"}, []byte("Subject: null sender\r\n\r\nx\r\n"))

	const burst = 30 // back to back, within the same second and the same clock tick
	for i := range burst {
		sendPlain(t, sink.Addr, "alice@example.test", []string{"rcpt@example.net"}, []byte(fmt.Sprintf("Subject: burst %d\r\n\r\nx\r\n", i)))
	}

	msgs := sink.Wait(t, 2+burst, sinkWait)
	if len(msgs) != 2+burst {
		t.Fatalf("got %d messages, want %d", len(msgs), 2+burst)
	}
	for i, m := range msgs[2:] {
		if want := fmt.Sprintf("Subject: burst %d\r\n", i); !strings.HasPrefix(string(m.Data), want) {
			t.Errorf("message %d starts with %q, want %q: not in arrival order", 2+i, m.Data[:min(len(m.Data), 20)], want)
		}
	}
	m := msgs[0]
	if m.MailFrom != "alice@example.test" || !slices.Equal(m.Rcpts, to) {
		t.Errorf("envelope = from %q to %q, want from alice@example.test to %q", m.MailFrom, m.Rcpts, to)
	}
	if !bytes.Equal(m.Data, data) {
		t.Errorf("data =\n%q\nwant\n%q", m.Data, data)
	}
	if msgs[1].MailFrom != "" || !slices.Equal(msgs[1].Rcpts, []string{"bounce@example.net"}) {
		t.Errorf("second envelope = from %q to %q, want the null sender to bounce@example.net", msgs[1].MailFrom, msgs[1].Rcpts)
	}
}

// sendPlain delivers one message over plain SMTP (smtp.SendMail insists on STARTTLS).
func sendPlain(t *testing.T, addr, from string, to []string, data []byte) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.SendMail(from, to, bytes.NewReader(data)); err != nil {
		t.Fatalf("send from %q to %q: %v", from, to, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func TestSMTPSinkOffersNoAuth(t *testing.T) {
	sink := StartSMTPSink(t)
	c, err := smtp.Dial(sink.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("smtp-sink advertises AUTH, which it does not implement (it answers 250 instead of 235)")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("smtp-sink advertises STARTTLS")
	}
}

func TestSubmissionRelaysAuthenticatedMessage(t *testing.T) {
	sink := StartSMTPSink(t)
	d := StartDovecot(t, &DovecotOptions{SubmissionRelay: sink.Addr})
	if d.SubmissionAddr == "" {
		t.Fatal("SubmissionAddr is empty with SubmissionRelay set")
	}
	d.AddUser(t, "alice@example.test", "alice-pw")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(d.CertPEM)
	tlsConfig := &tls.Config{RootCAs: pool, ServerName: "localhost"}

	c, err := smtp.DialStartTLS(d.SubmissionAddr, tlsConfig)
	if err != nil {
		t.Fatalf("dial submission with STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "wrong")); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "alice-pw")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	data := "From: alice@example.test\r\nTo: rcpt@example.net\r\nSubject: relayed\r\nMessage-ID: <relay1@example.test>\r\n\r\nthrough Dovecot\r\n"
	if err := c.SendMail("alice@example.test", []string{"rcpt@example.net"}, strings.NewReader(data)); err != nil {
		t.Fatalf("send through submission: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}

	msgs := sink.Wait(t, 1, sinkWait)
	m := msgs[0]
	if m.MailFrom != "alice@example.test" || !slices.Equal(m.Rcpts, []string{"rcpt@example.net"}) {
		t.Errorf("relayed envelope = from %q to %q", m.MailFrom, m.Rcpts)
	}
	// Dovecot adds its own Received header in front; the message follows unchanged.
	if !strings.HasPrefix(string(m.Data), "Received: ") || !strings.Contains(string(m.Data), "with ESMTPSA") {
		t.Errorf("relayed data lacks Dovecot's Received header:\n%s", m.Data)
	}
	if !strings.HasSuffix(string(m.Data), data) {
		t.Errorf("relayed data does not end with the submitted message:\n%q", m.Data)
	}
	d.WaitLog(t, "Successfully relayed message") // logged after the relay server took it
}

func TestParseSinkDumpRejectsForeignFiles(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":               "",
		"no final empty line": "X-Mail-Args: <a@b>\nReceived: from x\n\tby h (smtp-sink) with ESMTP id 1;\n\tdate\nSubject: s\n",
		"no Received":         "X-Mail-Args: <a@b>\nSubject: s\n\n",
		"foreign Received":    "X-Mail-Args: <a@b>\nReceived: from x by mx.example\nSubject: s\n\n",
	} {
		if _, err := parseSinkDump([]byte(raw)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestSMTPSinkHidesTransactionInProgress(t *testing.T) {
	sink := StartSMTPSink(t)
	c, err := smtp.Dial(sink.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt("rcpt@example.net", nil); err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	if err := c.Reset(); err != nil { // an aborted transaction is no message
		t.Fatalf("RSET: %v", err)
	}
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt("rcpt@example.net", nil); err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	// smtp-sink has created the dump file by now, but the transaction is not complete.
	files, _ := filepath.Glob(filepath.Join(sink.dumpDir, "*"))
	if len(files) != 1 {
		t.Fatalf("dump files during DATA: %v, want 1", files)
	}
	if got := sink.Messages(t); len(got) != 0 {
		t.Errorf("Messages during DATA = %+v, want none", got)
	}
	if _, err := w.Write([]byte("Subject: done\r\n\r\nbody\r\n")); err != nil {
		t.Fatalf("write data: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of data: %v", err)
	}
	got := sink.Messages(t) // complete once the client has the reply to its final "."
	if len(got) != 1 || string(got[0].Data) != "Subject: done\r\n\r\nbody\r\n" {
		t.Errorf("Messages after DATA = %+v, want the one completed message", got)
	}
}
