package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// securityRoutes are the pages of sessions and API tokens: every user's own (Account >
// Sessions and API tokens, /account/security), an admin's view of another user's sessions
// (on the user's page) and the session timeouts (/settings/sessions).
func (h *handler) securityRoutes(mux *pageMux) {
	agt, adm := store.RoleAgent, store.RoleAdmin
	mux.page("GET /account/security", agt, h.security)
	mux.page("POST /account/sessions/{id}/end", agt, h.endOwnSession)
	mux.page("POST /account/tokens", agt, h.createOwnToken)
	mux.page("POST /account/tokens/{id}/revoke", agt, h.revokeOwnToken)
	mux.page("POST /users/{id}/sessions/end", adm, h.endUserSessions)
	mux.page("GET /settings/sessions", adm, h.sessionSettings)
	mux.page("POST /settings/sessions", adm, h.saveSessionSettings)
}

// sessionRow is a session as the pages show it.
type sessionRow struct {
	ID                  int64
	CreatedAt, LastSeen time.Time
	Client, Agent       string
	Current             bool
}

func sessionRows(list []store.Session, current store.Session) []sessionRow {
	rows := make([]sessionRow, 0, len(list))
	for _, se := range list {
		rows = append(rows, sessionRow{ID: se.ID, CreatedAt: se.CreatedAt, LastSeen: se.LastSeenAt, Client: se.ClientAddr,
			Agent: auth.UserAgentSummary(se.UserAgent), Current: se.ID == current.ID})
	}
	return rows
}

// tokenRow is an API token as the pages show it.
type tokenRow struct {
	ID                             int64
	Name, Scopes                   string
	CreatedAt, ExpiresAt, LastUsed time.Time
	Expired                        bool
}

type scopeChoice struct {
	Name    string
	Checked bool
}

type securityData struct {
	Sessions []sessionRow
	Tokens   []tokenRow
	// Scopes are those the user may give a token, checked as in the create form.
	Scopes     []scopeChoice
	FormName   string
	FormScopes []string
	FormExpiry string
	// NewToken is the plaintext of the token just created, shown this once.
	NewToken     string
	NewTokenName string
	Errors       map[string]string
	Notice       string
	Error        string
	Timeouts     auth.SessionTimeouts
}

var securityNotices = map[string]string{
	"ended":   "Session ended: it is signed out.",
	"revoked": "Token revoked: scripts using it are refused from now on.",
}

func (h *handler) security(w http.ResponseWriter, r *http.Request, v viewer) {
	h.renderSecurity(w, r, v, http.StatusOK, securityData{Notice: securityNotices[r.URL.Query().Get("notice")]})
}

func (h *handler) renderSecurity(w http.ResponseWriter, r *http.Request, v viewer, status int, d securityData) {
	ctx := r.Context()
	sessions, err := h.auth.ListSessions(ctx, v.User.ID)
	if err != nil {
		h.serverError(w, r, "list your sessions", err)
		return
	}
	d.Sessions = sessionRows(sessions, v.Session)
	tokens, err := h.st.ListAPITokensOf(ctx, v.User.ID)
	if err != nil {
		h.serverError(w, r, "list your API tokens", err)
		return
	}
	now := h.now()
	for _, t := range tokens {
		d.Tokens = append(d.Tokens, tokenRow{ID: t.ID, Name: t.Name, Scopes: strings.Join(t.Scopes, ", "), CreatedAt: t.CreatedAt,
			ExpiresAt: t.ExpiresAt, LastUsed: t.LastUsedAt, Expired: !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)})
	}
	for _, sc := range auth.TokenScopes {
		if sc == store.ScopeRead || auth.Allowed(v.User.Role, sc) {
			d.Scopes = append(d.Scopes, scopeChoice{Name: sc, Checked: slices.Contains(d.FormScopes, sc)})
		}
	}
	if d.Timeouts, err = h.auth.SessionTimeouts(ctx); err != nil {
		h.serverError(w, r, "read the session timeouts", err)
		return
	}
	if d.FormExpiry == "" {
		d.FormExpiry = now.In(userLocationOf(v.User)).Add(auth.DefaultTokenLifetime).Format(time.DateOnly)
	}
	h.render(w, r, status, "security", h.data(v, "Sessions and API tokens", "account", d))
}

// formID parses the {id} path value; 0 when it is not an id.
func formID(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

func (h *handler) endOwnSession(w http.ResponseWriter, r *http.Request, v viewer) {
	id := formID(r)
	_, err := h.auth.EndSession(r.Context(), v.User, v.User, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || id == 0:
		h.renderSecurity(w, r, v, http.StatusNotFound, securityData{Error: "That session has ended already."})
	case err != nil:
		h.serverError(w, r, "end the session", err)
	case id == v.Session.ID:
		auth.ClearSessionCookie(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/account/security?notice=ended", http.StatusSeeOther)
	}
}

func (h *handler) createOwnToken(w http.ResponseWriter, r *http.Request, v viewer) {
	f := r.PostForm
	d := securityData{FormName: f.Get("name"), FormScopes: f["scopes"], FormExpiry: strings.TrimSpace(f.Get("expires"))}
	req := auth.TokenRequest{Name: d.FormName, Scopes: d.FormScopes}
	if d.FormExpiry != "" {
		// The token works until the end of the chosen day in the user's time zone.
		day, err := time.ParseInLocation(time.DateOnly, d.FormExpiry, userLocationOf(v.User))
		if err != nil {
			d.Errors, d.Error = map[string]string{"expires_at": "choose a day, like 2027-03-31"}, "No token created: see below."
			h.renderSecurity(w, r, v, http.StatusBadRequest, d)
			return
		}
		req.ExpiresAt = day.AddDate(0, 0, 1).Add(-time.Second)
	}
	plain, tok, err := h.auth.CreateToken(r.Context(), v.User, req)
	var input *auth.ValidationError
	var forbidden *auth.ForbiddenError
	switch {
	case errors.As(err, &input):
		d.Errors, d.Error = input.Fields, "No token created: see below."
		h.renderSecurity(w, r, v, http.StatusBadRequest, d)
	case errors.As(err, &forbidden):
		d.Errors, d.Error = map[string]string{"scopes": forbidden.Reason}, "No token created: see below."
		h.renderSecurity(w, r, v, http.StatusForbidden, d)
	case err != nil:
		h.serverError(w, r, "create the API token", err)
	default:
		// Shown in this answer only (no-store), never in a URL or a later page.
		h.renderSecurity(w, r, v, http.StatusCreated, securityData{NewToken: plain, NewTokenName: tok.Name})
	}
}

func (h *handler) revokeOwnToken(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	id := formID(r)
	tok, err := h.st.APIToken(ctx, id)
	if id == 0 || store.IsNotFound(err) || err == nil && tok.UserID != v.User.ID {
		h.renderSecurity(w, r, v, http.StatusNotFound, securityData{Error: "That token is not yours or was revoked already."})
		return
	}
	if err == nil {
		err = h.st.DeleteAPIToken(ctx, id)
	}
	if err != nil && !store.IsNotFound(err) {
		h.serverError(w, r, "revoke the API token", err)
		return
	}
	h.auditPeople(r, store.AuditEvent{Actor: v.User.Username, Action: "token.delete", Object: "token:" + strconv.FormatInt(id, 10),
		Old: "name=" + strconv.Quote(tok.Name) + " user=" + v.User.Username})
	http.Redirect(w, r, "/account/security?notice=revoked", http.StatusSeeOther)
}

// endUserSessions ends every session of a user, for an admin on the user's page.
func (h *handler) endUserSessions(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	if _, err := h.auth.EndSessions(r.Context(), v.User, u); err != nil {
		h.serverError(w, r, "end the sessions", err)
		return
	}
	if u.ID == v.User.ID {
		auth.ClearSessionCookie(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/users/"+strconv.FormatInt(u.ID, 10)+"?notice=sessions-ended", http.StatusSeeOther)
}

type sessionSettingsData struct {
	Idle, Absolute string
	Errors         map[string]string
	Notice, Error  string
}

func (h *handler) sessionSettings(w http.ResponseWriter, r *http.Request, v viewer) {
	t, err := h.auth.SessionTimeouts(r.Context())
	if err != nil {
		h.serverError(w, r, "read the session timeouts", err)
		return
	}
	d := sessionSettingsData{Idle: strconv.Itoa(int(t.Idle / time.Minute)), Absolute: strconv.Itoa(int(t.Absolute / time.Minute))}
	if r.URL.Query().Get("notice") == "saved" {
		d.Notice = "Saved: the timeouts apply at once, to the sessions open now too."
	}
	h.render(w, r, http.StatusOK, "sessionsettings", h.data(v, "Session timeouts", "users", d))
}

func (h *handler) saveSessionSettings(w http.ResponseWriter, r *http.Request, v viewer) {
	d := sessionSettingsData{Idle: strings.TrimSpace(r.PostForm.Get("idle")), Absolute: strings.TrimSpace(r.PostForm.Get("absolute")), Errors: map[string]string{}}
	idle, err1 := strconv.Atoi(d.Idle)
	abs, err2 := strconv.Atoi(d.Absolute)
	if err1 != nil {
		d.Errors["idle"] = "enter whole minutes, like 120"
	}
	if err2 != nil {
		d.Errors["absolute"] = "enter whole minutes, like 720"
	}
	if len(d.Errors) == 0 {
		idle, abs = min(max(idle, -1), 366*24*60), min(max(abs, -1), 366*24*60)
		err := h.auth.SetSessionTimeouts(r.Context(), v.User, auth.SessionTimeouts{Idle: time.Duration(idle) * time.Minute, Absolute: time.Duration(abs) * time.Minute})
		var input *auth.ValidationError
		switch {
		case err == nil:
			http.Redirect(w, r, "/settings/sessions?notice=saved", http.StatusSeeOther)
			return
		case errors.As(err, &input):
			d.Errors = input.Fields
		default:
			h.serverError(w, r, "save the session timeouts", err)
			return
		}
	}
	d.Error = "Not saved: correct the fields marked below."
	h.render(w, r, http.StatusBadRequest, "sessionsettings", h.data(v, "Session timeouts", "users", d))
}
