package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// Forwarder forwards a conversation's message and starts new conversations
// (internal/outbound implements it, with Replier).
type Forwarder interface {
	Forward(ctx context.Context, actor store.User, workItemID int64, req outbound.ForwardRequest) (store.OutboxItem, error)
	NewEmail(ctx context.Context, actor store.User, req outbound.NewEmailRequest) (store.NewConversation, error)
	ComposeChoices(ctx context.Context) ([]outbound.FromChoice, error)
}

// flashForwardSent is the outbox id of a forward just queued.
const flashForwardSent = "forward-sent"

// composeRoutes adds the New email page and the forward form's target.
func (h *handler) composeRoutes(mux *pageMux) {
	mux.page("POST /workitems/{id}/forward", store.RoleAgent, h.forward)
	mux.page("GET /compose", store.RoleAgent, h.composePage)
	mux.page("POST /compose", store.RoleAgent, h.composeSubmit)
}

// itemCompose is what the item page shows beside the reply: the forward form and the
// customer's history.
type itemCompose struct {
	// Message is the message the forward form forwards (the latest inbound unless the
	// agent picked another with ?forward=<id>).
	Message store.Message
	To, Cc  string
	Bcc     string
	Text    string
	// Chosen marks the attachments ticked to go along.
	Chosen    map[int64]bool
	Errors    map[string]string
	FormError string
	Sent      bool
	// Customer is the customer's address; History their other conversations.
	Customer string
	History  []store.HistoryItem
}

// fillCompose sets d.Compose's forwarded message and the customer's history; what cannot
// be read is logged and left out (the item stays readable).
func (h *handler) fillCompose(ctx context.Context, r *http.Request, v viewer, d *workItemData, wi store.WorkItem, msgs []store.Message) {
	c := &d.Compose
	want := wi.MessageID
	if c.Message.ID != 0 {
		want = c.Message.ID
	} else if id, err := strconv.ParseInt(r.URL.Query().Get("forward"), 10, 64); err == nil {
		want = id
	}
	for _, m := range msgs {
		if m.ID == want {
			c.Message = m
		}
	}
	if c.Message.ID == 0 && len(msgs) > 0 {
		c.Message = msgs[len(msgs)-1]
	}
	if _, sent := h.flash.take(flashKey{session: v.Session.TokenHash, kind: flashForwardSent, id: wi.ID}); sent {
		c.Sent = true
	}
	var err error
	if c.Customer, c.History, err = workitem.CustomerHistory(ctx, h.st, wi); err != nil {
		h.logger.WarnContext(ctx, "customer history", slog.Int64("work_item_id", wi.ID), slog.Any("error", err))
	}
}

// forward sends the forward form of the item page.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, v viewer) {
	wi, ok := h.pathWorkItem(w, r)
	if !ok {
		return
	}
	id, ctx := wi.ID, r.Context()
	f := r.PostForm
	msgID, _ := strconv.ParseInt(f.Get("message_id"), 10, 64)
	again := itemCompose{Message: store.Message{ID: msgID}, To: f.Get("to"), Cc: f.Get("cc"), Bcc: f.Get("bcc"), Text: f.Get("text"),
		Chosen: map[int64]bool{}}
	req := outbound.ForwardRequest{To: []string{again.To}, Cc: []string{again.Cc}, Bcc: []string{again.Bcc}, Text: again.Text,
		From: strings.TrimSpace(f.Get("from")), MessageID: msgID}
	for _, s := range f["attachment_id"] {
		aid, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		again.Chosen[aid] = true
		req.AttachmentIDs = append(req.AttachmentIDs, aid)
	}
	refuse := func(status int, field, msg string) {
		if field != "" {
			again.Errors = map[string]string{field: msg}
		} else {
			again.FormError = msg
		}
		h.renderWorkItem(w, r, v, status, wi, workItemData{Compose: again})
	}
	if err := workitem.Check(v.User, wi, workitem.Reply); err != nil {
		refuse(http.StatusConflict, "", "The forward was not sent. "+sentence(err.Error()))
		return
	}
	fw, ok := h.replier.(Forwarder)
	if !ok {
		refuse(http.StatusServiceUnavailable, "", "Sending email is not configured on this server. Ask an administrator to set up an outbound mailbox.")
		return
	}
	atts, err := formFiles(r, "attachments")
	if err != nil {
		refuse(http.StatusBadRequest, "attachments", err.Error())
		return
	}
	req.Attachments = atts
	ob, err := fw.Forward(ctx, v.User, id, req)
	if err != nil {
		status, field, msg := sendError(ctx, h.logger, "forward", err)
		refuse(status, field, msg)
		return
	}
	h.logger.InfoContext(ctx, "forward queued", slog.Int64("work_item_id", id), slog.Int64("outbox_id", ob.ID), slog.String("user", v.User.Username))
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: flashForwardSent, id: id}, ob.ID)
	http.Redirect(w, r, fmt.Sprintf("/workitems/%d#forward", id), http.StatusSeeOther)
}

// sendError turns an error of the outbound service into a status and either a field
// error or a form error (field "").
func sendError(ctx context.Context, log *slog.Logger, what string, err error) (int, string, string) {
	var fe *outbound.FieldError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Field, fe.Message
	case errors.Is(err, outbound.ErrUnknownFrom):
		return http.StatusBadRequest, "from", "this address is not one of ours: pick one from the list"
	case errors.Is(err, outbound.ErrEmptyNewEmail):
		return http.StatusBadRequest, "text", "Write the message before sending."
	case errors.Is(err, outbound.ErrNoOutboundMailbox):
		return http.StatusConflict, "", "The " + what + " was not sent: no outbound mailbox is enabled. Ask an administrator to set one up on the Mailboxes page."
	default:
		log.ErrorContext(ctx, what, slog.Any("error", err))
		return http.StatusInternalServerError, "", "The " + what + " was not sent because of an internal error; the server log has the details. Try again in a moment."
	}
}

// composeData is the New email page.
type composeData struct {
	Froms                      []outbound.FromChoice
	Queues                     []store.Queue
	To, Cc, Bcc, Subject, Text string
	From                       string
	QueueID                    int64
	Errors                     map[string]string
	FormError                  string
	NoOutbound                 bool
}

func (h *handler) composePage(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderCompose(w, r, v, http.StatusOK, composeData{To: r.URL.Query().Get("to")})
}

func (h *handler) renderCompose(w http.ResponseWriter, r *http.Request, v viewer, status int, d composeData) {
	ctx := r.Context()
	if fw, ok := h.replier.(Forwarder); ok {
		froms, err := fw.ComposeChoices(ctx)
		switch {
		case errors.Is(err, outbound.ErrNoOutboundMailbox):
			d.NoOutbound = true
		case err != nil:
			h.serverError(w, r, "list the From addresses", err)
			return
		}
		d.Froms = froms
		if d.From == "" {
			for _, c := range froms {
				if c.Default {
					d.From = c.Address
				}
			}
		}
	} else {
		d.NoOutbound = true
	}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	for _, q := range queues {
		if q.Enabled {
			d.Queues = append(d.Queues, q)
		}
	}
	h.render(w, r, status, "compose", h.data(v, "New email", "compose", d))
}

func (h *handler) composeSubmit(w http.ResponseWriter, r *http.Request, v viewer) {
	f := r.PostForm
	d := composeData{To: f.Get("to"), Cc: f.Get("cc"), Bcc: f.Get("bcc"), Subject: f.Get("subject"), Text: f.Get("text"),
		From: strings.TrimSpace(f.Get("from"))}
	d.QueueID, _ = strconv.ParseInt(f.Get("queue_id"), 10, 64)
	fw, ok := h.replier.(Forwarder)
	if !ok {
		d.FormError = "Sending email is not configured on this server. Ask an administrator to set up an outbound mailbox."
		h.renderCompose(w, r, v, http.StatusServiceUnavailable, d)
		return
	}
	atts, err := formFiles(r, "attachments")
	if err != nil {
		d.Errors = map[string]string{"attachments": err.Error()}
		h.renderCompose(w, r, v, http.StatusBadRequest, d)
		return
	}
	nc, err := fw.NewEmail(r.Context(), v.User, outbound.NewEmailRequest{To: []string{d.To}, Cc: []string{d.Cc}, Bcc: []string{d.Bcc},
		Subject: d.Subject, Text: d.Text, From: d.From, QueueID: d.QueueID, Then: f.Get("then"), Attachments: atts})
	if err != nil {
		status, field, msg := sendError(r.Context(), h.logger, "email", err)
		if field != "" {
			d.Errors = map[string]string{field: msg}
		} else {
			d.FormError = msg
		}
		h.renderCompose(w, r, v, status, d)
		return
	}
	h.logger.InfoContext(r.Context(), "new email queued", slog.Int64("work_item_id", nc.WorkItemID), slog.String("user", v.User.Username))
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: flashReplySent, id: nc.WorkItemID}, nc.Outbox.ID)
	http.Redirect(w, r, fmt.Sprintf("/workitems/%d#replies", nc.WorkItemID), http.StatusSeeOther)
}
