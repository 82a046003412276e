package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
)

// The People pages: Users (admins manage users and teams, supervisors read the list),
// Agents (supervisors and admins set skills, languages and capacity) and Account (every
// user: own password, status and time zone; its sessions and API tokens are security.go's).
// The rules are internal/auth's and
// internal/routing's, the same as the API's and the CLI's.

// peopleRoutes registers the People pages.
func (h *handler) peopleRoutes(mux *pageMux) {
	agt, sup, adm := store.RoleAgent, store.RoleSupervisor, store.RoleAdmin
	mux.page("GET /users", sup, h.userList)
	mux.page("POST /users", adm, h.userCreate)
	mux.page("GET /users/{id}", adm, h.userEdit)
	mux.page("POST /users/{id}", adm, h.userUpdate)
	mux.page("POST /users/{id}/enable", adm, h.userSetDisabled(false))
	mux.page("POST /users/{id}/disable", adm, h.userSetDisabled(true))
	mux.page("POST /users/{id}/password", adm, h.userPassword)
	mux.page("GET /users/{id}/delete", adm, h.userDeleteConfirm)
	mux.page("POST /users/{id}/delete", adm, h.userDelete)
	mux.page("POST /teams", adm, h.teamCreate)
	mux.page("POST /teams/{id}/delete", adm, h.teamDelete)
	mux.page("GET /agents", sup, h.agentList)
	mux.page("GET /agents/{id}", sup, h.agentEdit)
	mux.page("POST /agents/{id}", sup, h.agentSave)
	mux.page("GET /account", agt, h.account)
	mux.page("POST /account/password", agt, h.accountPassword)
	mux.page("POST /account/status", agt, h.accountStatus)
	mux.page("POST /account/time-zone", agt, h.accountTimeZone)
	h.signInGuardRoutes(mux)
}

// Roles lists the roles in the order the forms offer them.
var roles = []string{store.RoleAgent, store.RoleSupervisor, store.RoleAdmin}

// userForm is the values of the create and edit forms.
type userForm struct {
	Username, Name, Email, Role, TimeZone string
	Teams                                 []int64
}

// HasTeam reports whether the form has team id checked.
func (f userForm) HasTeam(id int64) bool { return slices.Contains(f.Teams, id) }

func userFormOf(u store.User) userForm {
	return userForm{Username: u.Username, Name: u.DisplayName, Email: u.Email, Role: u.Role, TimeZone: u.TimeZone, Teams: u.Teams}
}

// readUserForm reads the form fields; bad team ids are dropped (they are checkboxes).
func readUserForm(r *http.Request) userForm {
	f := userForm{
		Username: strings.TrimSpace(r.PostForm.Get("username")), Name: strings.TrimSpace(r.PostForm.Get("name")),
		Email: strings.TrimSpace(r.PostForm.Get("email")), Role: r.PostForm.Get("role"),
		TimeZone: strings.TrimSpace(r.PostForm.Get("time_zone")), Teams: []int64{},
	}
	for _, v := range r.PostForm["teams"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			f.Teams = append(f.Teams, id)
		}
	}
	return f
}

type userRow struct {
	store.User
	TeamNames []string
}

type usersData struct {
	Users      []userRow
	Teams      []store.Team
	Roles      []string
	New        userForm
	Errors     map[string]string
	TeamName   string
	TeamErrors map[string]string
	Notice     string
	Error      string
}

var userNotices = map[string]string{
	"created":      "User created. They can sign in now.",
	"deleted":      "User deleted. Their work items stay, unassigned.",
	"team-created": "Team created.",
	"team-deleted": "Team deleted.",
}

func (h *handler) userList(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderUsers(w, r, v, http.StatusOK, usersData{Notice: userNotices[r.URL.Query().Get("notice")], New: userForm{Role: store.RoleAgent}})
}

func (h *handler) renderUsers(w http.ResponseWriter, r *http.Request, v viewer, status int, d usersData) {
	ctx := r.Context()
	users, err := h.st.ListUsers(ctx)
	if err != nil {
		h.serverError(w, r, "list the users", err)
		return
	}
	teams, err := h.st.ListTeams(ctx)
	if err != nil {
		h.serverError(w, r, "list the teams", err)
		return
	}
	names := map[int64]string{}
	for _, t := range teams {
		names[t.ID] = t.Name
	}
	for _, u := range users {
		row := userRow{User: u}
		for _, id := range u.Teams {
			row.TeamNames = append(row.TeamNames, names[id])
		}
		d.Users = append(d.Users, row)
	}
	d.Teams, d.Roles = teams, roles
	h.render(w, r, status, "users", h.data(v, "Users", "users", d))
}

func (h *handler) userCreate(w http.ResponseWriter, r *http.Request, v viewer) {
	f := readUserForm(r)
	_, err := h.users.Create(r.Context(), v.User.Username, auth.NewUser{
		Username: f.Username, DisplayName: f.Name, Email: f.Email, Role: f.Role, Password: r.PostForm.Get("password"),
		Teams: f.Teams, TimeZone: f.TimeZone,
	})
	var ve *auth.ValidationError
	switch {
	case err == nil:
		http.Redirect(w, r, "/users?notice=created", http.StatusSeeOther)
	case errors.As(err, &ve):
		h.renderUsers(w, r, v, http.StatusBadRequest, usersData{New: f, Errors: ve.Fields, Error: "The user was not created: correct the fields marked below."})
	default:
		h.serverError(w, r, "create the user", err)
	}
}

// loadUser reads the user of {id}; on failure it has written the page.
func (h *handler) loadUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil && id > 0 {
		var u store.User
		if u, err = h.st.UserByID(r.Context(), id); err == nil {
			return u, true
		}
		if !store.IsNotFound(err) {
			h.serverError(w, r, "read the user", err)
			return store.User{}, false
		}
	}
	h.errorPage(w, r, http.StatusNotFound, "User not found", "There is no user with this id. Go back to the Users page.")
	return store.User{}, false
}

type userEditData struct {
	U          store.User
	Form       userForm
	Teams      []store.Team
	Roles      []string
	Self       bool
	Sessions   []sessionRow
	Errors     map[string]string
	PassErrors map[string]string
	Notice     string
	Error      string
	// Guard is the user's failed sign-ins, lock and second factor (secondfactor.go).
	Guard signInGuardData
}

var userEditNotices = map[string]string{
	"saved":                 "Saved.",
	"enabled":               "User enabled: they can sign in again.",
	"disabled":              "User disabled: they are signed out everywhere, their API tokens are revoked and they cannot sign in.",
	"password":              "Password set. Tell the user through a safe channel; they can change it on their Account page.",
	"sessions-ended":        "Every session of this user ended: they are signed out everywhere.",
	"unlocked":              "Unlocked: the user's failed sign-ins are forgotten and they can sign in at once.",
	"second-factor-removed": "Second factor removed: the user signs in with the password alone until they set up a new one.",
}

func (h *handler) userEdit(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	h.renderUserEdit(w, r, v, http.StatusOK, userEditData{U: u, Form: userFormOf(u), Notice: userEditNotices[r.URL.Query().Get("notice")]})
}

func (h *handler) renderUserEdit(w http.ResponseWriter, r *http.Request, v viewer, status int, d userEditData) {
	teams, err := h.st.ListTeams(r.Context())
	if err != nil {
		h.serverError(w, r, "list the teams", err)
		return
	}
	d.Teams, d.Roles, d.Self = teams, roles, d.U.ID == v.User.ID
	sessions, err := h.auth.ListSessions(r.Context(), d.U.ID)
	if err != nil {
		h.serverError(w, r, "list the user's sessions", err)
		return
	}
	d.Sessions = sessionRows(sessions, v.Session)
	if d.Guard, err = h.signInGuard(r, d.U); err != nil {
		h.serverError(w, r, "read the user's sign-in state", err)
		return
	}
	h.render(w, r, status, "useredit", h.data(v, "User "+d.U.Username, "users", d))
}

// peopleProblem is what a page says for a refused change (the last admin, yourself).
func peopleProblem(err error) (string, bool) {
	switch {
	case errors.Is(err, store.ErrLastAdmin):
		return sentence(store.ErrLastAdmin.Error()), true
	case errors.Is(err, auth.ErrSelf):
		return sentence(auth.ErrSelf.Error()), true
	}
	return "", false
}

func (h *handler) userUpdate(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	f := readUserForm(r)
	f.Username = u.Username
	_, err := h.users.Update(r.Context(), v.User, u.ID, auth.UserChange{
		DisplayName: &f.Name, Email: &f.Email, Role: &f.Role, Teams: &f.Teams, TimeZone: &f.TimeZone,
	})
	h.afterUserChange(w, r, v, u, f, "saved", err)
}

// afterUserChange redirects with notice after a successful change, or shows the edit page
// with what is wrong.
func (h *handler) afterUserChange(w http.ResponseWriter, r *http.Request, v viewer, u store.User, f userForm, notice string, err error) {
	var ve *auth.ValidationError
	if err == nil {
		http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=%s", u.ID, notice), http.StatusSeeOther)
		return
	}
	if errors.As(err, &ve) {
		d := userEditData{U: u, Form: f, Errors: ve.Fields, Error: "Not saved: correct the fields marked below."}
		if notice == "password" {
			d = userEditData{U: u, Form: userFormOf(u), PassErrors: ve.Fields, Error: "The password was not set: see below."}
		}
		h.renderUserEdit(w, r, v, http.StatusBadRequest, d)
		return
	}
	if msg, ok := peopleProblem(err); ok {
		h.renderUserEdit(w, r, v, http.StatusConflict, userEditData{U: u, Form: f, Error: msg})
		return
	}
	if store.IsNotFound(err) {
		h.errorPage(w, r, http.StatusNotFound, "User not found", "There is no user with this id. Go back to the Users page.")
		return
	}
	h.serverError(w, r, "change the user", err)
}

func (h *handler) userSetDisabled(disabled bool) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, v viewer) {
		u, ok := h.loadUser(w, r)
		if !ok {
			return
		}
		_, err := h.users.Update(r.Context(), v.User, u.ID, auth.UserChange{Disabled: &disabled})
		notice := "enabled"
		if disabled {
			notice = "disabled"
			if err == nil {
				h.agentChanged(r.Context(), u.ID)
			}
		}
		h.afterUserChange(w, r, v, u, userFormOf(u), notice, err)
	}
}

func (h *handler) userPassword(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	err := h.users.SetPassword(r.Context(), v.User.Username, u.ID, r.PostForm.Get("password"))
	h.afterUserChange(w, r, v, u, userFormOf(u), "password", err)
}

func (h *handler) userDeleteConfirm(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "userdelete", h.data(v, "Delete user "+u.Username, "users", userEditData{U: u, Self: u.ID == v.User.ID}))
}

func (h *handler) userDelete(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	err := h.users.Delete(r.Context(), v.User, u.ID)
	if err == nil {
		h.agentChanged(r.Context(), u.ID)
		http.Redirect(w, r, "/users?notice=deleted", http.StatusSeeOther)
		return
	}
	if msg, ok := peopleProblem(err); ok {
		h.render(w, r, http.StatusConflict, "userdelete", h.data(v, "Delete user "+u.Username, "users", userEditData{U: u, Error: msg}))
		return
	}
	h.serverError(w, r, "delete the user", err)
}

func (h *handler) teamCreate(w http.ResponseWriter, r *http.Request, v viewer) {
	name := strings.TrimSpace(r.PostForm.Get("team_name"))
	d := usersData{TeamName: name, New: userForm{Role: store.RoleAgent}}
	if msg := checkTeamName(name); msg != "" {
		d.TeamErrors = map[string]string{"name": msg}
		h.renderUsers(w, r, v, http.StatusBadRequest, d)
		return
	}
	t, err := h.st.CreateTeam(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrConflict):
		d.TeamErrors = map[string]string{"name": "a team with this name exists: choose another name"}
		h.renderUsers(w, r, v, http.StatusConflict, d)
		return
	case err != nil:
		h.serverError(w, r, "create the team", err)
		return
	}
	h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "team.create", Object: fmt.Sprintf("team:%d", t.ID), New: fmt.Sprintf("name=%q", t.Name)})
	http.Redirect(w, r, "/users?notice=team-created", http.StatusSeeOther)
}

// maxTeamNameLen bounds a team's name (as the API does).
const maxTeamNameLen = 64

func checkTeamName(name string) string {
	switch {
	case name == "":
		return "name the team, like Billing or Tier 2"
	case len([]rune(name)) > maxTeamNameLen:
		return fmt.Sprintf("use at most %d characters", maxTeamNameLen)
	}
	return ""
}

func (h *handler) teamDelete(w http.ResponseWriter, r *http.Request, v viewer) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		err = h.st.DeleteTeam(r.Context(), id)
	}
	if err != nil {
		if store.IsNotFound(err) || id <= 0 {
			h.errorPage(w, r, http.StatusNotFound, "Team not found", "There is no team with this id. Go back to the Users page.")
			return
		}
		h.serverError(w, r, "delete the team", err)
		return
	}
	h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "team.delete", Object: fmt.Sprintf("team:%d", id)})
	http.Redirect(w, r, "/users?notice=team-deleted", http.StatusSeeOther)
}

func (h *handler) auditPeople(r *http.Request, e store.AuditEvent) {
	if err := h.st.AddAudit(r.Context(), e); err != nil {
		h.logger.ErrorContext(r.Context(), "audit", "action", e.Action, "object", e.Object, "error", err)
	}
}

// agentChanged tells the routing engine (when hooked in) that an agent changed.
func (h *handler) agentChanged(ctx context.Context, userID int64) {
	if h.onAgentChange != nil {
		h.onAgentChange(ctx, userID)
	}
}

type agentRow struct {
	store.Agent
	SkillsText, LanguagesText string
}

type agentsData struct {
	Agents []agentRow
	Notice string
}

func (h *handler) agentList(w http.ResponseWriter, r *http.Request, v viewer) {
	list, err := h.st.ListAgents(r.Context())
	if err != nil {
		h.serverError(w, r, "list the agents", err)
		return
	}
	d := agentsData{}
	if r.URL.Query().Get("notice") == "saved" {
		d.Notice = "Agent profile saved."
	}
	for _, a := range list {
		if a.Disabled {
			continue
		}
		d.Agents = append(d.Agents, agentRow{Agent: a, SkillsText: routing.FormatSkills(a.Skills), LanguagesText: strings.Join(a.Languages, ", ")})
	}
	h.render(w, r, http.StatusOK, "agents", h.data(v, "Agents", "agents", d))
}

type agentEditData struct {
	A                           store.Agent
	Skills, Languages, Capacity string
	Errors                      map[string]string
	Error                       string
}

func (h *handler) loadAgent(w http.ResponseWriter, r *http.Request) (store.Agent, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil && id > 0 {
		var a store.Agent
		if a, err = h.st.Agent(r.Context(), id); err == nil {
			return a, true
		}
		if !store.IsNotFound(err) {
			h.serverError(w, r, "read the agent", err)
			return store.Agent{}, false
		}
	}
	h.errorPage(w, r, http.StatusNotFound, "Agent not found", "There is no user with this id. Go back to the Agents page.")
	return store.Agent{}, false
}

func (h *handler) agentEdit(w http.ResponseWriter, r *http.Request, v viewer) {
	a, ok := h.loadAgent(w, r)
	if !ok {
		return
	}
	d := agentEditData{A: a, Skills: routing.FormatSkills(a.Skills), Languages: strings.Join(a.Languages, ", "), Capacity: strconv.Itoa(a.Capacity)}
	h.render(w, r, http.StatusOK, "agentedit", h.data(v, "Agent "+a.Username, "agents", d))
}

func (h *handler) agentSave(w http.ResponseWriter, r *http.Request, v viewer) {
	a, ok := h.loadAgent(w, r)
	if !ok {
		return
	}
	d := agentEditData{A: a, Skills: strings.TrimSpace(r.PostForm.Get("skills")),
		Languages: strings.TrimSpace(r.PostForm.Get("languages")), Capacity: strings.TrimSpace(r.PostForm.Get("capacity"))}
	errs := map[string]string{}
	skills, msg := routing.ParseSkills(d.Skills)
	if msg != "" {
		errs["skills"] = msg
	}
	capacity, err := strconv.Atoi(d.Capacity)
	if err != nil {
		errs["capacity"] = fmt.Sprintf("enter how many email items the agent works on at once, a whole number from %d to %d", routing.MinCapacity, routing.MaxCapacity)
	}
	p := routing.AgentProfile{Skills: skills, Languages: routing.ParseLanguages(d.Languages), Capacity: capacity}
	if len(errs) == 0 {
		_, err = routing.SaveProfile(r.Context(), h.st, v.User.Username, a.UserID, p)
		var ve *routing.ValidationError
		switch {
		case err == nil:
			h.agentChanged(r.Context(), a.UserID)
			http.Redirect(w, r, "/agents?notice=saved", http.StatusSeeOther)
			return
		case errors.As(err, &ve):
			for k, msg := range ve.Fields {
				k, _, _ = strings.Cut(k, ".") // skills.billing is shown at the skills field
				if errs[k] == "" {
					errs[k] = msg
				}
			}
		default:
			h.serverError(w, r, "save the agent", err)
			return
		}
	}
	d.Errors, d.Error = errs, "Not saved: correct the fields marked below."
	h.render(w, r, http.StatusBadRequest, "agentedit", h.data(v, "Agent "+a.Username, "agents", d))
}

type accountData struct {
	Status     string
	Statuses   []string
	TimeZone   string
	PassErrors map[string]string
	Errors     map[string]string
	Notice     string
	Error      string
	// SecondFactor: the user has an active second factor.
	SecondFactor bool
}

var accountNotices = map[string]string{
	"password":      "Password changed.",
	"status":        "Status set.",
	"time-zone":     "Time zone saved.",
	"second-factor": "Second factor active: from now on, sign-in asks for a code of your authenticator app.",
}

func (h *handler) account(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderAccount(w, r, v, http.StatusOK, accountData{TimeZone: v.User.TimeZone, Notice: accountNotices[r.URL.Query().Get("notice")]})
}

func (h *handler) renderAccount(w http.ResponseWriter, r *http.Request, v viewer, status int, d accountData) {
	a, err := h.st.Agent(r.Context(), v.User.ID)
	if err != nil {
		h.serverError(w, r, "read your status", err)
		return
	}
	if d.Status == "" {
		d.Status = a.Status
	}
	d.Statuses = routing.Statuses
	if _, d.SecondFactor, err = h.auth.SecondFactorState(r.Context(), v.User.ID); err != nil {
		h.serverError(w, r, "read your second factor", err)
		return
	}
	h.render(w, r, status, "account", h.data(v, "Account", "account", d))
}

func (h *handler) accountPassword(w http.ResponseWriter, r *http.Request, v viewer) {
	password := r.PostForm.Get("password")
	d := accountData{TimeZone: v.User.TimeZone}
	if password != r.PostForm.Get("confirm") {
		d.PassErrors = map[string]string{"confirm": "the two new passwords differ: type the same one twice"}
		d.Error = "The password was not changed: see below."
		h.renderAccount(w, r, v, http.StatusBadRequest, d)
		return
	}
	err := h.users.ChangeOwnPassword(r.Context(), v.User, r.PostForm.Get("current"), password)
	var ve *auth.ValidationError
	switch {
	case err == nil:
		http.Redirect(w, r, "/account?notice=password", http.StatusSeeOther)
	case errors.As(err, &ve):
		d.PassErrors, d.Error = ve.Fields, "The password was not changed: see below."
		h.renderAccount(w, r, v, http.StatusBadRequest, d)
	default:
		h.serverError(w, r, "change your password", err)
	}
}

func (h *handler) accountStatus(w http.ResponseWriter, r *http.Request, v viewer) {
	_, err := routing.SetStatus(r.Context(), h.st, v.User.ID, r.PostForm.Get("status"), h.now().UTC())
	var ve *routing.ValidationError
	switch {
	case err == nil:
		h.agentChanged(r.Context(), v.User.ID)
		http.Redirect(w, r, "/account?notice=status", http.StatusSeeOther)
	case errors.As(err, &ve):
		h.renderAccount(w, r, v, http.StatusBadRequest, accountData{TimeZone: v.User.TimeZone, Errors: ve.Fields})
	default:
		h.serverError(w, r, "set your status", err)
	}
}

func (h *handler) accountTimeZone(w http.ResponseWriter, r *http.Request, v viewer) {
	tz := strings.TrimSpace(r.PostForm.Get("time_zone"))
	_, err := h.users.Update(r.Context(), v.User, v.User.ID, auth.UserChange{TimeZone: &tz})
	var ve *auth.ValidationError
	switch {
	case err == nil:
		http.Redirect(w, r, "/account?notice=time-zone", http.StatusSeeOther)
	case errors.As(err, &ve):
		h.renderAccount(w, r, v, http.StatusBadRequest, accountData{TimeZone: tz, Errors: ve.Fields})
	default:
		h.serverError(w, r, "save your time zone", err)
	}
}
