package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/compose"
	"github.com/postroom/postroom/internal/store"
)

// The reply box's helpers on the work item page: canned responses ("Use template"
// re-renders the box with the filled-in text), the signature a reply gets (shown as a
// preview, appended when sent) and the draft kept on the server ("Save draft"; restored
// when the page is opened again, on any device; deleted when the reply is sent).
// Attachments are not part of a draft.

const flashDraftSaved = "draft-saved" // a draft just saved from the item page

// composeView is what the reply box shows besides the text and the From address.
type composeView struct {
	Templates  []store.ResponseTemplate
	TemplateID int64
	Signature  string
	Cc, Bcc    string
	ReplyAll   bool
	// HasDraft: a draft is stored; DraftAt is when it was saved.
	HasDraft   bool
	DraftAt    time.Time
	DraftSaved bool // the page follows a "Save draft"
}

// fillReplyBox completes d (whose Froms and From are set) for the reply box: the form as
// posted, or on a GET the user's draft; the offered templates and the signature preview.
func (h *handler) fillReplyBox(r *http.Request, v viewer, wi store.WorkItem, d *workItemData) {
	ctx := r.Context()
	c := &d.ReplyBox
	if r.Method == http.MethodGet {
		_, c.DraftSaved = h.flash.take(flashKey{session: v.Session.TokenHash, kind: flashDraftSaved, id: wi.ID})
	}
	if r.Method == http.MethodPost {
		p := r.PostForm
		c.Cc, c.Bcc, c.ReplyAll = p.Get("cc"), p.Get("bcc"), p.Get("reply_all") != ""
		c.TemplateID, _ = strconv.ParseInt(p.Get("template_id"), 10, 64)
	}
	draft, err := h.st.Draft(ctx, v.User.ID, wi.ID)
	switch {
	case err == nil:
		c.HasDraft, c.DraftAt = true, draft.UpdatedAt
		if r.Method == http.MethodGet && d.ReplyText == "" {
			d.ReplyText, c.Cc, c.Bcc, c.ReplyAll = draft.Text, strings.Join(draft.Cc, ", "), strings.Join(draft.Bcc, ", "), draft.ReplyAll
			if draft.From != "" {
				d.From = draft.From
			}
		}
	case !store.IsNotFound(err):
		h.logger.WarnContext(ctx, "read draft", slog.Int64("work_item_id", wi.ID), slog.Any("error", err))
	}
	if list, err := h.st.ResponseTemplates(ctx); err != nil {
		h.logger.WarnContext(ctx, "list canned responses", slog.Any("error", err))
	} else {
		c.Templates = compose.Offered(list, wi.QueueID)
	}
	if addr, err := compose.ResolveFrom(d.From, d.Froms); err == nil {
		if sig, err := h.signature(r, v, wi, addr); err == nil {
			c.Signature = sig
		}
	}
}

// signature returns the rendered signature of a reply on wi sent from addr.
func (h *handler) signature(r *http.Request, v viewer, wi store.WorkItem, addr string) (string, error) {
	list, err := h.st.Signatures(r.Context())
	if err != nil {
		return "", fmt.Errorf("list signatures: %w", err)
	}
	return compose.Signature(list, addr, wi, v.User)
}

// signReply appends the signature of the From address the reply goes out from (else of
// the item's queue) to text.
func (h *handler) signReply(r *http.Request, v viewer, wi store.WorkItem, from, text string) (string, error) {
	choices, err := h.replier.FromChoices(r.Context(), wi.ID)
	if err != nil {
		return text, nil // the reply itself says what is wrong with the From addresses
	}
	addr, err := compose.ResolveFrom(from, choices)
	if err != nil {
		return text, nil
	}
	sig, err := h.signature(r, v, wi, addr)
	if err != nil {
		return "", err
	}
	return compose.Append(text, sig), nil
}

// composeAction handles the reply box's other buttons: "Use template" (op=template),
// "Save draft" (op=draft) and "Discard draft" (op=discard).
func (h *handler) composeAction(w http.ResponseWriter, r *http.Request, v viewer) {
	wi, ok := h.pathWorkItem(w, r)
	if !ok {
		return
	}
	id, ctx := wi.ID, r.Context()
	p := r.PostForm
	text, from := p.Get("text"), strings.TrimSpace(p.Get("from"))
	switch p.Get("op") {
	case "template":
		tid, _ := strconv.ParseInt(p.Get("template_id"), 10, 64)
		t, err := h.st.ResponseTemplate(ctx, tid)
		if err != nil || (t.QueueID != 0 && t.QueueID != wi.QueueID) {
			h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{ReplyText: text, From: from,
				Errors: map[string]string{"template_id": "choose a template from the list"}})
			return
		}
		filled, err := compose.Render(t.Body, compose.VarsFor(wi, v.User))
		if err != nil {
			h.renderWorkItem(w, r, v, http.StatusConflict, wi, workItemData{ReplyText: text, From: from,
				Errors: map[string]string{"template_id": "this template cannot be filled in: " + err.Error() + " Ask a supervisor to correct it on the Templates page."}})
			return
		}
		if strings.TrimSpace(text) != "" {
			filled = strings.TrimRight(text, " \t\r\n") + "\n\n" + filled
		}
		h.renderWorkItem(w, r, v, http.StatusOK, wi, workItemData{ReplyText: filled, From: from})
	case "draft":
		_, err := h.st.SaveDraft(ctx, store.Draft{UserID: v.User.ID, WorkItemID: id, Text: text, From: from,
			Cc: []string{p.Get("cc")}, Bcc: []string{p.Get("bcc")}, ReplyAll: p.Get("reply_all") != ""})
		if err != nil {
			h.storeError(w, r, "draft", err)
			return
		}
		if p.Get("autosave") != "" { // the page's script saving as the agent writes
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.flash.put(flashKey{session: v.Session.TokenHash, kind: flashDraftSaved, id: id}, 0)
		http.Redirect(w, r, fmt.Sprintf("/workitems/%d#reply", id), http.StatusSeeOther)
	case "discard":
		if err := h.st.DeleteDraft(ctx, v.User.ID, id); err != nil {
			h.storeError(w, r, "draft", err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/workitems/%d#reply", id), http.StatusSeeOther)
	default:
		h.renderWorkItem(w, r, v, http.StatusBadRequest, wi, workItemData{ReplyText: text, From: from,
			FormError: "Unknown button: use Use template, Save draft or one of the Send buttons."})
	}
}

// dropDraft deletes the draft of a reply just sent.
func (h *handler) dropDraft(r *http.Request, v viewer, id int64) {
	if err := h.st.DeleteDraft(r.Context(), v.User.ID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.logger.WarnContext(r.Context(), "delete the sent reply's draft", slog.Int64("work_item_id", id), slog.Any("error", err))
	}
}
