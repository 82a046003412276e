package graph

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// attachmentPart is an attachment taken out of a MIME message, to be added to a draft
// through Graph instead.
type attachmentPart struct {
	name        string
	contentType string
	contentID   string // without angle brackets
	inline      bool
	data        []byte // decoded
}

// entity is one MIME entity of a message, as byte ranges of the original, so that
// everything not taken out goes to Graph byte for byte.
type entity struct {
	raw    []byte // header and body
	header textproto.Header
	body   []byte // raw[bodyStart:]
	// Multipart: chunks[i] is kids[i] with the delimiter line before it and the line
	// break after it, as positions in body.
	preamble []byte
	kids     []*kid
	tail     []byte // close delimiter and epilogue
	boundary string
}

// kid is a part of a multipart entity.
type kid struct {
	delim []byte // the delimiter line, "--boundary" and its line break
	ent   *entity
	after []byte // the line break before the next delimiter
	drop  bool
}

// maxMIMEDepth bounds nesting of multiparts.
const maxMIMEDepth = 20

// parseEntity splits raw into header and body and, for a multipart, into its parts.
func parseEntity(raw []byte, depth int) (*entity, error) {
	if depth > maxMIMEDepth {
		return nil, errors.New("MIME parts nested too deep")
	}
	e := &entity{raw: raw}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("read MIME header: %w", err)
	}
	e.header = h
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		e.body = raw[2:]
	case bytes.HasPrefix(raw, []byte("\n")):
		e.body = raw[1:]
	default:
		end := headerEnd(raw)
		if end < 0 {
			end = len(raw)
		}
		e.body = raw[end:]
	}
	mh := message.Header{Header: h}
	t, params, err := mh.ContentType()
	if err != nil || !strings.HasPrefix(t, "multipart/") || params["boundary"] == "" {
		return e, nil
	}
	e.boundary = params["boundary"]
	if err := e.splitParts(depth); err != nil {
		return nil, err
	}
	return e, nil
}

// splitParts finds the delimiter lines of a multipart body (RFC 2046 §5.1.1).
func (e *entity) splitParts(depth int) error {
	dash := []byte("--" + e.boundary)
	type delim struct {
		start, end int // the line, with its line break
		close      bool
	}
	var ds []delim
	for pos := 0; pos < len(e.body); {
		i := bytes.Index(e.body[pos:], dash)
		if i < 0 {
			break
		}
		start := pos + i
		pos = start + len(dash)
		if start > 0 && e.body[start-1] != '\n' {
			continue
		}
		rest := e.body[pos:]
		closing := bytes.HasPrefix(rest, []byte("--"))
		lineEnd := bytes.IndexByte(rest, '\n')
		if lineEnd < 0 {
			lineEnd = len(rest)
		} else {
			lineEnd++
		}
		if !closing && strings.TrimRight(string(rest[:lineEnd]), " \t\r\n") != "" {
			continue // a longer boundary that starts with this one
		}
		ds = append(ds, delim{start: start, end: pos + lineEnd, close: closing})
		pos += lineEnd
		if closing {
			break
		}
	}
	if len(ds) < 2 || !ds[len(ds)-1].close {
		return nil // not a well-formed multipart: kept as one piece
	}
	e.preamble = e.body[:ds[0].start]
	for i := 0; i < len(ds)-1; i++ {
		content := e.body[ds[i].end:ds[i+1].start]
		var after []byte
		switch {
		case bytes.HasSuffix(content, []byte("\r\n")):
			content, after = content[:len(content)-2], []byte("\r\n")
		case bytes.HasSuffix(content, []byte("\n")):
			content, after = content[:len(content)-1], []byte("\n")
		}
		ent, err := parseEntity(content, depth+1)
		if err != nil {
			return err
		}
		e.kids = append(e.kids, &kid{delim: e.body[ds[i].start:ds[i].end], ent: ent, after: after})
	}
	e.tail = e.body[ds[len(ds)-1].start:]
	return nil
}

// size is the byte size of the entity as render writes it.
func (e *entity) size() int {
	if e.kids == nil {
		return len(e.raw)
	}
	n := len(e.raw) - len(e.body) + len(e.preamble) + len(e.tail)
	kept := 0
	for _, k := range e.kids {
		if !k.drop {
			n += len(k.delim) + k.ent.size() + len(k.after)
			kept++
		}
	}
	if kept == 0 {
		n += len(e.placeholder())
	}
	return n
}

// placeholder is an empty text part that keeps a multipart whose parts were all taken out
// valid.
func (e *entity) placeholder() []byte {
	return []byte("--" + e.boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n")
}

// render writes the entity without the dropped parts; everything else is the original
// bytes.
func (e *entity) render(w *bytes.Buffer) {
	if e.kids == nil {
		w.Write(e.raw)
		return
	}
	w.Write(e.raw[:len(e.raw)-len(e.body)])
	w.Write(e.preamble)
	kept := 0
	for _, k := range e.kids {
		if k.drop {
			continue
		}
		kept++
		w.Write(k.delim)
		k.ent.render(w)
		w.Write(k.after)
	}
	if kept == 0 {
		w.Write(e.placeholder())
	}
	w.Write(e.tail)
}

// attachmentLike reports whether a leaf part is an attachment (or an inline image and the
// like) rather than the message's text.
func (e *entity) attachmentLike() bool {
	if e.kids != nil {
		return false
	}
	mh := message.Header{Header: e.header}
	disp, _, _ := mh.ContentDisposition()
	t, _, _ := mh.ContentType()
	ah := mail.AttachmentHeader{Header: mh}
	name, _ := ah.Filename()
	switch {
	case strings.EqualFold(disp, "attachment"):
		return true
	case name != "":
		return true
	case t == "" || strings.HasPrefix(t, "text/") || strings.HasPrefix(t, "multipart/"):
		return false
	}
	return true
}

// attachment decodes a leaf part into an attachmentPart.
func (e *entity) attachment() (attachmentPart, error) {
	mh := message.Header{Header: e.header}
	t, params, _ := mh.ContentType()
	if t == "" {
		t = "application/octet-stream"
	}
	disp, _, _ := mh.ContentDisposition()
	ah := mail.AttachmentHeader{Header: mh}
	name, _ := ah.Filename()
	if name == "" {
		name = params["name"]
	}
	if name == "" {
		name = "attachment"
		if t == "message/rfc822" {
			name = "message.eml"
		}
	}
	data, err := decodeBody(e.body, mh.Get("Content-Transfer-Encoding"))
	if err != nil {
		return attachmentPart{}, fmt.Errorf("attachment %q: %w", name, err)
	}
	cid := strings.Trim(strings.TrimSpace(mh.Get("Content-Id")), "<>")
	return attachmentPart{
		name: name, contentType: t, contentID: cid,
		inline: strings.EqualFold(disp, "inline") && cid != "",
		data:   data,
	}, nil
}

// decodeBody undoes a Content-Transfer-Encoding.
func decodeBody(body []byte, cte string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		clean = bytes.TrimRight(clean, "=")
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("decode base64: %w", err)
		}
		return out[:n], nil
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, fmt.Errorf("decode quoted-printable: %w", err)
		}
		return b, nil
	}
	return body, nil
}

// leaves returns the attachment-like leaf parts below e with the kid that holds each.
func (e *entity) leaves(out []*kid) []*kid {
	for _, k := range e.kids {
		if k.ent.kids != nil {
			out = k.ent.leaves(out)
		} else if k.ent.attachmentLike() {
			out = append(out, k)
		}
	}
	return out
}

// errTooLargeBody says a message cannot be brought under the inline limit by taking out
// attachments.
var errTooLargeBody = errors.New("the message's text (without attachments) is over the limit")

// splitAttachments takes attachments out of raw, largest first, until the rest is at
// most limit bytes. It returns the rest (every byte not taken out is the original) and
// the attachments taken out.
func splitAttachments(raw []byte, limit int) ([]byte, []attachmentPart, error) {
	top, err := parseEntity(raw, 0)
	if err != nil {
		return nil, nil, err
	}
	if top.size() <= limit {
		return raw, nil, nil
	}
	leaves := top.leaves(nil)
	slices.SortStableFunc(leaves, func(a, b *kid) int { return len(b.ent.raw) - len(a.ent.raw) })
	var taken []attachmentPart
	for _, k := range leaves {
		if top.size() <= limit {
			break
		}
		a, err := k.ent.attachment()
		if err != nil {
			return nil, nil, err
		}
		k.drop = true
		taken = append(taken, a)
	}
	if top.size() > limit {
		return nil, nil, errTooLargeBody
	}
	var buf bytes.Buffer
	buf.Grow(top.size())
	top.render(&buf)
	return buf.Bytes(), taken, nil
}
