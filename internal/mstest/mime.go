package mstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"regexp"
	"strings"
	"time"

	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 bodies like Exchange does
	"github.com/emersion/go-message/mail"
)

// view is what Graph's JSON shows of a message, read from its MIME once.
type view struct {
	subject                   string
	from, sender              *mail.Address
	to, cc, bcc, replyTo      []*mail.Address
	sent                      time.Time
	text, htmlBody            string
	attachments               []*attachment
	messageID, conversationID string
	headers                   [][2]string // internetMessageHeaders, in order
	importance                string
}

// viewOf returns m's view, parsing its MIME on first use.
func (m *message) viewOf() *view {
	if m.view == nil {
		m.view = parseView(m.raw)
	}
	return m.view
}

// parseView reads what it can; an unparseable message still gets a view (Exchange keeps
// anything it received).
func parseView(raw []byte) *view {
	v := &view{importance: "normal"}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && mr == nil {
		v.text = string(raw)
		return v
	}
	h := mr.Header
	v.subject, _ = h.Subject()
	if l, err := h.AddressList("From"); err == nil && len(l) > 0 {
		v.from = l[0]
	}
	if l, err := h.AddressList("Sender"); err == nil && len(l) > 0 {
		v.sender = l[0]
	} else {
		v.sender = v.from
	}
	v.to, _ = h.AddressList("To")
	v.cc, _ = h.AddressList("Cc")
	v.bcc, _ = h.AddressList("Bcc")
	v.replyTo, _ = h.AddressList("Reply-To")
	v.sent, _ = h.Date()
	v.messageID = h.Get("Message-Id")
	switch strings.ToLower(h.Get("Importance")) {
	case "high", "low":
		v.importance = strings.ToLower(h.Get("Importance"))
	}
	fields := h.Fields()
	for fields.Next() {
		v.headers = append(v.headers, [2]string{fields.Key(), fields.Value()})
	}
	root := firstMessageID(h.Get("References"))
	if root == "" {
		root = strings.TrimSpace(h.Get("In-Reply-To"))
	}
	if root == "" {
		root = v.messageID
	}
	if root == "" {
		root = strings.ToLower(normalizeSubject(v.subject))
	}
	sum := sha256.Sum256([]byte(root))
	v.conversationID = "AAQkAGI2" + base64.URLEncoding.EncodeToString(sum[:18])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && p == nil {
			break
		}
		body, _ := io.ReadAll(p.Body)
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			switch {
			case ct == "text/plain" && v.text == "":
				v.text = string(body)
			case ct == "text/html" && v.htmlBody == "":
				v.htmlBody = string(body)
			case !strings.HasPrefix(ct, "text/") && !strings.HasPrefix(ct, "multipart/"):
				v.attachments = append(v.attachments, partAttachment(ct, ph.Get("Content-Id"), "", body, true))
			}
		case *mail.AttachmentHeader:
			ct, _, _ := ph.ContentType()
			name, _ := ph.Filename()
			v.attachments = append(v.attachments, partAttachment(ct, ph.Get("Content-Id"), name, body, false))
		}
	}
	return v
}

func partAttachment(ct, cid, name string, body []byte, inline bool) *attachment {
	if ct == "" {
		ct = "application/octet-stream"
	}
	if name == "" {
		name = "attachment"
	}
	sum := sha256.Sum256(append([]byte(name+ct), body...))
	return &attachment{id: "AAMkAGI2AAABEgAQ" + base64.URLEncoding.EncodeToString(sum[:18]), name: name, contentType: ct,
		content: body, isInline: inline && cid != ""}
}

func firstMessageID(refs string) string {
	if i := strings.IndexByte(refs, '<'); i >= 0 {
		if j := strings.IndexByte(refs[i:], '>'); j > 0 {
			return refs[i : i+j+1]
		}
	}
	return ""
}

var subjectPrefix = regexp.MustCompile(`(?i)^\s*((re|fw|fwd|aw|wg|sv|vs)\s*:\s*)+`)

func normalizeSubject(s string) string { return subjectPrefix.ReplaceAllString(s, "") }

var tagPattern = regexp.MustCompile(`(?s)<style.*?</style>|<script.*?</script>|<[^>]*>`)

// bodyAs returns the body in contentType "text" or "html", converting like Exchange
// does (roughly).
func (v *view) bodyAs(contentType string) (string, string) {
	if contentType == "text" {
		if v.text != "" || v.htmlBody == "" {
			return "text", v.text
		}
		return "text", strings.TrimSpace(html.UnescapeString(tagPattern.ReplaceAllString(v.htmlBody, "")))
	}
	if v.htmlBody != "" {
		return "html", v.htmlBody
	}
	return "html", "<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><div>" +
		strings.ReplaceAll(html.EscapeString(v.text), "\n", "<br>") + "</div></body></html>"
}

// preview is bodyPreview: the first 255 characters of the text.
func (v *view) preview() string {
	_, t := v.bodyAs("text")
	t = strings.Join(strings.Fields(t), " ")
	if r := []rune(t); len(r) > 255 {
		t = string(r[:255])
	}
	return t
}

func recipient(a *mail.Address) map[string]any {
	name := a.Name
	if name == "" {
		name = a.Address
	}
	return map[string]any{"emailAddress": map[string]any{"name": name, "address": a.Address}}
}

func recipients(l []*mail.Address) []any {
	out := []any{}
	for _, a := range l {
		out = append(out, recipient(a))
	}
	return out
}

// composed is a message to write as MIME: from JSON (sendMail, drafts) or a reply.
type composed struct {
	from, sender         *mail.Address
	to, cc, bcc, replyTo []*mail.Address
	subject              string
	bodyType, body       string // "text" or "html"
	headers              [][2]string
	inReplyTo            string
	references           string
	messageID            string
	date                 time.Time
	importance           string
	attachments          []*attachment
}

// mime writes c as an RFC 5322 message. Bcc is left out of the header: the envelope
// carries it.
func (c *composed) mime() ([]byte, error) {
	var h mail.Header
	h.SetDate(c.date)
	if c.from != nil {
		h.SetAddressList("From", []*mail.Address{c.from})
	}
	if c.sender != nil && c.from != nil && !strings.EqualFold(c.sender.Address, c.from.Address) {
		h.SetAddressList("Sender", []*mail.Address{c.sender})
	}
	if len(c.to) > 0 {
		h.SetAddressList("To", c.to)
	}
	if len(c.cc) > 0 {
		h.SetAddressList("Cc", c.cc)
	}
	if len(c.replyTo) > 0 {
		h.SetAddressList("Reply-To", c.replyTo)
	}
	h.SetSubject(c.subject)
	h.Set("Message-Id", c.messageID)
	if c.inReplyTo != "" {
		h.Set("In-Reply-To", c.inReplyTo)
	}
	if c.references != "" {
		h.Set("References", c.references)
	}
	if c.importance != "" && c.importance != "normal" {
		h.Set("Importance", c.importance)
	}
	for _, kv := range c.headers {
		h.Add(kv[0], kv[1])
	}
	h.Set("MIME-Version", "1.0")
	ct := "text/plain"
	if c.bodyType == "html" {
		ct = "text/html"
	}
	var buf bytes.Buffer
	if len(c.attachments) == 0 {
		h.SetContentType(ct, map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		if _, err := io.WriteString(w, c.body); err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		return buf.Bytes(), nil
	}
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	var ih mail.InlineHeader
	ih.SetContentType(ct, map[string]string{"charset": "utf-8"})
	ih.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := mw.CreateSingleInline(ih)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	_, _ = io.WriteString(pw, c.body)
	if err := pw.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := writeAttachments(mw, c.attachments); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return buf.Bytes(), nil
}

func writeAttachments(mw *mail.Writer, atts []*attachment) error {
	for _, a := range atts {
		var ah mail.AttachmentHeader
		ah.SetContentType(a.contentType, nil)
		ah.SetFilename(a.name)
		ah.Set("Content-Transfer-Encoding", "base64")
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return fmt.Errorf("compose attachment %q: %w", a.name, err)
		}
		if _, err := aw.Write(a.content); err != nil {
			return fmt.Errorf("compose attachment %q: %w", a.name, err)
		}
		if err := aw.Close(); err != nil {
			return fmt.Errorf("compose attachment %q: %w", a.name, err)
		}
	}
	return nil
}

// withAttachments adds attachments to a MIME message (a draft made from MIME): the
// original content, still encoded as it was, becomes the first part of a multipart/mixed.
func withAttachments(raw []byte, atts []*attachment) ([]byte, error) {
	if len(atts) == 0 {
		return raw, nil
	}
	head, body, ok := splitHeader(raw)
	if !ok {
		return nil, errors.New("draft MIME has no header")
	}
	var top, content [][]byte
	for _, field := range head {
		name, _, _ := bytes.Cut(field, []byte(":"))
		if bytes.HasPrefix(bytes.ToLower(bytes.TrimSpace(name)), []byte("content-")) {
			content = append(content, field)
		} else {
			top = append(top, field)
		}
	}
	if len(content) == 0 {
		content = append(content, []byte("Content-Type: text/plain; charset=us-ascii\r\n"))
	}
	boundary := "mstest_" + randomToken(18)
	var buf bytes.Buffer
	for _, f := range top {
		buf.Write(f)
	}
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed;\r\n\tboundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
	for _, f := range content {
		buf.Write(f)
	}
	buf.WriteString("\r\n")
	buf.Write(body)
	buf.WriteString("\r\n") // belongs to the boundary: the body keeps its own last line end
	for _, a := range atts {
		name := mimeWord(a.name)
		fmt.Fprintf(&buf, "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			boundary, a.contentType, name, name)
		enc := base64.StdEncoding.EncodeToString(a.content)
		for len(enc) > 76 {
			buf.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		buf.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&buf, "--%s--\r\n", boundary)
	return buf.Bytes(), nil
}

// splitHeader splits raw into header fields (each with its folded lines and line end)
// and the body.
func splitHeader(raw []byte) (fields [][]byte, body []byte, ok bool) {
	rest := raw
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, nil, false
		}
		line := rest[:i+1]
		rest = rest[i+1:]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return fields, rest, true
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] = append(fields[len(fields)-1], line...)
			continue
		}
		fields = append(fields, append([]byte(nil), line...))
	}
	return fields, nil, true
}
