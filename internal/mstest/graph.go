package mstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// graphState is the Graph host's state.
type graphState struct {
	requests      map[string]int // Graph HTTP requests by client id
	tokenRequests map[string]int // token requests by client id
	throttle      map[throttleKey]*throttleState
	faults        faultState
	delta         map[string]*deltaState // by delta or skip token
	subs          map[string]*subscription
	uploads       map[string]*uploadSession
	uploaded      map[string]*uploadWindow // by lower-case mailbox UPN
}

func newGraphState() graphState {
	return graphState{
		requests:      map[string]int{},
		tokenRequests: map[string]int{},
		throttle:      map[throttleKey]*throttleState{},
		delta:         map[string]*deltaState{},
		subs:          map[string]*subscription{},
		uploads:       map[string]*uploadSession{},
		uploaded:      map[string]*uploadWindow{},
	}
}

type throttleKey struct{ clientID, mailbox string }

type throttleState struct {
	inFlight, maxInFlight int
	windowStart           time.Time
	count                 int
}

// graphReq is one Graph request: an HTTP request or a $batch member.
type graphReq struct {
	ctx         context.Context
	method      string
	segs        []string // path below /v1.0, unescaped
	query       url.Values
	header      http.Header
	body        []byte
	tooLarge    bool // the body was over MaxInlineRequestBytes
	tok         *accessToken
	requestID   string
	clientReqID string
	inBatch     bool
}

// graphResp is an answer before it is written.
type graphResp struct {
	status int
	header http.Header
	json   any    // a JSON body, or
	raw    []byte // a raw body with contentType
	ctype  string
	drop   bool // close the connection without an answer
	// afterServing (a fault's DropAfterServing): serve the request, hold the answer for
	// delay (or until the client goes away), then drop it.
	afterServing bool
	delay        time.Duration
}

// gerr is a Graph error answer; innerError is filled in when written.
func gerr(status int, code, message string) *graphResp {
	return &graphResp{status: status, json: map[string]any{"error": map[string]any{"code": code, "message": message}}}
}

func gjson(status int, body any) *graphResp { return &graphResp{status: status, json: body} }

// Graph's standard error messages (reference §3.13).
const (
	msgAccessDenied     = "Access is denied. Check credentials and try again."
	msgRAOP             = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
	msgNotEnabled       = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
	msgItemNotFound     = "The specified object was not found in the store."
	msgIDMalformed      = "Id is malformed."
	msgTokenExpired     = "Access token has expired or is not yet valid."
	msgInvalidAudience  = "Access token validation failure. Invalid audience."
	msgConcurrency      = "Application is over its MailboxConcurrency limit."
	msgTooManyRequests  = "Too many requests"
	msgResourceNotFound = "Resource not found for the segment '%s'."
	msgNoPermissions    = "The token contains no permissions, or permissions can not be understood."
)

func (s *Server) graphHandler() http.Handler { return http.HandlerFunc(s.serveGraphHTTP) }

func (s *Server) serveGraphHTTP(w http.ResponseWriter, r *http.Request) {
	gr := &graphReq{ctx: r.Context(), method: r.Method, query: r.URL.Query(), header: r.Header, requestID: NewGUID()}
	gr.clientReqID = r.Header.Get("client-request-id")
	if gr.clientReqID == "" {
		gr.clientReqID = gr.requestID
	}
	limit := int64(MaxInlineRequestBytes)
	if strings.HasPrefix(r.URL.Path, "/upload/") {
		limit = MaxUploadChunkBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.writeGraph(w, r, gr, gerr(http.StatusBadRequest, "BadRequest", "The request body could not be read."))
		return
	}
	if int64(len(body)) > limit {
		gr.tooLarge = true
		body = nil
	}
	gr.body = body
	if strings.HasPrefix(r.URL.Path, "/upload/") {
		s.writeGraph(w, r, gr, s.serveUpload(gr, strings.TrimPrefix(r.URL.Path, "/upload/"), r.Header))
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || len(segs) == 0 || segs[0] != "v1.0" {
		s.writeGraph(w, r, gr, gerr(http.StatusBadRequest, "BadRequest", "Invalid version."))
		return
	}
	gr.segs = segs[1:]

	// Count the request against the app the token names, even when the token is refused:
	// a client's retries are requests too.
	raw, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if c, err := s.ParseToken(raw); err == nil {
		s.mu.Lock()
		s.state.graph.requests[c.AppID]++
		s.mu.Unlock()
	}
	if !hasBearer || raw == "" {
		s.writeGraph(w, r, gr, s.unauthorized("Access token is empty."))
		return
	}
	s.mu.Lock()
	at, prob := s.validateAccessLocked(raw)
	s.mu.Unlock()
	switch {
	case prob != nil && strings.HasPrefix(prob.msg, "IDX"):
		s.writeGraph(w, r, gr, s.unauthorized(prob.msg))
		return
	case prob != nil && strings.HasPrefix(prob.msg, "Lifetime"):
		s.writeGraph(w, r, gr, s.unauthorized(msgTokenExpired))
		return
	case prob != nil:
		s.writeGraph(w, r, gr, s.unauthorized("Access token validation failure."))
		return
	case at.claims.Audience != GraphAudience:
		s.writeGraph(w, r, gr, s.unauthorized(msgInvalidAudience))
		return
	case at.user == nil && len(at.claims.Roles) == 0:
		s.writeGraph(w, r, gr, s.noPermissions(gr))
		return
	}
	gr.tok = at
	s.writeGraph(w, r, gr, s.route(gr))
}

func (s *Server) unauthorized(msg string) *graphResp {
	resp := gerr(http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
	resp.header = http.Header{"Www-Authenticate": {`Bearer realm="", authorization_uri="` + s.loginURL +
		`/common/oauth2/authorize", client_id="` + graphAppID + `"`}}
	return resp
}

// noPermissions is Graph's answer to an app-only token without roles (no admin consent
// for any application permission of Graph): 401 with the code and innerError of
// https://learn.microsoft.com/troubleshoot/entra/entra-id/users-groups-entra-apis/error-call-me-endpoint-microsoft-graph
// (ms365-protocol.md §8.4). A new token does not help; granting admin consent does.
func (s *Server) noPermissions(gr *graphReq) *graphResp {
	resp := s.unauthorized(msgNoPermissions)
	resp.json = map[string]any{"error": map[string]any{
		"code":    "NoPermissionsInAccessToken",
		"message": msgNoPermissions,
		"innerError": map[string]any{
			"oAuthEventOperationId": NewGUID(),
			"oAuthEventcV":          randomToken(16) + ".1",
			"errorUrl":              "https://aka.ms/autherrors#error-InvalidGrant",
			"requestId":             gr.requestID,
			"date":                  s.now().UTC().Format("2006-01-02T15:04:05"),
		},
	}}
	return resp
}

// splitPath splits an escaped path into unescaped segments.
func splitPath(escaped string) ([]string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		return nil, true
	}
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// writeGraph writes resp with Graph's headers; errors get their innerError.
func (s *Server) writeGraph(w http.ResponseWriter, r *http.Request, gr *graphReq, resp *graphResp) {
	if resp.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("request-id", gr.requestID)
	h.Set("client-request-id", gr.clientReqID)
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"mstest","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"local"}}`)
	s.fillInnerError(gr, resp)
	// The path only: an upload URL's query is its credential.
	s.log.Debug("mstest: graph", "method", r.Method, "path", r.URL.Path, "status", resp.status, "request-id", gr.requestID)
	if resp.json != nil {
		h.Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
		w.WriteHeader(resp.status)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(resp.json)
		return
	}
	if resp.ctype != "" {
		h.Set("Content-Type", resp.ctype)
	}
	if resp.raw != nil {
		h.Set("Content-Length", strconv.Itoa(len(resp.raw)))
	}
	w.WriteHeader(resp.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp.raw)
	}
}

func (s *Server) fillInnerError(gr *graphReq, resp *graphResp) {
	m, ok := resp.json.(map[string]any)
	if !ok {
		return
	}
	e, ok := m["error"].(map[string]any)
	if !ok {
		return
	}
	if _, done := e["innerError"]; !done {
		e["innerError"] = map[string]any{"date": s.now().UTC().Format("2006-01-02T15:04:05"),
			"request-id": gr.requestID, "client-request-id": gr.clientReqID}
	}
}

// route dispatches a request below /v1.0.
func (s *Server) route(gr *graphReq) *graphResp {
	segs := gr.segs
	if len(segs) == 0 {
		return gerr(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
	}
	switch {
	case segs[0] == "$batch" && len(segs) == 1 && gr.method == http.MethodPost && !gr.inBatch:
		return s.serveBatch(gr)
	case segs[0] == "subscriptions":
		return s.serveSubscriptions(gr, segs[1:])
	case segs[0] == "me":
		if gr.tok.user == nil {
			return gerr(http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
		}
		return s.serveMailbox(gr, gr.tok.user.cfg.ObjectID, segs[1:])
	case segs[0] == "users" && len(segs) >= 2:
		return s.serveMailbox(gr, segs[1], segs[2:])
	case strings.HasPrefix(segs[0], "users("):
		// users('support@contoso.example') as the @odata.id of notifications spells it.
		id := strings.TrimSuffix(strings.TrimPrefix(segs[0], "users("), ")")
		return s.serveMailbox(gr, strings.Trim(id, "'"), segs[1:])
	}
	return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf(msgResourceNotFound, segs[0]))
}

// access is what an operation needs.
type access int

const (
	accessRead access = iota
	accessWrite
	accessSend
)

// mailboxCall is a request resolved to a mailbox the token may use.
type mailboxCall struct {
	*graphReq
	mb        *mailbox
	immutable bool // Prefer: IdType="ImmutableId"
	userSeg   string
}

// serveMailbox serves /users/{user}/... .
func (s *Server) serveMailbox(gr *graphReq, user string, rest []string) *graphResp {
	s.mu.Lock()
	u := gr.tok.app.tenant.users[strings.ToLower(user)]
	s.mu.Unlock()
	if len(rest) == 0 && gr.method == http.MethodGet {
		return s.serveUser(gr, user, u)
	}
	if u == nil {
		return gerr(http.StatusNotFound, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", user))
	}
	if u.cfg.NoMailbox {
		return gerr(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", msgNotEnabled)
	}
	op, need := mailboxOp(gr.method, rest)
	if op == nil {
		return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf(msgResourceNotFound, strings.Join(rest, "/")))
	}
	mailboxKey := strings.ToLower(u.cfg.UPN)
	f := s.takeFault(gr, mailboxKey)
	if f != nil && !f.afterServing {
		return f
	}
	release, throttled := s.acquire(gr.tok.app.cfg.ClientID, mailboxKey, uploadBytes(gr))
	if throttled != nil {
		return throttled
	}
	defer release()
	s.sleepLatency(gr.ctx)
	if denied := s.checkAccess(gr.tok, u, need); denied != nil {
		return denied
	}
	c := &mailboxCall{graphReq: gr, mb: u.mbox, immutable: preferImmutable(gr.header), userSeg: user}
	resp := op(s, c, rest)
	if f != nil { // DropAfterServing: done, but the answer is lost on the way back
		select {
		case <-time.After(f.delay):
		case <-gr.ctx.Done():
		}
		return &graphResp{drop: true}
	}
	return resp
}

// checkAccess applies roles/scopes, the application access policy and mailbox rights.
func (s *Server) checkAccess(tok *accessToken, u *User, need access) *graphResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.user == nil {
		roles := tok.claims.Roles
		ok := false
		switch need {
		case accessRead:
			ok = slices.Contains(roles, RoleMailRead) || slices.Contains(roles, RoleMailReadWrite)
		case accessWrite:
			ok = slices.Contains(roles, RoleMailReadWrite)
		case accessSend:
			ok = slices.Contains(roles, RoleMailSend)
		}
		if !ok {
			return gerr(http.StatusForbidden, "ErrorAccessDenied", msgAccessDenied)
		}
		if p := tok.app.policy; p != nil {
			in := slices.Contains(p.Mailboxes, strings.ToLower(u.cfg.UPN))
			if in == p.Deny {
				return gerr(http.StatusForbidden, "ErrorAccessDenied", msgRAOP)
			}
		}
		return nil
	}
	// Delegated (ms365-protocol.md §8.1; https://learn.microsoft.com/graph/outlook-share-messages-folders):
	// Mail.Read, Mail.ReadWrite and Mail.Send cover the signed-in user's own mailbox only;
	// another user's or a shared mailbox needs the .Shared scopes, and the user's rights on
	// it: FullAccess to read and write, SendAs to send as it.
	scopes := strings.Fields(tok.claims.Scope)
	has := func(names ...string) bool {
		return slices.ContainsFunc(scopes, func(sc string) bool {
			return slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(sc, n) })
		})
	}
	own := u == tok.user
	var names []string
	switch need {
	case accessRead:
		names = []string{"Mail.Read.Shared", "Mail.ReadWrite.Shared"}
		if own {
			names = append(names, "Mail.Read", "Mail.ReadWrite")
		}
	case accessWrite:
		names = []string{"Mail.ReadWrite.Shared"}
		if own {
			names = append(names, "Mail.ReadWrite")
		}
	case accessSend:
		names = []string{"Mail.Send.Shared"}
		if own {
			names = append(names, "Mail.Send")
		}
	}
	if !has(names...) {
		return gerr(http.StatusForbidden, "ErrorAccessDenied", msgAccessDenied)
	}
	if own {
		return nil
	}
	key := strings.ToLower(u.cfg.UPN)
	if need == accessSend {
		if !tok.user.sendAs[key] {
			return errSendAs(u.cfg.UPN)
		}
		return nil
	}
	if !tok.user.fullAccess[key] {
		return gerr(http.StatusForbidden, "ErrorAccessDenied", msgAccessDenied)
	}
	return nil
}

// takeFault applies a queued fault (FailNext) to a request for mailbox ("" = none).
func (s *Server) takeFault(gr *graphReq, mailbox string) *graphResp {
	path := "/v1.0/" + strings.Join(gr.segs, "/")
	s.mu.Lock()
	f := s.takeFaultLocked(path, mailbox)
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	s.log.Info("mstest: injected fault", "path", path, "status", f.Status, "drop", f.Drop, "delay", f.Delay)
	if f.DropAfterServing && !gr.inBatch {
		return &graphResp{afterServing: true, delay: f.Delay}
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-gr.ctx.Done():
			// The client went away (or died) while the request waited: it never got here.
			return &graphResp{drop: true}
		}
	}
	var resp *graphResp
	switch {
	case f.Code != "" && f.Status != 0:
		resp = gerr(f.Status, f.Code, http.StatusText(f.Status))
	case f.Drop && !gr.inBatch:
		return &graphResp{drop: true}
	case f.Drop || f.Status == http.StatusServiceUnavailable:
		resp = gerr(http.StatusServiceUnavailable, "ServiceNotAvailable", "The service is temporarily unavailable. Try again later.")
	case f.Status == http.StatusTooManyRequests:
		resp = gerr(http.StatusTooManyRequests, "TooManyRequests", msgTooManyRequests)
	case f.Status == http.StatusGatewayTimeout:
		resp = gerr(http.StatusGatewayTimeout, "UnknownError", "Gateway timeout.")
	case f.Status != 0:
		resp = gerr(f.Status, "UnknownError", http.StatusText(f.Status))
	default:
		return nil // only slow
	}
	if f.RetryAfter > 0 {
		resp.header = http.Header{"Retry-After": {retryAfter(f.RetryAfter)}}
	}
	return resp
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

func (s *Server) sleepLatency(ctx context.Context) {
	s.mu.Lock()
	d := s.state.graph.faults.latency
	s.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

// prefer reads the Prefer headers (several headers or comma-separated).
func prefer(h http.Header) map[string]string {
	out := map[string]string{}
	for _, line := range h.Values("Prefer") {
		for _, p := range strings.Split(line, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out
}

func preferImmutable(h http.Header) bool {
	return strings.EqualFold(prefer(h)["idtype"], "ImmutableId")
}

// serveBatch runs a JSON batch (reference §3.15).
func (s *Server) serveBatch(gr *graphReq) *graphResp {
	if gr.tooLarge {
		return gerr(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", "The request body is too large.")
	}
	var in struct {
		Requests []struct {
			ID        string            `json:"id"`
			Method    string            `json:"method"`
			URL       string            `json:"url"`
			Headers   map[string]string `json:"headers"`
			Body      json.RawMessage   `json:"body"`
			DependsOn []string          `json:"dependsOn"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(gr.body, &in); err != nil {
		return gerr(http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
	}
	if len(in.Requests) == 0 {
		return gerr(http.StatusBadRequest, "BadRequest", "Invalid batch payload format: no requests.")
	}
	if len(in.Requests) > MaxBatchRequests {
		return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Number of batch requests exceeds the maximum allowed of %d.", MaxBatchRequests))
	}
	ids := map[string]bool{}
	for _, m := range in.Requests {
		if m.ID == "" || ids[m.ID] {
			return gerr(http.StatusBadRequest, "BadRequest", "Each batch request needs a unique id.")
		}
		ids[m.ID] = true
	}
	status := map[string]int{}
	var out []any
	// Members run in order; a member waits for its dependencies, which are earlier ones.
	for _, m := range in.Requests {
		var failed bool
		for _, d := range m.DependsOn {
			st, ran := status[d]
			if !ran {
				return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Batch request %s depends on %s, which does not come before it.", m.ID, d))
			}
			failed = failed || st >= 400
		}
		var resp *graphResp
		member := &graphReq{ctx: gr.ctx, method: strings.ToUpper(m.Method), header: http.Header{}, tok: gr.tok,
			requestID: NewGUID(), clientReqID: gr.clientReqID, inBatch: true}
		for k, v := range m.Headers {
			member.header.Set(k, v)
		}
		for _, p := range gr.header.Values("Prefer") {
			if member.header.Get("Prefer") == "" {
				member.header.Add("Prefer", p)
			}
		}
		if failed {
			resp = gerr(http.StatusFailedDependency, "FailedDependency", "The request was not run because a request it depends on failed.")
		} else {
			resp = s.runMember(member, m.URL, m.Body)
		}
		status[m.ID] = resp.status
		s.fillInnerError(member, resp)
		entry := map[string]any{"id": m.ID, "status": resp.status}
		headers := map[string]string{}
		for k, v := range resp.header {
			headers[k] = v[0]
		}
		switch {
		case resp.json != nil:
			headers["Content-Type"] = "application/json"
			entry["body"] = resp.json
		case len(resp.raw) > 0:
			headers["Content-Type"] = resp.ctype
			entry["body"] = resp.raw // base64 in JSON, as Graph sends non-JSON bodies
		}
		entry["headers"] = headers
		out = append(out, entry)
	}
	return gjson(http.StatusOK, map[string]any{"responses": out})
}

// runMember runs one batch member.
func (s *Server) runMember(member *graphReq, rawURL string, body json.RawMessage) *graphResp {
	u, err := url.Parse(rawURL)
	if err != nil || u.IsAbs() {
		return gerr(http.StatusBadRequest, "BadRequest", "Batch request URLs are relative to the version, e.g. /users/{id}/messages.")
	}
	segs, ok := splitPath(u.EscapedPath())
	if !ok {
		return gerr(http.StatusBadRequest, "BadRequest", "Invalid URL.")
	}
	if len(segs) > 0 && segs[0] == "v1.0" {
		segs = segs[1:]
	}
	member.segs, member.query = segs, u.Query()
	if len(body) > 0 && string(body) != "null" {
		if strings.HasPrefix(strings.ToLower(member.header.Get("Content-Type")), "application/json") || member.header.Get("Content-Type") == "" {
			member.body = body
		} else {
			var b64body []byte
			if err := json.Unmarshal(body, &b64body); err != nil {
				member.body = bytes.Trim(body, `"`)
			} else {
				member.body = b64body
			}
		}
	}
	return s.route(member)
}

// serveUser serves GET /users/{id}: a directory read, which needs User.Read.All (app) or
// User.Read (delegated, oneself).
func (s *Server) serveUser(gr *graphReq, id string, u *User) *graphResp {
	tok := gr.tok
	var ok bool
	if tok.user == nil {
		ok = slices.Contains(tok.claims.Roles, RoleUserReadAll)
	} else {
		scopes := strings.Fields(strings.ToLower(tok.claims.Scope))
		ok = slices.Contains(scopes, "user.read.all") || slices.Contains(scopes, "user.readbasic.all") ||
			(u == tok.user && slices.Contains(scopes, "user.read"))
	}
	if !ok {
		return gerr(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	if u == nil {
		return gerr(http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var mailAddr any = u.cfg.UPN
	if u.cfg.NoMailbox {
		mailAddr = nil
	}
	return gjson(http.StatusOK, map[string]any{
		"@odata.context": s.graphURL + "/v1.0/$metadata#users/$entity",
		"businessPhones": []string{}, "displayName": u.cfg.DisplayName, "givenName": nil, "jobTitle": nil, "mail": mailAddr,
		"mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil, "surname": nil,
		"userPrincipalName": u.cfg.UPN, "id": u.cfg.ObjectID,
	})
}
