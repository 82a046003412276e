// Package oauthtest runs a small OAuth 2.0 authorization server on 127.0.0.1 for tests:
// a token endpoint (RFC 6749 §3.2: client credentials and refresh token grants, error
// answers per §5.2) and a token introspection endpoint (RFC 7662) in the shape Dovecot's
// oauth2 passdb reads (testmail.md §4: {"active": true, "email": USER}).
//
// Tokens are random strings it remembers; a test can expire access tokens, revoke grants
// and turn on refresh token rotation, and reads back what was issued.
package oauthtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running authorization server. Its methods are safe for concurrent use.
type Server struct {
	// TokenURL and IntrospectionURL are the endpoints (http://127.0.0.1:port/...).
	TokenURL, IntrospectionURL string

	mu       sync.Mutex
	clients  map[string]client   // by client id
	grants   map[string]*grant   // by refresh token
	access   map[string]*access  // by access token
	lifetime time.Duration       // expires_in of new access tokens
	rotate   bool                // issue a new refresh token at each refresh
	failNext *ErrorAnswer        // answer the next token request with this error
	requests map[string]int      // token requests by grant type, errors included
	rotated  []string            // refresh tokens issued by rotation, in order
	intros   map[string]struct{} // tokens introspected
}

type client struct {
	secret string
	email  string // whose mailbox a client credentials token opens
}

type grant struct {
	email   string
	revoked bool
}

type access struct {
	email   string
	expired bool
}

// ErrorAnswer is an error the token endpoint answers with (RFC 6749 §5.2).
type ErrorAnswer struct {
	Status      int    // 400 when 0
	Code        string // "error", e.g. invalid_grant
	Description string // "error_description", e.g. "AADSTS7000222: ..."
}

// Start starts a server; it stops at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{clients: map[string]client{}, grants: map[string]*grant{}, access: map[string]*access{},
		lifetime: time.Hour, requests: map[string]int{}, intros: map[string]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.serveToken)
	mux.HandleFunc("POST /introspect", s.serveIntrospect)
	hs := httptest.NewServer(mux) // listens on 127.0.0.1, as Dovecot's HTTP client needs
	t.Cleanup(hs.Close)
	s.TokenURL, s.IntrospectionURL = hs.URL+"/token", hs.URL+"/introspect"
	return s
}

// AddClient registers a confidential client. Its client credentials tokens open email's
// mailbox (like an app granted access to that mailbox).
func (s *Server) AddClient(id, secret, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{secret: secret, email: email}
}

// Grant records a delegated sign-in of email and returns its refresh token.
func (s *Server) Grant(email string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + random()
	s.grants[rt] = &grant{email: email}
	return rt
}

// Rotate makes every refresh issue a new refresh token and revoke the one it used.
func (s *Server) Rotate(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// ExpireAccessTokens makes every access token issued so far inactive at introspection.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.expired = true
	}
}

// RevokeGrants revokes every refresh token of email and expires its access tokens, as a
// password change or an admin's "revoke sessions" does.
func (s *Server) RevokeGrants(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		if g.email == email {
			g.revoked = true
		}
	}
	for _, a := range s.access {
		if a.email == email {
			a.expired = true
		}
	}
}

// FailNext answers the next token request with e.
func (s *Server) FailNext(e ErrorAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &e
}

// Requests returns how many token requests of grantType ("refresh_token",
// "client_credentials") the endpoint got.
func (s *Server) Requests(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[grantType]
}

// Rotated returns the refresh tokens issued by rotation, oldest first.
func (s *Server) Rotated() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rotated...)
}

// Introspected reports whether token was ever sent to the introspection endpoint (so a
// test knows the server checked it).
func (s *Server) Introspected(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.intros[token]
	return ok
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, ErrorAnswer{Code: "invalid_request", Description: "bad form"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	grantType := r.PostForm.Get("grant_type")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[grantType]++
	if e := s.failNext; e != nil {
		s.failNext = nil
		writeError(w, *e)
		return
	}
	c, known := s.clients[id]
	if !known || c.secret != secret {
		writeError(w, ErrorAnswer{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "unknown client or wrong secret"})
		return
	}
	var email, newRefresh string
	switch grantType {
	case "client_credentials":
		email = c.email
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		g, ok := s.grants[rt]
		if !ok || g.revoked {
			writeError(w, ErrorAnswer{Code: "invalid_grant", Description: "the refresh token is revoked or unknown"})
			return
		}
		email = g.email
		if s.rotate {
			g.revoked = true
			newRefresh = "rt-" + random()
			s.grants[newRefresh] = &grant{email: email}
			s.rotated = append(s.rotated, newRefresh)
		}
	default:
		writeError(w, ErrorAnswer{Code: "unsupported_grant_type"})
		return
	}
	at := "at-" + random()
	s.access[at] = &access{email: email}
	body := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(s.lifetime / time.Second)}
	if newRefresh != "" {
		body["refresh_token"] = newRefresh
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	if h := r.Header.Get("Authorization"); token == "" && strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intros[token] = struct{}{}
	a, ok := s.access[token]
	if !ok || a.expired {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "email": a.email, "scope": "mail"})
}

func writeError(w http.ResponseWriter, e ErrorAnswer) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
