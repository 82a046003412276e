package googletest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ScopeMail is the scope of IMAP, SMTP and the full Gmail API.
const ScopeMail = "https://mail.google.com/"

// Defaults of Options.
const (
	DefaultAccessTokenLifetime = 3599 * time.Second
	DefaultClockSkew           = 5 * time.Minute
	DefaultPageSize            = 100
)

// Options configure Start.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now); Advance adds to it.
	Now                 func() time.Time
	AccessTokenLifetime time.Duration
	// ClockSkew is how far an assertion's iat and exp may be off the server's clock.
	ClockSkew time.Duration
	// PageSize is the default page size of history.list and messages.list.
	PageSize int
	// RotateRefreshTokens makes the refresh grant answer with a new refresh token (and
	// retire the old one).
	RotateRefreshTokens bool
}

// UserConfig is a Workspace user's state in the admin console.
type UserConfig struct {
	Suspended    bool
	IMAPDisabled bool
}

// ServiceAccount is a service account with one key.
type ServiceAccount struct {
	s         *Server
	ProjectID string
	Email     string
	ClientID  string
	KeyID     string
	key       *rsa.PrivateKey
	delegated map[string]bool // scopes of domain-wide delegation
}

// Server is a running stand-in.
type Server struct {
	opts   Options
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server
	url    string
	offset atomic.Int64

	requests atomic.Int64

	mu        sync.Mutex
	accounts  map[string]*ServiceAccount // by client_email
	users     map[string]*user
	tokens    map[string]issued
	refresh   map[string]issued
	clients   map[string]string // client id -> secret
	redirects map[string][]string
	codes     map[string]authCode
	rateLimit int
	seq       uint64
	idBase    uint64 // random: message ids differ from one run to the next
}

type issued struct {
	user    string
	client  string
	scopes  []string
	expires time.Time
}

// Start starts a stand-in on 127.0.0.1.
func Start(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessTokenLifetime == 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = DefaultClockSkew
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("googletest: listen: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, ln: ln, url: "http://" + ln.Addr().String(),
		accounts: map[string]*ServiceAccount{}, users: map[string]*user{}, tokens: map[string]issued{},
		refresh: map[string]issued{}, clients: map[string]string{}, redirects: map[string][]string{}, codes: map[string]authCode{}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.idBase = 0x18c0000000000000 | uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.serveToken)
	mux.HandleFunc("/introspect", s.serveIntrospect)
	mux.HandleFunc("GET /o/oauth2/auth", s.serveAuthorize)
	mux.HandleFunc("/gmail/v1/users/{user}/", s.serveGmail)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// URL is the base URL of the server.
func (s *Server) URL() string { return s.url }

// TokenURL is the token endpoint (token_uri of key files).
func (s *Server) TokenURL() string { return s.url + "/token" }

// AuthorizeURL is the authorization endpoint of "Sign in with Google".
func (s *Server) AuthorizeURL() string { return s.url + "/o/oauth2/auth" }

// IntrospectURL is the RFC 7662 endpoint for Dovecot's oauth2 passdb.
func (s *Server) IntrospectURL() string { return s.url + "/introspect" }

// GmailURL is the Gmail API's root (what https://gmail.googleapis.com is in production).
func (s *Server) GmailURL() string { return s.url }

// Advance moves the server's clock forward.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// Requests is the number of Gmail API requests served so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

// RateLimitNext makes the next n Gmail API requests answer 429 rateLimitExceeded.
func (s *Server) RateLimitNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = n
}

func (s *Server) now() time.Time { return s.opts.Now().Add(time.Duration(s.offset.Load())) }

// AddUser adds a Workspace user with an empty mailbox.
func (s *Server) AddUser(email string, cfg UserConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(email)
	if u := s.users[key]; u != nil {
		u.cfg = cfg
		return
	}
	s.users[key] = newUser(email, cfg)
}

// SetUser changes a user's admin settings.
func (s *Server) SetUser(email string, cfg UserConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(email)]; u != nil {
		u.cfg = cfg
	}
}

// AddServiceAccount creates a service account name@project.iam.gserviceaccount.com with a
// new 2048-bit RSA key, without domain-wide delegation.
func (s *Server) AddServiceAccount(project, name string) (*ServiceAccount, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("googletest: service account key: %w", err)
	}
	n, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	if err != nil {
		return nil, err
	}
	sa := &ServiceAccount{s: s, ProjectID: project, Email: name + "@" + project + ".iam.gserviceaccount.com",
		ClientID: fmt.Sprintf("1%020s", n.String()), KeyID: randomHex(20), key: key, delegated: map[string]bool{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sa.Email] = sa
	return sa, nil
}

// Delegate grants the service account's client id domain-wide delegation for scopes
// (none: takes it away), as an admin does in Security > API controls.
func (sa *ServiceAccount) Delegate(scopes ...string) {
	sa.s.mu.Lock()
	defer sa.s.mu.Unlock()
	sa.delegated = map[string]bool{}
	for _, sc := range scopes {
		sa.delegated[sc] = true
	}
}

// KeyJSON is the key file as Google's console downloads it.
func (sa *ServiceAccount) KeyJSON() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(sa.key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	b, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  sa.ProjectID,
		"private_key_id":              sa.KeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                sa.Email,
		"client_id":                   sa.ClientID,
		"auth_uri":                    sa.s.AuthorizeURL(),
		"token_uri":                   sa.s.TokenURL(),
		"auth_provider_x509_cert_url": sa.s.url + "/oauth2/v1/certs",
		"client_x509_cert_url":        sa.s.url + "/robot/v1/metadata/x509/" + sa.Email,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return b
}

// AddClient registers an OAuth client ("Sign in with Google").
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// GrantRefresh returns a refresh token of client for user with ScopeMail, as if the user
// had signed in and consented.
func (s *Server) GrantRefresh(client, email string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "1//" + randomHex(24)
	s.refresh[rt] = issued{user: strings.ToLower(email), client: client, scopes: []string{ScopeMail}}
	return rt
}

// RevokeRefresh revokes every refresh token of a user (a password change).
func (s *Server) RevokeRefresh(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.refresh {
		if v.user == strings.ToLower(email) {
			delete(s.refresh, k)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

var errNoUser = errors.New("no such user")

// PrivateKeyPEM is the account's private key as in its key file.
func (sa *ServiceAccount) PrivateKeyPEM() []byte {
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	_ = json.Unmarshal(sa.KeyJSON(), &k)
	return []byte(k.PrivateKey)
}

// TokenURL is the token endpoint the account's key file names.
func (sa *ServiceAccount) TokenURL() string { return sa.s.TokenURL() }
