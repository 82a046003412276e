// Package auth signs users in and decides what they may do.
//
// Users are local (store.User) with a bcrypt password hash and one of three roles, ordered
// admin ⊇ supervisor ⊇ agent (Allowed). A browser signs in with a user name and password and
// gets a session: a random 32-byte token sent back in the cookie "postroom_session"
// (HttpOnly, SameSite=Lax, Path=/; Secure over TLS and behind SecureTransport; RFC 6265 and
// RFC 6265bis for SameSite). A session ends after the idle timeout without a request and
// at the absolute timeout after sign-in, whichever comes first (SessionTimeouts, set by an
// admin; sessions.go); its owner and admins list and end sessions by their non-secret id.
// A script uses an API token "prt_..." in an Authorization: Bearer header (RFC 6750 §2.1)
// that any user creates for themself, with scopes and an expiry (tokens.go); Authorize
// applies the token's scopes on top of the role check.
//
// Invariants a change must keep:
//
//   - Neither a session token nor an API token is ever stored: the store only has its
//     SHA-256 hash (the tokens are 256 random bits, so a plain hash is enough; a slow hash
//     is only needed for passwords). Plaintext tokens are returned once, to their owner.
//   - A wrong user name and a wrong password give the same error (ErrBadCredentials) after
//     the same work: an unknown user name is checked against a dummy bcrypt hash.
//   - An expired session is refused (ErrUnauthenticated) and deleted; an expired API token
//     is refused (ErrTokenExpired).
//   - A session's last use and a token's are written at most once a minute each.
//   - A disabled user cannot sign in (ErrDisabled, told only after the right password) and
//     their sessions and API tokens no longer authenticate.
//   - Each session has its own CSRF token, compared in constant time (CheckCSRF).
//   - Passwords, tokens and hashes are never logged.
//   - The pages and the API sign in through SignIn (throttle.go): failures are throttled
//     per user name and per client address in the store, before any bcrypt; every sign-in
//     is audited; a user's TOTP second factor is asked for (secondfactor.go). Every chosen
//     password passes ValidatePassword (password.go), except the demo's sample users
//     (EnsureSampleUser).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/postroom/postroom/internal/store"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "postroom_session"

// APITokenPrefix starts every API token, so that a leaked token is recognisable by secret
// scanners and cannot be mistaken for a session token.
const APITokenPrefix = "prt_"

// tokenBytes is the entropy of session, CSRF and API tokens: 256 bits.
const tokenBytes = 32

// bcryptCost is the bcrypt work factor; the library default (10) takes about 50-100 ms.
const bcryptCost = bcrypt.DefaultCost

// MaxPasswordBytes is the longest password bcrypt accepts (it reads 72 bytes at most).
const MaxPasswordBytes = 72

// Errors returned by the Service. Test them with errors.Is.
var (
	// ErrBadCredentials means the user name or the password is wrong; which one is not told.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrUnauthenticated means the request carries no valid session or API token (none,
	// unknown, or expired).
	ErrUnauthenticated = errors.New("not signed in")
	// ErrDisabled means the user exists and the password is right, but an administrator
	// disabled the user. It is also ErrUnauthenticated (errors.Is), for a session or API
	// token of a disabled user.
	ErrDisabled error = disabledError{}
)

type disabledError struct{}

func (disabledError) Error() string {
	return "this user is disabled: ask an administrator to enable it"
}

func (disabledError) Is(target error) bool { return target == ErrUnauthenticated }

// Service signs users in and authenticates requests against the store.
type Service struct {
	st     store.Users
	logger *slog.Logger
	now    func() time.Time
	// dummyHash is compared against when the user name is unknown, so that the answer
	// takes as long as for a known user with a wrong password.
	dummyHash []byte
	// guard throttles sign-ins, audits them and checks second factors (throttle.go).
	guard *guard
}

// NewService returns a Service over st. It computes one bcrypt hash (tens of milliseconds)
// and does no I/O.
func NewService(st store.Users, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomToken()), bcryptCost)
	if err != nil {
		// Only fails for passwords over 72 bytes or an invalid cost; neither happens here.
		panic(fmt.Sprintf("auth: dummy hash: %v", err))
	}
	s := &Service{st: st, logger: logger, now: time.Now, dummyHash: dummy}
	s.guard = newGuard(st, logger)
	return s
}

// HashPassword returns the bcrypt hash of password to store in store.User.PasswordHash.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("password is empty: choose a password")
	}
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("password is longer than %d bytes: choose a shorter one", MaxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// ValidRole reports whether role is one of the three known roles.
func ValidRole(role string) bool {
	return RoleRank(role) > 0
}

// RoleRank orders the roles: agent 1 < supervisor 2 < admin 3; 0 for an unknown role.
func RoleRank(role string) int {
	switch role {
	case store.RoleAgent:
		return 1
	case store.RoleSupervisor:
		return 2
	case store.RoleAdmin:
		return 3
	}
	return 0
}

// Allowed reports whether a user with role may do what needs role need:
// admin ⊇ supervisor ⊇ agent. Unknown roles are allowed nothing.
func Allowed(role, need string) bool {
	have, want := RoleRank(role), RoleRank(need)
	return have > 0 && want > 0 && have >= want
}

// HashToken returns the hex SHA-256 of a session or API token, the form the store keeps.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RandomToken returns a new random token of 256 bits, base64url without padding, for
// session, CSRF and form tokens.
func RandomToken() string {
	return randomToken()
}

// randomToken returns 256 random bits, base64url without padding.
func randomToken() string {
	b := make([]byte, tokenBytes)
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the program instead.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// EnsureUser creates the user if no user of that name exists, and returns the stored user.
// An existing user is returned unchanged (its password and role are not touched). The
// password must pass ValidatePassword.
func (s *Service) EnsureUser(ctx context.Context, username, display, role, password string) (store.User, error) {
	return s.ensureUser(ctx, username, display, role, password, true)
}

// EnsureSampleUser is EnsureUser without the password policy, for the sample users of
// `postroom demo` only (password "demo"): the demo serves loopback alone and holds
// sample data, and its scripts sign in with that password. Nothing else may call it.
func (s *Service) EnsureSampleUser(ctx context.Context, username, display, role, password string) (store.User, error) {
	return s.ensureUser(ctx, username, display, role, password, false)
}

func (s *Service) ensureUser(ctx context.Context, username, display, role, password string, policy bool) (store.User, error) {
	u, err := s.st.UserByUsername(ctx, username)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("ensure user %q: %w", username, err)
	}
	u, err = s.createUser(ctx, username, display, role, password, policy)
	if errors.Is(err, store.ErrConflict) {
		// Created meanwhile by someone else: return theirs.
		return s.st.UserByUsername(ctx, username)
	}
	return u, err
}

// CreateUser validates and creates a user with a hashed password; the password must pass
// ValidatePassword.
func (s *Service) CreateUser(ctx context.Context, username, display, role, password string) (store.User, error) {
	return s.createUser(ctx, username, display, role, password, true)
}

func (s *Service) createUser(ctx context.Context, username, display, role, password string, policy bool) (store.User, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return store.User{}, errors.New("create user: user name is empty: choose one")
	}
	if !ValidRole(role) {
		return store.User{}, fmt.Errorf("create user %q: role %q is unknown: use admin, supervisor or agent", username, role)
	}
	if msg := ValidatePassword(password, username); policy && msg != "" {
		return store.User{}, fmt.Errorf("create user %q: password: %s", username, msg)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	if display == "" {
		display = username
	}
	u, err := s.st.CreateUser(ctx, store.User{Username: username, DisplayName: display, Role: role, PasswordHash: hash})
	if err != nil {
		return store.User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	s.logger.InfoContext(ctx, "user created", slog.String("user", username), slog.String("role", role))
	return u, nil
}

// Login checks the user name and password and starts a session. It returns the session
// token (to put in the cookie; not stored anywhere), the stored session and the user.
// A wrong user name or password is ErrBadCredentials, with the same cost either way.
// It neither throttles nor asks for a second factor: the pages and the API sign in with
// SignIn, which does.
func (s *Service) Login(ctx context.Context, username, password string) (string, store.Session, store.User, error) {
	u, err := s.checkPassword(ctx, username, password)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	// Told only to whoever knows the password, so that it reveals nothing to a guesser.
	if u.Disabled {
		s.logger.InfoContext(ctx, "sign-in of a disabled user refused", slog.String("user", u.Username))
		return "", store.Session{}, store.User{}, ErrDisabled
	}
	return s.startSession(ctx, u)
}

// checkPassword returns the user of username if password is theirs: ErrBadCredentials
// otherwise, after one bcrypt comparison either way.
func (s *Service) checkPassword(ctx context.Context, username, password string) (store.User, error) {
	u, err := s.st.UserByUsername(ctx, strings.TrimSpace(username))
	switch {
	case errors.Is(err, store.ErrNotFound):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return store.User{}, ErrBadCredentials
	case err != nil:
		return store.User{}, fmt.Errorf("login: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return store.User{}, ErrBadCredentials
	}
	return u, nil
}

// startSession starts a session of u.
func (s *Service) startSession(ctx context.Context, u store.User) (string, store.Session, store.User, error) {
	token := randomToken()
	now := s.now().UTC()
	sess := s.newSession(ctx, token, u.ID, now)
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, store.User{}, fmt.Errorf("login %q: %w", u.Username, err)
	}
	s.logger.InfoContext(ctx, "signed in", slog.String("user", u.Username))
	return token, sess, u, nil
}

// Logout ends the session whose token is given. An unknown token is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.endSessionByToken(ctx, token); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// SessionToken returns the session token of the request's cookie, or "".
func SessionToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// bearerToken returns the token of an "Authorization: Bearer" header (RFC 6750 §2.1; the
// scheme is case-insensitive, RFC 9110 §11.1) and whether there was such a header. Other
// schemes (a proxy's Basic credentials) are not ours and are ignored.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// Authenticate finds the user behind a request: an Authorization: Bearer API token when
// the header is present (then the returned Session is the zero value, and the user's Role
// is the one the token acts with: EffectiveRole), otherwise the session cookie. No
// credentials, unknown ones or an expired session give ErrUnauthenticated; an expired API
// token ErrTokenExpired (which is ErrUnauthenticated too); those of a disabled user
// ErrDisabled (which is ErrUnauthenticated too). Use ViaSession to tell the two apart, and
// Authorize to apply a token's "read" scope too.
func (s *Service) Authenticate(r *http.Request) (store.User, store.Session, error) {
	u, sess, tok, err := s.identify(r)
	if err != nil {
		return store.User{}, store.Session{}, err
	}
	if tok != nil {
		u.Role, _ = EffectiveRole(u.Role, tok.Scopes)
	}
	return u, sess, nil
}

// identify finds the user behind a request and, for an API token, the token; the user's
// Role is the owner's, not capped.
func (s *Service) identify(r *http.Request) (store.User, store.Session, *store.APIToken, error) {
	ctx := r.Context()
	if token, present := bearerToken(r); present {
		u, t, err := s.authenticateAPIToken(ctx, token)
		if err != nil {
			return store.User{}, store.Session{}, nil, err
		}
		return u, store.Session{}, &t, nil
	}
	token := SessionToken(r)
	if token == "" {
		return store.User{}, store.Session{}, nil, ErrUnauthenticated
	}
	hash := HashToken(token)
	sess, err := s.st.SessionByTokenHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, store.Session{}, nil, ErrUnauthenticated
	case err != nil:
		return store.User{}, store.Session{}, nil, fmt.Errorf("authenticate session: %w", err)
	}
	if err := s.checkSession(ctx, sess); err != nil {
		return store.User{}, store.Session{}, nil, err
	}
	u, err := s.st.UserByID(ctx, sess.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, store.Session{}, nil, ErrUnauthenticated
	case err != nil:
		return store.User{}, store.Session{}, nil, fmt.Errorf("authenticate session user %d: %w", sess.UserID, err)
	}
	if u.Disabled {
		return store.User{}, store.Session{}, nil, ErrDisabled
	}
	return u, sess, nil, nil
}

func (s *Service) authenticateAPIToken(ctx context.Context, token string) (store.User, store.APIToken, error) {
	if !strings.HasPrefix(token, APITokenPrefix) {
		return store.User{}, store.APIToken{}, ErrUnauthenticated
	}
	t, err := s.st.APITokenByHash(ctx, HashToken(token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, store.APIToken{}, ErrUnauthenticated
	case err != nil:
		return store.User{}, store.APIToken{}, fmt.Errorf("authenticate api token: %w", err)
	}
	if err := s.checkToken(ctx, t); err != nil {
		return store.User{}, store.APIToken{}, err
	}
	u, err := s.st.UserByID(ctx, t.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, store.APIToken{}, ErrUnauthenticated
	case err != nil:
		return store.User{}, store.APIToken{}, fmt.Errorf("authenticate api token %d user: %w", t.ID, err)
	}
	if u.Disabled {
		return store.User{}, store.APIToken{}, ErrDisabled
	}
	return u, t, nil
}

// ViaSession reports whether Authenticate found a browser session (cookie) rather than an
// API token. Only cookie-authenticated requests need cross-site request forgery checks.
func ViaSession(sess store.Session) bool {
	return sess.TokenHash != ""
}

// CreateAPIToken creates an API token for user with the default scope (the user's role)
// and expiry (DefaultTokenLifetime): CreateToken with only a name.
func (s *Service) CreateAPIToken(ctx context.Context, user store.User, name string) (string, store.APIToken, error) {
	return s.CreateToken(ctx, user, TokenRequest{Name: name})
}

// CheckCSRF reports whether token is the session's CSRF token, in constant time.
func CheckCSRF(sess store.Session, token string) bool {
	if sess.CSRFToken == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sess.CSRFToken), []byte(token)) == 1
}

// SetSessionCookie sends the session cookie: HttpOnly, SameSite=Lax, Path=/, Secure when
// the request came over TLS or through SecureTransport.
func SetSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   secureRequest(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie tells the browser to forget the session cookie.
func ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   secureRequest(r),
		SameSite: http.SameSiteLaxMode,
	})
}
