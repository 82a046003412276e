package demo

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/emersion/go-message/charset" // ISO-8859-1 sample
	"github.com/emersion/go-message/mail"
)

// samplePart is one leaf of a parsed sample.
type samplePart struct {
	contentType string
	contentID   string
	filename    string
	body        []byte
}

// parsedSample is a sample as a MIME-aware reader sees it.
type parsedSample struct {
	raw       []byte
	header    mail.Header
	messageID string
	parts     []samplePart
	walkErr   error // non-nil if the MIME structure could not be walked
}

func parseSample(t *testing.T, raw []byte) parsedSample {
	t.Helper()
	p := parsedSample{raw: raw}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		p.walkErr = err
		return p
	}
	p.header = r.Header
	p.messageID, _ = r.Header.MessageID()
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.walkErr = err
			break
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			p.walkErr = err
			break
		}
		sp := samplePart{body: body}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			sp.contentType, _, _ = h.ContentType()
			sp.contentID = strings.Trim(h.Get("Content-Id"), "<>")
		case *mail.AttachmentHeader:
			sp.contentType, _, _ = h.ContentType()
			sp.contentID = strings.Trim(h.Get("Content-Id"), "<>")
			sp.filename, _ = h.Filename()
		}
		p.parts = append(p.parts, sp)
	}
	return p
}

func parseAllSamples(t *testing.T, now time.Time) []parsedSample {
	t.Helper()
	var out []parsedSample
	for _, raw := range Samples(now) {
		out = append(out, parseSample(t, raw))
	}
	return out
}

func TestSamplesAreWellFormedMail(t *testing.T) {
	now := time.Date(2026, 5, 17, 10, 0, 0, 0, time.UTC)
	samples := Samples(now)
	if len(samples) < 20 {
		t.Fatalf("Samples returned %d messages, want at least 20", len(samples))
	}
	seen := map[string]int{}
	var prev time.Time
	for i, raw := range samples {
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("sample %d has a bare LF line ending", i+1)
		}
		if bytes.Contains(raw, []byte("{{")) {
			t.Errorf("sample %d has an unrendered template action", i+1)
		}
		p := parseSample(t, raw)
		h := p.header
		if p.walkErr != nil && h.Header.Len() == 0 {
			t.Errorf("sample %d: header unreadable: %v", i+1, p.walkErr)
			continue
		}
		to, err := h.AddressList("To")
		if err != nil || len(to) == 0 || to[0].Address != SupportAddress {
			t.Errorf("sample %d: To = %v (%v), want %s", i+1, to, err, SupportAddress)
		}
		if from, err := h.AddressList("From"); err != nil || len(from) != 1 {
			t.Errorf("sample %d: From = %v (%v), want one address", i+1, from, err)
		}
		if subj, err := h.Subject(); err != nil || subj == "" {
			t.Errorf("sample %d: Subject = %q (%v)", i+1, subj, err)
		}
		if p.messageID == "" {
			t.Errorf("sample %d has no Message-ID", i+1)
		} else if j, dup := seen[p.messageID]; dup {
			t.Errorf("samples %d and %d share Message-ID %s", j, i+1, p.messageID)
		}
		seen[p.messageID] = i + 1
		date, err := h.Date()
		if err != nil {
			t.Errorf("sample %d: Date: %v", i+1, err)
			continue
		}
		if date.After(now) || date.Before(now.Add(-6*24*time.Hour)) {
			t.Errorf("sample %d: Date %v is not within the 6 days before %v", i+1, date, now)
		}
		if date.Before(prev) {
			t.Errorf("sample %d: Date %v is before the previous sample's %v (want oldest first)", i+1, date, prev)
		}
		prev = date
	}
}

func TestSamplesMessageIDsDoNotDependOnTime(t *testing.T) {
	a := parseAllSamples(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := parseAllSamples(t, time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC))
	for i := range a {
		if a[i].messageID != b[i].messageID {
			t.Errorf("sample %d: Message-ID %q, then %q", i+1, a[i].messageID, b[i].messageID)
		}
	}
}

// findSample returns the one sample for which match is true.
func findSample(t *testing.T, samples []parsedSample, what string, match func(parsedSample) bool) parsedSample {
	t.Helper()
	var found []parsedSample
	for _, s := range samples {
		if match(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d samples are %s, want 1", len(found), what)
	}
	return found[0]
}

func TestSamplesCoverTheHardCases(t *testing.T) {
	samples := parseAllSamples(t, time.Now())

	t.Run("inline image referenced by cid", func(t *testing.T) {
		s := findSample(t, samples, "multipart/related", func(s parsedSample) bool {
			ct, _, _ := s.header.ContentType()
			return ct == "multipart/related"
		})
		var html []byte
		var img *samplePart
		for i, p := range s.parts {
			switch p.contentType {
			case "text/html":
				html = p.body
			case "image/png":
				img = &s.parts[i]
			}
		}
		if img == nil || html == nil {
			t.Fatalf("parts %v: want text/html and image/png", s.parts)
		}
		if !bytes.Contains(html, []byte(`src="cid:`+img.contentID+`"`)) {
			t.Errorf("HTML does not reference cid:%s:\n%s", img.contentID, html)
		}
		if _, err := png.Decode(bytes.NewReader(img.body)); err != nil {
			t.Errorf("inline image is not a valid PNG: %v", err)
		}
	})

	t.Run("PDF attachment", func(t *testing.T) {
		s := findSample(t, samples, "with a PDF", func(s parsedSample) bool {
			for _, p := range s.parts {
				if p.contentType == "application/pdf" {
					return true
				}
			}
			return false
		})
		for _, p := range s.parts {
			if p.contentType != "application/pdf" {
				continue
			}
			if !strings.HasSuffix(p.filename, ".pdf") {
				t.Errorf("attachment filename %q", p.filename)
			}
			if err := checkPDF(p.body); err != nil {
				t.Errorf("attachment is not a valid PDF: %v", err)
			}
		}
	})

	t.Run("RFC 2047 sender and subject", func(t *testing.T) {
		s := findSample(t, samples, "from Zoë Müller", func(s parsedSample) bool {
			from, err := s.header.AddressList("From")
			return err == nil && len(from) == 1 && from[0].Name == "Zoë Müller"
		})
		if subj, _ := s.header.Subject(); subj != "Réclamation: colis endommagé" {
			t.Errorf("Subject = %q", subj)
		}
		if !strings.Contains(string(s.parts[0].body), "théière en céramique est cassée") {
			t.Errorf("quoted-printable body not decoded to UTF-8: %q", s.parts[0].body)
		}
		if !bytes.Contains(s.raw, []byte("=?UTF-8?")) {
			t.Error("raw header is not RFC 2047 encoded")
		}
	})

	t.Run("ISO-8859-1 charset", func(t *testing.T) {
		s := findSample(t, samples, "from Lucía Fernández", func(s parsedSample) bool {
			from, err := s.header.AddressList("From")
			return err == nil && len(from) == 1 && from[0].Name == "Lucía Fernández"
		})
		if !strings.Contains(string(s.parts[0].body), "¿Podéis comprobar dónde está la caja") {
			t.Errorf("ISO-8859-1 body not decoded: %q", s.parts[0].body)
		}
	})

	t.Run("two-message thread", func(t *testing.T) {
		reply := findSample(t, samples, "replies to another sample", func(s parsedSample) bool {
			irt, _ := s.header.MsgIDList("In-Reply-To")
			for _, o := range samples {
				if len(irt) == 1 && o.messageID == irt[0] {
					return true
				}
			}
			return false
		})
		irt, _ := reply.header.MsgIDList("In-Reply-To")
		refs, _ := reply.header.MsgIDList("References")
		if len(refs) == 0 || refs[len(refs)-1] != irt[0] {
			t.Errorf("References %v does not end with In-Reply-To %v", refs, irt)
		}
		first := findSample(t, samples, "the thread start", func(s parsedSample) bool { return s.messageID == irt[0] })
		fs, _ := first.header.Subject()
		rs, _ := reply.header.Subject()
		if rs != "Re: "+fs {
			t.Errorf("reply Subject %q, first %q", rs, fs)
		}
		fd, _ := first.header.Date()
		rd, _ := reply.header.Date()
		if !rd.After(fd) {
			t.Errorf("reply dated %v, not after first message %v", rd, fd)
		}
	})

	t.Run("hostile HTML", func(t *testing.T) {
		s := findSample(t, samples, "hostile HTML", func(s parsedSample) bool {
			return len(s.parts) == 1 && bytes.Contains(s.parts[0].body, []byte("<script>alert(1)</script>"))
		})
		body := string(s.parts[0].body)
		for _, want := range []string{`<img src=x onerror=`, `width="1" height="1"`, `src="https://track.`, `href="javascript:`} {
			if !strings.Contains(body, want) {
				t.Errorf("hostile HTML lacks %q", want)
			}
		}
	})

	t.Run("auto-reply and bounce", func(t *testing.T) {
		findSample(t, samples, "an out-of-office reply", func(s parsedSample) bool {
			return s.header.Get("Auto-Submitted") == "auto-replied" && !strings.HasPrefix(s.header.Get("Content-Type"), "multipart/report")
		})
		findSample(t, samples, "a delivery status notification", func(s parsedSample) bool {
			ct, params, _ := s.header.ContentType()
			return ct == "multipart/report" && params["report-type"] == "delivery-status"
		})
	})

	t.Run("unparseable MIME", func(t *testing.T) {
		var broken []parsedSample
		for _, s := range samples {
			if s.walkErr != nil {
				broken = append(broken, s)
			}
		}
		if len(broken) != 1 {
			t.Fatalf("%d samples fail MIME parsing, want exactly 1", len(broken))
		}
		// The header must still be readable, or an IMAP server could not
		// even return the message.
		if subj, err := broken[0].header.Subject(); err != nil || subj == "" {
			t.Errorf("broken sample Subject = %q (%v), want a readable header", subj, err)
		}
		if bytes.ContainsAny(broken[0].raw, "\x00") {
			t.Error("broken sample holds NUL, which IMAP literals cannot carry")
		}
	})
}

// checkPDF verifies the PDF structure a reader relies on: header, trailer,
// and a cross-reference table whose offsets point at the objects.
func checkPDF(b []byte) error {
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) {
		return errors.New("no %PDF-1.x header")
	}
	if !bytes.HasSuffix(bytes.TrimRight(b, "\r\n"), []byte("%%EOF")) {
		return errors.New("no %%EOF trailer")
	}
	m := regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`).FindSubmatch(b)
	if m == nil {
		return errors.New("no startxref")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if xref >= len(b) || !bytes.HasPrefix(b[xref:], []byte("xref")) {
		return fmt.Errorf("startxref %d does not point at xref", xref)
	}
	entries := regexp.MustCompile(`(\d{10}) 00000 n`).FindAllSubmatch(b[xref:], -1)
	if len(entries) == 0 {
		return errors.New("empty xref table")
	}
	for i, e := range entries {
		off, _ := strconv.Atoi(string(e[1]))
		want := fmt.Sprintf("%d 0 obj", i+1)
		if off >= len(b) || !bytes.HasPrefix(b[off:], []byte(want)) {
			return fmt.Errorf("xref entry %d (offset %d) does not point at %q", i+1, off, want)
		}
	}
	return nil
}
