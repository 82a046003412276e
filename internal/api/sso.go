package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/postroom/postroom/internal/sso"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// ssoJSON is the single sign-on configuration as the API shows and takes it. The client
// secret is write-only: it is never returned, only client_secret_set.
type ssoJSON struct {
	Issuer            string        `json:"issuer"`
	ClientID          string        `json:"client_id"`
	Name              string        `json:"name"`
	ClientSecret      *string       `json:"client_secret,omitempty"`
	ClientSecretSet   bool          `json:"client_secret_set"`
	Mappings          []sso.Mapping `json:"mappings"`
	AutoCreate        bool          `json:"auto_create"`
	UnmappedRole      string        `json:"unmapped_role"`
	LocalPasswordsOff bool          `json:"local_passwords_off"`
	BreakGlass        []string      `json:"break_glass"`
	// ButtonLabel and CallbackPath are read-only: the login page's button and the path of
	// the redirect URI to register (after the public URL).
	ButtonLabel  string `json:"button_label,omitempty"`
	CallbackPath string `json:"callback_path,omitempty"`
}

func toSSOJSON(c sso.Config) ssoJSON {
	j := ssoJSON{Issuer: c.Issuer, ClientID: c.ClientID, Name: c.Name, ClientSecretSet: c.ClientSecretSet, Mappings: c.Mappings,
		AutoCreate: c.AutoCreate, UnmappedRole: c.UnmappedRole, LocalPasswordsOff: c.LocalPasswordsOff, BreakGlass: c.BreakGlass,
		CallbackPath: sso.CallbackPath}
	if j.Mappings == nil {
		j.Mappings = []sso.Mapping{}
	}
	if j.BreakGlass == nil {
		j.BreakGlass = []string{}
	}
	if c.Enabled() {
		j.ButtonLabel = "Sign in with " + c.ProviderName()
	}
	return j
}

func (s *server) getSSO(w http.ResponseWriter, r *http.Request, _ store.User, _ store.Session) {
	if s.sso == nil {
		writeError(w, http.StatusServiceUnavailable, "single sign-on is not available on this server")
		return
	}
	c, err := s.sso.Config(r.Context())
	if err != nil {
		s.logger.ErrorContext(r.Context(), "read single sign-on settings", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not read the single sign-on settings: internal error, the server log has the details")
		return
	}
	writeJSON(w, http.StatusOK, toSSOJSON(c))
}

func (s *server) putSSO(w http.ResponseWriter, r *http.Request, user store.User, _ store.Session) {
	if s.sso == nil {
		writeError(w, http.StatusServiceUnavailable, "single sign-on is not available on this server")
		return
	}
	var body ssoJSON
	if !decodeBody(w, r, &body) {
		return
	}
	in := sso.Input{Config: sso.Config{Issuer: body.Issuer, ClientID: body.ClientID, Name: body.Name, Mappings: body.Mappings,
		AutoCreate: body.AutoCreate, UnmappedRole: body.UnmappedRole, LocalPasswordsOff: body.LocalPasswordsOff, BreakGlass: body.BreakGlass}}
	if body.ClientSecret != nil && *body.ClientSecret != "" {
		in.ClientSecret = vault.NewSecret(*body.ClientSecret)
	}
	c, err := s.sso.Save(r.Context(), user.Username, in)
	var fe sso.FieldErrors
	switch {
	case errors.As(err, &fe):
		writeFieldErrors(w, fe)
		return
	case err != nil:
		s.logger.ErrorContext(r.Context(), "save single sign-on settings", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "could not save the single sign-on settings: internal error, the server log has the details")
		return
	}
	writeJSON(w, http.StatusOK, toSSOJSON(c))
}
