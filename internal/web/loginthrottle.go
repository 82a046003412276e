package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/postroom/postroom/internal/auth"
)

// loginRefused shows the sign-in page for a refused sign-in (auth.Service.SignIn) and
// reports whether err was nil. Throttled: 429 with Retry-After and when to try again;
// a second factor needed: the second step, which asks for the code and carries the
// sealed ticket instead of the password.
func (h *handler) loginRefused(w http.ResponseWriter, r *http.Request, d loginData, ticket string, err error) bool {
	var te *auth.ThrottledError
	var sf *auth.SecondFactorError
	switch {
	case err == nil:
		return true
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
		at := h.now().Add(te.RetryAfter).UTC().Format("15:04:05 UTC")
		d.Ticket = ""
		d.Error = "Too many failed sign-ins for this user name or from this address. Try again in " + auth.HumanWait(te.RetryAfter) +
			" (at " + at + "), or ask an administrator to unlock your user."
		h.renderLogin(w, r, http.StatusTooManyRequests, d)
	case errors.Is(err, auth.ErrBusy):
		w.Header().Set("Retry-After", "5")
		d.Ticket, d.Error = "", "Too many sign-ins at once. Try again in a few seconds."
		h.renderLogin(w, r, http.StatusServiceUnavailable, d)
	case errors.As(err, &sf):
		d.Ticket = sf.Ticket
		h.renderLogin(w, r, http.StatusOK, d)
	case errors.Is(err, auth.ErrBadSecondFactor):
		d.Ticket = ticket
		d.Error = "Wrong code. Enter the current 6-digit code of your authenticator app (each code works once)."
		h.renderLogin(w, r, http.StatusUnauthorized, d)
	case errors.Is(err, auth.ErrTicket):
		d.Ticket, d.Error = "", "The sign-in took too long. Enter your user name and password again."
		h.renderLogin(w, r, http.StatusUnauthorized, d)
	case errors.Is(err, auth.ErrBadCredentials):
		h.logger.InfoContext(r.Context(), "sign-in refused", slog.String("user", auth.AuditName(d.User)), slog.String("remote", r.RemoteAddr))
		d.Error = "Wrong user name or password."
		h.renderLogin(w, r, http.StatusUnauthorized, d)
	case errors.Is(err, auth.ErrDisabled):
		d.Error = "This user is disabled. Ask an administrator to enable it."
		h.renderLogin(w, r, http.StatusForbidden, d)
	case r.Context().Err() != nil:
		// The client hung up while waiting: nobody reads the answer.
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		h.serverError(w, r, "sign you in", err)
	}
	return false
}
