package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // time zones of users' pages, also where the system has no zoneinfo
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/postroom/postroom/internal/store"
)

// User administration: the rules the web pages, the API and the CLI share. Admins create,
// change, disable and delete users and reset their passwords; every user changes their own
// password (with the current one) and time zone. Every change is in the audit log
// (user.create, user.update, user.disable, user.delete, user.password), never a password.

// Limits of the user fields.
const (
	MaxUsernameLen    = 64
	MaxDisplayNameLen = 100
	MaxEmailLen       = 254
	MinPasswordLen    = 12 // characters
)

// ErrWrongPassword is returned by ChangeOwnPassword when the current password is wrong.
var ErrWrongPassword = errors.New("the current password is wrong")

// ErrSelf is returned when an admin tries to disable or delete their own user.
var ErrSelf = errors.New("you cannot disable or delete your own user: another admin can")

// ValidationError lists what is wrong with a user, by field (the API's JSON names:
// username, name, email, role, password, current, teams, time_zone); each message says
// what to enter.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "the user has errors: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, msg string) {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	if _, ok := e.Fields[field]; !ok {
		e.Fields[field] = msg
	}
}

func (e *ValidationError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// UserStore is what user administration needs of the store.
type UserStore interface {
	store.Users
	store.Audit
	ListTeams(ctx context.Context) ([]store.Team, error)
	SetAgentStatus(ctx context.Context, userID int64, status string, at time.Time) error
}

// Users applies the user rules over a store.
type Users struct {
	st     UserStore
	logger *slog.Logger
	now    func() time.Time
}

// NewUsers returns the user administration over st.
func NewUsers(st UserStore, logger *slog.Logger) *Users {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Users{st: st, logger: logger, now: time.Now}
}

// NewUser is what an admin gives to create a user.
type NewUser struct {
	Username    string
	DisplayName string // "" means the username
	Email       string
	Role        string
	Password    string
	Teams       []int64
	TimeZone    string
}

// UserChange is a partial change of a user: nil fields keep their value.
type UserChange struct {
	DisplayName *string
	Email       *string
	Role        *string
	Disabled    *bool
	Teams       *[]int64
	TimeZone    *string
}

// ValidUsername reports whether name is 1..MaxUsernameLen of ASCII letters, digits and
// . _ - @.
func ValidUsername(name string) bool {
	if name == "" || len(name) > MaxUsernameLen {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)
		if !ok {
			return false
		}
	}
	return true
}

const usernameHint = "use 1 to 64 of the letters a-z and A-Z, digits and . _ - @ (no spaces)"

func checkDisplayName(errs *ValidationError, name string) {
	if utf8.RuneCountInString(name) > MaxDisplayNameLen {
		errs.add("name", fmt.Sprintf("use at most %d characters", MaxDisplayNameLen))
		return
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			errs.add("name", "use text without line breaks or control characters")
			return
		}
	}
}

func checkEmail(errs *ValidationError, email string) {
	if email == "" {
		return
	}
	if len(email) > MaxEmailLen {
		errs.add("email", fmt.Sprintf("use at most %d characters", MaxEmailLen))
		return
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		errs.add("email", "enter one email address like ana@example.com, or leave it empty")
	}
}

func checkRole(errs *ValidationError, role string) {
	if !ValidRole(role) {
		errs.add("role", "use agent, supervisor or admin")
	}
}

// CheckTimeZone returns the field message for an IANA time zone name, "" when it is known
// (or empty, which means UTC).
func CheckTimeZone(tz string) string {
	if tz == "" {
		return ""
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return "enter an IANA time zone like Europe/Berlin or America/New_York, or leave it empty for UTC"
	}
	return ""
}

func (u *Users) checkTeams(ctx context.Context, errs *ValidationError, teams []int64) error {
	if len(teams) == 0 {
		return nil
	}
	known, err := u.st.ListTeams(ctx)
	if err != nil {
		return fmt.Errorf("list teams: %w", err)
	}
	for _, id := range teams {
		if !slices.ContainsFunc(known, func(t store.Team) bool { return t.ID == id }) {
			errs.add("teams", fmt.Sprintf("there is no team %d: use the ids of GET /api/v1/teams", id))
		}
	}
	return nil
}

// normTeams sorts and dedups team ids; the result is never nil.
func normTeams(teams []int64) []int64 {
	out := slices.Clone(teams)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []int64{}
	}
	return out
}

// Create validates and creates a user. actor is who does it, for the audit log.
func (u *Users) Create(ctx context.Context, actor string, in NewUser) (store.User, error) {
	in.Username = strings.TrimSpace(in.Username)
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	in.Email = strings.TrimSpace(in.Email)
	in.Role = strings.TrimSpace(in.Role)
	in.TimeZone = strings.TrimSpace(in.TimeZone)
	var errs ValidationError
	if !ValidUsername(in.Username) {
		errs.add("username", usernameHint)
	}
	checkDisplayName(&errs, in.DisplayName)
	checkEmail(&errs, in.Email)
	checkRole(&errs, in.Role)
	if msg := ValidatePassword(in.Password, in.Username); msg != "" {
		errs.add("password", msg)
	}
	if msg := CheckTimeZone(in.TimeZone); msg != "" {
		errs.add("time_zone", msg)
	}
	if err := u.checkTeams(ctx, &errs, in.Teams); err != nil {
		return store.User{}, err
	}
	if errs.Fields["username"] == "" {
		// Usernames differ by more than case: "Ana" and "ana" would confuse everyone.
		all, err := u.st.ListUsers(ctx)
		if err != nil {
			return store.User{}, fmt.Errorf("create user: %w", err)
		}
		for _, o := range all {
			if strings.EqualFold(o.Username, in.Username) {
				errs.add("username", fmt.Sprintf("the user name %q is taken: choose another", o.Username))
			}
		}
	}
	if err := errs.orNil(); err != nil {
		return store.User{}, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return store.User{}, err
	}
	if in.DisplayName == "" {
		in.DisplayName = in.Username
	}
	nu, err := u.st.CreateUser(ctx, store.User{
		Username: in.Username, DisplayName: in.DisplayName, Email: in.Email, Role: in.Role,
		PasswordHash: hash, TimeZone: in.TimeZone, Teams: normTeams(in.Teams),
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, &ValidationError{Fields: map[string]string{"username": fmt.Sprintf("the user name %q is taken: choose another", in.Username)}}
	}
	if err != nil {
		return store.User{}, fmt.Errorf("create user %q: %w", in.Username, err)
	}
	u.audit(ctx, actor, "user.create", nu.ID, "", describe(nu))
	u.logger.InfoContext(ctx, "user created", slog.String("user", nu.Username), slog.String("role", nu.Role), slog.String("by", actor))
	return u.st.UserByID(ctx, nu.ID)
}

// Update applies a partial change to user id. The last enabled admin cannot be disabled or
// demoted (store.ErrLastAdmin); an admin cannot disable themselves (ErrSelf). Disabling
// ends the user's sessions and API tokens and sets them offline.
func (u *Users) Update(ctx context.Context, actor store.User, id int64, ch UserChange) (store.User, error) {
	old, err := u.st.UserByID(ctx, id)
	if err != nil {
		return store.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	nu := old
	var errs ValidationError
	if ch.DisplayName != nil {
		nu.DisplayName = strings.TrimSpace(*ch.DisplayName)
		checkDisplayName(&errs, nu.DisplayName)
		if nu.DisplayName == "" {
			nu.DisplayName = nu.Username
		}
	}
	if ch.Email != nil {
		nu.Email = strings.TrimSpace(*ch.Email)
		checkEmail(&errs, nu.Email)
	}
	if ch.Role != nil {
		nu.Role = strings.TrimSpace(*ch.Role)
		checkRole(&errs, nu.Role)
	}
	if ch.TimeZone != nil {
		nu.TimeZone = strings.TrimSpace(*ch.TimeZone)
		if msg := CheckTimeZone(nu.TimeZone); msg != "" {
			errs.add("time_zone", msg)
		}
	}
	if ch.Teams != nil {
		if err := u.checkTeams(ctx, &errs, *ch.Teams); err != nil {
			return store.User{}, err
		}
		nu.Teams = normTeams(*ch.Teams)
	} else {
		nu.Teams = nil // keep them
	}
	if ch.Disabled != nil {
		nu.Disabled = *ch.Disabled
	}
	if err := errs.orNil(); err != nil {
		return store.User{}, err
	}
	if nu.Disabled && !old.Disabled && actor.ID == id {
		return store.User{}, ErrSelf
	}
	if err := u.st.UpdateUser(ctx, nu); err != nil {
		return store.User{}, fmt.Errorf("update user %q: %w", old.Username, err)
	}
	if nu.Disabled && !old.Disabled {
		if err := u.st.SetAgentStatus(ctx, id, store.AgentOffline, u.now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			u.logger.WarnContext(ctx, "set disabled user offline", slog.Int64("user_id", id), slog.Any("error", err))
		}
	}
	if nu.Teams == nil {
		nu.Teams = old.Teams
	}
	action := "user.update"
	if nu.Disabled && !old.Disabled {
		action = "user.disable"
	}
	if d0, d1 := describe(old), describe(nu); d0 != d1 {
		u.audit(ctx, actor.Username, action, id, d0, d1)
	}
	return u.st.UserByID(ctx, id)
}

// Delete deletes user id: the last enabled admin cannot be deleted (store.ErrLastAdmin),
// nor can an admin delete themselves (ErrSelf). Their work items stay, unassigned.
func (u *Users) Delete(ctx context.Context, actor store.User, id int64) error {
	old, err := u.st.UserByID(ctx, id)
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	if actor.ID == id {
		return ErrSelf
	}
	if err := u.st.DeleteUser(ctx, id); err != nil {
		return fmt.Errorf("delete user %q: %w", old.Username, err)
	}
	u.audit(ctx, actor.Username, "user.delete", id, describe(old), "")
	u.logger.InfoContext(ctx, "user deleted", slog.String("user", old.Username), slog.String("by", actor.Username))
	return nil
}

// SetPassword sets (resets) the password of user id, as an admin does.
func (u *Users) SetPassword(ctx context.Context, actor string, id int64, password string) error {
	target, err := u.st.UserByID(ctx, id)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	if msg := ValidatePassword(password, target.Username); msg != "" {
		return &ValidationError{Fields: map[string]string{"password": msg}}
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if err := u.st.SetUserPassword(ctx, id, hash); err != nil {
		return fmt.Errorf("set password of user %q: %w", target.Username, err)
	}
	u.audit(ctx, actor, "user.password", id, "", "password changed")
	u.logger.InfoContext(ctx, "password set", slog.String("user", target.Username), slog.String("by", actor))
	return nil
}

// ChangeOwnPassword changes the password of user after checking the current one
// (ErrWrongPassword, also as a field error "current").
func (u *Users) ChangeOwnPassword(ctx context.Context, user store.User, current, password string) error {
	fresh, err := u.st.UserByID(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("change password of %q: %w", user.Username, err)
	}
	var errs ValidationError
	if current == "" {
		errs.add("current", "enter your current password")
	} else if bcrypt.CompareHashAndPassword([]byte(fresh.PasswordHash), []byte(current)) != nil {
		errs.add("current", ErrWrongPassword.Error()+": enter the one you signed in with")
	}
	if msg := ValidatePassword(password, fresh.Username); msg != "" {
		errs.add("password", msg)
	} else if password == current {
		errs.add("password", "the new password is the current one: choose another")
	}
	if err := errs.orNil(); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if err := u.st.SetUserPassword(ctx, user.ID, hash); err != nil {
		return fmt.Errorf("change password of %q: %w", user.Username, err)
	}
	u.audit(ctx, user.Username, "user.password", user.ID, "", "own password changed")
	return nil
}

// audit records a user change; a failed entry is logged, the change stays.
func (u *Users) audit(ctx context.Context, actor, action string, id int64, old, new string) {
	if actor == "" {
		actor = "system"
	}
	if err := u.st.AddAudit(ctx, store.AuditEvent{Actor: actor, Action: action, Object: fmt.Sprintf("user:%d", id), Old: old, New: new}); err != nil {
		u.logger.ErrorContext(ctx, "audit user change", slog.String("action", action), slog.Int64("user_id", id), slog.Any("error", err))
	}
}

// describe is a user's audited fields (never the password hash).
func describe(u store.User) string {
	teams := make([]string, 0, len(u.Teams))
	for _, t := range u.Teams {
		teams = append(teams, fmt.Sprint(t))
	}
	return fmt.Sprintf("username=%s name=%q email=%q role=%s disabled=%t time_zone=%q teams=[%s]",
		u.Username, u.DisplayName, u.Email, u.Role, u.Disabled, u.TimeZone, strings.Join(teams, ","))
}
