package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// Forwarder forwards a conversation's message and starts new conversations
// (internal/outbound implements it, with Replier).
type Forwarder interface {
	Forward(ctx context.Context, actor store.User, workItemID int64, req outbound.ForwardRequest) (store.OutboxItem, error)
	NewEmail(ctx context.Context, actor store.User, req outbound.NewEmailRequest) (store.NewConversation, error)
}

// forwarder returns the Forwarder, or writes a 503 when sending is not configured.
func (s *server) forwarder(w http.ResponseWriter) (Forwarder, bool) {
	f, ok := s.replier.(Forwarder)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "sending email is not configured on this server: an administrator must set up an outbound mailbox")
	}
	return f, ok
}

// decodeSend reads the JSON body of a forward or new email into body, spools the
// attachments it holds (read once body is decoded) and finds the Forwarder. On false it
// has written the answer; on true the caller removes the uploads when the request is done.
func (s *server) decodeSend(w http.ResponseWriter, r *http.Request, body any, attachments *[]uploadJSON) (*uploads, Forwarder, bool) {
	if !decodeBodyLimit(w, r, body, maxReplyBodyBytes) {
		return nil, nil, false
	}
	atts, ok := decodeUploads(w, *attachments)
	if !ok {
		return nil, nil, false
	}
	fw, ok := s.forwarder(w)
	if !ok {
		atts.Remove()
		return nil, nil, false
	}
	return atts, fw, true
}

// writeSendError writes the answer to a forward or new email the outbound service
// refused; what is "forward" or "email".
func (s *server) writeSendError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var fe *outbound.FieldError
	switch {
	case errors.As(err, &fe):
		writeFieldErrors(w, map[string]string{fe.Field: fe.Message})
	case errors.Is(err, outbound.ErrUnknownFrom):
		writeFieldErrors(w, map[string]string{"from": outbound.ErrUnknownFrom.Error()})
	case errors.Is(err, outbound.ErrEmptyNewEmail):
		writeFieldErrors(w, map[string]string{"text": outbound.ErrEmptyNewEmail.Error()})
	case errors.Is(err, outbound.ErrNoOutboundMailbox):
		writeError(w, http.StatusConflict, "could not send the "+what+": "+err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, sentenceCase(what)+" refused: "+err.Error())
	default:
		s.logger.ErrorContext(r.Context(), what, slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not send the "+what+" because of an internal error; the server log has the details")
	}
}

func sentenceCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// forward sends a message of the work item's conversation to other addresses, with a
// note, the original attachments chosen and new files; the item's state stays.
func (s *server) forward(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	var body struct {
		To            []string     `json:"to"`
		Cc            []string     `json:"cc"`
		Bcc           []string     `json:"bcc"`
		Text          string       `json:"text"`
		From          string       `json:"from"`
		MessageID     int64        `json:"message_id"`
		AttachmentIDs []int64      `json:"attachment_ids"`
		Attachments   []uploadJSON `json:"attachments"`
	}
	atts, fw, ok := s.decodeSend(w, r, &body, &body.Attachments)
	if !ok {
		return
	}
	defer atts.Remove()
	ctx := r.Context()
	wi, err := s.st.WorkItem(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	if err := workitem.Check(user, wi, workitem.Reply); err != nil {
		writeError(w, http.StatusConflict, "the forward was not sent: "+err.Error())
		return
	}
	ob, err := fw.Forward(ctx, user, id, outbound.ForwardRequest{To: body.To, Cc: body.Cc, Bcc: body.Bcc, Text: body.Text,
		From: body.From, MessageID: body.MessageID, AttachmentIDs: body.AttachmentIDs, Attachments: atts.files})
	if err != nil {
		s.writeSendError(w, r, "forward", err)
		return
	}
	if wi, err = s.st.WorkItem(ctx, id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Outbox   outboxJSON   `json:"outbox"`
		WorkItem workItemJSON `json:"workitem"`
	}{toOutboxJSON(ob), toWorkItemJSON(wi, time.Now())})
}

// createConversation sends a new email to a customer: a new conversation with its work
// item, assigned to the sender (pending unless "then" says otherwise).
func (s *server) createConversation(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var body struct {
		To          []string     `json:"to"`
		Cc          []string     `json:"cc"`
		Bcc         []string     `json:"bcc"`
		Subject     string       `json:"subject"`
		Text        string       `json:"text"`
		From        string       `json:"from"`
		QueueID     int64        `json:"queue_id"`
		Then        string       `json:"then"`
		Attachments []uploadJSON `json:"attachments"`
	}
	atts, fw, ok := s.decodeSend(w, r, &body, &body.Attachments)
	if !ok {
		return
	}
	defer atts.Remove()
	ctx := r.Context()
	nc, err := fw.NewEmail(ctx, user, outbound.NewEmailRequest{To: body.To, Cc: body.Cc, Bcc: body.Bcc, Subject: body.Subject,
		Text: body.Text, From: body.From, QueueID: body.QueueID, Then: strings.TrimSpace(body.Then), Attachments: atts.files})
	if err != nil {
		s.writeSendError(w, r, "email", err)
		return
	}
	wi, err := s.st.WorkItem(ctx, nc.WorkItemID)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", nc.WorkItemID), err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		ConversationID int64        `json:"conversation_id"`
		Outbox         outboxJSON   `json:"outbox"`
		WorkItem       workItemJSON `json:"workitem"`
	}{nc.ConversationID, toOutboxJSON(nc.Outbox), toWorkItemJSON(wi, time.Now())})
}

// historyJSON is one of the customer's other conversations.
type historyJSON struct {
	WorkItemID     int64     `json:"workitem_id"`
	ConversationID int64     `json:"conversation_id"`
	Subject        string    `json:"subject"`
	State          string    `json:"state"`
	UpdatedAt      time.Time `json:"updated_at"`
	URL            string    `json:"url"`
}

// customerHistory lists the customer's other conversations for the detail JSON.
func (s *server) customerHistory(ctx context.Context, wi store.WorkItem) ([]historyJSON, error) {
	_, list, err := workitem.CustomerHistory(ctx, s.st, wi)
	out := make([]historyJSON, 0, len(list))
	for _, h := range list {
		out = append(out, historyJSON{WorkItemID: h.WorkItemID, ConversationID: h.ConversationID, Subject: h.Subject,
			State: h.State, UpdatedAt: h.UpdatedAt, URL: fmt.Sprintf("/api/v1/workitems/%d", h.WorkItemID)})
	}
	return out, err
}
