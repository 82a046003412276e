package message

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"

	"github.com/postroom/postroom/internal/store"
)

// Draft is an outgoing plain-text message before it is rendered as MIME.
type Draft struct {
	From       mail.Address
	To, Cc     []mail.Address
	Subject    string
	InReplyTo  string   // message id without angle brackets
	References []string // without angle brackets, oldest first
	Text       string   // plain text body (UTF-8)
	Date       time.Time
	MessageID  string // without brackets; generated (random@from-domain) when empty
	// AutoSubmitted marks an automatic reply (Auto-Submitted: auto-replied, RFC 3834).
	AutoSubmitted bool
	// Bcc are blind copies: envelope recipients only, never written in the header.
	Bcc []mail.Address
	// Attachments are added as parts after the text (multipart/mixed), base64 encoded.
	Attachments []DraftAttachment
}

// DraftAttachment is a file attached to an outgoing message: its bytes in Data, or, for
// a file that should not be held in memory (an upload spooled to disk), Open, which gives
// them as a stream while the message is written.
type DraftAttachment struct {
	Filename    string
	ContentType string // "" or unparsable: application/octet-stream
	Data        []byte
	Open        func() (io.ReadCloser, error)
}

// write copies the attachment's bytes to w.
func (a DraftAttachment) write(w io.Writer) error {
	if a.Open == nil {
		_, err := w.Write(a.Data)
		return err
	}
	r, err := a.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}

// replyPrefix matches one leading reply prefix in any letter case: "Re:" (RFC 5322
// §3.6.5 recommends "Re: ") and the words mail clients use in its place (replyWords,
// subject.go), also numbered ("Re[2]:"); "Fwd:" and other forward prefixes are left alone.
var replyPrefix = regexp.MustCompile(`^(?i:` + replyWords + `)` + prefixCount + `\s*:\s*`)

// ReplySubject returns "Re: " + subject without stacking: "Re: Re: x", "RE: x" and
// "AW: Re: x" become "Re: x"; "Fwd: x" becomes "Re: Fwd: x".
func ReplySubject(subject string) string {
	return strings.TrimSpace("Re: " + stripPrefixes(replyPrefix, subject))
}

// ReplyDraft builds the reply from from to orig: To is orig's Reply-To when set, else its
// sender; the subject gets one "Re: "; In-Reply-To and References follow RFC 5322 §3.6.4
// (References is orig's References, or its In-Reply-To when it has none, plus its
// Message-ID, capped to maxReferences keeping the first); the text is followed by the
// quoted original ("On <date>, <sender> wrote:" and "> " lines).
func ReplyDraft(orig store.Message, from mail.Address, text string, now time.Time) Draft {
	var to []mail.Address
	for _, a := range addressList(orig.ReplyTo) {
		if a.Address == "" {
			continue
		}
		if a.Name == "" && strings.EqualFold(a.Address, orig.FromAddr) {
			a.Name = orig.FromName
		}
		to = append(to, *a)
	}
	if len(to) == 0 && orig.FromAddr != "" {
		to = []mail.Address{{Name: orig.FromName, Address: orig.FromAddr}}
	}
	return Draft{
		From:       from,
		To:         to,
		Subject:    ReplySubject(orig.Subject),
		InReplyTo:  orig.MessageID,
		References: threadReferences(orig),
		Text:       withQuote(text, orig),
		Date:       now,
	}
}

// threadReferences is the References of a message that follows orig in its thread:
// orig's References (or its In-Reply-To when it has none) and its Message-ID, capped to
// maxReferences keeping the first.
func threadReferences(orig store.Message) []string {
	refs := append([]string(nil), orig.References...)
	if len(refs) == 0 && orig.InReplyTo != "" {
		refs = append(refs, orig.InReplyTo)
	}
	if orig.MessageID != "" {
		refs = append(refs, orig.MessageID)
	}
	return capReferences(refs)
}

// ReplyAll adds to a reply draft the other recipients of orig as Cc (RFC 5322 §3.6.3
// "reply all"): orig's To and Cc, without the draft's own To, without duplicates, and
// without the addresses ours says are our own (our mailboxes and From addresses), so that
// we never copy ourselves.
func ReplyAll(d *Draft, orig store.Message, ours func(addr string) bool) {
	seen := map[string]bool{strings.ToLower(d.From.Address): true}
	for _, a := range d.To {
		seen[strings.ToLower(a.Address)] = true
	}
	for _, a := range d.Cc {
		seen[strings.ToLower(a.Address)] = true
	}
	for _, list := range []string{orig.To, orig.Cc} {
		for _, a := range addressList(list) {
			key := strings.ToLower(a.Address)
			if a.Address == "" || seen[key] || ours(a.Address) {
				continue
			}
			seen[key] = true
			d.Cc = append(d.Cc, *a)
		}
	}
}

// withQuote appends the quoted original text to a reply text.
func withQuote(text string, orig store.Message) string {
	text = strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	body := strings.TrimSpace(strings.ReplaceAll(orig.TextBody, "\r\n", "\n"))
	if body == "" {
		return text
	}
	truncated := false
	if len(body) > maxQuotedBytes {
		body, truncated = truncate(body, maxQuotedBytes), true
	}

	who := displayAddress(mail.Address{Name: orig.FromName, Address: orig.FromAddr})
	if who == "" {
		who = "the sender"
	}
	var b strings.Builder
	if text != "" {
		b.WriteString(text)
		b.WriteString("\n\n")
	}
	if orig.Date.IsZero() {
		fmt.Fprintf(&b, "%s wrote:\n", who)
	} else {
		fmt.Fprintf(&b, "On %s, %s wrote:\n", orig.Date.Format("Mon, 2 Jan 2006 15:04 -0700"), who)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, ">") {
			b.WriteString(">" + line + "\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	if truncated {
		b.WriteString("> [quoted text shortened]\n")
	}
	return b.String()
}

// Compose renders the draft as a MIME message (text/plain; charset=utf-8,
// quoted-printable, CRLF line endings; non-ASCII subject and names RFC 2047 encoded) and
// returns its bytes and its parsed record, Direction store.Outbound. The Date defaults to
// the current time and the Message-ID to random@<From domain>. Message ids that cannot be
// written safely are left out of In-Reply-To and References rather than failing the reply.
func Compose(d Draft) ([]byte, store.Message, error) {
	from, err := checkAddress(d.From)
	if err != nil {
		return nil, store.Message{}, fmt.Errorf("compose: From: %w", err)
	}
	to, err := checkAddresses(d.To)
	if err != nil {
		return nil, store.Message{}, fmt.Errorf("compose: To: %w", err)
	}
	cc, err := checkAddresses(d.Cc)
	if err != nil {
		return nil, store.Message{}, fmt.Errorf("compose: Cc: %w", err)
	}
	if len(to)+len(cc) == 0 {
		return nil, store.Message{}, errors.New("compose: the message has no recipient")
	}

	msgID := d.MessageID
	if msgID == "" {
		if msgID, err = newMessageID(from.Address); err != nil {
			return nil, store.Message{}, fmt.Errorf("compose: %w", err)
		}
	} else if !safeMsgID(msgID) {
		return nil, store.Message{}, fmt.Errorf("compose: Message-ID %q is not a valid message id", msgID)
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}

	var refs []string
	for _, r := range d.References {
		if safeMsgID(r) {
			refs = append(refs, r)
		}
	}

	// go-message writes the fields last-set first, so they are set in reverse order to come
	// out as Date, From, To, Cc, Subject, Message-ID, In-Reply-To, References, MIME fields.
	var h gomail.Header
	if len(d.Attachments) == 0 {
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	}
	h.AddRaw([]byte("MIME-Version: 1.0\r\n"))
	if d.AutoSubmitted {
		// RFC 3834 §5: mark automatic replies so that other responders do not answer them.
		h.AddRaw([]byte("Auto-Submitted: auto-replied\r\n"))
	}
	h.SetMsgIDList("References", capReferences(refs))
	if safeMsgID(d.InReplyTo) {
		h.SetMsgIDList("In-Reply-To", []string{d.InReplyTo})
	}
	h.AddRaw([]byte("Message-ID: <" + msgID + ">\r\n"))
	h.SetSubject(strings.Join(strings.Fields(d.Subject), " "))
	h.SetAddressList("Cc", cc)
	h.SetAddressList("To", to)
	h.SetAddressList("From", []*mail.Address{from})
	h.SetDate(date)

	if _, err := checkAddresses(d.Bcc); err != nil {
		return nil, store.Message{}, fmt.Errorf("compose: Bcc: %w", err)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(d.Text, "\r\n", "\n"), "\r", "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	var buf bytes.Buffer
	if len(d.Attachments) == 0 {
		if err := writeSingle(&buf, h, text); err != nil {
			return nil, store.Message{}, err
		}
	} else if err := writeMixed(&buf, h, text, d.Attachments); err != nil {
		return nil, store.Message{}, err
	}

	raw := buf.Bytes()
	m := Parse(raw)
	if m.Unparsed {
		return nil, store.Message{}, fmt.Errorf("compose: the composed message does not parse: %s", m.ParseError)
	}
	m.Direction = store.Outbound
	return raw, m, nil
}

// checkAddress validates one address and returns a copy with a name safe for a header.
func checkAddress(a mail.Address) (*mail.Address, error) {
	addr := strings.TrimSpace(a.Address)
	parsed, err := mail.ParseAddress("<" + addr + ">")
	if err != nil || addr == "" || parsed.Address != addr {
		return nil, fmt.Errorf("%q is not a valid email address", a.Address)
	}
	name := strings.Join(strings.Fields(a.Name), " ") // no CR/LF or tabs in a header
	return &mail.Address{Name: name, Address: addr}, nil
}

func checkAddresses(l []mail.Address) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(l))
	for _, a := range l {
		c, err := checkAddress(a)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// safeMsgID reports whether id can be written between angle brackets as RFC 5322 msg-id:
// printable US-ASCII without specials that would end or break the field, with an "@".
func safeMsgID(id string) bool {
	if id == "" || len(id) > 250 || !strings.Contains(id, "@") {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()\",;:`, c) >= 0 {
			return false
		}
	}
	return true
}

// newMessageID returns random@domain of addr (RFC 5322 §3.6.4: unique, right side a domain
// we own).
func newMessageID(addr string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate Message-ID: %w", err)
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	id := hex.EncodeToString(b[:]) + "@" + domain
	if !safeMsgID(id) {
		id = hex.EncodeToString(b[:]) + "@postroom.invalid"
	}
	return id, nil
}

// writeSingle writes a text-only message: the header (with its text/plain fields) and the
// quoted-printable text.
func writeSingle(buf *bytes.Buffer, h gomail.Header, text string) error {
	w, err := gomail.CreateSingleInlineWriter(buf, h)
	if err != nil {
		return fmt.Errorf("compose: write header: %w", err)
	}
	if _, err := io.WriteString(w, text); err != nil {
		return fmt.Errorf("compose: write body: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compose: write body: %w", err)
	}
	return nil
}

// writeMixed writes a multipart/mixed message: the text, then each attachment in base64.
func writeMixed(buf *bytes.Buffer, h gomail.Header, text string, atts []DraftAttachment) error {
	mw, err := gomail.CreateWriter(buf, h)
	if err != nil {
		return fmt.Errorf("compose: write header: %w", err)
	}
	var th gomail.InlineHeader
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		return fmt.Errorf("compose: write text part: %w", err)
	}
	if _, err := io.WriteString(tw, text); err != nil {
		return fmt.Errorf("compose: write text part: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("compose: write text part: %w", err)
	}
	for _, a := range atts {
		var ah gomail.AttachmentHeader
		ct, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil || !strings.Contains(ct, "/") {
			ct, params = "application/octet-stream", nil
		}
		delete(params, "name")
		ah.SetContentType(ct, params)
		ah.Set("Content-Transfer-Encoding", "base64")
		ah.SetFilename(AttachmentName(a.Filename))
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return fmt.Errorf("compose: attachment %q: %w", a.Filename, err)
		}
		if err := a.write(aw); err != nil {
			return fmt.Errorf("compose: attachment %q: %w", a.Filename, err)
		}
		if err := aw.Close(); err != nil {
			return fmt.Errorf("compose: attachment %q: %w", a.Filename, err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("compose: close the message: %w", err)
	}
	return nil
}

// AttachmentName makes a file name safe to send and to save: the last path element,
// without control characters, at most 200 bytes; "attachment" when nothing is left.
func AttachmentName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 200 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		return "attachment"
	}
	return name
}

// EncodedSize is the size of data once base64 encoded in 76-character lines, as an
// attachment travels.
func EncodedSize(n int) int64 {
	enc := int64((n + 2) / 3 * 4)
	return enc + enc/76*2 + 2
}
