package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// The classification rules: an ordered list (moved up and down), enabled or disabled,
// edited with conditions as rows, and tested on a stored message before saving.

func (h *handler) ruleRoutes(mux *pageMux) {
	sup, adm := store.RoleSupervisor, store.RoleAdmin
	mux.page("GET /routing/rules", sup, h.ruleList)
	mux.page("GET /routing/rules/new", adm, h.ruleNew)
	mux.page("POST /routing/rules", adm, h.ruleSubmit)
	mux.page("GET /routing/rules/{id}", sup, h.ruleEdit)
	mux.page("POST /routing/rules/{id}", adm, h.ruleSubmit)
	mux.page("POST /routing/rules/{id}/move", adm, h.ruleMove)
	mux.page("POST /routing/rules/{id}/enable", adm, h.ruleSetEnabled(true))
	mux.page("POST /routing/rules/{id}/disable", adm, h.ruleSetEnabled(false))
	mux.page("POST /routing/rules/{id}/delete", adm, h.ruleDelete)
}

// blankConditionRows is how many empty condition rows the form offers: without script a
// form cannot add rows, so there are always a few free ones.
const blankConditionRows = 3

// routingNames resolves the ids a rule or queue refers to.
type routingNames struct {
	Queues    []store.Queue
	Calendars []store.RoutingObject
	Schemas   []store.RoutingObject
	SLAs      []store.RoutingObject
	Users     []store.User
	Teams     []store.Team
}

func (h *handler) loadNames(ctx context.Context) (routingNames, error) {
	var n routingNames
	var err error
	if n.Queues, err = h.st.ListQueues(ctx); err != nil {
		return n, err
	}
	for kind, dst := range map[string]*[]store.RoutingObject{store.KindCalendar: &n.Calendars, store.KindSchema: &n.Schemas, store.KindSLA: &n.SLAs} {
		if *dst, err = h.st.ListRoutingObjects(ctx, kind); err != nil {
			return n, err
		}
	}
	if n.Users, err = h.st.ListUsers(ctx); err != nil {
		return n, err
	}
	if n.Teams, err = h.st.ListTeams(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func (n routingNames) queue(id int64) string {
	for _, q := range n.Queues {
		if q.ID == id {
			return q.Name
		}
	}
	return fmt.Sprintf("queue #%d (deleted)", id)
}

func objectName(list []store.RoutingObject, id int64, what string) string {
	for _, o := range list {
		if o.ID == id {
			return o.Name
		}
	}
	return fmt.Sprintf("%s #%d (deleted)", what, id)
}

// describeActions says what actions do, one phrase each.
func (n routingNames) describeActions(a routing.Actions) []string {
	var out []string
	if a.QueueID != 0 {
		out = append(out, "queue "+n.queue(a.QueueID))
	}
	if a.Category != "" {
		out = append(out, "category "+a.Category)
	}
	if a.PriorityAdjust != 0 {
		out = append(out, fmt.Sprintf("priority %+d", a.PriorityAdjust))
	}
	if len(a.Skills) > 0 {
		out = append(out, "skills "+formatSkills(a.Skills))
	}
	if a.Language != "" {
		out = append(out, "language "+a.Language)
	}
	if len(a.Tags) > 0 {
		out = append(out, "tags "+strings.Join(a.Tags, ", "))
	}
	if a.SLAPolicyID != 0 {
		out = append(out, "SLA policy "+objectName(n.SLAs, a.SLAPolicyID, "SLA policy"))
	}
	if a.SchemaID != 0 {
		out = append(out, "schema "+objectName(n.Schemas, a.SchemaID, "schema"))
	}
	switch a.Close {
	case routing.CloseSpam:
		out = append(out, "close as spam")
	case routing.CloseAutomatic:
		out = append(out, "close as automatic mail")
	}
	return out
}

func formatSkills(skills map[string]int) string {
	keys := make([]string, 0, len(skills))
	for k := range skills {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, skills[k])
	}
	return strings.Join(parts, ", ")
}

func describeCondition(c routing.Condition) string {
	field := c.Field
	if c.Field == routing.FieldHeader {
		field = "header " + c.Header
	}
	op := strings.ReplaceAll(c.Op, "_", " ")
	if c.Negate {
		op = "not " + op
	}
	if c.Op == routing.OpPresent {
		return field + " " + op
	}
	return fmt.Sprintf("%s %s \"%s\"", field, op, c.Value)
}

// ---- the list ----

type ruleRow struct {
	ID         int64
	Name       string
	Enabled    bool
	Match      string
	Continue   bool
	Conditions []string
	Actions    []string
	First      bool
	Last       bool
	Broken     string
}

type rulesData struct {
	Rows   []ruleRow
	Notice string
	Error  string
	// The test of the saved rules on a message.
	WorkItemID string
	MessageID  string
	TestErrors map[string]string
	Test       *ruleTestView
}

// ruleTestView is a routing.RuleTest for people.
type ruleTestView struct {
	routing.RuleTest
	Rules   []ruleTraceView
	Actions []string
}

type ruleTraceView struct {
	routing.RuleTrace
	Conditions []conditionTraceView
}

type conditionTraceView struct {
	Text    string
	Matched bool
	Seen    string
}

func (n routingNames) testView(t routing.RuleTest) *ruleTestView {
	v := &ruleTestView{RuleTest: t, Actions: n.describeActions(t.Actions)}
	for _, rt := range t.Rules {
		tv := ruleTraceView{RuleTrace: rt}
		for _, c := range rt.Conditions {
			tv.Conditions = append(tv.Conditions, conditionTraceView{Text: describeCondition(c.Condition), Matched: c.Matched, Seen: c.Seen})
		}
		v.Rules = append(v.Rules, tv)
	}
	return v
}

// orderedRules reads the stored rules in evaluation order (position, then id), as the
// engine runs them.
func (h *handler) orderedRules(ctx context.Context) ([]store.RoutingObject, error) {
	objs, err := h.st.ListRoutingObjects(ctx, store.KindRule)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(objs, func(a, b store.RoutingObject) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return objs, nil
}

func (h *handler) ruleList(w http.ResponseWriter, r *http.Request, v viewer) {
	d := rulesData{}
	switch r.URL.Query().Get("notice") {
	case "saved":
		d.Notice = "Rule saved. New messages are classified with it from now on."
	case "deleted":
		d.Notice = "Rule deleted."
	case "moved":
		d.Notice = "Rule moved."
	case "enabled":
		d.Notice = "Rule enabled."
	case "disabled":
		d.Notice = "Rule disabled."
	}
	q := r.URL.Query()
	d.WorkItemID, d.MessageID = strings.TrimSpace(q.Get("work_item_id")), strings.TrimSpace(q.Get("message_id"))
	status := http.StatusOK
	if d.WorkItemID != "" || d.MessageID != "" {
		id, field, msg := h.testMessageID(r.Context(), d.WorkItemID, d.MessageID)
		if msg != "" {
			d.TestErrors, status = map[string]string{field: msg}, http.StatusBadRequest
		} else {
			rules, err := routing.SavedRules(r.Context(), h.st)
			if err != nil {
				h.serverError(w, r, "read the rules", err)
				return
			}
			res, err := routing.TryRules(r.Context(), h.st, rules, id)
			switch {
			case store.IsNotFound(err):
				d.TestErrors, status = map[string]string{"message_id": "no stored message has this id: check it"}, http.StatusBadRequest
			case err != nil:
				d.Error, status = "The rules could not be tested: "+err.Error(), http.StatusBadRequest
			default:
				names, err := h.loadNames(r.Context())
				if err != nil {
					h.serverError(w, r, "read the queues", err)
					return
				}
				d.Test = names.testView(res)
			}
		}
	}
	h.renderRules(w, r, v, status, d)
}

// testMessageID finds the message to test on: the message id when given, else the work
// item's latest message. On a problem it returns the form field and what to enter.
func (h *handler) testMessageID(ctx context.Context, workItem, msg string) (id int64, field, problem string) {
	if msg != "" {
		n, err := strconv.ParseInt(msg, 10, 64)
		if err != nil || n <= 0 {
			return 0, "message_id", "enter a message number, e.g. 42"
		}
		return n, "", ""
	}
	n, err := strconv.ParseInt(workItem, 10, 64)
	if err != nil || n <= 0 {
		return 0, "work_item_id", "enter a work item number (or a message number below)"
	}
	wi, err := h.st.WorkItem(ctx, n)
	if err != nil {
		return 0, "work_item_id", "no work item has this number: check it"
	}
	return wi.MessageID, "", ""
}

func (h *handler) renderRules(w http.ResponseWriter, r *http.Request, v viewer, status int, d rulesData) {
	ctx := r.Context()
	objs, err := h.orderedRules(ctx)
	if err != nil {
		h.serverError(w, r, "list the rules", err)
		return
	}
	names, err := h.loadNames(ctx)
	if err != nil {
		h.serverError(w, r, "read the queues", err)
		return
	}
	for i, o := range objs {
		row := ruleRow{ID: o.ID, Name: o.Name, First: i == 0, Last: i == len(objs)-1}
		rl, err := routing.RuleOf(o)
		if err != nil {
			row.Broken = err.Error()
		} else {
			row.Enabled, row.Continue, row.Match = rl.Enabled, rl.Continue, cmp.Or(rl.Match, routing.MatchAll)
			for _, c := range rl.Conditions {
				row.Conditions = append(row.Conditions, describeCondition(c))
			}
			row.Actions = names.describeActions(rl.Actions)
		}
		d.Rows = append(d.Rows, row)
	}
	if d.TestErrors == nil {
		d.TestErrors = map[string]string{}
	}
	h.render(w, r, status, "rules", h.data(v, "Classification rules", "routing", d))
}

// ---- the form ----

type conditionRow struct {
	Field, Op, Header, Value string
	Negate                   bool
}

type ruleForm struct {
	Name       string
	Enabled    bool
	Match      string
	Continue   bool
	Conditions []conditionRow
	QueueID    int64
	Category   string
	Priority   string
	Skills     string
	Language   string
	Tags       string
	SLAPolicy  int64
	Schema     int64
	Close      string
}

type ruleFormData struct {
	ID     int64
	Form   ruleForm
	Errors map[string]string
	Error  string
	Notice string
	Names  routingNames
	Fields []string
	Ops    []string
	// The test of this rule on a message.
	WorkItemID string
	MessageID  string
	Test       *ruleTestView
}

var (
	conditionFields = []string{routing.FieldMailbox, routing.FieldSender, routing.FieldSenderDomain, routing.FieldRecipients,
		routing.FieldSubject, routing.FieldBody, routing.FieldHeader, routing.FieldHasAttachment, routing.FieldLanguage, routing.FieldAutomatic}
	conditionOps = []string{routing.OpContains, routing.OpEquals, routing.OpStartsWith, routing.OpEndsWith, routing.OpRegex,
		routing.OpIn, routing.OpPresent, routing.OpIs}
)

func ruleFormOf(rl routing.Rule) ruleForm {
	f := ruleForm{Name: rl.Name, Enabled: rl.Enabled, Match: cmp.Or(rl.Match, routing.MatchAll), Continue: rl.Continue,
		QueueID: rl.Actions.QueueID, Category: rl.Actions.Category, Skills: formatSkills(rl.Actions.Skills),
		Language: rl.Actions.Language, Tags: strings.Join(rl.Actions.Tags, ", "), SLAPolicy: rl.Actions.SLAPolicyID,
		Schema: rl.Actions.SchemaID, Close: rl.Actions.Close}
	if rl.Actions.PriorityAdjust != 0 {
		f.Priority = strconv.Itoa(rl.Actions.PriorityAdjust)
	}
	for _, c := range rl.Conditions {
		f.Conditions = append(f.Conditions, conditionRow{Field: c.Field, Op: c.Op, Header: c.Header, Value: c.Value, Negate: c.Negate})
	}
	return f
}

// parseRuleForm reads the posted rule. Condition rows without a field are left out.
func parseRuleForm(r *http.Request) (ruleForm, routing.Rule, map[string]string) {
	p := r.PostForm
	errs := map[string]string{}
	f := ruleForm{Name: strings.TrimSpace(p.Get("name")), Enabled: p.Get("enabled") != "", Match: p.Get("match"),
		Continue: p.Get("continue") != "", Category: strings.TrimSpace(p.Get("category")), Priority: strings.TrimSpace(p.Get("priority_adjust")),
		Skills: strings.TrimSpace(p.Get("skills")), Language: strings.TrimSpace(p.Get("language")), Tags: strings.TrimSpace(p.Get("tags")),
		Close: p.Get("close")}
	f.QueueID, _ = strconv.ParseInt(p.Get("queue_id"), 10, 64)
	f.SLAPolicy, _ = strconv.ParseInt(p.Get("sla_policy_id"), 10, 64)
	f.Schema, _ = strconv.ParseInt(p.Get("schema_id"), 10, 64)
	rows, _ := strconv.Atoi(p.Get("condition_rows"))
	rows = min(max(rows, 0), 100)
	for i := range rows {
		c := conditionRow{Field: p.Get(fmt.Sprintf("c%d_field", i)), Op: p.Get(fmt.Sprintf("c%d_op", i)),
			Header: strings.TrimSpace(p.Get(fmt.Sprintf("c%d_header", i))), Value: p.Get(fmt.Sprintf("c%d_value", i)),
			Negate: p.Get(fmt.Sprintf("c%d_negate", i)) != ""}
		if c.Field == "" {
			continue
		}
		f.Conditions = append(f.Conditions, c)
	}
	rl := routing.Rule{Name: f.Name, Enabled: f.Enabled, Match: f.Match, Continue: f.Continue}
	for _, c := range f.Conditions {
		rl.Conditions = append(rl.Conditions, routing.Condition{Field: c.Field, Op: c.Op, Header: c.Header, Value: c.Value, Negate: c.Negate})
	}
	a := &rl.Actions
	a.QueueID, a.Category, a.Language, a.SLAPolicyID, a.SchemaID, a.Close = f.QueueID, f.Category, f.Language, f.SLAPolicy, f.Schema, f.Close
	a.PriorityAdjust = atoiField(errs, "priority_adjust", f.Priority, "enter a whole number, e.g. 10 or -5")
	if f.Skills != "" {
		a.Skills = map[string]int{}
		for part := range strings.SplitSeq(f.Skills, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, level, ok := strings.Cut(part, ":")
			n, err := strconv.Atoi(strings.TrimSpace(level))
			if !ok || err != nil || strings.TrimSpace(name) == "" {
				addError(errs, "skills", fmt.Sprintf("%q: enter skills as name:level separated by commas, e.g. billing:5, orders:3", part))
				continue
			}
			a.Skills[strings.TrimSpace(name)] = n
		}
	}
	for t := range strings.SplitSeq(f.Tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			a.Tags = append(a.Tags, t)
		}
	}
	if fields := validationFields(rl.Validate()); fields != nil {
		for k, msg := range fields {
			k = strings.TrimPrefix(k, "actions.")
			switch {
			case strings.HasPrefix(k, "skills"):
				if skill := strings.TrimPrefix(strings.TrimPrefix(k, "skills"), "."); skill != "" {
					msg = skill + ": " + msg
				}
				addError(errs, "skills", msg)
			case strings.HasPrefix(k, "tags"):
				addError(errs, "tags", msg)
			default:
				addError(errs, k, msg)
			}
		}
	}
	if len(errs) == 0 {
		errs = nil
	}
	return f, rl, errs
}

func (h *handler) ruleNew(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderRuleForm(w, r, v, http.StatusOK, ruleFormData{Form: ruleForm{Enabled: true, Match: routing.MatchAll}})
}

// loadRule reads {id} as a stored rule; on failure it has written the page.
func (h *handler) loadRule(w http.ResponseWriter, r *http.Request) (store.RoutingObject, routing.Rule, bool) {
	o, ok := h.loadObject(w, r, &objectKind{kind: store.KindRule, what: "rule"})
	if !ok {
		return o, routing.Rule{}, false
	}
	rl, err := routing.RuleOf(o)
	if err != nil {
		h.serverError(w, r, "read the rule", err)
		return o, rl, false
	}
	return o, rl, true
}

func (h *handler) ruleEdit(w http.ResponseWriter, r *http.Request, v viewer) {
	o, rl, ok := h.loadRule(w, r)
	if !ok {
		return
	}
	d := ruleFormData{ID: o.ID, Form: ruleFormOf(rl)}
	if r.URL.Query().Get("notice") == "saved" {
		d.Notice = "Rule saved. New messages are classified with it from now on."
	}
	h.renderRuleForm(w, r, v, http.StatusOK, d)
}

func (h *handler) renderRuleForm(w http.ResponseWriter, r *http.Request, v viewer, status int, d ruleFormData) {
	names, err := h.loadNames(r.Context())
	if err != nil {
		h.serverError(w, r, "read the queues", err)
		return
	}
	d.Names, d.Fields, d.Ops = names, conditionFields, conditionOps
	if d.Errors == nil {
		d.Errors = map[string]string{}
	}
	for range blankConditionRows {
		d.Form.Conditions = append(d.Form.Conditions, conditionRow{})
	}
	title := "New rule"
	if d.ID != 0 {
		title = "Rule " + d.Form.Name
	}
	h.render(w, r, status, "rule", h.data(v, title, "routing", d))
}

// ruleSubmit saves the rule, or with do=test runs it on a stored message without saving.
func (h *handler) ruleSubmit(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	var existing store.RoutingObject
	if r.PathValue("id") != "" {
		o, _, ok := h.loadRule(w, r)
		if !ok {
			return
		}
		existing = o
	}
	f, rl, errs := parseRuleForm(r)
	d := ruleFormData{ID: existing.ID, Form: f, Errors: errs,
		WorkItemID: strings.TrimSpace(r.PostForm.Get("work_item_id")), MessageID: strings.TrimSpace(r.PostForm.Get("message_id"))}
	if r.PostForm.Get("do") == "test" {
		h.ruleTest(w, r, v, d, rl)
		return
	}
	if len(errs) > 0 {
		d.Error = "The rule was not saved: correct the fields marked below."
		h.renderRuleForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	rl.ID, rl.Position = existing.ID, existing.Position
	if existing.ID == 0 {
		objs, err := h.orderedRules(ctx)
		if err != nil {
			h.serverError(w, r, "list the rules", err)
			return
		}
		rl.Position = 10
		if n := len(objs); n > 0 {
			rl.Position = objs[n-1].Position + 10
		}
	}
	o, err := h.saveObject(ctx, v, store.KindRule, rl.ID, rl.Name, rl.Position, rl)
	switch {
	case errors.Is(err, store.ErrConflict):
		d.Errors = map[string]string{"name": "a rule with this name exists: choose another name"}
		d.Error = "The rule was not saved: correct the fields marked below."
		h.renderRuleForm(w, r, v, http.StatusConflict, d)
	case err != nil:
		h.serverError(w, r, "save the rule", err)
	default:
		http.Redirect(w, r, fmt.Sprintf("/routing/rules/%d?notice=saved", o.ID), http.StatusSeeOther)
	}
}

// ruleTest shows what the rule on the form would do to a stored message.
func (h *handler) ruleTest(w http.ResponseWriter, r *http.Request, v viewer, d ruleFormData, rl routing.Rule) {
	if len(d.Errors) > 0 {
		d.Error = "The rule cannot be tested yet: correct the fields marked below."
		h.renderRuleForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	id, field, msg := h.testMessageID(r.Context(), d.WorkItemID, d.MessageID)
	if msg != "" {
		d.Errors = map[string]string{field: msg}
		h.renderRuleForm(w, r, v, http.StatusBadRequest, d)
		return
	}
	rl.ID = d.ID
	res, err := routing.TryRule(r.Context(), h.st, rl, id)
	switch {
	case store.IsNotFound(err):
		d.Errors = map[string]string{"message_id": "no stored message has this number: check it"}
		h.renderRuleForm(w, r, v, http.StatusBadRequest, d)
		return
	case err != nil:
		h.serverError(w, r, "test the rule", err)
		return
	}
	names, err := h.loadNames(r.Context())
	if err != nil {
		h.serverError(w, r, "read the queues", err)
		return
	}
	d.Test = names.testView(res)
	d.Notice = "Tested on the message below; the rule was not saved."
	h.renderRuleForm(w, r, v, http.StatusOK, d)
}

// ruleMove moves a rule one place up or down: the rules are numbered 10, 20, 30, ... in
// their new order, so that no two share a position.
func (h *handler) ruleMove(w http.ResponseWriter, r *http.Request, v viewer) {
	o, _, ok := h.loadRule(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	objs, err := h.orderedRules(ctx)
	if err != nil {
		h.serverError(w, r, "list the rules", err)
		return
	}
	i := slices.IndexFunc(objs, func(x store.RoutingObject) bool { return x.ID == o.ID })
	j := i - 1
	if r.PostForm.Get("dir") == "down" {
		j = i + 1
	}
	if i >= 0 && j >= 0 && j < len(objs) {
		objs[i], objs[j] = objs[j], objs[i]
	}
	for k, x := range objs {
		pos := (k + 1) * 10
		if x.Position == pos {
			continue
		}
		rl, err := routing.RuleOf(x)
		if err != nil {
			h.serverError(w, r, "read the rule "+x.Name, err)
			return
		}
		rl.Position = pos
		if _, err := h.saveObject(ctx, v, store.KindRule, x.ID, x.Name, pos, rl); err != nil {
			h.serverError(w, r, "move the rule", err)
			return
		}
	}
	http.Redirect(w, r, "/routing/rules?notice=moved", http.StatusSeeOther)
}

func (h *handler) ruleSetEnabled(enabled bool) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		o, rl, ok := h.loadRule(w, r)
		if !ok {
			return
		}
		rl.Enabled = enabled
		if _, err := h.saveObject(r.Context(), v, store.KindRule, o.ID, o.Name, o.Position, rl); err != nil {
			h.serverError(w, r, "change the rule", err)
			return
		}
		notice := "disabled"
		if enabled {
			notice = "enabled"
		}
		http.Redirect(w, r, "/routing/rules?notice="+notice, http.StatusSeeOther)
	}
}

func (h *handler) ruleDelete(w http.ResponseWriter, r *http.Request, v viewer) {
	o, _, ok := h.loadRule(w, r)
	if !ok {
		return
	}
	if err := h.st.DeleteRoutingObject(r.Context(), o.ID, store.AuditEvent{Actor: v.User.Username, Action: "rule.delete",
		Object: fmt.Sprintf("rule:%d", o.ID), Old: string(o.Spec)}); err != nil && !store.IsNotFound(err) {
		h.serverError(w, r, "delete the rule", err)
		return
	}
	h.routingChanged()
	http.Redirect(w, r, "/routing/rules?notice=deleted", http.StatusSeeOther)
}
