package mstest

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

type refreshGrant struct {
	clientID string
	lastUsed time.Time
	revoked  bool
}

type authCode struct{}

func (s *Server) loginHandler() http.Handler {
	mux := http.NewServeMux()
	return mux
}

// TokenError is the identity platform's error body (reference §1.7), all seven fields.
type TokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
}

// TokenResponse is the token endpoint's success body.
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// Claims are the claims of an access token the stand-in issued.
type Claims struct {
	Audience  string   `json:"aud"`
	Issuer    string   `json:"iss"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expires   int64    `json:"exp"`
	TenantID  string   `json:"tid"`
	AppID     string   `json:"appid"`
	AZP       string   `json:"azp,omitempty"`
	AppName   string   `json:"app_displayname,omitempty"`
	ObjectID  string   `json:"oid"`
	Subject   string   `json:"sub"`
	Roles     []string `json:"roles,omitempty"`
	Scope     string   `json:"scp,omitempty"`
	UPN       string   `json:"upn,omitempty"`
	IDType    string   `json:"idtyp,omitempty"` // "app" for app-only tokens, "user" otherwise
	TokenID   string   `json:"uti"`
	Version   string   `json:"ver"`
}

// ParseToken checks an access token's signature and returns its claims (expiry and
// revocation are not checked: Graph and introspection do that).
func (s *Server) ParseToken(token string) (Claims, error) {
	return Claims{}, errNotImplemented
}

// NewCertificate makes a self-signed RSA certificate for client assertions
// (App.AddCertificate takes the certificate; the client signs with the key).
func NewCertificate(commonName string, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	return nil, nil, errNotImplemented
}

var errNotImplemented = errors.New("mstest: not implemented yet")
