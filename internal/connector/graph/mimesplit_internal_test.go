package graph

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// bigMessage is a reply with a nested multipart/alternative, an inline image and two
// attachments, the large ones base64 in 76-column lines.
func bigMessage(pdf, img []byte) []byte {
	wrap := func(b []byte) string {
		enc := base64.StdEncoding.EncodeToString(b)
		var out strings.Builder
		for len(enc) > 76 {
			out.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		out.WriteString(enc + "\r\n")
		return out.String()
	}
	return []byte("From: support@contoso.example\r\nTo: ana@example.net\r\nSubject: Your documents\r\n" +
		"Message-ID: <m1@contoso.example>\r\nIn-Reply-To: <q1@example.net>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"preamble text\r\n" +
		"--outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n" +
		"--rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Ana, see attached.\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello Ana, see attached.<img src=\"cid:logo@x\"></p>\r\n" +
		"--alt--\r\n" +
		"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap(img) +
		"--rel--\r\n" +
		"--outer\r\nContent-Type: application/pdf; name=\"=?utf-8?q?Rechnung_M=C3=A4rz.pdf?=\"\r\n" +
		"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap(pdf) +
		"--outer\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nsmall notes\r\n" +
		"--outer--\r\nepilogue\r\n")
}

// TestSplitAttachmentsKeepsEverythingElse: only the largest attachments are taken out,
// decoded exactly with their names (RFC 2231) and inline Content-IDs, and every other byte
// of the message stays as it was.
func TestSplitAttachmentsKeepsEverythingElse(t *testing.T) {
	pdf := bytes.Repeat([]byte("%PDF-1.7 binary \x00\xff\x10"), 200_000) // 3.8 MB
	img := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0, 1, 2}, 150_000)   // 1 MB
	raw := bigMessage(pdf, img)
	rest, parts, err := splitAttachments(raw, 3_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].name != "Rechnung März.pdf" || parts[0].contentType != "application/pdf" || !bytes.Equal(parts[0].data, pdf) {
		t.Fatalf("taken out: %d parts, first %q %q (%d bytes)", len(parts), parts[0].name, parts[0].contentType, len(parts[0].data))
	}
	if len(rest) > 3_000_000 {
		t.Fatalf("rest is %d bytes", len(rest))
	}
	// The rest is the original minus exactly the PDF's part.
	start := bytes.Index(raw, []byte("--outer\r\nContent-Type: application/pdf"))
	end := bytes.Index(raw, []byte("--outer\r\nContent-Type: text/plain; name"))
	want := append(bytes.Clone(raw[:start]), raw[end:]...)
	if !bytes.Equal(rest, want) {
		t.Fatalf("the rest is not the original without the PDF part:\n%.2000q", rest)
	}

	// With a tighter limit the inline image goes too, with its Content-ID.
	_, parts, err = splitAttachments(raw, 500_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || !parts[1].inline || parts[1].contentID != "logo@x" || parts[1].contentType != "image/png" || !bytes.Equal(parts[1].data, img) {
		t.Fatalf("second part: %+v", parts[1].contentID)
	}
}

// TestSplitAttachmentsRefusesLargeText: a single-part message over the limit cannot be
// split.
func TestSplitAttachmentsRefusesLargeText(t *testing.T) {
	raw := []byte("Subject: long\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("words ", 100_000))
	if _, _, err := splitAttachments(raw, 100_000); err != errTooLargeBody {
		t.Fatalf("error %v, want errTooLargeBody", err)
	}
}

// TestSplitAttachmentsAllPartsTaken: a multipart whose only part is taken out keeps a
// valid (empty text) part.
func TestSplitAttachmentsAllPartsTaken(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 10_000)
	raw := []byte("Subject: only a file\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n" +
		string(data) + "\r\n--b--\r\n")
	rest, parts, err := splitAttachments(raw, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || !bytes.Equal(parts[0].data, data) {
		t.Fatalf("parts: %d", len(parts))
	}
	want := "Subject: only a file\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n--b--\r\n"
	if string(rest) != want {
		t.Fatalf("rest %q, want %q", rest, want)
	}
}

// TestEnvelopeRecipientsAddedAsBcc: envelope recipients the header does not name are added
// as Bcc; named ones (any case) are not.
func TestEnvelopeRecipientsAddedAsBcc(t *testing.T) {
	raw := []byte("From: a@x.example\r\nTo: Ana <Ana@Example.net>\r\nCc: b@example.org\r\nSubject: s\r\n\r\nbody\r\n")
	got, err := withEnvelopeRecipients(raw, []string{"ana@example.net", "b@example.org", "audit@example.org", "audit@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Bcc: <audit@example.org>\r\n" + string(raw); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	same, err := withEnvelopeRecipients(raw, []string{"ana@example.net"})
	if err != nil || !bytes.Equal(same, raw) {
		t.Fatalf("a message naming every recipient changed: %q %v", same, err)
	}
}

// TestCursorRoundTrip: a cursor keeps mailbox, folder and link, and rejects other forms.
func TestCursorRoundTrip(t *testing.T) {
	link := "https://graph.microsoft.com/v1.0/users/support@contoso.com/mailFolders('AAMk')/messages/delta?$deltatoken=abc"
	mb, folder, got, ok := ParseCursor(FormatCursor("support@contoso.com", "AAMkAGI=", link))
	if !ok || mb != "support@contoso.com" || folder != "AAMkAGI=" || got != link {
		t.Fatalf("round trip: %q %q %q %v", mb, folder, got, ok)
	}
	for _, bad := range []string{"", "1:42", "graph1 a b", "graph2 a b c"} {
		if _, _, _, ok := ParseCursor(bad); ok {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}
