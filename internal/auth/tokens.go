package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// API token lifetimes: a token made without an expiry lasts DefaultTokenLifetime; none may
// last longer than MaxTokenLifetime from its creation.
const (
	DefaultTokenLifetime = 90 * 24 * time.Hour
	MaxTokenLifetime     = 5 * 365 * 24 * time.Hour
)

// TokenScopes are the scopes an API token may have (store.APIToken.Scopes): "read" allows
// only reading (GET and HEAD) with the owner's role; a role scope caps the role the token
// acts with at the lower of it and the owner's role. A token has at most one role scope;
// one created with no scope gets the owner's role.
var TokenScopes = []string{store.ScopeRead, store.RoleAgent, store.RoleSupervisor, store.RoleAdmin}

// TokenRequest is what a user asks for when creating an API token.
type TokenRequest struct {
	Name   string
	Scopes []string
	// ExpiresAt zero: DefaultTokenLifetime from now.
	ExpiresAt time.Time
}

// ForbiddenError means the caller is known but may not do this; its text says why.
type ForbiddenError struct {
	Reason string
}

func (e *ForbiddenError) Error() string { return e.Reason }

// ErrTokenExpired means an API token was presented after its expiry. It is also
// ErrUnauthenticated (errors.Is); its text says when it expired.
var ErrTokenExpired error = tokenExpiredError{}

type tokenExpiredError struct{ at time.Time }

func (e tokenExpiredError) Error() string {
	if e.at.IsZero() {
		return "this API token has expired: create a new one"
	}
	return fmt.Sprintf("this API token expired at %s: create a new one", e.at.UTC().Format(time.RFC3339))
}

func (tokenExpiredError) Is(target error) bool {
	return target == ErrUnauthenticated || target == ErrTokenExpired
}

// EffectiveRole is the role a token with scopes acts with for an owner with ownerRole (the
// lower of the owner's role and the token's role scope), and whether it may only read.
func EffectiveRole(ownerRole string, scopes []string) (role string, readOnly bool) {
	role = ownerRole
	for _, sc := range scopes {
		if sc == store.ScopeRead {
			readOnly = true
			continue
		}
		if r := RoleRank(sc); r > 0 && r < RoleRank(role) {
			role = sc
		}
	}
	return role, readOnly
}

// checkScopes validates the requested scopes for a creator whose effective role is role
// and returns them cleaned up (no duplicates, in TokenScopes order; none: [role]).
func checkScopes(role string, scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return []string{role}, nil
	}
	var roles []string
	for _, sc := range scopes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		if !slices.Contains(TokenScopes, sc) {
			return nil, &ValidationError{Fields: map[string]string{"scopes": fmt.Sprintf("scope %q is unknown: use %s", sc, strings.Join(TokenScopes, ", "))}}
		}
		if sc != store.ScopeRead && !slices.Contains(roles, sc) {
			roles = append(roles, sc)
		}
	}
	if len(roles) > 1 {
		return nil, &ValidationError{Fields: map[string]string{"scopes": fmt.Sprintf("give at most one role scope (agent, supervisor or admin), not %s", strings.Join(roles, " and "))}}
	}
	if len(roles) == 1 && !Allowed(role, roles[0]) {
		return nil, &ForbiddenError{Reason: fmt.Sprintf("you act with the role %q and may not create a token with the scope %q: choose read or a role up to %s", role, roles[0], role)}
	}
	var out []string
	for _, sc := range TokenScopes {
		if slices.ContainsFunc(scopes, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), sc) }) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// CreateToken creates an API token for user (the caller, acting with user.Role) within
// that role: a *ValidationError for a missing name, an unknown scope or an expiry in the past
// or more than MaxTokenLifetime ahead, a *ForbiddenError for a role scope above user.Role.
// The plaintext token is returned once and never stored; "token.create" is audited.
func (s *Service) CreateToken(ctx context.Context, user store.User, req TokenRequest) (string, store.APIToken, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return "", store.APIToken{}, &ValidationError{Fields: map[string]string{"name": "say what the token is for, e.g. \"nightly report\""}}
	}
	scopes, err := checkScopes(user.Role, req.Scopes)
	if err != nil {
		return "", store.APIToken{}, err
	}
	now := s.now().UTC()
	expires := req.ExpiresAt
	switch {
	case expires.IsZero():
		expires = now.Add(DefaultTokenLifetime)
	case !expires.After(now):
		return "", store.APIToken{}, &ValidationError{Fields: map[string]string{"expires_at": "this time has passed: give a time in the future (RFC 3339, e.g. " + now.Add(DefaultTokenLifetime).Format(time.RFC3339) + ")"}}
	case expires.After(now.Add(MaxTokenLifetime)):
		return "", store.APIToken{}, &ValidationError{Fields: map[string]string{"expires_at": "a token may last at most five years: give a time before " + now.Add(MaxTokenLifetime).Format(time.RFC3339)}}
	}
	plain := APITokenPrefix + randomToken()
	t, err := s.st.CreateAPIToken(ctx, store.APIToken{
		UserID:    user.ID,
		Name:      name,
		TokenHash: HashToken(plain),
		CreatedAt: now,
		Scopes:    scopes,
		ExpiresAt: expires,
	})
	if err != nil {
		return "", store.APIToken{}, fmt.Errorf("create api token %q for %q: %w", name, user.Username, err)
	}
	t.TokenHash, t.Username = "", user.Username
	// The token exists whatever happens to the audit entry (a failure is logged).
	s.audit(ctx, store.AuditEvent{
		Actor: user.Username, Action: "token.create", Object: fmt.Sprintf("token:%d", t.ID),
		New: fmt.Sprintf("name=%q user=%s scopes=%s expires=%s", t.Name, user.Username, strings.Join(scopes, ","), t.ExpiresAt.Format(time.RFC3339)),
	})
	s.logger.InfoContext(ctx, "api token created", slog.String("user", user.Username), slog.String("token_name", name),
		slog.Int64("token_id", t.ID), slog.String("scopes", strings.Join(scopes, ",")))
	return plain, t, nil
}

// checkToken applies a stored token's expiry and records its use (at most once a minute).
func (s *Service) checkToken(ctx context.Context, t store.APIToken) error {
	now := s.now().UTC()
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return tokenExpiredError{at: t.ExpiresAt}
	}
	if t.LastUsedAt.IsZero() || now.Sub(t.LastUsedAt) >= touchInterval {
		if err := s.st.TouchAPIToken(ctx, t.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logger.WarnContext(ctx, "record api token use", slog.Int64("token_id", t.ID), slog.Any("error", err))
		}
	}
	return nil
}

// Authorize authenticates the request (Authenticate) and checks that it may do what needs
// the role need with its method: the user's role, capped by an API token's role scope,
// must be need or above, and a token with the scope "read" may only GET and HEAD. A refusal
// is a *ForbiddenError whose text says why; the authentication errors are Authenticate's
// (an expired token is ErrTokenExpired).
func (s *Service) Authorize(r *http.Request, need string) (store.User, store.Session, error) {
	user, sess, tok, err := s.identify(r)
	if err != nil {
		return store.User{}, store.Session{}, err
	}
	if tok != nil {
		role, readOnly := EffectiveRole(user.Role, tok.Scopes)
		if readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
			return store.User{}, store.Session{}, &ForbiddenError{Reason: fmt.Sprintf(
				"this API token has the scope %q and may only read (GET): create a token with the scope agent, supervisor or admin to %s here", store.ScopeRead, r.Method)}
		}
		if role != user.Role && !Allowed(role, need) {
			return store.User{}, store.Session{}, &ForbiddenError{Reason: fmt.Sprintf(
				"this API token is limited to the role %q by its scopes; this needs %q: create a token with a higher scope", role, need)}
		}
		user.Role = role
	}
	if !Allowed(user.Role, need) {
		return store.User{}, store.Session{}, &ForbiddenError{Reason: fmt.Sprintf("your role %q may not do this: it needs %q; ask an administrator", user.Role, need)}
	}
	return user, sess, nil
}
