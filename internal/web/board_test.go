package web

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// boardFixture is the fixture with the routing engine (not running: no offers pushed)
// and the work item service, as app.New passes them.
type boardFixture struct {
	*fixture
	engine *routing.Engine
	work   *workitem.Service
	queue  store.Queue // Default, served by admin
	users  map[string]store.User
}

func newBoardFixture(t *testing.T) *boardFixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t)
	bf := &boardFixture{fixture: f, users: map[string]store.User{}}
	for _, name := range []string{"admin", "sam", "ana"} {
		u, err := f.st.UserByUsername(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		bf.users[name] = u
	}
	q, err := f.st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`{"agents": [%d], "max_depth": 10}`, bf.users["admin"].ID)
	if err := f.st.SetQueueSpec(ctx, q.ID, q.Name, []byte(spec)); err != nil {
		t.Fatal(err)
	}
	bf.queue = q
	bf.engine = routing.NewEngine(routing.EngineOptions{Store: f.st, NoPush: true, IdleTimeout: -1})
	if err := bf.engine.Load(ctx); err != nil {
		t.Fatal(err)
	}
	bf.work = workitem.NewService(f.st, bf.engine)
	h, err := New(Options{Store: f.st, Auth: f.auth, Mailboxes: f.mbox, ProductVersion: "test", Engine: bf.engine, WorkItems: bf.work})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.srv = srv
	return bf
}

func TestBoardRoles(t *testing.T) {
	f := newBoardFixture(t)
	ana := f.signIn(t, "ana")
	for _, p := range []string{"/board", "/board/events", "/board/queues/" + itoa(f.queue.ID), "/board/history.csv"} {
		if page := ana.get(p); page.status != http.StatusForbidden {
			t.Errorf("agent GET %s: %d, want 403", p, page.status)
		}
	}
	item := f.items["plain.eml"].WorkItemID
	page := ana.post("/board/items/"+itoa(item)+"/cancel", url.Values{"csrf": {ana.get("/workitems").csrf(t)}, "queue": {itoa(f.queue.ID)}})
	if page.status != http.StatusForbidden {
		t.Errorf("agent cancel: %d, want 403", page.status)
	}
	if wi, _ := f.st.WorkItem(context.Background(), item); wi.State != store.StateQueued {
		t.Errorf("agent's refused cancel left the item %s", wi.State)
	}
	anon := f.httpClient(t)
	if page := anon.get("/board"); page.status != http.StatusSeeOther || !strings.HasPrefix(page.header.Get("Location"), "/login") {
		t.Errorf("signed out: %d %s", page.status, page.header.Get("Location"))
	}
	for _, who := range []string{"sam", "admin"} {
		if page := f.signIn(t, who).get("/board"); page.status != http.StatusOK {
			t.Errorf("%s GET /board: %d", who, page.status)
		}
	}
}

func TestBoardPage(t *testing.T) {
	f := newBoardFixture(t)
	sam := f.signIn(t, "sam")
	page := sam.get("/board")
	if page.status != http.StatusOK {
		t.Fatalf("%d\n%s", page.status, page.body)
	}
	csp := page.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "'unsafe-inline'") {
		t.Errorf("board CSP = %q, want script-src 'self'", csp)
	}
	if other := sam.get("/account").header.Get("Content-Security-Policy"); !strings.Contains(other, "script-src 'none'") {
		t.Errorf("other pages' CSP = %q, want script-src 'none'", other)
	}
	for _, want := range []string{
		`<script src="/static/board.js" defer></script>`,
		`id="queue-` + itoa(f.queue.ID) + `"`, `<td class="depth">3</td>`, `<td class="queued">3</td>`,
		`<td class="limit">10</td>`, `href="/board/queues/` + itoa(f.queue.ID) + `"`,
		`id="agent-` + itoa(f.users["ana"].ID) + `"`, `<span class="load-text">0 of 5</span>`, `<meter`,
		`<svg id="hourly-chart"`, `3 arrived and 0 first responses in the last 24 hours`, `class="bar"`,
		`action="/board/history.csv"`, `Board</a>`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("board lacks %s", want)
		}
	}
	if strings.Contains(page.body, "<script>") {
		t.Error("the board has an inline script")
	}
	js := sam.get("/static/board.js")
	if js.status != http.StatusOK || !strings.Contains(js.header.Get("Content-Type"), "javascript") || !strings.Contains(js.body, "EventSource") {
		t.Errorf("board.js: %d %s", js.status, js.header.Get("Content-Type"))
	}
}

func TestBoardQueueActions(t *testing.T) {
	f := newBoardFixture(t)
	ctx := context.Background()
	sam := f.signIn(t, "sam")
	qpath := "/board/queues/" + itoa(f.queue.ID)
	page := sam.get(qpath)
	if page.status != http.StatusOK {
		t.Fatalf("%d\n%s", page.status, page.body)
	}
	plain, html := f.items["plain.eml"].WorkItemID, f.items["html.eml"].WorkItemID
	for _, want := range []string{"Order 1234 has not arrived", "Invoice question", "Broken structure",
		"start 10 · no point reached yet", `action="/board/items/` + itoa(plain) + `/reassign"`, "Back-pressure limit: 10",
		`<option value="` + itoa(f.users["ana"].ID) + `">Ana Agent</option>`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}
	// Oldest first among equal priorities: plain.eml came first.
	if strings.Index(page.body, `id="item-`+itoa(plain)+`"`) > strings.Index(page.body, `id="item-`+itoa(html)+`"`) {
		t.Error("items not in the engine's order")
	}
	csrf := page.csrf(t)
	act := func(item int64, action string, extra url.Values) webPage {
		t.Helper()
		form := url.Values{"csrf": {csrf}, "queue": {itoa(f.queue.ID)}}
		for k, v := range extra {
			form[k] = v
		}
		return sam.post("/board/items/"+itoa(item)+"/"+action, form)
	}
	state := func(item int64) store.WorkItem {
		t.Helper()
		wi, err := f.st.WorkItem(ctx, item)
		if err != nil {
			t.Fatal(err)
		}
		return wi
	}

	// A queued item cannot be held: shown on the page, not a server error.
	res := act(plain, "hold", nil)
	if res.status != http.StatusConflict || !strings.Contains(res.body, `id="error-banner"`) || !strings.Contains(res.body, "cannot hold a work item that is queued") {
		t.Errorf("hold of a queued item: %d\n%s", res.status, res.body)
	}
	// No agent chosen.
	if res := act(plain, "reassign", url.Values{"agent": {""}}); res.status != http.StatusBadRequest || !strings.Contains(res.body, "choose the agent to transfer it to") {
		t.Errorf("reassign without an agent: %d", res.status)
	}
	// Reassign to ana, then hold, then cancel, then restart.
	res = act(plain, "reassign", url.Values{"agent": {itoa(f.users["ana"].ID)}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != qpath+"?done=reassign&item="+itoa(plain) {
		t.Fatalf("reassign: %d %s\n%s", res.status, res.header.Get("Location"), res.body)
	}
	if wi := state(plain); wi.State != store.StateAssigned || wi.AssignedTo != f.users["ana"].ID {
		t.Errorf("after reassign: %s to %d", wi.State, wi.AssignedTo)
	}
	if page := sam.get(res.header.Get("Location")); !strings.Contains(page.body, "transferred to the agent you chose") || !strings.Contains(page.body, "Ana Agent</td>") {
		t.Errorf("page after reassign lacks the notice or the agent")
	}
	if res := act(plain, "hold", nil); res.status != http.StatusSeeOther || state(plain).State != store.StateOnHold {
		t.Errorf("hold: %d, state %s", res.status, state(plain).State)
	}
	if res := act(plain, "cancel", nil); res.status != http.StatusSeeOther || state(plain).State != store.StateCancelled {
		t.Errorf("cancel: %d, state %s", res.status, state(plain).State)
	}
	page = sam.get(qpath)
	if !strings.Contains(page.body, `id="closed-`+itoa(plain)+`"`) || !strings.Contains(page.body, `action="/board/items/`+itoa(plain)+`/restart"`) {
		t.Error("the cancelled item is not listed to restart")
	}
	if res := act(plain, "restart", nil); res.status != http.StatusSeeOther || state(plain).State != store.StateQueued {
		t.Errorf("restart: %d, state %s", res.status, state(plain).State)
	}
	// Twice: the item is no longer cancelled.
	if res := act(plain, "restart", nil); res.status != http.StatusConflict {
		t.Errorf("second restart: %d, want 409", res.status)
	}
	if res := act(plain, "explode", nil); res.status != http.StatusNotFound {
		t.Errorf("unknown action: %d", res.status)
	}
	if res := act(999999, "cancel", nil); res.status != http.StatusNotFound || !strings.Contains(res.body, `id="error-banner"`) {
		t.Errorf("unknown item: %d", res.status)
	}
	if page := sam.get("/board/queues/999999"); page.status != http.StatusNotFound {
		t.Errorf("unknown queue: %d", page.status)
	}
}

func TestBoardHistoryCSV(t *testing.T) {
	f := newBoardFixture(t)
	item := f.items["html.eml"].WorkItemID
	if _, err := f.work.Do(context.Background(), f.users["sam"], item, workitem.Request{Action: workitem.Cancel, Reason: "duplicate"}); err != nil {
		t.Fatal(err)
	}
	sam := f.signIn(t, "sam")
	today := time.Now().UTC().Format(time.DateOnly)
	res := sam.get("/board/history.csv?from=" + today + "&to=" + today)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(res.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("%d %q %q\n%s", res.status, res.header.Get("Content-Type"), res.header.Get("Content-Disposition"), res.body)
	}
	recs, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := "work_item_id,at,actor,kind,from,to,agent,queue,reason,subject,received_at,first_response_at,first_response_s,handle_time_s,sla_met"
	if got := strings.Join(recs[0], ","); got != want {
		t.Errorf("columns = %s", got)
	}
	var row []string
	for _, r := range recs[1:] {
		if r[0] == itoa(item) && r[3] == "cancel" {
			row = r
		}
	}
	if row == nil {
		t.Fatalf("no cancel row for item %d in %q", item, recs)
	}
	if _, err := time.Parse(time.RFC3339, row[1]); err != nil || row[2] != "sam" || row[4] != "queued" || row[5] != "cancelled" ||
		row[7] != "Default" || row[8] != "duplicate" || row[9] != "Invoice question" || row[10] == "" || row[14] != "" {
		t.Errorf("cancel row = %q", row)
	}

	for q, want := range map[string]string{
		"?from=2026-13-01&to=" + today:   "Enter a date as YYYY-MM-DD",
		"?from=2025-01-01&to=2025-12-31": "Choose at most 92 days",
		"?from=2025-02-01&to=2025-01-01": "Enter a date on or after from",
	} {
		res := sam.get("/board/history.csv" + q)
		if res.status != http.StatusBadRequest || !strings.Contains(res.body, want) || !strings.Contains(res.body, `aria-invalid="true"`) {
			t.Errorf("%s: %d, want 400 with %q\n%s", q, res.status, want, res.body)
		}
	}
}

// readEvent reads one server-sent event named board and returns its data.
func readEvent(t *testing.T, r *bufio.Reader) routing.Board {
	t.Helper()
	var event, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			if event != "board" {
				t.Fatalf("event %q", event)
			}
			var b routing.Board
			if err := json.Unmarshal([]byte(data), &b); err != nil {
				t.Fatalf("event data: %v\n%s", err, data)
			}
			return b
		}
	}
}

func TestBoardEvents(t *testing.T) {
	// No timer: the second event must come from the change itself.
	defer func(d time.Duration) { boardInterval = d }(boardInterval)
	boardInterval = time.Hour
	f := newBoardFixture(t)
	sam := f.signIn(t, "sam")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/board/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sam.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	b := readEvent(t, r)
	if len(b.Queues) != 1 || b.Queues[0].Depth != 3 || b.Queues[0].MaxDepth != 10 {
		t.Fatalf("first event: %+v", b.Queues)
	}
	// The same JSON as GET /api/v1/board: field names included.
	start := time.Now()
	if _, ok, err := f.engine.Pull(context.Background(), f.users["admin"]); err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	b = readEvent(t, r)
	if time.Since(start) > 5*time.Second {
		t.Errorf("the change took %s to arrive", time.Since(start))
	}
	if b.Queues[0].Depth != 2 || b.Queues[0].ByState[store.StateAssigned] != 1 {
		t.Errorf("after the pull: %+v", b.Queues[0])
	}
	for _, a := range b.Agents {
		if a.Username == "admin" && a.Load != 1 {
			t.Errorf("admin's load = %d, want 1", a.Load)
		}
	}
}

func TestBoardEventsCapped(t *testing.T) {
	defer func(n int32) { maxBoardStreams = n }(maxBoardStreams)
	maxBoardStreams = 1
	f := newBoardFixture(t)
	sam := f.signIn(t, "sam")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/board/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := sam.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := open()
	readEvent(t, bufio.NewReader(first.Body))
	second := open()
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" {
		t.Errorf("second stream: %d, want 503 with Retry-After", second.StatusCode)
	}
	// Closing the first frees its place.
	first.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		third := open()
		third.Body.Close()
		if third.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place of a closed stream is not freed: %d", third.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
