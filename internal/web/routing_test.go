package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// fieldError returns the error shown in the form field (the .field block) holding the
// input, select or textarea named name, "" when none.
func routingFieldError(t *testing.T, body, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?s)<div class="field invalid">\s*<label for="` + regexp.QuoteMeta(name) + `">.*?<p class="field-error" role="alert">([^<]*)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func objectIDFrom(t *testing.T, p webPage, base string) int64 {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("want a redirect, got %d:\n%s", p.status, p.body)
	}
	loc := p.header.Get("Location")
	var id int64
	if _, err := fmt.Sscanf(loc, base+"/%d", &id); err != nil {
		t.Fatalf("redirect to %q: %v", loc, err)
	}
	return id
}

func (f *fixture) audited(t *testing.T, object, action string) {
	t.Helper()
	events, err := f.st.ListAuditFor(context.Background(), object, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Action == action {
			return
		}
	}
	t.Errorf("no audit event %s for %s: %+v", action, object, events)
}

func TestCalendarPages(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/routing/calendars/new")
	if form.status != 200 || !strings.Contains(form.body, `name="hours"`) {
		t.Fatalf("new calendar form: %d\n%s", form.status, form.body)
	}
	csrf := form.csrf(t)

	// Overlapping hours are refused next to the hours, saying which line and what to do.
	bad := c.post("/routing/calendars", url.Values{"csrf": {csrf}, "name": {"Office"}, "time_zone": {"Europe/Berlin"},
		"hours": {"mon 09:00-17:00\nmon 12:00-18:00"}})
	if bad.status != http.StatusBadRequest {
		t.Fatalf("overlapping hours: %d", bad.status)
	}
	msg := routingFieldError(t, bad.body, "hours")
	if !strings.Contains(msg, "line 2") || !strings.Contains(msg, "overlaps line 1") || !strings.Contains(msg, "not overlap") {
		t.Errorf("hours error = %q", msg)
	}
	if !strings.Contains(bad.body, "mon 12:00-18:00") {
		t.Error("the typed hours are not shown again")
	}
	// An unknown time zone is refused at its field.
	bad = c.post("/routing/calendars", url.Values{"csrf": {csrf}, "name": {"Office"}, "time_zone": {"Mars/Olympus"}})
	if msg := routingFieldError(t, bad.body, "time_zone"); !strings.Contains(msg, "IANA") {
		t.Errorf("time zone error = %q", msg)
	}

	ok := c.post("/routing/calendars", url.Values{"csrf": {csrf}, "name": {"Office"}, "time_zone": {"Europe/Berlin"},
		"hours": {"mon-fri 09:00-12:00 13:00-17:00"}, "holidays": {"2026-12-25 Christmas"}, "special_days": {"2026-12-24 09:00-12:00 Christmas Eve"}})
	id := objectIDFrom(t, ok, "/routing/calendars")
	o, err := f.st.RoutingObject(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := routing.CalendarOf(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cal.Hours) != 10 || cal.Holidays[0].Name != "Christmas" || cal.Special[0].Hours[0].End != "12:00" || cal.Special[0].Name != "Christmas Eve" {
		t.Errorf("stored calendar: %+v", cal)
	}
	f.audited(t, fmt.Sprintf("calendar:%d", id), "calendar.save")

	edit := c.get(fmt.Sprintf("/routing/calendars/%d", id))
	if !strings.Contains(edit.body, "fri 13:00-17:00") || !strings.Contains(edit.body, "2026-12-24 09:00-12:00 Christmas Eve") {
		t.Errorf("edit form does not show the calendar:\n%s", edit.body)
	}
	upd := c.post(fmt.Sprintf("/routing/calendars/%d", id), url.Values{"csrf": {csrf}, "name": {"Office hours"}, "time_zone": {"Europe/Berlin"}, "hours": {"mon 08:00-16:00"}})
	if objectIDFrom(t, upd, "/routing/calendars") != id {
		t.Error("update made a new calendar")
	}
	list := c.get("/routing/calendars")
	if !strings.Contains(list.body, "Office hours") || !strings.Contains(list.body, "mon 08:00-16:00") {
		t.Errorf("list:\n%s", list.body)
	}

	// A supervisor sees it read-only and cannot change it.
	sam := f.signIn(t, "sam")
	view := sam.get(fmt.Sprintf("/routing/calendars/%d", id))
	if view.status != 200 || !strings.Contains(view.body, "<fieldset disabled>") || strings.Contains(view.body, `id="save"`) {
		t.Errorf("supervisor view: %d\n%s", view.status, view.body)
	}
	if p := sam.post(fmt.Sprintf("/routing/calendars/%d", id), url.Values{"csrf": {view.csrf(t)}, "name": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("supervisor save: %d", p.status)
	}
	if p := f.signIn(t, "ana").get("/routing/calendars"); p.status != http.StatusForbidden {
		t.Errorf("agent list: %d", p.status)
	}

	// In use by a queue: not deleted. Unused: deleted.
	q, _ := f.st.EnsureDefaultQueue(context.Background())
	spec, _ := json.Marshal(routing.QueueSettings{CalendarID: id})
	if err := f.st.SetQueueSpec(context.Background(), q.ID, q.Name, spec); err != nil {
		t.Fatal(err)
	}
	del := c.post(fmt.Sprintf("/routing/calendars/%d/delete", id), url.Values{"csrf": {csrf}})
	if del.status != http.StatusConflict || !strings.Contains(del.body, "queue Default") {
		t.Errorf("delete of a calendar in use: %d\n%s", del.status, del.body)
	}
	if err := f.st.SetQueueSpec(context.Background(), q.ID, q.Name, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if del := c.post(fmt.Sprintf("/routing/calendars/%d/delete", id), url.Values{"csrf": {csrf}}); del.status != http.StatusSeeOther {
		t.Errorf("delete: %d", del.status)
	}
	if _, err := f.st.RoutingObject(context.Background(), id); !store.IsNotFound(err) {
		t.Errorf("deleted calendar still there: %v", err)
	}
	f.audited(t, fmt.Sprintf("calendar:%d", id), "calendar.delete")
}

func TestSchemaPages(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	form := c.get("/routing/schemas/new")
	csrf := form.csrf(t)
	if !strings.Contains(form.body, "<svg") || !strings.Contains(form.body, "<polyline") {
		t.Errorf("the default schema's curve is not drawn:\n%s", form.body)
	}
	bad := c.post("/routing/schemas", url.Values{"csrf": {csrf}, "name": {"Fast"}, "start": {"10"}, "points": {"1h 20\n30m 30"}})
	if bad.status != http.StatusBadRequest {
		t.Fatalf("non-increasing points: %d", bad.status)
	}
	if msg := routingFieldError(t, bad.body, "points"); !strings.Contains(msg, "line 2") || !strings.Contains(msg, "greater than the previous point") {
		t.Errorf("points error = %q", msg)
	}
	if strings.Contains(bad.body, "<svg") {
		t.Error("an invalid schema's curve is drawn")
	}
	bad = c.post("/routing/schemas", url.Values{"csrf": {csrf}, "name": {"Fast"}, "start": {"10"}, "points": {"soon 20"}})
	if msg := routingFieldError(t, bad.body, "points"); !strings.Contains(msg, "line 1") {
		t.Errorf("unreadable point error = %q", msg)
	}

	ok := c.post("/routing/schemas", url.Values{"csrf": {csrf}, "name": {"Fast"}, "start": {"10"}, "points": {"30m 20\n1h 30"},
		"sla_point_s": {"2h"}, "breach_step": {"20"}, "breach_every_s": {"30m"}, "business_time": {"1"}})
	id := objectIDFrom(t, ok, "/routing/schemas")
	o, _ := f.st.RoutingObject(context.Background(), id)
	s, err := routing.SchemaOf(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 2 || s.Points[0].AgeS != 1800 || s.SLAPointS != 7200 || s.BreachEveryS != 1800 || !s.BusinessTime {
		t.Errorf("stored schema: %+v", s)
	}
	f.audited(t, fmt.Sprintf("schema:%d", id), "schema.save")
	page := c.get(fmt.Sprintf("/routing/schemas/%d", id))
	for _, want := range []string{"<polyline", ">SLA</text>", "30 from 1h", "30m 20\n1h 30"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("schema page lacks %q:\n%s", want, page.body)
		}
	}
	if list := c.get("/routing/schemas"); !strings.Contains(list.body, "20 after 30m") {
		t.Errorf("list:\n%s", list.body)
	}
}

func TestSLAPages(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "admin")
	csrf := c.get("/routing/sla/new").csrf(t)
	bad := c.post("/routing/sla", url.Values{"csrf": {csrf}, "name": {"Gold"}, "first_response_s": {"4h"}, "resolution_s": {"1h"}, "at_risk_percent": {"120"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(routingFieldError(t, bad.body, "at_risk_percent"), "1 to 99") ||
		!strings.Contains(routingFieldError(t, bad.body, "resolution_s"), "at least the first-response") {
		t.Errorf("bad SLA: %d\n%s", bad.status, bad.body)
	}
	if bad := c.post("/routing/sla", url.Values{"csrf": {csrf}, "name": {"Gold"}, "first_response_s": {"soon"}, "at_risk_percent": {"80"}}); !strings.Contains(routingFieldError(t, bad.body, "first_response_s"), "not a duration") {
		t.Errorf("unreadable duration:\n%s", bad.body)
	}
	ok := c.post("/routing/sla", url.Values{"csrf": {csrf}, "name": {"Gold"}, "first_response_s": {"1h"}, "next_response_s": {"30m"}, "resolution_s": {"2d"}, "at_risk_percent": {"75"}})
	id := objectIDFrom(t, ok, "/routing/sla")
	o, _ := f.st.RoutingObject(context.Background(), id)
	p, _ := routing.SLAPolicyOf(o)
	if p.FirstResponseS != 3600 || p.NextResponseS != 1800 || p.ResolutionS != 2*86400 || p.AtRiskPercent != 75 || p.BusinessTime {
		t.Errorf("stored policy: %+v", p)
	}
	f.audited(t, fmt.Sprintf("sla:%d", id), "sla.save")
	// The same name again is a field error.
	if dup := c.post("/routing/sla", url.Values{"csrf": {csrf}, "name": {"Gold"}, "first_response_s": {"1h"}, "at_risk_percent": {"80"}}); dup.status != http.StatusConflict || routingFieldError(t, dup.body, "name") == "" {
		t.Errorf("duplicate name: %d", dup.status)
	}
	if list := c.get("/routing/sla"); !strings.Contains(list.body, "Gold") || !strings.Contains(list.body, "2d") {
		t.Errorf("list:\n%s", list.body)
	}
}

// ruleForm is the posted form of a rule with conditions given as [field, op, header, value].
func ruleValues(csrf, name string, conds [][4]string, extra url.Values) url.Values {
	v := url.Values{"csrf": {csrf}, "name": {name}, "enabled": {"1"}, "match": {"all"}, "condition_rows": {fmt.Sprint(len(conds) + 1)}}
	for i, c := range conds {
		v.Set(fmt.Sprintf("c%d_field", i), c[0])
		v.Set(fmt.Sprintf("c%d_op", i), c[1])
		v.Set(fmt.Sprintf("c%d_header", i), c[2])
		v.Set(fmt.Sprintf("c%d_value", i), c[3])
	}
	for k, vs := range extra {
		v[k] = vs
	}
	return v
}

func TestRulePages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	csrf := c.get("/routing/rules/new").csrf(t)
	vip, err := f.st.CreateQueue(ctx, store.Queue{Name: "VIP", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}

	// An invalid regular expression is refused at its condition.
	bad := c.post("/routing/rules", ruleValues(csrf, "Orders", [][4]string{{"subject", "regex", "", "order (\\d+"}}, nil))
	if bad.status != http.StatusBadRequest {
		t.Fatalf("invalid regex: %d", bad.status)
	}
	row := regexp.MustCompile(`(?s)<tr id="condition-0" class="invalid">.*?</tr>`).FindString(bad.body)
	if !strings.Contains(row, "valid regular expression") || !strings.Contains(row, "missing closing )") {
		t.Errorf("condition row:\n%s", row)
	}
	if bad := c.post("/routing/rules", ruleValues(csrf, "Orders", nil, url.Values{"skills": {"billing"}})); !strings.Contains(routingFieldError(t, bad.body, "skills"), "name:level") {
		t.Errorf("bad skills:\n%s", bad.body)
	}

	// Test before saving: which conditions matched, what they saw, which actions apply.
	conds := [][4]string{{"subject", "regex", "", `order \d+`}, {"sender_domain", "equals", "", "example.net"}, {"header", "present", "X-Priority", ""}}
	extra := url.Values{"queue_id": {fmt.Sprint(vip.ID)}, "skills": {"orders:3, billing:5"}, "tags": {"order"}, "priority_adjust": {"5"},
		"do": {"test"}, "work_item_id": {fmt.Sprint(f.items["plain.eml"].WorkItemID)}}
	test := c.post("/routing/rules", ruleValues(csrf, "Orders", conds, extra))
	if test.status != 200 {
		t.Fatalf("test: %d\n%s", test.status, test.body)
	}
	sec := regexp.MustCompile(`(?s)<section class="rule-test".*?</section>`).FindString(test.body)
	for _, want := range []string{
		fmt.Sprintf("Test on message %d", f.items["plain.eml"].MessageID),
		"conditions not met",
		`<tr class="cond-matched"><td>subject regex &#34;order \d&#43;&#34;</td>`,
		"<code>Order 1234 has not arrived</code>",
		`<tr class="cond-matched"><td>sender_domain equals &#34;example.net&#34;</td>`,
		`<tr class="cond-failed"><td>header X-Priority present</td>`,
		"(no X-Priority field)",
		"None: the message would stay",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("test result lacks %q:\n%s", want, sec)
		}
	}
	if objs, _ := f.st.ListRoutingObjects(ctx, store.KindRule); len(objs) != 0 {
		t.Errorf("testing saved the rule: %+v", objs)
	}
	// With "any", the rule applies and the actions are listed.
	extra.Set("match", "any")
	sec = regexp.MustCompile(`(?s)<section class="rule-test".*?</section>`).FindString(c.post("/routing/rules", ruleValues(csrf, "Orders", conds, extra)).body)
	for _, want := range []string{"applied, evaluation stopped", "<li>queue VIP</li>", "<li>skills billing:5, orders:3</li>", "<li>priority &#43;5</li>", "<li>tags order</li>"} {
		if !strings.Contains(sec, want) {
			t.Errorf("test result lacks %q:\n%s", want, sec)
		}
	}
	if p := c.post("/routing/rules", ruleValues(csrf, "Orders", conds, url.Values{"do": {"test"}, "message_id": {"99999"}})); !strings.Contains(routingFieldError(t, p.body, "message_id"), "no stored message") {
		t.Errorf("unknown message:\n%s", p.body)
	}

	// Save three rules; they are listed in order and move up and down.
	extra.Del("do")
	id1 := objectIDFrom(t, c.post("/routing/rules", ruleValues(csrf, "Orders", conds, extra)), "/routing/rules")
	f.audited(t, fmt.Sprintf("rule:%d", id1), "rule.save")
	id2 := objectIDFrom(t, c.post("/routing/rules", ruleValues(csrf, "Spam", [][4]string{{"subject", "contains", "", "viagra"}}, url.Values{"close": {"spam"}})), "/routing/rules")
	id3 := objectIDFrom(t, c.post("/routing/rules", ruleValues(csrf, "Catch-all", nil, url.Values{"category": {"general"}})), "/routing/rules")
	order := func() []string {
		list := c.get("/routing/rules")
		var names []string
		for _, m := range regexp.MustCompile(`<tr id="rule-\d+">\s*<td>\d+</td>\s*<td><a href="/routing/rules/\d+">([^<]+)</a>`).FindAllStringSubmatch(list.body, -1) {
			names = append(names, m[1])
		}
		return names
	}
	if got := strings.Join(order(), ","); got != "Orders,Spam,Catch-all" {
		t.Fatalf("order = %s", got)
	}
	c.post(fmt.Sprintf("/routing/rules/%d/move", id3), url.Values{"csrf": {csrf}, "dir": {"up"}})
	if got := strings.Join(order(), ","); got != "Orders,Catch-all,Spam" {
		t.Errorf("after moving Catch-all up: %s", got)
	}
	c.post(fmt.Sprintf("/routing/rules/%d/move", id1), url.Values{"csrf": {csrf}, "dir": {"down"}})
	if got := strings.Join(order(), ","); got != "Catch-all,Orders,Spam" {
		t.Errorf("after moving Orders down: %s", got)
	}
	rules, _ := routing.SavedRules(ctx, f.st)
	if rs, err := routing.Compile(rules); err != nil {
		t.Fatal(err)
	} else if tr := rs.Explain(routing.Facts{}); tr[0].Name != "Catch-all" || tr[2].Name != "Spam" {
		t.Errorf("the engine's order differs from the page's: %+v", tr)
	}

	// Disable, enable.
	if p := c.post(fmt.Sprintf("/routing/rules/%d/disable", id2), url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.status)
	}
	o, _ := f.st.RoutingObject(ctx, id2)
	if rl, _ := routing.RuleOf(o); rl.Enabled || rl.Actions.Close != "spam" {
		t.Errorf("disabled rule: %+v", rl)
	}
	c.post(fmt.Sprintf("/routing/rules/%d/enable", id2), url.Values{"csrf": {csrf}})
	o, _ = f.st.RoutingObject(ctx, id2)
	if rl, _ := routing.RuleOf(o); !rl.Enabled {
		t.Errorf("enabled rule: %+v", rl)
	}

	// Edit keeps the position.
	edit := c.get(fmt.Sprintf("/routing/rules/%d", id1))
	if !strings.Contains(edit.body, `value="orders:3, billing:5"`) && !strings.Contains(edit.body, `value="billing:5, orders:3"`) {
		t.Errorf("edit form lacks the skills:\n%s", edit.body)
	}
	before, _ := f.st.RoutingObject(ctx, id1)
	objectIDFrom(t, c.post(fmt.Sprintf("/routing/rules/%d", id1), ruleValues(csrf, "Orders 2", conds, extra)), "/routing/rules")
	after, _ := f.st.RoutingObject(ctx, id1)
	if after.Name != "Orders 2" || after.Position != before.Position {
		t.Errorf("edited rule: %+v (before %+v)", after, before)
	}

	// A supervisor tests the saved rules from the list.
	sam := f.signIn(t, "sam")
	list := sam.get(fmt.Sprintf("/routing/rules?message_id=%d", f.items["plain.eml"].MessageID))
	if list.status != 200 || !strings.Contains(list.body, "Catch-all <span class=\"badge pass\">applied, evaluation stopped</span>") ||
		!strings.Contains(list.body, "matched, but an earlier rule stopped the evaluation") || strings.Contains(list.body, "/move") {
		t.Errorf("supervisor's test of the saved rules: %d\n%s", list.status, list.body)
	}
	if p := sam.get("/routing/rules?work_item_id=abc"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "enter a work item number") {
		t.Errorf("bad work item: %d", p.status)
	}

	if p := c.post(fmt.Sprintf("/routing/rules/%d/delete", id3), url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Errorf("delete: %d", p.status)
	}
	f.audited(t, fmt.Sprintf("rule:%d", id3), "rule.delete")
}

func TestQueueSettingsPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signIn(t, "admin")
	q, _ := f.st.EnsureDefaultQueue(ctx)
	other, _ := f.st.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	team, err := f.st.CreateTeam(ctx, "Tier 2")
	if err != nil {
		t.Fatal(err)
	}
	ana, _ := f.st.UserByUsername(ctx, "ana")
	cal, _ := f.st.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindCalendar, Name: "Office", Spec: []byte(`{"time_zone":"Europe/Berlin"}`)})

	queues := c.get("/queues")
	if !strings.Contains(queues.body, fmt.Sprintf(`href="/queues/%d/settings"`, q.ID)) {
		t.Fatalf("queues page has no settings link:\n%s", queues.body)
	}
	page := c.get(fmt.Sprintf("/queues/%d/settings", q.ID))
	if page.status != 200 || !strings.Contains(page.body, "Tier 2") || !strings.Contains(page.body, "Ana Agent (ana)") {
		t.Fatalf("settings page: %d\n%s", page.status, page.body)
	}
	csrf := page.csrf(t)
	path := fmt.Sprintf("/queues/%d/settings", q.ID)

	// Overflow with nowhere to go, falling relaxation rings, a bad duration.
	bad := c.post(path, url.Values{"csrf": {csrf}, "overflow_after_s": {"30m"}, "relax": {"2h -1\n1h -2"}, "offer_timeout_s": {"5s"}})
	if bad.status != http.StatusBadRequest {
		t.Fatalf("bad settings: %d", bad.status)
	}
	for field, want := range map[string]string{"overflow_after_s": "somewhere to go", "relax": "line 2", "offer_timeout_s": "10 to 3600"} {
		if msg := routingFieldError(t, bad.body, field); !strings.Contains(msg, want) {
			t.Errorf("%s error = %q, want %q", field, msg, want)
		}
	}
	if msg := routingFieldError(t, c.post(path, url.Values{"csrf": {csrf}, "relax": {"soon"}}).body, "relax"); !strings.Contains(msg, "60m -2") {
		t.Errorf("unreadable ring: %q", msg)
	}
	if msg := routingFieldError(t, c.post(path, url.Values{"csrf": {csrf}, "overflow_queue_id": {fmt.Sprint(q.ID)}}).body, "overflow_queue_id"); !strings.Contains(msg, "itself") {
		t.Errorf("overflow to itself: %q", msg)
	}

	ok := c.post(path, url.Values{"csrf": {csrf}, "calendar_id": {fmt.Sprint(cal.ID)}, "agents": {fmt.Sprint(ana.ID)}, "teams": {fmt.Sprint(team.ID)},
		"max_depth": {"500"}, "overflow_after_s": {"30m"}, "overflow_teams": {fmt.Sprint(team.ID)}, "overflow_queue_id": {fmt.Sprint(other.ID)},
		"overflow_boost": {"10"}, "offer_timeout_s": {"90"}, "relax": {"60m -2\n4h drop"}, "preferred_wait_s": {"1d"}, "return_after_s": {"1h"}})
	if ok.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", ok.status, ok.body)
	}
	stored, _ := f.st.Queue(ctx, q.ID)
	var s routing.QueueSettings
	if err := json.Unmarshal(stored.Spec, &s); err != nil {
		t.Fatal(err)
	}
	if s.CalendarID != cal.ID || len(s.Agents) != 1 || s.Agents[0] != ana.ID || s.Teams[0] != team.ID || s.MaxDepth != 500 ||
		s.OverflowAfterS != 1800 || s.OverflowQueueID != other.ID || s.OverflowBoost != 10 || s.OfferTimeoutS != 90 ||
		len(s.Relax) != 2 || s.Relax[0].DropLevels != 2 || !s.Relax[1].DropSkills || s.PreferredWaitS != 86400 || s.ReturnAfterS != 3600 {
		t.Errorf("stored settings: %+v", s)
	}
	if stored.Name != "Default" {
		t.Errorf("name changed: %q", stored.Name)
	}
	f.audited(t, fmt.Sprintf("queue:%d", q.ID), "queue.settings")
	again := c.get(path)
	for _, want := range []string{"1h -2\n4h drop", `value="30m"`, `value="1m30s"`, fmt.Sprintf(`<option value="%d" selected>Ana Agent (ana)</option>`, ana.ID)} {
		if !strings.Contains(again.body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if list := c.get("/queues"); !strings.Contains(list.body, "calendar Office") || !strings.Contains(list.body, "overflow after 30m") {
		t.Errorf("queues page summary:\n%s", list.body)
	}
	// Supervisors see the settings but cannot save.
	sam := f.signIn(t, "sam")
	view := sam.get(path)
	if view.status != 200 || strings.Contains(view.body, `id="save"`) {
		t.Errorf("supervisor view: %d", view.status)
	}
	if p := sam.post(path, url.Values{"csrf": {view.csrf(t)}}); p.status != http.StatusForbidden {
		t.Errorf("supervisor save: %d", p.status)
	}
}
