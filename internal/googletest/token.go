package googletest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// GrantJWTBearer is the grant_type of RFC 7523 assertions.
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Google's token endpoint error descriptions.
const (
	DescUnauthorizedClient = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	DescBadSignature       = "Invalid JWT Signature."
	DescBadSubject         = "Invalid email or User ID"
	DescClockSkew          = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the assertion and use a clock with skew to account for clock differences between systems."
	DescBadAudience        = "Invalid JWT: Failed audience check."
	DescRevoked            = "Token has been expired or revoked."
)

type tokenError struct {
	status int
	code   string
	desc   string
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Bad Request"})
		return
	}
	var (
		tok  map[string]any
		terr *tokenError
	)
	switch gt := r.PostFormValue("grant_type"); gt {
	case GrantJWTBearer:
		tok, terr = s.jwtBearer(r.PostFormValue("assertion"))
	case "authorization_code":
		tok, terr = s.codeGrant(r.PostFormValue("client_id"), r.PostFormValue("client_secret"), r.PostFormValue("code"),
			r.PostFormValue("redirect_uri"), r.PostFormValue("code_verifier"))
	case "refresh_token":
		tok, terr = s.refreshGrant(r.PostFormValue("client_id"), r.PostFormValue("client_secret"), r.PostFormValue("refresh_token"))
	case "":
		terr = &tokenError{http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "}
	default:
		terr = &tokenError{http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: " + gt}
	}
	if terr != nil {
		s.log.Info("googletest: token refused", "error", terr.code, "description", terr.desc)
		writeJSON(w, terr.status, map[string]string{"error": terr.code, "error_description": terr.desc})
		return
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	writeJSON(w, http.StatusOK, tok)
}

type assertionClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

func (s *Server) jwtBearer(assertion string) (map[string]any, *tokenError) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed to parse."}
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var c assertionClaims
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(cb, &c) != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed to parse."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sa := s.accounts[c.Iss]
	if sa == nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found"}
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if hdr.Alg != "RS256" || rsa.VerifyPKCS1v15(&sa.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", DescBadSignature}
	}
	if c.Aud != s.TokenURL() && c.Aud != "https://oauth2.googleapis.com/token" {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", DescBadAudience}
	}
	now := s.now()
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	skew := s.opts.ClockSkew
	if exp.Sub(iat) > time.Hour || !exp.After(iat) || iat.After(now.Add(skew)) || exp.Before(now.Add(-skew)) {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", DescClockSkew}
	}
	scopes := strings.Fields(c.Scope)
	if len(scopes) == 0 {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided."}
	}
	subject := strings.ToLower(c.Sub)
	if subject == "" {
		// The service account itself: it has no mailbox, so no mail scope is any use.
		return nil, &tokenError{http.StatusUnauthorized, "unauthorized_client", DescUnauthorizedClient}
	}
	if s.users[subject] == nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", DescBadSubject}
	}
	if len(sa.delegated) == 0 || slices.ContainsFunc(scopes, func(sc string) bool { return !sa.delegated[sc] }) {
		return nil, &tokenError{http.StatusUnauthorized, "unauthorized_client", DescUnauthorizedClient}
	}
	return s.issueLocked(issued{user: subject, client: sa.ClientID, scopes: scopes}, ""), nil
}

func (s *Server) refreshGrant(client, secret, rt string) (map[string]any, *tokenError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, ok := s.clients[client]
	if !ok || want != secret {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "Unauthorized"}
	}
	g, ok := s.refresh[rt]
	if !ok || g.client != client {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", DescRevoked}
	}
	newRT := ""
	if s.opts.RotateRefreshTokens {
		delete(s.refresh, rt)
		newRT = "1//" + randomHex(24)
		s.refresh[newRT] = g
	}
	return s.issueLocked(g, newRT), nil
}

func (s *Server) issueLocked(g issued, refresh string) map[string]any {
	g.expires = s.now().Add(s.opts.AccessTokenLifetime)
	at := "ya29." + randomHex(32)
	s.tokens[at] = g
	out := map[string]any{"access_token": at, "expires_in": int(s.opts.AccessTokenLifetime / time.Second),
		"token_type": "Bearer", "scope": strings.Join(g.scopes, " ")}
	if refresh != "" {
		out["refresh_token"] = refresh
	}
	return out
}

// validLocked returns the grant of a live access token for the mail scope.
func (s *Server) validLocked(at string) (issued, bool) {
	g, ok := s.tokens[at]
	if !ok || !s.now().Before(g.expires) || !slices.Contains(g.scopes, ScopeMail) {
		return issued{}, false
	}
	return g, true
}

// serveIntrospect answers RFC 7662 introspection for Dovecot's oauth2 passdb: the token's
// user, unless the token expired, the user is suspended, or (Dovecot naming the service
// with X-Dovecot-Auth-Service) IMAP is turned off for the user.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	tok := ""
	if r.Method == http.MethodPost {
		tok = r.PostFormValue("token")
	}
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if h := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimPrefix(h, "Bearer ")
	}
	service := strings.ToLower(r.Header.Get("X-Dovecot-Auth-Service"))
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.validLocked(tok)
	u := s.users[g.user]
	if !ok || u == nil || u.cfg.Suspended || (service == "imap" && u.cfg.IMAPDisabled) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "email": u.email, "username": u.email,
		"scope": strings.Join(g.scopes, " "), "client_id": g.client, "exp": g.expires.Unix(), "token_type": "Bearer"})
}
