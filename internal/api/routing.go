package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// routingItemJSON adds the routing fields to a work item's JSON.
type routingItemJSON struct {
	workItemJSON
	QueueID         int64             `json:"queue_id"`
	Queue           string            `json:"queue"`
	Category        string            `json:"category,omitempty"`
	Tags            []string          `json:"tags"`
	Priority        int               `json:"priority"`
	Breakdown       routing.Breakdown `json:"priority_breakdown"`
	Skills          map[string]int    `json:"required_skills,omitempty"`
	Language        string            `json:"required_language,omitempty"`
	SLADueAt        *time.Time        `json:"sla_due_at"`
	SLAAtRiskAt     *time.Time        `json:"sla_at_risk_at,omitempty"`
	FirstResponseAt *time.Time        `json:"first_response_at,omitempty"`
	OfferedTo       int64             `json:"offered_to,omitempty"`
	OfferExpiresAt  *time.Time        `json:"offer_expires_at,omitempty"`
	Flag            string            `json:"flag,omitempty"`
	AssignedName    string            `json:"assigned_name,omitempty"`
	Actions         []workitem.Action `json:"actions"`
}

// itemJSON is the JSON of a work item as user sees it (with the actions they may take).
func (s *server) itemJSON(wi store.WorkItem, user store.User, now time.Time) routingItemJSON {
	out := routingItemJSON{workItemJSON: toWorkItemJSON(wi, now), QueueID: wi.QueueID, Queue: wi.QueueName,
		Category: wi.Category, Tags: wi.Tags, Skills: wi.Skills, Language: wi.Language,
		SLADueAt: timePtr(wi.SLADueAt), SLAAtRiskAt: timePtr(wi.SLARiskAt), FirstResponseAt: timePtr(wi.FirstResponseAt),
		OfferedTo: wi.OfferedTo, OfferExpiresAt: timePtr(wi.OfferExpiresAt), Flag: wi.Flag, AssignedName: wi.AssignedName,
		Actions: workitem.Actions(user, wi)}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.Actions == nil {
		out.Actions = []workitem.Action{}
	}
	if s.engine != nil {
		if cfg := s.engine.Config(); cfg != nil {
			out.Priority, out.Breakdown = cfg.Priority(routing.ItemOf(wi), now)
		}
	}
	return out
}

// withRouting answers 503 when the routing engine is not running.
func (s *server) withRouting(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session) {
		if s.engine == nil || s.work == nil {
			writeError(w, http.StatusServiceUnavailable, "routing is not running on this server")
			return
		}
		h(w, r, u, sess)
	}
}

// next gives the caller the best item they may take now: 200 with it, 204 when nothing fits.
func (s *server) next(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
	s.touch(r, u)
	wi, ok, err := s.engine.Pull(r.Context(), u)
	switch {
	case errors.Is(err, routing.ErrAtCapacity):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.internalError(w, r, "get the next work item", err)
		return
	case !ok:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, s.itemJSON(wi, u, time.Now()))
}

// myWork lists the caller's assigned items and offers.
func (s *server) myWork(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
	ctx := r.Context()
	now := time.Now()
	out := map[string][]routingItemJSON{"assigned": {}, "offered": {}}
	for key, f := range map[string]store.WorkItemFilter{
		"assigned": {States: []string{store.StateAssigned, store.StatePending, store.StateOnHold}, AssignedTo: u.ID, Sort: "oldest", Limit: 500},
		"offered":  {State: store.StateOffered, OfferedTo: u.ID, Sort: "oldest", Limit: 500},
	} {
		items, err := s.st.ListWorkItems(ctx, f)
		if err != nil {
			s.internalError(w, r, "list your work", err)
			return
		}
		for _, wi := range items {
			out[key] = append(out[key], s.itemJSON(wi, u, now))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// act runs one lifecycle action on a work item.
func (s *server) act(action workitem.Action) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
		id, ok := pathID(w, r, "work item")
		if !ok {
			return
		}
		var body struct {
			Reason  string `json:"reason"`
			QueueID int64  `json:"queue_id"`
			AgentID int64  `json:"agent_id"`
		}
		if r.ContentLength != 0 {
			if !decodeBody(w, r, &body) {
				return
			}
		}
		if action == workitem.Transfer && body.QueueID == 0 && body.AgentID == 0 {
			writeFieldErrors(w, map[string]string{"queue_id": "give the queue (or agent_id: the agent) to transfer the item to"})
			return
		}
		s.touch(r, u)
		wi, err := s.work.Do(r.Context(), u, id, workitem.Request{Action: action, Reason: body.Reason, QueueID: body.QueueID, AgentID: body.AgentID})
		switch {
		case errors.Is(err, workitem.ErrNotAllowed):
			writeError(w, http.StatusConflict, err.Error())
		case errors.Is(err, workitem.ErrStateChanged):
			writeError(w, http.StatusConflict, err.Error())
		case store.IsNotFound(err):
			writeError(w, http.StatusNotFound, "no such work item (or queue or agent): check the id")
		case err != nil:
			s.internalError(w, r, string(action)+" the work item", err)
		default:
			writeJSON(w, http.StatusOK, s.itemJSON(wi, u, time.Now()))
		}
	}
}

// routingTrace answers the item's decision traces and its history.
func (s *server) routingTrace(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "work item")
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := s.st.WorkItem(ctx, id); err != nil {
		if store.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "no such work item: check the id")
			return
		}
		s.internalError(w, r, "read the work item", err)
		return
	}
	traces, err := s.st.Traces(ctx, id)
	if err != nil {
		s.internalError(w, r, "read the decision traces", err)
		return
	}
	events, err := s.st.Events(ctx, id)
	if err != nil {
		s.internalError(w, r, "read the history", err)
		return
	}
	out := struct {
		WorkItemID int64             `json:"work_item_id"`
		Decisions  []json.RawMessage `json:"decisions"`
		History    []eventJSON       `json:"history"`
	}{WorkItemID: id, Decisions: []json.RawMessage{}, History: []eventJSON{}}
	for _, t := range traces {
		out.Decisions = append(out.Decisions, json.RawMessage(t.JSON))
	}
	for _, e := range events {
		out.History = append(out.History, toEventJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

type eventJSON struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Kind    string    `json:"kind"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	AgentID int64     `json:"agent_id,omitempty"`
	QueueID int64     `json:"queue_id,omitempty"`
	Reason  string    `json:"reason"`
}

func toEventJSON(e store.Event) eventJSON {
	return eventJSON{At: e.At, Actor: e.Actor, Kind: e.Kind, From: e.From, To: e.To, AgentID: e.AgentID, QueueID: e.QueueID, Reason: e.Reason}
}

// board answers the supervisor's board.
func (s *server) board(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	b, err := routing.LoadBoard(r.Context(), s.st, time.Now())
	if err != nil {
		s.internalError(w, r, "load the board", err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// routingObjects serves the CRUD of one kind of routing object.
type routingKind struct {
	kind     string
	what     string
	validate func(spec []byte) (name string, err error)
}

var routingKinds = map[string]routingKind{
	"calendars": {store.KindCalendar, "calendar", func(b []byte) (string, error) {
		var c routing.Calendar
		if err := json.Unmarshal(b, &c); err != nil {
			return "", err
		}
		return c.Name, c.Validate()
	}},
	"schemas": {store.KindSchema, "schema", func(b []byte) (string, error) {
		var c routing.Schema
		if err := json.Unmarshal(b, &c); err != nil {
			return "", err
		}
		return c.Name, c.Validate()
	}},
	"sla-policies": {store.KindSLA, "SLA policy", func(b []byte) (string, error) {
		var c routing.SLAPolicy
		if err := json.Unmarshal(b, &c); err != nil {
			return "", err
		}
		return c.Name, c.Validate()
	}},
	"rules": {store.KindRule, "rule", func(b []byte) (string, error) {
		var c routing.Rule
		if err := json.Unmarshal(b, &c); err != nil {
			return "", err
		}
		return c.Name, c.Validate()
	}},
}

func routingKindOf(r *http.Request) (routingKind, bool) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	k, ok := routingKinds[parts[0]]
	return k, ok
}

func (s *server) listRoutingObjects(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	k, _ := routingKindOf(r)
	objs, err := s.st.ListRoutingObjects(r.Context(), k.kind)
	if err != nil {
		s.internalError(w, r, "list "+k.what+"s", err)
		return
	}
	out := []json.RawMessage{}
	for _, o := range objs {
		out = append(out, objectJSON(o))
	}
	writeJSON(w, http.StatusOK, out)
}

// objectJSON is the stored document with its id, name and position set.
func objectJSON(o store.RoutingObject) json.RawMessage {
	m := map[string]any{}
	_ = json.Unmarshal(o.Spec, &m) // a stored spec was valid JSON when saved
	m["id"], m["name"] = o.ID, o.Name
	if o.Kind == store.KindRule {
		m["position"] = o.Position
	}
	b, _ := json.Marshal(m)
	return b
}

func (s *server) saveRoutingObject(create bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
		k, _ := routingKindOf(r)
		var id int64
		if !create {
			var ok bool
			if id, ok = pathID(w, r, k.what); !ok {
				return
			}
		}
		var raw json.RawMessage
		if !decodeBody(w, r, &raw) {
			return
		}
		name, err := k.validate(raw)
		var verr *routing.ValidationError
		switch {
		case errors.As(err, &verr):
			writeFieldErrors(w, verr.Fields)
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "the "+k.what+" is not valid JSON of the documented shape: "+err.Error())
			return
		}
		var pos struct {
			Position int `json:"position"`
		}
		_ = json.Unmarshal(raw, &pos)
		o, err := s.st.SaveRoutingObject(r.Context(), store.RoutingObject{ID: id, Kind: k.kind, Name: strings.TrimSpace(name), Position: pos.Position, Spec: raw},
			store.AuditEvent{Actor: u.Username, Action: k.kind + ".save", New: name})
		switch {
		case errors.Is(err, store.ErrConflict):
			writeFieldErrors(w, map[string]string{"name": "a " + k.what + " with this name exists: choose another name"})
		case store.IsNotFound(err):
			writeError(w, http.StatusNotFound, "no such "+k.what+": check the id")
		case err != nil:
			s.internalError(w, r, "save the "+k.what, err)
		default:
			s.routingChanged()
			status := http.StatusOK
			if create {
				status = http.StatusCreated
			}
			writeJSON(w, status, objectJSON(o))
		}
	}
}

func (s *server) deleteRoutingObject(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
	k, _ := routingKindOf(r)
	id, ok := pathID(w, r, k.what)
	if !ok {
		return
	}
	// The id must be of this kind: DELETE /calendars/{id} never deletes a rule.
	o, err := s.st.RoutingObject(r.Context(), id)
	if err == nil && o.Kind != k.kind {
		err = store.ErrNotFound
	}
	if err == nil {
		err = s.st.DeleteRoutingObject(r.Context(), id, store.AuditEvent{Actor: u.Username, Action: k.kind + ".delete", Object: k.kind + ":" + itoa64(id)})
	}
	if err != nil {
		if store.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "no such "+k.what+": check the id")
			return
		}
		s.internalError(w, r, "delete the "+k.what, err)
		return
	}
	s.routingChanged()
	w.WriteHeader(http.StatusNoContent)
}

// queueSettings saves a queue's routing settings.
func (s *server) queueSettings(w http.ResponseWriter, r *http.Request, u store.User, _ store.Session) {
	id, ok := pathID(w, r, "queue")
	if !ok {
		return
	}
	q, err := s.st.Queue(r.Context(), id)
	if err != nil {
		if store.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "no such queue: check the id")
			return
		}
		s.internalError(w, r, "read the queue", err)
		return
	}
	var body struct {
		Name string `json:"name"`
		routing.QueueSettings
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if err := body.QueueSettings.Validate(); err != nil {
		var verr *routing.ValidationError
		if errors.As(err, &verr) {
			writeFieldErrors(w, verr.Fields)
			return
		}
	}
	name := strings.TrimSpace(body.Name)
	if name == "" {
		name = q.Name
	}
	spec, _ := json.Marshal(body.QueueSettings)
	if err := s.st.SetQueueSpec(r.Context(), id, name, spec, store.AuditEvent{Actor: u.Username, Action: "queue.settings", Old: string(q.Spec), New: string(spec)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			writeFieldErrors(w, map[string]string{"name": "a queue with this name exists: choose another name"})
			return
		}
		s.internalError(w, r, "save the queue", err)
		return
	}
	s.routingChanged()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": name, "settings": body.QueueSettings})
}

// internalError logs err and answers 500 without details.
func (s *server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.logger.ErrorContext(r.Context(), "api request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	writeError(w, http.StatusInternalServerError, "could not "+what+": internal error, the server log has the details; try again later")
}

// routingChanged has the engine take a configuration change at once.
func (s *server) routingChanged() {
	if s.engine != nil {
		s.engine.Wake()
	}
}

// touch records the agent's activity, which keeps them from the idle timeout.
func (s *server) touch(r *http.Request, u store.User) {
	if err := s.st.TouchAgent(r.Context(), u.ID, time.Now()); err != nil {
		s.logger.WarnContext(r.Context(), "record agent activity", slog.Int64("user_id", u.ID), slog.Any("error", err))
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// boardHourly answers arrivals and first-response SLA attainment for each of the last 24
// hours.
func (s *server) boardHourly(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	hours, err := routing.Hourly(r.Context(), s.st, time.Now())
	if err != nil {
		s.internalError(w, r, "load the hourly figures", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hours": hours})
}

// boardHistory exports every work item change of the chosen days as CSV.
func (s *server) boardHistory(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	q := r.URL.Query()
	now := time.Now()
	from, to, problems := routing.HistoryRange(q.Get("from"), q.Get("to"), now)
	if problems != nil {
		writeFieldErrors(w, problems)
		return
	}
	ctx := r.Context()
	rows, err := s.st.History(ctx, from, to)
	if err != nil {
		s.internalError(w, r, "read the history", err)
		return
	}
	users, err := s.st.ListUsers(ctx)
	if err != nil {
		s.internalError(w, r, "read the users", err)
		return
	}
	names := make(map[int64]string, len(users))
	for _, u := range users {
		names[u.ID] = u.Username
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="postroom-history-`+from.Format(time.DateOnly)+`-to-`+
		to.Add(-time.Hour).Format(time.DateOnly)+`.csv"`)
	if err := routing.WriteHistoryCSV(w, rows, names, now); err != nil && ctx.Err() == nil {
		s.logger.WarnContext(ctx, "history export cut short", slog.Any("error", err))
	}
}
