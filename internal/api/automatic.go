package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/store"
)

// autoTemplateJSON is the template of an automatic message.
type autoTemplateJSON struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	// Default is true when nothing is saved: the shipped text is shown.
	Default   bool       `json:"default"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// autoTemplateInput is what a PUT of one template takes.
type autoTemplateInput struct {
	Name    string `json:"name,omitempty"`
	Enabled bool   `json:"enabled"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// autoTemplates returns the templates names of queueID, stored or default.
func (s *server) autoTemplates(w http.ResponseWriter, r *http.Request, queueID int64, names []string) ([]autoTemplateJSON, bool) {
	list, err := s.st.AutoTemplates(r.Context(), queueID)
	if err != nil {
		s.writeStoreError(w, r, "the automatic message templates", err)
		return nil, false
	}
	out := make([]autoTemplateJSON, 0, len(names))
	for _, n := range names {
		text, on, _ := automsg.Pick(list, queueID, n)
		v := autoTemplateJSON{Name: n, Enabled: on, Subject: text.Subject, Body: text.Body, Default: true}
		for _, t := range list {
			if t.Name == n {
				at := t.UpdatedAt
				v.Default, v.UpdatedAt = false, &at
			}
		}
		out = append(out, v)
	}
	return out, true
}

// queueOf answers 404 when queue id does not exist.
func (s *server) queueOf(w http.ResponseWriter, r *http.Request) (store.Queue, bool) {
	id, ok := pathID(w, r, "queue")
	if !ok {
		return store.Queue{}, false
	}
	q, err := s.st.Queue(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("queue %d", id), err)
		return store.Queue{}, false
	}
	return q, true
}

func (s *server) getQueueAutoReplies(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	q, ok := s.queueOf(w, r)
	if !ok {
		return
	}
	s.writeQueueAutoReplies(w, r, q)
}

func (s *server) writeQueueAutoReplies(w http.ResponseWriter, r *http.Request, q store.Queue) {
	list, ok := s.autoTemplates(w, r, q.ID, automsg.QueueNames)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		QueueID   int64              `json:"queue_id"`
		Queue     string             `json:"queue"`
		Templates []autoTemplateJSON `json:"templates"`
		Fields    []string           `json:"fields"`
	}{q.ID, q.Name, list, automsg.FieldNames})
}

// putQueueAutoReplies saves a queue's acknowledgements: {"templates": [{"name", "enabled",
// "subject", "body"}]}, any of acknowledgement_open, _closed and _holiday. Nothing is saved
// unless every template is valid.
func (s *server) putQueueAutoReplies(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	q, ok := s.queueOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Templates []autoTemplateInput `json:"templates"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	fields := map[string]string{}
	for i, t := range body.Templates {
		if known, perQueue := automsg.KnownName(t.Name); !known || !perQueue {
			fields[fmt.Sprintf("templates[%d].name", i)] = "use one of " + strings.Join(automsg.QueueNames, ", ")
			continue
		}
		if err := automsg.Validate(automsg.Text{Subject: t.Subject, Body: t.Body}); err != nil {
			fields[fmt.Sprintf("templates[%d] (%s)", i, t.Name)] = err.Error()
		}
	}
	if len(fields) > 0 {
		writeInvalid(w, "the acknowledgement templates", fields)
		return
	}
	for _, t := range body.Templates {
		if err := s.st.SetAutoTemplate(r.Context(), store.AutoTemplate{QueueID: q.ID, Name: t.Name, Enabled: t.Enabled, Subject: t.Subject, Body: t.Body}); err != nil {
			s.writeStoreError(w, r, "the acknowledgement templates", err)
			return
		}
		s.audit(r, store.AuditEvent{Actor: user.Username, Action: "auto_template.save", Object: fmt.Sprintf("queue:%d", q.ID),
			New: fmt.Sprintf("name=%s enabled=%t", t.Name, t.Enabled)})
	}
	s.writeQueueAutoReplies(w, r, q)
}

func (s *server) listAutoTemplates(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, ok := s.autoTemplates(w, r, 0, automsg.GlobalNames)
	if !ok {
		return
	}
	limits, err := automsg.LoadLimits(r.Context(), s.st)
	if err != nil {
		s.writeStoreError(w, r, "the automatic message limits", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Templates []autoTemplateJSON `json:"templates"`
		Limits    automsg.Limits     `json:"limits"`
		Fields    []string           `json:"fields"`
	}{list, limits, automsg.FieldNames})
}

// globalName answers 404 for a name that is not a global template.
func globalName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if known, perQueue := automsg.KnownName(name); !known || perQueue {
		msg := fmt.Sprintf("automatic message template %q not found: the global ones are %s", name, strings.Join(automsg.GlobalNames, ", "))
		if perQueue {
			msg += "; acknowledgements belong to a queue: use /api/v1/queues/{id}/auto-replies"
		}
		writeError(w, http.StatusNotFound, msg)
		return "", false
	}
	return name, true
}

func (s *server) getAutoTemplate(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	name, ok := globalName(w, r)
	if !ok {
		return
	}
	if list, ok := s.autoTemplates(w, r, 0, []string{name}); ok {
		writeJSON(w, http.StatusOK, list[0])
	}
}

func (s *server) putAutoTemplate(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	name, ok := globalName(w, r)
	if !ok {
		return
	}
	var in autoTemplateInput
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Name != "" && in.Name != name {
		writeInvalid(w, "the template", map[string]string{"name": fmt.Sprintf("leave it out or write %q, the name in the path", name)})
		return
	}
	if err := automsg.Validate(automsg.Text{Subject: in.Subject, Body: in.Body}); err != nil {
		writeInvalid(w, "the template", map[string]string{name: err.Error()})
		return
	}
	if err := s.st.SetAutoTemplate(r.Context(), store.AutoTemplate{Name: name, Enabled: in.Enabled, Subject: in.Subject, Body: in.Body}); err != nil {
		s.writeStoreError(w, r, "the template", err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "auto_template.save", Object: "auto_template:" + name,
		New: fmt.Sprintf("enabled=%t", in.Enabled)})
	if list, ok := s.autoTemplates(w, r, 0, []string{name}); ok {
		writeJSON(w, http.StatusOK, list[0])
	}
}

func (s *server) getAutoLimits(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	l, err := automsg.LoadLimits(r.Context(), s.st)
	if err != nil {
		s.writeStoreError(w, r, "the automatic message limits", err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *server) putAutoLimits(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var l automsg.Limits
	if !decodeBody(w, r, &l) {
		return
	}
	if err := l.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := automsg.SaveLimits(r.Context(), s.st, l); err != nil {
		s.writeStoreError(w, r, "the automatic message limits", err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "auto_limits.save", Object: "auto_limits",
		New: fmt.Sprintf("per_conversation=%d per_address=%d window_s=%d", l.PerConversation, l.PerAddress, l.WindowS)})
	writeJSON(w, http.StatusOK, l)
}
