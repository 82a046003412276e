package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// writeSignInError answers a refused sign-in (auth.Service.SignIn) and reports whether
// err was nil: 429 with Retry-After (seconds) when throttled, 503 with Retry-After when
// too many sign-ins are checked at once, 401 for wrong credentials, a missing ("second
// factor required") or wrong second-factor code, 403 for a disabled user.
func (s *server) writeSignInError(w http.ResponseWriter, r *http.Request, name string, err error) bool {
	var te *auth.ThrottledError
	switch {
	case err == nil:
		return true
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed sign-ins for this user or from this address: try again in %s, or ask an administrator to unlock the user", auth.HumanWait(te.RetryAfter)))
	case errors.Is(err, auth.ErrBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, auth.ErrBusy.Error())
	case errors.Is(err, auth.ErrBadCredentials):
		s.logger.InfoContext(r.Context(), "sign-in refused", slog.String("user", auth.AuditName(name)), slog.String("remote", r.RemoteAddr))
		writeError(w, http.StatusUnauthorized, "wrong user name or password")
	case errors.Is(err, auth.ErrSecondFactorRequired):
		writeError(w, http.StatusUnauthorized, "second factor required: send the 6-digit code of your authenticator app as \"code\" with your user name and password")
	case errors.Is(err, auth.ErrBadSecondFactor):
		writeError(w, http.StatusUnauthorized, auth.ErrBadSecondFactor.Error())
	case errors.Is(err, auth.ErrDisabled):
		writeError(w, http.StatusForbidden, auth.ErrDisabled.Error())
	case r.Context().Err() != nil:
		// The client hung up while waiting: nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, "the sign-in was abandoned")
	default:
		s.logger.ErrorContext(r.Context(), "sign-in", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not sign you in: internal error, the server log has the details; try again later")
	}
	return false
}

// signInStateJSON is a user's sign-in throttling and second factor, for admins.
type signInStateJSON struct {
	User         adminUserJSON `json:"user"`
	Failures     int           `json:"failed_signins"`
	LockedUntil  *time.Time    `json:"locked_until,omitempty"`
	SecondFactor bool          `json:"second_factor"`
}

func (s *server) signInState(w http.ResponseWriter, r *http.Request, u store.User) {
	lock, err := s.auth.SignInLock(r.Context(), u)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("user %d", u.ID), err)
		return
	}
	_, active, err := s.auth.SecondFactorState(r.Context(), u.ID)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("user %d", u.ID), err)
		return
	}
	out := signInStateJSON{User: toAdminUserJSON(u), Failures: lock.Failures, SecondFactor: active}
	if lock.LockedUntil.After(time.Now()) {
		out.LockedUntil = &lock.LockedUntil
	}
	writeJSON(w, http.StatusOK, out)
}

// unlockUser forgets a user's failed sign-ins and lock (admins; audited "user.unlock").
func (s *server) unlockUser(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	u, err := s.auth.Unlock(r.Context(), user.Username, id)
	if err != nil {
		s.writePeopleError(w, r, fmt.Sprintf("user %d", id), "unlock", err)
		return
	}
	s.signInState(w, r, u)
}

// getUserSignIn shows a user's failed sign-ins, lock and second factor (admins).
func (s *server) getUserSignIn(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	u, err := s.st.UserByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, fmt.Sprintf("user %d", id), err)
		return
	}
	s.signInState(w, r, u)
}

// removeSecondFactor removes a user's second factor (admins; audited).
func (s *server) removeSecondFactor(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	id, ok := pathID(w, r, "user")
	if !ok {
		return
	}
	if err := s.auth.RemoveSecondFactor(r.Context(), user.Username, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("user %d has no second factor: nothing to remove", id))
			return
		}
		s.writePeopleError(w, r, fmt.Sprintf("user %d", id), "remove the second factor of", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
