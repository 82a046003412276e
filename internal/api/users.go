package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// Users, teams and agents ("People"): admins manage users and teams; supervisors read
// them and set the agents' routing profiles; everyone changes their own password and
// status. The rules are internal/auth's (users) and internal/routing's (agents).

const (
	hintTeams    = "use a list of team ids, like [1, 2]"
	hintSkills   = `use an object of skill levels, like {"billing": 7, "returns": 5}`
	hintLangs    = `use a list of ISO 639-1 codes, like ["en", "de"]`
	hintCapacity = "use a whole number from 1 to 100"
	// maxTeamNameLen bounds a team's name, a label for people.
	maxTeamNameLen = 64
)

// adminUserJSON is a user in the users endpoints: never the password hash.
type adminUserJSON struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	Teams     []int64   `json:"teams"`
	TimeZone  string    `json:"time_zone"`
	CreatedAt time.Time `json:"created_at"`
}

func toAdminUserJSON(u store.User) adminUserJSON {
	teams := u.Teams
	if teams == nil {
		teams = []int64{}
	}
	return adminUserJSON{ID: u.ID, Username: u.Username, Name: u.DisplayName, Email: u.Email, Role: u.Role,
		Disabled: u.Disabled, Teams: teams, TimeZone: u.TimeZone, CreatedAt: u.CreatedAt}
}

// agentJSON is an agent's routing profile with who they are and their status.
type agentJSON struct {
	UserID    int64          `json:"user_id"`
	Username  string         `json:"username"`
	Name      string         `json:"name"`
	Role      string         `json:"role"`
	Disabled  bool           `json:"disabled"`
	Status    string         `json:"status"`
	StatusAt  *time.Time     `json:"status_at,omitempty"`
	Skills    map[string]int `json:"skills"`
	Languages []string       `json:"languages"`
	Capacity  int            `json:"capacity"`
	Teams     []int64        `json:"teams"`
}

func toAgentJSON(a store.Agent) agentJSON {
	p := routing.ProfileOf(a)
	v := agentJSON{UserID: a.UserID, Username: a.Username, Name: a.DisplayName, Role: a.Role, Disabled: a.Disabled,
		Status: a.Status, Skills: p.Skills, Languages: p.Languages, Capacity: p.Capacity, Teams: a.Teams}
	if v.Teams == nil {
		v.Teams = []int64{}
	}
	if !a.StatusAt.IsZero() {
		t := a.StatusAt
		v.StatusAt = &t
	}
	return v
}

type teamJSON struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// writePeopleError answers for an error of the user or agent rules: 400 with field errors,
// 409 for the last admin or yourself, 404 for an unknown id, else 500 (logged). object
// names what was acted on ("user 3"), action what was tried ("delete").
func (s *server) writePeopleError(w http.ResponseWriter, r *http.Request, object, action string, err error) {
	var uerr *auth.ValidationError
	var rerr *routing.ValidationError
	switch {
	case errors.As(err, &uerr):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: uerr.Error(), Fields: uerr.Fields})
	case errors.As(err, &rerr):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: rerr.Error(), Fields: rerr.Fields})
	case errors.Is(err, store.ErrLastAdmin):
		writeError(w, http.StatusConflict, store.ErrLastAdmin.Error())
	case errors.Is(err, auth.ErrSelf):
		writeError(w, http.StatusConflict, auth.ErrSelf.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, object+" not found: check the id")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, object+" already exists: choose another name")
	default:
		s.logger.ErrorContext(r.Context(), "api request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("could not %s %s: internal error, the server log has the details; try again later", action, object))
	}
}

// agentChanged tells the routing engine (when hooked in) that an agent's profile or status
// changed, so that it can offer work at once.
func (s *server) agentChanged(ctx context.Context, userID int64) {
	if s.onAgentChange != nil {
		s.onAgentChange(ctx, userID)
	}
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.ListUsers(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the users", err)
		return
	}
	out := make([]adminUserJSON, 0, len(list))
	for _, u := range list {
		out = append(out, toAdminUserJSON(u))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []adminUserJSON `json:"items"`
	}{out})
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	u, err := s.st.UserByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("user %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toAdminUserJSON(u))
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var in auth.NewUser
	errs := decodeFields(obj, map[string]member{
		"username": {&in.Username, hintText}, "name": {&in.DisplayName, hintText}, "password": {&in.Password, hintText},
		"role": {&in.Role, "use agent, supervisor or admin"}, "email": {&in.Email, hintText}, "teams": {&in.Teams, hintTeams},
		"time_zone": {&in.TimeZone, hintText},
	})
	if len(errs) > 0 {
		writeInvalid(w, "the user has errors", errs)
		return
	}
	u, err := s.users.Create(r.Context(), user.Username, in)
	if err != nil {
		s.writePeopleError(w, r, "the user", "create", err)
		return
	}
	writeJSON(w, http.StatusCreated, toAdminUserJSON(u))
}

// updateUser changes the fields present in the body; "disabled": true disables the user.
func (s *server) updateUser(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var ch auth.UserChange
	var username *string
	errs := decodeFields(obj, map[string]member{
		"name": {&ch.DisplayName, hintText}, "email": {&ch.Email, hintText}, "role": {&ch.Role, "use agent, supervisor or admin"},
		"disabled": {&ch.Disabled, hintBool}, "teams": {&ch.Teams, hintTeams}, "time_zone": {&ch.TimeZone, hintText},
		"username": {&username, hintText},
	}, "id", "created_at")
	if _, sent := obj["password"]; sent {
		errs["password"] = "set a password with PUT /api/v1/users/{id}/password"
	}
	if len(errs) > 0 {
		writeInvalid(w, "the user has errors", errs)
		return
	}
	ctx := r.Context()
	if username != nil {
		old, err := s.st.UserByID(ctx, id)
		if err != nil {
			s.writeStoreError(w, r, fmt.Sprintf("user %d", id), err)
			return
		}
		if *username != old.Username {
			writeInvalid(w, "the user has errors", map[string]string{"username": "the user name cannot change: create a new user instead"})
			return
		}
	}
	u, err := s.users.Update(ctx, user, id, ch)
	if err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("user %d", id), "change", err)
		return
	}
	if ch.Disabled != nil && *ch.Disabled {
		s.agentChanged(ctx, id)
	}
	writeJSON(w, http.StatusOK, toAdminUserJSON(u))
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	if err := s.users.Delete(r.Context(), user, id); err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("user %d", id), "delete", err)
		return
	}
	s.agentChanged(r.Context(), id)
	w.WriteHeader(http.StatusNoContent)
}

// setUserPassword is an admin's reset of a user's password.
func (s *server) setUserPassword(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var password string
	if errs := decodeFields(obj, map[string]member{"password": {&password, hintText}}); len(errs) > 0 {
		writeInvalid(w, "the password has errors", errs)
		return
	}
	if err := s.users.SetPassword(r.Context(), user.Username, id, password); err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("user %d", id), "set the password of", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setOwnPassword changes the signed-in user's password; the current one is needed.
func (s *server) setOwnPassword(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var current, password string
	if errs := decodeFields(obj, map[string]member{"current": {&current, hintText}, "password": {&password, hintText}}); len(errs) > 0 {
		writeInvalid(w, "the password has errors", errs)
		return
	}
	if err := s.users.ChangeOwnPassword(r.Context(), user, current, password); err != nil {
		s.writePeopleError(w, r, "your user", "change the password of", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listTeams(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.ListTeams(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the teams", err)
		return
	}
	out := make([]teamJSON, 0, len(list))
	for _, t := range list {
		out = append(out, teamJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt})
	}
	writeJSON(w, http.StatusOK, struct {
		Items []teamJSON `json:"items"`
	}{out})
}

// checkTeamName returns the field message for a team name, "" when it is fine.
func checkTeamName(name string) string {
	switch n := utf8.RuneCountInString(name); {
	case strings.TrimSpace(name) == "":
		return "name the team, like Billing or Tier 2"
	case n > maxTeamNameLen:
		return fmt.Sprintf("use at most %d characters", maxTeamNameLen)
	}
	return ""
}

func (s *server) createTeam(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var name string
	errs := decodeFields(obj, map[string]member{"name": {&name, hintText}})
	name = strings.TrimSpace(name)
	if msg := checkTeamName(name); msg != "" && errs["name"] == "" {
		errs["name"] = msg
	}
	if len(errs) > 0 {
		writeInvalid(w, "the team has errors", errs)
		return
	}
	t, err := s.st.CreateTeam(r.Context(), name)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, fmt.Sprintf("a team named %q exists: choose another name", name))
		return
	}
	if err != nil {
		s.writePeopleError(w, r, "the team", "create", err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "team.create", Object: fmt.Sprintf("team:%d", t.ID), New: fmt.Sprintf("name=%q", t.Name)})
	writeJSON(w, http.StatusCreated, teamJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt})
}

func (s *server) deleteTeam(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "team")
	if !ok {
		return
	}
	if err := s.st.DeleteTeam(r.Context(), id); err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("team %d", id), "delete", err)
		return
	}
	s.audit(r, store.AuditEvent{Actor: user.Username, Action: "team.delete", Object: fmt.Sprintf("team:%d", id)})
	w.WriteHeader(http.StatusNoContent)
}

// audit records e; the change is made whatever happens to the entry (a failure is logged).
func (s *server) audit(r *http.Request, e store.AuditEvent) {
	if err := s.st.AddAudit(r.Context(), e); err != nil {
		s.logger.ErrorContext(r.Context(), "audit", slog.String("action", e.Action), slog.String("object", e.Object), slog.Any("error", err))
	}
}

func (s *server) listAgents(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	list, err := s.st.ListAgents(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the agents", err)
		return
	}
	out := make([]agentJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toAgentJSON(a))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []agentJSON `json:"items"`
	}{out})
}

// getAgent answers an agent's profile: supervisors and admins see everyone's, an agent
// their own.
func (s *server) getAgent(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "agent")
	if !ok {
		return
	}
	if id != user.ID && !auth.Allowed(user.Role, store.RoleSupervisor) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("your role %q may read only your own agent profile (GET /api/v1/agents/%d): it needs %q for others", user.Role, user.ID, store.RoleSupervisor))
		return
	}
	a, err := s.st.Agent(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("agent %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, toAgentJSON(a))
}

// updateAgent sets the fields of the profile present in the body (skills, languages,
// capacity); the others keep their value.
func (s *server) updateAgent(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "agent")
	if !ok {
		return
	}
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	ctx := r.Context()
	old, err := s.st.Agent(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("agent %d", id), err)
		return
	}
	p := routing.ProfileOf(old)
	var skills map[string]int
	var langs []string
	var capacity *int
	errs := decodeFields(obj, map[string]member{
		"skills": {&skills, hintSkills}, "languages": {&langs, hintLangs}, "capacity": {&capacity, hintCapacity},
	}, "user_id", "username", "name", "role", "disabled", "status", "status_at", "teams")
	if len(errs) > 0 {
		writeInvalid(w, "the agent profile has errors", errs)
		return
	}
	if _, ok := obj["skills"]; ok {
		p.Skills = skills
		if p.Skills == nil {
			p.Skills = map[string]int{}
		}
	}
	if _, ok := obj["languages"]; ok {
		p.Languages = langs
		if p.Languages == nil {
			p.Languages = []string{}
		}
	}
	if capacity != nil {
		p.Capacity = *capacity
	} else if _, ok := obj["capacity"]; ok {
		p.Capacity = 0 // null: refused by Validate with what to enter
	}
	a, err := routing.SaveProfile(ctx, s.st, user.Username, id, p)
	if err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("agent %d", id), "save", err)
		return
	}
	s.agentChanged(ctx, id)
	writeJSON(w, http.StatusOK, toAgentJSON(a))
}

// setOwnStatus sets the signed-in user's status (available, away, offline).
func (s *server) setOwnStatus(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	obj, ok := readObject(w, r, false)
	if !ok {
		return
	}
	var status string
	errs := decodeFields(obj, map[string]member{"status": {&status, "use available, away or offline"}})
	if _, ok := obj["status"]; !ok {
		errs["status"] = "give your status: available, away or offline"
	}
	if len(errs) > 0 {
		writeInvalid(w, "the status has errors", errs)
		return
	}
	a, err := routing.SetStatus(r.Context(), s.st, user.ID, status, time.Now().UTC())
	if err != nil {
		s.writePeopleError(w, r, "your agent profile", "set the status of", err)
		return
	}
	s.agentChanged(r.Context(), user.ID)
	writeJSON(w, http.StatusOK, toAgentJSON(a))
}

// setOffline sets a user who signs out offline, so that no work is offered to them.
func (s *server) setOffline(ctx context.Context, user store.User) {
	if err := s.st.SetAgentStatus(ctx, user.ID, store.AgentOffline, time.Now().UTC()); err != nil {
		s.logger.WarnContext(ctx, "set signed-out user offline", slog.String("user", user.Username), slog.Any("error", err))
		return
	}
	s.agentChanged(ctx, user.ID)
}
