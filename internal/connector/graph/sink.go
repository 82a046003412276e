package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
)

// Size limits of sending (reference 3.8, 3.11).
const (
	// MaxSendBytes is the largest message Graph sends (150 MB, Exchange Online's highest
	// per-mailbox limit).
	MaxSendBytes = 150 << 20
	// inlineLimit is the largest raw MIME message sent in one sendMail: its base64 must stay
	// under Graph's 4 MB request body limit.
	inlineLimit = 3_000_000
	// uploadSessionMin is the smallest attachment that goes through an upload session;
	// smaller ones are POSTed to the draft's attachments.
	uploadSessionMin = 3 << 20
	// uploadChunk is the size of one upload PUT: 12 × 320 KiB, under the 4 MB per request
	// and a multiple of 320 KiB (reference 3.11).
	uploadChunk = 12 * 320 << 10
	// draftCleanupTimeout bounds deleting a draft whose sending failed.
	draftCleanupTimeout = 30 * time.Second
)

// Sink sends mail as one mailbox through Graph. It is safe for concurrent use.
type Sink struct {
	c *client
	// noUploadSessions: the mailbox's cloud has no attachments/createUploadSession (US
	// Government L4 and L5, §8.3), so an attachment must fit in one 4 MB request.
	noUploadSessions bool
}

var _ connector.Sink = (*Sink)(nil)

// NewSink returns a Sink for cfg.Mailbox; it uses GraphURL, Cloud, Mailbox, Token,
// HTTPClient, Limiter and Logger of cfg and makes no request.
func NewSink(cfg Config) (*Sink, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Sink{c: c, noUploadSessions: cfg.Cloud == credential.CloudUSGov || cfg.Cloud == credential.CloudUSDoD}, nil
}

// Send sends raw (a complete RFC 5322 message) as the Sink's mailbox, saved to Sent
// Items. Recipients come from the message's To, Cc and Bcc; envelope recipients not named
// there are added as Bcc. from is the envelope sender; Graph sends as the mailbox the
// Sink is for, and the message's From must be that mailbox or one it may send as.
//
// A 202 from Graph means accepted for every recipient: there are no per-recipient
// results. Errors are *connector.Error: KindRejected for a message Graph will never take
// (too large, not valid MIME), KindAuth for missing rights, KindServer/KindNetwork for
// what a retry may cure.
func (s *Sink) Send(ctx context.Context, from string, recipients []string, raw []byte) error {
	raw, err := s.check(from, recipients, raw)
	if err != nil {
		return err
	}
	if len(raw) <= inlineLimit {
		return s.sendMIME(ctx, raw)
	}
	return s.sendLarge(ctx, raw)
}

// check returns raw with the envelope recipients it does not name as Bcc, or refuses it
// for good when Graph cannot send it.
func (s *Sink) check(from string, recipients []string, raw []byte) ([]byte, error) {
	raw, err := withEnvelopeRecipients(raw, recipients)
	if err != nil {
		return nil, &connector.Error{Kind: connector.KindRejected, Op: "graph send", Err: err,
			Advice: "the message's recipient headers cannot be read: fix the addresses and send it again"}
	}
	if len(raw) > MaxSendBytes {
		return nil, &connector.Error{Kind: connector.KindRejected, Op: "graph send",
			Err:    fmt.Errorf("message of %d bytes", len(raw)),
			Advice: fmt.Sprintf("the message is %s; Microsoft Graph sends at most 150 MB: send large files as a link or split them over several messages", formatMB(len(raw)))}
	}
	if from != "" && !strings.EqualFold(from, s.c.mailbox) {
		s.c.log.Debug("graph: sending as another address than the mailbox (needs Send As)", slog.String("from", from))
	}
	return raw, nil
}

// sendMIME sends a message of up to inlineLimit bytes with sendMail as base64 MIME.
func (s *Sink) sendMIME(ctx context.Context, raw []byte) error {
	const op = "graph sendMail"
	err := s.c.do(ctx, op, request{method: http.MethodPost, url: s.c.userURL("/sendMail"),
		body: []byte(base64.StdEncoding.EncodeToString(raw)), contentType: "text/plain"}, nil)
	return s.sendError(op, err)
}

// sendLarge sends a message over inlineLimit through a draft (PrepareDraft), then /send.
// A draft left by a failure is deleted.
func (s *Sink) sendLarge(ctx context.Context, raw []byte) error {
	id, err := s.prepare(ctx, raw)
	if err != nil {
		return err
	}
	if err := s.SendDraft(ctx, id); err != nil {
		s.DeleteDraft(context.WithoutCancel(ctx), id)
		return err
	}
	return nil
}

// PrepareDraft makes the complete message raw (from, recipients: as for Send) as a draft
// in the mailbox's Drafts and returns its id (an immutable id: it stays the id of the copy
// in Sent Items once sent). Nothing is sent: SendDraft sends it. A caller that keeps the
// id before sending can tell after a crash whether it went (DraftState).
//
// A message of up to 3 MB is posted as MIME; a larger one as MIME without its largest
// attachments, which are then added to the draft (upload sessions from 3 MB). A draft is
// complete when its id is returned; one left by a failure is deleted.
//
// In a cloud without upload sessions (US Government L4/L5) an attachment of 3 MB or more
// cannot go at all: not in the draft's POST (4 MB per request, base64), nor in a MIME
// sendMail (the whole message, base64 again, within the same 4 MB). Such a message is
// refused for good before any request.
func (s *Sink) PrepareDraft(ctx context.Context, from string, recipients []string, raw []byte) (string, error) {
	raw, err := s.check(from, recipients, raw)
	if err != nil {
		return "", err
	}
	return s.prepare(ctx, raw)
}

// prepare makes the complete draft of raw, which check passed.
func (s *Sink) prepare(ctx context.Context, raw []byte) (string, error) {
	rest, parts := raw, []attachmentPart(nil)
	if len(raw) > inlineLimit {
		var err error
		rest, parts, err = splitAttachments(raw, inlineLimit)
		if err != nil {
			advice := "the message's MIME structure cannot be read: it cannot go through Microsoft Graph as it is"
			if errors.Is(err, errTooLargeBody) {
				advice = "the message's text without its attachments is over 3 MB, which Microsoft Graph cannot take: send a shorter text, with large content as attachments"
			}
			return "", &connector.Error{Kind: connector.KindRejected, Op: "graph send", Err: err, Advice: advice}
		}
	}
	if s.noUploadSessions {
		for _, p := range parts {
			if len(p.data) >= uploadSessionMin {
				return "", noUploadSessionError("graph send", p, errors.New("no upload sessions in this cloud"))
			}
		}
	}
	const op = "graph create draft"
	var draft struct {
		ID string `json:"id"`
	}
	err := s.c.do(ctx, op, request{method: http.MethodPost, url: s.c.userURL("/messages"),
		body: []byte(base64.StdEncoding.EncodeToString(rest)), contentType: "text/plain"}, decodeInto(&draft))
	if err != nil {
		return "", s.sendError(op, err)
	}
	if draft.ID == "" {
		return "", &connector.Error{Kind: connector.KindServer, Op: op, Err: errors.New("the draft has no id"),
			Advice: "Microsoft Graph did not say which draft it made; postroom tries again"}
	}
	for _, p := range parts {
		if err := s.addAttachment(ctx, draft.ID, p); err != nil {
			s.DeleteDraft(context.WithoutCancel(ctx), draft.ID)
			return "", err
		}
	}
	return draft.ID, nil
}

// SendDraft sends the draft id (POST /messages/{id}/send; 202 Accepted). Errors are
// classified as Send's.
func (s *Sink) SendDraft(ctx context.Context, id string) error {
	const op = "graph send draft"
	err := s.c.do(ctx, op, request{method: http.MethodPost, url: s.c.userURL("/messages/" + url.PathEscape(id) + "/send")}, nil)
	return s.sendError(op, err)
}

// DraftState is what became of a draft PrepareDraft made.
type DraftState int

const (
	// DraftUnsent: the message is still a draft (isDraft true): it was not sent.
	DraftUnsent DraftState = iota
	// DraftSent: the message was sent. Graph answers the id with the copy in Sent Items
	// (isDraft false) or, while the copy is not there yet, 404 ErrorItemNotFound. A draft
	// someone deleted by hand answers 404 as well and cannot be told apart.
	DraftSent
)

// DraftState reads whether the draft id is still an unsent draft.
func (s *Sink) DraftState(ctx context.Context, id string) (DraftState, error) {
	const op = "graph read draft"
	var m struct {
		IsDraft *bool `json:"isDraft"`
	}
	err := s.c.getJSON(ctx, op, s.c.userURL("/messages/"+url.PathEscape(id)+"?$select=isDraft"), &m)
	switch {
	case hasStatus(err, http.StatusNotFound, "ErrorItemNotFound"):
		return DraftSent, nil
	case err != nil:
		return DraftUnsent, s.c.classify(op, err)
	case m.IsDraft == nil:
		return DraftUnsent, &connector.Error{Kind: connector.KindServer, Op: op, Err: errors.New("no isDraft in the answer"),
			Advice: "Microsoft Graph did not say whether the message is still a draft; postroom asks again later"}
	case *m.IsDraft:
		return DraftUnsent, nil
	}
	return DraftSent, nil
}

// addAttachment adds one attachment to a draft: POSTed whole under uploadSessionMin,
// else through an upload session.
func (s *Sink) addAttachment(ctx context.Context, draftID string, p attachmentPart) error {
	base := s.c.userURL("/messages/" + url.PathEscape(draftID) + "/attachments")
	if len(p.data) < uploadSessionMin {
		const op = "graph add attachment"
		body := map[string]any{
			"@odata.type":  "#microsoft.graph.fileAttachment",
			"name":         p.name,
			"contentType":  p.contentType,
			"contentBytes": p.data, // encoding/json writes []byte as base64
			"isInline":     p.inline,
		}
		if p.contentID != "" {
			body["contentId"] = p.contentID
		}
		return s.sendError(op, s.c.sendJSON(ctx, op, http.MethodPost, base, body, nil))
	}
	const op = "graph upload attachment"
	item := map[string]any{
		"attachmentType": "file",
		"name":           p.name,
		"size":           len(p.data),
		"contentType":    p.contentType,
		"isInline":       p.inline,
	}
	if p.contentID != "" {
		item["contentId"] = p.contentID
	}
	var session struct {
		UploadURL          string   `json:"uploadUrl"`
		NextExpectedRanges []string `json:"nextExpectedRanges"`
	}
	if err := s.c.sendJSON(ctx, op, http.MethodPost, base+"/createUploadSession", map[string]any{"AttachmentItem": item}, &session); err != nil {
		if uploadSessionsMissing(err) {
			return noUploadSessionError(op, p, err)
		}
		return s.sendError(op, err)
	}
	if session.UploadURL == "" {
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: errors.New("no uploadUrl"),
			Advice: "Microsoft Graph did not open an upload session; postroom tries again"}
	}
	total := len(p.data)
	next := nextRange(session.NextExpectedRanges, 0)
	for put := 0; next < total; put++ {
		if put > 2*(total/uploadChunk+1) {
			return &connector.Error{Kind: connector.KindServer, Op: op, Err: errors.New("the upload does not advance"),
				Advice: "Microsoft Graph keeps asking for the same part of the attachment; postroom tries again later"}
		}
		end := min(next+uploadChunk, total)
		var answer struct {
			NextExpectedRanges []string `json:"nextExpectedRanges"`
		}
		done := false
		err := s.c.do(ctx, op, request{
			method: http.MethodPut, url: session.UploadURL, noAuth: true, idempotent: true, timeout: transferTimeout,
			body: p.data[next:end], contentType: "application/octet-stream",
			header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", next, end-1, total)},
		}, func(resp *http.Response) error {
			if resp.StatusCode == http.StatusCreated {
				done = true
				return nil
			}
			return json.NewDecoder(resp.Body).Decode(&answer)
		})
		if err != nil {
			return s.sendError(op, err)
		}
		if done {
			return nil
		}
		next = nextRange(answer.NextExpectedRanges, end)
	}
	return nil
}

// uploadSessionsMissing reports whether Graph answered createUploadSession as a path it
// does not serve: what a US Government L4/L5 cloud answers (§8.3) when postroom was not
// told the mailbox is there (a custom Graph URL).
func uploadSessionsMissing(err error) bool {
	ae, ok := asAPIError(err)
	if !ok || ae.Status != http.StatusBadRequest && ae.Status != http.StatusNotFound {
		return false
	}
	return strings.Contains(strings.ToLower(ae.Message), "createuploadsession") || strings.EqualFold(ae.Code, "ResourceNotFound")
}

// noUploadSessionError refuses for good a message with attachment p, which only an upload
// session could carry, in a cloud that has none.
func noUploadSessionError(op string, p attachmentPart, err error) error {
	return &connector.Error{Kind: connector.KindRejected, Op: op, Err: fmt.Errorf("attachment %q of %d bytes: %w", p.name, len(p.data), err),
		Advice: fmt.Sprintf("in the US Government L4/L5 clouds Microsoft Graph takes at most 4 MB per request and has no upload sessions, "+
			"so each attachment must be under 3 MB: %q is %s. The message was not sent: send the file as a link, or split it over "+
			"several messages", p.name, formatMB(len(p.data)))}
}

// nextRange reads the start of the first of Graph's nextExpectedRanges ("4194304-" or
// "4194304-8388607"); def when there is none.
func nextRange(ranges []string, def int) int {
	if len(ranges) == 0 {
		return def
	}
	start, _, _ := strings.Cut(ranges[0], "-")
	n, err := strconv.Atoi(strings.TrimSpace(start))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// DeleteDraft removes a draft whose sending failed, so Drafts does not fill up; a
// failure is logged, not returned.
func (s *Sink) DeleteDraft(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, draftCleanupTimeout)
	defer cancel()
	err := s.c.do(ctx, "graph delete draft", request{method: http.MethodDelete, url: s.c.userURL("/messages/" + url.PathEscape(id)), idempotent: true}, nil)
	if err != nil && !hasStatus(err, http.StatusNotFound) {
		s.c.log.Warn("graph: a draft of a failed send is left in Drafts", slog.Any("error", err))
	}
}

// sendError classifies a send failure: a 400 on a send is the message's fault and
// final (KindRejected).
func (s *Sink) sendError(op string, err error) error {
	if err == nil {
		return nil
	}
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusBadRequest &&
		!strings.EqualFold(ae.Code, "ErrorMessageSizeExceeded") && !strings.EqualFold(ae.Code, "ErrorQuotaExceeded") {
		return &connector.Error{Kind: connector.KindRejected, Op: op, Err: ae,
			Advice: "Microsoft Graph refused the message as it is (" + ae.Code + "); sending it again will not help: check its addresses and attachments"}
	}
	return s.c.classify(op, err)
}

// Close releases the Sink. It makes no request.
func (s *Sink) Close() error { return nil }

// withEnvelopeRecipients adds a Bcc header naming the envelope recipients that the
// message's To, Cc and Bcc do not name: Graph takes the recipients from the header.
func withEnvelopeRecipients(raw []byte, recipients []string) ([]byte, error) {
	if len(recipients) == 0 {
		return raw, nil
	}
	end := headerEnd(raw)
	if end < 0 {
		end = len(raw)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(append(bytes.Clone(raw[:end]), "\r\n"...)))
	if err != nil {
		return nil, fmt.Errorf("read the message header: %w", err)
	}
	named := map[string]bool{}
	for _, field := range []string{"To", "Cc", "Bcc"} {
		if msg.Header.Get(field) == "" {
			continue
		}
		list, err := msg.Header.AddressList(field)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", field, err)
		}
		for _, a := range list {
			named[strings.ToLower(a.Address)] = true
		}
	}
	var missing []string
	for _, r := range recipients {
		if r != "" && !named[strings.ToLower(r)] {
			named[strings.ToLower(r)] = true
			missing = append(missing, (&mail.Address{Address: r}).String())
		}
	}
	if len(missing) == 0 {
		return raw, nil
	}
	out := make([]byte, 0, len(raw)+64)
	out = append(out, "Bcc: "+strings.Join(missing, ",\r\n ")+"\r\n"...)
	return append(out, raw...), nil
}

// formatMB writes n bytes in megabytes for people.
func formatMB(n int) string {
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}
