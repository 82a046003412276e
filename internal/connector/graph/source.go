package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/store"
)

// Defaults and limits of a Source.
const (
	// DefaultPageSize is odata.maxpagesize of delta requests.
	DefaultPageSize = 50
	// maxPageSize is the most a delta page may be asked for.
	maxPageSize = 1000
	// OversizeFolder receives the messages over Config.MaxSizeBytes (as with IMAP).
	OversizeFolder = "Oversize"
	// headerLimit bounds the header kept of an over-size message.
	headerLimit = 256 << 10
	// maxMessageBytes bounds one download: Exchange Online takes messages up to 150 MB.
	maxMessageBytes = 150 << 20
	// maxSeen bounds the ids a Source remembers handing out; past it the memory starts
	// afresh (what comes again is recognised by Config.Skip or the store's dedup).
	maxSeen = 200_000
)

// sourcePrefix starts every SourceID of this package.
const sourcePrefix = "graph:"

// Config says how to reach one Microsoft 365 mailbox over Graph. The Source uses all of
// it but Cloud, the Sink GraphURL, Cloud, Mailbox, Token, HTTPClient, Limiter and Logger.
type Config struct {
	// GraphURL is the Graph host (DefaultGraphURL when empty), without /v1.0.
	GraphURL string
	// Cloud is the mailbox's Microsoft cloud as credential names it ("" or "global",
	// "usgov", "usgov-dod", "china", "custom"). The Sink uses it: the US Government L4/L5
	// clouds (usgov, usgov-dod) have no attachment upload sessions (§8.3).
	Cloud string
	// Mailbox is the mailbox's address (user principal name / primary SMTP address) or
	// user id.
	Mailbox string
	// Folder is the folder to read: a well-known name (inbox, the default), a display name
	// or a path of display names ("Inbox/Support").
	Folder string
	// Cursor is the saved position (Incoming.Cursor of an earlier message), "" for none.
	Cursor string
	// AfterAction is what Ack does: store.AfterMarkRead (the default), store.AfterMove (to
	// MoveFolder, created when missing), store.AfterDelete or store.AfterKeep.
	AfterAction string
	MoveFolder  string
	// MaxSizeBytes, when above 0, is the largest message downloaded whole; a larger one is
	// returned with its header only and OverSize set.
	MaxSizeBytes int64
	// PageSize is odata.maxpagesize of delta pages (DefaultPageSize when 0).
	PageSize int
	// Token gives the access token (app or delegated); refresh=true after Graph refused one.
	Token connector.TokenFunc
	// HTTPClient makes the requests; nil means a new http.Client.
	HTTPClient *http.Client
	// Limiter keeps the mailbox's requests within Graph's limits; nil means one of this
	// Source's (or Sink's) own. Share one between the Source, Sink and Subscriber of a
	// mailbox.
	Limiter *Limiter
	Logger  *slog.Logger
	// Skip, when set, reports a message that is stored already (by SourceID): Next does
	// not download it again. The ingest pipeline asks its store.
	Skip func(sourceID string) bool
	// SaveCursor, when set, saves the cursor of a delta round in which no message was left
	// to carry it (see the package doc). Next calls it only after every message it
	// returned before has been through the caller's store.
	SaveCursor func(ctx context.Context, cursor string) error
}

// Source reads one folder of a mailbox with delta queries. Next, Ack, SetAside and Wait
// are not safe for concurrent use; Notify is.
type Source struct {
	c           *client
	folderPath  string
	folder      mailFolder
	afterAction string
	moveFolder  string
	maxSize     int64
	pageSize    int
	skip        func(string) bool
	saveCursor  func(context.Context, string) error
	log         *slog.Logger

	link     string // the next delta URL to GET; "" starts a full sync
	initial  bool   // the round in progress is the mailbox's first sync (no cursor)
	queue    []deltaItem
	roundEnd string              // the deltaLink of the round, once its last page is read
	seen     map[string]struct{} // ids queued or handed out
	folders  map[string]string   // path -> id of folders known to exist
	newMail  chan struct{}

	// lost counts the delta positions Graph forgot (expired tokens) since a link it handed
	// out was last followed or a round was last finished: the second in a row ends fill.
	lost int
}

var (
	_ connector.Source = (*Source)(nil)
	_ connector.Waiter = (*Source)(nil)
)

// deltaItem is one entry of a delta page.
type deltaItem struct {
	ID       string    `json:"id"`
	IsRead   *bool     `json:"isRead"`
	Received string    `json:"receivedDateTime"`
	Removed  *struct{} `json:"@removed"`
}

// deltaPage is one page of a delta round (reference 3.3).
type deltaPage struct {
	Value     []deltaItem `json:"value"`
	NextLink  string      `json:"@odata.nextLink"`
	DeltaLink string      `json:"@odata.deltaLink"`
}

// Open checks the mailbox and finds the folder; it makes no other request. Errors are
// *connector.Error with advice.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	switch cfg.AfterAction {
	case "", store.AfterMarkRead, store.AfterDelete, store.AfterKeep:
	case store.AfterMove:
		if strings.Trim(cfg.MoveFolder, "/ ") == "" {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph config", Err: errors.New("after action move without a folder"),
				Advice: "name the folder that handled messages are moved to"}
		}
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph config", Err: fmt.Errorf("after action %q", cfg.AfterAction),
			Advice: "choose what happens to a stored message: mark_read, move, delete or keep"}
	}
	pageSize := cfg.PageSize
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	s := &Source{
		c: c, folderPath: cfg.Folder, afterAction: cfg.AfterAction, moveFolder: cfg.MoveFolder,
		maxSize: cfg.MaxSizeBytes, pageSize: min(pageSize, maxPageSize), skip: cfg.Skip, saveCursor: cfg.SaveCursor,
		log: c.log, seen: map[string]struct{}{}, folders: map[string]string{}, newMail: make(chan struct{}, 1),
	}
	if s.afterAction == "" {
		s.afterAction = store.AfterMarkRead
	}
	if s.folderPath == "" {
		s.folderPath = "inbox"
	}
	s.folder, err = c.resolveFolder(ctx, s.folderPath)
	if err != nil {
		return nil, c.folderError(s.folderPath, err)
	}
	s.folders[s.folderPath] = s.folder.ID
	switch mb, folderID, link, ok := ParseCursor(cfg.Cursor); {
	case cfg.Cursor == "":
		s.initial = true
	case !ok || !strings.EqualFold(mb, cfg.Mailbox) || folderID != s.folder.ID || !c.onOrigin(link):
		s.initial = true
		s.log.Warn("graph: the saved position belongs to another mailbox, folder or Graph host: reading the folder from the start; copies stored before are recognised, not duplicated",
			slog.String("folder", s.folderPath))
	default:
		s.link = link
	}
	return s, nil
}

// FolderID is the id of the folder the Source reads.
func (s *Source) FolderID() string { return s.folder.ID }

// deltaStart is the URL of a full sync of the folder. changeType=created makes the later
// rounds report new messages only (not our own isRead changes); Graph keeps the query
// options in the links it returns.
func (s *Source) deltaStart() string {
	return s.c.userURL("/mailFolders/"+url.PathEscape(s.folder.ID)+"/messages/delta") +
		"?changeType=created&$select=id,isRead,receivedDateTime"
}

// Next returns up to max messages of the folder that Next has not returned before, in the
// order of the delta round. Only the last message of a finished round carries a Cursor.
func (s *Source) Next(ctx context.Context, limit int) ([]connector.Incoming, error) {
	limit = min(max(limit, 1), 1000)
	if err := s.fill(ctx, limit); err != nil {
		return nil, err
	}
	n := min(limit, len(s.queue))
	out, err := s.fetch(ctx, s.queue[:n])
	if err != nil {
		return nil, err
	}
	s.queue = s.queue[n:]
	if len(s.queue) > 0 || s.roundEnd == "" {
		return out, nil
	}
	cursor := FormatCursor(s.c.mailbox, s.folder.ID, s.roundEnd)
	switch {
	case len(out) > 0:
		out[len(out)-1].Cursor = cursor
	case s.saveCursor != nil:
		if err := s.saveCursor(ctx, cursor); err != nil {
			return nil, fmt.Errorf("graph: save the delta position: %w", err)
		}
	}
	s.link, s.roundEnd, s.initial = s.roundEnd, "", false
	s.queue = nil
	return out, nil
}

// fill reads delta pages until the queue holds more than limit messages or the round's
// last page is read.
//
// When Graph no longer knows a link (its delta or skip token expired: 410, or any 4xx with
// code syncStateNotFound, §8.7), the round starts again from scratch: what was handed out
// before is in seen (or recognised by Skip and the store), so nothing is stored twice. A
// second such failure in a row, before a link Graph handed out could be followed, is
// returned as an error and the next call starts afresh; a dead link is never asked again.
func (s *Source) fill(ctx context.Context, limit int) error {
	for len(s.queue) <= limit && s.roundEnd == "" {
		fresh := s.link == ""
		if fresh {
			s.link = s.deltaStart()
		}
		var page deltaPage
		err := s.c.getJSON(ctx, "graph delta", s.link, &page, fmt.Sprintf("odata.maxpagesize=%d", s.pageSize))
		if syncStateLost(err) {
			what := "the delta link of the last round"
			switch {
			case fresh:
				what = "the start of a delta round"
			case strings.Contains(s.link, "skiptoken="):
				what = "the next page of an unfinished round"
			}
			s.restartRound()
			s.lost++
			if s.lost >= 2 {
				s.lost = 0
				return &connector.Error{Kind: connector.KindServer, Op: "graph delta", Err: err,
					Advice: "Microsoft Graph forgot the position of the folder's delta sync twice in a row (its links expired before postroom " +
						"could follow them): postroom reads the folder from the beginning again on its next try; copies stored before are " +
						"recognised, not duplicated. If it keeps happening, see Microsoft 365 service health or report it with the request-id"}
			}
			ae, _ := asAPIError(err)
			s.log.Warn("graph: the delta token has expired: reading the whole folder again; copies stored before are recognised, not duplicated",
				slog.String("folder", s.folderPath), slog.String("link", what), slog.Int("status", ae.Status), slog.String("code", ae.Code))
			continue
		}
		if err != nil {
			return s.c.classify("graph delta", err)
		}
		if !fresh {
			s.lost = 0
		}
		for _, it := range page.Value {
			if s.wanted(it) {
				s.seen[it.ID] = struct{}{}
				s.queue = append(s.queue, it)
			}
		}
		switch {
		case page.NextLink != "":
			s.link = page.NextLink
		case page.DeltaLink != "":
			s.roundEnd = page.DeltaLink
			s.lost = 0
		default:
			return &connector.Error{Kind: connector.KindServer, Op: "graph delta", Err: errors.New("a delta page without nextLink or deltaLink"),
				Advice: "Microsoft Graph answered the delta query in a way postroom cannot follow; it starts again: if it persists, check the Graph URL setting"}
		}
	}
	return nil
}

// restartRound forgets the round in progress: the queue (not handed out yet) and the link;
// the next request starts a full sync of the folder.
func (s *Source) restartRound() {
	for _, it := range s.queue {
		delete(s.seen, it.ID)
	}
	s.queue, s.link = nil, ""
}

// syncStateLost reports whether err says Graph no longer knows the delta or skip token of
// the link: Outlook answers 410 Gone with code SyncStateNotFound, the delta overview
// promises "a 40X-series error" with code syncStateNotFound (§8.7); the case varies.
func syncStateLost(err error) bool {
	ae, ok := asAPIError(err)
	if !ok {
		return false
	}
	return ae.Status == http.StatusGone || ae.Status >= 400 && ae.Status < 500 && strings.EqualFold(ae.Code, "syncStateNotFound")
}

// wanted reports whether a delta entry is a message to hand out.
func (s *Source) wanted(it deltaItem) bool {
	if it.Removed != nil || it.ID == "" {
		return false
	}
	if _, ok := s.seen[it.ID]; ok {
		return false
	}
	if s.initial && s.afterAction == store.AfterMarkRead && it.IsRead != nil && *it.IsRead {
		return false // handled before postroom, as the IMAP source reads only unseen mail at first
	}
	if s.skip != nil && s.skip(SourceID(it.ID)) {
		return false
	}
	if len(s.seen) >= maxSeen {
		s.seen = map[string]struct{}{}
		for _, q := range s.queue {
			s.seen[q.ID] = struct{}{}
		}
	}
	return true
}

// fetch downloads the messages of items, up to MaxConcurrent at once, in their order.
// Messages gone meanwhile are left out.
func (s *Source) fetch(ctx context.Context, items []deltaItem) ([]connector.Incoming, error) {
	res := make([]connector.Incoming, len(items))
	gone := make([]bool, len(items))
	errs := make([]error, len(items))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(MaxConcurrent, len(items)) {
		wg.Go(func() {
			for i := range work {
				res[i], gone[i], errs[i] = s.fetchOne(ctx, items[i])
				if errs[i] != nil {
					cancel()
				}
			}
		})
	}
	for i := range items {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, err
	}
	out := make([]connector.Incoming, 0, len(items))
	for i := range items {
		if !gone[i] {
			out = append(out, res[i])
		}
	}
	return out, nil
}

// fetchOne downloads one message's MIME (/$value): whole, or its header only when it is
// over the size limit.
func (s *Source) fetchOne(ctx context.Context, it deltaItem) (in connector.Incoming, gone bool, err error) {
	in = connector.Incoming{SourceID: SourceID(it.ID)}
	if t, err := time.Parse(time.RFC3339, it.Received); err == nil {
		in.ReceivedAt = t
	}
	op := "graph fetch message"
	u := s.c.userURL("/messages/" + url.PathEscape(it.ID) + "/$value")
	err = s.c.do(ctx, op, request{method: http.MethodGet, url: u, timeout: transferTimeout}, func(resp *http.Response) error {
		var err error
		in.Raw, in.Size, in.OverSize, err = s.readMIME(resp)
		return err
	})
	if hasStatus(err, http.StatusNotFound, "ErrorItemNotFound") {
		s.log.Info("graph: message gone before it was read (moved or deleted meanwhile)", slog.String("source_id", in.SourceID))
		return in, true, nil
	}
	if err != nil {
		return in, false, s.c.classify(op, err)
	}
	return in, false, nil
}

// readMIME reads a $value answer: the whole message, or when it is over maxSize its
// header only (and its size, from Content-Length or by counting what is left).
func (s *Source) readMIME(resp *http.Response) (raw []byte, size int64, over bool, err error) {
	limit := int64(maxMessageBytes)
	if s.maxSize > 0 {
		limit = s.maxSize
	}
	if resp.ContentLength > limit {
		head, err := readHeader(resp.Body)
		return head, resp.ContentLength, true, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, false, fmt.Errorf("read message: %w", err)
	}
	if int64(len(b)) <= limit {
		if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
			return nil, 0, false, fmt.Errorf("message cut short after %d of %d bytes: %w", len(b), resp.ContentLength, io.ErrUnexpectedEOF)
		}
		return b, int64(len(b)), false, nil
	}
	// Over the limit and no Content-Length: count the rest without keeping it.
	rest, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxMessageBytes))
	if err != nil {
		return nil, 0, false, fmt.Errorf("read message: %w", err)
	}
	return headerOf(b), int64(len(b)) + rest, true, nil
}

// readHeader reads a message's header (up to headerLimit) from r.
func readHeader(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 16<<10)
	chunk := make([]byte, 16<<10)
	for len(buf) < headerLimit {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if end := headerEnd(buf); end >= 0 {
			return buf[:end], nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read message header: %w", err)
		}
	}
	return headerOf(buf), nil
}

// headerOf returns the header of a message's first bytes, with its blank line; when no
// blank line is found within headerLimit, what there is, cut at a line end.
func headerOf(b []byte) []byte {
	if end := headerEnd(b); end >= 0 {
		return b[:end]
	}
	b = b[:min(len(b), headerLimit)]
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	return append(bytes.Clone(b), "\r\n"...)
}

// headerEnd returns the length of the header including the blank line after it, -1 when
// b holds no blank line.
func headerEnd(b []byte) int {
	crlf := bytes.Index(b, []byte("\r\n\r\n"))
	lf := bytes.Index(b, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return crlf + 4
	case lf >= 0:
		return lf + 2
	}
	return -1
}

// Ack applies the after-processing action to stored messages: mark them read, move them,
// delete them or leave them. Messages gone meanwhile count as done; ids of another
// source are ignored.
func (s *Source) Ack(ctx context.Context, sourceIDs []string) error {
	ids := s.graphIDs(sourceIDs)
	if len(ids) == 0 {
		return nil
	}
	switch s.afterAction {
	case store.AfterKeep:
		return nil
	case store.AfterMove:
		return s.move(ctx, ids, s.moveFolder)
	case store.AfterDelete:
		return s.eachBatched(ctx, ids, "graph delete message", func(id string) memberRequest {
			return memberRequest{method: http.MethodDelete, path: "/messages/" + url.PathEscape(id)}
		})
	default:
		return s.eachBatched(ctx, ids, "graph mark read", func(id string) memberRequest {
			return memberRequest{method: http.MethodPatch, path: "/messages/" + url.PathEscape(id), body: []byte(`{"isRead":true}`)}
		})
	}
}

// SetAside moves messages that were stored only in part (over the size limit) to the
// folder OversizeFolder (created when missing), unread, so a person finds them whole.
func (s *Source) SetAside(ctx context.Context, sourceIDs []string) error {
	ids := s.graphIDs(sourceIDs)
	if len(ids) == 0 {
		return nil
	}
	return s.move(ctx, ids, OversizeFolder)
}

// move moves messages to the folder at path, creating it when missing.
func (s *Source) move(ctx context.Context, ids []string, path string) error {
	dest, ok := s.folders[path]
	if !ok {
		f, err := s.c.ensureFolder(ctx, path)
		if err != nil {
			return err
		}
		dest = f.ID
		s.folders[path] = dest
	}
	body := fmt.Appendf(nil, `{"destinationId":%q}`, dest)
	return s.eachBatched(ctx, ids, fmt.Sprintf("graph move to %q", path), func(id string) memberRequest {
		// Moving again a message that was moved (a retry) keeps it where it is: with
		// immutable ids the id still names it.
		return memberRequest{method: http.MethodPost, path: "/messages/" + url.PathEscape(id) + "/move", body: body}
	})
}

// each sends one request per message, up to MaxConcurrent at once (when the Graph host
// takes no batches); a message that is gone (404) counts as done.
func (s *Source) each(ctx context.Context, ids []string, op string, req func(id string) request) error {
	errs := make([]error, len(ids))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(MaxConcurrent, len(ids)) {
		wg.Go(func() {
			for i := range work {
				err := s.c.do(ctx, op, req(ids[i]), nil)
				if hasStatus(err, http.StatusNotFound, "ErrorItemNotFound") {
					s.log.Info("graph: message gone already", slog.String("op", op), slog.String("source_id", SourceID(ids[i])))
					err = nil
				}
				errs[i] = s.c.classify(op, err)
			}
		})
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	return firstError(errs)
}

// firstError returns the first error that is not a cancellation caused by another one
// failing, or the first error.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// graphIDs returns the Graph ids of our source ids.
func (s *Source) graphIDs(sourceIDs []string) []string {
	ids := make([]string, 0, len(sourceIDs))
	for _, sid := range sourceIDs {
		id, ok := strings.CutPrefix(sid, sourcePrefix)
		if !ok || id == "" {
			s.log.Warn("graph: not a Graph message id; left alone", slog.String("source_id", sid))
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// Wait returns when Notify is called (a change notification arrived), when max has
// passed, or when ctx is done.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-s.newMail:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// Notify wakes Wait: new mail may be there. A notification that comes while nobody waits
// makes the next Wait return at once. Safe for concurrent use.
func (s *Source) Notify() {
	select {
	case s.newMail <- struct{}{}:
	default:
	}
}

// Close releases the Source. It makes no request.
func (s *Source) Close() error { return nil }

// SourceID is the dedup key of a Graph message: "graph:" + its immutable id.
func SourceID(immutableID string) string { return sourcePrefix + immutableID }

// cursorVersion starts every cursor of this package.
const cursorVersion = "graph1"

// FormatCursor formats the position after a delta round: the mailbox, the folder's id and
// the round's deltaLink, separated by spaces (none of them holds one).
func FormatCursor(mailbox, folderID, deltaLink string) string {
	return cursorVersion + " " + mailbox + " " + folderID + " " + deltaLink
}

// ParseCursor parses a cursor of FormatCursor.
func ParseCursor(cursor string) (mailbox, folderID, deltaLink string, ok bool) {
	parts := strings.SplitN(cursor, " ", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}
