package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

const newUserPassword = "a new user's long password"

// put sends a JSON PUT.
func (c *client) put(path, body string) response {
	c.t.Helper()
	return c.do("PUT", path, "application/json", body)
}

func (f *fixture) userID(t *testing.T, name string) int64 {
	t.Helper()
	u, err := f.st.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// fieldsOf returns the field errors of a 400 answer.
func fieldsOf(t *testing.T, r response) map[string]string {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b.Fields
}

func TestUsersCreateListGet(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	team := admin.postJSON("/api/v1/teams", `{"name": "Billing"}`)
	if team.status != http.StatusCreated {
		t.Fatalf("create team: %d %s", team.status, team.body)
	}
	teamID := int64(team.json(t)["id"].(float64))

	resp := admin.postJSON("/api/v1/users", fmt.Sprintf(`{"username": "zoe", "name": "Zoe Zed", "password": %q, "role": "agent",
		"email": "zoe@example.com", "teams": [%d]}`, newUserPassword, teamID))
	if resp.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", resp.status, resp.body)
	}
	var u adminUserJSON
	if err := json.Unmarshal(resp.body, &u); err != nil || u.ID == 0 || u.Username != "zoe" || u.Name != "Zoe Zed" ||
		u.Email != "zoe@example.com" || u.Role != "agent" || u.Disabled || len(u.Teams) != 1 || u.Teams[0] != teamID {
		t.Fatalf("created %s (%v)", resp.body, err)
	}
	if strings.Contains(string(resp.body), newUserPassword) || strings.Contains(string(resp.body), "$2a$") {
		t.Errorf("answer shows the password: %s", resp.body)
	}
	// The new user signs in.
	zoe := f.client(t)
	if r := zoe.postJSON("/api/v1/session", fmt.Sprintf(`{"user": "zoe", "password": %q}`, newUserPassword)); r.status != 200 {
		t.Fatalf("zoe signs in: %d %s", r.status, r.body)
	}

	// Supervisors list and read; agents may not.
	sam := f.signedIn(t, "sam")
	list := sam.get("/api/v1/users")
	if list.status != 200 {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	var lb struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(list.body, &lb); err != nil || len(lb.Items) != 4 {
		t.Fatalf("list: %s", list.body)
	}
	for _, it := range lb.Items {
		for _, k := range []string{"id", "username", "name", "email", "role", "disabled", "teams"} {
			if _, ok := it[k]; !ok {
				t.Errorf("list item lacks %s: %v", k, it)
			}
		}
	}
	if g := sam.get(fmt.Sprintf("/api/v1/users/%d", u.ID)); g.status != 200 || !strings.Contains(string(g.body), `"zoe@example.com"`) {
		t.Errorf("get: %d %s", g.status, g.body)
	}
	if g := sam.get("/api/v1/users/9999"); g.status != 404 {
		t.Errorf("get unknown: %d", g.status)
	}
	ana := f.signedIn(t, "ana")
	if r := ana.get("/api/v1/users"); r.status != http.StatusForbidden {
		t.Errorf("agent lists users: %d", r.status)
	}
	// Only admins create users.
	body := fmt.Sprintf(`{"username": "eve", "password": %q, "role": "admin"}`, newUserPassword)
	if r := ana.postJSON("/api/v1/users", body); r.status != http.StatusForbidden {
		t.Errorf("agent creates a user: %d %s", r.status, r.body)
	}
	if r := sam.postJSON("/api/v1/users", body); r.status != http.StatusForbidden {
		t.Errorf("supervisor creates a user: %d %s", r.status, r.body)
	}
	if _, err := f.st.UserByUsername(context.Background(), "eve"); !store.IsNotFound(err) {
		t.Errorf("eve exists: %v", err)
	}
	// Audit.
	ev, err := f.st.ListAuditFor(context.Background(), fmt.Sprintf("user:%d", u.ID), 5)
	if err != nil || len(ev) != 1 || ev[0].Action != "user.create" || ev[0].Actor != "admin" {
		t.Errorf("audit: %+v %v", ev, err)
	}
}

func TestUsersBadFields(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	tests := []struct {
		body  string
		field string
	}{
		{`{"username": "bad name", "password": "` + newUserPassword + `", "role": "agent"}`, "username"},
		{`{"username": "", "password": "` + newUserPassword + `", "role": "agent"}`, "username"},
		{`{"username": "ana", "password": "` + newUserPassword + `", "role": "agent"}`, "username"},
		{`{"username": "bo", "password": "short", "role": "agent"}`, "password"},
		{`{"username": "bo", "password": "password1234", "role": "agent"}`, "password"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "boss"}`, "role"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "agent", "email": "bo@"}`, "email"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "agent", "name": "` + strings.Repeat("n", 101) + `"}`, "name"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "agent", "teams": "x"}`, "teams"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "agent", "teams": [42]}`, "teams"},
		{`{"username": "bo", "password": "` + newUserPassword + `", "role": "agent", "shoe_size": 42}`, "shoe_size"},
	}
	for _, tc := range tests {
		r := admin.postJSON("/api/v1/users", tc.body)
		if r.status != http.StatusBadRequest || fieldsOf(t, r)[tc.field] == "" {
			t.Errorf("POST %s: %d %s, want 400 with field %s", tc.body, r.status, r.body, tc.field)
		}
		if strings.Contains(string(r.body), newUserPassword) {
			t.Errorf("answer repeats the password: %s", r.body)
		}
	}
	id := f.userID(t, "ana")
	for _, tc := range []struct{ body, field string }{
		{`{"role": "root"}`, "role"},
		{`{"disabled": "yes"}`, "disabled"},
		{`{"username": "anna"}`, "username"},
		{`{"password": "` + newUserPassword + `"}`, "password"},
		{`{"time_zone": "Nowhere/Land"}`, "time_zone"},
	} {
		r := admin.put(fmt.Sprintf("/api/v1/users/%d", id), tc.body)
		if r.status != http.StatusBadRequest || fieldsOf(t, r)[tc.field] == "" {
			t.Errorf("PUT %s: %d %s, want 400 with field %s", tc.body, r.status, r.body, tc.field)
		}
	}
}

func TestUsersUpdateDisableDelete(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var changed []int64
	srv := httptest.NewServer(New(Options{Store: f.st, Auth: f.auth, Mailboxes: f.mailboxes,
		Replier: outbound.NewService(f.st, slog.New(slog.DiscardHandler)),
		OnAgentChange: func(_ context.Context, id int64) {
			mu.Lock()
			changed = append(changed, id)
			mu.Unlock()
		}}))
	t.Cleanup(srv.Close)
	f.srv = srv
	admin := f.signedIn(t, "admin")
	ana := f.signedIn(t, "ana")
	anaID := f.userID(t, "ana")

	// Partial: only the name changes.
	r := admin.put(fmt.Sprintf("/api/v1/users/%d", anaID), `{"name": "Ana A.", "id": 1, "username": "ana"}`)
	if r.status != 200 {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	u := r.json(t)
	if u["name"] != "Ana A." || u["role"] != "agent" || u["disabled"] != false {
		t.Errorf("after rename: %v", u)
	}
	// Disable: her session ends and she cannot sign in, with a clear message.
	if r := admin.put(fmt.Sprintf("/api/v1/users/%d", anaID), `{"disabled": true}`); r.status != 200 || r.json(t)["disabled"] != true {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if r := ana.get("/api/v1/me"); r.status != http.StatusUnauthorized {
		t.Errorf("disabled user's session: %d %s", r.status, r.body)
	}
	login := f.client(t).postJSON("/api/v1/session", fmt.Sprintf(`{"user": "ana", "password": %q}`, testPassword))
	if login.status != http.StatusForbidden || !strings.Contains(string(login.body), "disabled") {
		t.Errorf("disabled user signs in: %d %s", login.status, login.body)
	}
	mu.Lock()
	if len(changed) == 0 || changed[len(changed)-1] != anaID {
		t.Errorf("OnAgentChange after disabling: %v", changed)
	}
	mu.Unlock()
	if a, err := f.st.Agent(context.Background(), anaID); err != nil || a.Status != store.AgentOffline {
		t.Errorf("disabled agent: %+v %v", a, err)
	}

	// The last enabled admin cannot be demoted, disabled or deleted.
	adminID := f.userID(t, "admin")
	r = admin.put(fmt.Sprintf("/api/v1/users/%d", adminID), `{"role": "agent"}`)
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), store.ErrLastAdmin.Error()) {
		t.Errorf("demote the last admin: %d %s", r.status, r.body)
	}
	// Yourself: refused too.
	if r := admin.put(fmt.Sprintf("/api/v1/users/%d", adminID), `{"disabled": true}`); r.status != http.StatusConflict {
		t.Errorf("disable yourself: %d %s", r.status, r.body)
	}
	if r := admin.do("DELETE", fmt.Sprintf("/api/v1/users/%d", adminID), "application/json", ""); r.status != http.StatusConflict {
		t.Errorf("delete yourself: %d %s", r.status, r.body)
	}
	// With a second admin, sam can be promoted and the first admin demoted by sam.
	samID := f.userID(t, "sam")
	if r := admin.put(fmt.Sprintf("/api/v1/users/%d", samID), `{"role": "admin"}`); r.status != 200 {
		t.Fatalf("promote sam: %d %s", r.status, r.body)
	}
	sam := f.signedIn(t, "sam")
	if r := sam.put(fmt.Sprintf("/api/v1/users/%d", adminID), `{"role": "supervisor"}`); r.status != 200 {
		t.Errorf("demote admin with another admin: %d %s", r.status, r.body)
	}
	// Now sam is the last admin: the store refuses with its message.
	if r := sam.put(fmt.Sprintf("/api/v1/users/%d", samID), `{"role": "agent"}`); r.status != http.StatusConflict ||
		!strings.Contains(string(r.body), "last enabled admin") {
		t.Errorf("demote the new last admin: %d %s", r.status, r.body)
	}

	// Delete ana.
	if r := sam.do("DELETE", fmt.Sprintf("/api/v1/users/%d", anaID), "application/json", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := sam.get(fmt.Sprintf("/api/v1/users/%d", anaID)); r.status != 404 {
		t.Errorf("deleted user: %d", r.status)
	}
	if r := sam.do("DELETE", fmt.Sprintf("/api/v1/users/%d", anaID), "application/json", ""); r.status != 404 {
		t.Errorf("delete twice: %d", r.status)
	}
	actions := map[string]bool{}
	ev, _ := f.st.ListAudit(context.Background(), 50)
	for _, e := range ev {
		actions[e.Action] = true
	}
	for _, a := range []string{"user.update", "user.disable", "user.delete"} {
		if !actions[a] {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

func TestPasswords(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	ana := f.signedIn(t, "ana")
	anaID := f.userID(t, "ana")

	// Own password: the current one is needed.
	r := ana.put("/api/v1/me/password", `{"current": "wrong", "password": "my own new password"}`)
	if r.status != 400 || fieldsOf(t, r)["current"] == "" {
		t.Errorf("wrong current: %d %s", r.status, r.body)
	}
	r = ana.put("/api/v1/me/password", fmt.Sprintf(`{"current": %q, "password": "short"}`, testPassword))
	if r.status != 400 || fieldsOf(t, r)["password"] == "" {
		t.Errorf("short: %d %s", r.status, r.body)
	}
	if r := ana.put("/api/v1/me/password", fmt.Sprintf(`{"current": %q, "password": "my own new password"}`, testPassword)); r.status != http.StatusNoContent {
		t.Fatalf("change own: %d %s", r.status, r.body)
	}
	if r := f.client(t).postJSON("/api/v1/session", `{"user": "ana", "password": "my own new password"}`); r.status != 200 {
		t.Errorf("sign in with the new password: %d", r.status)
	}
	// Admin reset.
	if r := ana.put(fmt.Sprintf("/api/v1/users/%d/password", anaID), `{"password": "not allowed to do this"}`); r.status != http.StatusForbidden {
		t.Errorf("agent resets: %d", r.status)
	}
	if r := admin.put(fmt.Sprintf("/api/v1/users/%d/password", anaID), `{"password": "123456789012"}`); r.status != 400 || fieldsOf(t, r)["password"] == "" {
		t.Errorf("common password: %d %s", r.status, r.body)
	}
	if r := admin.put(fmt.Sprintf("/api/v1/users/%d/password", anaID), `{"password": "reset by the admin!"}`); r.status != http.StatusNoContent {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	if r := f.client(t).postJSON("/api/v1/session", `{"user": "ana", "password": "reset by the admin!"}`); r.status != 200 {
		t.Errorf("sign in with the reset password: %d", r.status)
	}
	if r := admin.put("/api/v1/users/9999/password", `{"password": "reset by the admin!"}`); r.status != 404 {
		t.Errorf("reset unknown: %d", r.status)
	}
	for _, b := range f.responses {
		if strings.Contains(string(b), "reset by the admin!") || strings.Contains(string(b), "my own new password") {
			t.Errorf("a response shows a password: %s", b)
		}
	}
}

func TestTeams(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	sam := f.signedIn(t, "sam")
	r := admin.postJSON("/api/v1/teams", `{"name": "Tier 2"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := int64(r.json(t)["id"].(float64))
	if r := admin.postJSON("/api/v1/teams", `{"name": "Tier 2"}`); r.status != http.StatusConflict {
		t.Errorf("twice: %d %s", r.status, r.body)
	}
	if r := admin.postJSON("/api/v1/teams", `{"name": " "}`); r.status != 400 || fieldsOf(t, r)["name"] == "" {
		t.Errorf("empty: %d %s", r.status, r.body)
	}
	if r := sam.postJSON("/api/v1/teams", `{"name": "Mine"}`); r.status != http.StatusForbidden {
		t.Errorf("supervisor creates: %d", r.status)
	}
	if l := sam.get("/api/v1/teams"); l.status != 200 || !strings.Contains(string(l.body), `"Tier 2"`) {
		t.Errorf("list: %d %s", l.status, l.body)
	}
	if r := admin.do("DELETE", fmt.Sprintf("/api/v1/teams/%d", id), "application/json", ""); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := admin.do("DELETE", fmt.Sprintf("/api/v1/teams/%d", id), "application/json", ""); r.status != 404 {
		t.Errorf("delete twice: %d %s", r.status, r.body)
	}
}

func TestAgents(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var changed []int64
	srv := httptest.NewServer(New(Options{Store: f.st, Auth: f.auth, Mailboxes: f.mailboxes,
		OnAgentChange: func(_ context.Context, id int64) { mu.Lock(); changed = append(changed, id); mu.Unlock() }}))
	t.Cleanup(srv.Close)
	f.srv = srv
	sam := f.signedIn(t, "sam")
	ana := f.signedIn(t, "ana")
	anaID := f.userID(t, "ana")
	path := fmt.Sprintf("/api/v1/agents/%d", anaID)

	r := sam.put(path, `{"skills": {"billing": 7}, "languages": ["en"], "capacity": 5}`)
	if r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	var a agentJSON
	if err := json.Unmarshal(r.body, &a); err != nil || a.UserID != anaID || a.Username != "ana" || a.Skills["billing"] != 7 ||
		len(a.Languages) != 1 || a.Capacity != 5 || a.Status != store.AgentOffline {
		t.Errorf("put answered %s", r.body)
	}
	// Partial: capacity only.
	if r := sam.put(path, `{"capacity": 3}`); r.status != 200 || !strings.Contains(string(r.body), `"billing":7`) || !strings.Contains(string(r.body), `"capacity":3`) {
		t.Errorf("partial put: %d %s", r.status, r.body)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"capacity": 0}`, "capacity"},
		{`{"capacity": 1000}`, "capacity"},
		{`{"capacity": null}`, "capacity"},
		{`{"capacity": "five"}`, "capacity"},
		{`{"skills": {"billing": 11}}`, "skills.billing"},
		{`{"skills": {"Billing!": 3}}`, "skills"},
		{`{"languages": ["english"]}`, "languages"},
		{`{"status": "available", "mood": "good"}`, "mood"},
	} {
		r := sam.put(path, tc.body)
		if r.status != 400 || fieldsOf(t, r)[tc.field] == "" {
			t.Errorf("PUT %s: %d %s, want 400 with field %s", tc.body, r.status, r.body, tc.field)
		}
	}
	if r := sam.put(path, `{"capacity": 0}`); !strings.Contains(fieldsOf(t, r)["capacity"], "from 1 to 100") {
		t.Errorf("capacity 0 message: %s", r.body)
	}
	// Agents: own profile yes, others' no; no changes.
	if r := ana.get(path); r.status != 200 {
		t.Errorf("agent reads own: %d %s", r.status, r.body)
	}
	if r := ana.get(fmt.Sprintf("/api/v1/agents/%d", f.userID(t, "sam"))); r.status != http.StatusForbidden {
		t.Errorf("agent reads another: %d", r.status)
	}
	if r := ana.put(path, `{"capacity": 100}`); r.status != http.StatusForbidden {
		t.Errorf("agent sets own profile: %d", r.status)
	}
	if r := ana.get("/api/v1/agents"); r.status != http.StatusForbidden {
		t.Errorf("agent lists: %d", r.status)
	}
	if r := sam.get("/api/v1/agents"); r.status != 200 || !strings.Contains(string(r.body), `"username":"ana"`) {
		t.Errorf("list: %d %s", r.status, r.body)
	}
	if r := sam.put("/api/v1/agents/9999", `{"capacity": 3}`); r.status != 404 {
		t.Errorf("unknown agent: %d %s", r.status, r.body)
	}

	// Status.
	if r := ana.put("/api/v1/me/status", `{"status": "busy"}`); r.status != 400 || fieldsOf(t, r)["status"] == "" {
		t.Errorf("bad status: %d %s", r.status, r.body)
	}
	r = ana.put("/api/v1/me/status", `{"status": "available"}`)
	if r.status != 200 || r.json(t)["status"] != "available" || r.json(t)["capacity"] != float64(3) {
		t.Errorf("status: %d %s", r.status, r.body)
	}
	if me := ana.get("/api/v1/me"); me.json(t)["status"] != "available" {
		t.Errorf("me: %s", me.body)
	}
	mu.Lock()
	if len(changed) < 3 || changed[len(changed)-1] != anaID {
		t.Errorf("OnAgentChange: %v", changed)
	}
	mu.Unlock()
	// Signing out sets her offline.
	if r := ana.do("DELETE", "/api/v1/session", "application/json", ""); r.status != http.StatusNoContent {
		t.Fatalf("sign out: %d", r.status)
	}
	if a, err := f.st.Agent(context.Background(), anaID); err != nil || a.Status != store.AgentOffline {
		t.Errorf("after sign-out: %+v %v", a.Status, err)
	}
	ev, _ := f.st.ListAuditFor(context.Background(), fmt.Sprintf("user:%d", anaID), 10)
	if len(ev) == 0 || ev[0].Action != "agent.update" {
		t.Errorf("audit: %+v", ev)
	}
}
