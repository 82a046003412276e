package graph_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/mstest"
)

// reply is an agent's reply as postroom composes it, with threading headers.
func reply(extraHeader, body string) []byte {
	return []byte("From: Contoso Support <support@contoso.example>\r\nTo: Ana <ana@example.net>\r\n" +
		"Subject: Re: Order 1234 not delivered\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <reply-1@postroom.contoso.example>\r\nIn-Reply-To: <sample-0@example.net>\r\n" +
		"References: <sample-0@example.net>\r\nMIME-Version: 1.0\r\n" + extraHeader + "\r\n" + body)
}

func (e *env) sink(t *testing.T) *graph.Sink {
	t.Helper()
	s, err := graph.NewSink(e.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSendMIMERoundTrip: a reply goes out through sendMail as MIME with our Message-ID
// and threading headers unchanged, to the header recipients plus an envelope-only one
// (as Bcc, not shown), and a copy lands in Sent Items.
func TestSendMIMERoundTrip(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	raw := reply("Content-Type: text/plain; charset=utf-8\r\n", "Hello Ana,\r\n\r\nyour parcel left today.\r\n")
	err := e.sink(t).Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net", "audit@example.org"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	sent := e.srv.Sent(e.sample.Mailbox)
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want 1", len(sent))
	}
	m := sent[0]
	for _, h := range []string{"Message-ID", "In-Reply-To", "References", "Subject"} {
		if got, want := headerValue(m.Raw, h), headerValue(raw, h); got != want {
			t.Errorf("sent %s = %q, want %q", h, got, want)
		}
	}
	if !bytes.Contains(m.Raw, []byte("your parcel left today.")) {
		t.Errorf("the body did not go out: %q", m.Raw)
	}
	if !slices.Contains(m.Recipients, "ana@example.net") || !slices.Contains(m.Recipients, "audit@example.org") {
		t.Errorf("recipients %v, want ana@example.net and audit@example.org", m.Recipients)
	}
	if bytes.Contains(m.Raw, []byte("audit@example.org")) {
		t.Errorf("the envelope-only recipient shows in the sent message")
	}
	saved, err := e.srv.Messages(e.sample.Mailbox, "sentitems")
	if err != nil || !m.SavedToSentItems || len(saved) != 1 || saved[0].InternetMessageID != "<reply-1@postroom.contoso.example>" {
		t.Fatalf("Sent Items: saved=%v, %d messages, err %v", m.SavedToSentItems, len(saved), err)
	}
}

// TestSendLargeAttachmentThroughUploadSession: a 7 MB attachment goes through a draft
// and an upload session (chunks of at most 4 MB) and arrives byte for byte; no draft is
// left behind.
func TestSendLargeAttachmentThroughUploadSession(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	data := make([]byte, 7<<20)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	small := []byte("a small attachment that stays in the MIME\n")
	raw := multipart(t, []attachment{{"scan.bin", "application/octet-stream", data}, {"note.txt", "text/plain", small}})
	sink := e.sink(t)
	e.srv.ResetRequests()
	if err := sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw); err != nil {
		t.Fatal(err)
	}
	// The draft, the upload session, two PUTs of at most 4 MB, and /send.
	if n := e.srv.Requests(e.sample.ClientID); n != 5 {
		t.Errorf("%d requests, want 5", n)
	}
	sent := e.srv.Sent(e.sample.Mailbox)
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want 1", len(sent))
	}
	m := sent[0]
	if got := headerValue(m.Raw, "Message-ID"); got != "<reply-1@postroom.contoso.example>" {
		t.Errorf("sent Message-ID %q", got)
	}
	if got := headerValue(m.Raw, "In-Reply-To"); got != "<sample-0@example.net>" {
		t.Errorf("sent In-Reply-To %q", got)
	}
	files := attachments(t, m.Raw)
	if !bytes.Equal(files["scan.bin"], data) {
		t.Errorf("scan.bin arrived with %d bytes, want the %d sent (equal: %v)", len(files["scan.bin"]), len(data), bytes.Equal(files["scan.bin"], data))
	}
	if !bytes.Equal(files["note.txt"], small) {
		t.Errorf("note.txt arrived as %q", files["note.txt"])
	}
	if !strings.Contains(string(m.Raw), "Please find the scan attached.") {
		t.Errorf("the text did not go out")
	}
	drafts, _ := e.srv.Messages(e.sample.Mailbox, "drafts")
	if len(drafts) != 0 {
		t.Errorf("%d drafts left behind", len(drafts))
	}
}

// TestSendOver150MBRefused: a message over Graph's 150 MB is refused for good before any
// request, with advice.
func TestSendOver150MBRefused(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	raw := reply("Content-Type: text/plain\r\n", strings.Repeat("x", graph.MaxSendBytes))
	e.srv.ResetRequests()
	err := e.sink(t).Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw)
	assertKind(t, err, connector.KindRejected, "150 MB", "link")
	if n := e.srv.Requests(e.sample.ClientID); n != 0 {
		t.Fatalf("%d requests for a message that cannot be sent", n)
	}
}

// TestSendWithoutMailSendPermission: an app without Mail.Send gets advice naming it.
func TestSendWithoutMailSendPermission(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.sample.App.SetRoles(mstest.RoleMailReadWrite)
	raw := reply("Content-Type: text/plain\r\n", "Hello\r\n")
	err := e.sink(t).Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw)
	assertKind(t, err, connector.KindAuth, "ErrorAccessDenied", "Mail.Send")
}

type attachment struct {
	name, contentType string
	data              []byte
}

// multipart builds a reply with text and attachments (base64, 76-column lines).
func multipart(t *testing.T, files []attachment) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find the scan attached.\r\n")
	for _, f := range files {
		fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", f.contentType, f.name, f.name)
		enc := base64.StdEncoding.EncodeToString(f.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return reply("Content-Type: multipart/mixed; boundary=\"b1\"\r\n", b.String())
}

// attachments returns the attachments of raw by file name.
func attachments(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read the sent message: %v", err)
	}
	out := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read the sent message: %v", err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			b, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
	}
}

// TestSendThrottledOnceSentOnce: a 429 on sendMail is waited out and sent again (one
// message goes out); a 504, whose effect is unknown, is not resent inside Send (it could
// duplicate the email) but reported as temporary.
func TestSendThrottledOnceSentOnce(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	sink := e.sink(t)
	raw := reply("Content-Type: text/plain\r\n", "Hello\r\n")
	e.srv.FailNext(mstest.Fault{Count: 1, Status: 429, RetryAfter: time.Second, PathContains: "/sendMail"})
	e.srv.ResetRequests()
	if err := sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw); err != nil {
		t.Fatal(err)
	}
	if n, sent := e.srv.Requests(e.sample.ClientID), len(e.srv.Sent(e.sample.Mailbox)); n != 2 || sent != 1 {
		t.Fatalf("%d requests and %d sent, want 2 and 1", n, sent)
	}

	e.srv.FailNext(mstest.Fault{Count: 1, Status: 504, PathContains: "/sendMail"})
	e.srv.ResetRequests()
	err := sink.Send(context.Background(), e.sample.Mailbox, []string{"ana@example.net"}, raw)
	assertKind(t, err, connector.KindServer, "HTTP 504")
	if n := e.srv.Requests(e.sample.ClientID); n != 1 {
		t.Fatalf("%d requests after a 504, want 1", n)
	}
}
