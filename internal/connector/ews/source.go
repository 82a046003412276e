package ews

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Defaults and limits of a Source.
const (
	// DefaultPageSize is MaxChangesReturned of SyncFolderItems.
	DefaultPageSize = 100
	maxPageSize     = 512
	// getBatch is the most messages one GetItem asks for; getBatchBytes bounds their sum.
	getBatch      = 50
	getBatchBytes = 16 << 20
	// headerLimit bounds the header kept of an over-size message.
	headerLimit = 256 << 10
	maxSeen     = 200_000
)

// sourcePrefix starts every SourceID of this package.
const sourcePrefix = "ews:"

// Config says how to reach one mailbox over EWS.
type Config struct {
	// URL is the EWS endpoint, https://mail.contoso.com/EWS/Exchange.asmx (http only to
	// loopback).
	URL string
	// Mailbox is the mailbox's primary SMTP address.
	Mailbox string
	// Login and Password sign in with HTTP Basic (over TLS); Token, when set, signs in with
	// an OAuth 2.0 bearer token instead.
	Login    string
	Password vault.Secret
	Token    connector.TokenFunc
	// Impersonate opens the mailbox with the ExchangeImpersonation header (the account
	// holds ApplicationImpersonation); otherwise the account opens it as a delegate.
	Impersonate bool
	// Folder is the distinguished folder to read ("inbox" when empty).
	Folder string
	// Cursor is the saved position (Incoming.Cursor of an earlier message), "" for none.
	Cursor string
	// AfterAction: store.AfterMarkRead (default), store.AfterMove (to the distinguished
	// folder MoveFolder), store.AfterDelete (moved to deleteditems) or store.AfterKeep.
	AfterAction string
	MoveFolder  string
	// MaxSizeBytes, when above 0, is the largest message returned whole; a larger one is
	// returned with its header only and OverSize set.
	MaxSizeBytes int64
	// PageSize is MaxChangesReturned (DefaultPageSize when 0).
	PageSize   int
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Stale, when set, is called when the URL no longer serves the mailbox (HTTP 404,
	// ErrorMailboxMoveInProgress): a URL found by autodiscover is then forgotten
	// (Endpoints.Forget) and found again at the next connection.
	Stale func()
	// Skip, when set, reports a message that is stored already: Next does not download it.
	Skip func(sourceID string) bool
	// SaveCursor, when set, saves the sync state of a page in which no message was left to
	// carry it; Next calls it only after the messages it returned before were stored.
	SaveCursor func(ctx context.Context, cursor string) error
}

// change is one Create of SyncFolderItems.
type change struct {
	id, changeKey string
	isRead        bool
	size          int64
	received      time.Time
}

// Source reads one folder of a mailbox with SyncFolderItems. Not safe for concurrent use.
type Source struct {
	c           *client
	folder      string
	afterAction string
	moveFolder  string
	maxSize     int64
	pageSize    int
	skip        func(string) bool
	saveCursor  func(context.Context, string) error
	log         *slog.Logger

	state   string // the sync state to continue from
	initial bool   // reading the folder from its start
	queue   []change
	pageEnd string // the sync state after the page in queue, "" when none pending
	seen    map[string]struct{}
	lost    int

	subID      string    // the streaming subscription, "" when none
	noSubUntil time.Time // Exchange refused a subscription: poll until then
}

var _ connector.Source = (*Source)(nil)

// Open checks the configuration; it makes no request.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{c: c, folder: strings.ToLower(cfg.Folder), afterAction: cfg.AfterAction, moveFolder: strings.ToLower(strings.TrimSpace(cfg.MoveFolder)),
		maxSize: cfg.MaxSizeBytes, pageSize: cfg.PageSize, skip: cfg.Skip, saveCursor: cfg.SaveCursor, log: c.log, seen: map[string]struct{}{}}
	if s.folder == "" {
		s.folder = "inbox"
	}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	s.pageSize = min(s.pageSize, maxPageSize)
	switch s.afterAction {
	case "":
		s.afterAction = store.AfterMarkRead
	case store.AfterMarkRead, store.AfterKeep:
	case store.AfterDelete:
		s.moveFolder = "deleteditems"
	case store.AfterMove:
		if s.moveFolder == "" {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: errors.New("after action move without a folder"),
				Advice: "name the well-known folder that handled messages are moved to (such as deleteditems or archive)"}
		}
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: fmt.Errorf("after action %q", cfg.AfterAction),
			Advice: "choose what happens to a stored message: mark_read, move, delete or keep"}
	}
	switch mb, folder, state, ok := ParseCursor(cfg.Cursor); {
	case cfg.Cursor == "":
		s.initial = true
	case !ok || !strings.EqualFold(mb, cfg.Mailbox) || folder != s.folder:
		s.initial = true
		s.log.Warn("ews: the saved position belongs to another mailbox or folder: reading the folder from the start; copies stored before are recognised, not duplicated")
	default:
		s.state = state
	}
	return s, nil
}

// Requests is the number of HTTP requests the Source made.
func (s *Source) Requests() int64 { return s.c.requests.Load() }

// Check makes one small SyncFolderItems request: it proves the sign-in, the access to the
// mailbox and the folder. Errors are *connector.Error with advice.
func Check(ctx context.Context, cfg Config) error {
	s, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	_, _, _, err = s.sync(ctx, "", 1)
	return s.c.classify("ews sync folder items", err)
}

// sync asks one page of changes after state (as a delegate, or impersonating when only
// that is allowed).
func (s *Source) sync(ctx context.Context, state string, max int) (items []change, next string, last bool, err error) {
	err = s.c.orImpersonate(func() error {
		var err error
		items, next, last, err = s.syncOnce(ctx, state, max)
		return err
	})
	return items, next, last, err
}

func (s *Source) syncOnce(ctx context.Context, state string, max int) (items []change, next string, last bool, err error) {
	body := `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>` +
		`<t:FieldURI FieldURI="message:IsRead"/><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="item:Size"/>` +
		`</t:AdditionalProperties></m:ItemShape><m:SyncFolderId>` + s.c.folderID(s.folder) + `</m:SyncFolderId>`
	if state != "" {
		body += `<m:SyncState>` + esc(state) + `</m:SyncState>`
	}
	body += `<m:MaxChangesReturned>` + strconv.Itoa(max) + `</m:MaxChangesReturned></m:SyncFolderItems>`
	resp, err := s.c.call(ctx, "SyncFolderItems", body, requestTimeout)
	if err != nil {
		return nil, "", false, err
	}
	msgs, errs := responseMessages(resp)
	if len(msgs) != 1 {
		return nil, "", false, errors.New("ews: SyncFolderItems answered without one response message")
	}
	if errs[0] != nil {
		return nil, "", false, errs[0]
	}
	m := msgs[0]
	for _, cr := range m.kid("Changes").all("Create") {
		if len(cr.Kids) == 0 {
			continue
		}
		it := cr.Kids[0] // Message, or another item kind: all carry ItemId
		id := it.kid("ItemId")
		if id == nil || id.Attrs["Id"] == "" {
			continue
		}
		ch := change{id: id.Attrs["Id"], changeKey: id.Attrs["ChangeKey"], isRead: it.kid("IsRead").text() == "true"}
		ch.size, _ = strconv.ParseInt(it.kid("Size").text(), 10, 64)
		ch.received, _ = time.Parse(time.RFC3339, it.kid("DateTimeReceived").text())
		items = append(items, ch)
	}
	return items, m.kid("SyncState").text(), m.kid("IncludesLastItemInRange").text() == "true", nil
}

// Next returns up to limit messages of the folder not returned before, in the order of
// SyncFolderItems. The last message of each page carries the page's sync state as Cursor.
func (s *Source) Next(ctx context.Context, limit int) ([]connector.Incoming, error) {
	limit = min(max(limit, 1), 1000)
	if err := s.fill(ctx); err != nil {
		return nil, err
	}
	n := min(limit, len(s.queue))
	out, err := s.fetch(ctx, s.queue[:n])
	if err != nil {
		return nil, err
	}
	s.queue = s.queue[n:]
	if len(s.queue) == 0 && s.pageEnd != "" {
		cursor := FormatCursor(s.c.mailbox, s.folder, s.pageEnd)
		if len(out) > 0 {
			out[len(out)-1].Cursor = cursor
		} else if s.saveCursor != nil {
			if err := s.saveCursor(ctx, cursor); err != nil {
				return nil, fmt.Errorf("ews: save the sync state: %w", err)
			}
		}
		s.state, s.pageEnd = s.pageEnd, ""
	}
	return out, nil
}

// fill reads pages of changes until one holds a message to hand out or the folder is
// read to its end. A page without any (all skipped) moves the state on at once.
func (s *Source) fill(ctx context.Context) error {
	for len(s.queue) == 0 {
		if s.pageEnd != "" { // a page whose messages were all handed out already
			return nil
		}
		items, next, last, err := s.sync(ctx, s.state, s.pageSize)
		if Code(err) == "ErrorInvalidSyncStateData" {
			s.lost++
			if s.lost >= 2 {
				s.lost = 0
				return s.c.classify("ews sync folder items", err)
			}
			s.log.Warn("ews: Exchange no longer knows the sync state: reading the whole folder again; copies stored before are recognised, not duplicated",
				slog.String("folder", s.folder))
			s.state, s.initial = "", true
			s.seen = map[string]struct{}{}
			continue
		}
		if err != nil {
			return s.c.classify("ews sync folder items", err)
		}
		s.lost = 0
		for _, it := range items {
			if s.wanted(it) {
				s.seen[it.id] = struct{}{}
				s.queue = append(s.queue, it)
			}
		}
		s.pageEnd = next
		if len(s.queue) > 0 {
			return nil
		}
		if next != "" && next != s.state && s.saveCursor != nil {
			if err := s.saveCursor(ctx, FormatCursor(s.c.mailbox, s.folder, next)); err != nil {
				return fmt.Errorf("ews: save the sync state: %w", err)
			}
		}
		if next != "" {
			s.state = next
		}
		s.pageEnd = ""
		if last {
			s.initial = false
			return nil
		}
	}
	return nil
}

// wanted reports whether a change is a message to hand out.
func (s *Source) wanted(it change) bool {
	if _, ok := s.seen[it.id]; ok {
		return false
	}
	if s.initial && s.afterAction == store.AfterMarkRead && it.isRead {
		return false // handled before postroom, as the IMAP source reads only unseen mail at first
	}
	if s.skip != nil && s.skip(SourceID(it.id)) {
		return false
	}
	if len(s.seen) >= maxSeen {
		s.seen = map[string]struct{}{}
	}
	return true
}

// fetch downloads the messages of items with GetItem (IncludeMimeContent), several per
// request. Messages gone meanwhile (ErrorItemNotFound) are left out.
func (s *Source) fetch(ctx context.Context, items []change) ([]connector.Incoming, error) {
	out := make([]connector.Incoming, 0, len(items))
	for len(items) > 0 {
		n, bytes := 0, int64(0)
		for n < len(items) && n < getBatch && (n == 0 || bytes+items[n].size <= getBatchBytes) {
			bytes += items[n].size
			n++
		}
		batch := items[:n]
		items = items[n:]
		var b strings.Builder
		b.WriteString(`<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>`)
		for _, it := range batch {
			b.WriteString(`<t:ItemId Id="` + esc(it.id) + `"/>`)
		}
		b.WriteString(`</m:ItemIds></m:GetItem>`)
		resp, err := s.c.call(ctx, "GetItem", b.String(), transferTimeout)
		if err != nil {
			return nil, s.c.classify("ews get item", err)
		}
		msgs, errs := responseMessages(resp)
		if len(msgs) != len(batch) {
			return nil, &connector.Error{Kind: connector.KindServer, Op: "ews get item", Err: fmt.Errorf("%d answers to %d items", len(msgs), len(batch)),
				Advice: "Exchange answered GetItem in a way postroom cannot follow; it tries again"}
		}
		for i, m := range msgs {
			in := connector.Incoming{SourceID: SourceID(batch[i].id), ReceivedAt: batch[i].received}
			if errs[i] != nil {
				if Code(errs[i]) == "ErrorItemNotFound" {
					s.log.Info("ews: message gone before it was read (moved or deleted meanwhile)", slog.String("source_id", in.SourceID))
					continue
				}
				return nil, s.c.classify("ews get item", errs[i])
			}
			var mime *node
			if items := m.kid("Items"); items != nil && len(items.Kids) > 0 {
				mime = items.Kids[0].kid("MimeContent")
			}
			raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(mime.text()), ""))
			if err == nil && mime == nil {
				err = errors.New("no MimeContent in the answer")
			}
			if err != nil {
				return nil, &connector.Error{Kind: connector.KindServer, Op: "ews get item", Err: fmt.Errorf("MimeContent: %w", err),
					Advice: "Exchange sent a message postroom cannot decode; it tries again"}
			}
			in.Raw, in.Size = raw, int64(len(raw))
			if s.maxSize > 0 && in.Size > s.maxSize {
				in.Raw, in.OverSize = headerOf(raw), true
			}
			out = append(out, in)
		}
	}
	return out, nil
}

// headerOf returns the header of raw with its blank line (at most headerLimit).
func headerOf(raw []byte) []byte {
	s := string(raw[:min(len(raw), headerLimit)])
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		return []byte(s[:i+4])
	}
	if i := strings.Index(s, "\n\n"); i >= 0 {
		return []byte(s[:i+2])
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i+1]
	}
	return []byte(s + "\r\n")
}

// Ack applies the after action to stored messages: UpdateItem message:IsRead, or MoveItem.
// Messages gone meanwhile count as done; ids of another source are ignored.
func (s *Source) Ack(ctx context.Context, sourceIDs []string) error {
	ids := s.ewsIDs(sourceIDs)
	if len(ids) == 0 || s.afterAction == store.AfterKeep {
		return nil
	}
	if s.afterAction == store.AfterMarkRead {
		return s.markRead(ctx, ids)
	}
	return s.move(ctx, ids, s.moveFolder)
}

// SetAside leaves over-size messages where they are, unread (EWS reads the whole message
// anyway); the sync state has moved past them so Next does not return them again.
func (s *Source) SetAside(ctx context.Context, sourceIDs []string) error { return nil }

func (s *Source) markRead(ctx context.Context, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), 100)
		var b strings.Builder
		b.WriteString(`<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite" SuppressReadReceipts="true"><m:ItemChanges>`)
		for _, id := range ids[:n] {
			b.WriteString(`<t:ItemChange><t:ItemId Id="` + esc(id) + `"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/>` +
				`<t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange>`)
		}
		b.WriteString(`</m:ItemChanges></m:UpdateItem>`)
		if err := s.each(ctx, "UpdateItem", "ews mark read", b.String(), ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func (s *Source) move(ctx context.Context, ids []string, folder string) error {
	for len(ids) > 0 {
		n := min(len(ids), 100)
		var b strings.Builder
		b.WriteString(`<m:MoveItem><m:ToFolderId>` + s.c.folderID(folder) + `</m:ToFolderId><m:ItemIds>`)
		for _, id := range ids[:n] {
			b.WriteString(`<t:ItemId Id="` + esc(id) + `"/>`)
		}
		b.WriteString(`</m:ItemIds></m:MoveItem>`)
		if err := s.each(ctx, "MoveItem", fmt.Sprintf("ews move to %s", folder), b.String(), ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// each posts a batched request and checks each response message; ErrorItemNotFound is done.
func (s *Source) each(ctx context.Context, name, op, body string, ids []string) error {
	resp, err := s.c.call(ctx, name, body, requestTimeout)
	if err != nil {
		return s.c.classify(op, err)
	}
	_, errs := responseMessages(resp)
	for i, err := range errs {
		if err == nil {
			continue
		}
		if Code(err) == "ErrorItemNotFound" {
			if i < len(ids) {
				s.log.Info("ews: message gone already", slog.String("op", op), slog.String("source_id", SourceID(ids[i])))
			}
			continue
		}
		return s.c.classify(op, err)
	}
	return nil
}

func (s *Source) ewsIDs(sourceIDs []string) []string {
	ids := make([]string, 0, len(sourceIDs))
	for _, sid := range sourceIDs {
		id, ok := strings.CutPrefix(sid, sourcePrefix)
		if !ok || id == "" {
			s.log.Warn("ews: not an EWS item id; left alone", slog.String("source_id", sid))
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// Close releases the Source. It makes no request.
func (s *Source) Close() error { return nil }

// SourceID is the dedup key of an EWS message: "ews:" + its ItemId.
func SourceID(itemID string) string { return sourcePrefix + itemID }

const cursorVersion = "ews1"

// FormatCursor formats the position after a page: the mailbox, the folder and the sync
// state, separated by spaces (none holds one).
func FormatCursor(mailbox, folder, syncState string) string {
	return cursorVersion + " " + mailbox + " " + folder + " " + syncState
}

// ParseCursor parses a cursor of FormatCursor.
func ParseCursor(cursor string) (mailbox, folder, syncState string, ok bool) {
	parts := strings.SplitN(cursor, " ", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}
