package demo

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/mail"
	"path"
	"strings"
	"text/template"
	"time"
)

// sampleFS holds the sample messages (samples/NN-name.eml, text/template
// sources with LF line endings) and the binary files they attach.
//
//go:embed samples
var sampleFS embed.FS

const (
	sampleDir = "samples"
	sampleExt = ".eml"

	// base64LineLength is the longest encoded line allowed: RFC 2045 §6.8.
	base64LineLength = 76
)

// junkBytes stands for a corrupted export in the malformed sample: control
// characters and high bytes that are no valid UTF-8. It holds no NUL, CR or
// LF, so the message still travels as IMAP literal text (RFC 3501 §4.3).
const junkBytes = "\x01\x02\x1b[0m\xff\xfe\x80\x81\x9f\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\x7f\x1a"

// Samples returns the raw sample messages, oldest first, with CRLF line
// endings and dates relative to now (a few minutes to five days before it).
// All are addressed to SupportAddress. Their Message-IDs do not depend on now.
//
// The corpus covers: plain-text requests (order not arrived, refund,
// password reset, address change, complaint, ...), a two-message thread
// (In-Reply-To/References), an HTML message with an inline PNG
// (multipart/related, cid:), a PDF attachment, RFC 2047 encoded UTF-8 and
// ISO-8859-1 headers, an auto-reply, a delivery status notification, a
// phishing-style HTML newsletter with script, event handlers and a tracking
// pixel, and one message whose MIME structure cannot be parsed (multipart
// without a boundary parameter, garbled body).
func Samples(now time.Time) [][]byte {
	entries, err := fs.ReadDir(sampleFS, sampleDir)
	if err != nil {
		panic(fmt.Sprintf("demo: read embedded samples: %v", err)) // embedded at build time
	}
	funcs := template.FuncMap{
		"date":   func(ago, zone string) (string, error) { return sampleDate(now, ago, zone) },
		"base64": embeddedBase64,
		"junk":   func() string { return junkBytes },
	}
	var out [][]byte
	for _, e := range entries { // fs.ReadDir sorts by name: NN- prefix gives the order
		if e.IsDir() || !strings.HasSuffix(e.Name(), sampleExt) {
			continue
		}
		name := path.Join(sampleDir, e.Name())
		src, err := sampleFS.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("demo: read sample %s: %v", name, err))
		}
		tmpl, err := template.New(e.Name()).Funcs(funcs).Parse(string(src))
		if err != nil {
			panic(fmt.Sprintf("demo: parse sample %s: %v", name, err))
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, nil); err != nil {
			panic(fmt.Sprintf("demo: render sample %s: %v", name, err))
		}
		out = append(out, toCRLF(buf.Bytes()))
	}
	return out
}

// sampleDate formats now minus ago (a time.ParseDuration string) in the fixed
// zone offset zone ("+0200"), as an RFC 5322 §3.3 date-time.
func sampleDate(now time.Time, ago, zone string) (string, error) {
	d, err := time.ParseDuration(ago)
	if err != nil {
		return "", fmt.Errorf("sample date %q: %w", ago, err)
	}
	z, err := time.Parse("-0700", zone)
	if err != nil {
		return "", fmt.Errorf("sample zone %q: %w", zone, err)
	}
	_, offset := z.Zone()
	return now.Add(-d).In(time.FixedZone(zone, offset)).Format(time.RFC1123Z), nil
}

// embeddedBase64 returns an embedded sample file as base64 lines of
// base64LineLength characters joined by LF, without a final line break.
func embeddedBase64(name string) (string, error) {
	b, err := sampleFS.ReadFile(path.Join(sampleDir, name))
	if err != nil {
		return "", fmt.Errorf("sample attachment %q: %w", name, err)
	}
	enc := base64.StdEncoding.EncodeToString(b)
	var lines []string
	for len(enc) > base64LineLength {
		lines = append(lines, enc[:base64LineLength])
		enc = enc[base64LineLength:]
	}
	lines = append(lines, enc)
	return strings.Join(lines, "\n"), nil
}

// toCRLF turns every line ending (LF or CRLF) into CRLF, the line ending of
// RFC 5322 §2.1 and of IMAP literals.
func toCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// messageDate returns the Date header of raw, or fallback when it has none or
// it cannot be parsed (the IMAP internal date, RFC 3501 §2.3.3).
func messageDate(raw []byte, fallback time.Time) time.Time {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return fallback
	}
	d, err := m.Header.Date()
	if err != nil {
		return fallback
	}
	return d
}
