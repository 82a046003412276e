package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 charsets (ISO-8859-x, windows-125x, ...)
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"

	"github.com/postroom/postroom/internal/store"
)

// Parse parses a raw RFC 5322 message with a MIME body into its stored form. It never fails.
//
// The message is Unparsed (ParseError says why) when:
//   - it is empty, or its header block cannot be read (a line that is neither a header
//     field nor a continuation before the blank line, e.g. binary garbage without a header
//     separator); Subject, From, Date and the ids are then recovered from whatever lines
//     look like header fields;
//   - a multipart (at any depth) declares no boundary, never uses its boundary, has a part
//     whose header is broken, nests deeper than maxMIMEDepth or has more than maxMIMEParts
//     parts; the header fields and the parts read before the failure are kept.
//
// A multipart whose closing boundary is missing (a truncated message, or a careless sender)
// is NOT unparsed: its last part runs to the end of the input, at any depth, as mail
// clients show it. An unknown charset or transfer encoding only affects its part, which is
// kept as read (text that is not UTF-8 is read as windows-1252).
//
// What real mail gets wrong is read as mature parsers read it: empty or white-space-only
// lines or a byte-order mark before the first header field (headerStart); empty MIME
// parts, an inner boundary that begins with the outer one, mixed line ends
// (multipartReader); parameters in RFC 2231 form with any charset name (mediaParams);
// encoded-words with raw 8-bit bytes, in UTF-7, inside quoted names or with a misspelt or
// unknown charset, and raw 8-bit header text (decodeText, decodeCharset); comments inside
// addresses (addressList).
//
// Bodies: the first text/plain part becomes TextBody and the first text/html part HTMLBody
// (further text parts outside a multipart/alternative are appended); when there is only
// HTML, TextBody is derived from it. Every other leaf part is an Attachment; Inline is set
// for parts with a Content-ID that are not marked as attachments (images referenced by
// cid: URLs). Text bodies use "\n" line endings.
func Parse(raw []byte) store.Message {
	p := parser{raw: raw, msg: store.Message{Size: int64(len(raw))}}
	p.parse()
	m := &p.msg
	if m.TextBody == "" && m.HTMLBody != "" {
		m.TextBody = htmlToText(m.HTMLBody)
	}
	m.TextBody = cleanText(m.TextBody)
	m.HTMLBody = cleanText(m.HTMLBody)
	if m.Unparsed && m.ParseError == "" {
		m.ParseError = "the message could not be parsed"
	}
	return p.msg
}

type parser struct {
	raw   []byte
	msg   store.Message
	parts int // leaf and multipart parts seen, for maxMIMEParts
}

// brokenError is a broken header block or MIME structure: the message is unparsed.
type brokenError struct{ why string }

func (e *brokenError) Error() string { return e.why }

func broken(format string, args ...any) error {
	return &brokenError{why: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() {
	body := headerStart(p.raw)
	if len(bytes.TrimSpace(body)) == 0 {
		p.unparsed("the message is empty")
		return
	}
	br := bufio.NewReader(bytes.NewReader(body))
	h, err := textproto.ReadHeader(br)
	if err != nil && !(errors.Is(err, io.EOF) && h.Len() > 0) {
		// Keep what the lenient scan finds; it also covers the fields read before the error.
		p.headerFields(recoverHeader(body))
		p.unparsed("the header block is malformed (" + describeHeaderError(err) + ")")
		return
	}
	p.headerFields(h)

	e, _ := gomessage.New(gomessage.Header{Header: h}, br)
	if werr := p.walk(e, "", "", 0); werr != nil {
		var b *brokenError
		if errors.As(werr, &b) {
			p.unparsed("the MIME structure is broken: " + b.why)
		} else {
			p.unparsed(werr.Error())
		}
	}
}

func (p *parser) unparsed(why string) {
	p.msg.Unparsed = true
	p.msg.ParseError = why
}

// headerStart returns raw from its first header field on, skipping what comes before it
// in real mail: a UTF-8 byte-order mark (a message saved by a Windows editor), a leading
// mbox "From sender date" line (kept by some exports), and empty or white-space-only lines
// before a line that is a header field (left by export tools). raw itself is not changed.
func headerStart(raw []byte) []byte {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	rest := raw
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		if len(bytes.TrimSpace(line)) > 0 {
			if name, _, ok := bytes.Cut(line, []byte(":")); ok && validFieldName(string(bytes.TrimRight(name, " \t"))) {
				return rest
			}
			return raw
		}
		if !found {
			break
		}
		rest = after
	}
	return raw
}

// describeHeaderError words a textproto.ReadHeader error for a supervisor.
func describeHeaderError(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it has no header fields"
	}
	s := err.Error()
	s = strings.TrimPrefix(s, "message: ")
	switch {
	case strings.HasPrefix(s, "malformed MIME header line"):
		return "a line before the body is not a header field; the blank line between header and body may be missing"
	case strings.HasPrefix(s, "malformed MIME header key"):
		return "a header field name contains characters that are not allowed"
	case strings.HasPrefix(s, "malformed MIME header initial line"):
		return "the first line starts with white space"
	}
	return truncate(cleanText(s), 200)
}

// recoverHeader scans the start of a message whose header block is broken for lines that
// look like header fields ("Name: value", with continuation lines) and skips the rest.
func recoverHeader(raw []byte) textproto.Header {
	if len(raw) > maxRecoverBytes {
		raw = raw[:maxRecoverBytes]
	}
	var h textproto.Header
	var key, value string
	flush := func() {
		if key != "" {
			h.Add(key, strings.TrimSpace(value))
		}
		key, value = "", ""
	}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break // end of the header block, if there is one
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" {
				value += " " + strings.TrimSpace(line)
			}
			continue
		}
		flush()
		i := strings.IndexByte(line, ':')
		if i <= 0 || !validFieldName(line[:i]) {
			continue
		}
		key, value = line[:i], line[i+1:]
	}
	flush()
	return h
}

// validFieldName reports whether s is an RFC 5322 §3.6.8 field name (printable US-ASCII
// except colon).
func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return s != ""
}

// headerFields fills the message's header fields from h.
func (p *parser) headerFields(th textproto.Header) {
	h := gomail.Header{Header: gomessage.Header{Header: th}}
	m := &p.msg

	m.Subject = cleanText(decodeText(h.Get("Subject")))
	if d, err := h.Date(); err == nil {
		m.Date = d
	}
	m.MessageID = firstOf(msgIDs(h.Get("Message-Id")))
	m.InReplyTo = firstOf(msgIDs(h.Get("In-Reply-To")))
	m.References = capReferences(msgIDs(h.Get("References")))

	from := addressList(h.Get("From"))
	if len(from) == 0 {
		from = addressList(h.Get("Sender"))
	}
	if len(from) > 0 {
		m.FromName, m.FromAddr = from[0].Name, from[0].Address
		if strings.EqualFold(m.FromName, m.FromAddr) {
			m.FromName = ""
		}
	}
	m.To = displayList(h.Get("To"))
	m.Cc = displayList(h.Get("Cc"))
	if rt := addressList(h.Get("Reply-To")); len(rt) > 0 {
		m.ReplyTo = rt[0].Address
	}
}

// msgIDs extracts message ids from a Message-ID, In-Reply-To or References value: every
// <...> group, or, for values written without brackets, the whitespace-separated words.
// Comments and phrases (seen in old In-Reply-To fields) are dropped.
func msgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := cleanMsgID(rest[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) > 0 || strings.ContainsAny(v, "<>") {
		return ids
	}
	for _, f := range strings.Fields(v) {
		if id := cleanMsgID(f); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// cleanMsgID returns id without white space and control characters, or "" when it cannot
// be a message id.
func cleanMsgID(id string) string {
	id = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == utf8.RuneError {
			return -1
		}
		return r
	}, id)
	if len(id) > 250 { // RFC 5322 allows any length; longer ones are junk in practice
		return ""
	}
	return id
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// capReferences keeps the first message id (the thread's root) and the last
// maxReferences-1 ids.
func capReferences(ids []string) []string {
	if len(ids) <= maxReferences {
		return ids
	}
	out := make([]string, 0, maxReferences)
	out = append(out, ids[0])
	return append(out, ids[len(ids)-(maxReferences-1):]...)
}

// addressParser parses address lists; its word decoder never refuses a charset, so one
// odd encoded-word does not make the whole list unreadable.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: tolerantCharsetReader}}

// addressList parses an address list field, decoding RFC 2047 names. It reads what real
// mail has: raw 8-bit bytes (inside encoded-words in the word's charset, elsewhere as
// lenientUTF8), encoded-words inside quoted names, and comments anywhere
// ("pete(his account)@silly.test(his host)" is pete@silly.test). A field that is still not
// valid RFC 5322 is read address by address, leniently.
func addressList(v string) []*mail.Address {
	v = strings.TrimSpace(lenientUTF8(escapeWordBytes(v)))
	if v == "" {
		return nil
	}
	l, err := addressParser.ParseList(v)
	if err != nil {
		l = nil
		for _, part := range splitAddresses(v) {
			if a := oneAddress(part); a != nil {
				l = append(l, a)
			}
		}
	}
	for _, a := range l {
		if strings.Contains(a.Name, "=?") {
			a.Name = decodeText(a.Name) // an encoded-word inside a quoted name
		}
		a.Name = cleanText(a.Name)
		a.Address = cleanText(a.Address)
	}
	return l
}

// oneAddress reads one address of a list that is not valid RFC 5322 as a whole: as it is,
// without its comments, or leniently.
func oneAddress(s string) *mail.Address {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if a, err := addressParser.Parse(s); err == nil {
		return a
	}
	if strings.ContainsRune(s, '(') {
		if a, err := addressParser.Parse(stripComments(s)); err == nil {
			return a
		}
	}
	return lenientAddress(decodeText(stripComments(s)))
}

// splitAddresses splits an address list on commas outside quotes, angle brackets and
// comments.
func splitAddresses(s string) []string {
	var out []string
	var quoted bool
	angle, comment, start := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && (quoted || comment > 0):
			i++
		case c == '"' && comment == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			comment++
		case c == ')' && comment > 0:
			comment--
		case comment > 0:
		case c == '<':
			angle++
		case c == '>':
			angle--
		case c == ',' && angle <= 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// stripComments removes the RFC 5322 comments (parenthesized, nested, with backslash
// escapes) outside quoted strings from an address. A comment between two words becomes
// a space, one next to a special ("@", ".", "<", ...) or white space nothing, so that
// "pete(his account)@silly.test(his host)" becomes "pete@silly.test".
func stripComments(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			b.WriteByte(c)
			i++
			b.WriteByte(s[i])
			continue
		case c == '"':
			quoted = !quoted
		case c == '(' && !quoted:
			depth := 0
			j := i
			for ; j < len(s); j++ {
				switch s[j] {
				case '\\':
					j++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			var next byte = ' '
			if j+1 < len(s) {
				next = s[j+1]
			}
			out := b.String()
			if out != "" && isWordByte(out[len(out)-1]) && isWordByte(next) {
				b.WriteByte(' ')
			}
			i = j
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isWordByte reports whether c can be part of an atom (not white space or a special).
func isWordByte(c byte) bool {
	return c > ' ' && !strings.ContainsRune(`()<>[]:;@\,."`, rune(c))
}

// lenientAddress reads "Name <addr>", "<addr>" or "addr" without insisting on RFC 5322.
func lenientAddress(s string) *mail.Address {
	s = cleanText(strings.TrimSpace(s))
	if s == "" {
		return nil
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		addr := s[i+1:]
		if j := strings.IndexByte(addr, '>'); j >= 0 {
			addr = addr[:j]
		}
		name := strings.Trim(strings.TrimSpace(s[:i]), `"' `)
		return &mail.Address{Name: name, Address: strings.TrimSpace(addr)}
	}
	for _, f := range strings.Fields(s) {
		if strings.Contains(f, "@") {
			return &mail.Address{Address: strings.Trim(f, `"'()<>,;`)}
		}
	}
	return &mail.Address{Name: s}
}

// displayList formats an address list field for display: names decoded, in RFC 5322
// syntax ("Name" <addr>, other@example.com).
func displayList(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	l := addressList(v)
	if len(l) == 0 {
		return cleanText(strings.TrimSpace(decodeText(v)))
	}
	s := make([]string, 0, len(l))
	for _, a := range l {
		s = append(s, displayAddress(*a))
	}
	return strings.Join(s, ", ")
}

// displayAddress formats one address with its name in UTF-8 (not RFC 2047 encoded), quoted
// when it contains specials.
func displayAddress(a mail.Address) string {
	switch {
	case a.Name == "" || strings.EqualFold(a.Name, a.Address):
		// Outlook writes "x@example.com" <x@example.com>: the name adds nothing.
		return a.Address
	case a.Address == "":
		return a.Name
	case strings.ContainsAny(a.Name, `()<>[]:;@\,."`):
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Name)
		return `"` + q + `" <` + a.Address + ">"
	default:
		return a.Name + " <" + a.Address + ">"
	}
}

// walk reads the entity e at MIME path (1-based, dotted, "" for the top level) whose parent
// has media type parent. It returns a *brokenError for a broken structure. go-message's
// errors for unknown charsets and transfer encodings are ignored on purpose: the entity is
// still readable (undecoded) and decodeBody makes the best of it.
func (p *parser) walk(e *gomessage.Entity, path, parent string, depth int) error {
	p.parts++
	if p.parts > maxMIMEParts {
		return broken("it has more than %d parts", maxMIMEParts)
	}
	mediaType, params := contentType(e.Header)
	if strings.HasPrefix(mediaType, "multipart/") {
		return p.walkMultipart(e, mediaType, params, path, depth)
	}
	meta := leafMeta(e.Header, params)
	alternative := parent == "multipart/alternative"
	if p.isTextBody(mediaType, meta, alternative) {
		// One buffer, sized for the usual case (a charset conversion may need more); a
		// corrupt encoding keeps what could be decoded.
		buf := bytes.NewBuffer(make([]byte, 0, min(len(p.raw), maxTextBody)+bytes.MinRead+1))
		_, _ = buf.ReadFrom(io.LimitReader(e.Body, maxTextBody+1))
		data := buf.Bytes()
		if len(data) > maxTextBody {
			p.longTextBody(e.Body, data, mediaType, params, path, alternative)
			return nil
		}
		p.textBody(mediaType, params, data, alternative)
		return nil
	}
	p.attachment(e.Body, mediaType, meta, path)
	return nil
}

func (p *parser) walkMultipart(e *gomessage.Entity, mediaType string, params map[string]string, path string, depth int) error {
	where := "the message"
	if path != "" {
		where = "part " + path
	}
	boundary := params["boundary"]
	if boundary == "" {
		return broken("%s is %s but declares no boundary", where, mediaType)
	}
	if depth >= maxMIMEDepth {
		return broken("multiparts nest deeper than %d levels", maxMIMEDepth)
	}
	mr := newMultipartReader(e.Body, boundary)
	for n := 1; ; n++ {
		r, err := mr.next()
		if err != nil {
			if mr.parts == 0 && mr.end == endInput {
				return broken("%s (%s) contains no part starting with its boundary %q", where, mediaType, truncate(boundary, 70))
			}
			// The close-delimiter, or the end of a truncated message: its last part ran
			// to the end of the input, as mail clients show it.
			return nil
		}
		br := bufio.NewReader(r)
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return broken("part %d of %s cannot be read (%s)", n, where, truncate(cleanText(strings.TrimPrefix(err.Error(), "message: ")), 200))
		}
		if _, err := br.Peek(1); err != nil && h.Len() == 0 {
			continue // an empty part (a delimiter line straight after another): nothing to show
		}
		sub := strconv.Itoa(n)
		if path != "" {
			sub = path + "." + sub
		}
		part, _ := gomessage.New(gomessage.Header{Header: h}, br)
		if werr := p.walk(part, sub, mediaType, depth+1); werr != nil {
			return werr
		}
	}
}

// mediaTypeRe matches type/subtype made of RFC 2045 token characters.
var mediaTypeRe = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_{|}~-]+/[a-z0-9!#$%&'*+.^_{|}~-]+$`)

// contentType returns the media type (lower case, text/plain when absent) and parameters of
// a part (mediaParams). A Content-Type with broken parameters keeps its media type.
func contentType(h gomessage.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params := mediaParams(v)
	if !mediaTypeRe.MatchString(mt) {
		mt = "application/octet-stream"
	}
	return mt, params
}

// partMeta is what a leaf part's header says about it.
type partMeta struct {
	disposition string // "attachment", "inline" or ""
	filename    string // cleaned; "" when the part has none
	contentID   string
}

func leafMeta(h gomessage.Header, params map[string]string) partMeta {
	var disp string
	var dparams map[string]string
	if v := h.Get("Content-Disposition"); strings.TrimSpace(v) != "" {
		disp, dparams = mediaParams(v)
	}
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	return partMeta{
		disposition: disp,
		filename:    cleanFilename(filename),
		contentID:   cleanText(firstOf(msgIDs(h.Get("Content-Id")))),
	}
}

// isTextBody reports whether a leaf part becomes (part of) TextBody or HTMLBody rather
// than an attachment: an unnamed text/plain or text/html part not marked as an attachment,
// except a second text of the same type inside a multipart/alternative (alternative is
// true when the part's parent is one), which is kept as an attachment.
func (p *parser) isTextBody(mediaType string, meta partMeta, alternative bool) bool {
	if meta.disposition == "attachment" || meta.filename != "" {
		return false
	}
	switch mediaType {
	case "text/plain":
		return p.msg.TextBody == "" || !alternative
	case "text/html":
		return p.msg.HTMLBody == "" || !alternative
	}
	return false
}

// textBody sets or extends TextBody or HTMLBody with a text part (isTextBody).
func (p *parser) textBody(mediaType string, params map[string]string, data []byte, alternative bool) {
	text := decodeBody(data, params["charset"])
	body := &p.msg.TextBody
	if mediaType == "text/html" {
		body = &p.msg.HTMLBody
	} else {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		if strings.EqualFold(params["format"], "flowed") {
			text = unflow(text, strings.EqualFold(params["delsp"], "yes"))
		}
	}
	switch {
	case strings.TrimSpace(text) == "":
		// An empty text part adds nothing.
	case *body == "":
		*body = text
	default:
		*body += "\n\n" + text
	}
}

// longTextBody handles a text body part longer than maxTextBody (head holds its first
// maxTextBody+1 decoded bytes, rest the others): the body shows the head, cut at a line
// end, and says where the rest is; the whole part is added as an attachment that is
// streamed from the raw message when it is stored, like a large attachment. An agent sees
// a readable message, nothing is lost, and the text is never held whole in memory.
func (p *parser) longTextBody(rest io.Reader, head []byte, mediaType string, params map[string]string, path string, alternative bool) {
	more, _ := io.Copy(io.Discard, rest)
	size := int64(len(head)) + more
	name := "full-text"
	if path != "" {
		name += "-" + path
	}
	name += commonExtensions[mediaType]
	p.textBody(mediaType, params, cutAtLine(head[:maxTextBody]), alternative)
	note := fmt.Sprintf("[postroom: this text is %s long; the first %s is shown here and the whole text is attached as %s.]",
		byteSize(size), byteSize(maxTextBody), name)
	if mediaType == "text/html" {
		p.msg.HTMLBody += "\n<p>" + note + "</p>"
	} else {
		p.msg.TextBody += "\n\n" + note
	}
	raw := p.raw
	p.msg.Attachments = append(p.msg.Attachments, store.Attachment{
		Filename:    name,
		ContentType: mediaType,
		Size:        size,
		Open:        func() (io.Reader, error) { return openPart(raw, path) },
	})
}

// cutAtLine shortens b to its last line end when there is one in its second half, else to
// the start of a UTF-8 sequence, so that a cut text does not end in half a character.
func cutAtLine(b []byte) []byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= len(b)/2 {
		return b[:i+1]
	}
	start := len(b) - 1 // of the last character
	for start > 0 && len(b)-start < utf8.UTFMax && !utf8.RuneStart(b[start]) {
		start--
	}
	if start >= 0 && !utf8.FullRune(b[start:]) {
		return b[:start]
	}
	return b
}

// byteSize words n for a person: "20.0 MB", "1 MB", "512 KB".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// attachment adds a leaf part that is not a text body as an Attachment, reading its
// decoded content from body. Content up to maxHeldAttachment bytes is kept in Data; a
// larger one is only counted here, and its Open decodes it again from the raw message
// when it is stored, so that it never sits in memory beside the raw message.
func (p *parser) attachment(body io.Reader, mediaType string, meta partMeta, path string) {
	filename := meta.filename
	if filename == "" {
		filename = defaultFilename(mediaType, path)
	}
	if mediaType == "message/rfc822" && !strings.Contains(filename, ".") {
		filename += ".eml"
	}
	a := store.Attachment{
		Filename:    filename,
		ContentType: mediaType,
		ContentID:   meta.contentID,
		Inline:      meta.contentID != "" && meta.disposition != "attachment",
	}
	// A corrupt encoding keeps what could be decoded, here and in Open alike.
	head, _ := io.ReadAll(io.LimitReader(body, maxHeldAttachment+1))
	if len(head) <= maxHeldAttachment {
		a.Data, a.Size = head, int64(len(head))
	} else {
		rest, _ := io.Copy(io.Discard, body)
		a.Size = int64(len(head)) + rest
		raw := p.raw
		a.Open = func() (io.Reader, error) { return openPart(raw, path) }
	}
	p.msg.Attachments = append(p.msg.Attachments, a)
}

// openPart returns the decoded content of the leaf part at MIME path ("" for the
// message's own body, else "1", "1.2", ...) of raw, read the way Parse read it: the same
// header, boundaries and decoders, so that the bytes are those Parse counted. Reading
// ends without an error where Parse's read ended (a corrupt encoding keeps what could be
// decoded).
func openPart(raw []byte, path string) (io.Reader, error) {
	br := bufio.NewReader(bytes.NewReader(headerStart(raw)))
	h, err := textproto.ReadHeader(br)
	if err != nil && !(errors.Is(err, io.EOF) && h.Len() > 0) {
		return nil, fmt.Errorf("open part %q: header: %w", path, err)
	}
	e, _ := gomessage.New(gomessage.Header{Header: h}, br)
	if path != "" {
		for step := range strings.SplitSeq(path, ".") {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("open part %q: bad path", path)
			}
			_, params := contentType(e.Header)
			mr := newMultipartReader(e.Body, params["boundary"])
			var part io.Reader
			for range n {
				if part, err = mr.next(); err != nil {
					return nil, fmt.Errorf("open part %q: %w", path, err)
				}
			}
			pbr := bufio.NewReader(part)
			ph, err := textproto.ReadHeader(pbr)
			if err != nil {
				return nil, fmt.Errorf("open part %q: header: %w", path, err)
			}
			e, _ = gomessage.New(gomessage.Header{Header: ph}, pbr)
		}
	}
	return untilError{e.Body}, nil
}

// untilError reads r and ends at its first error as at its end.
type untilError struct{ r io.Reader }

func (u untilError) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil {
		err = io.EOF
	}
	return n, err
}

// decodeBody turns a text part into a string. go-message has already converted the
// charsets it knows by their declared name to UTF-8. UTF-7 (which it does not know) is
// decoded here, and other charsets are tried once more by their normalized name
// (normalizeCharset: "utf-8*en", "win-1252", a parameter go-message could not read, such
// as an RFC 2231 one); bytes still not UTF-8 are read as windows-1252, the usual superset
// of what senders of unlabelled 8-bit text mean, unless the part claims UTF-8, in which
// case only the invalid bytes are replaced.
func decodeBody(data []byte, charset string) string {
	cs := normalizeCharset(charset)
	if cs == "utf-7" {
		return decodeUTF7(data)
	}
	if utf8.Valid(data) {
		return string(data)
	}
	if cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if s, ok := convertCharset(cs, data); ok {
			return s
		}
	}
	if cs == "utf-8" {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	if s, err := charmap.Windows1252.NewDecoder().Bytes(data); err == nil {
		return string(s)
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
}

// cleanText makes s valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// cleanFilename keeps the last path element of a sender-supplied name, without control
// characters.
func cleanFilename(name string) string {
	name = cleanText(name)
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	return truncate(name, 255)
}

// defaultFilename names a part that came without a name: "part-1.2" plus an extension for
// common types.
func defaultFilename(mediaType, path string) string {
	if path == "" {
		path = "1"
	}
	name := "part-" + path
	if ext, ok := commonExtensions[mediaType]; ok {
		name += ext
	}
	return name
}

// commonExtensions is a fixed table, so names do not depend on the host's mime.types.
var commonExtensions = map[string]string{
	"application/pdf":          ".pdf",
	"application/zip":          ".zip",
	"application/octet-stream": ".bin",
	"application/ics":          ".ics",
	"text/calendar":            ".ics",
	"text/plain":               ".txt",
	"text/html":                ".html",
	"text/csv":                 ".csv",
	"image/png":                ".png",
	"image/jpeg":               ".jpg",
	"image/gif":                ".gif",
	"image/webp":               ".webp",
	"message/rfc822":           ".eml",
	"message/delivery-status":  ".txt",
}

// unflow joins the soft line breaks of RFC 3676 format=flowed text: a line ending in a
// space continues on the next line with the same quote depth; the signature separator
// "-- " is never joined. With delsp=yes the trailing space is removed.
func unflow(text string, delsp bool) string {
	lines := strings.Split(text, "\n")
	var b strings.Builder
	prevDepth, joining := 0, false
	for i, line := range lines {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		content := line[depth:]
		content = strings.TrimPrefix(content, " ") // space-stuffing (RFC 3676 §4.4)
		if joining && depth != prevDepth {
			b.WriteString("\n")
			joining = false
		}
		if !joining {
			if depth > 0 {
				b.WriteString(strings.Repeat(">", depth) + " ")
			}
		}
		soft := strings.HasSuffix(content, " ") && content != "-- "
		if soft && delsp {
			content = content[:len(content)-1]
		}
		b.WriteString(content)
		joining = soft
		prevDepth = depth
		if !soft && i < len(lines)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
