package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func (f *fixture) user(t *testing.T, name string) store.User {
	t.Helper()
	u, err := f.st.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersPage(t *testing.T) {
	f := newFixture(t)
	admin := f.signIn(t, "admin")
	page := admin.get("/users")
	if page.status != 200 || !strings.Contains(page.body, `id="create-user"`) || !strings.Contains(page.body, "Sam Supervisor") {
		t.Fatalf("users page: %d\n%s", page.status, page.body)
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	csrf := page.csrf(t)

	// Bad fields are shown next to the fields, the values kept (never the password).
	p := admin.post("/users", url.Values{"csrf": {csrf}, "username": {"zoe z"}, "name": {"Zoe"}, "email": {"nope"},
		"role": {"agent"}, "password": {"short-pw"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="new-username-error"`) ||
		!strings.Contains(p.body, `id="new-email-error"`) || !strings.Contains(p.body, `id="new-password-error"`) ||
		!strings.Contains(p.body, `value="zoe z"`) || strings.Contains(p.body, "short-pw") {
		t.Errorf("bad create: %d\n%s", p.status, p.body)
	}
	// A team, then a user in it.
	if p := admin.post("/teams", url.Values{"csrf": {csrf}, "team_name": {"Billing"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create team: %d\n%s", p.status, p.body)
	}
	teams, _ := f.st.ListTeams(context.Background())
	if len(teams) != 1 {
		t.Fatalf("teams: %v", teams)
	}
	p = admin.post("/users", url.Values{"csrf": {csrf}, "username": {"zoe"}, "name": {"Zoe Zed"}, "email": {"zoe@example.com"},
		"role": {"supervisor"}, "password": {"zoe's long password"}, "teams": {fmt.Sprint(teams[0].ID)}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/users?notice=created" {
		t.Fatalf("create: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	zoe := f.user(t, "zoe")
	if zoe.DisplayName != "Zoe Zed" || zoe.Role != store.RoleSupervisor || len(zoe.Teams) != 1 {
		t.Errorf("zoe = %+v", zoe)
	}
	if p := admin.get("/users"); !strings.Contains(p.body, "Billing") || !strings.Contains(p.body, "zoe@example.com") {
		t.Errorf("list after create:\n%s", p.body)
	}

	// Edit: role and email; bad email refused on the edit page.
	edit := admin.get(fmt.Sprintf("/users/%d", zoe.ID))
	if edit.status != 200 || !strings.Contains(edit.body, `id="toggle-user"`) {
		t.Fatalf("edit page: %d\n%s", edit.status, edit.body)
	}
	p = admin.post(fmt.Sprintf("/users/%d", zoe.ID), url.Values{"csrf": {csrf}, "name": {"Zoe Z."}, "email": {"bad@"}, "role": {"agent"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="email-error"`) {
		t.Errorf("bad edit: %d\n%s", p.status, p.body)
	}
	p = admin.post(fmt.Sprintf("/users/%d", zoe.ID), url.Values{"csrf": {csrf}, "name": {"Zoe Z."}, "email": {""}, "role": {"agent"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", p.status, p.body)
	}
	if z := f.user(t, "zoe"); z.DisplayName != "Zoe Z." || z.Role != store.RoleAgent || z.Email != "" || len(z.Teams) != 0 {
		t.Errorf("after edit: %+v", z)
	}
	// Reset the password.
	if p := admin.post(fmt.Sprintf("/users/%d/password", zoe.ID), url.Values{"csrf": {csrf}, "password": {"123456789012"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="password-error"`) {
		t.Errorf("common password: %d\n%s", p.status, p.body)
	}
	if p := admin.post(fmt.Sprintf("/users/%d/password", zoe.ID), url.Values{"csrf": {csrf}, "password": {"a brand new password"}}); p.status != http.StatusSeeOther {
		t.Errorf("reset: %d\n%s", p.status, p.body)
	}
	// Disable, enable.
	if p := admin.post(fmt.Sprintf("/users/%d/disable", zoe.ID), url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther || !f.user(t, "zoe").Disabled {
		t.Errorf("disable: %d", p.status)
	}
	if p := admin.post(fmt.Sprintf("/users/%d/enable", zoe.ID), url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther || f.user(t, "zoe").Disabled {
		t.Errorf("enable: %d", p.status)
	}
	// Delete, after a confirmation page.
	if p := admin.get(fmt.Sprintf("/users/%d/delete", zoe.ID)); p.status != 200 || !strings.Contains(p.body, `id="confirm-delete"`) {
		t.Errorf("confirm page: %d", p.status)
	}
	if p := admin.post(fmt.Sprintf("/users/%d/delete", zoe.ID), url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Errorf("delete: %d\n%s", p.status, p.body)
	}
	if _, err := f.st.UserByUsername(context.Background(), "zoe"); !store.IsNotFound(err) {
		t.Errorf("zoe after delete: %v", err)
	}

	// The last admin: demoting yourself shows the store's message.
	me := f.user(t, "admin")
	p = admin.post(fmt.Sprintf("/users/%d", me.ID), url.Values{"csrf": {csrf}, "name": {"Ada"}, "role": {"agent"}})
	if p.status != http.StatusConflict || !strings.Contains(p.body, "last enabled admin") {
		t.Errorf("demote the last admin: %d\n%s", p.status, p.body)
	}
	if p := admin.post(fmt.Sprintf("/users/%d/delete", me.ID), url.Values{"csrf": {csrf}}); p.status != http.StatusConflict {
		t.Errorf("delete yourself: %d", p.status)
	}
	if p := admin.post("/users", url.Values{"username": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("no csrf: %d", p.status)
	}
}

func TestUsersPageRoles(t *testing.T) {
	f := newFixture(t)
	sam := f.signIn(t, "sam")
	p := sam.get("/users")
	if p.status != 200 || strings.Contains(p.body, `id="create-user"`) || strings.Contains(p.body, `id="edit-ana"`) || !strings.Contains(p.body, "Ana Agent") {
		t.Errorf("supervisor's users page: %d\n%s", p.status, p.body)
	}
	if p := sam.post("/users", url.Values{"csrf": {p.csrf(t)}, "username": {"eve"}, "role": {"admin"}, "password": {"eve's long password"}}); p.status != http.StatusForbidden {
		t.Errorf("supervisor creates a user: %d", p.status)
	}
	if p := sam.get(fmt.Sprintf("/users/%d", f.user(t, "ana").ID)); p.status != http.StatusForbidden {
		t.Errorf("supervisor's edit page: %d", p.status)
	}
	ana := f.signIn(t, "ana")
	if p := ana.get("/users"); p.status != http.StatusForbidden {
		t.Errorf("agent's users page: %d", p.status)
	}
	if p := ana.get("/agents"); p.status != http.StatusForbidden {
		t.Errorf("agent's agents page: %d", p.status)
	}
	if p := ana.get("/account"); p.status != 200 || !strings.Contains(p.body, `href="/account"`) || strings.Contains(p.body, `href="/users"`) {
		t.Errorf("agent's account page: %d\n%s", p.status, p.body)
	}
}

func TestAgentsPage(t *testing.T) {
	f := newFixture(t)
	sam := f.signIn(t, "sam")
	ana := f.user(t, "ana")
	list := sam.get("/agents")
	if list.status != 200 || !strings.Contains(list.body, fmt.Sprintf(`href="/agents/%d"`, ana.ID)) {
		t.Fatalf("agents page: %d\n%s", list.status, list.body)
	}
	csrf := list.csrf(t)
	path := fmt.Sprintf("/agents/%d", ana.ID)
	for _, tc := range []struct{ skills, langs, capacity, errID, says string }{
		{"billing:7", "en", "0", "capacity-error", "from 1 to 100"},
		{"billing:7", "en", "1000", "capacity-error", "from 1 to 100"},
		{"billing:7", "en", "five", "capacity-error", "whole number"},
		{"billing:11", "en", "5", "skills-error", "from 1"},
		{"billing:high", "en", "5", "skills-error", "name:level"},
		{"Bill ing!:3", "en", "5", "skills-error", "lowercase"},
		{"billing:7", "english", "5", "languages-error", "ISO 639-1"},
	} {
		p := sam.post(path, url.Values{"csrf": {csrf}, "skills": {tc.skills}, "languages": {tc.langs}, "capacity": {tc.capacity}})
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="`+tc.errID+`"`) || !strings.Contains(p.body, tc.says) {
			t.Errorf("%+v: %d\n%s", tc, p.status, p.body)
		}
	}
	p := sam.post(path, url.Values{"csrf": {csrf}, "skills": {"billing:7, returns:5"}, "languages": {"en, DE"}, "capacity": {"4"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	a, err := f.st.Agent(context.Background(), ana.ID)
	if err != nil || a.Skills["billing"] != 7 || a.Skills["returns"] != 5 || strings.Join(a.Languages, ",") != "en,de" || a.Capacity != 4 {
		t.Errorf("saved agent: %+v %v", a, err)
	}
	if p := sam.get("/agents"); !strings.Contains(p.body, "billing:7, returns:5") || !strings.Contains(p.body, "en, de") {
		t.Errorf("list after save:\n%s", p.body)
	}
	if p := sam.get(path); !strings.Contains(p.body, `value="billing:7, returns:5"`) {
		t.Errorf("edit page after save:\n%s", p.body)
	}
}

func TestAccountPage(t *testing.T) {
	f := newFixture(t)
	ana := f.signIn(t, "ana")
	page := ana.get("/account")
	csrf := page.csrf(t)
	// Status.
	if p := ana.post("/account/status", url.Values{"csrf": {csrf}, "status": {"busy"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="status-error"`) {
		t.Errorf("bad status: %d\n%s", p.status, p.body)
	}
	if p := ana.post("/account/status", url.Values{"csrf": {csrf}, "status": {"available"}}); p.status != http.StatusSeeOther {
		t.Errorf("status: %d\n%s", p.status, p.body)
	}
	id := f.user(t, "ana").ID
	if a, _ := f.st.Agent(context.Background(), id); a.Status != store.AgentAvailable {
		t.Errorf("status = %q", a.Status)
	}
	// Time zone.
	if p := ana.post("/account/time-zone", url.Values{"csrf": {csrf}, "time_zone": {"Mars/Base"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="tz-error"`) {
		t.Errorf("bad time zone: %d\n%s", p.status, p.body)
	}
	if p := ana.post("/account/time-zone", url.Values{"csrf": {csrf}, "time_zone": {"Europe/Berlin"}}); p.status != http.StatusSeeOther || f.user(t, "ana").TimeZone != "Europe/Berlin" {
		t.Errorf("time zone: %d", p.status)
	}
	// Password.
	p := ana.post("/account/password", url.Values{"csrf": {csrf}, "current": {"wrong"}, "password": {"ana's new password"}, "confirm": {"ana's new password"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="current-error"`) {
		t.Errorf("wrong current: %d\n%s", p.status, p.body)
	}
	p = ana.post("/account/password", url.Values{"csrf": {csrf}, "current": {testPassword}, "password": {"ana's new password"}, "confirm": {"something else"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="confirm-error"`) {
		t.Errorf("confirm differs: %d\n%s", p.status, p.body)
	}
	p = ana.post("/account/password", url.Values{"csrf": {csrf}, "current": {testPassword}, "password": {"ana's new password"}, "confirm": {"ana's new password"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("change: %d\n%s", p.status, p.body)
	}
	if _, _, _, err := f.auth.Login(context.Background(), "ana", "ana's new password"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	// Signing out sets her offline.
	if p := ana.post("/logout", url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Errorf("logout: %d", p.status)
	}
	if a, _ := f.st.Agent(context.Background(), id); a.Status != store.AgentOffline {
		t.Errorf("status after sign-out = %q", a.Status)
	}
}

func TestDisabledUserSignIn(t *testing.T) {
	f := newFixture(t)
	ana := f.signIn(t, "ana")
	u := f.user(t, "ana")
	u.Disabled = true
	if err := f.st.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if p := ana.get("/workitems"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("disabled user's session: %d %s", p.status, p.header.Get("Location"))
	}
	c := f.httpClient(t)
	login := c.get("/login")
	p := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {testPassword}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "This user is disabled") {
		t.Errorf("disabled sign-in: %d\n%s", p.status, p.body)
	}
}
