package workitem

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

// MessageHTML returns the message's HTML body sanitized for display, with cid: references
// (RFC 2392) to the message's own inline parts rewritten to attachmentURL(attachment id).
// References to unknown content ids resolve to "", which the sanitizer drops.
func MessageHTML(m store.Message, attachmentURL func(id int64) string) string {
	if m.HTMLBody == "" {
		return ""
	}
	return message.SanitizeHTML(m.HTMLBody, func(contentID string) string {
		cid := strings.TrimPrefix(contentID, "cid:")
		if u, err := url.PathUnescape(cid); err == nil { // RFC 2392 §2: cid URLs are %-encoded
			cid = u
		}
		cid = strings.Trim(cid, "<>")
		for _, a := range m.Attachments {
			if a.ContentID != "" && a.ContentID == cid {
				return attachmentURL(a.ID)
			}
		}
		for _, a := range m.Attachments {
			if a.ContentID != "" && strings.EqualFold(a.ContentID, cid) {
				return attachmentURL(a.ID)
			}
		}
		return ""
	})
}

// inlineImageTypes are the image types shown in the browser. Everything else, SVG
// included (it can carry script), is sent as a download.
var inlineImageTypes = map[string]bool{
	"image/png":  true,
	"image/jpeg": true,
	"image/gif":  true,
	"image/webp": true,
	"image/avif": true,
	"image/bmp":  true,
}

// ServeRaw writes the stored raw MIME source of a message as a download
// ("message-<id>.eml", message/rfc822 per RFC 5322 and RFC 2046 §5.2.1). If the message
// cannot be read it writes nothing and returns the error (wrapping store.ErrNotFound for
// an unknown id), so that the caller answers in its own format.
func ServeRaw(ctx context.Context, w http.ResponseWriter, st store.Messages, messageID int64) error {
	raw, err := st.RawMessage(ctx, messageID)
	if err != nil {
		return fmt.Errorf("raw message %d: %w", messageID, err)
	}
	h := w.Header()
	h.Set("Content-Type", "message/rfc822")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fmt.Sprintf("message-%d.eml", messageID)}))
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	contentHeaders(h)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
	return nil
}

// ServeAttachment writes an attachment: raster images inline (so that cid: images show),
// everything else as a download. Either way under "Content-Security-Policy: sandbox" and
// "X-Content-Type-Options: nosniff", so that content from an email never runs as our
// origin. On error it writes nothing and returns the error, as ServeRaw.
func ServeAttachment(ctx context.Context, w http.ResponseWriter, st store.Messages, attachmentID int64) error {
	a, err := st.Attachment(ctx, attachmentID)
	if err != nil {
		return fmt.Errorf("attachment %d: %w", attachmentID, err)
	}
	ctype := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(a.ContentType); err == nil && strings.Contains(mt, "/") {
		ctype = mt
	}
	disposition := "attachment"
	if inlineImageTypes[ctype] {
		disposition = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": safeFilename(a.Filename, attachmentID)}))
	h.Set("Content-Length", strconv.Itoa(len(a.Data)))
	contentHeaders(h)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.Data)
	return nil
}

// contentHeaders are set on every raw download and attachment.
func contentHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// safeFilename keeps the last path element of name without control characters; an empty
// result becomes "attachment-<id>".
func safeFilename(name string, id int64) string {
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
	if name == "" || name == "." || name == ".." {
		return fmt.Sprintf("attachment-%d", id)
	}
	return name
}
