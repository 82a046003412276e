package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// browserSessionJSON is a signed-in browser session as its owner and admins see it: never
// its token or the token's hash. Current marks the session of the request.
type browserSessionJSON struct {
	ID            int64     `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	ClientAddress string    `json:"client_address"`
	UserAgent     string    `json:"user_agent"`
	Current       bool      `json:"current"`
}

func (s *server) writeSessions(w http.ResponseWriter, r *http.Request, userID int64, current store.Session) {
	list, err := s.auth.ListSessions(r.Context(), userID)
	if err != nil {
		s.writeStoreError(w, r, "the sessions", err)
		return
	}
	out := make([]browserSessionJSON, 0, len(list))
	for _, se := range list {
		out = append(out, browserSessionJSON{ID: se.ID, CreatedAt: se.CreatedAt, LastSeenAt: se.LastSeenAt, ExpiresAt: se.ExpiresAt,
			ClientAddress: se.ClientAddr, UserAgent: auth.UserAgentSummary(se.UserAgent),
			Current: auth.ViaSession(current) && se.ID == current.ID})
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []browserSessionJSON `json:"sessions"`
	}{out})
}

// listOwnSessions lists the caller's open sessions, the one of the request marked current.
func (s *server) listOwnSessions(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session) {
	s.writeSessions(w, r, user.ID, sess)
}

// sessionID parses the session id of the path value name; on failure it has written a 404.
func sessionID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("session %q not found: ids are positive whole numbers", r.PathValue(name)))
		return 0, false
	}
	return id, true
}

// endOwnSession ends one of the caller's sessions (the current one too: that is signing
// out, and the cookie is cleared).
func (s *server) endOwnSession(w http.ResponseWriter, r *http.Request, user store.User, sess store.Session) {
	id, ok := sessionID(w, r, "id")
	if !ok {
		return
	}
	if !s.endSession(w, r, user, user, id) {
		return
	}
	if auth.ViaSession(sess) && sess.ID == id {
		auth.ClearSessionCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

// endSession ends session id of owner; on failure it has written the answer and returns
// false, on success the caller answers.
func (s *server) endSession(w http.ResponseWriter, r *http.Request, actor, owner store.User, id int64) bool {
	_, err := s.auth.EndSession(r.Context(), actor, owner, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("session %d of %s not found: it has ended already; list the sessions to see which are open", id, owner.Username))
		return false
	}
	if err != nil {
		s.writeStoreError(w, r, "the session", err)
		return false
	}
	return true
}

// pathUser reads the user of the {id} path value; on failure it has written the answer.
func (s *server) pathUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return store.User{}, false
	}
	u, err := s.st.UserByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("user %d", id), err)
		return store.User{}, false
	}
	return u, true
}

// listUserSessions lists a user's open sessions for an admin.
func (s *server) listUserSessions(w http.ResponseWriter, r *http.Request, _ store.User, sess store.Session) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	s.writeSessions(w, r, u.ID, sess)
}

// endUserSession ends one session of a user, for an admin.
func (s *server) endUserSession(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	id, ok := sessionID(w, r, "session")
	if !ok {
		return
	}
	if s.endSession(w, r, user, u, id) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// endUserSessions ends every session of a user, for an admin, and says how many ended.
func (s *server) endUserSessions(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	n, err := s.auth.EndSessions(r.Context(), user, u)
	if err != nil {
		s.writeStoreError(w, r, "the sessions", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Ended int `json:"ended"`
	}{n})
}

// sessionSettingsJSON are the session timeouts, in minutes.
type sessionSettingsJSON struct {
	IdleTimeoutMinutes     int `json:"idle_timeout_minutes"`
	AbsoluteTimeoutMinutes int `json:"absolute_timeout_minutes"`
}

func (s *server) getSessionSettings(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	t, err := s.auth.SessionTimeouts(r.Context())
	if err != nil {
		s.writeStoreError(w, r, "the session settings", err)
		return
	}
	writeJSON(w, http.StatusOK, sessionSettingsJSON{IdleTimeoutMinutes: int(t.Idle / time.Minute), AbsoluteTimeoutMinutes: int(t.Absolute / time.Minute)})
}

// putSessionSettings sets both timeouts; they apply at once, to open sessions too.
func (s *server) putSessionSettings(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	var body struct {
		Idle     *int `json:"idle_timeout_minutes"`
		Absolute *int `json:"absolute_timeout_minutes"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	missing := map[string]string{}
	if body.Idle == nil {
		missing["idle_timeout_minutes"] = "give the idle timeout in minutes, e.g. 120"
	}
	if body.Absolute == nil {
		missing["absolute_timeout_minutes"] = "give the absolute timeout in minutes, e.g. 720"
	}
	if len(missing) > 0 {
		writeFieldErrors(w, missing)
		return
	}
	// Beyond a year either is refused by Check; clamping first keeps the multiplication
	// from overflowing into the allowed range.
	for _, v := range []*int{body.Idle, body.Absolute} {
		*v = min(max(*v, -1), 366*24*60)
	}
	t := auth.SessionTimeouts{Idle: time.Duration(*body.Idle) * time.Minute, Absolute: time.Duration(*body.Absolute) * time.Minute}
	err := s.auth.SetSessionTimeouts(r.Context(), user, t)
	var input *auth.ValidationError
	if errors.As(err, &input) {
		fields := map[string]string{}
		for k, v := range input.Fields {
			fields[k+"_timeout_minutes"] = v
		}
		writeFieldErrors(w, fields)
		return
	}
	if err != nil {
		s.writeStoreError(w, r, "the session settings", err)
		return
	}
	s.getSessionSettings(w, r, user, store.Session{})
}
