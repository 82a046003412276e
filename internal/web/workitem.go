package web

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// emailFrameHead is put before the sanitized email HTML in the sandboxed frame: links open
// in a new tab (the frame allows popups only) and a small stylesheet sets a readable font.
const emailFrameHead = `<!doctype html><meta charset="utf-8"><base target="_blank">` +
	`<link rel="stylesheet" href="/static/email.css">`

// emailFrame returns the srcdoc of an email's frame for its sanitized HTML, and the CSP
// hash source ('sha256-…') of the frame's own stylesheet, "" when it has none. The email's
// style attributes become classes of that stylesheet (message.MoveStylesToSheet): the
// frame inherits the page's policy, which allows inline styles only by hash, so formatting
// survives while every other inline style, and any style in the email itself, stays
// refused.
func emailFrame(sanitized string) (frame, styleHash string) {
	body, css := message.MoveStylesToSheet(sanitized)
	if css == "" {
		return emailFrameHead + body, ""
	}
	sum := sha256.Sum256([]byte(css))
	return emailFrameHead + "<style>" + css + "</style>" + body,
		"'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

type messageView struct {
	store.Message
	// FrameHTML is the srcdoc of the sandboxed frame: sanitized HTML, as a string that
	// html/template escapes into the attribute.
	FrameHTML string
	// New marks a message stored after the agent loaded the page (the collision guard).
	New bool
}

type workItemData struct {
	Item      store.WorkItem
	Messages  []messageView
	Outbox    []store.OutboxItem
	Sent      bool
	ReplyText string
	// Froms are the addresses the reply may be sent from; From is the one selected (the
	// default choice unless the agent picked another).
	Froms     []outbound.FromChoice
	From      string
	Errors    map[string]string
	FormError string
	// Notes are the item's internal notes; NoteText is a note being written again.
	Notes    []store.Note
	NoteText string
	// NoOutbound: no outbound mailbox is enabled, so there is nothing to reply from.
	NoOutbound bool
	// Bouncing is what the last delivery report said of the customer's address, when one
	// reported it failing (Bounces is 0 otherwise).
	Bouncing store.AddressBounce

	// The lifecycle (workitemview.go): the outcome of an action, the routing figures,
	// the buttons the viewer may press and the item's history.
	ActionError string
	Done        string
	Routing     itemRouting

	// Compose is the forward form and the customer's history (forward.go).
	Compose itemCompose
	// Collision is the collision guard's part of the page (presence.go).
	Collision collisionData
	// ReplyBox is the reply box's templates, signature and draft (responses.go).
	ReplyBox composeView
}

// pathWorkItem reads the work item whose id is in the path; when it answers false it has
// written the error page (no such id, or the store's error).
func (h *handler) pathWorkItem(w http.ResponseWriter, r *http.Request) (store.WorkItem, bool) {
	id, ok := h.pathID(w, r, "work item")
	if !ok {
		return store.WorkItem{}, false
	}
	wi, err := h.st.WorkItem(r.Context(), id)
	if err != nil {
		h.storeError(w, r, "work item", err)
		return store.WorkItem{}, false
	}
	return wi, true
}

func (h *handler) workItem(w http.ResponseWriter, r *http.Request, v viewer) {
	wi, ok := h.pathWorkItem(w, r)
	if !ok {
		return
	}
	// "Reply sent" shows once, on the page the reply redirected to; a reload shows none.
	_, sent := h.flash.take(flashKey{session: v.Session.TokenHash, kind: flashReplySent, id: wi.ID})
	h.renderWorkItem(w, r, v, http.StatusOK, wi, workItemData{Sent: sent,
		Done: actionDone[r.URL.Query().Get("done")]})
}

// renderWorkItem loads the conversation and outbox of wi and renders the page with d.
func (h *handler) renderWorkItem(w http.ResponseWriter, r *http.Request, v viewer, status int, wi store.WorkItem, d workItemData) {
	ctx := r.Context()
	msgs, err := h.st.ConversationMessages(ctx, wi.ConversationID)
	if err != nil {
		h.serverError(w, r, "read the conversation", err)
		return
	}
	outbox, err := h.st.OutboxForWorkItem(ctx, wi.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.serverError(w, r, "read the replies", err)
		return
	}
	d.Item = wi
	d.Outbox = outbox
	if wi.FromAddr != "" {
		b, err := h.st.AddressBounce(ctx, wi.FromAddr)
		if err != nil && !store.IsNotFound(err) {
			h.serverError(w, r, "read the customer's address", err)
			return
		}
		d.Bouncing = b
	}
	if d.Notes, err = h.st.Notes(ctx, wi.ID); err != nil {
		h.serverError(w, r, "read the notes", err)
		return
	}
	if d.Routing, err = h.itemRouting(ctx, v, wi); err != nil {
		h.serverError(w, r, "read the work item's routing and history", err)
		return
	}
	if h.replier != nil {
		froms, err := h.replier.FromChoices(ctx, wi.ID)
		switch {
		case errors.Is(err, outbound.ErrNoOutboundMailbox):
			d.NoOutbound = true
		case err != nil:
			// The reply still goes out from the default address; say so in the log only.
			h.logger.WarnContext(ctx, "list From choices", slog.Int64("work_item_id", wi.ID), slog.Any("error", err))
		}
		d.Froms = froms
		if d.From == "" {
			for _, c := range froms {
				if c.Default {
					d.From = c.Address
				}
			}
		}
	}
	h.fillCompose(ctx, r, v, &d, wi, msgs)
	h.fillReplyBox(r, v, wi, &d)
	imageURL, err := h.signer.urlFunc(ctx, time.Now())
	if err != nil {
		h.serverError(w, r, "prepare the email images", err)
		return
	}
	d.Collision = h.collisionView(v, wi, msgs, d.Collision)
	var styleHashes []string
	for _, m := range msgs {
		mv := messageView{Message: m, New: d.Collision.isNew(m.ID)}
		if html := workitem.MessageHTML(m, imageURL); html != "" {
			frame, hash := emailFrame(html)
			mv.FrameHTML = frame
			if hash != "" && !slices.Contains(styleHashes, hash) {
				styleHashes = append(styleHashes, hash)
			}
		}
		d.Messages = append(d.Messages, mv)
	}
	title := message.Topic(wi.Subject)
	if title == "" {
		title = "(no subject)"
	}
	pd := h.data(v, title, "workitems", d)
	pd.StyleHashes = styleHashes
	h.render(w, r, status, "workitem", withWorkspaceScript(pd))
}

func (h *handler) reply(w http.ResponseWriter, r *http.Request, v viewer) {
	wi, ok := h.pathWorkItem(w, r)
	if !ok {
		return
	}
	id, ctx := wi.ID, r.Context()
	text := r.PostForm.Get("text")
	from := strings.TrimSpace(r.PostForm.Get("from"))
	if strings.TrimSpace(text) == "" {
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{
			ReplyText: text, From: from, Errors: map[string]string{"text": workitem.ReplyFieldError},
		})
		return
	}
	if err := workitem.Check(v.User, wi, workitem.Reply); err != nil {
		h.renderWorkItem(w, r, v, http.StatusConflict, wi, workItemData{ReplyText: text, From: from, FormError: "The reply was not sent. " + sentence(err.Error())})
		return
	}
	if h.replier == nil {
		h.renderWorkItem(w, r, v, http.StatusServiceUnavailable, wi, workItemData{
			ReplyText: text, FormError: "Sending replies is not configured on this server. Ask an administrator to set up an outbound mailbox.",
		})
		return
	}
	req := outbound.ReplyRequest{Text: text, From: from, Cc: []string{r.PostForm.Get("cc")}, Bcc: []string{r.PostForm.Get("bcc")},
		ReplyAll: r.PostForm.Get("reply_all") != "", Then: r.PostForm.Get("then")}
	atts, err := formFiles(r, "attachments")
	if err != nil {
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{
			ReplyText: text, From: from, Errors: map[string]string{"attachments": err.Error()},
		})
		return
	}
	req.Attachments = atts
	req.SeenMessageID, req.Confirm, req.Then = collisionForm(r)
	if req.Text, err = h.signReply(r, v, wi, from, text); err != nil {
		h.renderWorkItem(w, r, v, http.StatusConflict, wi, workItemData{ReplyText: text, From: from,
			FormError: "The reply was not sent: the signature cannot be filled in (" + err.Error() + "). Ask a supervisor to correct it on the Templates page."})
		return
	}
	ob, err := h.replier.Reply(ctx, v.User, id, req)
	if h.replyRefused(w, r, v, wi, err, workItemData{ReplyText: text, From: from}, req.Then) {
		return
	}
	var fe *outbound.FieldError
	switch {
	case errors.As(err, &fe):
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{
			ReplyText: text, From: from, Errors: map[string]string{fe.Field: fe.Message},
		})
		return
	case errors.Is(err, outbound.ErrUnknownFrom):
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{
			ReplyText: text, Errors: map[string]string{"from": "this address is not one of ours: pick one from the list"},
		})
		return
	case errors.Is(err, outbound.ErrEmptyReply):
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{
			ReplyText: text, From: from, Errors: map[string]string{"text": workitem.ReplyFieldError},
		})
		return
	case errors.Is(err, outbound.ErrNoOutboundMailbox):
		h.renderWorkItem(w, r, v, http.StatusConflict, wi, workItemData{
			ReplyText: text, From: from, FormError: "The reply was not sent: no outbound mailbox is enabled. Ask an administrator to set one up on the Mailboxes page.",
		})
		return
	case errors.Is(err, outbound.ErrNoSender):
		h.renderWorkItem(w, r, v, http.StatusUnprocessableEntity, wi, workItemData{
			ReplyText: text, From: from, FormError: "The reply was not sent: " + err.Error() + ".",
		})
		return
	case err != nil:
		h.logger.ErrorContext(ctx, "reply", slog.Int64("work_item_id", id), slog.Any("error", err))
		h.renderWorkItem(w, r, v, http.StatusInternalServerError, wi, workItemData{
			ReplyText: text, From: from, FormError: "The reply was not sent because of an internal error; the server log has the details. Try again in a moment.",
		})
		return
	}
	h.logger.InfoContext(ctx, "reply queued", slog.Int64("work_item_id", id), slog.Int64("outbox_id", ob.ID), slog.String("user", v.User.Username))
	h.presence.stopTyping(id, v.Session.TokenHash)
	h.dropDraft(r, v, id)
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: flashReplySent, id: id}, ob.ID)
	http.Redirect(w, r, fmt.Sprintf("/workitems/%d#replies", id), http.StatusSeeOther)
}

// formFiles lists the files of a multipart form field (none for a form without files).
// They are not read here: each is streamed from the form's spool into the composed reply.
func formFiles(r *http.Request, field string) ([]outbound.Attachment, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	var out []outbound.Attachment
	for _, fh := range r.MultipartForm.File[field] {
		if fh.Size == 0 && fh.Filename == "" {
			continue // the empty file input of a form sent without a file
		}
		out = append(out, outbound.Attachment{Filename: fh.Filename, ContentType: fh.Header.Get("Content-Type"), Size: fh.Size,
			Open: func() (io.ReadCloser, error) { return fh.Open() }})
	}
	return out, nil
}

// addNote records an internal note from the item page.
func (h *handler) addNote(w http.ResponseWriter, r *http.Request, v viewer) {
	wi, ok := h.pathWorkItem(w, r)
	if !ok {
		return
	}
	id, ctx := wi.ID, r.Context()
	text := r.PostForm.Get("note")
	if _, err := workitem.AddNote(ctx, h.st, v.User, id, text); err != nil {
		if errors.Is(err, workitem.ErrBadNote) {
			h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{NoteText: text, Errors: map[string]string{"note": workitem.NoteFieldError}})
			return
		}
		h.storeError(w, r, "note", err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/workitems/%d#notes", id), http.StatusSeeOther)
}
