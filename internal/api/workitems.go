package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

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
		if err != nil {
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
	for _, o := range outbox {
		out.Outbox = append(out.Outbox, toOutboxJSON(o))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) reply(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	var body struct {
		Text string `json:"text"`
		From string `json:"from"` // "" = the default From address
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.Text) == "" {
		writeFieldErrors(w, map[string]string{"text": workitem.ReplyFieldError})
		return
	}
	if s.replier == nil {
		writeError(w, http.StatusServiceUnavailable, "sending replies is not configured on this server: an administrator must set up an outbound mailbox")
		return
	}
	ctx := r.Context()
	ob, err := s.replier.Reply(ctx, user, id, outbound.ReplyRequest{Text: body.Text, From: strings.TrimSpace(body.From)})
	if err != nil {
		if errors.Is(err, outbound.ErrUnknownFrom) {
			writeFieldErrors(w, map[string]string{"from": outbound.ErrUnknownFrom.Error()})
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
