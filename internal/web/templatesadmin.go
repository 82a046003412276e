package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/compose"
	"github.com/postroom/postroom/internal/store"
)

// The Templates page (/templates): canned responses and signatures, edited by supervisors
// and admins; and the automatic messages page (/routing/automatic): the acknowledgements
// of each queue with their switches, the over-size notice and the limits, edited by
// admins through internal/automsg as the API does.

func (h *handler) templateRoutes(mux *pageMux) {
	sup, adm := store.RoleSupervisor, store.RoleAdmin
	mux.page("GET /templates", sup, h.templatesPage)
	mux.page("POST /templates/responses", sup, h.templatesSaveResponse)
	mux.page("POST /templates/signatures", sup, h.templatesSaveSignature)
	mux.page("GET /routing/automatic", sup, h.automaticPage)
	mux.page("POST /routing/automatic", adm, h.automaticSave)
}

type templatesData struct {
	Responses  []store.ResponseTemplate
	Signatures []store.Signature
	Queues     []store.Queue
	QueueNames map[int64]string
	Fields     []string
	// New is the add form shown again after an error.
	New        store.ResponseTemplate
	NewSig     store.Signature
	Notice     string
	Error      string
	Precedence string
}

func (h *handler) templatesPage(w http.ResponseWriter, r *http.Request, v viewer) {
	d := templatesData{}
	if _, ok := h.flash.take(flashKey{session: v.Session.TokenHash, kind: "templates-saved"}); ok {
		d.Notice = "Saved."
	}
	h.renderTemplates(w, r, v, http.StatusOK, d)
}

func (h *handler) renderTemplates(w http.ResponseWriter, r *http.Request, v viewer, status int, d templatesData) {
	ctx := r.Context()
	var err error
	if d.Responses, err = h.st.ResponseTemplates(ctx); err != nil {
		h.serverError(w, r, "read the templates", err)
		return
	}
	if d.Signatures, err = h.st.Signatures(ctx); err != nil {
		h.serverError(w, r, "read the signatures", err)
		return
	}
	if d.Queues, err = h.st.ListQueues(ctx); err != nil {
		h.serverError(w, r, "read the queues", err)
		return
	}
	d.QueueNames = map[int64]string{}
	for _, q := range d.Queues {
		d.QueueNames[q.ID] = q.Name
	}
	d.Fields = compose.FieldNames
	d.Precedence = "A reply gets the signature of the From address it is sent from; without one, the signature of the work item's queue; without either, none."
	h.render(w, r, status, "templates", h.data(v, "Templates", "templates", d))
}

func (h *handler) templatesSaved(w http.ResponseWriter, r *http.Request, v viewer) {
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: "templates-saved"}, true)
	http.Redirect(w, r, "/templates", http.StatusSeeOther)
}

func (h *handler) templatesSaveResponse(w http.ResponseWriter, r *http.Request, v viewer) {
	p := r.PostForm
	id, _ := strconv.ParseInt(p.Get("id"), 10, 64)
	qid, _ := strconv.ParseInt(p.Get("queue_id"), 10, 64)
	ctx := r.Context()
	if p.Get("op") == "delete" {
		if err := h.st.DeleteResponseTemplate(ctx, id); err != nil && !store.IsNotFound(err) {
			h.serverError(w, r, "delete the template", err)
			return
		}
		h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "response_template.delete", Object: fmt.Sprintf("response_template:%d", id)})
		h.templatesSaved(w, r, v)
		return
	}
	t := store.ResponseTemplate{ID: id, QueueID: qid, Name: p.Get("name"), Body: p.Get("body")}
	fail := func(msg string) {
		d := templatesData{Error: "The template " + strconv.Quote(strings.TrimSpace(t.Name)) + " was not saved: " + msg}
		if id == 0 {
			d.New = t
		}
		h.renderTemplates(w, r, v, http.StatusBadRequest, d)
	}
	if err := compose.ValidateResponse(t.Name, t.Body); err != nil {
		fail(err.Error())
		return
	}
	if qid != 0 {
		if _, err := h.st.Queue(ctx, qid); err != nil {
			fail("choose a queue from the list")
			return
		}
	}
	saved, err := h.st.SaveResponseTemplate(ctx, t)
	switch {
	case errors.Is(err, store.ErrConflict):
		fail("another template of this queue has this name: choose another.")
		return
	case err != nil:
		h.storeError(w, r, "template", err)
		return
	}
	h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "response_template.save", Object: fmt.Sprintf("response_template:%d", saved.ID),
		New: fmt.Sprintf("name=%q queue=%d", saved.Name, saved.QueueID)})
	h.templatesSaved(w, r, v)
}

func (h *handler) templatesSaveSignature(w http.ResponseWriter, r *http.Request, v viewer) {
	p := r.PostForm
	ctx := r.Context()
	if p.Get("op") == "delete" {
		id, _ := strconv.ParseInt(p.Get("id"), 10, 64)
		if err := h.st.DeleteSignature(ctx, id); err != nil && !store.IsNotFound(err) {
			h.serverError(w, r, "delete the signature", err)
			return
		}
		h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "signature.delete", Object: fmt.Sprintf("signature:%d", id)})
		h.templatesSaved(w, r, v)
		return
	}
	qid, _ := strconv.ParseInt(p.Get("queue_id"), 10, 64)
	g := store.Signature{Address: strings.TrimSpace(p.Get("address")), QueueID: qid, Body: p.Get("body")}
	fail := func(msg string) {
		h.renderTemplates(w, r, v, http.StatusBadRequest, templatesData{NewSig: g, Error: "The signature was not saved: " + msg})
	}
	switch {
	case (g.Address == "") == (g.QueueID == 0):
		fail("give either a From address or a queue, not both.")
		return
	case g.Address != "" && !strings.Contains(g.Address, "@"):
		fail("write an email address, like help@example.com.")
		return
	}
	if g.QueueID != 0 {
		if _, err := h.st.Queue(ctx, g.QueueID); err != nil {
			fail("choose a queue from the list.")
			return
		}
	}
	if err := compose.ValidateSignature(g.Body); err != nil {
		fail(err.Error())
		return
	}
	saved, err := h.st.SetSignature(ctx, g)
	if err != nil {
		h.storeError(w, r, "signature", err)
		return
	}
	h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "signature.save", Object: fmt.Sprintf("signature:%d", saved.ID),
		New: fmt.Sprintf("address=%s queue=%d", saved.Address, saved.QueueID)})
	h.templatesSaved(w, r, v)
}

// autoTemplateView is one automatic message template on the page.
type autoTemplateView struct {
	Name, Label string
	Text        automsg.Text
	Enabled     bool
}

type autoQueueView struct {
	Queue     store.Queue
	Templates []autoTemplateView
}

type automaticData struct {
	Global []autoTemplateView
	Queues []autoQueueView
	Limits automsg.Limits
	Fields []string
	Notice string
	Error  string
}

var autoLabels = map[string]string{
	automsg.NameOversize: "Over-size notice", automsg.NameAckOpen: "Acknowledgement in open hours",
	automsg.NameAckClosed: "Acknowledgement in closed hours", automsg.NameAckHoliday: "Acknowledgement on holidays",
}

func (h *handler) autoViews(r *http.Request, queueID int64, names []string) ([]autoTemplateView, error) {
	list, err := h.st.AutoTemplates(r.Context(), queueID)
	if err != nil {
		return nil, err
	}
	var out []autoTemplateView
	for _, n := range names {
		text, on, _ := automsg.Pick(list, queueID, n)
		out = append(out, autoTemplateView{Name: n, Label: autoLabels[n], Text: text, Enabled: on})
	}
	return out, nil
}

func (h *handler) automaticPage(w http.ResponseWriter, r *http.Request, v viewer) {
	d := automaticData{}
	if _, ok := h.flash.take(flashKey{session: v.Session.TokenHash, kind: "automatic-saved"}); ok {
		d.Notice = "Saved."
	}
	h.renderAutomatic(w, r, v, http.StatusOK, d)
}

func (h *handler) renderAutomatic(w http.ResponseWriter, r *http.Request, v viewer, status int, d automaticData) {
	ctx := r.Context()
	var err error
	if d.Global, err = h.autoViews(r, 0, automsg.GlobalNames); err != nil {
		h.serverError(w, r, "read the automatic messages", err)
		return
	}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		h.serverError(w, r, "read the queues", err)
		return
	}
	for _, q := range queues {
		views, err := h.autoViews(r, q.ID, automsg.QueueNames)
		if err != nil {
			h.serverError(w, r, "read the automatic messages", err)
			return
		}
		d.Queues = append(d.Queues, autoQueueView{Queue: q, Templates: views})
	}
	if d.Limits, err = automsg.LoadLimits(ctx, h.st); err != nil {
		h.serverError(w, r, "read the limits", err)
		return
	}
	d.Fields = automsg.FieldNames
	h.render(w, r, status, "automatic", h.data(v, "Automatic messages", "routing", d))
}

// automaticSave saves one form of the page: op=template (queue_id, name, enabled, subject,
// body) or op=limits.
func (h *handler) automaticSave(w http.ResponseWriter, r *http.Request, v viewer) {
	p := r.PostForm
	ctx := r.Context()
	fail := func(msg string) {
		h.renderAutomatic(w, r, v, http.StatusBadRequest, automaticData{Error: msg})
	}
	switch p.Get("op") {
	case "limits":
		var l automsg.Limits
		var err1, err2, err3 error
		l.PerConversation, err1 = strconv.Atoi(strings.TrimSpace(p.Get("per_conversation")))
		l.PerAddress, err2 = strconv.Atoi(strings.TrimSpace(p.Get("per_address")))
		hours, err3 := strconv.ParseFloat(strings.TrimSpace(p.Get("window_h")), 64)
		if err1 != nil || err2 != nil || err3 != nil {
			fail("The limits were not saved: enter whole numbers of messages and the window in hours.")
			return
		}
		l.WindowS = int64(hours * 3600)
		if err := automsg.SaveLimits(ctx, h.st, l); err != nil {
			if errors.Is(err, automsg.ErrInvalid) {
				fail("The limits were not saved: " + err.Error())
				return
			}
			h.serverError(w, r, "save the limits", err)
			return
		}
		h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "auto_limits.save", Object: "auto_limits",
			New: fmt.Sprintf("per_conversation=%d per_address=%d window_s=%d", l.PerConversation, l.PerAddress, l.WindowS)})
	case "template":
		qid, _ := strconv.ParseInt(p.Get("queue_id"), 10, 64)
		name := p.Get("name")
		known, perQueue := automsg.KnownName(name)
		if !known || perQueue != (qid != 0) {
			fail("Unknown automatic message: use the forms of this page.")
			return
		}
		if qid != 0 {
			if _, err := h.st.Queue(ctx, qid); err != nil {
				fail("Unknown queue: use the forms of this page.")
				return
			}
		}
		t := automsg.Text{Subject: p.Get("subject"), Body: p.Get("body")}
		if err := automsg.Validate(t); err != nil {
			fail(autoLabels[name] + " was not saved: " + err.Error())
			return
		}
		enabled := p.Get("enabled") != ""
		if err := h.st.SetAutoTemplate(ctx, store.AutoTemplate{QueueID: qid, Name: name, Enabled: enabled, Subject: t.Subject, Body: t.Body}); err != nil {
			h.serverError(w, r, "save the automatic message", err)
			return
		}
		h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "auto_template.save", Object: fmt.Sprintf("queue:%d", qid),
			New: fmt.Sprintf("name=%s enabled=%t", name, enabled)})
	default:
		fail("Unknown form: use the forms of this page.")
		return
	}
	h.flash.put(flashKey{session: v.Session.TokenHash, kind: "automatic-saved"}, true)
	http.Redirect(w, r, "/routing/automatic", http.StatusSeeOther)
}

// autoFormView is one automatic message's form (the "autotemplate" block).
type autoFormView struct {
	CSRF    string
	Admin   bool
	QueueID int64
	T       autoTemplateView
}
