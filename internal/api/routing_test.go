package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/workitem"
)

// routingFixture is the API fixture with the routing engine and two more items queued in
// the Default queue.
func routingFixture(t *testing.T) (*fixture, []int64) {
	t.Helper()
	f := newFixture(t)
	ctx := t.Context()
	q, err := f.st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 2 {
		c := &store.Classification{QueueID: q.ID, PriorityAdjust: 10 * i}
		res, err := f.st.IngestMessage(ctx, store.InboundMessage{MailboxID: f.inbound.ID, Raw: []byte("Subject: x\r\n\r\nx\r\n"),
			Classification: c, ReceivedAt: time.Now().Add(-time.Duration(i) * time.Minute),
			Message: store.Message{MailboxID: f.inbound.ID, Direction: store.Inbound, SourceID: fmt.Sprintf("routing:%d", i),
				Subject: fmt.Sprintf("Routed %d", i), FromAddr: "c@example.org"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.WorkItemID)
	}
	e := routing.NewEngine(routing.EngineOptions{Store: f.st, NoPush: true, IdleTimeout: -1})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", New(Options{Store: f.st, Auth: f.auth, Replier: outbound.NewService(f.st, slog.New(slog.DiscardHandler)),
		Mailboxes: f.mailboxes, Engine: e, WorkItems: workitem.NewService(f.st, e)}))
	f.srv.Close()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f, ids
}

// TestGetNext: an agent's POST /api/v1/me/next (a script's, with no body) gets the best
// item assigned to them, the names scripts rely on in its JSON, then 204 when nothing is
// left; the decision is in the item's routing trace, for supervisors only.
func TestGetNext(t *testing.T) {
	f, ids := routingFixture(t)
	ana := f.signedIn(t, "ana")
	anaUser, err := f.st.UserByUsername(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	resp := ana.do("POST", "/api/v1/me/next", "", "")
	if resp.status != http.StatusOK {
		t.Fatalf("POST /api/v1/me/next: %d %s", resp.status, resp.body)
	}
	got := resp.json(t)
	for _, k := range []string{"state", "assigned_to", "queue_id", "priority", "sla_due_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("me/next answer lacks %q: %s", k, resp.body)
		}
	}
	// The second item has the higher priority (adjustment 10): it comes first.
	if got["state"] != "assigned" || got["assigned_to"] != float64(anaUser.ID) || got["id"] != float64(ids[1]) || got["priority"] == float64(0) {
		t.Errorf("me/next gave %s, want item %d assigned to ana with its priority", resp.body, ids[1])
	}
	if resp := ana.do("POST", "/api/v1/me/next", "", ""); resp.status != http.StatusOK || resp.json(t)["id"] != float64(ids[0]) {
		t.Errorf("second pull: %d %s, want item %d", resp.status, resp.body, ids[0])
	}
	// The three fixture items have no queue: nothing else fits.
	if resp := ana.do("POST", "/api/v1/me/next", "", ""); resp.status != http.StatusNoContent {
		t.Errorf("third pull: %d %s, want 204", resp.status, resp.body)
	}
	if resp := ana.get(fmt.Sprintf("/api/v1/workitems/%d/routing", ids[1])); resp.status != http.StatusForbidden {
		t.Errorf("an agent read the routing trace: %d", resp.status)
	}
	sam := f.signedIn(t, "sam")
	resp = sam.get(fmt.Sprintf("/api/v1/workitems/%d/routing", ids[1]))
	var trace struct {
		Decisions []routing.Trace `json:"decisions"`
		History   []struct{ Kind, From, To string }
	}
	if err := json.Unmarshal(resp.body, &trace); err != nil || resp.status != http.StatusOK {
		t.Fatalf("routing trace: %d %s", resp.status, resp.body)
	}
	if len(trace.Decisions) != 1 || trace.Decisions[0].Mode != "pull" || trace.Decisions[0].AgentID != anaUser.ID ||
		len(trace.History) != 2 || trace.History[1].To != "assigned" {
		t.Errorf("routing trace = %s", resp.body)
	}
	// The board counts the assigned items and shows ana's load.
	resp = sam.get("/api/v1/board")
	var board routing.Board
	if err := json.Unmarshal(resp.body, &board); err != nil {
		t.Fatal(err)
	}
	var load int
	for _, a := range board.Agents {
		if a.Username == "ana" {
			load = a.Load
		}
	}
	if len(board.Queues) == 0 || board.Queues[0].ByState["assigned"] != 2 || board.Queues[0].Depth != 0 || load != 2 {
		t.Errorf("board = %s", resp.body)
	}
}

// TestLifecycleActions: the item's agent closes it; another agent, or one acting on a
// state that changed, is refused with the reason; only a supervisor may cancel.
func TestLifecycleActions(t *testing.T) {
	f, ids := routingFixture(t)
	ana := f.signedIn(t, "ana")
	if resp := ana.do("POST", "/api/v1/me/next", "", ""); resp.status != http.StatusOK {
		t.Fatalf("pull: %d %s", resp.status, resp.body)
	}
	id := ids[1]
	if resp := ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/cancel", id), `{}`); resp.status != http.StatusForbidden {
		t.Errorf("an agent cancelled: %d %s", resp.status, resp.body)
	}
	resp := ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/pend", id), `{"reason": "asked for the order number"}`)
	if resp.status != http.StatusOK || resp.json(t)["state"] != "pending" {
		t.Fatalf("pend: %d %s", resp.status, resp.body)
	}
	if resp := ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/pend", id), `{}`); resp.status != http.StatusConflict ||
		!strings.Contains(string(resp.body), "cannot pend a work item that is pending") {
		t.Errorf("pend twice: %d %s", resp.status, resp.body)
	}
	resp = ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/close", id), `{}`)
	if resp.status != http.StatusOK || resp.json(t)["state"] != "done" {
		t.Errorf("close: %d %s", resp.status, resp.body)
	}
	// The agent reopens her done item: back to her, assigned; then marks it done again.
	if resp := ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/reopen", id), `{}`); resp.status != http.StatusOK ||
		resp.json(t)["state"] != "assigned" || resp.json(t)["assigned_to"] == nil {
		t.Errorf("reopen: %d %s", resp.status, resp.body)
	}
	if resp := ana.postJSON(fmt.Sprintf("/api/v1/workitems/%d/done", id), `{}`); resp.status != http.StatusOK || resp.json(t)["state"] != "done" {
		t.Errorf("done after reopen: %d %s", resp.status, resp.body)
	}
	sam := f.signedIn(t, "sam")
	if resp := sam.postJSON(fmt.Sprintf("/api/v1/workitems/%d/restart", id), `{}`); resp.status != http.StatusOK || resp.json(t)["state"] != "queued" {
		t.Errorf("restart: %d %s", resp.status, resp.body)
	}
	if resp := sam.postJSON(fmt.Sprintf("/api/v1/workitems/%d/transfer", id), `{}`); resp.status != http.StatusBadRequest ||
		!strings.Contains(string(resp.body), "queue_id") {
		t.Errorf("transfer without a target: %d %s", resp.status, resp.body)
	}
	events, _ := f.st.Events(t.Context(), id)
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind+":"+e.Actor)
	}
	if got := strings.Join(kinds, ","); got != "created:system,assign:ana,pend:ana,close:ana,reopen:ana,close:ana,restart:sam" {
		t.Errorf("history = %s", got)
	}
}

// TestRoutingObjectsRefuseBadInput: a rule with an invalid regular expression, a schema
// whose points are not increasing and a calendar with overlapping hours are refused with
// the field and what to enter.
func TestRoutingObjectsRefuseBadInput(t *testing.T) {
	f, _ := routingFixture(t)
	admin := f.signedIn(t, "admin")
	for _, tt := range []struct{ path, body, field, says string }{
		{"/api/v1/rules", `{"name": "r", "enabled": true, "conditions": [{"field": "subject", "op": "regex", "value": "(unclosed"}]}`,
			"conditions[0].value", "regular expression"},
		{"/api/v1/schemas", `{"name": "s", "start": 10, "points": [{"age_s": 600, "priority": 20}, {"age_s": 300, "priority": 30}]}`,
			"points[1].age_s", "600"},
		{"/api/v1/calendars", `{"name": "c", "time_zone": "Europe/Berlin", "hours": [{"day": "mon", "start": "09:00", "end": "13:00"}, {"day": "mon", "start": "12:00", "end": "17:00"}]}`,
			"hours[1]", "overlaps"},
		{"/api/v1/calendars", `{"name": "c", "time_zone": "Mars/Olympus"}`, "time_zone", "time zone"},
	} {
		resp := admin.postJSON(tt.path, tt.body)
		if resp.status != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", tt.path, resp.status, resp.body)
			continue
		}
		var out struct{ Fields map[string]string }
		_ = json.Unmarshal(resp.body, &out)
		if msg := out.Fields[tt.field]; !strings.Contains(msg, tt.says) {
			t.Errorf("POST %s: fields %v, want %q saying %q", tt.path, out.Fields, tt.field, tt.says)
		}
	}
	// A valid one is saved, and an agent may not.
	if resp := admin.postJSON("/api/v1/schemas", `{"name": "Fast", "start": 20, "points": [{"age_s": 600, "priority": 40}]}`); resp.status != http.StatusCreated {
		t.Errorf("valid schema: %d %s", resp.status, resp.body)
	}
	if resp := f.signedIn(t, "ana").postJSON("/api/v1/schemas", `{"name": "Mine", "start": 1}`); resp.status != http.StatusForbidden {
		t.Errorf("an agent saved a schema: %d", resp.status)
	}
}
