package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestMailboxLifecycleWithDovecot: created disabled (nothing ingested); assigned to a queue
// it is enabled and ingests from real Dovecot; delete is refused while enabled; unassigned
// it is disabled and ingest stops; then delete works.
func TestMailboxLifecycleWithDovecot(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.Append(t, user, "INBOX", customerMail(1))
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	host, port := hostPort(t, d.IMAPSAddr)
	secret := vault.NewSecret("support-pw")
	m, err := h.app.Mailboxes.Create(ctx, "admin", mailbox.Input{Name: "support", Direction: store.Inbound, Protocol: mailbox.IMAP,
		Host: host, Port: port, Security: mailbox.SecurityTLS, Login: user, Password: &secret})
	if err != nil {
		t.Fatal(err)
	}
	if m.Enabled {
		t.Fatal("created enabled")
	}
	// Disabled: a few supervisor rounds pass and nothing is read.
	time.Sleep(time.Second)
	if c, _ := h.app.Store.CountMessages(ctx, m.ID); c != 0 {
		t.Fatalf("a disabled mailbox ingested %d messages", c)
	}

	sales, err := h.app.Mailboxes.CreateQueue(ctx, "admin", "Sales")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Mailboxes.Assign(ctx, "admin", m.ID, sales.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ingest after assignment", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		return c == 1, fmt.Sprintf("%d stored", c)
	})
	if err := h.app.Mailboxes.Delete(ctx, "admin", m.ID); !errors.Is(err, mailbox.ErrEnabled) {
		t.Fatalf("delete while enabled: %v", err)
	}

	if err := h.app.Mailboxes.Assign(ctx, "admin", m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if m, _ = h.app.Store.Mailbox(ctx, m.ID); m.Enabled {
		t.Fatal("unassigned but enabled")
	}
	time.Sleep(time.Second) // the supervisor stops the loop within one reload interval (200 ms)
	d.Append(t, user, "INBOX", customerMail(2))
	time.Sleep(2 * time.Second)
	if c, _ := h.app.Store.CountMessages(ctx, m.ID); c != 1 {
		t.Fatalf("ingest went on after the mailbox was unassigned: %d stored", c)
	}
	if err := h.app.Mailboxes.Delete(ctx, "admin", m.ID); err != nil {
		t.Fatalf("delete after unassigning: %v", err)
	}
	items := allWorkItems(t, h.app.Store)
	if len(items) != 1 || items[0].MailboxName != "support" {
		t.Errorf("the deleted mailbox's work item is gone or lost its mailbox name: %+v", items)
	}
}

// bigMail is a message of about size bytes (a base64 attachment).
func bigMail(subject string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Big Sender <big@example.org>\r\nTo: support@example.test\r\nSubject: %s\r\n"+
		"Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain\r\n\r\nSee the attached scan.\r\n--b1\r\n"+
		"Content-Type: application/octet-stream; name=scan.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n", subject, strings.ReplaceAll(subject, " ", "-"))
	line := strings.Repeat("QUJD", 19) + "\r\n" // 78 bytes
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// TestOverSize: a 6 MB message into a mailbox with Max size 5 becomes an "over size" work
// item with its header, the sender gets a polite notice (seen at the real SMTP peer), and
// the original waits in the Oversize folder; a 4 MB one is ingested normally.
func TestOverSize(t *testing.T) {
	sink := testenv.StartSMTPSink(t)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{SubmissionRelay: sink.Addr})
	user := "support@example.test"
	d.AddUser(t, user, "support-pw")
	d.Append(t, user, "INBOX", bigMail("Scan of six megabytes", 6<<20))
	d.Append(t, user, "INBOX", bigMail("Scan of four megabytes", 4<<20))
	h := startApp(t, "sqlite", certPool(t, d.CertPEM), nil)
	ctx := context.Background()
	_, subPort := hostPort(t, d.SubmissionAddr)
	if _, err := h.app.EnsureMailbox(ctx, "test", app.MailboxInput{
		Mailbox: store.Mailbox{Name: "replies", Direction: store.Outbound, Protocol: "smtp", Address: user,
			Host: "localhost", Port: subPort, Security: "starttls", Login: user, MaxSizeMB: 5, Enabled: true, IsDefault: true},
		Password: vault.NewSecret("support-pw"),
	}); err != nil {
		t.Fatal(err)
	}
	m := h.addInbound(d, user, "support-pw")

	var items []store.WorkItem
	waitFor(t, "both messages as work items", func() (bool, string) {
		items = allWorkItems(t, h.app.Store)
		return len(items) == 2, fmt.Sprintf("%d work items", len(items))
	})
	bySubject := map[string]store.WorkItem{}
	for _, wi := range items {
		bySubject[wi.Subject] = wi
	}
	big, small := bySubject["Scan of six megabytes"], bySubject["Scan of four megabytes"]
	if !big.OverSize || small.OverSize {
		t.Fatalf("over size flags: 6 MB %t, 4 MB %t", big.OverSize, small.OverSize)
	}
	msg, err := h.app.Store.Message(ctx, big.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := h.app.Store.RawMessage(ctx, big.MessageID)
	if len(raw) > 64<<10 || msg.FromAddr != "big@example.org" || !strings.Contains(msg.TextBody, "over this mailbox's Max size of 5 MB") {
		t.Errorf("over-size item: %d raw bytes stored, from %q, text %q", len(raw), msg.FromAddr, msg.TextBody)
	}
	smallMsg, _ := h.app.Store.Message(ctx, small.MessageID)
	if len(smallMsg.Attachments) != 1 || smallMsg.Attachments[0].Size < 2<<20 {
		t.Errorf("the 4 MB message lost its attachment: %+v", smallMsg.Attachments)
	}

	// What a supervisor sees: the flag in the API and a badge on the pages.
	if _, err := h.app.Auth.EnsureUser(ctx, "sup", "Sam Supervisor", store.RoleSupervisor, "sup-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, h.url, "sup", "sup-pw-for-tests")
	status, body := c.do("GET", "/api/v1/workitems?q=six", nil)
	if status != 200 || !strings.Contains(string(body), `"over_size":true`) {
		t.Errorf("API listing of the over-size item: %d %s", status, body)
	}
	for _, path := range []string{"/workitems", fmt.Sprintf("/workitems/%d", big.ID)} {
		if status, page := c.do("GET", path, nil); status != 200 || !strings.Contains(string(page), "over size</span>") {
			t.Errorf("GET %s: %d, no over size badge", path, status)
		}
	}

	notice := sink.Wait(t, 1, waitLimit)[0]
	if len(notice.Rcpts) != 1 || notice.Rcpts[0] != "big@example.org" || !bytes.Contains(notice.Data, []byte("Auto-Submitted: auto-replied")) ||
		!bytes.Contains(notice.Data, []byte("Scan of six megabytes")) {
		t.Errorf("notice to %v:\n%s", notice.Rcpts, notice.Data)
	}
	waitFor(t, "the original in the Oversize folder", func() (bool, string) {
		over := d.Messages(t, user, "Oversize")
		return len(over) == 1 && over[0].Subject == "Scan of six megabytes", fmt.Sprintf("%v", over)
	})
	inbox := d.Messages(t, user, "INBOX")
	if len(inbox) != 1 || inbox[0].Subject != "Scan of four megabytes" {
		t.Errorf("INBOX after ingest: %+v", inbox)
	}
	// Nothing more arrives at the peer: exactly one notice.
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 1 {
		t.Errorf("%d messages at the peer, want the one notice", n)
	}
	_ = m
}
