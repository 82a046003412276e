package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testWait bounds how long a test waits for something that should happen at
// once (a notification, a shutdown); it only keeps a broken test from hanging.
const testWait = 10 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startDemo(t *testing.T) *Server {
	t.Helper()
	s, err := Start(t.Context(), Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func dialIMAP(t *testing.T, s *Server, login string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.IMAPAddr, opts)
	if err != nil {
		t.Fatalf("imap dial %s: %v", s.IMAPAddr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(login, s.Password).Wait(); err != nil {
		t.Fatalf("imap login %s: %v", login, err)
	}
	return c
}

func selectInbox(t *testing.T, c *imapclient.Client) *imap.SelectData {
	t.Helper()
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("imap select INBOX: %v", err)
	}
	return data
}

func uidSearch(t *testing.T, c *imapclient.Client, criteria *imap.SearchCriteria) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		t.Fatalf("imap uid search: %v", err)
	}
	return data.AllUIDs()
}

var unseen = &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}

// fetchFull fetches what an ingesting client asks for: UID, FLAGS,
// RFC822.SIZE and BODY.PEEK[].
func fetchFull(t *testing.T, c *imapclient.Client, uid imap.UID) *imapclient.FetchMessageBuffer {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		t.Fatalf("imap uid fetch %d: %v", uid, err)
	}
	if len(msgs) != 1 {
		t.Fatalf("imap uid fetch %d: %d messages", uid, len(msgs))
	}
	return msgs[0]
}

func sendMail(t *testing.T, s *Server, auth sasl.Client, from string, to []string, msg string) error {
	t.Helper()
	// smtp.SendMail insists on STARTTLS; the demo speaks plaintext.
	c, err := smtp.Dial(s.SMTPAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return err
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func TestStartOnPortZeroReportsAddresses(t *testing.T) {
	s := startDemo(t)
	for name, addr := range map[string]string{"IMAP": s.IMAPAddr, "SMTP": s.SMTPAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
			t.Errorf("%s address %q (%v), want 127.0.0.1:<port>", name, addr, err)
		}
	}
	if s.IMAPAddr == s.SMTPAddr {
		t.Errorf("IMAP and SMTP share %s", s.IMAPAddr)
	}
	if s.Password != "demo" {
		t.Errorf("Password = %q, want the default %q", s.Password, "demo")
	}
}

func TestIMAPSupportInboxIngestFlow(t *testing.T) {
	s := startDemo(t)
	c := dialIMAP(t, s, SupportLogin, nil)
	if !c.Caps().Has(imap.CapIdle) {
		t.Errorf("server does not advertise IDLE: %v", c.Caps())
	}
	sel := selectInbox(t, c)
	want := len(Samples(time.Now()))
	if int(sel.NumMessages) != want || want < 20 {
		t.Fatalf("INBOX has %d messages, want the %d samples", sel.NumMessages, want)
	}

	uids := uidSearch(t, c, unseen)
	if len(uids) != want {
		t.Fatalf("UID SEARCH UNSEEN = %d UIDs, want %d", len(uids), want)
	}
	uid := uids[0]
	msg := fetchFull(t, c, uid)
	body := msg.FindBodySection(&imap.FetchItemBodySection{Peek: true})
	if msg.UID != uid || len(body) == 0 {
		t.Fatalf("fetched UID %d with %d body bytes, want UID %d with a body", msg.UID, len(body), uid)
	}
	if int64(len(body)) != msg.RFC822Size {
		t.Errorf("BODY[] has %d bytes, RFC822.SIZE says %d", len(body), msg.RFC822Size)
	}
	if !bytes.Contains(body, []byte("\r\nMessage-ID: <20260511.48213.ana@mail.example.org>\r\n")) {
		t.Errorf("first message is not the first sample:\n%s", body)
	}
	if slices.Contains(msg.Flags, imap.FlagSeen) {
		t.Errorf("flags after BODY.PEEK[] = %v, want no \\Seen", msg.Flags)
	}
	if again := fetchFull(t, c, uid); slices.Contains(again.Flags, imap.FlagSeen) {
		t.Errorf("flags on a second fetch = %v, BODY.PEEK[] set \\Seen", again.Flags)
	}

	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
	if err := c.Store(imap.UIDSetNum(uid), store, nil).Close(); err != nil {
		t.Fatalf("UID STORE +FLAGS \\Seen: %v", err)
	}
	if f := fetchFull(t, c, uid); !slices.Contains(f.Flags, imap.FlagSeen) {
		t.Errorf("flags after STORE = %v, want \\Seen", f.Flags)
	}
	after := uidSearch(t, c, unseen)
	if len(after) != want-1 || slices.Contains(after, uid) {
		t.Errorf("UID SEARCH UNSEEN after STORE = %v, want all but %d", after, uid)
	}
}

// Every sample, the malformed one included, must survive the fetch items a
// mail client asks for, and the server must stay up.
func TestIMAPFetchesEverySample(t *testing.T) {
	s := startDemo(t)
	c := dialIMAP(t, s, SupportLogin, nil)
	sel := selectInbox(t, c)
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, // 1:*
		&imap.FetchOptions{
			UID: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
	if err != nil {
		t.Fatalf("fetch 1:*: %v", err)
	}
	if len(msgs) != int(sel.NumMessages) {
		t.Fatalf("fetched %d messages, want %d", len(msgs), sel.NumMessages)
	}
	for _, m := range msgs {
		body := m.FindBodySection(&imap.FetchItemBodySection{Peek: true})
		if int64(len(body)) != m.RFC822Size || m.Envelope == nil || m.Envelope.MessageID == "" {
			t.Errorf("UID %d: %d body bytes, size %d, envelope %+v", m.UID, len(body), m.RFC822Size, m.Envelope)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("NOOP after fetching all samples: %v", err)
	}
}

func TestSMTPDeliveryToSupportReachesIdlingClient(t *testing.T) {
	s := startDemo(t)
	exists := make(chan uint32, 8)
	c := dialIMAP(t, s, SupportLogin, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					exists <- *data.NumMessages
				}
			},
		},
	})
	sel := selectInbox(t, c)
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}

	msg := "From: Ana Souza <ana@example.org>\r\nTo: support@example.com\r\nSubject: Still waiting for order #48213\r\n" +
		"Message-ID: <smtp-test-1@example.org>\r\n\r\nHello again,\r\n.leading dot line\r\nAna\r\n"
	if err := sendMail(t, s, nil, "ana@example.org", []string{SupportAddress}, msg); err != nil {
		t.Fatalf("smtp send without auth: %v", err)
	}

	select {
	case n := <-exists:
		if n != sel.NumMessages+1 {
			t.Errorf("EXISTS %d during IDLE, want %d", n, sel.NumMessages+1)
		}
	case <-time.After(testWait):
		t.Fatal("no EXISTS while idling after SMTP delivery")
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("IDLE DONE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}

	newUIDs := uidSearch(t, c, &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: sel.UIDNext, Stop: 0}}}})
	if len(newUIDs) != 1 || newUIDs[0] < sel.UIDNext {
		t.Fatalf("UIDs from UIDNEXT %d on: %v, want one new UID", sel.UIDNext, newUIDs)
	}
	got := fetchFull(t, c, newUIDs[0])
	body := string(got.FindBodySection(&imap.FetchItemBodySection{Peek: true}))
	for _, want := range []string{
		"Return-Path: <ana@example.org>\r\n",
		"Received: from ",
		"by mail.example.com (postroom demo) with ESMTP id ",
		"for <support@example.com>; ",
		"\r\nSubject: Still waiting for order #48213\r\n",
		"\r\n.leading dot line\r\n", // SMTP dot-stuffing undone (RFC 5321 §4.5.2)
	} {
		if !strings.Contains(body, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasPrefix(body, "Return-Path:") {
		t.Errorf("trace headers not at the top:\n%s", body)
	}
	if slices.Contains(got.Flags, imap.FlagSeen) {
		t.Errorf("new message flags %v, want unseen", got.Flags)
	}
}

func TestSMTPDeliveryToCustomerLandsInCustomersInbox(t *testing.T) {
	s := startDemo(t)
	reply := "From: Example Support <support@example.com>\r\nTo: Ana Souza <ana@example.org>\r\n" +
		"Subject: Re: Order #48213 has not arrived\r\nIn-Reply-To: <20260511.48213.ana@mail.example.org>\r\n\r\n" +
		"Dear Ana, your parcel is on its way.\r\n"
	auth := sasl.NewPlainClient("", SendLogin, s.Password)
	if err := sendMail(t, s, auth, SupportAddress, []string{"ana@example.org"}, reply); err != nil {
		t.Fatalf("smtp send with AUTH PLAIN as %s: %v", SendLogin, err)
	}

	cust := dialIMAP(t, s, CustomersLogin, nil)
	if sel := selectInbox(t, cust); sel.NumMessages != 1 {
		t.Fatalf("customers INBOX has %d messages, want 1", sel.NumMessages)
	}
	uids := uidSearch(t, cust, unseen)
	if len(uids) != 1 {
		t.Fatalf("customers UNSEEN = %v", uids)
	}
	body := string(fetchFull(t, cust, uids[0]).FindBodySection(&imap.FetchItemBodySection{Peek: true}))
	for _, want := range []string{"with ESMTPA id ", "for <ana@example.org>", "Dear Ana, your parcel is on its way."} {
		if !strings.Contains(body, want) {
			t.Errorf("customer copy lacks %q:\n%s", want, body)
		}
	}

	support := dialIMAP(t, s, SupportLogin, nil)
	if sel := selectInbox(t, support); int(sel.NumMessages) != len(Samples(time.Now())) {
		t.Errorf("support INBOX has %d messages, want only the samples", sel.NumMessages)
	}
}

func TestSMTPMixedRecipientsOneCopyPerMailbox(t *testing.T) {
	s := startDemo(t)
	msg := "From: ana@example.org\r\nSubject: cc test\r\n\r\nhi\r\n"
	rcpts := []string{"support@example.com", "Sales@EXAMPLE.com", "bob@example.net", "ana@example.org"}
	if err := sendMail(t, s, nil, "ana@example.org", rcpts, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	support := dialIMAP(t, s, SupportLogin, nil)
	if got, want := selectInbox(t, support).NumMessages, uint32(len(Samples(time.Now()))+1); got != want {
		t.Errorf("support INBOX has %d messages, want %d", got, want)
	}
	cust := dialIMAP(t, s, CustomersLogin, nil)
	if got := selectInbox(t, cust).NumMessages; got != 1 {
		t.Errorf("customers INBOX has %d messages, want 1", got)
	}
	body := string(fetchFull(t, cust, 1).FindBodySection(&imap.FetchItemBodySection{Peek: true}))
	if strings.Contains(body, "for <") {
		t.Errorf("Received names a recipient of a multi-recipient message:\n%s", body)
	}
}

func TestSMTPAuthBadPasswordRefused(t *testing.T) {
	s := startDemo(t)
	c, err := smtp.Dial(s.SMTPAddr)
	if err != nil {
		t.Fatalf("smtp dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Fatal("AUTH not advertised")
	}
	err = c.Auth(sasl.NewPlainClient("", SendLogin, "wrong"))
	var smtpErr *smtp.SMTPError
	if !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
		t.Fatalf("AUTH with a bad password: %v, want 535", err)
	}
}

func TestIMAPBadPasswordRefused(t *testing.T) {
	s := startDemo(t)
	for _, login := range []string{SupportLogin, CustomersLogin, "nobody@example.com"} {
		c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		err = c.Login(login, s.Password+"x").Wait()
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
			t.Errorf("LOGIN %s with a bad password: %v, want NO [AUTHENTICATIONFAILED]", login, err)
		}
		_ = c.Close()
	}
}

func TestPasswordOption(t *testing.T) {
	s, err := Start(t.Context(), Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0", Password: "s3cret", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	if s.Password != "s3cret" {
		t.Errorf("Password = %q", s.Password)
	}
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Login(SupportLogin, "demo").Wait(); err == nil {
		t.Error("default password accepted although Options.Password was set")
	}
	if err := c.Login(SupportLogin, "s3cret").Wait(); err != nil {
		t.Errorf("login with Options.Password: %v", err)
	}
}

func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"IMAP", Options{IMAPAddr: addr, SMTPAddr: "127.0.0.1:0"}, "demo IMAP port " + addr + " is in use: stop the other program or pass -imap-addr"},
		{"SMTP", Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: addr}, "demo SMTP port " + addr + " is in use: stop the other program or pass -smtp-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = testLogger(t)
			s, err := Start(t.Context(), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Start on a taken port succeeded")
			}
			if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error %v does not wrap EADDRINUSE", err)
			}
		})
	}
}

// A failed Start must not keep the port it did open.
func TestFailedStartReleasesIMAPPort(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	imapAddr := free.Addr().String()
	free.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	if s, err := Start(t.Context(), Options{IMAPAddr: imapAddr, SMTPAddr: taken.Addr().String(), Logger: testLogger(t)}); err == nil {
		s.Close()
		t.Fatal("Start with a taken SMTP port succeeded")
	}
	s, err := Start(t.Context(), Options{IMAPAddr: imapAddr, SMTPAddr: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("IMAP port still held after the failed Start: %v", err)
	}
	s.Close()
}

func TestContextCancelStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Start(ctx, Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := dialIMAP(t, s, SupportLogin, nil)
	cancel()
	select {
	case <-c.Closed():
	case <-time.After(testWait):
		t.Fatal("IMAP connection still open after ctx was cancelled")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	for _, addr := range []string{s.IMAPAddr, s.SMTPAddr} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after shutdown", addr)
		}
	}
}

// swaks is a common command-line SMTP client; it must deliver without auth.
func TestSwaksDeliversToSupport(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed")
	}
	s := startDemo(t)
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, swaks, "--server", s.SMTPAddr, "--from", "maria@example.net",
		"--to", SupportAddress, "--header", "Subject: swaks test 4711", "--body", "Sent with swaks.").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	c := dialIMAP(t, s, SupportLogin, nil)
	selectInbox(t, c)
	uids := uidSearch(t, c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "swaks test 4711"}}})
	if len(uids) != 1 {
		t.Fatalf("messages with the swaks subject: %v, want 1", uids)
	}
	if body := fetchFull(t, c, uids[0]).FindBodySection(&imap.FetchItemBodySection{Peek: true}); !bytes.Contains(body, []byte("Sent with swaks.")) {
		t.Errorf("swaks message body:\n%s", body)
	}
}

func ExampleStart() {
	s, err := Start(context.Background(), Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	fmt.Println("IMAP login:", SupportLogin, "password:", s.Password)
	// Output: IMAP login: support@example.com password: demo
}

// A message whose multipart has no boundary is still delivered and readable
// with BODY.PEEK[], and it is recognised as one imapserver cannot describe.
func TestSMTPDeliversMultipartWithoutBoundary(t *testing.T) {
	s := startDemo(t)
	msg := "From: ana@example.org\r\nTo: support@example.com\r\nSubject: broken export\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--\r\nContent-Type text/plain\r\n\r\nhello\r\n"
	if err := sendMail(t, s, nil, "ana@example.org", []string{SupportAddress}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	c := dialIMAP(t, s, SupportLogin, nil)
	sel := selectInbox(t, c)
	body := fetchFull(t, c, sel.UIDNext-1).FindBodySection(&imap.FetchItemBodySection{Peek: true})
	if !bytes.HasSuffix(body, []byte("\r\n\r\n--\r\nContent-Type text/plain\r\n\r\nhello\r\n")) {
		t.Errorf("delivered body:\n%s", body)
	}
	if !hasEmptyMultipart(imapserver.ExtractBodyStructure(bytes.NewReader(body))) {
		t.Error("hasEmptyMultipart = false for a multipart without boundary")
	}
	for i, raw := range Samples(time.Now()) {
		if hasEmptyMultipart(imapserver.ExtractBodyStructure(bytes.NewReader(raw))) {
			t.Errorf("sample %d would disconnect IMAP clients that fetch BODYSTRUCTURE", i+1)
		}
	}
}
