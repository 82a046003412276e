package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/compose"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

type workItemJSON struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	MailboxID      int64     `json:"mailbox_id"`
	Mailbox        string    `json:"mailbox"`
	Mailboxes      []string  `json:"mailboxes"` // every mailbox that received it, its own first
	Subject        string    `json:"subject"`
	FromName       string    `json:"from_name"`
	FromAddr       string    `json:"from_addr"`
	State          string    `json:"state"`
	Unparsed       bool      `json:"unparsed"`
	OverSize       bool      `json:"over_size"`
	AssignedTo     int64     `json:"assigned_to,omitempty"`
	ReceivedAt     time.Time `json:"received_at"`
	AgeSeconds     int64     `json:"age_seconds"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toWorkItemJSON(wi store.WorkItem, now time.Time) workItemJSON {
	age := int64(now.Sub(wi.ReceivedAt) / time.Second)
	if age < 0 {
		age = 0
	}
	return workItemJSON{
		ID: wi.ID, ConversationID: wi.ConversationID, MailboxID: wi.MailboxID, Mailbox: wi.MailboxName,
		Subject: wi.Subject, FromName: wi.FromName, FromAddr: wi.FromAddr, State: wi.State,
		Unparsed: wi.Unparsed, OverSize: wi.OverSize, Mailboxes: wi.Mailboxes, AssignedTo: wi.AssignedTo, ReceivedAt: wi.ReceivedAt, AgeSeconds: age, UpdatedAt: wi.UpdatedAt,
	}
}

type attachmentJSON struct {
	ID          int64  `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
	URL         string `json:"url"`
}

type messageJSON struct {
	ID          int64            `json:"id"`
	Direction   string           `json:"direction"`
	MessageID   string           `json:"message_id,omitempty"`
	FromName    string           `json:"from_name"`
	FromAddr    string           `json:"from_addr"`
	To          string           `json:"to"`
	Cc          string           `json:"cc"`
	ReplyTo     string           `json:"reply_to,omitempty"`
	Subject     string           `json:"subject"`
	Date        time.Time        `json:"date"`
	Text        string           `json:"text"`
	HTML        string           `json:"html"`
	Attachments []attachmentJSON `json:"attachments"`
	Unparsed    bool             `json:"unparsed"`
	ParseError  string           `json:"parse_error,omitempty"`
	RawURL      string           `json:"raw_url"`
	Bcc         string           `json:"bcc,omitempty"`
	Automatic   string           `json:"automatic,omitempty"`
	Author      string           `json:"author,omitempty"`
}

type outboxJSON struct {
	ID         int64      `json:"id"`
	State      string     `json:"state"`
	Recipients []string   `json:"recipients"`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
}

func toOutboxJSON(o store.OutboxItem) outboxJSON {
	out := outboxJSON{ID: o.ID, State: o.State, Recipients: o.Recipients, Attempts: o.Attempts, LastError: o.LastError, CreatedAt: o.CreatedAt}
	if out.Recipients == nil {
		out.Recipients = []string{}
	}
	if !o.SentAt.IsZero() {
		t := o.SentAt
		out.SentAt = &t
	}
	return out
}

const (
	attachmentPath = "/api/v1/attachments/"
	messagePath    = "/api/v1/messages/"
)

func apiAttachmentURL(id int64) string {
	return attachmentPath + strconv.FormatInt(id, 10)
}

func toMessageJSON(m store.Message) messageJSON {
	out := messageJSON{
		ID: m.ID, Direction: m.Direction, MessageID: m.MessageID, FromName: m.FromName, FromAddr: m.FromAddr,
		To: m.To, Cc: m.Cc, ReplyTo: m.ReplyTo, Subject: m.Subject, Date: m.Date, Text: m.TextBody,
		HTML: workitem.MessageHTML(m, apiAttachmentURL), Unparsed: m.Unparsed, ParseError: m.ParseError,
		RawURL: messagePath + strconv.FormatInt(m.ID, 10) + "/raw", Attachments: []attachmentJSON{},
		Bcc: m.Bcc, Automatic: m.Automatic, Author: m.AuthorName,
	}
	for _, a := range m.Attachments {
		out.Attachments = append(out.Attachments, attachmentJSON{
			ID: a.ID, Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, Inline: a.Inline,
			URL: apiAttachmentURL(a.ID),
		})
	}
	return out
}

// pathID parses the {id} path value; on failure it has written a 404.
func pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q not found: ids are positive whole numbers", what, r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// listWorkItems lists a page of the work items matching the filter (q searches every
// message of the conversations, bodies too) with the total count of matches.
func (s *server) listWorkItems(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	f, fields := workitem.ParseFilterFor(r.URL.Query(), user.ID)
	if len(fields) > 0 {
		writeFieldErrors(w, fields)
		return
	}
	total, err := s.st.CountWorkItems(r.Context(), f)
	if err != nil {
		s.writeStoreError(w, r, "work items", err)
		return
	}
	items, err := s.st.ListWorkItems(r.Context(), f)
	if err != nil {
		s.writeStoreError(w, r, "work items", err)
		return
	}
	now := time.Now()
	out := struct {
		Items  []workItemJSON `json:"items"`
		Total  int            `json:"total"`
		Limit  int            `json:"limit"`
		Offset int            `json:"offset"`
	}{Items: make([]workItemJSON, 0, len(items)), Total: total, Limit: f.Limit, Offset: f.Offset}
	for _, wi := range items {
		out.Items = append(out.Items, toWorkItemJSON(wi, now))
	}
	writeJSON(w, http.StatusOK, out)
}

type workItemDetailJSON struct {
	workItemJSON
	Messages    []messageJSON    `json:"messages"`
	Outbox      []outboxJSON     `json:"outbox"`
	FromChoices []fromChoiceJSON `json:"from_choices"`
	Notes       []noteJSON       `json:"notes"`
	// CustomerHistory is the customer's other conversations, newest first (forward.go).
	CustomerHistory []historyJSON `json:"customer_history"`
	// LatestMessageID is the newest message of the conversation: what a reply sends as
	// seen_message_id (the collision guard).
	LatestMessageID int64 `json:"latest_message_id"`
}

// fromChoiceJSON is an address a reply may be sent from; Default marks the preselected one.
type fromChoiceJSON struct {
	Address     string `json:"address"`
	DisplayName string `json:"display_name"`
	Default     bool   `json:"default"`
}

func (s *server) getWorkItem(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	ctx := r.Context()
	wi, err := s.st.WorkItem(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	msgs, err := s.st.ConversationMessages(ctx, wi.ConversationID)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("messages of work item %d", id), err)
		return
	}
	outbox, err := s.st.OutboxForWorkItem(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeStoreError(w, r, fmt.Sprintf("replies of work item %d", id), err)
		return
	}
	out := workItemDetailJSON{workItemJSON: toWorkItemJSON(wi, time.Now()), Messages: []messageJSON{}, Outbox: []outboxJSON{}, FromChoices: []fromChoiceJSON{}}
	if s.replier != nil {
		choices, err := s.replier.FromChoices(ctx, id)
		// Without an enabled outbound mailbox there is nothing to send from, but the item
		// is still readable: from_choices stays empty and a reply says what to set up.
		if err != nil && !errors.Is(err, outbound.ErrNoOutboundMailbox) {
			s.writeStoreError(w, r, fmt.Sprintf("From addresses for work item %d", id), err)
			return
		}
		for _, c := range choices {
			out.FromChoices = append(out.FromChoices, fromChoiceJSON{Address: c.Address, DisplayName: c.DisplayName, Default: c.Default})
		}
	}
	for _, m := range msgs {
		out.Messages = append(out.Messages, toMessageJSON(m))
	}
	out.LatestMessageID = workitem.LatestMessageID(msgs)
	for _, o := range outbox {
		out.Outbox = append(out.Outbox, toOutboxJSON(o))
	}
	notes, err := s.st.Notes(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("notes of work item %d", id), err)
		return
	}
	out.Notes = []noteJSON{}
	for _, n := range notes {
		out.Notes = append(out.Notes, toNoteJSON(n))
	}
	if out.CustomerHistory, err = s.customerHistory(ctx, wi); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("customer history of work item %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// noteJSON is an internal note: never sent to the customer.
type noteJSON struct {
	ID         int64     `json:"id"`
	WorkItemID int64     `json:"workitem_id"`
	AuthorID   int64     `json:"author_id,omitempty"`
	Author     string    `json:"author"`
	Text       string    `json:"text"`
	Mentions   []int64   `json:"mentions"`
	CreatedAt  time.Time `json:"created_at"`
}

func toNoteJSON(n store.Note) noteJSON {
	out := noteJSON{ID: n.ID, WorkItemID: n.WorkItemID, AuthorID: n.AuthorID, Author: n.AuthorName, Text: n.Text,
		Mentions: n.Mentions, CreatedAt: n.CreatedAt}
	if out.Mentions == nil {
		out.Mentions = []int64{}
	}
	return out
}

// addNote records an internal note on a work item.
func (s *server) addNote(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	var body struct {
		Text string `json:"text"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	n, err := workitem.AddNote(r.Context(), s.st, user, id, body.Text)
	switch {
	case errors.Is(err, workitem.ErrBadNote):
		writeFieldErrors(w, map[string]string{"text": workitem.NoteFieldError})
	case store.IsNotFound(err):
		writeError(w, http.StatusNotFound, fmt.Sprintf("work item %d not found: check the id", id))
	case err != nil:
		s.internalError(w, r, "add the note", err)
	default:
		writeJSON(w, http.StatusCreated, toNoteJSON(n))
	}
}

// myMentions lists the notes that mention the signed-in user, newest first.
func (s *server) myMentions(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	list, err := s.st.Mentions(r.Context(), user.ID, 50)
	if err != nil {
		s.internalError(w, r, "read your mentions", err)
		return
	}
	type mentionJSON struct {
		Note    noteJSON `json:"note"`
		Subject string   `json:"subject"`
		State   string   `json:"state"`
	}
	out := struct {
		Mentions []mentionJSON `json:"mentions"`
	}{Mentions: []mentionJSON{}}
	for _, m := range list {
		out.Mentions = append(out.Mentions, mentionJSON{Note: toNoteJSON(m.Note), Subject: m.Subject, State: m.State})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) reply(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	var body struct {
		Text     string   `json:"text"`
		From     string   `json:"from"` // "" = the default From address
		Cc       []string `json:"cc"`
		Bcc      []string `json:"bcc"`
		ReplyAll bool     `json:"reply_all"`
		Then     string   `json:"then"`
		// SeenMessageID and Confirm: the collision guard (workitem.CheckSeen).
		SeenMessageID int64 `json:"seen_message_id"`
		Confirm       bool  `json:"confirm"`
		// Signature false sends the text without the signature of the From address or queue.
		Signature   *bool        `json:"signature"`
		Attachments []uploadJSON `json:"attachments"`
	}
	if !decodeBodyLimit(w, r, &body, maxReplyBodyBytes) {
		return
	}
	req := outbound.ReplyRequest{Text: body.Text, From: strings.TrimSpace(body.From), Cc: body.Cc, Bcc: body.Bcc, ReplyAll: body.ReplyAll,
		Then: strings.TrimSpace(body.Then), SeenMessageID: body.SeenMessageID, Confirm: body.Confirm}
	files, ok := decodeUploads(w, body.Attachments)
	if !ok {
		return
	}
	defer files.Remove()
	req.Attachments = files.files
	if strings.TrimSpace(body.Text) == "" {
		writeFieldErrors(w, map[string]string{"text": workitem.ReplyFieldError})
		return
	}
	if s.replier == nil {
		writeError(w, http.StatusServiceUnavailable, "sending replies is not configured on this server: an administrator must set up an outbound mailbox")
		return
	}
	if body.Signature == nil || *body.Signature {
		sig, ok := s.signatureFor(w, r, user, id, req.From)
		if !ok {
			return
		}
		req.Text = compose.Append(req.Text, sig)
	}
	ctx := r.Context()
	ob, err := s.replier.Reply(ctx, user, id, req)
	if err != nil {
		if errors.Is(err, outbound.ErrUnknownFrom) {
			writeFieldErrors(w, map[string]string{"from": outbound.ErrUnknownFrom.Error()})
			return
		}
		var fe *outbound.FieldError
		if errors.As(err, &fe) {
			writeFieldErrors(w, map[string]string{fe.Field: fe.Message})
			return
		}
		if errors.Is(err, outbound.ErrNoOutboundMailbox) {
			writeError(w, http.StatusConflict, "could not send the reply: "+err.Error())
			return
		}
		if errors.Is(err, outbound.ErrNoSender) {
			writeError(w, http.StatusUnprocessableEntity, "could not send the reply: "+err.Error())
			return
		}
		var changed *workitem.ConversationChangedError
		if errors.As(err, &changed) {
			writeConversationChanged(w, changed)
			return
		}
		if errors.Is(err, workitem.ErrUnknownSeenMessage) {
			writeFieldErrors(w, map[string]string{"seen_message_id": err.Error()})
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("work item %d not found: check the id", id))
			return
		}
		s.logger.ErrorContext(ctx, "reply", slog.Int64("work_item_id", id), slog.Any("error", err))
		// The replier's errors say what to fix (for example a missing default outbound
		// mailbox); they carry no secrets.
		writeError(w, http.StatusInternalServerError, "could not send the reply: "+err.Error())
		return
	}
	s.logger.InfoContext(ctx, "reply queued", slog.Int64("work_item_id", id), slog.Int64("outbox_id", ob.ID), slog.String("user", user.Username))
	if err := s.st.DeleteDraft(ctx, user.ID, id); err != nil { // the reply is sent: its draft is done
		s.logger.WarnContext(ctx, "delete the sent reply's draft", slog.Int64("work_item_id", id), slog.Any("error", err))
	}
	wi, err := s.st.WorkItem(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Outbox   outboxJSON   `json:"outbox"`
		WorkItem workItemJSON `json:"workitem"`
	}{toOutboxJSON(ob), toWorkItemJSON(wi, time.Now())})
}

// writeConversationChanged answers a reply refused by the collision guard: 409 with the
// explanation and the messages stored since the one the client saw.
func writeConversationChanged(w http.ResponseWriter, e *workitem.ConversationChangedError) {
	out := struct {
		Error           string        `json:"error"`
		NewMessages     []messageJSON `json:"new_messages"`
		LatestMessageID int64         `json:"latest_message_id"`
	}{Error: "the reply was not sent: " + e.Error() + ` (send it again with "confirm": true, or with "seen_message_id": latest_message_id after reading new_messages)`,
		NewMessages: []messageJSON{}, LatestMessageID: workitem.LatestMessageID(e.New)}
	for _, m := range e.New {
		out.NewMessages = append(out.NewMessages, toMessageJSON(m))
	}
	writeJSON(w, http.StatusConflict, out)
}
