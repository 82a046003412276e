package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

// content is an attachment's content as the store receives it: Data, or what Open gives.
func content(t testing.TB, a store.Attachment) []byte {
	t.Helper()
	if a.Open == nil {
		return a.Data
	}
	if a.Data != nil {
		t.Fatalf("attachment %q has both Data and Open", a.Filename)
	}
	r, err := a.Open()
	if err != nil {
		t.Fatalf("open attachment %q: %v", a.Filename, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read attachment %q: %v", a.Filename, err)
	}
	return b
}

// randomBytes returns n bytes that do not compress, seeded for repeatable tests.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// base64Lines encodes b as MIME base64, 76 characters a line (RFC 2045 §6.8).
func base64Lines(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var s strings.Builder
	for len(enc) > 76 {
		s.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	s.WriteString(enc + "\r\n")
	return s.String()
}

// TestLargeAttachmentsStreamed: attachments over maxHeldAttachment are not held in memory
// by Parse; Open gives exactly the decoded content, wherever the part sits (nested
// multiparts, a text attachment in another charset, base64 cut short), as often as asked.
func TestLargeAttachmentsStreamed(t *testing.T) {
	pdf := randomBytes(maxHeldAttachment+1000, 1)
	png := randomBytes(maxHeldAttachment*2, 2)
	small := randomBytes(1000, 3)
	latin1 := bytes.Repeat([]byte("caf\xe9 cr\xe8me "), maxHeldAttachment/10) // ISO-8859-1
	cut := randomBytes(maxHeldAttachment+300, 4)
	cutB64 := base64Lines(cut)
	cutB64 = cutB64[:len(cutB64)-200] + "!!!\r\n" // corrupt near the end

	raw := "From: Ana <ana@example.org>\r\nSubject: Big files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the files.\r\n" +
		"--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(pdf) +
		"--outer\r\nContent-Type: multipart/related; boundary=\"inner\"\r\n\r\n" +
		"--inner\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n" +
		"--inner\r\nContent-Type: image/png\r\nContent-ID: <img@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(png) +
		"--inner\r\nContent-Type: image/png; name=\"small.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(small) +
		"--inner--\r\n" +
		"--outer\r\nContent-Type: text/plain; charset=iso-8859-1; name=\"menu.txt\"\r\nContent-Disposition: attachment\r\n\r\n" + string(latin1) + "\r\n" +
		"--outer\r\nContent-Type: application/octet-stream; name=\"cut.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + cutB64 +
		"--outer--\r\n"
	m := Parse([]byte(raw))
	if m.Unparsed {
		t.Fatalf("unparsed: %s", m.ParseError)
	}
	want := []struct {
		name   string
		data   []byte
		stream bool
	}{
		{"report.pdf", pdf, true},
		{"part-3.2.png", png, true},
		{"small.png", small, false},
		{"menu.txt", []byte(strings.NewReplacer("\xe9", "é", "\xe8", "è").Replace(string(latin1))), true}, // as UTF-8
		{"cut.bin", nil, true}, // what base64 yields before the corruption: compared with Size only
	}
	if len(m.Attachments) != len(want) {
		t.Fatalf("%d attachments, want %d: %+v", len(m.Attachments), len(want), m.Attachments)
	}
	for i, w := range want {
		a := m.Attachments[i]
		if a.Filename != w.name {
			t.Errorf("attachment %d is %q, want %q", i, a.Filename, w.name)
		}
		if (a.Open != nil) != w.stream || (a.Data != nil) == w.stream {
			t.Errorf("%s: streamed = %t (Data %d bytes), want streamed = %t", w.name, a.Open != nil, len(a.Data), w.stream)
		}
		for try := range 2 { // Open may be called again (a store retries a transaction)
			got := content(t, a)
			if int64(len(got)) != a.Size {
				t.Errorf("%s (read %d): %d bytes, Size says %d", w.name, try+1, len(got), a.Size)
			}
			if w.data != nil && !bytes.Equal(got, w.data) {
				t.Errorf("%s (read %d): content differs from what was sent (%d bytes, want %d)", w.name, try+1, len(got), len(w.data))
			}
		}
	}
	if !bytes.HasPrefix(content(t, m.Attachments[4]), cut[:maxHeldAttachment]) {
		t.Error("cut.bin: the content before the corrupt base64 is not kept")
	}
}

// TestLargeSinglePartMessage: a message that is one large non-text part (no multipart)
// streams it too.
func TestLargeSinglePartMessage(t *testing.T) {
	zip := randomBytes(maxHeldAttachment*3, 5)
	raw := fmt.Sprintf("From: a@example.org\r\nSubject: zip\r\nContent-Type: application/zip; name=\"a.zip\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n%s", base64Lines(zip))
	m := Parse([]byte(raw))
	if len(m.Attachments) != 1 || m.Attachments[0].Open == nil {
		t.Fatalf("attachments %+v, want one streamed", m.Attachments)
	}
	if got := content(t, m.Attachments[0]); !bytes.Equal(got, zip) || m.Attachments[0].Size != int64(len(zip)) {
		t.Errorf("a.zip: %d bytes (Size %d), want the %d sent", len(got), m.Attachments[0].Size, len(zip))
	}
}

// TestLongTextBodyClipped: a text body longer than maxTextBody is shown up to there, cut
// at a line end or between characters, with a note naming the attachment that holds the
// whole text; that attachment is streamed from the raw message and equals the decoded part
// (line ends as sent).
func TestLongTextBodyClipped(t *testing.T) {
	line := "Líne of a very long complaint, with ünïcode € and more words to fill it.\n"
	lines := strings.Repeat(line, 3*maxTextBody/len(line))
	oneLine := strings.Repeat("€", maxTextBody) // 3 bytes each: a cut falls inside one
	for _, c := range []struct {
		name, raw, wantText, file string
		html                      bool
	}{
		{"lines", "From: a@example.org\r\nSubject: Long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			strings.ReplaceAll(lines, "\n", "\r\n"), strings.ReplaceAll(lines, "\n", "\r\n"), "full-text.txt", false},
		{"one line, quoted-printable", "From: a@example.org\r\nSubject: Long\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qpLines(oneLine) + "\r\n--b--\r\n", oneLine, "full-text-1.txt", false},
		{"html", "From: a@example.org\r\nSubject: Long\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" +
			strings.ReplaceAll(lines, "\n", "</p>\r\n<p>") + "</p>\r\n", "", "full-text.html", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := Parse([]byte(c.raw))
			if m.Unparsed {
				t.Fatalf("unparsed: %s", m.ParseError)
			}
			if len(m.Attachments) != 1 || m.Attachments[0].Filename != c.file || m.Attachments[0].Open == nil {
				t.Fatalf("attachments %+v, want %s streamed", m.Attachments, c.file)
			}
			full := content(t, m.Attachments[0])
			if int64(len(full)) != m.Attachments[0].Size || len(full) <= maxTextBody {
				t.Errorf("attachment of %d bytes, Size %d", len(full), m.Attachments[0].Size)
			}
			body := m.TextBody
			if c.html {
				body = m.HTMLBody
			}
			if len(body) > maxTextBody+300 || len(body) < maxTextBody/2 {
				t.Errorf("body of %d bytes, want about %d", len(body), maxTextBody)
			}
			if !strings.Contains(body, "the whole text is attached as "+c.file) || !utf8.ValidString(body) || strings.Contains(body, "\uFFFD") {
				t.Errorf("body does not name %s or has a cut character: ...%q", c.file, body[max(0, len(body)-200):])
			}
			if c.wantText != "" {
				if string(full) != c.wantText {
					t.Errorf("attachment differs from the text (%d vs %d bytes)", len(full), len(c.wantText))
				}
				shown, _, _ := strings.Cut(body, "\n\n[postroom:")
				if !strings.HasPrefix(strings.ReplaceAll(c.wantText, "\r\n", "\n"), shown) {
					t.Errorf("shown text is not the start of the text")
				}
			}
		})
	}
}

// qpLines encodes s as quoted-printable with soft line breaks.
func qpLines(s string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); i++ {
		enc := fmt.Sprintf("=%02X", s[i])
		if n+len(enc) > 75 {
			b.WriteString("=\r\n")
			n = 0
		}
		b.WriteString(enc)
		n += len(enc)
	}
	return b.String()
}
