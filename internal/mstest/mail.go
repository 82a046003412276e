package mstest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
)

// mailState holds every mailbox.
type mailState struct {
	byAddress map[string]*mailbox // by lower-case address (UPN) and lower-case object id
	// removed remembers the ids a message had, so a stale default id answers
	// ErrorItemNotFound and not ErrorInvalidIdMalformed.
	seq  int64 // change counter shared by all mailboxes (delta watermarks)
	sent []SentMessage
}

func newMailState() mailState {
	return mailState{byAddress: map[string]*mailbox{}}
}

// mailbox is one Exchange mailbox.
type mailbox struct {
	owner    *User
	folders  map[string]*folder  // by folder id
	messages map[string]*message // by immutable id
	restIDs  map[string]string   // current default (REST) id -> immutable id
	// removals: messages that left a folder (moved out or deleted), for delta @removed.
	removals []removal
}

type folder struct {
	id        string
	name      string // display name
	wellKnown string // "inbox", "sentitems", ... or ""
	parentID  string // "" for msgfolderroot
	hidden    bool
	created   int64 // change seq
}

type message struct {
	immutableID string
	restID      string
	folderID    string
	raw         []byte
	isRead      bool
	isDraft     bool
	received    time.Time
	changed     int64 // change seq of the last create/update/move-in
	arrived     int64 // change seq of the create or move-in (delta's changeType=created)
	header      mail.Header
	// attachments added to a draft (inline or through an upload session), merged into
	// raw when the draft is sent.
	attachments []*attachment
	// changeKey changes with every update (@odata.etag).
	changeKey int64
	created   time.Time
	modified  time.Time
	// categories set through PATCH.
	categories []string
	// draft is how a draft made from JSON was composed (nil for MIME drafts and received
	// mail); PATCH edits it and raw is made again.
	draft *composed
	// view is the parsed MIME, made on first use (viewOf); nil after raw changes.
	view *view
}

type attachment struct {
	id          string
	name        string
	contentType string
	content     []byte
	isInline    bool
}

type removal struct {
	immutableID, restID, folderID string
	seq                           int64
}

// wellKnownFolders are created in every mailbox: well-known name -> display name.
var wellKnownFolders = []struct{ name, display string }{
	{"inbox", "Inbox"},
	{"sentitems", "Sent Items"},
	{"drafts", "Drafts"},
	{"deleteditems", "Deleted Items"},
	{"archive", "Archive"},
	{"junkemail", "Junk Email"},
	{"outbox", "Outbox"},
	{"conversationhistory", "Conversation History"},
}

func (ms *mailState) newMailbox(u *User) *mailbox {
	mb := &mailbox{owner: u, folders: map[string]*folder{}, messages: map[string]*message{}, restIDs: map[string]string{}}
	root := &folder{id: newID("AAMkAGZvbGRlcg"), name: "Top of Information Store", wellKnown: "msgfolderroot"}
	mb.folders[root.id] = root
	for _, wk := range wellKnownFolders {
		f := &folder{id: newID("AAMkAGZvbGRlcg"), name: wk.display, wellKnown: wk.name, parentID: root.id}
		mb.folders[f.id] = f
	}
	ms.byAddress[strings.ToLower(u.cfg.UPN)] = mb
	ms.byAddress[u.cfg.ObjectID] = mb
	return mb
}

// nextSeq advances the change counter.
func (ms *mailState) nextSeq() int64 {
	ms.seq++
	return ms.seq
}

// folderByRef finds a folder by id, well-known name (case-insensitive), display name of a
// top-level folder, or a path of display names separated by "/" ("Inbox/Handled").
func (mb *mailbox) folderByRef(ref string) *folder {
	if f, ok := mb.folders[ref]; ok {
		return f
	}
	lower := strings.ToLower(ref)
	for _, f := range mb.folders {
		if f.wellKnown != "" && f.wellKnown == lower {
			return f
		}
	}
	parent := mb.root()
	var found *folder
	for _, part := range strings.Split(ref, "/") {
		found = mb.child(parent, part)
		if found == nil {
			return nil
		}
		parent = found
	}
	return found
}

func (mb *mailbox) root() *folder {
	for _, f := range mb.folders {
		if f.wellKnown == "msgfolderroot" {
			return f
		}
	}
	panic("mstest: mailbox without root folder")
}

// child finds a direct child of parent by display name (case-insensitive, like Exchange).
func (mb *mailbox) child(parent *folder, name string) *folder {
	for _, f := range mb.folders {
		if f.parentID == parent.id && strings.EqualFold(f.name, name) {
			return f
		}
	}
	return nil
}

// folderPath is the display path of f below the root ("Inbox/Handled").
func (mb *mailbox) folderPath(f *folder) string {
	var parts []string
	for f != nil && f.wellKnown != "msgfolderroot" {
		parts = append([]string{f.name}, parts...)
		f = mb.folders[f.parentID]
	}
	return strings.Join(parts, "/")
}

// addMessage stores raw in f as a new message.
func (ms *mailState) addMessage(mb *mailbox, f *folder, raw []byte, received time.Time, isRead, isDraft bool) *message {
	m := &message{
		immutableID: newID("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"),
		restID:      newID("AAMkAGI2TG93AAA"),
		folderID:    f.id,
		raw:         slices.Clone(raw),
		isRead:      isRead,
		isDraft:     isDraft,
		received:    received.UTC().Truncate(time.Second),
		changed:     ms.nextSeq(),
		header:      parseHeader(raw),
	}
	m.changeKey, m.arrived = m.changed, m.changed
	m.created, m.modified = m.received, m.received
	mb.messages[m.immutableID] = m
	mb.restIDs[m.restID] = m.immutableID
	return m
}

// moveMessage moves m to f: a new default id, a removal in the old folder.
func (ms *mailState) moveMessage(mb *mailbox, m *message, f *folder) {
	if m.folderID == f.id {
		return
	}
	seq := ms.nextSeq()
	mb.removals = append(mb.removals, removal{immutableID: m.immutableID, restID: m.restID, folderID: m.folderID, seq: seq})
	delete(mb.restIDs, m.restID)
	m.restID = newID("AAMkAGI2TG93AAA")
	mb.restIDs[m.restID] = m.immutableID
	m.folderID = f.id
	m.changed, m.arrived = seq, seq
	m.changeKey = seq
}

// deleteMessage removes m for good.
func (ms *mailState) deleteMessage(mb *mailbox, m *message) {
	seq := ms.nextSeq()
	mb.removals = append(mb.removals, removal{immutableID: m.immutableID, restID: m.restID, folderID: m.folderID, seq: seq})
	delete(mb.restIDs, m.restID)
	delete(mb.messages, m.immutableID)
}

// touch records an update of m (isRead changed, draft edited).
func (ms *mailState) touch(m *message) {
	m.changed = ms.nextSeq()
	m.changeKey = m.changed
}

// messageByID finds a message by immutable or current default id.
func (mb *mailbox) messageByID(id string) *message {
	if m, ok := mb.messages[id]; ok {
		return m
	}
	if imm, ok := mb.restIDs[id]; ok {
		return mb.messages[imm]
	}
	return nil
}

// parseHeader reads raw's header; a message without a parseable header gets an empty one
// (Exchange stores anything).
func parseHeader(raw []byte) mail.Header {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return mail.Header{}
	}
	defer func() { _ = r.Close() }()
	return r.Header
}

// Message is a message as a test sees it in a mailbox.
type Message struct {
	// ID is the immutable id; RestID the current default id (changes on move).
	ID, RestID string
	// Folder is the folder's display path ("Inbox", "Inbox/Handled"); FolderID its id.
	Folder, FolderID string
	IsRead, IsDraft  bool
	// Raw is the RFC 5322 message exactly as stored.
	Raw               []byte
	Subject           string
	InternetMessageID string
	ReceivedAt        time.Time
	// Attachments added to a draft and not yet sent.
	Attachments []Attachment
}

// Attachment is an attachment of a draft.
type Attachment struct {
	ID, Name, ContentType string
	Content               []byte
}

// Folder is a mail folder as a test sees it.
type Folder struct {
	ID, Name, Path, WellKnownName string
	ParentID                      string
	Total, Unread                 int
}

// SentMessage is a message a mailbox sent (sendMail, send of a draft, reply, forward).
type SentMessage struct {
	// Mailbox is the sending mailbox's UPN; ClientID the app that asked.
	Mailbox, ClientID string
	// From is the From address of the message.
	From string
	// Recipients is the envelope: To, Cc and Bcc addresses.
	Recipients []string
	// Raw is the MIME message as it left (Bcc removed).
	Raw []byte
	// SavedToSentItems: a copy was put in sentitems.
	SavedToSentItems bool
	At               time.Time
}

// lookupMailbox finds a mailbox by address or object id.
func (s *Server) lookupMailboxLocked(address string) (*mailbox, error) {
	mb, ok := s.state.mail.byAddress[strings.ToLower(address)]
	if !ok {
		return nil, fmt.Errorf("mstest: no mailbox %s", address)
	}
	return mb, nil
}

// Deliver puts raw into folder (a well-known name, display path or id; "" = inbox) of the
// mailbox with address mailbox, unread, received now, as if it had arrived by mail; change
// notifications of subscriptions on that folder fire. It returns the message's immutable id.
func (s *Server) Deliver(mailbox, folder string, raw []byte) (string, error) {
	if folder == "" {
		folder = "inbox"
	}
	s.mu.Lock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	f := mb.folderByRef(folder)
	if f == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("mstest: mailbox %s has no folder %q", mailbox, folder)
	}
	m := s.state.mail.addMessage(mb, f, raw, s.nowLocked(), false, false)
	notes := s.changeNotificationsLocked(mb, f, m, "created")
	s.mu.Unlock()
	s.send(notes)
	return m.immutableID, nil
}

// CreateFolder creates folder path (display names separated by "/", below the root)
// in mailbox as a user would in Outlook; existing parts are kept. It returns the id.
func (s *Server) CreateFolder(mailbox, path string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return "", err
	}
	parent := mb.root()
	for _, part := range strings.Split(path, "/") {
		if part == "" {
			return "", fmt.Errorf("mstest: folder path %q has an empty part", path)
		}
		f := mb.child(parent, part)
		if f == nil {
			f = &folder{id: newID("AAMkAGZvbGRlcg"), name: part, parentID: parent.id, created: s.state.mail.nextSeq()}
			mb.folders[f.id] = f
		}
		parent = f
	}
	return parent.id, nil
}

// MoveMessage moves a message (by immutable or default id) to folder as a user would.
func (s *Server) MoveMessage(mailbox, id, folder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return err
	}
	m := mb.messageByID(id)
	if m == nil {
		return fmt.Errorf("mstest: mailbox %s has no message %s", mailbox, id)
	}
	f := mb.folderByRef(folder)
	if f == nil {
		return fmt.Errorf("mstest: mailbox %s has no folder %q", mailbox, folder)
	}
	s.state.mail.moveMessage(mb, m, f)
	return nil
}

// DeleteMessage deletes a message for good (delta then reports it @removed).
func (s *Server) DeleteMessage(mailbox, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return err
	}
	m := mb.messageByID(id)
	if m == nil {
		return fmt.Errorf("mstest: mailbox %s has no message %s", mailbox, id)
	}
	s.state.mail.deleteMessage(mb, m)
	return nil
}

// SetRead marks a message read or unread as a user would.
func (s *Server) SetRead(mailbox, id string, read bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return err
	}
	m := mb.messageByID(id)
	if m == nil {
		return fmt.Errorf("mstest: mailbox %s has no message %s", mailbox, id)
	}
	m.isRead = read
	s.state.mail.touch(m)
	return nil
}

// Messages returns the messages of mailbox, oldest first; with folder set ("inbox",
// "Inbox/Handled", an id) only those in that folder.
func (s *Server) Messages(mailbox, folderRef string) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return nil, err
	}
	var only *folder
	if folderRef != "" {
		if only = mb.folderByRef(folderRef); only == nil {
			return nil, fmt.Errorf("mstest: mailbox %s has no folder %q", mailbox, folderRef)
		}
	}
	var out []Message
	for _, m := range mb.sortedMessages() {
		if only != nil && m.folderID != only.id {
			continue
		}
		out = append(out, mb.export(m))
	}
	return out, nil
}

// Message returns one message by immutable or current default id.
func (s *Server) Message(mailbox, id string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return Message{}, err
	}
	m := mb.messageByID(id)
	if m == nil {
		return Message{}, fmt.Errorf("mstest: mailbox %s has no message %s", mailbox, id)
	}
	return mb.export(m), nil
}

// Folders returns the folders of mailbox (the root excluded), sorted by path.
func (s *Server) Folders(mailbox string) ([]Folder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.lookupMailboxLocked(mailbox)
	if err != nil {
		return nil, err
	}
	var out []Folder
	for _, f := range mb.folders {
		if f.wellKnown == "msgfolderroot" {
			continue
		}
		total, unread := mb.counts(f)
		out = append(out, Folder{ID: f.id, Name: f.name, Path: mb.folderPath(f), WellKnownName: f.wellKnown,
			ParentID: f.parentID, Total: total, Unread: unread})
	}
	slices.SortFunc(out, func(a, b Folder) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Sent returns the messages sent from mailbox ("" = from any mailbox), oldest first.
func (s *Server) Sent(mailbox string) []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SentMessage
	for _, m := range s.state.mail.sent {
		if mailbox == "" || strings.EqualFold(m.Mailbox, mailbox) {
			m.Recipients = slices.Clone(m.Recipients)
			m.Raw = slices.Clone(m.Raw)
			out = append(out, m)
		}
	}
	return out
}

func (mb *mailbox) counts(f *folder) (total, unread int) {
	for _, m := range mb.messages {
		if m.folderID == f.id {
			total++
			if !m.isRead {
				unread++
			}
		}
	}
	return total, unread
}

// sortedMessages returns the messages in arrival order (then id).
func (mb *mailbox) sortedMessages() []*message {
	out := make([]*message, 0, len(mb.messages))
	for _, m := range mb.messages {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *message) int {
		if c := a.received.Compare(b.received); c != 0 {
			return c
		}
		return strings.Compare(a.immutableID, b.immutableID)
	})
	return out
}

func (mb *mailbox) export(m *message) Message {
	f := mb.folders[m.folderID]
	out := Message{ID: m.immutableID, RestID: m.restID, Folder: mb.folderPath(f), FolderID: f.id,
		IsRead: m.isRead, IsDraft: m.isDraft, Raw: slices.Clone(m.raw), ReceivedAt: m.received}
	out.Subject, _ = m.header.Subject()
	out.InternetMessageID = m.header.Get("Message-Id")
	for _, a := range m.attachments {
		out.Attachments = append(out.Attachments, Attachment{ID: a.id, Name: a.name, ContentType: a.contentType, Content: slices.Clone(a.content)})
	}
	return out
}
