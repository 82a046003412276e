package mstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mailOp serves one kind of request below /users/{user}; rest is the path below it.
type mailOp func(s *Server, c *mailboxCall, rest []string) *graphResp

// mailboxOp picks the operation for method and path below /users/{user} and what access
// it needs; nil when there is none.
func mailboxOp(method string, rest []string) (mailOp, access) {
	n := len(rest)
	at := func(i int) string {
		if i < n {
			return rest[i]
		}
		return ""
	}
	switch {
	case n == 1 && rest[0] == "sendMail" && method == http.MethodPost:
		return (*Server).opSendMail, accessSend
	case n == 1 && rest[0] == "translateExchangeIds" && method == http.MethodPost:
		return (*Server).opTranslateIDs, accessRead
	case n == 1 && rest[0] == "messages":
		switch method {
		case http.MethodGet:
			return (*Server).opListMessages, accessRead
		case http.MethodPost:
			return (*Server).opCreateDraft, accessWrite
		}
	case n >= 2 && rest[0] == "messages":
		return messageOp(method, rest[2:])
	case n == 1 && rest[0] == "mailFolders":
		switch method {
		case http.MethodGet:
			return (*Server).opListFolders, accessRead
		case http.MethodPost:
			return (*Server).opCreateFolder, accessWrite
		}
	case n == 2 && rest[0] == "mailFolders" && method == http.MethodGet:
		return (*Server).opGetFolder, accessRead
	case n == 3 && rest[0] == "mailFolders" && at(2) == "childFolders":
		switch method {
		case http.MethodGet:
			return (*Server).opListFolders, accessRead
		case http.MethodPost:
			return (*Server).opCreateFolder, accessWrite
		}
	case n == 3 && rest[0] == "mailFolders" && at(2) == "messages":
		switch method {
		case http.MethodGet:
			return (*Server).opListMessages, accessRead
		case http.MethodPost:
			return (*Server).opCreateDraft, accessWrite
		}
	case n == 4 && rest[0] == "mailFolders" && at(2) == "messages" && at(3) == "delta" && method == http.MethodGet:
		return (*Server).opDelta, accessRead
	case n >= 4 && rest[0] == "mailFolders" && at(2) == "messages":
		op, need := messageOp(method, rest[4:])
		if op == nil {
			return nil, need
		}
		// /mailFolders/{f}/messages/{id}/... is /messages/{id}/...
		return func(s *Server, c *mailboxCall, rest []string) *graphResp { return op(s, c, rest[2:]) }, need
	}
	return nil, accessRead
}

// messageOp picks the operation on /messages/{id}/<tail>.
func messageOp(method string, tail []string) (mailOp, access) {
	key := method + " " + strings.Join(tail, "/")
	switch key {
	case "GET ":
		return (*Server).opGetMessage, accessRead
	case "PATCH ":
		return (*Server).opPatchMessage, accessWrite
	case "DELETE ":
		return (*Server).opDeleteMessage, accessWrite
	case "GET $value":
		return (*Server).opMessageValue, accessRead
	case "POST move", "POST copy":
		return (*Server).opMoveCopy, accessWrite
	case "POST send":
		return (*Server).opSendDraft, accessSend
	case "GET attachments":
		return (*Server).opListAttachments, accessRead
	case "POST attachments":
		return (*Server).opAddAttachment, accessWrite
	case "POST attachments/createUploadSession":
		return (*Server).opCreateUploadSession, accessWrite
	case "POST createReply", "POST createReplyAll", "POST createForward":
		return (*Server).opCreateReply, accessWrite
	case "POST reply", "POST replyAll", "POST forward":
		return (*Server).opReplyNow, accessSend
	}
	if len(tail) == 2 && tail[0] == "attachments" && method == http.MethodGet {
		return (*Server).opGetAttachment, accessRead
	}
	return nil, accessRead
}

// idPrefixes are how the stand-in's ids start; anything else is malformed.
var idPrefixes = []string{"AAMkAG", "AAkALg"}

func wellFormedID(id string) bool {
	return slices.ContainsFunc(idPrefixes, func(p string) bool { return strings.HasPrefix(id, p) }) && len(id) > 20
}

// messageLocked finds the message of rest[1] (the id after "messages").
func (c *mailboxCall) messageLocked(rest []string) (*message, *graphResp) {
	id := rest[1]
	if !wellFormedID(id) {
		return nil, gerr(http.StatusBadRequest, "ErrorInvalidIdMalformed", msgIDMalformed)
	}
	m := c.mb.messageByID(id)
	if m == nil {
		return nil, gerr(http.StatusNotFound, "ErrorItemNotFound", msgItemNotFound)
	}
	return m, nil
}

// folderLocked finds a folder by id or well-known name.
func (c *mailboxCall) folderLocked(ref string) (*folder, *graphResp) {
	if f, ok := c.mb.folders[ref]; ok {
		return f, nil
	}
	lower := strings.ToLower(ref)
	for _, f := range c.mb.folders {
		if f.wellKnown == lower {
			return f, nil
		}
	}
	if !wellFormedID(ref) {
		return nil, gerr(http.StatusBadRequest, "ErrorInvalidIdMalformed", msgIDMalformed)
	}
	return nil, gerr(http.StatusNotFound, "ErrorItemNotFound", msgItemNotFound)
}

// id is the id of m as this request wants it.
func (c *mailboxCall) id(m *message) string {
	if c.immutable {
		return m.immutableID
	}
	return m.restID
}

// graphTime formats a time as Graph does.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func etag(changeKey int64) string {
	return `W/"CQAAABYAAAD` + b64.EncodeToString([]byte(strconv.FormatInt(changeKey, 10))) + `"`
}

// selectList reads $select (nil = default properties).
func selectList(q url.Values) []string {
	sel := q.Get("$select")
	if sel == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(sel, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.ToLower(p))
		}
	}
	return out
}

// defaultMessageProps are the properties a message has without $select.
var defaultMessageProps = []string{"createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime",
	"sentDateTime", "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance", "parentFolderId",
	"conversationId", "isDeliveryReceiptRequested", "isReadReceiptRequested", "isRead", "isDraft", "webLink",
	"inferenceClassification", "body", "sender", "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag"}

// messageJSON renders m with the selected properties.
func (s *Server) messageJSON(c *mailboxCall, m *message, sel []string) map[string]any {
	v := m.viewOf()
	bodyType := "html"
	if strings.EqualFold(prefer(c.header)["outlook.body-content-type"], "text") {
		bodyType = "text"
	}
	props := func(name string) (any, bool) {
		switch name {
		case "createdDateTime":
			return graphTime(m.created), true
		case "lastModifiedDateTime":
			return graphTime(m.modified), true
		case "changeKey":
			return strings.Trim(strings.TrimPrefix(etag(m.changeKey), "W/"), `"`), true
		case "categories":
			return append([]string{}, m.categories...), true
		case "receivedDateTime":
			return graphTime(m.received), true
		case "sentDateTime":
			if v.sent.IsZero() {
				return graphTime(m.received), true
			}
			return graphTime(v.sent), true
		case "hasAttachments":
			return len(v.attachments) > 0 || len(m.attachments) > 0, true
		case "internetMessageId":
			return v.messageID, true
		case "subject":
			return v.subject, true
		case "bodyPreview":
			return v.preview(), true
		case "importance":
			return v.importance, true
		case "parentFolderId":
			return m.folderID, true
		case "conversationId":
			return v.conversationID, true
		case "isDeliveryReceiptRequested", "isReadReceiptRequested":
			return false, true
		case "isRead":
			return m.isRead, true
		case "isDraft":
			return m.isDraft, true
		case "webLink":
			return "https://outlook.office365.com/owa/?ItemID=" + url.QueryEscape(c.id(m)) + "&exvsurl=1&viewmodel=ReadMessageItem", true
		case "inferenceClassification":
			return "focused", true
		case "body":
			t, content := v.bodyAs(bodyType)
			return map[string]any{"contentType": t, "content": content}, true
		case "sender":
			if v.sender == nil {
				return nil, true
			}
			return recipient(v.sender), true
		case "from":
			if v.from == nil {
				return nil, true
			}
			return recipient(v.from), true
		case "toRecipients":
			return recipients(v.to), true
		case "ccRecipients":
			return recipients(v.cc), true
		case "bccRecipients":
			return recipients(v.bcc), true
		case "replyTo":
			return recipients(v.replyTo), true
		case "flag":
			return map[string]any{"flagStatus": "notFlagged"}, true
		case "internetMessageHeaders":
			out := []any{}
			for _, kv := range v.headers {
				out = append(out, map[string]any{"name": kv[0], "value": kv[1]})
			}
			return out, true
		case "uniqueBody":
			t, content := v.bodyAs(bodyType)
			return map[string]any{"contentType": t, "content": content}, true
		}
		return nil, false
	}
	out := map[string]any{"@odata.etag": etag(m.changeKey), "id": c.id(m)}
	if sel == nil {
		for _, p := range defaultMessageProps {
			out[p], _ = props(p)
		}
		return out
	}
	for _, want := range sel {
		for _, p := range append(slices.Clone(defaultMessageProps), "internetMessageHeaders", "uniqueBody") {
			if strings.ToLower(p) == want {
				out[p], _ = props(p)
			}
		}
	}
	return out
}

// validSelect checks $select names; Graph refuses unknown properties.
func validSelect(sel []string) *graphResp {
	for _, want := range sel {
		ok := want == "id" || slices.ContainsFunc(append(slices.Clone(defaultMessageProps), "internetMessageHeaders", "uniqueBody"),
			func(p string) bool { return strings.ToLower(p) == want })
		if !ok {
			return gerr(http.StatusBadRequest, "RequestBroker--ParseUri", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.message'.", want))
		}
	}
	return nil
}

func (s *Server) opGetMessage(c *mailboxCall, rest []string) *graphResp {
	sel := selectList(c.query)
	if e := validSelect(sel); e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.messageLocked(rest)
	if e != nil {
		return e
	}
	out := s.messageJSON(c, m, sel)
	out["@odata.context"] = s.graphURL + "/v1.0/$metadata#users('" + url.PathEscape(c.userSeg) + "')/messages/$entity"
	return gjson(http.StatusOK, out)
}

func (s *Server) opMessageValue(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := c.messageLocked(rest)
	if e != nil {
		return e
	}
	return &graphResp{status: http.StatusOK, raw: slices.Clone(m.raw), ctype: "text/plain"}
}

func (s *Server) opPatchMessage(c *mailboxCall, rest []string) *graphResp {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &in); err != nil {
		return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
	}
	s.mu.Lock()
	m, e := c.messageLocked(rest)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	for k, raw := range in {
		switch strings.ToLower(k) {
		case "isread":
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				s.mu.Unlock()
				return gerr(http.StatusBadRequest, "RequestBodyRead", "isRead must be true or false.")
			}
			m.isRead = b
		case "categories":
			var cats []string
			if err := json.Unmarshal(raw, &cats); err != nil {
				s.mu.Unlock()
				return gerr(http.StatusBadRequest, "RequestBodyRead", "categories must be an array of strings.")
			}
			m.categories = cats
		case "flag", "importance", "inferenceclassification":
		default:
			if !m.isDraft || m.draft == nil {
				s.mu.Unlock()
				return gerr(http.StatusBadRequest, "ErrorInvalidPropertyUpdateSentMessage",
					fmt.Sprintf("Update operation on property '%s' is allowed only on draft messages.", k))
			}
			if e := applyDraftField(m.draft, k, raw); e != nil {
				s.mu.Unlock()
				return e
			}
		}
	}
	if m.draft != nil {
		if raw, err := m.draft.mime(); err == nil {
			m.raw, m.view = raw, nil
		}
	}
	s.state.mail.touch(m)
	m.modified = s.nowLocked()
	mb := c.mb
	notes := s.changeNotificationsLocked(mb, mb.folders[m.folderID], m, "updated")
	out := s.messageJSON(c, m, nil)
	s.mu.Unlock()
	s.send(notes)
	return gjson(http.StatusOK, out)
}

func (s *Server) opDeleteMessage(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	m, e := c.messageLocked(rest)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	from := c.mb.folders[m.folderID]
	notes := s.changeNotificationsLocked(c.mb, from, m, "deleted")
	if deleted := c.mb.folderByRef("deleteditems"); from != deleted {
		s.state.mail.moveMessage(c.mb, m, deleted)
	} else {
		s.state.mail.deleteMessage(c.mb, m)
	}
	s.mu.Unlock()
	s.send(notes)
	return &graphResp{status: http.StatusNoContent}
}

func (s *Server) opMoveCopy(c *mailboxCall, rest []string) *graphResp {
	var in struct {
		DestinationID string `json:"destinationId"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.DestinationID == "" {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The request body needs destinationId.")
	}
	s.mu.Lock()
	m, e := c.messageLocked(rest)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	dest, e := c.folderLocked(in.DestinationID)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	from := c.mb.folders[m.folderID]
	var notes []notification
	if rest[2] == "copy" {
		cp := s.state.mail.addMessage(c.mb, dest, m.raw, m.received, m.isRead, m.isDraft)
		cp.created, cp.modified = s.nowLocked(), s.nowLocked()
		m = cp
	} else if dest != from {
		notes = s.changeNotificationsLocked(c.mb, from, m, "deleted")
		s.state.mail.moveMessage(c.mb, m, dest)
		m.modified = s.nowLocked()
	}
	notes = append(notes, s.changeNotificationsLocked(c.mb, dest, m, "created")...)
	out := s.messageJSON(c, m, nil)
	s.mu.Unlock()
	s.send(notes)
	return gjson(http.StatusCreated, out)
}

// folderJSON renders a mail folder.
func (c *mailboxCall) folderJSON(f *folder) map[string]any {
	total, unread := c.mb.counts(f)
	children := 0
	for _, g := range c.mb.folders {
		if g.parentID == f.id {
			children++
		}
	}
	return map[string]any{"id": f.id, "displayName": f.name, "parentFolderId": f.parentID, "childFolderCount": children,
		"unreadItemCount": unread, "totalItemCount": total, "sizeInBytes": 0, "isHidden": f.hidden}
}

func (s *Server) opGetFolder(c *mailboxCall, rest []string) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, e := c.folderLocked(rest[1])
	if e != nil {
		return e
	}
	out := c.folderJSON(f)
	out["@odata.context"] = s.graphURL + "/v1.0/$metadata#users('" + url.PathEscape(c.userSeg) + "')/mailFolders/$entity"
	return gjson(http.StatusOK, out)
}

// opListFolders lists /mailFolders (children of the root) or /mailFolders/{f}/childFolders,
// with $filter displayName eq '...', $top and $skip.
func (s *Server) opListFolders(c *mailboxCall, rest []string) *graphResp {
	conds, e := parseFilter(c.query.Get("$filter"))
	if e != nil {
		return e
	}
	top, skip, e := paging(c.query, s.opts.PageSize)
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := c.mb.root()
	if len(rest) == 3 {
		if parent, e = c.folderLocked(rest[1]); e != nil {
			return e
		}
	}
	var list []*folder
	for _, f := range c.mb.folders {
		if f.parentID != parent.id {
			continue
		}
		ok := true
		for _, cond := range conds {
			if cond.prop != "displayname" || cond.op != "eq" {
				return gerr(http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The filter on mail folders supports displayName eq only.")
			}
			ok = ok && strings.EqualFold(f.name, cond.str)
		}
		if ok {
			list = append(list, f)
		}
	}
	slices.SortFunc(list, func(a, b *folder) int {
		if a.created != b.created {
			return int(a.created - b.created)
		}
		return strings.Compare(a.name, b.name)
	})
	out := []any{}
	for i := skip; i < len(list) && i < skip+top; i++ {
		out = append(out, c.folderJSON(list[i]))
	}
	resp := map[string]any{"@odata.context": s.graphURL + "/v1.0/$metadata#users('" + url.PathEscape(c.userSeg) + "')/mailFolders", "value": out}
	if skip+top < len(list) {
		resp["@odata.nextLink"] = s.nextLink(c, skip+top)
	}
	return gjson(http.StatusOK, resp)
}

func (s *Server) opCreateFolder(c *mailboxCall, rest []string) *graphResp {
	var in struct {
		DisplayName string `json:"displayName"`
		IsHidden    bool   `json:"isHidden"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil {
		return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The displayName of a folder cannot be empty.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := c.mb.root()
	if len(rest) == 3 {
		var e *graphResp
		if parent, e = c.folderLocked(rest[1]); e != nil {
			return e
		}
	}
	if c.mb.child(parent, in.DisplayName) != nil {
		return gerr(http.StatusConflict, "ErrorFolderExists", "A folder with the specified name already exists.")
	}
	f := &folder{id: newID("AAMkAGZvbGRlcg"), name: in.DisplayName, parentID: parent.id, hidden: in.IsHidden, created: s.state.mail.nextSeq()}
	c.mb.folders[f.id] = f
	out := c.folderJSON(f)
	out["@odata.context"] = s.graphURL + "/v1.0/$metadata#users('" + url.PathEscape(c.userSeg) + "')/mailFolders('" + parent.id + "')/childFolders/$entity"
	return gjson(http.StatusCreated, out)
}

// paging reads $top (default def, at most 1000) and $skip.
func paging(q url.Values, def int) (top, skip int, e *graphResp) {
	top = def
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, gerr(http.StatusBadRequest, "BadRequest", "Invalid $top value: "+v)
		}
		top = min(n, 1000)
	}
	if v := q.Get("$skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, gerr(http.StatusBadRequest, "BadRequest", "Invalid $skip value: "+v)
		}
		skip = n
	}
	return top, skip, nil
}

// nextLink is this request's URL with $skip set to skip.
func (s *Server) nextLink(c *mailboxCall, skip int) string {
	q := url.Values{}
	for k, v := range c.query {
		q[k] = v
	}
	q.Set("$skip", strconv.Itoa(skip))
	var segs []string
	for _, p := range c.segs {
		segs = append(segs, url.PathEscape(p))
	}
	return s.graphURL + "/v1.0/" + strings.Join(segs, "/") + "?" + q.Encode()
}

// opListMessages lists a folder's messages (or all the mailbox's), newest first, with
// $select, $top, $skip, $filter and $orderby receivedDateTime.
func (s *Server) opListMessages(c *mailboxCall, rest []string) *graphResp {
	sel := selectList(c.query)
	if e := validSelect(sel); e != nil {
		return e
	}
	conds, e := parseFilter(c.query.Get("$filter"))
	if e != nil {
		return e
	}
	top, skip, e := paging(c.query, s.opts.PageSize)
	if e != nil {
		return e
	}
	asc := false
	switch ob := strings.ToLower(strings.Join(strings.Fields(c.query.Get("$orderby")), " ")); ob {
	case "", "receiveddatetime desc":
	case "receiveddatetime", "receiveddatetime asc":
		asc = true
	default:
		return gerr(http.StatusBadRequest, "BadRequest", "$orderby supports receivedDateTime only.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var only *folder
	if len(rest) == 3 {
		if only, e = c.folderLocked(rest[1]); e != nil {
			return e
		}
	}
	var list []*message
	for _, m := range c.mb.sortedMessages() {
		if only != nil && m.folderID != only.id {
			continue
		}
		ok, e := matches(m, conds)
		if e != nil {
			return e
		}
		if ok {
			list = append(list, m)
		}
	}
	if !asc {
		slices.Reverse(list)
	}
	out := []any{}
	for i := skip; i < len(list) && i < skip+top; i++ {
		out = append(out, s.messageJSON(c, list[i], sel))
	}
	resp := map[string]any{"@odata.context": s.graphURL + "/v1.0/$metadata#users('" + url.PathEscape(c.userSeg) + "')/messages", "value": out}
	if skip+top < len(list) {
		resp["@odata.nextLink"] = s.nextLink(c, skip+top)
	}
	return gjson(http.StatusOK, resp)
}

// cond is one comparison of a $filter.
type cond struct {
	prop, op string
	str      string
	t        time.Time
	b        bool
}

var condPattern = regexp.MustCompile(`^\s*([A-Za-z/]+)\s+(eq|ne|ge|gt|le|lt)\s+('(?:[^']|'')*'|true|false|\d{4}-\d\d-\d\dT[0-9:.]+Z)\s*$`)

// parseFilter parses "prop op value [and ...]" for receivedDateTime, isRead,
// internetMessageId, subject and displayName.
func parseFilter(expr string) ([]cond, *graphResp) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	var out []cond
	for _, part := range regexp.MustCompile(`\s+and\s+`).Split(expr, -1) {
		m := condPattern.FindStringSubmatch(part)
		if m == nil {
			return nil, gerr(http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+part)
		}
		c := cond{prop: strings.ToLower(m[1]), op: m[2]}
		v := m[3]
		switch {
		case strings.HasPrefix(v, "'"):
			c.str = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		case v == "true" || v == "false":
			c.b = v == "true"
		default:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, gerr(http.StatusBadRequest, "BadRequest", "Invalid date in filter: "+v)
			}
			c.t = t
		}
		out = append(out, c)
	}
	return out, nil
}

func matches(m *message, conds []cond) (bool, *graphResp) {
	for _, c := range conds {
		var ok bool
		switch c.prop {
		case "receiveddatetime":
			switch c.op {
			case "ge":
				ok = !m.received.Before(c.t)
			case "gt":
				ok = m.received.After(c.t)
			case "le":
				ok = !m.received.After(c.t)
			case "lt":
				ok = m.received.Before(c.t)
			default:
				ok = m.received.Equal(c.t)
			}
		case "isread":
			ok = (m.isRead == c.b) == (c.op == "eq")
		case "internetmessageid":
			ok = (m.viewOf().messageID == c.str) == (c.op == "eq")
		case "subject":
			ok = (m.viewOf().subject == c.str) == (c.op == "eq")
		default:
			return false, gerr(http.StatusBadRequest, "ErrorInvalidUrlQueryFilter",
				"The stand-in filters messages on receivedDateTime, isRead, internetMessageId and subject only.")
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// opTranslateIDs converts ids between restId and restImmutableEntryId.
func (s *Server) opTranslateIDs(c *mailboxCall, rest []string) *graphResp {
	var in struct {
		InputIDs     []string `json:"inputIds"`
		SourceIDType string   `json:"sourceIdType"`
		TargetIDType string   `json:"targetIdType"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil {
		return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
	}
	if in.TargetIDType != "restId" && in.TargetIDType != "restImmutableEntryId" {
		return gerr(http.StatusBadRequest, "ErrorInvalidRequest", "The stand-in translates between restId and restImmutableEntryId only.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, id := range in.InputIDs {
		m := c.mb.messageByID(id)
		if m == nil {
			continue
		}
		target := m.restID
		if in.TargetIDType == "restImmutableEntryId" {
			target = m.immutableID
		}
		out = append(out, map[string]any{"sourceId": id, "targetId": target})
	}
	return gjson(http.StatusOK, map[string]any{"value": out})
}
