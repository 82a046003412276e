package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Staff single sign-on (internal/sso):
//
//	GET  /login/sso      the login page's "Sign in with ..." link: starts a sign-in (kept
//	                     in the store, bound to this browser by the postroom_sso cookie)
//	                     and redirects to the provider
//	GET  /sso/callback   the redirect URI: finishes the sign-in, sets the session cookie
//	                     and goes to the page asked for; a refusal shows the login page
//	                     with what happened and what to do
//	GET  /settings/sso   (admin) the settings form; POST saves it
func (h *handler) ssoRoutes(mux *pageMux) {
	mux.open("GET "+sso.StartPath, http.HandlerFunc(h.ssoStart))
	mux.open("GET "+sso.CallbackPath, http.HandlerFunc(h.ssoCallback))
	mux.page("GET /settings/sso", store.RoleAdmin, h.ssoSettings)
	mux.page("POST /settings/sso", store.RoleAdmin, h.ssoSave)
}

// ssoRedirectURI is the redirect URI to register at the provider.
func (h *handler) ssoRedirectURI(r *http.Request) string {
	if h.publicURL != "" {
		return h.publicURL + sso.CallbackPath
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + sso.CallbackPath
}

func (h *handler) ssoStart(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if h.sso == nil {
		h.renderLogin(w, r, http.StatusNotFound, loginData{Next: next, Error: "Single sign-on is not available on this server. Sign in with your user name and password."})
		return
	}
	st, err := h.sso.Start(r.Context(), h.ssoRedirectURI(r), next)
	var ref *sso.Refusal
	switch {
	case errors.As(err, &ref):
		h.logger.WarnContext(r.Context(), "single sign-on could not start", "reason", ref.Reason)
		h.renderLogin(w, r, ref.Status, loginData{Next: next, Error: ref.Message})
		return
	case errors.Is(err, sso.ErrNotConfigured):
		h.renderLogin(w, r, http.StatusNotFound, loginData{Next: next, Error: "Single sign-on is not configured. Sign in with your user name and password."})
		return
	case err != nil:
		h.serverError(w, r, "start the sign-in", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sso.BrowserCookie, Value: st.Browser, Path: sso.CallbackPath, MaxAge: int(sso.SignInLifetime.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, st.URL, http.StatusSeeOther)
}

func (h *handler) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if h.sso == nil {
		h.errorPage(w, r, http.StatusNotFound, "Page not found", "Single sign-on is not available on this server.")
		return
	}
	var browser string
	if c, err := r.Cookie(sso.BrowserCookie); err == nil {
		browser = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: sso.BrowserCookie, Path: sso.CallbackPath, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	res, err := h.sso.Finish(r.Context(), sso.Callback{Query: r.URL.Query(), Browser: browser, ClientAddress: r.RemoteAddr})
	var ref *sso.Refusal
	switch {
	case errors.As(err, &ref):
		h.renderLogin(w, r, ref.Status, loginData{Next: "/", Error: ref.Message})
		return
	case err != nil:
		h.serverError(w, r, "finish the sign-in", err)
		return
	}
	auth.SetSessionCookie(w, r, res.Token, res.Session.ExpiresAt)
	http.Redirect(w, r, safeNext(res.Next), http.StatusSeeOther)
}

// ssoMappingRows is how many empty mapping rows the form offers beyond the saved ones.
const ssoMappingRows = 3

type ssoSettingsData struct {
	Config      sso.Config
	RedirectURI string
	Mappings    []sso.Mapping
	BreakGlass  string
	Teams       []store.Team
	Roles       []string
	Errors      map[string]string
	Notice      string
	Error       string
	Unavailable bool
}

func (h *handler) renderSSOSettings(w http.ResponseWriter, r *http.Request, v viewer, status int, d ssoSettingsData) {
	d.RedirectURI = h.ssoRedirectURI(r)
	d.Roles = []string{store.RoleAgent, store.RoleSupervisor, store.RoleAdmin}
	if teams, err := h.st.ListTeams(r.Context()); err == nil {
		d.Teams = teams
	}
	for range ssoMappingRows {
		d.Mappings = append(d.Mappings, sso.Mapping{})
	}
	if d.BreakGlass == "" {
		d.BreakGlass = strings.Join(d.Config.BreakGlass, ", ")
	}
	h.render(w, r, status, "ssosettings", h.data(v, "Single sign-on", "users", d))
}

func (h *handler) ssoSettings(w http.ResponseWriter, r *http.Request, v viewer) {
	if h.sso == nil {
		h.renderSSOSettings(w, r, v, http.StatusOK, ssoSettingsData{Unavailable: true})
		return
	}
	c, err := h.sso.Config(r.Context())
	if err != nil {
		h.serverError(w, r, "read the single sign-on settings", err)
		return
	}
	d := ssoSettingsData{Config: c, Mappings: c.Mappings}
	if r.URL.Query().Get("saved") == "1" {
		d.Notice = "Single sign-on settings saved."
	}
	h.renderSSOSettings(w, r, v, http.StatusOK, d)
}

func (h *handler) ssoSave(w http.ResponseWriter, r *http.Request, v viewer) {
	if h.sso == nil {
		h.renderSSOSettings(w, r, v, http.StatusServiceUnavailable, ssoSettingsData{Unavailable: true})
		return
	}
	f := r.PostForm
	in := sso.Input{Config: sso.Config{
		Issuer: f.Get("issuer"), ClientID: f.Get("client_id"), Name: f.Get("name"),
		AutoCreate: f.Get("auto_create") == "on", UnmappedRole: f.Get("unmapped_role"),
		LocalPasswordsOff: f.Get("local_passwords_off") == "on",
	}}
	for _, n := range strings.Split(f.Get("break_glass"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			in.BreakGlass = append(in.BreakGlass, n)
		}
	}
	values, roles, teams := f["map_value"], f["map_role"], f["map_team"]
	for i := range values {
		m := sso.Mapping{Value: values[i]}
		if i < len(roles) {
			m.Role = roles[i]
		}
		if i < len(teams) {
			m.Team = teams[i]
		}
		if strings.TrimSpace(m.Value) == "" && m.Role == "" && m.Team == "" {
			continue
		}
		in.Mappings = append(in.Mappings, m)
	}
	if s := f.Get("client_secret"); s != "" {
		in.ClientSecret = vault.NewSecret(s)
	}
	_, err := h.sso.Save(r.Context(), v.User.Username, in)
	var fe sso.FieldErrors
	switch {
	case errors.As(err, &fe):
		old, _ := h.sso.Config(r.Context())
		c := in.Config
		c.ClientSecretSet, c.SecretIssuer = old.ClientSecretSet, old.SecretIssuer
		h.renderSSOSettings(w, r, v, http.StatusBadRequest, ssoSettingsData{Config: c, Mappings: in.Mappings, Errors: fe,
			BreakGlass: f.Get("break_glass"), Error: fmt.Sprintf("The settings were not saved: %d field(s) need correcting.", len(fe))})
		return
	case err != nil:
		h.serverError(w, r, "save the single sign-on settings", err)
		return
	}
	http.Redirect(w, r, "/settings/sso?saved=1", http.StatusSeeOther)
}
