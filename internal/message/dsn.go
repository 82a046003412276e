package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/textproto"
	"strings"

	gomessage "github.com/emersion/go-message"

	"github.com/postroom/postroom/internal/store"
)

// maxDSNPart bounds what is read of one part of a report: the machine-readable parts are
// a few hundred bytes; the human-readable one and a returned message are skipped.
const maxDSNPart = 256 << 10

// Bounce reads a delivery status notification (RFC 3464: multipart/report;
// report-type=delivery-status, RFC 6522) and says which message it reports on and what
// happened to each recipient. It returns nil when raw is not such a report, or when the
// report does not name the Message-ID of the returned message (its text/rfc822-headers,
// message/rfc822 or message/global-headers part), since nothing could then be matched.
//
// Only the standard form is read: the plain-text bounces of some old MTAs are recognised
// as automatic mail (Automatic) but not matched to a reply.
func Bounce(raw []byte) *store.Bounce {
	ent, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(ent.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/report" || !strings.EqualFold(params["report-type"], "delivery-status") {
		return nil
	}
	mr := ent.MultipartReader()
	if mr == nil {
		return nil
	}
	var b store.Bounce
	for {
		part, err := mr.NextPart()
		if err != nil {
			break // io.EOF, or a broken structure: keep what was read
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		body, err := io.ReadAll(io.LimitReader(part.Body, maxDSNPart))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			continue
		}
		switch pt {
		case "message/delivery-status", "message/global-delivery-status":
			b.Recipients = append(b.Recipients, deliveryStatus(body)...)
		case "text/rfc822-headers", "message/rfc822", "message/global-headers", "message/global":
			if b.OriginalMessageID == "" {
				b.OriginalMessageID = returnedMessageID(body)
			}
		}
	}
	if b.OriginalMessageID == "" {
		return nil
	}
	return &b
}

// deliveryStatus reads the per-recipient blocks of a message/delivery-status body: a
// per-message block, then one block of fields per recipient, separated by blank lines
// (RFC 3464 §2.1).
func deliveryStatus(body []byte) []store.BounceRecipient {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	var out []store.BounceRecipient
	for {
		h, err := r.ReadMIMEHeader()
		// The per-message block names no recipient.
		if h.Get("Final-Recipient") != "" || h.Get("Original-Recipient") != "" {
			rc := store.BounceRecipient{
				Address:    typedAddress(h.Get("Final-Recipient")),
				Action:     strings.ToLower(strings.TrimSpace(h.Get("Action"))),
				Status:     strings.TrimSpace(h.Get("Status")),
				Diagnostic: typedText(h.Get("Diagnostic-Code")),
			}
			if rc.Address == "" {
				rc.Address = typedAddress(h.Get("Original-Recipient"))
			}
			if rc.Address != "" {
				out = append(out, rc)
			}
		}
		if err != nil {
			return out
		}
	}
}

// typedAddress reads "rfc822; user@example.org" (RFC 3464 §2.3.2): the address after the
// address type, without angle brackets.
func typedAddress(v string) string {
	_, addr, ok := strings.Cut(v, ";")
	if !ok {
		addr = v
	}
	return strings.Trim(strings.TrimSpace(addr), "<>")
}

// typedText reads "smtp; 550 5.1.1 user unknown" (RFC 3464 §2.3.6): the text after the
// diagnostic type, folded lines joined.
func typedText(v string) string {
	_, text, ok := strings.Cut(v, ";")
	if !ok {
		text = v
	}
	return strings.Join(strings.Fields(text), " ")
}

// returnedMessageID reads the Message-ID of the returned message's header.
func returnedMessageID(body []byte) string {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader()
	id := strings.TrimSpace(h.Get("Message-Id"))
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	return strings.TrimSpace(id)
}
