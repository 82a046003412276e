package mstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
)

// jsonRecipient is Graph's recipient.
type jsonRecipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

// jsonMessage is the part of Graph's message resource a client writes.
type jsonMessage struct {
	Subject *string `json:"subject"`
	Body    *struct {
		ContentType string `json:"contentType"`
		Content     string `json:"content"`
	} `json:"body"`
	From                   *jsonRecipient   `json:"from"`
	Sender                 *jsonRecipient   `json:"sender"`
	ToRecipients           *[]jsonRecipient `json:"toRecipients"`
	CcRecipients           *[]jsonRecipient `json:"ccRecipients"`
	BccRecipients          *[]jsonRecipient `json:"bccRecipients"`
	ReplyTo                *[]jsonRecipient `json:"replyTo"`
	Importance             *string          `json:"importance"`
	InternetMessageHeaders []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"internetMessageHeaders"`
	Attachments []jsonAttachment `json:"attachments"`
}

type jsonAttachment struct {
	Type         string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType"`
	ContentBytes []byte `json:"contentBytes"` // base64 in JSON
	IsInline     bool   `json:"isInline"`
	ContentID    string `json:"contentId"`
}

func addresses(l []jsonRecipient) ([]*mail.Address, *graphResp) {
	var out []*mail.Address
	for _, r := range l {
		a := strings.TrimSpace(r.EmailAddress.Address)
		if !strings.Contains(a, "@") {
			return nil, gerr(http.StatusBadRequest, "ErrorInvalidRecipients",
				fmt.Sprintf("At least one recipient is not valid., Recipient '%s' is not resolved. All recipients must be resolved before a message can be submitted.", a))
		}
		out = append(out, &mail.Address{Name: r.EmailAddress.Name, Address: a})
	}
	return out, nil
}

// applyJSON sets the fields in.* present on c.
func applyJSON(c *composed, in *jsonMessage) *graphResp {
	if in.Subject != nil {
		c.subject = *in.Subject
	}
	if in.Body != nil {
		c.bodyType, c.body = "text", in.Body.Content
		if strings.EqualFold(in.Body.ContentType, "html") {
			c.bodyType = "html"
		}
	}
	var e *graphResp
	for _, x := range []struct {
		in  *[]jsonRecipient
		out *[]*mail.Address
	}{{in.ToRecipients, &c.to}, {in.CcRecipients, &c.cc}, {in.BccRecipients, &c.bcc}, {in.ReplyTo, &c.replyTo}} {
		if x.in != nil {
			if *x.out, e = addresses(*x.in); e != nil {
				return e
			}
		}
	}
	if in.From != nil {
		l, e := addresses([]jsonRecipient{*in.From})
		if e != nil {
			return e
		}
		c.from = l[0]
	}
	if in.Sender != nil {
		l, e := addresses([]jsonRecipient{*in.Sender})
		if e != nil {
			return e
		}
		c.sender = l[0]
	}
	if in.Importance != nil {
		c.importance = strings.ToLower(*in.Importance)
	}
	for _, h := range in.InternetMessageHeaders {
		if !strings.HasPrefix(strings.ToLower(h.Name), "x-") {
			return gerr(http.StatusBadRequest, "InvalidInternetMessageHeader",
				fmt.Sprintf("The internet message header name '%s' should start with 'x-' or 'X-'.", h.Name))
		}
		c.headers = append(c.headers, [2]string{h.Name, h.Value})
	}
	for _, a := range in.Attachments {
		if a.Type != "" && a.Type != "#microsoft.graph.fileAttachment" {
			return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The stand-in takes fileAttachment attachments only.")
		}
		c.attachments = append(c.attachments, newAttachment(a))
	}
	return nil
}

func newAttachment(a jsonAttachment) *attachment {
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &attachment{id: newID("AAMkAGI2AAABEgAQ"), name: a.Name, contentType: ct, content: a.ContentBytes, isInline: a.IsInline}
}

// applyDraftField applies one PATCH property to a JSON draft.
func applyDraftField(c *composed, name string, raw json.RawMessage) *graphResp {
	var in jsonMessage
	if err := json.Unmarshal([]byte(`{"`+name+`":`+string(raw)+`}`), &in); err != nil {
		return gerr(http.StatusBadRequest, "RequestBodyRead", fmt.Sprintf("Invalid value for %s.", name))
	}
	if len(in.InternetMessageHeaders) > 0 {
		return gerr(http.StatusBadRequest, "ErrorInvalidPropertyUpdate", "internetMessageHeaders can only be set when the message is created.")
	}
	return applyJSON(c, &in)
}

// newComposed starts a message from mailbox mb.
func (s *Server) newComposed(mb *mailbox) *composed {
	u := mb.owner.cfg
	return &composed{from: &mail.Address{Name: u.DisplayName, Address: u.UPN}, bodyType: "text", date: s.nowLocked(),
		messageID: "<" + randomToken(24) + "@" + hostOf(u.UPN) + ">"}
}

// mayUseFrom reports whether mb may send as addr.
func mayUseFrom(mb *mailbox, addr string) bool {
	u := mb.owner.cfg
	return strings.EqualFold(addr, u.UPN) || slices.ContainsFunc(u.Aliases, func(a string) bool { return strings.EqualFold(a, addr) })
}

func errSendAs(addr string) *graphResp {
	return gerr(http.StatusForbidden, "ErrorSendAsDenied",
		fmt.Sprintf("The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account '%s'.", addr))
}

// isMIME reports whether a request body is base64 MIME (Content-Type text/plain).
func isMIME(h http.Header) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Get("Content-Type"))), "text/plain")
}

// decodeMIME decodes a base64 MIME body.
func decodeMIME(body []byte) ([]byte, *graphResp) {
	clean := bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	raw, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil || len(raw) == 0 {
		return nil, gerr(http.StatusBadRequest, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
	}
	if _, _, ok := splitHeader(raw); !ok || !bytes.Contains(raw, []byte(":")) {
		return nil, gerr(http.StatusBadRequest, "ErrorMimeContentInvalid", "Invalid MIME content.")
	}
	if _, err := mail.CreateReader(bytes.NewReader(raw)); err != nil {
		return nil, gerr(http.StatusBadRequest, "ErrorMimeContentInvalid", "Invalid MIME content.")
	}
	return raw, nil
}

// completeMIME adds Date and Message-ID when the client left them out (Exchange does);
// everything else stays byte for byte.
func (s *Server) completeMIME(raw []byte, mb *mailbox) []byte {
	fields, _, _ := splitHeader(raw)
	has := func(name string) bool {
		return slices.ContainsFunc(fields, func(f []byte) bool {
			n, _, _ := bytes.Cut(f, []byte(":"))
			return strings.EqualFold(strings.TrimSpace(string(n)), name)
		})
	}
	var add []byte
	if !has("Date") {
		add = fmt.Appendf(add, "Date: %s\r\n", s.nowLocked().Format(time.RFC1123Z))
	}
	if !has("Message-ID") {
		add = fmt.Appendf(add, "Message-ID: <%s@%s>\r\n", randomToken(24), hostOf(mb.owner.cfg.UPN))
	}
	if !has("From") {
		add = fmt.Appendf(add, "From: %s\r\n", (&mail.Address{Name: mb.owner.cfg.DisplayName, Address: mb.owner.cfg.UPN}).String())
	}
	return append(add, raw...)
}

// withoutBcc removes Bcc header fields (what recipients get).
func withoutBcc(raw []byte) []byte {
	fields, body, ok := splitHeader(raw)
	if !ok {
		return raw
	}
	var out []byte
	n := 0
	for _, f := range fields {
		n += len(f)
		name, _, _ := bytes.Cut(f, []byte(":"))
		if strings.EqualFold(strings.TrimSpace(string(name)), "Bcc") {
			continue
		}
		out = append(out, f...)
	}
	out = append(out, raw[n:len(raw)-len(body)]...) // the blank line as it was
	return append(out, body...)
}

// deliverSentLocked records a sent message and, with save, files a copy in sentitems (or
// moves the draft m there). It returns the notifications to send.
func (s *Server) deliverSentLocked(c *mailboxCall, raw []byte, save bool, draft *message) ([]notification, *graphResp) {
	if len(raw) > MaxMessageBytes {
		return nil, gerr(http.StatusBadRequest, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
	}
	v := parseView(raw)
	var rcpts []string
	for _, l := range [][]*mail.Address{v.to, v.cc, v.bcc} {
		for _, a := range l {
			rcpts = append(rcpts, a.Address)
		}
	}
	if len(rcpts) == 0 {
		return nil, gerr(http.StatusBadRequest, "ErrorInvalidRecipients",
			"At least one recipient is not valid., A message can't be sent because it contains no recipients.")
	}
	from := ""
	if v.from != nil {
		from = v.from.Address
	}
	if !mayUseFrom(c.mb, from) {
		return nil, errSendAs(from)
	}
	now := s.nowLocked()
	s.state.mail.sent = append(s.state.mail.sent, SentMessage{Mailbox: c.mb.owner.cfg.UPN, ClientID: c.tok.app.cfg.ClientID,
		From: from, Recipients: rcpts, Raw: withoutBcc(raw), SavedToSentItems: save || draft != nil, At: now})
	sentItems := c.mb.folderByRef("sentitems")
	var m *message
	switch {
	case draft != nil:
		draft.raw, draft.view, draft.isDraft, draft.isRead, draft.draft, draft.attachments = raw, nil, false, true, nil, nil
		draft.received, draft.modified = now.UTC().Truncate(time.Second), now
		s.state.mail.moveMessage(c.mb, draft, sentItems)
		m = draft
	case save:
		m = s.state.mail.addMessage(c.mb, sentItems, raw, now, true, false)
	default:
		return nil, nil
	}
	return s.changeNotificationsLocked(c.mb, sentItems, m, "created"), nil
}

// sendComposed runs compose under the server's lock and delivers what it returns (raw,
// and the draft it sends, if any; save files a copy in sentitems). The change
// notifications go out once the lock is released.
func (s *Server) sendComposed(c *mailboxCall, save bool, compose func() ([]byte, *message, *graphResp)) *graphResp {
	s.mu.Lock()
	raw, draft, e := compose()
	var notes []notification
	if e == nil {
		notes, e = s.deliverSentLocked(c, raw, save, draft)
	}
	s.mu.Unlock()
	if e != nil {
		return e
	}
	s.send(notes)
	return &graphResp{status: http.StatusAccepted}
}

// opSendMail serves /sendMail, JSON or base64 MIME.
func (s *Server) opSendMail(c *mailboxCall, rest []string) *graphResp {
	if c.tooLarge {
		return gerr(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", "The request body is over 4 MB: add large attachments through an upload session on a draft.")
	}
	if isMIME(c.header) {
		raw, e := decodeMIME(c.body)
		if e != nil {
			return e
		}
		return s.sendComposed(c, true, func() ([]byte, *message, *graphResp) {
			return s.completeMIME(raw, c.mb), nil, nil
		})
	}
	var in struct {
		Message         *jsonMessage `json:"message"`
		SaveToSentItems *bool        `json:"saveToSentItems"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.Message == nil {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The request body needs a message (JSON), or base64 MIME with Content-Type text/plain.")
	}
	save := in.SaveToSentItems == nil || *in.SaveToSentItems
	return s.sendComposed(c, save, func() ([]byte, *message, *graphResp) {
		comp := s.newComposed(c.mb)
		if e := applyJSON(comp, in.Message); e != nil {
			return nil, nil, e
		}
		raw, err := comp.mime()
		if err != nil {
			return nil, nil, gerr(http.StatusBadRequest, "ErrorInvalidRequest", err.Error())
		}
		if len(comp.bcc) > 0 {
			var bcc mail.Header
			bcc.SetAddressList("Bcc", comp.bcc)
			raw = append([]byte("Bcc: "+bcc.Get("Bcc")+"\r\n"), raw...)
		}
		return raw, nil, nil
	})
}

// opCreateDraft serves POST /messages (and /mailFolders/{f}/messages): a draft from JSON
// or from base64 MIME.
func (s *Server) opCreateDraft(c *mailboxCall, rest []string) *graphResp {
	if c.tooLarge {
		return gerr(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", "The request body is over 4 MB: add large attachments through an upload session.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dest := c.mb.folderByRef("drafts")
	if len(rest) == 3 {
		var e *graphResp
		if dest, e = c.folderLocked(rest[1]); e != nil {
			return e
		}
	}
	var m *message
	if isMIME(c.header) {
		raw, e := decodeMIME(c.body)
		if e != nil {
			return e
		}
		m = s.state.mail.addMessage(c.mb, dest, s.completeMIME(raw, c.mb), s.nowLocked(), true, true)
	} else {
		var in jsonMessage
		if err := json.Unmarshal(c.body, &in); err != nil {
			return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
		}
		comp := s.newComposed(c.mb)
		if e := applyJSON(comp, &in); e != nil {
			return e
		}
		atts := comp.attachments
		comp.attachments = nil
		raw, err := comp.mime()
		if err != nil {
			return gerr(http.StatusBadRequest, "ErrorInvalidRequest", err.Error())
		}
		m = s.state.mail.addMessage(c.mb, dest, raw, s.nowLocked(), true, true)
		m.draft, m.attachments = comp, atts
	}
	return gjson(http.StatusCreated, s.messageJSON(c, m, nil))
}

// draftLocked finds the draft of rest[1].
func (c *mailboxCall) draftLocked(rest []string) (*message, *graphResp) {
	m, e := c.messageLocked(rest)
	if e != nil {
		return nil, e
	}
	if !m.isDraft {
		return nil, gerr(http.StatusBadRequest, "ErrorInvalidOperation", "The operation is allowed on draft messages only.")
	}
	return m, nil
}

// finalMIME is the MIME of a draft with its attachments.
func finalMIME(m *message) ([]byte, error) {
	if m.draft != nil {
		d := *m.draft
		d.attachments = m.attachments
		raw, err := d.mime()
		if err != nil {
			return nil, err
		}
		if len(d.bcc) > 0 {
			var h mail.Header
			h.SetAddressList("Bcc", d.bcc)
			raw = append([]byte("Bcc: "+h.Get("Bcc")+"\r\n"), raw...)
		}
		return raw, nil
	}
	return withAttachments(m.raw, m.attachments)
}

func (s *Server) opSendDraft(c *mailboxCall, rest []string) *graphResp {
	return s.sendComposed(c, true, func() ([]byte, *message, *graphResp) {
		m, e := c.draftLocked(rest)
		if e != nil {
			return nil, nil, e
		}
		raw, err := finalMIME(m)
		if err != nil {
			return nil, nil, gerr(http.StatusBadRequest, "ErrorMimeContentInvalid", err.Error())
		}
		return raw, m, nil
	})
}

func attachmentJSON(a *attachment, withContent bool) map[string]any {
	out := map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "id": a.id, "name": a.name, "contentType": a.contentType,
		"size": len(a.content), "isInline": a.isInline}
	if withContent {
		out["contentBytes"] = base64.StdEncoding.EncodeToString(a.content)
	}
	return out
}

func (m *message) allAttachments() []*attachment {
	return append(slices.Clone(m.viewOf().attachments), m.attachments...)
}

func (s *Server) opListAttachments(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.messageLocked(rest)
	if e != nil {
		return e
	}
	out := []any{}
	for _, a := range m.allAttachments() {
		out = append(out, attachmentJSON(a, true))
	}
	return gjson(http.StatusOK, map[string]any{"value": out})
}

func (s *Server) opGetAttachment(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.messageLocked(rest)
	if e != nil {
		return e
	}
	for _, a := range m.allAttachments() {
		if a.id == rest[3] {
			return gjson(http.StatusOK, attachmentJSON(a, true))
		}
	}
	return gerr(http.StatusNotFound, "ErrorItemNotFound", msgItemNotFound)
}

func (s *Server) opAddAttachment(c *mailboxCall, rest []string) *graphResp {
	if c.tooLarge {
		return gerr(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge",
			"The request body is over 4 MB: attachments of 3 MB or more go through attachments/createUploadSession.")
	}
	var in jsonAttachment
	if err := json.Unmarshal(c.body, &in); err != nil || in.Name == "" {
		return gerr(http.StatusBadRequest, "RequestBodyRead", "The attachment needs @odata.type, name and contentBytes.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.draftLocked(rest)
	if e != nil {
		return e
	}
	a := newAttachment(in)
	m.attachments = append(m.attachments, a)
	s.state.mail.touch(m)
	return gjson(http.StatusCreated, attachmentJSON(a, true))
}

// uploadSession is a large attachment being uploaded in ranges.
type uploadSession struct {
	id, token   string
	clientID    string
	mb          *mailbox
	messageID   string // immutable id of the draft
	userSeg     string
	name, ctype string
	isInline    bool
	size        int
	data        []byte
	expires     time.Time
}

// uploadSessionLifetime is how long an upload session takes ranges.
const uploadSessionLifetime = time.Hour

func (s *Server) opCreateUploadSession(c *mailboxCall, rest []string) *graphResp {
	if s.opts.Cloud == CloudUSGovL4 || s.opts.Cloud == CloudUSGovL5 {
		// Not deployed in the US Government L4 and L5 clouds (§8.3): Graph answers as for
		// any path it does not know (the exact national-cloud answer is unverified).
		return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf(msgResourceNotFound, "createUploadSession"))
	}
	var in struct {
		AttachmentItem *struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           int    `json:"size"`
			ContentType    string `json:"contentType"`
			IsInline       bool   `json:"isInline"`
		} `json:"AttachmentItem"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.AttachmentItem == nil {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The request body needs AttachmentItem with attachmentType, name and size.")
	}
	it := in.AttachmentItem
	if it.AttachmentType != "" && !strings.EqualFold(it.AttachmentType, "file") {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "attachmentType must be file.")
	}
	if it.Name == "" || it.Size <= 0 {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "AttachmentItem needs a name and a size in bytes.")
	}
	if it.Size > MaxUploadSessionBytes {
		return gerr(http.StatusBadRequest, "ErrorMessageSizeExceeded",
			fmt.Sprintf("The attachment (%d bytes) exceeds the maximum size of %d bytes (150 MB).", it.Size, MaxUploadSessionBytes))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.draftLocked(rest)
	if e != nil {
		return e
	}
	ctype := it.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	us := &uploadSession{id: randomToken(24), token: randomToken(32), clientID: c.tok.app.cfg.ClientID, mb: c.mb, messageID: m.immutableID,
		userSeg: c.userSeg, name: it.Name, ctype: ctype, isInline: it.IsInline, size: it.Size, expires: s.nowLocked().Add(uploadSessionLifetime)}
	s.state.graph.uploads[us.id] = us
	return gjson(http.StatusCreated, map[string]any{
		"@odata.context":     s.graphURL + "/v1.0/$metadata#microsoft.graph.uploadSession",
		"uploadUrl":          s.graphURL + "/upload/" + us.id + "?authtoken=" + us.token,
		"expirationDateTime": graphTime(us.expires),
		"nextExpectedRanges": []string{"0-"},
	})
}

var contentRange = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// serveUpload takes one PUT of an upload session (pre-authenticated by its URL).
func (s *Server) serveUpload(gr *graphReq, id string, h http.Header) *graphResp {
	s.mu.Lock()
	us := s.state.graph.uploads[id]
	if us != nil {
		s.state.graph.requests[us.clientID]++
	}
	s.mu.Unlock()
	if us == nil || gr.query.Get("authtoken") != us.token {
		return gerr(http.StatusNotFound, "ErrorItemNotFound", "The upload session was not found or has expired.")
	}
	if f := s.takeFault(&graphReq{ctx: gr.ctx, segs: []string{"upload", id}}, strings.ToLower(us.mb.owner.cfg.UPN)); f != nil {
		if f.afterServing { // not offered for upload PUTs: the range is lost, as with Drop
			return &graphResp{drop: true}
		}
		return f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nowLocked().After(us.expires) {
		delete(s.state.graph.uploads, id)
		return gerr(http.StatusNotFound, "ErrorItemNotFound", "The upload session was not found or has expired.")
	}
	switch gr.method {
	case http.MethodDelete:
		delete(s.state.graph.uploads, id)
		return &graphResp{status: http.StatusNoContent}
	case http.MethodPut:
	default:
		return gerr(http.StatusMethodNotAllowed, "ErrorInvalidRequest", "Upload sessions take PUT and DELETE.")
	}
	if gr.tooLarge {
		return gerr(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("A range may be at most %d bytes (4 MB).", MaxUploadChunkBytes))
	}
	if resp := s.chargeUploadLocked(strings.ToLower(us.mb.owner.cfg.UPN), len(gr.body)); resp != nil {
		return resp
	}
	m := contentRange.FindStringSubmatch(h.Get("Content-Range"))
	if m == nil {
		return gerr(http.StatusBadRequest, "InvalidContentRange", "The Content-Range header must be 'bytes start-end/total'.")
	}
	start, _ := strconv.Atoi(m[1])
	end, _ := strconv.Atoi(m[2])
	total, _ := strconv.Atoi(m[3])
	switch {
	case total != us.size:
		return gerr(http.StatusBadRequest, "InvalidContentRange", fmt.Sprintf("The total %d is not the session's size %d.", total, us.size))
	case start != len(us.data):
		return gerr(http.StatusRequestedRangeNotSatisfiable, "InvalidContentRange",
			fmt.Sprintf("The range starts at %d; the next expected range starts at %d.", start, len(us.data)))
	case end < start || end >= total || end-start+1 != len(gr.body):
		return gerr(http.StatusBadRequest, "InvalidContentRange",
			fmt.Sprintf("The range %d-%d does not match the %d bytes sent.", start, end, len(gr.body)))
	}
	us.data = append(us.data, gr.body...)
	if len(us.data) < us.size {
		return gjson(http.StatusOK, map[string]any{"expirationDateTime": graphTime(us.expires),
			"nextExpectedRanges": []string{strconv.Itoa(len(us.data)) + "-"}})
	}
	delete(s.state.graph.uploads, id)
	draft := us.mb.messages[us.messageID]
	if draft == nil || !draft.isDraft {
		return gerr(http.StatusNotFound, "ErrorItemNotFound", "The draft of this upload session is gone.")
	}
	a := &attachment{id: newID("AAMkAGI2AAABEgAQ"), name: us.name, contentType: us.ctype, content: us.data, isInline: us.isInline}
	draft.attachments = append(draft.attachments, a)
	s.state.mail.touch(draft)
	return &graphResp{status: http.StatusCreated, header: http.Header{"Location": {s.graphURL + "/v1.0/users('" + url.PathEscape(us.userSeg) +
		"')/messages('" + us.messageID + "')/attachments('" + a.id + "')"}}}
}

// replyDraftLocked composes a reply, reply-all or forward of m.
func (s *Server) replyDraftLocked(c *mailboxCall, m *message, kind string, body []byte) (*composed, *graphResp) {
	var in struct {
		Comment      string           `json:"comment"`
		Message      *jsonMessage     `json:"message"`
		ToRecipients *[]jsonRecipient `json:"toRecipients"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
		}
	}
	v := m.viewOf()
	comp := s.newComposed(c.mb)
	notSelf := func(l []*mail.Address) []*mail.Address {
		return slices.DeleteFunc(slices.Clone(l), func(a *mail.Address) bool { return mayUseFrom(c.mb, a.Address) })
	}
	base := normalizeSubject(v.subject)
	switch strings.TrimPrefix(strings.TrimPrefix(kind, "create"), "Create") {
	case "Reply", "reply":
		comp.subject = "RE: " + base
		comp.to = v.replyTo
		if len(comp.to) == 0 && v.from != nil {
			comp.to = []*mail.Address{v.from}
		}
	case "ReplyAll", "replyAll":
		comp.subject = "RE: " + base
		comp.to = v.replyTo
		if len(comp.to) == 0 && v.from != nil {
			comp.to = []*mail.Address{v.from}
		}
		comp.to = append(comp.to, notSelf(v.to)...)
		comp.cc = notSelf(v.cc)
	default: // forward
		comp.subject = "FW: " + base
		comp.attachments = slices.Clone(v.attachments)
	}
	if v.messageID != "" && !strings.HasPrefix(comp.subject, "FW") {
		comp.inReplyTo = v.messageID
		comp.references = strings.TrimSpace(m.header.Get("References") + " " + v.messageID)
	}
	_, quoted := v.bodyAs("text")
	comp.body = in.Comment + "\r\n\r\n" + strings.Repeat("_", 32) + "\r\nFrom: " + addrString(v.from) +
		"\r\nSubject: " + v.subject + "\r\n\r\n" + quoted
	if in.ToRecipients != nil {
		l, e := addresses(*in.ToRecipients)
		if e != nil {
			return nil, e
		}
		comp.to = l
	}
	if in.Message != nil {
		if e := applyJSON(comp, in.Message); e != nil {
			return nil, e
		}
	}
	return comp, nil
}

func addrString(a *mail.Address) string {
	if a == nil {
		return ""
	}
	return html.UnescapeString(a.String())
}

func (s *Server) opCreateReply(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.messageLocked(rest)
	if e != nil {
		return e
	}
	comp, e := s.replyDraftLocked(c, m, rest[2], c.body)
	if e != nil {
		return e
	}
	atts := comp.attachments
	comp.attachments = nil
	raw, err := comp.mime()
	if err != nil {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", err.Error())
	}
	d := s.state.mail.addMessage(c.mb, c.mb.folderByRef("drafts"), raw, s.nowLocked(), true, true)
	d.draft, d.attachments = comp, atts
	return gjson(http.StatusCreated, s.messageJSON(c, d, nil))
}

func (s *Server) opReplyNow(c *mailboxCall, rest []string) *graphResp {
	return s.sendComposed(c, true, func() ([]byte, *message, *graphResp) {
		m, e := c.messageLocked(rest)
		if e != nil {
			return nil, nil, e
		}
		comp, e := s.replyDraftLocked(c, m, rest[2], c.body)
		if e != nil {
			return nil, nil, e
		}
		raw, err := comp.mime()
		if err != nil {
			return nil, nil, gerr(http.StatusBadRequest, "ErrorInvalidRequest", err.Error())
		}
		return raw, nil, nil
	})
}
