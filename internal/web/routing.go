package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// The routing administration pages: business calendars, prioritisation schemas, SLA
// policies (this file), classification rules (rules.go) and each queue's routing settings
// (queuesettings.go). Admins edit; supervisors see the same pages read-only. Every change
// is validated by internal/routing, saved through the store (which bumps the routing
// version, so the engine reloads at once) and audited.

func (h *handler) routingRoutes(mux *pageMux) {
	sup, adm := store.RoleSupervisor, store.RoleAdmin
	mux.open("GET /routing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/routing/rules", http.StatusSeeOther)
	}))
	for _, k := range []*objectKind{calendarKind, schemaKind, slaKind} {
		mux.page("GET "+k.base, sup, h.objectList(k))
		mux.page("GET "+k.base+"/new", adm, h.objectNew(k))
		mux.page("POST "+k.base, adm, h.objectSave(k))
		mux.page("GET "+k.base+"/{id}", sup, h.objectEdit(k))
		mux.page("POST "+k.base+"/{id}", adm, h.objectSave(k))
		mux.page("POST "+k.base+"/{id}/delete", adm, h.objectDelete(k))
	}
	h.ruleRoutes(mux)
	h.queueSettingsRoutes(mux)
}

// objectKind is one kind of routing object with a list page and a form.
type objectKind struct {
	kind  string // store.KindCalendar, ...
	what  string // "calendar"
	title string // "Calendars"
	base  string // "/routing/calendars"
	page  string // template
	// blank is the form of a new object.
	blank func() any
	// formOf returns the form showing a stored object.
	formOf func(o store.RoutingObject) (any, error)
	// parse reads the posted form: the form to show again, the document to save, and the
	// errors by form field (nil when it is valid).
	parse func(r *http.Request) (form any, name string, spec any, errs map[string]string)
	// row summarises a stored object for the list.
	row func(o store.RoutingObject) (objectRow, error)
}

// objectRow is one line of a list page.
type objectRow struct {
	ID      int64
	Name    string
	Summary []string // short facts, one per column
	UsedBy  []string
	Broken  string // the stored document does not decode
}

type objectListData struct {
	Form    any // always nil: the list and the form share a template
	Kind    string
	What    string
	Base    string
	Rows    []objectRow
	Notice  string
	Error   string
	Columns []string
}

type objectFormData struct {
	Kind   string
	What   string
	Base   string
	ID     int64
	Form   any
	Errors map[string]string
	Error  string
	Notice string
	// Extra is what a kind shows besides the form (a schema's curve).
	Extra any
}

func (h *handler) objectList(k *objectKind) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		d := objectListData{Kind: k.kind, What: k.what, Base: k.base}
		switch r.URL.Query().Get("notice") {
		case "saved":
			d.Notice = sentence(k.what + " saved; routing uses it from now on")
		case "deleted":
			d.Notice = sentence(k.what + " deleted")
		}
		h.renderObjectList(w, r, v, http.StatusOK, k, d)
	}
}

func (h *handler) renderObjectList(w http.ResponseWriter, r *http.Request, v viewer, status int, k *objectKind, d objectListData) {
	ctx := r.Context()
	objs, err := h.st.ListRoutingObjects(ctx, k.kind)
	if err != nil {
		h.serverError(w, r, "list the "+k.what+"s", err)
		return
	}
	uses, err := h.routingUses(ctx)
	if err != nil {
		h.serverError(w, r, "list the queues", err)
		return
	}
	for _, o := range objs {
		row, err := k.row(o)
		if err != nil {
			row = objectRow{ID: o.ID, Name: o.Name, Broken: err.Error()}
		}
		row.UsedBy = uses[useKey{k.kind, o.ID}]
		d.Rows = append(d.Rows, row)
	}
	h.render(w, r, status, k.page, h.data(v, k.title, "routing", d))
}

func (h *handler) objectNew(k *objectKind) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		h.renderObjectForm(w, r, v, http.StatusOK, k, objectFormData{Form: k.blank()})
	}
}

func (h *handler) objectEdit(k *objectKind) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		o, ok := h.loadObject(w, r, k)
		if !ok {
			return
		}
		form, err := k.formOf(o)
		if err != nil {
			h.serverError(w, r, "read the "+k.what, err)
			return
		}
		d := objectFormData{ID: o.ID, Form: form}
		if r.URL.Query().Get("notice") == "saved" {
			d.Notice = sentence(k.what + " saved; routing uses it from now on")
		}
		h.renderObjectForm(w, r, v, http.StatusOK, k, d)
	}
}

func (h *handler) renderObjectForm(w http.ResponseWriter, r *http.Request, v viewer, status int, k *objectKind, d objectFormData) {
	d.Kind, d.What, d.Base = k.kind, k.what, k.base
	if d.Errors == nil {
		d.Errors = map[string]string{}
	}
	if sf, ok := d.Form.(schemaForm); ok && d.Extra == nil {
		d.Extra = sf.curve()
	}
	title := "New " + k.what
	if d.ID != 0 {
		title = sentence(k.what)
		title = strings.TrimSuffix(title, ".")
	}
	h.render(w, r, status, k.page, h.data(v, title, "routing", d))
}

// loadObject reads {id} as an object of kind k; on failure it has written the page.
func (h *handler) loadObject(w http.ResponseWriter, r *http.Request, k *objectKind) (store.RoutingObject, bool) {
	id, ok := h.pathID(w, r, k.what)
	if !ok {
		return store.RoutingObject{}, false
	}
	o, err := h.st.RoutingObject(r.Context(), id)
	if err == nil && o.Kind != k.kind {
		err = store.ErrNotFound
	}
	if err != nil {
		if store.IsNotFound(err) {
			h.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no %s with this id; it may have been deleted. Go back to the list.", k.what))
			return store.RoutingObject{}, false
		}
		h.serverError(w, r, "read the "+k.what, err)
		return store.RoutingObject{}, false
	}
	return o, true
}

func (h *handler) objectSave(k *objectKind) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		var id int64
		if r.PathValue("id") != "" {
			o, ok := h.loadObject(w, r, k)
			if !ok {
				return
			}
			id = o.ID
		}
		form, name, spec, errs := k.parse(r)
		d := objectFormData{ID: id, Form: form, Errors: errs}
		if len(errs) > 0 {
			d.Error = "The " + k.what + " was not saved: correct the fields marked below."
			h.renderObjectForm(w, r, v, http.StatusBadRequest, k, d)
			return
		}
		o, err := h.saveObject(r.Context(), v, k.kind, id, name, 0, spec)
		switch {
		case errors.Is(err, store.ErrConflict):
			d.Errors = map[string]string{"name": "a " + k.what + " with this name exists: choose another name"}
			d.Error = "The " + k.what + " was not saved: correct the fields marked below."
			h.renderObjectForm(w, r, v, http.StatusConflict, k, d)
		case err != nil:
			h.serverError(w, r, "save the "+k.what, err)
		default:
			http.Redirect(w, r, fmt.Sprintf("%s/%d?notice=saved", k.base, o.ID), http.StatusSeeOther)
		}
	}
}

// saveObject stores a routing object and audits the change ("calendar.save", ...).
func (h *handler) saveObject(ctx context.Context, v viewer, kind string, id int64, name string, position int, spec any) (store.RoutingObject, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return store.RoutingObject{}, err
	}
	var old string
	if id != 0 {
		if prev, err := h.st.RoutingObject(ctx, id); err == nil {
			old = string(prev.Spec)
		}
	}
	o, err := h.st.SaveRoutingObject(ctx, store.RoutingObject{ID: id, Kind: kind, Name: strings.TrimSpace(name), Position: position, Spec: b},
		store.AuditEvent{Actor: v.User.Username, Action: kind + ".save", Old: old, New: string(b)})
	if err != nil {
		return o, err
	}
	h.routingChanged()
	return o, nil
}

// routingChanged has the engine take a configuration change at once.
func (h *handler) routingChanged() {
	if h.engine != nil {
		h.engine.Wake()
	}
}

func (h *handler) objectDelete(k *objectKind) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		o, ok := h.loadObject(w, r, k)
		if !ok {
			return
		}
		ctx := r.Context()
		uses, err := h.routingUses(ctx)
		if err != nil {
			h.serverError(w, r, "list the queues", err)
			return
		}
		if used := uses[useKey{k.kind, o.ID}]; len(used) > 0 {
			h.renderObjectList(w, r, v, http.StatusConflict, k, objectListData{Kind: k.kind, What: k.what, Base: k.base,
				Error: fmt.Sprintf("The %s %q was not deleted: %s use it. Choose another %s there first.", k.what, o.Name, strings.Join(used, ", "), k.what)})
			return
		}
		if err := h.st.DeleteRoutingObject(ctx, o.ID, store.AuditEvent{Actor: v.User.Username, Action: k.kind + ".delete",
			Object: fmt.Sprintf("%s:%d", k.kind, o.ID), Old: string(o.Spec)}); err != nil && !store.IsNotFound(err) {
			h.serverError(w, r, "delete the "+k.what, err)
			return
		}
		h.routingChanged()
		http.Redirect(w, r, k.base+"?notice=deleted", http.StatusSeeOther)
	}
}

type useKey struct {
	kind string
	id   int64
}

// routingUses lists, per calendar, schema and SLA policy, the queues and rules that
// refer to it (by name, "queue Default", "rule VIP"), so that a list shows where each is
// used and a delete can be refused while it is.
func (h *handler) routingUses(ctx context.Context) (map[useKey][]string, error) {
	uses := map[useKey][]string{}
	queues, err := h.st.ListQueues(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range queues {
		s := queueSettingsOf(q)
		label := "queue " + q.Name
		for _, u := range []useKey{{store.KindCalendar, s.CalendarID}, {store.KindSchema, s.SchemaID}, {store.KindSLA, s.SLAPolicyID}} {
			if u.id != 0 {
				uses[u] = append(uses[u], label)
			}
		}
	}
	rules, err := h.st.ListRoutingObjects(ctx, store.KindRule)
	if err != nil {
		return nil, err
	}
	for _, o := range rules {
		rl, err := routing.RuleOf(o)
		if err != nil {
			continue
		}
		label := "rule " + o.Name
		for _, u := range []useKey{{store.KindSchema, rl.Actions.SchemaID}, {store.KindSLA, rl.Actions.SLAPolicyID}} {
			if u.id != 0 {
				uses[u] = append(uses[u], label)
			}
		}
	}
	return uses, nil
}

// queueSettingsOf decodes a queue's routing settings (zero when none or unreadable).
func queueSettingsOf(q store.Queue) routing.QueueSettings {
	var s routing.QueueSettings
	if len(q.Spec) > 0 {
		_ = json.Unmarshal(q.Spec, &s)
	}
	return s
}

// ---- durations and list fields ----

// parseDuration reads a duration as people type it: whole seconds ("90"), or a number
// with a unit: "30m", "1h30m", "2d". Empty is 0.
func parseDuration(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("enter a duration of 0 or more")
		}
		return n, nil
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration: enter seconds, or a number with a unit, e.g. 90, 30m, 4h, 2d", s)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return days * 86400, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("%q is not a duration: enter seconds, or a number with a unit, e.g. 90, 30m, 4h, 2d", s)
	}
	return days*86400 + int64(d/time.Second), nil
}

// formatSpec writes seconds the way parseDuration reads them: "2d", "4h", "30m",
// "1h30m", "45s"; "" for 0.
func formatSpec(s int64) string {
	if s <= 0 {
		return ""
	}
	var b strings.Builder
	if s >= 86400 && s%86400 == 0 {
		return strconv.FormatInt(s/86400, 10) + "d"
	}
	if h := s / 3600; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		s %= 3600
	}
	if m := s / 60; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		s %= 60
	}
	if s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// formLines splits a textarea into its non-blank lines, with their 1-based numbers.
func formLines(s string) (lines []string, numbers []int) {
	for i, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
			numbers = append(numbers, i+1)
		}
	}
	return lines, numbers
}

var listIndex = regexp.MustCompile(`([a-z_]+)\[(\d+)\]`)

// formErrors moves routing validation errors onto the form's fields: an error of a list
// element ("hours[2].start") goes to the list's textarea as "line N: ...", with lines
// mapping each list to the form line of its elements; references to other elements in a
// message ("overlaps hours[0]") say "line N" too. Other keys stay as they are.
func formErrors(fields map[string]string, lines map[string][]int) map[string]string {
	lineOf := func(list string, i int) int {
		if ns, ok := lines[list]; ok && i < len(ns) {
			return ns[i]
		}
		return i + 1
	}
	out := map[string]string{}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		msg := listIndex.ReplaceAllStringFunc(fields[k], func(m string) string {
			sub := listIndex.FindStringSubmatch(m)
			if _, ok := lines[sub[1]]; !ok {
				return m
			}
			i, _ := strconv.Atoi(sub[2])
			return fmt.Sprintf("line %d", lineOf(sub[1], i))
		})
		base, rest, _ := strings.Cut(k, "[")
		if _, ok := lines[base]; !ok || rest == "" {
			addError(out, k, msg)
			continue
		}
		idx, _, _ := strings.Cut(rest, "]")
		i, _ := strconv.Atoi(idx)
		addError(out, base, fmt.Sprintf("line %d: %s", lineOf(base, i), msg))
	}
	return out
}

// addError adds msg to a field's errors.
func addError(errs map[string]string, field, msg string) {
	if prev, ok := errs[field]; ok {
		if strings.Contains(prev, msg) {
			return
		}
		errs[field] = prev + "; " + msg
		return
	}
	errs[field] = msg
}

// validationFields returns the fields of a *routing.ValidationError (nil otherwise).
func validationFields(err error) map[string]string {
	var ve *routing.ValidationError
	if errors.As(err, &ve) {
		return ve.Fields
	}
	if err != nil {
		return map[string]string{"": err.Error()}
	}
	return nil
}

func atoiField(errs map[string]string, field, v, hint string) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		addError(errs, field, hint)
	}
	return n
}

func durationField(errs map[string]string, field, v string) int64 {
	n, err := parseDuration(v)
	if err != nil {
		addError(errs, field, err.Error())
	}
	return n
}

// ---- calendars ----

type calendarForm struct {
	Name, TimeZone, Hours, Holidays, Special string
}

var calendarKind = &objectKind{
	kind: store.KindCalendar, what: "calendar", title: "Calendars", base: "/routing/calendars", page: "calendars",
	blank: func() any {
		return calendarForm{Hours: "mon-fri 09:00-17:00"}
	},
	formOf: func(o store.RoutingObject) (any, error) {
		c, err := routing.CalendarOf(o)
		if err != nil {
			return nil, err
		}
		return calendarFormOf(c), nil
	},
	parse: func(r *http.Request) (any, string, any, map[string]string) {
		f := calendarForm{Name: strings.TrimSpace(r.PostForm.Get("name")), TimeZone: strings.TrimSpace(r.PostForm.Get("time_zone")),
			Hours: r.PostForm.Get("hours"), Holidays: r.PostForm.Get("holidays"), Special: r.PostForm.Get("special_days")}
		c, errs := f.calendar()
		return f, c.Name, c, errs
	},
	row: func(o store.RoutingObject) (objectRow, error) {
		c, err := routing.CalendarOf(o)
		if err != nil {
			return objectRow{}, err
		}
		f := calendarFormOf(c)
		tz := c.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		hours := strings.ReplaceAll(strings.TrimSpace(f.Hours), "\n", "; ")
		if hours == "" {
			hours = "open around the clock"
		}
		return objectRow{ID: o.ID, Name: o.Name, Summary: []string{tz, hours,
			fmt.Sprintf("%d holidays, %d special days", len(c.Holidays), len(c.Special))}}, nil
	},
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// calendar reads the form: weekly hours as "mon 09:00-17:00" lines (a day range
// "mon-fri" and several ranges per line are fine), holidays as "2026-12-25 Christmas",
// special days as "2026-12-24 09:00-12:00 Christmas Eve" ("closed" for no hours).
func (f calendarForm) calendar() (routing.Calendar, map[string]string) {
	errs := map[string]string{}
	c := routing.Calendar{Name: f.Name, TimeZone: f.TimeZone}
	lines := map[string][]int{}
	ls, ns := formLines(f.Hours)
	for i, l := range ls {
		fields := strings.Fields(l)
		days, ok := dayRange(strings.ToLower(fields[0]))
		if !ok || len(fields) < 2 {
			addError(errs, "hours", fmt.Sprintf("line %d: enter a day (or days) and hours, e.g. \"mon 09:00-17:00\" or \"mon-fri 09:00-12:00 13:00-17:00\"", ns[i]))
			continue
		}
		for _, d := range days {
			for _, rg := range fields[1:] {
				start, end, ok := strings.Cut(rg, "-")
				if !ok {
					addError(errs, "hours", fmt.Sprintf("line %d: enter the hours as HH:MM-HH:MM, e.g. 09:00-17:00", ns[i]))
					continue
				}
				c.Hours = append(c.Hours, routing.Hours{Day: d, Start: start, End: end})
				lines["hours"] = append(lines["hours"], ns[i])
			}
		}
	}
	ls, ns = formLines(f.Holidays)
	for i, l := range ls {
		date, name, _ := strings.Cut(l, " ")
		c.Holidays = append(c.Holidays, routing.Holiday{Date: date, Name: strings.TrimSpace(name)})
		lines["holidays"] = append(lines["holidays"], ns[i])
	}
	ls, ns = formLines(f.Special)
	for i, l := range ls {
		fields := strings.Fields(l)
		sd := routing.SpecialDay{Date: fields[0]}
		var name []string
		for _, t := range fields[1:] {
			if start, end, ok := strings.Cut(t, "-"); ok && len(t) == 11 && strings.Count(t, ":") == 2 {
				sd.Hours = append(sd.Hours, routing.TimeRange{Start: start, End: end})
				continue
			}
			if strings.EqualFold(t, "closed") && len(name) == 0 && len(sd.Hours) == 0 {
				continue
			}
			name = append(name, t)
		}
		sd.Name = strings.Join(name, " ")
		c.Special = append(c.Special, sd)
		lines["special_days"] = append(lines["special_days"], ns[i])
	}
	if len(errs) > 0 {
		return c, errs
	}
	if fields := validationFields(c.Validate()); fields != nil {
		return c, formErrors(fields, lines)
	}
	return c, nil
}

// dayRange reads "mon", "mon-fri" or "sat-sun".
func dayRange(s string) ([]string, bool) {
	from, to, isRange := strings.Cut(s, "-")
	a, b := slices.Index(weekdays, from), slices.Index(weekdays, to)
	if !isRange {
		b = a
	}
	if a < 0 || b < a {
		return nil, false
	}
	return weekdays[a : b+1], true
}

func calendarFormOf(c routing.Calendar) calendarForm {
	f := calendarForm{Name: c.Name, TimeZone: c.TimeZone}
	var b strings.Builder
	for _, hr := range c.Hours {
		fmt.Fprintf(&b, "%s %s-%s\n", hr.Day, hr.Start, hr.End)
	}
	f.Hours = b.String()
	b.Reset()
	for _, hd := range c.Holidays {
		fmt.Fprintf(&b, "%s %s\n", hd.Date, hd.Name)
	}
	f.Holidays = b.String()
	b.Reset()
	for _, sd := range c.Special {
		b.WriteString(sd.Date)
		if len(sd.Hours) == 0 {
			b.WriteString(" closed")
		}
		for _, rg := range sd.Hours {
			fmt.Fprintf(&b, " %s-%s", rg.Start, rg.End)
		}
		if sd.Name != "" {
			b.WriteString(" " + sd.Name)
		}
		b.WriteString("\n")
	}
	f.Special = b.String()
	return f
}

// ---- prioritisation schemas ----

type schemaForm struct {
	Name, Start, Points, SLAPoint, BreachStep, BreachEvery string
	BusinessTime                                           bool
}

var schemaKind = &objectKind{
	kind: store.KindSchema, what: "schema", title: "Prioritisation schemas", base: "/routing/schemas", page: "schemas",
	blank: func() any { return schemaFormOf(routing.DefaultSchema()) },
	formOf: func(o store.RoutingObject) (any, error) {
		s, err := routing.SchemaOf(o)
		if err != nil {
			return nil, err
		}
		return schemaFormOf(s), nil
	},
	parse: func(r *http.Request) (any, string, any, map[string]string) {
		p := r.PostForm
		f := schemaForm{Name: strings.TrimSpace(p.Get("name")), Start: p.Get("start"), Points: p.Get("points"),
			SLAPoint: p.Get("sla_point_s"), BreachStep: p.Get("breach_step"), BreachEvery: p.Get("breach_every_s"),
			BusinessTime: p.Get("business_time") != ""}
		s, errs := f.schema()
		return f, s.Name, s, errs
	},
	row: func(o store.RoutingObject) (objectRow, error) {
		s, err := routing.SchemaOf(o)
		if err != nil {
			return objectRow{}, err
		}
		f := schemaFormOf(s)
		steps := []string{fmt.Sprintf("starts at %d", s.Start)}
		for _, p := range s.Points {
			steps = append(steps, fmt.Sprintf("%d after %s", p.Priority, formatSpec(p.AgeS)))
		}
		sla := "no SLA point"
		if s.SLAPointS > 0 {
			sla = fmt.Sprintf("SLA point %s, +%d", f.SLAPoint, s.BreachStep)
			if s.BreachEveryS > 0 {
				sla += " every " + f.BreachEvery
			}
		}
		clock := "wall-clock time"
		if s.BusinessTime {
			clock = "business time"
		}
		return objectRow{ID: o.ID, Name: o.Name, Summary: []string{strings.Join(steps, ", "), sla, clock}}, nil
	},
}

func schemaFormOf(s routing.Schema) schemaForm {
	f := schemaForm{Name: s.Name, Start: strconv.Itoa(s.Start), SLAPoint: formatSpec(s.SLAPointS),
		BreachStep: strconv.Itoa(s.BreachStep), BreachEvery: formatSpec(s.BreachEveryS), BusinessTime: s.BusinessTime}
	var b strings.Builder
	for _, p := range s.Points {
		fmt.Fprintf(&b, "%s %d\n", formatSpec(p.AgeS), p.Priority)
	}
	f.Points = b.String()
	return f
}

// schema reads the form: points as "30m 20" lines (age, then priority from that age on).
func (f schemaForm) schema() (routing.Schema, map[string]string) {
	errs := map[string]string{}
	s := routing.Schema{Name: f.Name, BusinessTime: f.BusinessTime}
	s.Start = atoiField(errs, "start", f.Start, "enter a whole number, e.g. 10")
	lines := map[string][]int{}
	ls, ns := formLines(f.Points)
	for i, l := range ls {
		fields := strings.Fields(l)
		if len(fields) != 2 {
			addError(errs, "points", fmt.Sprintf("line %d: enter an age and a priority, e.g. \"30m 20\"", ns[i]))
			continue
		}
		age, err := parseDuration(fields[0])
		prio, perr := strconv.Atoi(fields[1])
		if err != nil || perr != nil {
			addError(errs, "points", fmt.Sprintf("line %d: enter an age (seconds, or 30m, 4h, 2d) and a whole-number priority, e.g. \"30m 20\"", ns[i]))
			continue
		}
		s.Points = append(s.Points, routing.Point{AgeS: age, Priority: prio})
		lines["points"] = append(lines["points"], ns[i])
	}
	s.SLAPointS = durationField(errs, "sla_point_s", f.SLAPoint)
	s.BreachStep = atoiField(errs, "breach_step", f.BreachStep, "enter a whole number, e.g. 20, or 0")
	s.BreachEveryS = durationField(errs, "breach_every_s", f.BreachEvery)
	if len(errs) > 0 {
		return s, errs
	}
	if fields := validationFields(s.Validate()); fields != nil {
		return s, formErrors(fields, lines)
	}
	return s, nil
}

// schemaCurve is a schema's priority curve drawn by the server as SVG coordinates.
type schemaCurve struct {
	Width, Height int
	Path          string // the step line, as SVG polyline points
	MaxAge        string // label of the x axis' end
	MaxPriority   int
	Steps         []curveStep
	SLAX          int // x of the SLA point (0: none)
	Valid         bool
}

type curveStep struct {
	Age      string
	Priority int
}

// curve draws the schema on the form when it is valid (the last saved or typed one).
func (f schemaForm) curve() schemaCurve {
	s, errs := f.schema()
	if len(errs) > 0 {
		return schemaCurve{}
	}
	maxAge := int64(3600)
	if n := len(s.Points); n > 0 {
		maxAge = max(maxAge, s.Points[n-1].AgeS)
	}
	if s.SLAPointS > 0 {
		maxAge = max(maxAge, s.SLAPointS+max(s.BreachEveryS*3, s.SLAPointS/4))
	}
	maxAge = maxAge * 5 / 4
	pts := s.Curve(time.Duration(maxAge) * time.Second)
	c := schemaCurve{Width: 600, Height: 200, MaxAge: formatSpec(maxAge), Valid: true}
	top := 1
	for _, p := range pts {
		top = max(top, p.Priority)
	}
	c.MaxPriority = top
	const padL, padB, padT = 40, 20, 10
	w, hgt := c.Width-padL-10, c.Height-padB-padT
	x := func(age int64) int { return padL + int(age*int64(w)/maxAge) }
	y := func(p int) int { return padT + hgt - p*hgt/top }
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			fmt.Fprintf(&b, " %d,%d", x(p.AgeS), y(pts[i-1].Priority))
		}
		fmt.Fprintf(&b, " %d,%d", x(p.AgeS), y(p.Priority))
		if i < len(pts)-1 && len(c.Steps) < 12 {
			c.Steps = append(c.Steps, curveStep{Age: formatSpec(p.AgeS), Priority: p.Priority})
		}
	}
	c.Path = strings.TrimSpace(b.String())
	if s.SLAPointS > 0 {
		c.SLAX = x(s.SLAPointS)
	}
	return c
}

// ---- SLA policies ----

type slaForm struct {
	Name, FirstResponse, NextResponse, Resolution, AtRisk string
	BusinessTime                                          bool
}

var slaKind = &objectKind{
	kind: store.KindSLA, what: "SLA policy", title: "SLA policies", base: "/routing/sla", page: "slas",
	blank: func() any {
		return slaForm{FirstResponse: "4h", AtRisk: "80", BusinessTime: true}
	},
	formOf: func(o store.RoutingObject) (any, error) {
		p, err := routing.SLAPolicyOf(o)
		if err != nil {
			return nil, err
		}
		return slaFormOf(p), nil
	},
	parse: func(r *http.Request) (any, string, any, map[string]string) {
		p := r.PostForm
		f := slaForm{Name: strings.TrimSpace(p.Get("name")), FirstResponse: p.Get("first_response_s"), NextResponse: p.Get("next_response_s"),
			Resolution: p.Get("resolution_s"), AtRisk: p.Get("at_risk_percent"), BusinessTime: p.Get("business_time") != ""}
		pol, errs := f.policy()
		return f, pol.Name, pol, errs
	},
	row: func(o store.RoutingObject) (objectRow, error) {
		p, err := routing.SLAPolicyOf(o)
		if err != nil {
			return objectRow{}, err
		}
		f := slaFormOf(p)
		none := func(s string) string {
			if s == "" {
				return "none"
			}
			return s
		}
		clock := "wall-clock time"
		if p.BusinessTime {
			clock = "business time"
		}
		return objectRow{ID: o.ID, Name: o.Name, Summary: []string{f.FirstResponse, none(f.NextResponse), none(f.Resolution),
			f.AtRisk + " %", clock}}, nil
	},
}

func slaFormOf(p routing.SLAPolicy) slaForm {
	return slaForm{Name: p.Name, FirstResponse: formatSpec(p.FirstResponseS), NextResponse: formatSpec(p.NextResponseS),
		Resolution: formatSpec(p.ResolutionS), AtRisk: strconv.Itoa(p.AtRiskPercent), BusinessTime: p.BusinessTime}
}

func (f slaForm) policy() (routing.SLAPolicy, map[string]string) {
	errs := map[string]string{}
	p := routing.SLAPolicy{Name: f.Name, BusinessTime: f.BusinessTime}
	p.FirstResponseS = durationField(errs, "first_response_s", f.FirstResponse)
	p.NextResponseS = durationField(errs, "next_response_s", f.NextResponse)
	p.ResolutionS = durationField(errs, "resolution_s", f.Resolution)
	p.AtRiskPercent = atoiField(errs, "at_risk_percent", f.AtRisk, "enter a whole percentage from 1 to 99, e.g. 80")
	if len(errs) > 0 {
		return p, errs
	}
	if fields := validationFields(p.Validate()); fields != nil {
		return p, formErrors(fields, nil)
	}
	return p, nil
}
