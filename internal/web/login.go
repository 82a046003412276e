package web

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// loginCSRFCookie carries the double-submit token of the sign-in form, which is sent
// before there is a session to hold a CSRF token (it stops login CSRF: signing a victim
// into an attacker's account).
const loginCSRFCookie = "postroom_login_csrf"

// loginFormLifetimeSeconds is how long a sign-in form stays valid: long enough to look up a
// password, short enough that the cookie does not linger.
const loginFormLifetimeSeconds = 3600

type loginData struct {
	User  string
	Next  string
	Error string
	// SSOButton is the single sign-on button's label ("" when single sign-on is off).
	SSOButton string
	// Ticket is set on the second step: the password was right, the code is asked for.
	Ticket string
}

// safeNext keeps a post-login target only if it is a path on this site; otherwise "/",
// which leads each role to its landing page (landing). A path of our own starts with one "/"
// (not "//" nor "/\"), has no scheme, host or user, and, read as is and unescaped once, no
// backslash, space, control or other unprintable character and no invalid UTF-8: browsers
// drop tabs and newlines and read "\" as "/", so "/\t/evil.example" is "//evil.example".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	unescaped, err := url.PathUnescape(next)
	if err != nil {
		return "/"
	}
	for _, s := range []string{next, unescaped} {
		if strings.HasPrefix(s, "//") || !utf8.ValidString(s) {
			return "/"
		}
		for _, r := range s {
			if r == '\\' || r == ' ' || !unicode.IsPrint(r) {
				return "/"
			}
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return next
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, sess, err := h.auth.Authenticate(r); err == nil && auth.ViaSession(sess) {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// renderLogin shows the sign-in form with a fresh double-submit token.
func (h *handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	token := auth.RandomToken()
	http.SetCookie(w, &http.Cookie{
		Name: loginCSRFCookie, Value: token, Path: "/login", MaxAge: loginFormLifetimeSeconds,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	d.SSOButton = h.sso.Button(r.Context())
	pd := h.data(viewer{}, "Sign in", "", d)
	pd.CSRF = token
	h.render(w, r, status, "login", pd)
}

func (h *handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Form not readable", "The sign-in form could not be read. Go back and try again.")
		return
	}
	d := loginData{User: strings.TrimSpace(r.PostForm.Get("user")), Next: safeNext(r.PostForm.Get("next"))}
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		d.Error = "The sign-in form expired. Sign in again."
		h.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	password, ticket := r.PostForm.Get("password"), r.PostForm.Get("ticket")
	if ticket == "" && (d.User == "" || password == "") {
		d.Error = "Enter your user name and password."
		h.renderLogin(w, r, http.StatusBadRequest, d)
		return
	}
	if status, msg := h.sso.PasswordRefusal(r.Context(), d.User); status != 0 {
		d.Error = msg
		h.renderLogin(w, r, status, d)
		return
	}
	token, sess, user, err := h.auth.SignIn(r.Context(), auth.Attempt{User: d.User, Password: password, Ticket: ticket,
		Code: r.PostForm.Get("code"), Address: h.auth.ClientAddress(r)})
	if !h.loginRefused(w, r, d, ticket, err) {
		return
	}
	auth.SetSessionCookie(w, r, token, sess.ExpiresAt)
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Path: "/login", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	h.logger.InfoContext(r.Context(), "signed in on the web", slog.String("user", user.Username))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// logout ends the session and sets the user offline, so that no work is offered to them.
func (h *handler) logout(w http.ResponseWriter, r *http.Request, v viewer) {
	if err := h.st.SetAgentStatus(r.Context(), v.User.ID, store.AgentOffline, h.now().UTC()); err != nil {
		h.logger.WarnContext(r.Context(), "set signed-out user offline", slog.String("user", v.User.Username), slog.Any("error", err))
	} else {
		h.agentChanged(r.Context(), v.User.ID)
	}
	if err := h.auth.Logout(r.Context(), auth.SessionToken(r)); err != nil {
		h.serverError(w, r, "sign you out", err)
		return
	}
	auth.ClearSessionCookie(w, r)
	h.logger.InfoContext(r.Context(), "signed out", slog.String("user", v.User.Username))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
