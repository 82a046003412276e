package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/compose"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

// responseJSON is a canned response.
type responseJSON struct {
	ID        int64     `json:"id"`
	QueueID   int64     `json:"queue_id"` // 0: offered on every work item
	Queue     string    `json:"queue,omitempty"`
	Name      string    `json:"name"`
	Body      string    `json:"body"`
	UpdatedAt time.Time `json:"updated_at"`
}

// signatureJSON is a signature of a From address or a queue.
type signatureJSON struct {
	ID        int64     `json:"id"`
	Address   string    `json:"address,omitempty"`
	QueueID   int64     `json:"queue_id,omitempty"`
	Queue     string    `json:"queue,omitempty"`
	Body      string    `json:"body"`
	UpdatedAt time.Time `json:"updated_at"`
}

// draftJSON is a reply being written.
type draftJSON struct {
	Text      string     `json:"text"`
	Cc        []string   `json:"cc"`
	Bcc       []string   `json:"bcc"`
	From      string     `json:"from"`
	ReplyAll  bool       `json:"reply_all"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// queueNamesOrNone maps queue ids to names for the listings (empty when they cannot be
// read: the ids are still there).
func (s *server) queueNamesOrNone(r *http.Request) map[int64]string {
	names, err := s.queueNames(r.Context())
	if err != nil {
		s.logger.WarnContext(r.Context(), "list queues", slog.Any("error", err))
	}
	return names
}

func toResponseJSON(t store.ResponseTemplate, names map[int64]string) responseJSON {
	return responseJSON{ID: t.ID, QueueID: t.QueueID, Queue: names[t.QueueID], Name: t.Name, Body: t.Body, UpdatedAt: t.UpdatedAt}
}

func (s *server) listResponses(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.ResponseTemplates(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the canned responses", err)
		return
	}
	names := s.queueNamesOrNone(r)
	out := make([]responseJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toResponseJSON(t, names))
	}
	writeJSON(w, http.StatusOK, struct {
		Templates []responseJSON `json:"templates"`
		Fields    []string       `json:"fields"`
	}{out, compose.FieldNames})
}

func (s *server) getResponse(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "canned response")
	if !ok {
		return
	}
	t, err := s.st.ResponseTemplate(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("canned response %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toResponseJSON(t, s.queueNamesOrNone(r)))
}

// checkQueueField adds a field error when queue id is neither 0 nor a queue.
func (s *server) checkQueueField(r *http.Request, id int64, fields map[string]string) {
	if id == 0 {
		return
	}
	if _, err := s.st.Queue(r.Context(), id); err != nil {
		fields["queue_id"] = fmt.Sprintf("there is no queue %d: give a queue's id, or 0 for every queue", id)
	}
}

// saveResponse creates (POST) or replaces (PUT …/{id}) a canned response:
// {"queue_id", "name", "body"}.
func (s *server) saveResponse(create bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
		var id int64
		if !create {
			var ok bool
			if id, ok = pathID(w, r, "canned response"); !ok {
				return
			}
		}
		var in struct {
			QueueID int64  `json:"queue_id"`
			Name    string `json:"name"`
			Body    string `json:"body"`
		}
		if !decodeBody(w, r, &in) {
			return
		}
		fields := map[string]string{}
		if err := compose.ValidateResponse(in.Name, in.Body); err != nil {
			key := "body"
			if strings.Contains(err.Error(), "the name") {
				key = "name"
			}
			fields[key] = err.Error()
		}
		s.checkQueueField(r, in.QueueID, fields)
		if len(fields) > 0 {
			writeInvalid(w, "the canned response", fields)
			return
		}
		t, err := s.st.SaveResponseTemplate(r.Context(), store.ResponseTemplate{ID: id, QueueID: in.QueueID, Name: in.Name, Body: in.Body})
		switch {
		case errors.Is(err, store.ErrConflict):
			writeInvalid(w, "the canned response", map[string]string{"name": "another template of this queue has this name: choose another"})
			return
		case err != nil:
			s.writeStoreError(w, r, fmt.Sprintf("canned response %d", id), err)
			return
		}
		s.audit(r, store.AuditEvent{Actor: user.Username, Action: "response_template.save", Object: fmt.Sprintf("response_template:%d", t.ID),
			New: fmt.Sprintf("name=%q queue=%d", t.Name, t.QueueID)})
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		writeJSON(w, status, toResponseJSON(t, s.queueNamesOrNone(r)))
	}
}

func (s *server) deleteResponse(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "canned response")
	if !ok {
		return
	}
	if err := s.st.DeleteResponseTemplate(r.Context(), id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("canned response %d", id), err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "response_template.delete", Object: fmt.Sprintf("response_template:%d", id)})
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listSignatures(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.Signatures(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the signatures", err)
		return
	}
	names := s.queueNamesOrNone(r)
	out := make([]signatureJSON, 0, len(list))
	for _, g := range list {
		out = append(out, signatureJSON{ID: g.ID, Address: g.Address, QueueID: g.QueueID, Queue: names[g.QueueID], Body: g.Body, UpdatedAt: g.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, struct {
		Signatures []signatureJSON `json:"signatures"`
		Fields     []string        `json:"fields"`
		Precedence string          `json:"precedence"`
	}{out, compose.FieldNames, "the signature of the From address a reply is sent from wins over the signature of the work item's queue"})
}

// putSignature stores the signature of a From address or of a queue: {"address" or
// "queue_id", "body"}, replacing the one it had.
func (s *server) putSignature(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var in struct {
		Address string `json:"address"`
		QueueID int64  `json:"queue_id"`
		Body    string `json:"body"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	in.Address = strings.TrimSpace(in.Address)
	fields := map[string]string{}
	switch {
	case (in.Address == "") == (in.QueueID == 0):
		fields["address"] = "give either the From address (address) or the queue (queue_id) the signature belongs to, not both"
	case in.Address != "" && !strings.Contains(in.Address, "@"):
		fields["address"] = "write an email address, like help@example.com"
	default:
		s.checkQueueField(r, in.QueueID, fields)
	}
	if err := compose.ValidateSignature(in.Body); err != nil {
		fields["body"] = err.Error()
	}
	if len(fields) > 0 {
		writeInvalid(w, "the signature", fields)
		return
	}
	g, err := s.st.SetSignature(r.Context(), store.Signature{Address: in.Address, QueueID: in.QueueID, Body: in.Body})
	if err != nil {
		s.writeStoreError(w, r, "the signature", err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "signature.save", Object: fmt.Sprintf("signature:%d", g.ID),
		New: fmt.Sprintf("address=%s queue=%d", g.Address, g.QueueID)})
	writeJSON(w, http.StatusOK, signatureJSON{ID: g.ID, Address: g.Address, QueueID: g.QueueID, Queue: s.queueNamesOrNone(r)[g.QueueID], Body: g.Body, UpdatedAt: g.UpdatedAt})
}

func (s *server) deleteSignature(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "signature")
	if !ok {
		return
	}
	if err := s.st.DeleteSignature(r.Context(), id); err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("signature %d", id), err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "signature.delete", Object: fmt.Sprintf("signature:%d", id)})
	w.WriteHeader(http.StatusNoContent)
}

// signatureFor returns the rendered signature of a reply by user on work item id sent
// from from ("" for the default address): "" when none applies or no address can send
// (the reply itself then says why). ok is false when a response was written.
func (s *server) signatureFor(w http.ResponseWriter, r *http.Request, user store.User, id int64, from string) (sig string, ok bool) {
	ctx := r.Context()
	wi, err := s.st.WorkItem(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return "", false
	}
	if s.replier == nil {
		return "", true
	}
	choices, err := s.replier.FromChoices(ctx, id)
	if err != nil && !errors.Is(err, outbound.ErrNoOutboundMailbox) {
		s.writeStoreError(w, r, "the From addresses", err)
		return "", false
	}
	addr, err := compose.ResolveFrom(from, choices)
	if err != nil {
		return "", true
	}
	list, err := s.st.Signatures(ctx)
	if err != nil {
		s.writeStoreError(w, r, "the signatures", err)
		return "", false
	}
	sig, err = compose.Signature(list, addr, wi, user)
	if err != nil {
		writeError(w, http.StatusConflict, "the signature cannot be filled in: "+err.Error()+
			"; a supervisor can correct it on the Templates page, or send with \"signature\": false")
		return "", false
	}
	return sig, true
}

// offeredResponses lists the canned responses offered on a work item, filled in for the
// caller, with the signature the reply would get from the default (or ?from=) address.
func (s *server) offeredResponses(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	sig, ok := s.signatureFor(w, r, user, id, r.URL.Query().Get("from"))
	if !ok {
		return
	}
	ctx := r.Context()
	wi, err := s.st.WorkItem(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	list, err := s.st.ResponseTemplates(ctx)
	if err != nil {
		s.writeStoreError(w, r, "the canned responses", err)
		return
	}
	type filled struct {
		ID      int64  `json:"id"`
		QueueID int64  `json:"queue_id"`
		Name    string `json:"name"`
		Text    string `json:"text"`
	}
	out := []filled{}
	vars := compose.VarsFor(wi, user)
	for _, t := range compose.Offered(list, wi.QueueID) {
		text, err := compose.Render(t.Body, vars)
		if err != nil {
			s.logger.WarnContext(ctx, "fill canned response", slog.Int64("template_id", t.ID), slog.Any("error", err))
			continue
		}
		out = append(out, filled{ID: t.ID, QueueID: t.QueueID, Name: t.Name, Text: text})
	}
	writeJSON(w, http.StatusOK, struct {
		Templates []filled `json:"templates"`
		Signature string   `json:"signature"`
	}{out, sig})
}

func (s *server) getDraft(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	d, err := s.st.Draft(r.Context(), user.ID, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("you have no draft on work item %d", id))
			return
		}
		s.writeStoreError(w, r, "the draft", err)
		return
	}
	writeJSON(w, http.StatusOK, toDraftJSON(d))
}

func toDraftJSON(d store.Draft) draftJSON {
	at := d.UpdatedAt
	out := draftJSON{Text: d.Text, Cc: d.Cc, Bcc: d.Bcc, From: d.From, ReplyAll: d.ReplyAll, UpdatedAt: &at}
	if out.Cc == nil {
		out.Cc = []string{}
	}
	if out.Bcc == nil {
		out.Bcc = []string{}
	}
	return out
}

// maxDraftBytes bounds a draft's text (a reply's text, without attachments).
const maxDraftBytes = 1 << 20

func (s *server) putDraft(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	var in draftJSON
	if !decodeBodyLimit(w, r, &in, 2*maxDraftBytes) {
		return
	}
	if len(in.Text) > maxDraftBytes {
		writeFieldErrors(w, map[string]string{"text": fmt.Sprintf("the draft is longer than %d KB: shorten it", maxDraftBytes>>10)})
		return
	}
	d, err := s.st.SaveDraft(r.Context(), store.Draft{UserID: user.ID, WorkItemID: id, Text: in.Text, Cc: in.Cc, Bcc: in.Bcc,
		From: in.From, ReplyAll: in.ReplyAll})
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("work item %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toDraftJSON(d))
}

func (s *server) deleteDraft(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	if err := s.st.DeleteDraft(r.Context(), user.ID, id); err != nil {
		s.writeStoreError(w, r, "the draft", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
