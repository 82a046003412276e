package googletest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type message struct {
	id, thread string
	labels     []string
	raw        []byte
	history    uint64
	internal   time.Time
}

type historyRecord struct {
	id      uint64
	msg     *message
	added   bool     // messageAdded
	labelsA []string // labelsAdded
	labelsR []string // labelsRemoved
}

type user struct {
	email      string
	cfg        UserConfig
	msgs       []*message // oldest first
	byID       map[string]*message
	history    []historyRecord
	historyID  uint64
	minHistory uint64 // startHistoryId below this answers 404
	sent       [][]byte
}

func newUser(email string, cfg UserConfig) *user {
	return &user{email: email, cfg: cfg, byID: map[string]*message{}, historyID: 1000, minHistory: 1000}
}

// Message is a message as the test hooks show it.
type Message struct {
	ID     string
	Labels []string
	Raw    []byte
}

// Deliver puts raw into user's mailbox with the labels INBOX and UNREAD and returns its id.
func (s *Server) Deliver(email string, raw []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(email)]
	if u == nil {
		return "", fmt.Errorf("googletest: deliver to %s: %w", email, errNoUser)
	}
	return s.addLocked(u, raw, []string{"INBOX", "UNREAD"}).id, nil
}

func (s *Server) addLocked(u *user, raw []byte, labels []string) *message {
	s.seq++
	u.historyID++
	id := fmt.Sprintf("%016x", s.idBase+s.seq)
	m := &message{id: id, thread: id, labels: labels, raw: append([]byte(nil), raw...), history: u.historyID, internal: s.now()}
	u.msgs = append(u.msgs, m)
	u.byID[id] = m
	u.history = append(u.history, historyRecord{id: u.historyID, msg: m, added: true})
	return m
}

// Messages returns a user's messages, oldest first.
func (s *Server) Messages(email string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(email)]
	if u == nil {
		return nil
	}
	var out []Message
	for _, m := range u.msgs {
		out = append(out, Message{ID: m.id, Labels: slices.Clone(m.labels), Raw: slices.Clone(m.raw)})
	}
	return out
}

// Sent returns the raw messages a user sent with messages.send.
func (s *Server) Sent(email string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(email)]
	if u == nil {
		return nil
	}
	return slices.Clone(u.sent)
}

// ExpireHistory forgets a user's history so far: history.list from any earlier
// startHistoryId answers 404, as Gmail does after about a week.
func (s *Server) ExpireHistory(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(email)]; u != nil {
		u.minHistory = u.historyID + 1
		u.history = nil
	}
}

// gmailError writes Google's JSON error envelope.
func gmailError(w http.ResponseWriter, code int, status, reason, msg string) {
	domain := "global"
	if reason == "rateLimitExceeded" {
		domain = "usageLimits"
	}
	e := map[string]any{"message": msg, "domain": domain, "reason": reason}
	if reason == "authError" {
		e["location"], e["locationType"] = "Authorization", "header"
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "errors": []any{e}, "status": status}})
}

func notFound(w http.ResponseWriter) {
	gmailError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "Requested entity was not found.")
}

func badRequest(w http.ResponseWriter, msg string) {
	gmailError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalidArgument", msg)
}

func (s *Server) serveGmail(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	at := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateLimit > 0 {
		s.rateLimit--
		w.Header().Set("Retry-After", "1")
		gmailError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "rateLimitExceeded", "User-rate limit exceeded.")
		return
	}
	g, ok := s.validLocked(at)
	if !ok {
		gmailError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "authError",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
		return
	}
	who := r.PathValue("user")
	if who != "me" && !strings.EqualFold(who, g.user) {
		gmailError(w, http.StatusForbidden, "PERMISSION_DENIED", "forbidden", "Delegation denied for "+g.user)
		return
	}
	u := s.users[g.user]
	if u == nil {
		notFound(w)
		return
	}
	if u.cfg.Suspended {
		gmailError(w, http.StatusBadRequest, "FAILED_PRECONDITION", "failedPrecondition", "Mail service not enabled")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/gmail/v1/users/"+who)
	q := r.URL.Query()
	switch {
	case rest == "/profile" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"emailAddress": u.email, "messagesTotal": len(u.msgs),
			"threadsTotal": len(u.msgs), "historyId": strconv.FormatUint(u.historyID, 10)})
	case rest == "/history" && r.Method == http.MethodGet:
		s.historyList(w, u, q.Get("startHistoryId"), q.Get("labelId"), q["historyTypes"], q.Get("pageToken"), q.Get("maxResults"))
	case rest == "/messages" && r.Method == http.MethodGet:
		s.messagesList(w, u, q["labelIds"], q.Get("pageToken"), q.Get("maxResults"))
	case rest == "/messages/send" && r.Method == http.MethodPost:
		var body struct {
			Raw      string `json:"raw"`
			ThreadID string `json:"threadId"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 50<<20)).Decode(&body); err != nil {
			badRequest(w, "Invalid JSON payload received.")
			return
		}
		raw, err := decodeRaw(body.Raw)
		if err != nil || len(raw) == 0 {
			badRequest(w, "Invalid value for ByteString: "+truncate(body.Raw))
			return
		}
		u.sent = append(u.sent, raw)
		m := s.addLocked(u, raw, []string{"SENT"})
		writeJSON(w, http.StatusOK, map[string]any{"id": m.id, "threadId": m.thread, "labelIds": m.labels})
	case strings.HasPrefix(rest, "/messages/"):
		id, op, _ := strings.Cut(strings.TrimPrefix(rest, "/messages/"), "/")
		m := u.byID[id]
		if m == nil {
			notFound(w)
			return
		}
		switch {
		case op == "" && r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, messageJSON(m, q.Get("format")))
		case op == "modify" && r.Method == http.MethodPost:
			var body struct {
				Add    []string `json:"addLabelIds"`
				Remove []string `json:"removeLabelIds"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				badRequest(w, "Invalid JSON payload received.")
				return
			}
			s.modifyLocked(u, m, body.Add, body.Remove)
			writeJSON(w, http.StatusOK, messageJSON(m, "minimal"))
		default:
			notFound(w)
		}
	default:
		notFound(w)
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// decodeRaw takes base64url with or without padding (Gmail accepts both).
func decodeRaw(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (s *Server) modifyLocked(u *user, m *message, add, remove []string) {
	var added, removed []string
	for _, l := range add {
		if !slices.Contains(m.labels, l) {
			m.labels = append(m.labels, l)
			added = append(added, l)
		}
	}
	for _, l := range remove {
		if i := slices.Index(m.labels, l); i >= 0 {
			m.labels = slices.Delete(m.labels, i, i+1)
			removed = append(removed, l)
		}
	}
	if len(added)+len(removed) == 0 {
		return
	}
	u.historyID++
	m.history = u.historyID
	u.history = append(u.history, historyRecord{id: u.historyID, msg: m, labelsA: added, labelsR: removed})
}

func messageJSON(m *message, format string) map[string]any {
	out := map[string]any{"id": m.id, "threadId": m.thread, "labelIds": m.labels,
		"historyId": strconv.FormatUint(m.history, 10), "internalDate": strconv.FormatInt(m.internal.UnixMilli(), 10),
		"sizeEstimate": len(m.raw)}
	if format == "raw" {
		out["raw"] = base64.URLEncoding.EncodeToString(m.raw)
	}
	return out
}

func (s *Server) pageSize(max string) int {
	n, err := strconv.Atoi(max)
	if err != nil || n <= 0 {
		return s.opts.PageSize
	}
	return min(n, 500)
}

func (s *Server) historyList(w http.ResponseWriter, u *user, start, label string, types []string, page, max string) {
	from, err := strconv.ParseUint(start, 10, 64)
	if start == "" {
		badRequest(w, "Missing required field: startHistoryId")
		return
	}
	if err != nil {
		badRequest(w, "Invalid value at 'start_history_id' (TYPE_UINT64), \""+start+"\"")
		return
	}
	if from < u.minHistory {
		notFound(w)
		return
	}
	onlyAdded := slices.Contains(types, "messageAdded") && len(types) == 1
	skip := 0
	if page != "" {
		skip, _ = strconv.Atoi(page)
	}
	var recs []map[string]any
	matched := 0
	next := ""
	size := s.pageSize(max)
	for _, h := range u.history {
		if h.id <= from {
			continue
		}
		if onlyAdded && !h.added {
			continue
		}
		if label != "" && !slices.Contains(h.msg.labels, label) && !slices.Contains(h.labelsA, label) && !slices.Contains(h.labelsR, label) {
			continue
		}
		matched++
		if matched <= skip {
			continue
		}
		if len(recs) == size {
			next = strconv.Itoa(skip + size)
			break
		}
		ref := map[string]any{"id": h.msg.id, "threadId": h.msg.thread, "labelIds": h.msg.labels}
		rec := map[string]any{"id": strconv.FormatUint(h.id, 10), "messages": []any{map[string]any{"id": h.msg.id, "threadId": h.msg.thread}}}
		if h.added {
			rec["messagesAdded"] = []any{map[string]any{"message": ref}}
		}
		if len(h.labelsA) > 0 {
			rec["labelsAdded"] = []any{map[string]any{"message": ref, "labelIds": h.labelsA}}
		}
		if len(h.labelsR) > 0 {
			rec["labelsRemoved"] = []any{map[string]any{"message": ref, "labelIds": h.labelsR}}
		}
		recs = append(recs, rec)
	}
	out := map[string]any{"historyId": strconv.FormatUint(u.historyID, 10)}
	if len(recs) > 0 {
		out["history"] = recs
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) messagesList(w http.ResponseWriter, u *user, labels []string, page, max string) {
	skip := 0
	if page != "" {
		skip, _ = strconv.Atoi(page)
	}
	size := s.pageSize(max)
	var refs []any
	matched := 0
	next := ""
	for i := len(u.msgs) - 1; i >= 0; i-- { // newest first
		m := u.msgs[i]
		if slices.ContainsFunc(labels, func(l string) bool { return !slices.Contains(m.labels, l) }) {
			continue
		}
		matched++
		if matched <= skip {
			continue
		}
		if len(refs) == size {
			next = strconv.Itoa(skip + size)
			continue
		}
		refs = append(refs, map[string]any{"id": m.id, "threadId": m.thread})
	}
	out := map[string]any{"resultSizeEstimate": matched}
	if len(refs) > 0 {
		out["messages"] = refs
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	writeJSON(w, http.StatusOK, out)
}
