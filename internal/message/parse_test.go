package message

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
)

type wantAttachment struct {
	filename, contentType, contentID string
	inline                           bool
	dataPrefix                       string
	size                             int64
}

type wantMessage struct {
	unparsed         bool
	parseErr         string // substring of ParseError
	subject          string
	fromName         string
	fromAddr         string
	to, cc, replyTo  string
	messageID        string
	inReplyTo        string
	references       []string
	date             string // RFC 3339, "" for zero
	text             []string
	notText          []string
	html             string // substring of HTMLBody; "" means HTMLBody must be empty
	attachments      []wantAttachment
	skipAttachChecks bool
}

func readEML(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file string
		want wantMessage
	}{
		{"plain.eml", wantMessage{
			subject:   "My order 1234 has not arrived",
			fromName:  "Alice Martin",
			fromAddr:  "alice@example.com",
			to:        "Support <support@shop.example>",
			cc:        `bob@example.com, "Smith, Carol" <carol@example.com>`,
			replyTo:   "billing@example.com",
			messageID: "order-1234.1@mail.example.com",
			date:      "2026-03-03T09:15:00+01:00",
			text:      []string{"Hello,\n\nI ordered a kettle two weeks ago (order 1234)", "Thanks,\nAlice"},
			notText:   []string{"\r"},
		}},
		{"html-inline-image.eml", wantMessage{
			subject:   "Your receipt",
			fromName:  "Shop Newsletter",
			fromAddr:  "news@shop.example",
			to:        "alice@example.com",
			messageID: "receipt-77@shop.example",
			date:      "2026-03-04T10:00:00Z",
			// Derived from the HTML: tags gone, entities decoded, structure kept.
			text: []string{
				"Thank you & welcome\n\nYour receipt is below.\nTotal: 12 EUR",
				"- Kettle\n- Filter",
				"See your order <https://shop.example/orders/77>.",
			},
			notText: []string{"<p>", "&amp;", "color: red", "Receipt"},
			html:    `<img src="cid:logo.png@shop.example"`,
			attachments: []wantAttachment{{
				filename: "part-2.png", contentType: "image/png", contentID: "logo.png@shop.example",
				inline: true, dataPrefix: "\x89PNG", size: 70,
			}},
		}},
		{"pdf-attachment.eml", wantMessage{
			subject:   "Invoice attached",
			fromName:  "Dan Lee",
			fromAddr:  "dan@example.org",
			to:        "support@shop.example",
			messageID: "inv-5@example.org",
			date:      "2026-03-05T14:30:00-05:00",
			text:      []string{"Please find the invoice attached."},
			notText:   []string{"multi-part message", "%PDF"},
			attachments: []wantAttachment{{
				filename: "invoice-5.pdf", contentType: "application/pdf",
				dataPrefix: "%PDF-1.4\n", size: 77,
			}},
		}},
		{"non-ascii.eml", wantMessage{
			subject:   "Problème avec ma commande — urgent",
			fromName:  "Jörg Müller",
			fromAddr:  "joerg@example.de",
			to:        "Zé Service <support@shop.example>",
			messageID: "umlaut-1@example.de",
			date:      "2026-03-06T08:00:00+01:00",
			text:      []string{"Grüße aus Köln,\ndie Lieferung ist beschädigt."},
		}},
		{"reply.eml", wantMessage{
			subject:    "RE: Re: My order 1234 has not arrived",
			fromName:   "Alice Martin",
			fromAddr:   "alice@example.com",
			to:         "support@shop.example",
			messageID:  "order-1234.3@mail.example.com",
			inReplyTo:  "order-1234.2@shop.example",
			references: []string{"order-1234.1@mail.example.com", "order-1234.2@shop.example"},
			date:       "2026-03-07T11:11:11Z",
			// format=flowed: the soft line break is joined, the quote kept.
			text: []string{"or refund the order? I would prefer a refund.\n\n> We are looking into it."},
		}},
		{"alternative.eml", wantMessage{
			subject:  "Alternative",
			fromName: "Gina",
			fromAddr: "gina@example.com",
			to:       "support@shop.example",
			text:     []string{"Plain version."},
			notText:  []string{"HTML"},
			html:     "<p>HTML <i>version</i>.</p>",
		}},
		{"unknown-charset.eml", wantMessage{
			subject:  "Old client",
			fromAddr: "legacy@example.jp",
			to:       "support@shop.example",
			// Unknown charset: the part is kept and its 8-bit bytes read as windows-1252.
			text: []string{"Café au lait, 3 €."},
		}},
		{"truncated.eml", wantMessage{
			subject:  "Truncated attachment",
			fromName: "Tina",
			fromAddr: "tina@example.com",
			to:       "support@shop.example",
			text:     []string{"The photo of the damaged box is attached."},
			attachments: []wantAttachment{{
				filename: "box.jpg", contentType: "image/jpeg", dataPrefix: "\xff\xd8\xff\xe0", size: 21,
			}},
		}},
		{"dangerous-html.eml", wantMessage{
			subject:  "Please click",
			fromName: "Eve",
			fromAddr: "eve@example.com",
			to:       "support@shop.example",
			text:     []string{"Hello agent,", "help page <https://example.com/help>", "styled"},
			notText:  []string{"alert", "document.cookie", "@import", "<" + "script"},
			html:     "<script>", // kept as received; SanitizeHTML is applied at display
		}},
		{"malformed-no-delimiter.eml", wantMessage{
			unparsed:  true,
			parseErr:  `contains no part starting with its boundary "never-used"`,
			subject:   "Broken multipart",
			fromAddr:  "broken@example.net",
			to:        "support@shop.example",
			messageID: "broken-1@example.net",
			date:      "2026-03-08T12:00:00Z",
		}},
		{"malformed-no-boundary.eml", wantMessage{
			unparsed: true,
			parseErr: "multipart/mixed but declares no boundary",
			subject:  "Multipart without boundary",
			fromAddr: "broken@example.net",
			to:       "support@shop.example",
		}},
		{"garbage.eml", wantMessage{
			unparsed: true,
			parseErr: "header block is malformed",
			// Recovered from the raw lines, including one after the garbage.
			subject:  "Invoice 42 €",
			fromName: "Mallory",
			fromAddr: "mallory@example.com",
			date:     "2026-03-09T00:00:00Z",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readEML(t, tt.file)
			m := Parse(raw)
			if m.Size != int64(len(raw)) {
				t.Errorf("Size = %d, want %d", m.Size, len(raw))
			}
			checkMessage(t, m, tt.want)
		})
	}
}

func checkMessage(t *testing.T, m store.Message, w wantMessage) {
	t.Helper()
	if m.Unparsed != w.unparsed {
		t.Errorf("Unparsed = %v (%q), want %v", m.Unparsed, m.ParseError, w.unparsed)
	}
	if w.unparsed && !strings.Contains(m.ParseError, w.parseErr) {
		t.Errorf("ParseError = %q, want it to contain %q", m.ParseError, w.parseErr)
	}
	if !w.unparsed && m.ParseError != "" {
		t.Errorf("ParseError = %q on a parsed message", m.ParseError)
	}
	str := []struct{ name, got, want string }{
		{"Subject", m.Subject, w.subject},
		{"FromName", m.FromName, w.fromName},
		{"FromAddr", m.FromAddr, w.fromAddr},
		{"To", m.To, w.to},
		{"Cc", m.Cc, w.cc},
		{"ReplyTo", m.ReplyTo, w.replyTo},
		{"MessageID", m.MessageID, w.messageID},
		{"InReplyTo", m.InReplyTo, w.inReplyTo},
	}
	for _, s := range str {
		if s.got != s.want {
			t.Errorf("%s = %q, want %q", s.name, s.got, s.want)
		}
	}
	if !slices.Equal(m.References, w.references) {
		t.Errorf("References = %q, want %q", m.References, w.references)
	}
	gotDate := ""
	if !m.Date.IsZero() {
		gotDate = m.Date.Format(time.RFC3339)
	}
	if gotDate != w.date {
		t.Errorf("Date = %q, want %q", gotDate, w.date)
	}
	for _, s := range w.text {
		if !strings.Contains(m.TextBody, s) {
			t.Errorf("TextBody = %q, want it to contain %q", m.TextBody, s)
		}
	}
	for _, s := range w.notText {
		if strings.Contains(m.TextBody, s) {
			t.Errorf("TextBody = %q, must not contain %q", m.TextBody, s)
		}
	}
	if w.html == "" && m.HTMLBody != "" {
		t.Errorf("HTMLBody = %q, want empty", m.HTMLBody)
	}
	if w.html != "" && !strings.Contains(m.HTMLBody, w.html) {
		t.Errorf("HTMLBody = %q, want it to contain %q", m.HTMLBody, w.html)
	}
	if w.skipAttachChecks {
		return
	}
	if len(m.Attachments) != len(w.attachments) {
		t.Fatalf("%d attachments %+v, want %d", len(m.Attachments), m.Attachments, len(w.attachments))
	}
	for i, wa := range w.attachments {
		a := m.Attachments[i]
		if a.Filename != wa.filename || a.ContentType != wa.contentType || a.ContentID != wa.contentID || a.Inline != wa.inline {
			t.Errorf("attachment %d = {%q %q %q inline=%v}, want {%q %q %q inline=%v}", i,
				a.Filename, a.ContentType, a.ContentID, a.Inline, wa.filename, wa.contentType, wa.contentID, wa.inline)
		}
		data := content(t, a)
		if !bytes.HasPrefix(data, []byte(wa.dataPrefix)) {
			t.Errorf("attachment %d data starts %q, want %q", i, data[:min(len(data), 16)], wa.dataPrefix)
		}
		if a.Size != wa.size || a.Size != int64(len(data)) {
			t.Errorf("attachment %d Size = %d (data %d), want %d", i, a.Size, len(data), wa.size)
		}
	}
}

func TestParseEdgeCases(t *testing.T) {
	// Build a properly nested message deeper than maxMIMEDepth.
	var nested strings.Builder
	nested.WriteString("From: a@example.com\r\nSubject: deep\r\n")
	for i := 0; i <= maxMIMEDepth; i++ {
		b := "bnd" + strings.Repeat("x", i)
		nested.WriteString("Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n")
	}
	nested.WriteString("Content-Type: text/plain\r\n\r\ntoo deep\r\n")

	tests := []struct {
		name string
		raw  string
		want wantMessage
	}{
		{"empty", "", wantMessage{unparsed: true, parseErr: "empty"}},
		{"name that repeats the address", "From: \"ana@example.org\" <ana@example.org>\r\nTo: \"Support@Example.com\" <support@example.com>, Bob <bob@example.com>\r\nSubject: x\r\n\r\nhi\r\n", wantMessage{
			subject: "x", fromAddr: "ana@example.org", to: "support@example.com, Bob <bob@example.com>", text: []string{"hi"},
		}},
		{"broken part header and no closing boundary", "From: a@example.com\r\nSubject: export\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b1\r\nContent-Type text/plain\r\n\x01junk\r\n", wantMessage{
			unparsed: true, parseErr: "part 2 of the message cannot be read", subject: "export", fromAddr: "a@example.com", text: []string{"first"},
		}},
		{"only white space", "\r\n\r\n  \r\n", wantMessage{unparsed: true, parseErr: "empty"}},
		{"header without body", "Subject: just a header\r\nFrom: x@example.com", wantMessage{
			subject: "just a header", fromAddr: "x@example.com",
		}},
		{"mbox From line and LF endings", "From alice@example.com Mon Mar  9 10:00:00 2026\nFrom: alice@example.com\nSubject: from mbox\n\nbody line\n", wantMessage{
			subject: "from mbox", fromAddr: "alice@example.com", text: []string{"body line"},
		}},
		{"no header separator", "hello there, this is not a header\r\nSubject: later\r\n", wantMessage{
			unparsed: true, parseErr: "blank line between header and body may be missing", subject: "later",
		}},
		{"Sender when no From, lenient address, bare message ids", "Sender: Ops Team <ops@example.com\r\nTo: Bob <bob@example.com\r\nMessage-ID: id-without-brackets@example.com\r\nReferences: <a@x><b@x>  c@x\r\nIn-Reply-To: <b@x> (Bob's message)\r\n\r\nhi\r\n", wantMessage{
			fromName: "Ops Team", fromAddr: "ops@example.com", to: "Bob <bob@example.com>",
			messageID: "id-without-brackets@example.com", inReplyTo: "b@x", references: []string{"a@x", "b@x"},
			text: []string{"hi"},
		}},
		// A raw 8-bit header is read as windows-1252, as bodies are; the body claims UTF-8, so
		// its invalid byte is replaced.
		{"raw 8-bit latin-1 header and NUL in body", "Subject: Caf\xe9\r\nFrom: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnul\x00byte \xff\r\n", wantMessage{
			subject: "Café", fromAddr: "a@example.com", text: []string{"nulbyte \ufffd"},
		}},
		{"iso-8859-1 html only", "From: a@example.com\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>Sch\xf6n &lt;3</p><p>Zweite</p>", wantMessage{
			fromAddr: "a@example.com", text: []string{"Schön <3\n\nZweite"}, html: "<p>Schön &lt;3</p>",
		}},
		{"duplicate boundary parameter still read", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=one; boundary=two\r\n\r\n--one\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--one--\r\n", wantMessage{
			fromAddr: "a@example.com", text: []string{"first"},
		}},
		{"nesting too deep", nested.String(), wantMessage{
			unparsed: true, parseErr: "nest deeper than", subject: "deep", fromAddr: "a@example.com",
		}},
		{"unnamed attachment and mixed text parts", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nbefore\r\n--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--m\r\nContent-Type: text/plain\r\n\r\nafter\r\n--m--\r\n", wantMessage{
			fromAddr: "a@example.com", text: []string{"before\n\nafter"},
			attachments: []wantAttachment{{filename: "part-2.bin", contentType: "application/octet-stream", dataPrefix: "\x00\x01\x02", size: 3}},
		}},
		{"forwarded message and path-like filename", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--m\r\nContent-Type: text/plain; name=\"../../etc/passwd\"\r\n\r\nroot\r\n--m--\r\n", wantMessage{
			fromAddr: "a@example.com", text: []string{"see below"}, notText: []string{"inner body", "root"},
			attachments: []wantAttachment{
				{filename: "part-2.eml", contentType: "message/rfc822", dataPrefix: "Subject: inner", size: 28},
				{filename: "passwd", contentType: "text/plain", dataPrefix: "root", size: 4},
			},
		}},
		{"broken part header", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nok\r\n--m\r\nno colon here\r\n\r\nx\r\n--m--\r\n", wantMessage{
			unparsed: true, parseErr: "part 2 of the message cannot be read", fromAddr: "a@example.com", text: []string{"ok"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse([]byte(tt.raw))
			if m.Size != int64(len(tt.raw)) {
				t.Errorf("Size = %d, want %d", m.Size, len(tt.raw))
			}
			checkMessage(t, m, tt.want)
		})
	}
}

func TestParseCapsReferences(t *testing.T) {
	var ids []string
	for i := range 50 {
		ids = append(ids, "<r"+string(rune('A'+i%26))+string(rune('a'+i/26))+"@x>")
	}
	m := Parse([]byte("From: a@example.com\r\nReferences: " + strings.Join(ids, "\r\n ") + "\r\n\r\nx"))
	if len(m.References) != maxReferences {
		t.Fatalf("%d references kept, want %d", len(m.References), maxReferences)
	}
	if m.References[0] != "rAa@x" || m.References[maxReferences-1] != strings.Trim(ids[49], "<>") {
		t.Errorf("References = %q: want the first and the latest kept", m.References)
	}
}

// FuzzParse checks that Parse never panics, leaves the raw bytes as they were and keeps
// its invariants on any input. It starts from every message of testdata and
// testdata/corpus (the odd shapes of real mail):
//
//	go test -run '^$' -fuzz FuzzParse ./internal/message/
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	shapes, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	for _, name := range append(files, shapes...) {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(""))
	f.Add([]byte("Subject: x\r\n\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--a--"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<table><tr><td>a<td>b</table><pre>  x\n  y</pre>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keep := bytes.Clone(raw)
		m := Parse(raw)
		if !bytes.Equal(raw, keep) {
			t.Fatal("Parse changed the raw bytes")
		}
		if m.Size != int64(len(raw)) {
			t.Fatalf("Size = %d, want %d", m.Size, len(raw))
		}
		if m.Unparsed != (m.ParseError != "") {
			t.Fatalf("Unparsed = %v but ParseError = %q", m.Unparsed, m.ParseError)
		}
		fields := []string{m.MessageID, m.InReplyTo, m.Subject, m.FromName, m.FromAddr, m.To, m.Cc, m.ReplyTo, m.TextBody, m.HTMLBody, m.ParseError}
		fields = append(fields, m.References...)
		for _, a := range m.Attachments {
			fields = append(fields, a.Filename, a.ContentType, a.ContentID)
			if data := content(t, a); a.Size != int64(len(data)) {
				t.Fatalf("attachment Size %d, data %d", a.Size, len(data))
			}
		}
		for _, s := range fields {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("field %q is not storable text", s)
			}
		}
		if len(m.References) > maxReferences {
			t.Fatalf("%d references", len(m.References))
		}
		if !bytes.Equal(raw, keep) {
			t.Fatal("reading the attachments changed the raw bytes")
		}
	})
}
