package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/postroom/postroom/internal/auth"
	"github.com/postroom/postroom/internal/store"
)

// subject is the person's stable identity at the issuer: Entra ID's object id when the
// token has one (with a tenant id), else sub.
func subject(cl claims) string {
	if cl.ObjectID != "" && cl.TenantID != "" {
		return "oid:" + strings.ToLower(cl.ObjectID)
	}
	return "sub:" + cl.Subject
}

// mapped is what the mappings give a person: their role ("" none) and team names, and
// whether any role or team mapping exists at all.
type mapped struct {
	role                   string
	teams                  []string
	haveRoleMap, haveTeams bool
}

func mapClaims(c Config, cl claims) mapped {
	var m mapped
	values := append(slices.Clone(cl.Groups), cl.Roles...)
	for _, mp := range c.Mappings {
		m.haveRoleMap = m.haveRoleMap || mp.Role != ""
		m.haveTeams = m.haveTeams || mp.Team != ""
		if !slices.ContainsFunc(values, func(v string) bool { return strings.EqualFold(v, mp.Value) }) {
			continue
		}
		if auth.RoleRank(mp.Role) > auth.RoleRank(m.role) {
			m.role = mp.Role
		}
		if mp.Team != "" && !slices.ContainsFunc(m.teams, func(t string) bool { return strings.EqualFold(t, mp.Team) }) {
			m.teams = append(m.teams, mp.Team)
		}
	}
	return m
}

// userFor finds or creates the user of verified claims and applies the mappings. who is
// the name for the audit log.
func (s *Service) userFor(ctx context.Context, c Config, cl claims) (store.User, string, error) {
	who := cl.PreferredUsername
	if who == "" {
		who = cl.Email
	}
	if cl.Subject == "" {
		return store.User{}, who, &Refusal{Status: http.StatusForbidden, Message: "The sign-in service's answer names nobody (no sub claim). " + startAgain,
			Reason: "id token without sub"}
	}
	sub := subject(cl)
	m := mapClaims(c, cl)
	role := m.role
	if role == "" {
		role = c.UnmappedRole
	}
	u, err := s.st.UserByIdentity(ctx, c.Issuer, sub)
	if err != nil && !store.IsNotFound(err) {
		return store.User{}, who, fmt.Errorf("single sign-on: find user: %w", err)
	}
	found := err == nil
	if !found {
		u, found, err = s.matchFirstTime(ctx, c, cl)
		if err != nil {
			return store.User{}, who, err
		}
	}
	if found {
		who = u.Username
		if u.Disabled {
			return store.User{}, who, &Refusal{Status: http.StatusForbidden, Message: "Your postroom user is disabled. Ask an administrator to enable it.", Reason: "user disabled"}
		}
	}
	if m.haveRoleMap && role == "" {
		return store.User{}, who, &Refusal{Status: http.StatusForbidden,
			Message: "You are signed in at " + c.ProviderName() + ", but none of your groups or roles gives you a role in postroom. Ask an administrator to add you to the right group.",
			Reason:  "no mapped group or role"}
	}
	if !found {
		if !c.AutoCreate {
			return store.User{}, who, &Refusal{Status: http.StatusForbidden,
				Message: "There is no postroom user for " + orName(who) + " yet. Ask an administrator to create your user; then sign in again.",
				Reason:  "no such user and automatic creation is off"}
		}
		if role == "" {
			return store.User{}, who, &Refusal{Status: http.StatusForbidden,
				Message: "There is no postroom user for " + orName(who) + " yet, and no role to give you. Ask an administrator to create your user.",
				Reason:  "no such user and no role to create it with"}
		}
		u, err = s.create(ctx, cl, role)
		if err != nil {
			return store.User{}, who, err
		}
		who = u.Username
	}
	if err := s.st.LinkIdentity(ctx, store.ExternalIdentity{Issuer: c.Issuer, Subject: sub, UserID: u.ID, CreatedAt: s.now().UTC()}); err != nil {
		return store.User{}, who, fmt.Errorf("single sign-on: link identity of %q: %w", u.Username, err)
	}
	// The break-glass admins keep their role whatever the provider says: they are the way
	// in when single sign-on goes wrong.
	breakGlass := slices.ContainsFunc(c.BreakGlass, func(n string) bool { return strings.EqualFold(n, u.Username) })
	if m.haveRoleMap && role != u.Role && !breakGlass {
		old := u.Role
		u.Role = role
		err := s.st.UpdateUser(ctx, u)
		switch {
		case errors.Is(err, store.ErrLastAdmin):
			u.Role = old
			s.logger.WarnContext(ctx, "single sign-on: the last admin keeps their role", slog.String("user", u.Username), slog.String("mapped", role))
		case err != nil:
			return store.User{}, who, fmt.Errorf("single sign-on: set role of %q: %w", u.Username, err)
		default:
			s.changed(ctx, u, "role="+old, "role="+role)
		}
	}
	if m.haveTeams {
		if err := s.applyTeams(ctx, &u, m.teams); err != nil {
			return store.User{}, who, err
		}
	}
	return u, who, nil
}

func orName(who string) string {
	if who == "" {
		return "your account"
	}
	return who
}

// firstTimeNames are the names a person's first sign-in may match an existing user by:
// for Entra ID (tid and oid present) preferred_username (the UPN, which the directory's
// administrators set) and email; for other providers only an email the provider says it
// verified (a name or an address a person could choose themselves must not take over
// someone else's postroom user).
func firstTimeNames(cl claims) []string {
	var names []string
	if cl.TenantID != "" && cl.ObjectID != "" {
		names = append(names, cl.PreferredUsername, cl.Email)
	} else if cl.EmailVerified {
		names = append(names, cl.Email)
	}
	return slices.DeleteFunc(names, func(n string) bool { return strings.TrimSpace(n) == "" })
}

// matchFirstTime finds a user not linked to this issuer yet whose user name or email
// address is one of firstTimeNames.
func (s *Service) matchFirstTime(ctx context.Context, c Config, cl claims) (store.User, bool, error) {
	names := firstTimeNames(cl)
	if len(names) == 0 {
		return store.User{}, false, nil
	}
	var candidates []store.User
	for _, name := range names {
		u, err := s.st.UserByUsername(ctx, name)
		if err == nil {
			candidates = append(candidates, u)
		} else if !store.IsNotFound(err) {
			return store.User{}, false, fmt.Errorf("single sign-on: find user %q: %w", name, err)
		}
	}
	users, err := s.st.ListUsers(ctx)
	if err != nil {
		return store.User{}, false, fmt.Errorf("single sign-on: list users: %w", err)
	}
	for _, u := range users {
		if u.Email != "" && slices.ContainsFunc(names, func(a string) bool { return strings.EqualFold(a, u.Email) }) {
			candidates = append(candidates, u)
		}
	}
	for _, u := range candidates {
		// A user linked to another person at this issuer already is not taken over.
		ids, err := s.st.IdentitiesOf(ctx, u.ID)
		if err != nil {
			return store.User{}, false, fmt.Errorf("single sign-on: identities of %q: %w", u.Username, err)
		}
		if !slices.ContainsFunc(ids, func(id store.ExternalIdentity) bool { return id.Issuer == c.Issuer }) {
			return u, true, nil
		}
	}
	return store.User{}, false, nil
}

// create makes the user of a first sign-in, with a random password nobody knows.
func (s *Service) create(ctx context.Context, cl claims, role string) (store.User, error) {
	name := strings.TrimSpace(cl.PreferredUsername)
	if name == "" {
		name = strings.TrimSpace(cl.Email)
	}
	if !auth.ValidUsername(name) {
		return store.User{}, &Refusal{Status: http.StatusForbidden,
			Message: fmt.Sprintf("Your account name %q cannot be a postroom user name. Ask an administrator to create your user.", name),
			Reason:  "account name not usable as a user name"}
	}
	hash, err := auth.HashPassword(auth.RandomToken())
	if err != nil {
		return store.User{}, fmt.Errorf("single sign-on: create user: %w", err)
	}
	display := strings.TrimSpace(cl.Name)
	if display == "" {
		display = name
	}
	email := cl.Email
	if email == "" && strings.Contains(name, "@") {
		email = name
	}
	u, err := s.st.CreateUser(ctx, store.User{Username: name, DisplayName: display, Role: role, PasswordHash: hash, Email: email, CreatedAt: s.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, &Refusal{Status: http.StatusConflict,
			Message: fmt.Sprintf("A postroom user %q exists already but belongs to another account. Ask an administrator.", name),
			Reason:  "user name taken by another identity"}
	}
	if err != nil {
		return store.User{}, fmt.Errorf("single sign-on: create user %q: %w", name, err)
	}
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: "system", Action: "user.create", Object: fmt.Sprintf("user:%d", u.ID),
		New: fmt.Sprintf("username=%s name=%q email=%q role=%s (first single sign-on)", u.Username, u.DisplayName, u.Email, u.Role)}); err != nil {
		s.logger.ErrorContext(ctx, "audit user created by single sign-on", slog.Any("error", err))
	}
	s.logger.InfoContext(ctx, "user created at first single sign-on", slog.String("user", u.Username), slog.String("role", role))
	return u, nil
}

// changed audits a change single sign-on made to a user.
func (s *Service) changed(ctx context.Context, u store.User, old, new string) {
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: "system", Action: "user.update", Object: fmt.Sprintf("user:%d", u.ID),
		Old: old, New: new + " (single sign-on mapping)"}); err != nil {
		s.logger.ErrorContext(ctx, "audit user changed by single sign-on", slog.Any("error", err))
	}
}

// applyTeams sets the user's teams to the mapped ones (team names that no longer exist
// are skipped).
func (s *Service) applyTeams(ctx context.Context, u *store.User, names []string) error {
	teams, err := s.st.ListTeams(ctx)
	if err != nil {
		return fmt.Errorf("single sign-on: list teams: %w", err)
	}
	var ids []int64
	for _, n := range names {
		i := slices.IndexFunc(teams, func(t store.Team) bool { return strings.EqualFold(t.Name, n) })
		if i < 0 {
			s.logger.WarnContext(ctx, "single sign-on: mapped team does not exist", slog.String("team", n))
			continue
		}
		ids = append(ids, teams[i].ID)
	}
	slices.Sort(ids)
	cur := slices.Clone(u.Teams)
	slices.Sort(cur)
	if slices.Equal(ids, cur) {
		return nil
	}
	if err := s.st.SetUserTeams(ctx, u.ID, ids); err != nil {
		return fmt.Errorf("single sign-on: set teams of %q: %w", u.Username, err)
	}
	s.changed(ctx, *u, fmt.Sprint("teams=", cur), fmt.Sprint("teams=", ids))
	u.Teams = ids
	return nil
}
