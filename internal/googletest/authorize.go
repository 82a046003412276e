package googletest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authCode is an authorization code waiting to be redeemed.
type authCode struct {
	client, user, redirect, challenge string
	scopes                            []string
	expires                           time.Time
}

// AddRedirectURI registers a redirect URI of an OAuth client (AddClient).
func (s *Server) AddRedirectURI(client, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects[client] = append(s.redirects[client], uri)
}

// serveAuthorize plays "Sign in with Google" for a browser that is already signed in as
// the user named by login_hint, who consents at once: it redirects to redirect_uri with a
// code (PKCE S256 required). Errors Google shows on its own page (an unknown client or
// redirect URI) are a 400 page here; the others go back to the redirect URI.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	client, redirect := q.Get("client_id"), q.Get("redirect_uri")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[client]; !ok {
		http.Error(w, "Error 401: invalid_client. The OAuth client was not found.", http.StatusUnauthorized)
		return
	}
	if !slices.Contains(s.redirects[client], redirect) {
		http.Error(w, "Error 400: redirect_uri_mismatch", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		v.Set("state", q.Get("state"))
		http.Redirect(w, r, redirect+"?"+v.Encode(), http.StatusFound)
	}
	user := strings.ToLower(q.Get("login_hint"))
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"Missing code_challenge (S256)."}})
	case s.users[user] == nil:
		back(url.Values{"error": {"access_denied"}})
	default:
		code := "4/" + randomHex(20)
		scopes := strings.Fields(q.Get("scope"))
		s.codes[code] = authCode{client: client, user: user, redirect: redirect, challenge: q.Get("code_challenge"),
			scopes: scopes, expires: s.now().Add(10 * time.Minute)}
		back(url.Values{"code": {code}, "scope": {strings.Join(scopes, " ")}})
	}
}

// codeGrant redeems an authorization code: an access token, a refresh token and an
// id_token naming the user's email. The id_token is unsigned (alg "none"): Google signs
// its own, but the token endpoint's answer over TLS is what a client trusts here.
func (s *Server) codeGrant(client, secret, code, redirect, verifier string) (map[string]any, *tokenError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if want, ok := s.clients[client]; !ok || want != secret {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "Unauthorized"}
	}
	c, ok := s.codes[code]
	delete(s.codes, code)
	sum := sha256.Sum256([]byte(verifier))
	if !ok || c.client != client || c.redirect != redirect || !s.now().Before(c.expires) ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "Bad Request"}
	}
	g := issued{user: c.user, client: client, scopes: slices.DeleteFunc(slices.Clone(c.scopes), func(sc string) bool {
		return sc != ScopeMail && sc != "openid" && sc != "email" && sc != "profile"
	})}
	rt := "1//" + randomHex(24)
	s.refresh[rt] = g
	out := s.issueLocked(g, rt)
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"iss": "https://accounts.google.com", "aud": client, "sub": randomHex(10),
		"email": s.users[c.user].email, "email_verified": true, "iat": s.now().Unix(), "exp": s.now().Add(time.Hour).Unix()})
	out["id_token"] = base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims) + "."
	return out, nil
}
