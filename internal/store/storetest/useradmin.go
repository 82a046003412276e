package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testUpdateUser: an administrator edits a user's profile, role and teams; disabling
// them signs them out everywhere (sessions and API tokens).
func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	root, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin, PasswordHash: "h"})
	must(t, "CreateUser root", err)
	bob, err := s.CreateUser(ctx, store.User{Username: "bob", DisplayName: "Bob", Role: store.RoleAgent, PasswordHash: "hash-b"})
	must(t, "CreateUser bob", err)
	red, err := s.CreateTeam(ctx, "Red")
	must(t, "CreateTeam Red", err)
	blue, err := s.CreateTeam(ctx, "Blue")
	must(t, "CreateTeam Blue", err)

	bob.DisplayName = "Robert Stone"
	bob.Email = "robert@example.org"
	bob.Role = store.RoleSupervisor
	bob.TimeZone = "Europe/Berlin"
	bob.Teams = []int64{blue.ID, red.ID}
	must(t, "UpdateUser", s.UpdateUser(ctx, bob))
	got, err := s.UserByID(ctx, bob.ID)
	must(t, "UserByID", err)
	if got.Username != "bob" || got.DisplayName != "Robert Stone" || got.Email != "robert@example.org" ||
		got.Role != store.RoleSupervisor || got.TimeZone != "Europe/Berlin" || got.Disabled || got.PasswordHash != "hash-b" {
		t.Errorf("user after UpdateUser = %+v, want the new profile, the same username and password", got)
	}
	sameTime(t, "CreatedAt after UpdateUser", got.CreatedAt, bob.CreatedAt)
	wantTeams := []int64{red.ID, blue.ID}
	slices.Sort(wantTeams)
	if teams := slices.Sorted(slices.Values(got.Teams)); !slices.Equal(teams, wantTeams) {
		t.Errorf("Teams = %v, want %v", got.Teams, wantTeams)
	}

	// Teams nil leaves the memberships; an empty list clears them.
	bob.Teams = nil
	bob.DisplayName = "Rob"
	must(t, "UpdateUser without teams", s.UpdateUser(ctx, bob))
	if got, _ := s.UserByID(ctx, bob.ID); got.DisplayName != "Rob" || len(got.Teams) != 2 {
		t.Errorf("after UpdateUser with Teams nil: %q in teams %v, want Rob still in 2 teams", got.DisplayName, got.Teams)
	}
	bob.Teams = []int64{}
	must(t, "UpdateUser with no teams", s.UpdateUser(ctx, bob))
	if got, _ := s.UserByID(ctx, bob.ID); len(got.Teams) != 0 {
		t.Errorf("Teams after UpdateUser with an empty list = %v, want none", got.Teams)
	}

	// Disabling signs the user out: sessions and API tokens are deleted; other users' stay.
	later := time.Now().Add(time.Hour)
	must(t, "CreateSession bob", s.CreateSession(ctx, store.Session{TokenHash: "s-bob", UserID: bob.ID, CSRFToken: "c", ExpiresAt: later}))
	must(t, "CreateSession root", s.CreateSession(ctx, store.Session{TokenHash: "s-root", UserID: root.ID, CSRFToken: "c", ExpiresAt: later}))
	_, err = s.CreateAPIToken(ctx, store.APIToken{UserID: bob.ID, Name: "bob's script", TokenHash: "t-bob"})
	must(t, "CreateAPIToken bob", err)
	_, err = s.CreateAPIToken(ctx, store.APIToken{UserID: root.ID, Name: "root's script", TokenHash: "t-root"})
	must(t, "CreateAPIToken root", err)
	// An update that keeps the user enabled signs nobody out.
	must(t, "UpdateUser enabled", s.UpdateUser(ctx, bob))
	_, err = s.SessionByTokenHash(ctx, "s-bob")
	must(t, "SessionByTokenHash after an update", err)

	bob.Disabled = true
	must(t, "UpdateUser disable", s.UpdateUser(ctx, bob))
	if got, _ := s.UserByID(ctx, bob.ID); !got.Disabled {
		t.Errorf("Disabled = false after disabling")
	}
	_, err = s.SessionByTokenHash(ctx, "s-bob")
	wantErr(t, "session of a disabled user", err, store.ErrNotFound)
	_, err = s.APITokenByHash(ctx, "t-bob")
	wantErr(t, "API token of a disabled user", err, store.ErrNotFound)
	_, err = s.SessionByTokenHash(ctx, "s-root")
	must(t, "session of another user", err)
	_, err = s.APITokenByHash(ctx, "t-root")
	must(t, "API token of another user", err)

	bob.Disabled = false
	must(t, "UpdateUser enable", s.UpdateUser(ctx, bob))
	if got, _ := s.UserByID(ctx, bob.ID); got.Disabled {
		t.Errorf("Disabled = true after enabling")
	}

	bob.ID += 1000
	wantErr(t, "UpdateUser missing", s.UpdateUser(ctx, bob), store.ErrNotFound)
}

// testLastAdmin: no change may leave the installation without an enabled admin.
func testLastAdmin(t *testing.T, s store.Store) {
	ctx := t.Context()
	root, err := s.CreateUser(ctx, store.User{Username: "root", DisplayName: "Root", Role: store.RoleAdmin})
	must(t, "CreateUser root", err)
	agent := newAgent(t, s, "alice")
	unchanged := func(what string) {
		t.Helper()
		got, err := s.UserByID(ctx, root.ID)
		must(t, "UserByID root", err)
		if got.Role != store.RoleAdmin || got.Disabled || got.DisplayName != "Root" {
			t.Errorf("%s: root = %+v, want the enabled admin unchanged", what, got)
		}
	}

	disabled := root
	disabled.Disabled = true
	wantErr(t, "disable the last admin", s.UpdateUser(ctx, disabled), store.ErrLastAdmin)
	unchanged("after a refused disable")
	demoted := root
	demoted.Role = store.RoleSupervisor
	demoted.DisplayName = "Demoted"
	wantErr(t, "demote the last admin", s.UpdateUser(ctx, demoted), store.ErrLastAdmin)
	unchanged("after a refused demotion")
	wantErr(t, "delete the last admin", s.DeleteUser(ctx, root.ID), store.ErrLastAdmin)
	unchanged("after a refused deletion")

	// Other users can be changed and deleted meanwhile.
	agent.DisplayName = "Alice"
	must(t, "UpdateUser of an agent", s.UpdateUser(ctx, agent))
	must(t, "DeleteUser of an agent", s.DeleteUser(ctx, agent.ID))

	// With a second admin, one of them can go; then the other is the last.
	ops, err := s.CreateUser(ctx, store.User{Username: "ops", Role: store.RoleAdmin})
	must(t, "CreateUser ops", err)
	must(t, "disable one of two admins", s.UpdateUser(ctx, disabled))
	if got, _ := s.UserByID(ctx, root.ID); !got.Disabled {
		t.Errorf("root not disabled")
	}
	opsDemoted := ops
	opsDemoted.Role = store.RoleAgent
	wantErr(t, "demote the last enabled admin (the other is disabled)", s.UpdateUser(ctx, opsDemoted), store.ErrLastAdmin)
	opsDisabled := ops
	opsDisabled.Disabled = true
	wantErr(t, "disable the last enabled admin", s.UpdateUser(ctx, opsDisabled), store.ErrLastAdmin)
	wantErr(t, "delete the last enabled admin", s.DeleteUser(ctx, ops.ID), store.ErrLastAdmin)
	if got, err := s.UserByID(ctx, ops.ID); err != nil || got.Role != store.RoleAdmin || got.Disabled {
		t.Errorf("ops after refused changes = %+v, %v; want the enabled admin", got, err)
	}
	// A disabled admin may be deleted; enabling them again makes ops removable.
	must(t, "enable root again", s.UpdateUser(ctx, root))
	must(t, "demote ops while root is enabled", s.UpdateUser(ctx, opsDemoted))
	if got, _ := s.UserByID(ctx, ops.ID); got.Role != store.RoleAgent {
		t.Errorf("ops role = %q, want agent", got.Role)
	}
	wantErr(t, "disable root, the admin left", s.UpdateUser(ctx, disabled), store.ErrLastAdmin)
	must(t, "promote ops again", s.UpdateUser(ctx, ops))
	must(t, "disable root", s.UpdateUser(ctx, disabled))
	must(t, "delete the disabled admin", s.DeleteUser(ctx, root.ID))
	_, err = s.UserByID(ctx, root.ID)
	wantErr(t, "UserByID of the deleted admin", err, store.ErrNotFound)
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, root.ID), store.ErrNotFound)
}

// testDeleteUser: a deleted user's work items stay, assigned, offered or preferred to
// nobody; their sessions, tokens, teams and agent profile go.
func testDeleteUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin})
	must(t, "CreateUser root", err)
	mb := newMailbox(t, s, "support", store.Inbound)
	bob := newAgent(t, s, "bob")
	other := newAgent(t, s, "carol")
	team, err := s.CreateTeam(ctx, "Red")
	must(t, "CreateTeam", err)
	must(t, "SetUserTeams", s.SetUserTeams(ctx, bob.ID, []int64{team.ID}))
	must(t, "SaveAgent", s.SaveAgent(ctx, store.Agent{UserID: bob.ID, Capacity: 3, Skills: map[string]int{"billing": 5}}))
	must(t, "CreateSession", s.CreateSession(ctx, store.Session{TokenHash: "s-bob", UserID: bob.ID, CSRFToken: "c", ExpiresAt: time.Now().Add(time.Hour)}))

	assigned := ingest(t, s, mail(mb, "imap:1:1", "1@x", "assigned")).WorkItemID
	offered := ingest(t, s, mail(mb, "imap:1:2", "2@x", "offered")).WorkItemID
	preferred := ingest(t, s, mail(mb, "imap:1:3", "3@x", "preferred")).WorkItemID
	others := ingest(t, s, mail(mb, "imap:1:4", "4@x", "carol's")).WorkItemID
	change(t, s, store.Change{WorkItemID: assigned, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &bob.ID})
	change(t, s, store.Change{WorkItemID: offered, From: []string{store.StateQueued}, To: store.StateOffered, OfferedTo: &bob.ID,
		OfferExpiresAt: ptr(time.Now().Add(time.Minute))})
	change(t, s, store.Change{WorkItemID: preferred, From: []string{store.StateQueued}, To: store.StateQueued, PreferredAgent: &bob.ID,
		PreferredUntil: ptr(time.Now().Add(time.Hour))})
	change(t, s, store.Change{WorkItemID: others, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &other.ID})

	must(t, "DeleteUser", s.DeleteUser(ctx, bob.ID))
	_, err = s.UserByID(ctx, bob.ID)
	wantErr(t, "UserByID of a deleted user", err, store.ErrNotFound)
	_, err = s.SessionByTokenHash(ctx, "s-bob")
	wantErr(t, "session of a deleted user", err, store.ErrNotFound)
	if n := len(listAll(t, s)); n != 4 {
		t.Fatalf("%d work items after DeleteUser, want the 4", n)
	}
	for _, id := range []int64{assigned, offered, preferred} {
		w := getWorkItem(t, s, id)
		if w.AssignedTo != 0 || w.OfferedTo != 0 || w.PreferredAgent != 0 || w.AssignedName != "" {
			t.Errorf("work item %d of the deleted user: assigned %d, offered %d, preferred %d; want nobody", id, w.AssignedTo, w.OfferedTo, w.PreferredAgent)
		}
	}
	if w := getWorkItem(t, s, others); w.AssignedTo != other.ID {
		t.Errorf("another agent's item assigned to %d, want %d", w.AssignedTo, other.ID)
	}
	if loads, err := s.AgentLoads(ctx); err != nil || len(loads) != 1 || loads[other.ID] != 1 {
		t.Errorf("AgentLoads after DeleteUser = %v, %v; want only carol's 1", loads, err)
	}
	agents, err := s.ListAgents(ctx)
	must(t, "ListAgents", err)
	for _, a := range agents {
		if a.UserID == bob.ID {
			t.Errorf("ListAgents lists the deleted user: %+v", a)
		}
	}
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, bob.ID), store.ErrNotFound)
}

// testTeams: teams are unique by name, list by name, and users carry their memberships.
func testTeams(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	red, err := s.CreateTeam(ctx, "Red")
	must(t, "CreateTeam Red", err)
	if red.ID == 0 || red.Name != "Red" {
		t.Errorf("CreateTeam = %+v, want Red with an id", red)
	}
	recent(t, "Team CreatedAt", red.CreatedAt, start)
	blue, err := s.CreateTeam(ctx, "Blue")
	must(t, "CreateTeam Blue", err)
	green, err := s.CreateTeam(ctx, "Green")
	must(t, "CreateTeam Green", err)
	_, err = s.CreateTeam(ctx, "Red")
	wantErr(t, "CreateTeam with a name in use", err, store.ErrConflict)

	teams, err := s.ListTeams(ctx)
	must(t, "ListTeams", err)
	var names []string
	for _, tm := range teams {
		names = append(names, tm.Name)
	}
	if !slices.Equal(names, []string{"Blue", "Green", "Red"}) || teams[2].ID != red.ID {
		t.Errorf("ListTeams = %+v, want Blue, Green, Red", teams)
	}
	sameTime(t, "ListTeams CreatedAt", teams[2].CreatedAt, red.CreatedAt)

	ana := newAgent(t, s, "ana")
	ben := newAgent(t, s, "ben")
	cid, err := s.CreateUser(ctx, store.User{Username: "cid", Role: store.RoleAgent, Teams: []int64{green.ID}})
	must(t, "CreateUser with teams", err)
	must(t, "SetUserTeams ana", s.SetUserTeams(ctx, ana.ID, []int64{red.ID, blue.ID}))
	must(t, "SetUserTeams ben", s.SetUserTeams(ctx, ben.ID, []int64{red.ID}))
	sorted := func(ids ...int64) []int64 { return slices.Sorted(slices.Values(ids)) }
	teamsOf := func() map[string][]int64 {
		t.Helper()
		users, err := s.ListUsers(ctx)
		must(t, "ListUsers", err)
		m := map[string][]int64{}
		for _, u := range users {
			m[u.Username] = sorted(u.Teams...)
			byID, err := s.UserByID(ctx, u.ID)
			must(t, "UserByID", err)
			if !slices.Equal(sorted(byID.Teams...), m[u.Username]) {
				t.Errorf("UserByID(%s).Teams = %v, ListUsers says %v", u.Username, byID.Teams, u.Teams)
			}
		}
		return m
	}
	m := teamsOf()
	if !slices.Equal(m["ana"], sorted(red.ID, blue.ID)) || !slices.Equal(m["ben"], []int64{red.ID}) ||
		!slices.Equal(m["cid"], []int64{green.ID}) {
		t.Errorf("teams of users = %v, want ana in Red and Blue, ben in Red, cid in Green", m)
	}
	if a, err := s.Agent(ctx, ana.ID); err != nil || !slices.Equal(sorted(a.Teams...), sorted(red.ID, blue.ID)) {
		t.Errorf("Agent(ana).Teams = %v, %v; want Red and Blue", a.Teams, err)
	}

	// SetUserTeams replaces; DeleteTeam removes the team from its members.
	must(t, "SetUserTeams ana again", s.SetUserTeams(ctx, ana.ID, []int64{green.ID}))
	must(t, "DeleteTeam Red", s.DeleteTeam(ctx, red.ID))
	m = teamsOf()
	if !slices.Equal(m["ana"], []int64{green.ID}) || len(m["ben"]) != 0 || !slices.Equal(m["cid"], []int64{green.ID}) {
		t.Errorf("teams after SetUserTeams and DeleteTeam = %v, want ana and cid in Green, ben in none", m)
	}
	teams, err = s.ListTeams(ctx)
	must(t, "ListTeams", err)
	if len(teams) != 2 || teams[0].ID != blue.ID || teams[1].ID != green.ID {
		t.Errorf("ListTeams after delete = %+v, want Blue, Green", teams)
	}
	wantErr(t, "DeleteTeam again", s.DeleteTeam(ctx, red.ID), store.ErrNotFound)
	// The name of a deleted team is free again.
	if _, err := s.CreateTeam(ctx, "Red"); err != nil {
		t.Errorf("CreateTeam with the name of a deleted team: %v", err)
	}
	must(t, "SetUserTeams none", s.SetUserTeams(ctx, cid.ID, nil))
	if u, _ := s.UserByID(ctx, cid.ID); len(u.Teams) != 0 {
		t.Errorf("Teams after SetUserTeams nil = %v, want none", u.Teams)
	}
}
