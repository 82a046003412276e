package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// Sign-in protection on the People pages:
//
//	POST /account/second-factor          the user starts setting up a TOTP second factor:
//	                                     the page shows the secret and the otpauth:// URI
//	                                     once, with a form for the first code
//	POST /account/second-factor/confirm  the first code makes the factor active
//	POST /users/{id}/unlock              an admin forgets a user's failed sign-ins and
//	                                     lock (audited user.unlock)
//	POST /users/{id}/second-factor/remove an admin removes a user's second factor (a lost
//	                                     phone; audited)
//
// The rules are internal/auth's (throttle.go, secondfactor.go), as for the API.

func (h *handler) signInGuardRoutes(mux *pageMux) {
	agt, adm := store.RoleAgent, store.RoleAdmin
	mux.page("POST /account/second-factor", agt, h.secondFactorStart)
	mux.page("POST /account/second-factor/confirm", agt, h.secondFactorConfirm)
	mux.page("POST /users/{id}/unlock", adm, h.userUnlock)
	mux.page("POST /users/{id}/second-factor/remove", adm, h.userRemoveSecondFactor)
}

// signInGuardData is a user's sign-in state on their admin page.
type signInGuardData struct {
	Failures     int
	LockedUntil  time.Time // zero when not locked now
	SecondFactor bool
}

func (h *handler) signInGuard(r *http.Request, u store.User) (signInGuardData, error) {
	lock, err := h.auth.SignInLock(r.Context(), u)
	if err != nil {
		return signInGuardData{}, err
	}
	_, active, err := h.auth.SecondFactorState(r.Context(), u.ID)
	if err != nil {
		return signInGuardData{}, err
	}
	d := signInGuardData{Failures: lock.Failures, SecondFactor: active}
	if lock.LockedUntil.After(h.now()) {
		d.LockedUntil = lock.LockedUntil
	}
	return d, nil
}

// secondFactorData is the set-up page.
type secondFactorData struct {
	Secret string // shown once, on the first step
	URI    string
	Error  string
}

func (h *handler) secondFactorStart(w http.ResponseWriter, r *http.Request, v viewer) {
	en, err := h.auth.StartSecondFactor(r.Context(), v.User)
	switch {
	case errors.Is(err, auth.ErrSecondFactorActive), errors.Is(err, auth.ErrNoVault):
		h.renderAccountError(w, r, v, http.StatusConflict, sentence(err.Error()))
		return
	case err != nil:
		h.serverError(w, r, "set up your second factor", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, "secondfactor", h.data(v, "Second factor", "account", secondFactorData{Secret: en.Secret, URI: en.URI}))
}

func (h *handler) secondFactorConfirm(w http.ResponseWriter, r *http.Request, v viewer) {
	err := h.auth.ConfirmSecondFactor(r.Context(), v.User, r.PostForm.Get("code"))
	switch {
	case err == nil:
		http.Redirect(w, r, "/account?notice=second-factor", http.StatusSeeOther)
	case errors.Is(err, auth.ErrBadSecondFactor):
		h.render(w, r, http.StatusBadRequest, "secondfactor", h.data(v, "Second factor", "account",
			secondFactorData{Error: "Wrong code: enter the 6-digit code your authenticator app shows now for postroom."}))
	case errors.Is(err, auth.ErrSecondFactorActive), errors.Is(err, auth.ErrNoVault):
		h.renderAccountError(w, r, v, http.StatusConflict, sentence(err.Error()))
	default:
		if msg := err.Error(); msg == "no second factor is being set up: start again" {
			h.renderAccountError(w, r, v, http.StatusBadRequest, sentence(msg))
			return
		}
		h.serverError(w, r, "confirm your second factor", err)
	}
}

func (h *handler) renderAccountError(w http.ResponseWriter, r *http.Request, v viewer, status int, msg string) {
	h.renderAccount(w, r, v, status, accountData{TimeZone: v.User.TimeZone, Error: msg})
}

func (h *handler) userUnlock(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	if _, err := h.auth.Unlock(r.Context(), v.User.Username, u.ID); err != nil {
		h.afterUserChange(w, r, v, u, userFormOf(u), "unlocked", err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=unlocked", u.ID), http.StatusSeeOther)
}

func (h *handler) userRemoveSecondFactor(w http.ResponseWriter, r *http.Request, v viewer) {
	u, ok := h.loadUser(w, r)
	if !ok {
		return
	}
	err := h.auth.RemoveSecondFactor(r.Context(), v.User.Username, u.ID)
	if store.IsNotFound(err) {
		h.renderUserEdit(w, r, v, http.StatusConflict, userEditData{U: u, Form: userFormOf(u), Error: "This user has no second factor: nothing to remove."})
		return
	}
	if err != nil {
		h.serverError(w, r, "remove the second factor", err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=second-factor-removed", u.ID), http.StatusSeeOther)
}
