package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// userJSON is a user as the API shows it: never the password hash.
type userJSON struct {
	ID          int64     `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: u.Role, CreatedAt: u.CreatedAt}
}

type sessionJSON struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
	// Status is the user's agent status (GET /api/v1/me).
	Status string `json:"status,omitempty"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	fields := map[string]string{}
	if body.User == "" {
		fields["user"] = "enter your user name"
	}
	if body.Password == "" {
		fields["password"] = "enter your password"
	}
	if len(fields) > 0 {
		writeFieldErrors(w, fields)
		return
	}
	if status, msg := s.sso.PasswordRefusal(r.Context(), body.User); status != 0 {
		writeError(w, status, msg)
		return
	}
	token, sess, user, err := s.auth.SignIn(r.Context(), auth.Attempt{User: body.User, Password: body.Password, Code: body.Code, Address: s.auth.ClientAddress(r)})
	if !s.writeSignInError(w, r, body.User, err) {
		return
	}
	auth.SetSessionCookie(w, r, token, sess.ExpiresAt)
	writeJSON(w, http.StatusOK, sessionJSON{User: toUserJSON(user), CSRFToken: sess.CSRFToken})
}

// logout ends a cookie session and sets the user offline (an API token has no session to
// end: nothing changes).
func (s *server) logout(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session) {
	if auth.ViaSession(sess) {
		s.setOffline(r.Context(), user)
		if err := s.auth.Logout(r.Context(), auth.SessionToken(r)); err != nil {
			s.logger.ErrorContext(r.Context(), "sign-out", slog.Any("error", err))
			writeError(w, http.StatusInternalServerError, "could not sign you out: internal error, the server log has the details; try again later")
			return
		}
		auth.ClearSessionCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) me(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session) {
	a, err := s.st.Agent(r.Context(), user.ID)
	if err != nil {
		s.writeStoreError(w, r, "your agent status", err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON{User: toUserJSON(user), CSRFToken: sess.CSRFToken, Status: a.Status})
}
