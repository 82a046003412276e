package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// A queue's routing settings: calendar, schema and SLA policy, who serves it, back
// pressure, overflow, offers, skill relaxation and the return of absent agents' items.
// The mailboxes feeding the queue stay on the Queues page.

func (h *handler) queueSettingsRoutes(mux *pageMux) {
	mux.page("GET /queues/{id}/settings", store.RoleSupervisor, h.queueSettingsPage)
	mux.page("POST /queues/{id}/settings", store.RoleAdmin, h.queueSettingsSave)
}

type queueSettingsForm struct {
	CalendarID, SchemaID, SLAPolicyID int64
	Agents, Teams, OverflowTeams      []int64
	OverflowQueueID                   int64
	MaxDepth, OverflowBoost           string
	OverflowAfter, OfferTimeout       string
	PreferredWait, ReturnAfter        string
	Relax                             string
	// Retention: days after done ("" or 0: keep) and mode (delete, anonymise).
	RetentionDays, RetentionMode string
}

type queueSettingsData struct {
	Queue  store.Queue
	Form   queueSettingsForm
	Names  routingNames
	Errors map[string]string
	Error  string
	Notice string
}

func queueSettingsFormOf(s routing.QueueSettings) queueSettingsForm {
	f := queueSettingsForm{CalendarID: s.CalendarID, SchemaID: s.SchemaID, SLAPolicyID: s.SLAPolicyID,
		Agents: s.Agents, Teams: s.Teams, OverflowTeams: s.OverflowTeams, OverflowQueueID: s.OverflowQueueID,
		OverflowAfter: formatSpec(s.OverflowAfterS), OfferTimeout: formatSpec(s.OfferTimeoutS),
		PreferredWait: formatSpec(s.PreferredWaitS), ReturnAfter: formatSpec(s.ReturnAfterS), RetentionMode: s.RetentionMode}
	if s.RetentionDays != 0 {
		f.RetentionDays = strconv.Itoa(s.RetentionDays)
	}
	if s.MaxDepth != 0 {
		f.MaxDepth = strconv.Itoa(s.MaxDepth)
	}
	if s.OverflowBoost != 0 {
		f.OverflowBoost = strconv.Itoa(s.OverflowBoost)
	}
	var b strings.Builder
	for _, r := range s.Relax {
		b.WriteString(formatSpec(r.AfterS))
		if r.DropLevels > 0 {
			fmt.Fprintf(&b, " -%d", r.DropLevels)
		}
		if r.DropSkills {
			b.WriteString(" drop")
		}
		b.WriteString("\n")
	}
	f.Relax = b.String()
	return f
}

// Has reports whether id is in ids (for the multi-selects).
func (queueSettingsForm) Has(ids []int64, id int64) bool { return slices.Contains(ids, id) }

func formIDs(values []string) []int64 {
	var ids []int64
	for _, v := range values {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// parseQueueSettings reads the form; relaxation rings are lines "60m -2" (required
// levels drop by 2 after 60 minutes unassigned) or "4h drop" (skills no longer required).
func parseQueueSettings(r *http.Request, names routingNames, queueID int64) (queueSettingsForm, routing.QueueSettings, map[string]string) {
	p := r.PostForm
	errs := map[string]string{}
	f := queueSettingsForm{Agents: formIDs(p["agents"]), Teams: formIDs(p["teams"]), OverflowTeams: formIDs(p["overflow_teams"]),
		MaxDepth: strings.TrimSpace(p.Get("max_depth")), OverflowBoost: strings.TrimSpace(p.Get("overflow_boost")),
		OverflowAfter: p.Get("overflow_after_s"), OfferTimeout: p.Get("offer_timeout_s"), PreferredWait: p.Get("preferred_wait_s"),
		ReturnAfter: p.Get("return_after_s"), Relax: p.Get("relax"),
		RetentionDays: strings.TrimSpace(p.Get("retention_days")), RetentionMode: p.Get("retention_mode")}
	f.CalendarID, _ = strconv.ParseInt(p.Get("calendar_id"), 10, 64)
	f.SchemaID, _ = strconv.ParseInt(p.Get("schema_id"), 10, 64)
	f.SLAPolicyID, _ = strconv.ParseInt(p.Get("sla_policy_id"), 10, 64)
	f.OverflowQueueID, _ = strconv.ParseInt(p.Get("overflow_queue_id"), 10, 64)

	s := routing.QueueSettings{CalendarID: f.CalendarID, SchemaID: f.SchemaID, SLAPolicyID: f.SLAPolicyID,
		Agents: f.Agents, Teams: f.Teams, OverflowTeams: f.OverflowTeams, OverflowQueueID: f.OverflowQueueID}
	s.MaxDepth = atoiField(errs, "max_depth", f.MaxDepth, "enter a whole number of items, or 0 for no limit")
	s.OverflowBoost = atoiField(errs, "overflow_boost", f.OverflowBoost, "enter a whole number, e.g. 10")
	s.RetentionDays = atoiField(errs, "retention_days", f.RetentionDays, "enter a whole number of days, e.g. 365, or leave it empty to keep conversations")
	s.RetentionMode = f.RetentionMode
	if s.RetentionDays == 0 {
		s.RetentionMode = ""
	}
	s.OverflowAfterS = durationField(errs, "overflow_after_s", f.OverflowAfter)
	s.OfferTimeoutS = durationField(errs, "offer_timeout_s", f.OfferTimeout)
	s.PreferredWaitS = durationField(errs, "preferred_wait_s", f.PreferredWait)
	s.ReturnAfterS = durationField(errs, "return_after_s", f.ReturnAfter)
	lines := map[string][]int{}
	ls, ns := formLines(f.Relax)
	for i, l := range ls {
		fields := strings.Fields(l)
		after, err := parseDuration(fields[0])
		step := routing.RelaxStep{AfterS: after}
		ok := err == nil && len(fields) >= 2
		for _, t := range fields[min(1, len(fields)):] {
			switch {
			case strings.EqualFold(t, "drop"):
				step.DropSkills = true
			case strings.HasPrefix(t, "-"):
				n, err := strconv.Atoi(t[1:])
				if err != nil {
					ok = false
				}
				step.DropLevels = n
			default:
				ok = false
			}
		}
		if !ok {
			addError(errs, "relax", fmt.Sprintf("line %d: enter the time unassigned and what relaxes, e.g. \"60m -2\" (required levels drop by 2) or \"4h drop\" (skills no longer required)", ns[i]))
			continue
		}
		s.Relax = append(s.Relax, step)
		lines["relax"] = append(lines["relax"], ns[i])
	}
	// References must exist.
	if s.CalendarID != 0 && !slices.ContainsFunc(names.Calendars, func(o store.RoutingObject) bool { return o.ID == s.CalendarID }) {
		addError(errs, "calendar_id", "choose a calendar from the list")
	}
	if s.SchemaID != 0 && !slices.ContainsFunc(names.Schemas, func(o store.RoutingObject) bool { return o.ID == s.SchemaID }) {
		addError(errs, "schema_id", "choose a schema from the list")
	}
	if s.SLAPolicyID != 0 && !slices.ContainsFunc(names.SLAs, func(o store.RoutingObject) bool { return o.ID == s.SLAPolicyID }) {
		addError(errs, "sla_policy_id", "choose an SLA policy from the list")
	}
	if s.OverflowQueueID == queueID && queueID != 0 {
		addError(errs, "overflow_queue_id", "choose another queue: a queue cannot overflow to itself")
	} else if s.OverflowQueueID != 0 && !slices.ContainsFunc(names.Queues, func(q store.Queue) bool { return q.ID == s.OverflowQueueID }) {
		addError(errs, "overflow_queue_id", "choose a queue from the list")
	}
	for _, id := range s.Agents {
		if !slices.ContainsFunc(names.Users, func(u store.User) bool { return u.ID == id }) {
			addError(errs, "agents", "choose agents from the list")
		}
	}
	for field, ids := range map[string][]int64{"teams": s.Teams, "overflow_teams": s.OverflowTeams} {
		for _, id := range ids {
			if !slices.ContainsFunc(names.Teams, func(t store.Team) bool { return t.ID == id }) {
				addError(errs, field, "choose teams from the list")
			}
		}
	}
	if len(errs) == 0 {
		if fields := validationFields(s.Validate()); fields != nil {
			errs = formErrors(fields, lines)
		}
	}
	if len(errs) == 0 {
		errs = nil
	}
	return f, s, errs
}

func (h *handler) loadQueue(w http.ResponseWriter, r *http.Request) (store.Queue, bool) {
	id, ok := h.pathID(w, r, "queue")
	if !ok {
		return store.Queue{}, false
	}
	q, err := h.st.Queue(r.Context(), id)
	if err != nil {
		if store.IsNotFound(err) {
			h.errorPage(w, r, http.StatusNotFound, "Queue not found", "There is no queue with this id. Go back to the Queues page.")
			return q, false
		}
		h.serverError(w, r, "read the queue", err)
		return q, false
	}
	return q, true
}

func (h *handler) queueSettingsPage(w http.ResponseWriter, r *http.Request, v viewer) {
	q, ok := h.loadQueue(w, r)
	if !ok {
		return
	}
	d := queueSettingsData{Queue: q, Form: queueSettingsFormOf(queueSettingsOf(q))}
	if r.URL.Query().Get("notice") == "saved" {
		d.Notice = "Routing settings saved; they apply from now on."
	}
	h.renderQueueSettings(w, r, v, http.StatusOK, d)
}

func (h *handler) renderQueueSettings(w http.ResponseWriter, r *http.Request, v viewer, status int, d queueSettingsData) {
	if d.Names.Queues == nil {
		names, err := h.loadNames(r.Context())
		if err != nil {
			h.serverError(w, r, "read the routing settings", err)
			return
		}
		d.Names = names
	}
	if d.Errors == nil {
		d.Errors = map[string]string{}
	}
	h.render(w, r, status, "queuesettings", h.data(v, "Queue "+d.Queue.Name, "queues", d))
}

func (h *handler) queueSettingsSave(w http.ResponseWriter, r *http.Request, v viewer) {
	q, ok := h.loadQueue(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	names, err := h.loadNames(ctx)
	if err != nil {
		h.serverError(w, r, "read the routing settings", err)
		return
	}
	f, s, errs := parseQueueSettings(r, names, q.ID)
	if len(errs) > 0 {
		h.renderQueueSettings(w, r, v, http.StatusBadRequest, queueSettingsData{Queue: q, Form: f, Names: names, Errors: errs,
			Error: "The settings were not saved: correct the fields marked below."})
		return
	}
	spec, err := json.Marshal(s)
	if err != nil {
		h.serverError(w, r, "save the settings", err)
		return
	}
	if err := h.st.SetQueueSpec(ctx, q.ID, q.Name, spec, store.AuditEvent{Actor: v.User.Username, Action: "queue.settings",
		Old: string(q.Spec), New: string(spec)}); err != nil {
		h.serverError(w, r, "save the settings", err)
		return
	}
	h.routingChanged()
	http.Redirect(w, r, fmt.Sprintf("/queues/%d/settings?notice=saved", q.ID), http.StatusSeeOther)
}

// queueSummary says in a few words how a queue routes, for the Queues page.
func queueSummary(q store.Queue, names routingNames) []string {
	s := queueSettingsOf(q)
	var out []string
	if s.CalendarID != 0 {
		out = append(out, "calendar "+objectName(names.Calendars, s.CalendarID, "calendar"))
	}
	if s.SchemaID != 0 {
		out = append(out, "schema "+objectName(names.Schemas, s.SchemaID, "schema"))
	}
	if s.SLAPolicyID != 0 {
		out = append(out, "SLA "+objectName(names.SLAs, s.SLAPolicyID, "SLA policy"))
	}
	if n := len(s.Agents) + len(s.Teams); n > 0 {
		out = append(out, fmt.Sprintf("%d agents, %d teams", len(s.Agents), len(s.Teams)))
	}
	if s.MaxDepth > 0 {
		out = append(out, fmt.Sprintf("max depth %d", s.MaxDepth))
	}
	if s.OverflowAfterS > 0 {
		out = append(out, "overflow after "+formatSpec(s.OverflowAfterS))
	}
	if s.RetentionDays > 0 {
		out = append(out, fmt.Sprintf("%s done conversations after %d days", map[string]string{store.RetentionDelete: "delete", store.RetentionAnonymise: "anonymise"}[s.RetentionMode], s.RetentionDays))
	}
	return out
}
