package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// routingFixture is the fixture with the routing engine and the lifecycle service
// wired: the Default queue (holding the three seeded items) is served by ana.
type routingFixture struct {
	*fixture
	engine        *routing.Engine
	work          *workitem.Service
	queue         store.Queue
	ana, sam, ada store.User
}

func newRoutingFixture(t *testing.T) *routingFixture {
	t.Helper()
	ctx := context.Background()
	f := &routingFixture{fixture: newFixture(t)}
	st := f.st
	var err error
	for name, u := range map[string]*store.User{"ana": &f.ana, "sam": &f.sam, "admin": &f.ada} {
		if *u, err = st.UserByUsername(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if f.queue, err = st.EnsureDefaultQueue(ctx); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(routing.QueueSettings{Agents: []int64{f.ana.ID}})
	if err := st.SetQueueSpec(ctx, f.queue.ID, f.queue.Name, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveAgent(ctx, store.Agent{UserID: f.ana.ID, Capacity: 5}); err != nil {
		t.Fatal(err)
	}
	f.engine = routing.NewEngine(routing.EngineOptions{Store: st})
	if err := f.engine.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.work = workitem.NewService(st, f.engine)
	h, err := New(Options{
		Store: st, Auth: f.auth, Replier: outbound.NewService(st, slog.New(slog.DiscardHandler)),
		Mailboxes: f.mbox, ProductVersion: "test",
		SignIn: credential.NewSignIn(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)}),
		Engine: f.engine, WorkItems: f.work,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// step runs one round of the engine (offers are pushed).
func (f *routingFixture) step(t *testing.T) {
	t.Helper()
	if err := f.engine.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *routingFixture) item(t *testing.T, id int64) store.WorkItem {
	t.Helper()
	wi, err := f.st.WorkItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return wi
}

// offeredTo returns the item offered to the user (it fails unless exactly one is).
func (f *routingFixture) offeredTo(t *testing.T, u store.User) store.WorkItem {
	t.Helper()
	list, err := f.st.ListWorkItems(context.Background(), store.WorkItemFilter{State: store.StateOffered, OfferedTo: u.ID})
	if err != nil || len(list) != 1 {
		t.Fatalf("offers to %s: %d, %v; want 1", u.Username, len(list), err)
	}
	return list[0]
}

// act posts an action form as the page's buttons do.
func act(c *browserless, token string, id int64, action, seen string, extra ...string) webPage {
	c.t.Helper()
	form := url.Values{"csrf": {token}, "action": {action}}
	if seen != "" {
		form.Set("seen", seen)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return c.post(fmt.Sprintf("/workitems/%d/action", id), form)
}

// text is the page's visible text, roughly: tags dropped, spaces collapsed.
func (p webPage) text() string {
	s := regexp.MustCompile(`(?s)<head>.*?</head>|<[^>]+>`).ReplaceAllString(p.body, " ")
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&#39;", "'", "&quot;", `"`, "&amp;", "&").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

func TestLandingByRole(t *testing.T) {
	f := newFixture(t)
	for user, want := range map[string]string{"ana": "/my", "sam": "/workitems", "admin": "/workitems"} {
		c := f.signIn(t, user)
		if p := c.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != want {
			t.Errorf("%s GET /: %d to %q, want %s", user, p.status, p.header.Get("Location"), want)
		}
	}
}

func TestMyWorkWithoutRouting(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "ana")
	p := c.get("/my")
	if p.status != http.StatusOK || !strings.Contains(p.text(), "Routing is not running on this server") || strings.Contains(p.body, `id="get-next"`) {
		t.Fatalf("/my without routing: %d\n%s", p.status, p.text())
	}
	token := p.csrf(t)
	for _, path := range []string{"/my/next", "/my/status"} {
		if p := c.post(path, url.Values{"csrf": {token}, "status": {"available"}}); p.status != http.StatusServiceUnavailable ||
			!strings.Contains(p.text(), "Routing is not running") {
			t.Errorf("POST %s without routing: %d\n%s", path, p.status, p.text())
		}
	}
	id := f.items["plain.eml"].WorkItemID
	if p := act(c, token, id, "close", ""); p.status != http.StatusServiceUnavailable {
		t.Errorf("action without routing: %d", p.status)
	}
	p = c.get(fmt.Sprintf("/workitems/%d", id))
	if p.status != http.StatusOK || !strings.Contains(p.text(), "Routing is not running") || strings.Contains(p.body, `name="action"`) {
		t.Errorf("item page without routing: %d\n%s", p.status, p.text())
	}
}

func TestMyWorkOfferAcceptAndActions(t *testing.T) {
	f := newRoutingFixture(t)
	c := f.signIn(t, "ana")
	p := c.get("/my")
	if p.status != http.StatusOK || !strings.Contains(p.body, `<meta http-equiv="refresh" content="15">`) {
		t.Fatalf("/my: %d, want a page that refreshes itself\n%s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
		t.Errorf("/my CSP = %q", csp)
	}
	if !strings.Contains(p.text(), "Status: offline") || !strings.Contains(p.text(), "No offers waiting for you.") {
		t.Errorf("/my before going available:\n%s", p.text())
	}
	token := p.csrf(t)

	// Going available: the engine offers ana the oldest item.
	p = c.post("/my/status", url.Values{"csrf": {token}, "status": {"available"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/my?note=status" {
		t.Fatalf("status: %d %q\n%s", p.status, p.header.Get("Location"), p.text())
	}
	if p := c.post("/my/status", url.Values{"csrf": {token}, "status": {"dancing"}}); p.status != http.StatusBadRequest {
		t.Errorf("unknown status: %d, want 400", p.status)
	}
	f.step(t)
	offer := f.offeredTo(t, f.ana)
	p = c.get("/my")
	text := p.text()
	if !strings.Contains(text, "Status: available") || !strings.Contains(text, offer.Subject) {
		t.Fatalf("/my after the offer:\n%s", text)
	}
	if left := regexp.MustCompile(`\b(1 min \d+ s|2 min) left\b`).FindString(text); left == "" {
		t.Errorf("/my shows no time left on the offer (default timeout 120 s):\n%s", text)
	}

	// Accept: to the item, assigned to ana, with her buttons (and no supervisor's).
	p = act(c, token, offer.ID, "accept", "offered")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != fmt.Sprintf("/workitems/%d?done=accept", offer.ID) {
		t.Fatalf("accept: %d %q\n%s", p.status, p.header.Get("Location"), p.text())
	}
	p = c.get(p.header.Get("Location"))
	text = p.text()
	for _, want := range []string{"Accepted: the work item is yours.", "State assigned", "Queue Default", "Assigned to Ana Agent", "offered → assigned"} {
		if !strings.Contains(text, want) {
			t.Errorf("item after accept lacks %q:\n%s", want, text)
		}
	}
	for _, a := range []string{"pend", "hold", "close", "release"} {
		if !strings.Contains(p.body, `name="action" value="`+a+`"`) {
			t.Errorf("item page lacks the %s button", a)
		}
	}
	if strings.Contains(p.body, `value="cancel"`) || strings.Contains(p.body, `id="transfer-agent"`) || strings.Contains(p.body, "Routing decisions") {
		t.Errorf("an agent sees supervisor's controls")
	}
	if !strings.Contains(p.body, `id="transfer-queue"`) || !strings.Contains(p.body, ">Billing<") {
		t.Errorf("item page lacks the transfer to a queue")
	}

	// Refused: an agent may not cancel. The page says why; 409, not 500.
	p = act(c, token, offer.ID, "cancel", "assigned")
	if p.status != http.StatusConflict || !strings.Contains(p.text(), "Not allowed: only a supervisor may cancel a work item.") {
		t.Errorf("agent cancels: %d\n%s", p.status, p.text())
	}
	if wi := f.item(t, offer.ID); wi.State != store.StateAssigned {
		t.Errorf("after the refused cancel the item is %s", wi.State)
	}

	// Conflict: a supervisor put it on hold meanwhile; ana's Close (seen assigned) is refused.
	if _, err := f.work.Do(context.Background(), f.sam, offer.ID, workitem.Request{Action: workitem.Hold}); err != nil {
		t.Fatal(err)
	}
	p = act(c, token, offer.ID, "close", "assigned")
	if p.status != http.StatusConflict || !strings.Contains(p.text(), "The work item changed meanwhile") || !strings.Contains(p.text(), "State on_hold") {
		t.Errorf("stale close: %d\n%s", p.status, p.text())
	}

	// Resume, pend, show on /my with the state; then close.
	for _, step := range []struct{ action, seen, want string }{
		{"resume", "on_hold", store.StateAssigned}, {"pend", "assigned", store.StatePending},
	} {
		if p := act(c, token, offer.ID, step.action, step.seen); p.status != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", step.action, p.status, p.text())
		}
		if wi := f.item(t, offer.ID); wi.State != step.want {
			t.Fatalf("after %s: %s, want %s", step.action, wi.State, step.want)
		}
	}
	if text := c.get("/my").text(); !strings.Contains(text, offer.Subject+" Carla Customer Default pending no SLA") {
		t.Errorf("/my lacks the pending item:\n%s", text)
	}
	if p := act(c, token, offer.ID, "close", "pending"); p.status != http.StatusSeeOther {
		t.Fatalf("close: %d\n%s", p.status, p.text())
	}
	p = c.get(fmt.Sprintf("/workitems/%d", offer.ID))
	// A done item offers its agent only Reopen.
	if text := p.text(); !strings.Contains(text, "State done") || !strings.Contains(text, "pending → done") ||
		!strings.Contains(p.body, `value="reopen"`) || strings.Contains(p.body, `value="close"`) || strings.Contains(p.body, `value="pend"`) {
		t.Errorf("closed item:\n%s", text)
	}
}

func TestMyWorkDeclineAndGetNext(t *testing.T) {
	f := newRoutingFixture(t)
	c := f.signIn(t, "ana")
	token := c.get("/my").csrf(t)
	if p := c.post("/my/status", url.Values{"csrf": {token}, "status": {"available"}}); p.status != http.StatusSeeOther {
		t.Fatal(p.status)
	}
	f.step(t)
	offer := f.offeredTo(t, f.ana)
	p := act(c, token, offer.ID, "decline", "offered")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/my?note=declined" {
		t.Fatalf("decline: %d %q\n%s", p.status, p.header.Get("Location"), p.text())
	}
	if wi := f.item(t, offer.ID); wi.State != store.StateQueued || len(wi.DeclinedBy) != 1 {
		t.Errorf("declined item: %s, declined by %v", wi.State, wi.DeclinedBy)
	}
	// Accepting the declined (no longer offered) item is refused with a message.
	if p := act(c, token, offer.ID, "accept", "offered"); p.status != http.StatusConflict || !strings.Contains(p.text(), "changed meanwhile") {
		t.Errorf("accept after decline: %d\n%s", p.status, p.text())
	}
	// Away: no more offers. Get next assigns the two items she did not decline, then
	// nothing fits.
	if p := c.post("/my/status", url.Values{"csrf": {token}, "status": {"away"}}); p.status != http.StatusSeeOther {
		t.Fatal(p.status)
	}
	f.step(t)
	for range 2 {
		p := c.post("/my/next", url.Values{"csrf": {token}})
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "?done=next") {
			t.Fatalf("get next: %d %q\n%s", p.status, p.header.Get("Location"), p.text())
		}
		if text := c.get(p.header.Get("Location")).text(); !strings.Contains(text, "This is your next work item") || !strings.Contains(text, "State assigned") {
			t.Errorf("pulled item page:\n%s", text)
		}
	}
	p = c.post("/my/next", url.Values{"csrf": {token}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/my?note=nothing" {
		t.Fatalf("get next with nothing left: %d %q", p.status, p.header.Get("Location"))
	}
	text := c.get(p.header.Get("Location")).text()
	if !strings.Contains(text, "Nothing fits your skills and capacity right now") || !strings.Contains(text, "Status: away") {
		t.Errorf("/my after nothing fits:\n%s", text)
	}
	if n := strings.Count(c.get("/my").body, `<tr class="state-assigned">`); n != 2 {
		t.Errorf("/my lists %d assigned items, want 2", n)
	}
}

func TestWorkItemSupervisorView(t *testing.T) {
	f := newRoutingFixture(t)
	ctx := context.Background()
	if err := f.engine.SetStatus(ctx, f.ana.ID, store.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	f.step(t)
	offer := f.offeredTo(t, f.ana)
	// An SLA at risk on another item.
	other := f.items["html.eml"].WorkItemID
	if other == offer.ID {
		other = f.items["broken.eml"].WorkItemID
	}
	due, risk := time.Now().Add(20*time.Minute), time.Now().Add(-time.Minute)
	if res, err := f.st.ApplyChanges(ctx, []store.Change{{WorkItemID: other, From: []string{store.StateQueued}, To: store.StateQueued,
		SLADueAt: &due, SLARiskAt: &risk, Event: store.Event{Kind: "test", Reason: "SLA set by the test"}}}); err != nil || res[0].Err != nil {
		t.Fatalf("set SLA: %v %v", err, res)
	}

	c := f.signIn(t, "sam")
	p := c.get(fmt.Sprintf("/workitems/%d", offer.ID))
	text := p.text()
	for _, want := range []string{"Routing decisions", "push to ana", "The best waiting item", "left", "#1", "State offered"} {
		if !strings.Contains(text, want) {
			t.Errorf("supervisor's item page lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`Priority \d+ \(schema \d+ at age`).MatchString(text) {
		t.Errorf("no priority breakdown:\n%s", text)
	}
	for _, a := range []string{"cancel", "close"} {
		if !strings.Contains(p.body, `name="action" value="`+a+`"`) {
			t.Errorf("supervisor lacks the %s button", a)
		}
	}
	if strings.Contains(p.body, `value="accept"`) {
		t.Errorf("supervisor sees Accept on someone else's offer")
	}
	token := p.csrf(t)

	// Transfer to an agent (admin): assigned at once; ana's offer is gone.
	p = act(c, token, offer.ID, "transfer", "offered", "agent_id", fmt.Sprint(f.ada.ID))
	if p.status != http.StatusSeeOther {
		t.Fatalf("transfer to agent: %d\n%s", p.status, p.text())
	}
	if wi := f.item(t, offer.ID); wi.State != store.StateAssigned || wi.AssignedTo != f.ada.ID {
		t.Errorf("after transfer: %s to %d", wi.State, wi.AssignedTo)
	}
	// ana may no longer reply to it: the reply form says so, nothing is sent.
	anaC := f.signIn(t, "ana")
	anaToken := anaC.get("/my").csrf(t)
	p = anaC.post(fmt.Sprintf("/workitems/%d/reply", offer.ID), url.Values{"csrf": {anaToken}, "text": {"Hello"}})
	if p.status != http.StatusConflict || !strings.Contains(p.text(), "The reply was not sent. Not allowed: only the agent it is assigned to or a supervisor may reply it.") {
		t.Errorf("reply to someone else's item: %d\n%s", p.status, p.text())
	}
	// Cancel, then restart.
	if p := act(c, token, offer.ID, "cancel", "assigned", "reason", "duplicate"); p.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d\n%s", p.status, p.text())
	}
	if p := act(c, token, offer.ID, "restart", "cancelled"); p.status != http.StatusSeeOther {
		t.Fatalf("restart: %d\n%s", p.status, p.text())
	}
	text = c.get(fmt.Sprintf("/workitems/%d", offer.ID)).text()
	for _, want := range []string{"State queued", "assigned → cancelled duplicate", "cancelled → queued", "sam"} {
		if !strings.Contains(text, want) {
			t.Errorf("history lacks %q:\n%s", want, text)
		}
	}
	// Transfer to a queue without choosing one: the page asks for it.
	if p := act(c, token, offer.ID, "transfer", "queued"); p.status != http.StatusBadRequest || !strings.Contains(p.text(), "Choose the queue") {
		t.Errorf("transfer without a queue: %d", p.status)
	}

	// The list: SLA at risk, the routing columns.
	p = c.get("/workitems?state=open")
	if p.status != http.StatusOK || !strings.Contains(p.body, `class="sla sla-at-risk"`) || !regexp.MustCompile(`due in (1\d|20) min( \d+ s)? \(at risk\)`).MatchString(p.text()) {
		t.Errorf("list lacks the at-risk SLA:\n%s", p.text())
	}
}

func TestWorkItemListFiltersAndPaging(t *testing.T) {
	f := newRoutingFixture(t)
	ctx := context.Background()
	// One item to Billing and one done.
	billing, err := f.st.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var billingID int64
	for _, q := range billing {
		if q.Name == "Billing" {
			billingID = q.ID
		}
	}
	moved := f.items["html.eml"].WorkItemID
	if _, err := f.work.Do(ctx, f.sam, moved, workitem.Request{Action: workitem.Transfer, QueueID: billingID}); err != nil {
		t.Fatal(err)
	}
	closed := f.items["broken.eml"].WorkItemID
	if _, err := f.work.Do(ctx, f.sam, closed, workitem.Request{Action: workitem.Close}); err != nil {
		t.Fatal(err)
	}
	// Raise the priority of the oldest item, so that priority order differs from age.
	plain := f.items["plain.eml"].WorkItemID
	adj := 500
	if res, err := f.st.ApplyChanges(ctx, []store.Change{{WorkItemID: plain, From: []string{store.StateQueued}, To: store.StateQueued,
		PriorityAdjust: &adj, Event: store.Event{Kind: "test"}}}); err != nil || res[0].Err != nil {
		t.Fatalf("adjust: %v %v", err, res)
	}

	c := f.signIn(t, "ana")
	rows := func(p webPage) []string {
		return regexp.MustCompile(`<a href="/workitems/(\d+)">`).FindAllString(p.body, -1)
	}
	p := c.get("/workitems?state=open")
	if n := len(rows(p)); p.status != http.StatusOK || n != 2 || !strings.Contains(p.text(), "1–2 of 2") {
		t.Errorf("open items: %d rows\n%s", n, p.text())
	}
	p = c.get(fmt.Sprintf("/workitems?queue=%d", billingID))
	if r := rows(p); len(r) != 1 || !strings.Contains(r[0], fmt.Sprint(moved)) || !strings.Contains(p.text(), "Billing") {
		t.Errorf("Billing queue: %v\n%s", r, p.text())
	}
	p = c.get("/workitems?state=done")
	if r := rows(p); len(r) != 1 || !strings.Contains(r[0], fmt.Sprint(closed)) {
		t.Errorf("done: %v", r)
	}
	// Priority: the adjusted item first; paging one per page, with counts.
	p = c.get("/workitems?sort=priority&limit=1")
	r := rows(p)
	if len(r) != 1 || !strings.Contains(r[0], fmt.Sprintf("/%d\"", plain)) || !strings.Contains(p.text(), "1–1 of 3") {
		t.Fatalf("priority page 1: %v\n%s", r, p.text())
	}
	if !regexp.MustCompile(`>5\d\d</td>`).MatchString(p.body) {
		t.Errorf("priority column lacks the adjusted priority:\n%s", p.body)
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(p.body)
	if next == nil || strings.Contains(p.body, `rel="prev"`) {
		t.Fatalf("page 1 links:\n%s", p.body)
	}
	p = c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if !strings.Contains(p.text(), "2–2 of 3") || !strings.Contains(p.body, `rel="prev"`) || !strings.Contains(p.body, `rel="next"`) {
		t.Errorf("page 2:\n%s", p.text())
	}
	// Oldest first differs from newest first.
	if a, b := rows(c.get("/workitems?sort=oldest")), rows(c.get("/workitems?sort=newest")); len(a) != 3 || a[0] != b[2] {
		t.Errorf("oldest %v, newest %v", a, b)
	}
	if p := c.get("/workitems?sort=loudest"); p.status != http.StatusBadRequest || !strings.Contains(p.text(), "use newest, oldest or priority") {
		t.Errorf("bad sort: %d", p.status)
	}
}
