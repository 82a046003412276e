package ewstest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Namespaces of EWS (messages.xsd, types.xsd, errors) and SOAP 1.1.
const (
	NSMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	NSTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	NSErrors   = "http://schemas.microsoft.com/exchange/services/2006/errors"
	NSSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
)

// Path is where the stand-in serves EWS, as Exchange Server does.
const Path = "/EWS/Exchange.asmx"

// maxBody bounds a request: Exchange Server's default maxAllowedContentLength for EWS is
// about 150 MB.
const maxBody = 150 << 20

// maxChanges is the most SyncFolderItems returns at once (MaxChangesReturned 1..512).
const maxChanges = 512

// Folders every stand-in mailbox has (distinguished folder ids).
var wellKnown = []string{"inbox", "sentitems", "deleteditems", "drafts", "junkemail"}

// Options configures Start.
type Options struct {
	// Addr is where to listen, "127.0.0.1:0" when empty.
	Addr   string
	Logger *slog.Logger
	// TLS serves https with a self-signed certificate (CertPool) for TLSHosts and the
	// loopback addresses; a second, plain listener (PlainAddr) then answers the
	// unauthenticated GET of http://autodiscover.<domain>/autodiscover/autodiscover.xml
	// (RedirectHTTP).
	TLS      bool
	TLSHosts []string
}

// User is a Windows account that signs in to EWS.
type User struct {
	Login    string // e.g. "support@contoso.local" or "CONTOSO\\support"
	Password string
	// Mailbox is the user's own mailbox address ("" for a service account without one).
	Mailbox string
	// Impersonate gives the ApplicationImpersonation role: any mailbox can be opened with
	// the ExchangeImpersonation header.
	Impersonate bool
}

// FaultKind says how a request fails (FailNext).
type FaultKind int

// Faults on demand.
const (
	FaultDrop FaultKind = iota + 1 // the connection is closed without an answer
	Fault500                       // HTTP 500 with a plain body (not a SOAP fault)
)

// Fault makes a request fail. Op, when set, names the EWS operation it applies to
// ("GetItem", "SyncFolderItems", ...).
type Fault struct {
	Kind FaultKind
	Op   string
}

// Sent is a message that CreateItem sent.
type Sent struct {
	From       string
	Recipients []string
	Raw        []byte
}

// Message is a stand-in message as a test sees it.
type Message struct {
	ID, ChangeKey, Folder string
	IsRead                bool
	Raw                   []byte
	Received              time.Time
}

type item struct {
	id       string
	version  int
	mailbox  string
	folder   string
	seq      int64 // when it arrived in its folder
	isRead   bool
	raw      []byte
	received time.Time
}

func (it *item) changeKey() string { return fmt.Sprintf("CQAAABYAAAA%04d", it.version) }

// Server is a running stand-in.
type Server struct {
	log *slog.Logger
	srv *http.Server
	url string

	requests atomic.Int64

	mu       sync.Mutex
	users    map[string]*User            // by lower login
	tokens   map[string]string           // bearer token -> lower login
	bearer   func(string) (string, bool) // TrustBearer
	grants   map[string]map[string]bool  // lower login -> lower mailbox
	boxes    map[string]bool             // lower address
	items    map[string]*item
	seq      int64
	epoch    int64
	faults   []Fault
	throttle int
	backoff  time.Duration
	sent     []Sent
	ops      map[string]int
	subs     map[string]*subscription

	// Autodiscover (autodiscover.go).
	pool      *x509.CertPool
	plain     *http.Server
	plainAddr string
	ad        autodiscoverState

	ntlm           bool
	ntlmChallenges map[string][8]byte // remote address -> server challenge
	ntlmConns      map[string]string  // remote address -> lower login of an authenticated connection
}

// Start starts a stand-in listening on loopback.
func Start(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ewstest: listen: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	s := &Server{
		log: log, url: scheme + "://" + ln.Addr().String() + Path,
		users: map[string]*User{}, tokens: map[string]string{}, grants: map[string]map[string]bool{},
		boxes: map[string]bool{}, items: map[string]*item{}, epoch: 1, ops: map[string]int{}, subs: map[string]*subscription{},
		ntlmChallenges: map[string][8]byte{}, ntlmConns: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serve)
	mux.HandleFunc(AutodiscoverSOAPPath, s.serveAutodiscover)
	mux.HandleFunc(AutodiscoverPOXPath, s.serveAutodiscover)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	if !opts.TLS {
		go func() { _ = s.srv.Serve(ln) }()
		return s, nil
	}
	cert, pool, err := selfSigned(opts.TLSHosts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.pool = pool
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("ewstest: listen: %w", err)
	}
	s.plainAddr = plain.Addr().String()
	s.plain = &http.Server{Handler: http.HandlerFunc(s.servePlain), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	go func() { _ = s.plain.Serve(plain) }()
	return s, nil
}

// URL is the EWS endpoint, http://127.0.0.1:port/EWS/Exchange.asmx.
func (s *Server) URL() string { return s.url }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.plain != nil {
		_ = s.plain.Shutdown(ctx)
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// AddMailbox creates a mailbox with the well-known folders.
func (s *Server) AddMailbox(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.boxes[strings.ToLower(address)] = true
}

// AddUser adds an account (and its mailbox, when it has one).
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := u
	s.users[strings.ToLower(u.Login)] = &c
	if u.Mailbox != "" {
		s.boxes[strings.ToLower(u.Mailbox)] = true
	}
}

// Grant gives login delegate (full) access to mailbox.
func (s *Server) Grant(login, mailbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := strings.ToLower(login)
	if s.grants[l] == nil {
		s.grants[l] = map[string]bool{}
	}
	s.grants[l][strings.ToLower(mailbox)] = true
}

// TrustBearer makes Bearer tokens that AddToken did not name go to check, which returns
// the login they act as (OAuth from an identity platform such as internal/mstest: check
// verifies the signature and the audience, as Exchange Server with hybrid modern
// authentication does).
func (s *Server) TrustBearer(check func(token string) (login string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bearer = check
}

// AddToken makes token a Bearer token of login (OAuth: hybrid modern authentication).
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = strings.ToLower(login)
}

// Deliver adds raw to the mailbox's inbox, unread, and returns its ItemId.
func (s *Server) Deliver(mailbox string, raw []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := strings.ToLower(mailbox)
	if !s.boxes[mb] {
		return "", fmt.Errorf("ewstest: no mailbox %q", mailbox)
	}
	return s.addLocked(mb, "inbox", raw, false).id, nil
}

func (s *Server) addLocked(mb, folder string, raw []byte, isRead bool) *item {
	s.seq++
	it := &item{id: fmt.Sprintf("AAMkAGI2TG93AAA%010d=", s.seq), version: 1, mailbox: mb, folder: folder,
		seq: s.seq, isRead: isRead, raw: bytes.Clone(raw), received: time.Now().UTC()}
	s.items[it.id] = it
	s.notifyLocked(it)
	return it
}

// Messages returns the messages of a folder of mailbox, oldest first.
func (s *Server) Messages(mailbox, folder string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, it := range s.sortedLocked(strings.ToLower(mailbox), folder, 0) {
		out = append(out, Message{ID: it.id, ChangeKey: it.changeKey(), Folder: it.folder, IsRead: it.isRead, Raw: bytes.Clone(it.raw), Received: it.received})
	}
	return out
}

// Message returns one message by ItemId.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return Message{}, false
	}
	return Message{ID: it.id, ChangeKey: it.changeKey(), Folder: it.folder, IsRead: it.isRead, Raw: bytes.Clone(it.raw), Received: it.received}, true
}

// Sent returns what CreateItem sent, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// InvalidateSyncStates makes every sync state handed out so far invalid: the next
// SyncFolderItems with one gets ErrorInvalidSyncStateData.
func (s *Server) InvalidateSyncStates() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

// Throttle answers the next n requests with an ErrorServerBusy fault whose
// BackOffMilliseconds is backoff.
func (s *Server) Throttle(n int, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.backoff = n, backoff
}

// FailNext makes the next request (of f.Op, when set) fail as f says; faults queue up.
func (s *Server) FailNext(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Requests is the number of HTTP requests served (faults included).
func (s *Server) Requests() int64 { return s.requests.Load() }

// ResetRequests sets Requests and the per-operation counts to 0.
func (s *Server) ResetRequests() {
	s.requests.Store(0)
	s.mu.Lock()
	s.ops = map[string]int{}
	s.mu.Unlock()
}

// Ops returns how often the operation was asked (faults included).
func (s *Server) Ops(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// sortedLocked returns the items of a mailbox's folder that arrived after seq, in order.
func (s *Server) sortedLocked(mb, folder string, after int64) []*item {
	var out []*item
	for _, it := range s.items {
		if it.mailbox == mb && it.folder == folder && it.seq > after {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// ewsError is an error answered in a response message (ResponseClass="Error") or, with
// fault set, as a SOAP fault with HTTP 500.
type ewsError struct {
	code, text string
	fault      bool
	backoff    time.Duration
}

func (e *ewsError) Error() string { return e.code + ": " + e.text }

// serve handles one SOAP request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "EWS takes SOAP requests by POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	if len(body) > maxBody {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	env, err := parseTree(bytes.NewReader(body))
	if err != nil {
		env = &node{}
	}
	bodyNode := env.kid("Body")
	if err != nil || env.Local != "Envelope" || env.Space != NSSoap || bodyNode == nil || len(bodyNode.Kids) == 0 {
		s.fault(w, &ewsError{code: "ErrorSchemaValidation", text: "The request failed schema validation.", fault: true})
		return
	}
	op := bodyNode.Kids[0]
	s.mu.Lock()
	s.ops[op.Local]++
	fault, throttled, backoff := s.takeFaultLocked(op.Local)
	s.mu.Unlock()
	switch {
	case fault != nil && fault.Kind == FaultDrop:
		dropConn(w)
		return
	case fault != nil:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	ntlm := s.ntlm
	s.mu.Unlock()
	if ntlm {
		login, ok := s.ntlmAuth(w, r)
		if !ok {
			return
		}
		s.serveAs(w, r, env, op, login, throttled, backoff)
		return
	}
	login, ok := s.authenticate(r)
	if !ok {
		w.Header().Add("WWW-Authenticate", `Basic realm="`+r.Host+`"`)
		w.Header().Add("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.serveAs(w, r, env, op, login, throttled, backoff)
}

// serveAs answers an authenticated request of login.
func (s *Server) serveAs(w http.ResponseWriter, r *http.Request, env, op *node, login string, throttled bool, backoff time.Duration) {
	if throttled {
		s.fault(w, &ewsError{code: "ErrorServerBusy", text: "The server cannot service this request right now. Try again later.", fault: true, backoff: backoff})
		return
	}
	if op.Space != NSMessages {
		s.fault(w, &ewsError{code: "ErrorSchemaValidation", text: "The request failed schema validation: unknown namespace " + op.Space, fault: true})
		return
	}
	imp := env.path("Header", "ExchangeImpersonation", "ConnectingSID", "PrimarySmtpAddress").text()
	if op.Local == "GetStreamingEvents" {
		s.streamEvents(w, r, login, op)
		return
	}
	s.mu.Lock()
	resp, err := s.handleLocked(login, imp, op)
	s.mu.Unlock()
	var ee *ewsError
	if errors.As(err, &ee) {
		s.fault(w, ee)
		return
	}
	if err != nil {
		s.fault(w, &ewsError{code: "ErrorInternalServerError", text: err.Error(), fault: true})
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, envelope(resp))
}

func dropConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) takeFaultLocked(op string) (*Fault, bool, time.Duration) {
	for i, f := range s.faults {
		if f.Op == "" || f.Op == op {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return &f, false, 0
		}
	}
	if s.throttle > 0 {
		s.throttle--
		return nil, true, s.backoff
	}
	return nil, false, 0
}

// authenticate returns the lower login of a request's Basic or Bearer credentials.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if user, pass, ok := r.BasicAuth(); ok {
		u := s.users[strings.ToLower(user)]
		if u != nil && u.Password == pass {
			return strings.ToLower(user), true
		}
		return "", false
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		l, ok := s.tokens[strings.TrimSpace(tok)]
		if !ok && s.bearer != nil {
			l, ok = s.bearer(strings.TrimSpace(tok))
			l = strings.ToLower(l)
		}
		return l, ok && s.users[l] != nil
	}
	return "", false
}

// principal is who acts in a request: the user, and the mailbox the impersonation header
// names ("" when none).
type principal struct {
	user  *User
	login string
	imp   string
}

// mailboxFor checks that p may open mailbox address ("" means its own or the impersonated
// one) and returns it in lower case.
func (s *Server) mailboxFor(p principal, address string) (string, error) {
	mb := strings.ToLower(strings.TrimSpace(address))
	if p.imp != "" {
		if mb == "" {
			mb = p.imp
		}
		if mb != p.imp {
			return "", &ewsError{code: "ErrorAccessDenied", text: "Access is denied. Check credentials and try again."}
		}
		return mb, nil
	}
	if mb == "" {
		mb = strings.ToLower(p.user.Mailbox)
		if mb == "" {
			return "", &ewsError{code: "ErrorMissingEmailAddress", text: "When making a request as an account that does not have a mailbox, you must specify the mailbox primary SMTP address for any distinguished folder Ids."}
		}
	}
	if !s.boxes[mb] {
		return "", &ewsError{code: "ErrorNonExistentMailbox", text: "The SMTP address has no mailbox associated with it."}
	}
	if mb != strings.ToLower(p.user.Mailbox) && !s.grants[p.login][mb] {
		return "", &ewsError{code: "ErrorAccessDenied", text: "Access is denied. Check credentials and try again."}
	}
	return mb, nil
}

// handleLocked answers one operation; the result is the body element.
func (s *Server) handleLocked(login, imp string, op *node) (string, error) {
	p := principal{user: s.users[login], login: login}
	if imp != "" {
		if !p.user.Impersonate {
			return "", &ewsError{code: "ErrorImpersonateUserDenied", text: "The account does not have permission to impersonate the requested user.", fault: true}
		}
		if !s.boxes[strings.ToLower(imp)] {
			return "", &ewsError{code: "ErrorNonExistentMailbox", text: "The SMTP address has no mailbox associated with it.", fault: true}
		}
		p.imp = strings.ToLower(imp)
	}
	switch op.Local {
	case "SyncFolderItems":
		return s.syncFolderItems(p, op), nil
	case "GetItem":
		return s.getItem(p, op), nil
	case "UpdateItem":
		return s.updateItem(p, op), nil
	case "MoveItem":
		return s.moveItem(p, op), nil
	case "CreateItem":
		return s.createItem(p, op), nil
	case "Subscribe":
		return s.subscribe(p, op), nil
	}
	return "", &ewsError{code: "ErrorInvalidRequest", text: "The stand-in does not serve " + op.Local + ".", fault: true}
}

// folderRef reads a DistinguishedFolderId (with its optional Mailbox) under n.
func (s *Server) folderRef(p principal, n *node) (mb, folder string, err error) {
	d := n.kid("DistinguishedFolderId")
	if d == nil {
		if f := n.kid("FolderId"); f != nil {
			return "", "", &ewsError{code: "ErrorFolderNotFound", text: "The specified folder could not be found in the store."}
		}
		return "", "", &ewsError{code: "ErrorInvalidRequest", text: "A folder id is missing."}
	}
	folder = strings.ToLower(d.Attrs["Id"])
	known := false
	for _, w := range wellKnown {
		known = known || w == folder
	}
	if !known {
		return "", "", &ewsError{code: "ErrorFolderNotFound", text: "The specified folder could not be found in the store."}
	}
	mb, err = s.mailboxFor(p, d.path("Mailbox", "EmailAddress").text())
	return mb, folder, err
}

// itemFor finds an item by ItemId for p.
func (s *Server) itemFor(p principal, n *node) (*item, error) {
	id := n.Attrs["Id"]
	it := s.items[id]
	if it == nil {
		return nil, &ewsError{code: "ErrorItemNotFound", text: "The specified object was not found in the store."}
	}
	if _, err := s.mailboxFor(p, it.mailbox); err != nil {
		return nil, err
	}
	return it, nil // ConflictResolution AlwaysOverwrite: an old ChangeKey is no conflict
}

// syncState formats the position after seq in a folder.
func (s *Server) syncState(mb, folder string, seq int64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "ews1|%s|%s|%d|%d", mb, folder, s.epoch, seq))
}

func (s *Server) parseState(mb, folder, st string) (int64, bool) {
	if st == "" {
		return 0, true
	}
	b, err := base64.StdEncoding.DecodeString(st)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 5 || parts[0] != "ews1" || parts[1] != mb || parts[2] != folder || parts[3] != strconv.FormatInt(s.epoch, 10) {
		return 0, false
	}
	seq, err := strconv.ParseInt(parts[4], 10, 64)
	return seq, err == nil
}

func (s *Server) syncFolderItems(p principal, op *node) string {
	const name = "SyncFolderItems"
	mb, folder, err := s.folderRef(p, op.kid("SyncFolderId"))
	if err != nil {
		return responseError(name, err)
	}
	after, ok := s.parseState(mb, folder, op.kid("SyncState").text())
	if !ok {
		return responseError(name, &ewsError{code: "ErrorInvalidSyncStateData", text: "Synchronization state data is corrupt or otherwise invalid."})
	}
	max, err := strconv.Atoi(op.kid("MaxChangesReturned").text())
	if err != nil || max < 1 || max > maxChanges {
		return responseError(name, &ewsError{code: "ErrorInvalidArgument", text: "MaxChangesReturned must be between 1 and 512."})
	}
	props := map[string]bool{}
	for _, f := range op.path("ItemShape", "AdditionalProperties").all("FieldURI") {
		props[f.Attrs["FieldURI"]] = true
	}
	items := s.sortedLocked(mb, folder, after)
	last := len(items) <= max
	items = items[:min(len(items), max)]
	end := after
	var b strings.Builder
	for _, it := range items {
		end = it.seq
		fmt.Fprintf(&b, `<t:Create><t:Message><t:ItemId Id="%s" ChangeKey="%s"/>`, esc(it.id), esc(it.changeKey()))
		if props["item:DateTimeReceived"] {
			fmt.Fprintf(&b, `<t:DateTimeReceived>%s</t:DateTimeReceived>`, it.received.Format(time.RFC3339))
		}
		if props["item:Size"] {
			fmt.Fprintf(&b, `<t:Size>%d</t:Size>`, len(it.raw))
		}
		if props["message:IsRead"] {
			fmt.Fprintf(&b, `<t:IsRead>%t</t:IsRead>`, it.isRead)
		}
		b.WriteString(`</t:Message></t:Create>`)
	}
	return fmt.Sprintf(`<m:%sResponse><m:ResponseMessages><m:%sResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>`+
		`<m:SyncState>%s</m:SyncState><m:IncludesLastItemInRange>%t</m:IncludesLastItemInRange><m:Changes>%s</m:Changes></m:%sResponseMessage></m:ResponseMessages></m:%sResponse>`,
		name, name, s.syncState(mb, folder, end), last, b.String(), name, name)
}

func (s *Server) getItem(p principal, op *node) string {
	const name = "GetItem"
	mime := op.path("ItemShape", "IncludeMimeContent").text() == "true"
	var b strings.Builder
	for _, id := range op.kid("ItemIds").all("ItemId") {
		it, err := s.itemFor(p, id)
		if err != nil {
			b.WriteString(responseMessage(name, err, ""))
			continue
		}
		var m strings.Builder
		m.WriteString(`<m:Items><t:Message>`)
		if mime {
			fmt.Fprintf(&m, `<t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>`, base64.StdEncoding.EncodeToString(it.raw))
		}
		fmt.Fprintf(&m, `<t:ItemId Id="%s" ChangeKey="%s"/><t:DateTimeReceived>%s</t:DateTimeReceived><t:Size>%d</t:Size><t:IsRead>%t</t:IsRead></t:Message></m:Items>`,
			esc(it.id), esc(it.changeKey()), it.received.Format(time.RFC3339), len(it.raw), it.isRead)
		b.WriteString(responseMessage(name, nil, m.String()))
	}
	return wrap(name, b.String())
}

func (s *Server) updateItem(p principal, op *node) string {
	const name = "UpdateItem"
	var b strings.Builder
	for _, ch := range op.kid("ItemChanges").all("ItemChange") {
		it, err := s.itemFor(p, ch.kid("ItemId"))
		if err == nil {
			for _, set := range ch.kid("Updates").all("SetItemField") {
				if f := set.kid("FieldURI"); f == nil || f.Attrs["FieldURI"] != "message:IsRead" {
					err = &ewsError{code: "ErrorInvalidPropertySet", text: "The stand-in sets message:IsRead only."}
					break
				}
				it.isRead = set.path("Message", "IsRead").text() == "true"
				it.version++
			}
		}
		inner := ""
		if err == nil {
			inner = fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="%s"/></t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>`, esc(it.id), esc(it.changeKey()))
		}
		b.WriteString(responseMessage(name, err, inner))
	}
	return wrap(name, b.String())
}

func (s *Server) moveItem(p principal, op *node) string {
	const name = "MoveItem"
	var b strings.Builder
	for _, id := range op.kid("ItemIds").all("ItemId") {
		it, err := s.itemFor(p, id)
		var folder string
		if err == nil {
			var mb string
			mb, folder, err = s.folderRef(principal{user: p.user, login: p.login, imp: p.imp}, op.kid("ToFolderId"))
			if err == nil && mb != it.mailbox {
				_, err = s.mailboxFor(p, mb)
			}
		}
		inner := ""
		if err == nil {
			s.seq++
			it.folder, it.seq = folder, s.seq
			s.notifyLocked(it)
			inner = fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="%s"/></t:Message></m:Items>`, esc(it.id), esc(it.changeKey()))
		}
		b.WriteString(responseMessage(name, err, inner))
	}
	return wrap(name, b.String())
}

func (s *Server) createItem(p principal, op *node) string {
	const name = "CreateItem"
	disp := op.Attrs["MessageDisposition"]
	var mb string
	var err error
	if sf := op.kid("SavedItemFolderId"); sf != nil {
		mb, _, err = s.folderRef(p, sf) // the mailbox whose folder keeps the copy sends
	} else {
		mb, err = s.mailboxFor(p, "")
	}
	var b strings.Builder
	for _, msg := range op.kid("Items").all("Message") {
		if err != nil {
			b.WriteString(responseMessage(name, err, ""))
			continue
		}
		raw, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(msg.kid("MimeContent").text()), ""))
		if derr != nil || len(raw) == 0 {
			b.WriteString(responseMessage(name, &ewsError{code: "ErrorMimeContentConversionFailed", text: "Unable to convert the MIME content."}, ""))
			continue
		}
		switch disp {
		case "SaveOnly":
			it := s.addLocked(mb, "drafts", raw, true)
			b.WriteString(responseMessage(name, nil, fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="%s"/></t:Message></m:Items>`, esc(it.id), esc(it.changeKey()))))
			continue
		case "SendAndSaveCopy", "SendOnly":
		default:
			b.WriteString(responseMessage(name, &ewsError{code: "ErrorInvalidRequest", text: "MessageDisposition is required for a message."}, ""))
			continue
		}
		rcpts := recipients(raw)
		for _, m := range msg.path("BccRecipients").all("Mailbox") {
			rcpts = append(rcpts, strings.ToLower(m.kid("EmailAddress").text()))
		}
		if len(rcpts) == 0 {
			b.WriteString(responseMessage(name, &ewsError{code: "ErrorInvalidRecipients", text: "At least one recipient isn't valid."}, ""))
			continue
		}
		for _, r := range rcpts {
			if s.boxes[r] {
				s.addLocked(r, "inbox", raw, false)
			}
		}
		s.sent = append(s.sent, Sent{From: mb, Recipients: rcpts, Raw: bytes.Clone(raw)})
		if disp == "SendAndSaveCopy" {
			s.addLocked(mb, "sentitems", raw, true)
		}
		b.WriteString(responseMessage(name, nil, `<m:Items/>`))
	}
	return wrap(name, b.String())
}

// recipients returns the To and Cc addresses of raw, lower case.
func recipients(raw []byte) []string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	var out []string
	for _, h := range []string{"To", "Cc"} {
		list, _ := m.Header.AddressList(h)
		for _, a := range list {
			out = append(out, strings.ToLower(a.Address))
		}
	}
	return out
}

func wrap(name, msgs string) string {
	return fmt.Sprintf(`<m:%sResponse><m:ResponseMessages>%s</m:ResponseMessages></m:%sResponse>`, name, msgs, name)
}

// responseMessage is one <m:{name}ResponseMessage>, Success with inner or Error with err.
func responseMessage(name string, err error, inner string) string {
	if err == nil {
		return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>%s</m:%sResponseMessage>`, name, inner, name)
	}
	code, text := "ErrorInternalServerError", err.Error()
	var ee *ewsError
	if errors.As(err, &ee) {
		code, text = ee.code, ee.text
	}
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText><m:ResponseCode>%s</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>`,
		name, esc(text), code, name)
}

func responseError(name string, err error) string { return wrap(name, responseMessage(name, err, "")) }

func envelope(body string) string {
	return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="` + NSSoap + `"><s:Header>` +
		`<h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2017_07_11" xmlns:h="` + NSTypes + `"/>` +
		`</s:Header><s:Body xmlns:m="` + NSMessages + `" xmlns:t="` + NSTypes + `">` + body + `</s:Body></s:Envelope>`
}

// fault answers a SOAP fault with HTTP 500, as Exchange does for ErrorServerBusy,
// ErrorImpersonateUserDenied and schema errors.
func (s *Server) fault(w http.ResponseWriter, e *ewsError) {
	extra := ""
	if e.backoff > 0 {
		extra = fmt.Sprintf(`<t:MessageXml xmlns:t="%s"><t:Value Name="BackOffMilliseconds">%d</t:Value></t:MessageXml>`, NSTypes, e.backoff.Milliseconds())
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s"><s:Body><s:Fault>`+
		`<faultcode xmlns:a="%s">a:%s</faultcode><faultstring xml:lang="en-US">%s</faultstring><detail>`+
		`<e:ResponseCode xmlns:e="%s">%s</e:ResponseCode><e:Message xmlns:e="%s">%s</e:Message>%s</detail></s:Fault></s:Body></s:Envelope>`,
		NSSoap, NSTypes, e.code, esc(e.text), NSErrors, e.code, NSErrors, esc(e.text), extra)
}
