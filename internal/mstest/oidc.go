package mstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// OpenID Connect provider (Microsoft identity platform v2.0), for staff single sign-on:
//
//   - GET /{tenant}/v2.0/.well-known/openid-configuration: the discovery document in
//     Microsoft's shape; its issuer is LoginURL()/{tenant id}/v2.0 (the tenant's GUID even
//     when the path names a domain; "{tenantid}" literally for organizations and common);
//   - GET /{tenant}/discovery/v2.0/keys: the JWKS, with the access token key and the id
//     token signing keys that are published now;
//   - the authorize endpoint takes nonce, and the token endpoint's authorization_code
//     grant with scope openid returns an id token (RS256, header kid) with Microsoft's
//     v2.0 claims: aud (the client id), iss, iat, nbf, exp, nonce, sub (pairwise: one per
//     user and app), oid, tid, ver "2.0", uti, sid, aio and rh (opaque), name and
//     preferred_username with scope profile, email with scope email, groups (object ids
//     or whatever User.SetGroups gave) and roles (User.SetAppRoles) when the user has any.
//
// Id tokens are signed by their own key ring: RotateSigningKey publishes a new key, signs
// with it from then on and removes the previous ones from the JWKS after a grace period.
// SpoilNextIDToken makes the next id token wrong in one way (audience, issuer, nonce,
// expiry, or signed by a key no longer published), so that tests can see a client refuse
// it.
//
// Simplifications: app roles and groups belong to the user, whatever the app (Entra ID
// assigns app roles per app and emits groups only when the app registration asks for
// them); no group overage (_claim_names) beyond 200 groups; no userinfo endpoint, no
// end-session endpoint behaviour (the document names one).

// idTokenLifetime is how long an id token is valid (Entra ID: one hour).
const idTokenLifetime = time.Hour

// oidcKey is one id token signing key.
type oidcKey struct {
	key *rsa.PrivateKey
	kid string
	// removeAt: zero while the key is current; else the instant (server clock) it leaves
	// the JWKS.
	removeAt time.Time
}

type oidcState struct {
	keys  []*oidcKey // the last one signs
	fault *IDTokenFault
}

// IDTokenFault spoils the next id token the token endpoint issues (then it is cleared).
type IDTokenFault struct {
	Audience string // replaces aud
	Issuer   string // replaces iss
	Nonce    string // replaces nonce
	// Expired makes the token expired: issued 65 minutes ago, expired 5 minutes ago.
	Expired bool
	// RetiredKey signs the token with a key that is no longer in the JWKS (the newest
	// removed one, or a key made for the purpose when none was removed yet).
	RetiredKey bool
}

// SpoilNextIDToken makes the next id token wrong as f says.
func (s *Server) SpoilNextIDToken(f IDTokenFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.oidc.fault = &f
}

// currentOIDCKeyLocked returns the key that signs id tokens, made at first use.
func (s *Server) currentOIDCKeyLocked() (*oidcKey, error) {
	if n := len(s.state.oidc.keys); n > 0 {
		return s.state.oidc.keys[n-1], nil
	}
	k, err := newOIDCKey()
	if err != nil {
		return nil, err
	}
	s.state.oidc.keys = append(s.state.oidc.keys, k)
	return k, nil
}

func newOIDCKey() (*oidcKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("mstest: id token signing key: %w", err)
	}
	// Microsoft's kid and x5t are the same: the base64url SHA-1 thumbprint of the key's
	// certificate (here: of the public key's modulus, as the stand-in has no certificate).
	sum := sha1.Sum(key.PublicKey.N.Bytes())
	return &oidcKey{key: key, kid: b64.EncodeToString(sum[:])}, nil
}

// RotateSigningKey makes a new id token signing key, publishes it in the JWKS and signs
// every later id token with it. The keys used before stay published for grace (by the
// server's clock, see Advance) and are then removed, so a token they signed can no longer
// be verified. It returns the new key's kid.
func (s *Server) RotateSigningKey(grace time.Duration) (string, error) {
	k, err := newOIDCKey()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.currentOIDCKeyLocked(); err != nil {
		return "", err
	}
	until := s.nowLocked().Add(grace)
	for _, old := range s.state.oidc.keys {
		if old.removeAt.IsZero() || old.removeAt.After(until) {
			old.removeAt = until
		}
	}
	s.state.oidc.keys = append(s.state.oidc.keys, k)
	s.log.Info("mstest: id token signing key rotated", "kid", k.kid, "grace", grace)
	return k.kid, nil
}

// PublishedKeyIDs lists the kids of the id token signing keys the JWKS publishes now,
// the signing one last.
func (s *Server) PublishedKeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, k := range s.publishedOIDCKeysLocked() {
		ids = append(ids, k.kid)
	}
	return ids
}

func (s *Server) publishedOIDCKeysLocked() []*oidcKey {
	if _, err := s.currentOIDCKeyLocked(); err != nil {
		s.log.Error("mstest: id token signing key", "error", err)
	}
	now := s.nowLocked()
	var out []*oidcKey
	for _, k := range s.state.oidc.keys {
		if k.removeAt.IsZero() || now.Before(k.removeAt) {
			out = append(out, k)
		}
	}
	return out
}

// retiredKeyLocked is a key not in the JWKS: the newest removed one, or a new one.
func (s *Server) retiredKeyLocked() (*oidcKey, error) {
	now := s.nowLocked()
	for i := len(s.state.oidc.keys) - 1; i >= 0; i-- {
		if k := s.state.oidc.keys[i]; !k.removeAt.IsZero() && !now.Before(k.removeAt) {
			return k, nil
		}
	}
	return newOIDCKey()
}

// SetGroups sets the groups the user is a member of, as the id token's groups claim
// carries them (Entra ID: group object ids; cloud-only groups may be sent by name when
// the app registration says so).
func (u *User) SetGroups(groups ...string) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.groups = slices.Clone(groups)
}

// SetAppRoles sets the app roles assigned to the user (their values, e.g.
// "Postroom.Supervisor"), carried by the id token's roles claim.
func (u *User) SetAppRoles(roles ...string) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.appRoles = slices.Clone(roles)
}

// pairwiseSubject is the sub claim of u for app: stable, one per user and application,
// as Microsoft's (which are not the object id).
func pairwiseSubject(u *User, app *App) string {
	sum := sha256.Sum256([]byte(u.cfg.ObjectID + "|" + strings.ToLower(app.cfg.ClientID)))
	return b64.EncodeToString(sum[:])[:43]
}

// idTokenLocked signs the id token of a delegated grant for u through app.
func (s *Server) idTokenLocked(app *App, u *User, q scopeReq, nonce string, now time.Time) (string, *aadError) {
	key, err := s.currentOIDCKeyLocked()
	if err != nil {
		return "", &aadError{status: http.StatusInternalServerError, err: "server_error", code: 90033, msg: err.Error()}
	}
	c := map[string]any{
		"aud": app.cfg.ClientID, "iss": s.loginURL + "/" + app.tenant.id + "/v2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(idTokenLifetime).Unix(),
		"tid": app.tenant.id, "oid": u.cfg.ObjectID, "sub": pairwiseSubject(u, app), "ver": "2.0",
		"uti": randomToken(16), "sid": NewGUID(), "aio": randomToken(40), "rh": "0.AXcA" + randomToken(30) + ".",
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if q.oidc["profile"] {
		c["name"] = u.cfg.DisplayName
		c["preferred_username"] = u.cfg.UPN
	}
	if q.oidc["email"] && !u.cfg.Shared {
		c["email"] = u.cfg.UPN
	}
	if len(u.groups) > 0 {
		c["groups"] = slices.Clone(u.groups)
	}
	if len(u.appRoles) > 0 {
		c["roles"] = slices.Clone(u.appRoles)
	}
	if f := s.state.oidc.fault; f != nil {
		s.state.oidc.fault = nil
		if f.Audience != "" {
			c["aud"] = f.Audience
		}
		if f.Issuer != "" {
			c["iss"] = f.Issuer
		}
		if f.Nonce != "" {
			c["nonce"] = f.Nonce
		}
		if f.Expired {
			c["iat"], c["nbf"], c["exp"] = now.Add(-65*time.Minute).Unix(), now.Add(-65*time.Minute).Unix(), now.Add(-5*time.Minute).Unix()
		}
		if f.RetiredKey {
			if key, err = s.retiredKeyLocked(); err != nil {
				return "", &aadError{status: http.StatusInternalServerError, err: "server_error", code: 90033, msg: err.Error()}
			}
		}
		s.log.Info("mstest: spoiled id token issued", "fault", fmt.Sprintf("%+v", *f))
	}
	tok, err := signJWT(key.key, map[string]string{"kid": key.kid}, c)
	if err != nil {
		return "", &aadError{status: http.StatusInternalServerError, err: "server_error", code: 90033, msg: err.Error()}
	}
	return tok, nil
}

// serveKeys serves the JWKS: the access token key and the published id token keys.
func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	keys := []any{jwk(&s.key.PublicKey, s.kid)}
	for _, k := range s.publishedOIDCKeysLocked() {
		keys = append(keys, jwk(&k.key.PublicKey, k.kid))
	}
	s.mu.Unlock()
	writeJSONStatus(w, http.StatusOK, map[string]any{"keys": keys})
}

func jwk(pub *rsa.PublicKey, kid string) map[string]any {
	e := []byte{byte(pub.E >> 16), byte(pub.E >> 8), byte(pub.E)}
	for len(e) > 1 && e[0] == 0 {
		e = e[1:]
	}
	k := map[string]any{"kty": "RSA", "use": "sig", "kid": kid, "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(e)}
	if b, err := b64.DecodeString(kid); err == nil && len(b) == sha1.Size {
		k["x5t"] = kid // a SHA-1 thumbprint, as x5t must be (RFC 7517 §4.8)
	}
	return k
}

// serveOpenIDConfiguration serves the discovery document of a tenant.
func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("tenant")
	s.mu.Lock()
	t, special, e := s.resolveTenantLocked(seg)
	s.mu.Unlock()
	if e != nil {
		s.writeTokenError(w, r, e)
		return
	}
	issuerTenant := "{tenantid}"
	if special == "" {
		issuerTenant = t.id
	}
	base := s.loginURL + "/" + seg
	writeJSONStatus(w, http.StatusOK, map[string]any{
		"token_endpoint":                        s.TokenURL(seg),
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                s.loginURL + "/" + issuerTenant + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                s.AuthorizeURL(seg),
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
			"at_hash", "c_hash", "email"},
		"tenant_region_scope":              "EU",
		"cloud_instance_name":              "microsoftonline.com",
		"cloud_graph_host_name":            "graph.windows.net",
		"msgraph_host":                     strings.TrimPrefix(strings.TrimPrefix(s.graphURL, "http://"), "https://"),
		"code_challenge_methods_supported": []string{"S256", "plain"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token", "client_credentials", "password"},
		"introspection_endpoint":           s.IntrospectURL(),
	})
}

// OpenIDIssuer is the issuer of tenant's id tokens: LoginURL()/{tenant id}/v2.0, what an
// administrator enters in postroom as the issuer URL.
func (s *Server) OpenIDIssuer(tenantID string) string {
	return s.loginURL + "/" + strings.ToLower(tenantID) + "/v2.0"
}
