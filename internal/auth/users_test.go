package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

const goodPassword = "long enough words 42"

func TestDisabledUserCannotSignIn(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	users := NewUsers(st, nil)
	admin, err := s.EnsureUser(ctx, "admin", "Admin", store.RoleAdmin, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	ana, err := users.Create(ctx, "admin", NewUser{Username: "ana", Role: store.RoleAgent, Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := s.Login(ctx, "ana", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := s.CreateAPIToken(ctx, ana, "script")
	if err != nil {
		t.Fatal(err)
	}

	yes := true
	if _, err := users.Update(ctx, admin, ana.ID, UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	// The right password is told that the user is disabled; a wrong one learns nothing.
	if _, _, _, err := s.Login(ctx, "ana", goodPassword); !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("login of a disabled user: %v, want ErrDisabled", err)
	}
	if _, _, _, err := s.Login(ctx, "ana", "wrong password!"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password of a disabled user: %v, want ErrBadCredentials", err)
	}
	// The session and the API token are gone.
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie(token))
	if _, _, err := s.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("session of a disabled user: %v", err)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	if _, _, err := s.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("API token of a disabled user: %v", err)
	}
	// Audit: user.disable.
	ev, err := st.ListAuditFor(ctx, "user:"+itoa(ana.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) < 2 || ev[0].Action != "user.disable" {
		t.Errorf("audit of ana: %+v", ev)
	}

	// Enabled again: signs in.
	no := false
	if _, err := users.Update(ctx, admin, ana.ID, UserChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Login(ctx, "ana", goodPassword); err != nil {
		t.Errorf("login after enabling: %v", err)
	}
}

func TestDisabledUserSessionRefusedEvenIfKept(t *testing.T) {
	// A session row that outlived the disabling (another node, a restore) is refused too.
	s, st := newTestService(t)
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := s.Login(ctx, "ana", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureUser(ctx, "admin", "Admin", store.RoleAdmin, goodPassword); err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if err := st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, store.Session{TokenHash: HashToken(token + "x"), UserID: u.ID, CSRFToken: "c",
		CreatedAt: s.now(), ExpiresAt: s.now().Add(SessionLifetime)}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie(token + "x"))
	if _, _, err := s.Authenticate(r); !errors.Is(err, ErrDisabled) {
		t.Errorf("kept session of a disabled user: %v, want ErrDisabled", err)
	}
}

func TestUserValidation(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	users := NewUsers(st, nil)
	if _, err := s.EnsureUser(ctx, "admin", "Admin", store.RoleAdmin, goodPassword); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in    NewUser
		field string
	}{
		{NewUser{Username: "", Role: "agent", Password: goodPassword}, "username"},
		{NewUser{Username: "has space", Role: "agent", Password: goodPassword}, "username"},
		{NewUser{Username: strings.Repeat("a", 65), Role: "agent", Password: goodPassword}, "username"},
		{NewUser{Username: "Admin", Role: "agent", Password: goodPassword}, "username"}, // taken, by case
		{NewUser{Username: "bo", Role: "root", Password: goodPassword}, "role"},
		{NewUser{Username: "bo", Role: "agent", Password: "short"}, "password"},
		{NewUser{Username: "bo", Role: "agent", Password: "Password1234"}, "password"},
		{NewUser{Username: "bo", Role: "agent", Password: "aaaaaaaaaaaaaaa"}, "password"},
		{NewUser{Username: "bo", Role: "agent", Password: strings.Repeat("é", 40)}, "password"},
		{NewUser{Username: "bo", Role: "agent", Password: goodPassword, Email: "not an address"}, "email"},
		{NewUser{Username: "bo", Role: "agent", Password: goodPassword, Email: "Bo <bo@example.com>"}, "email"},
		{NewUser{Username: "bo", Role: "agent", Password: goodPassword, DisplayName: strings.Repeat("x", 101)}, "name"},
		{NewUser{Username: "bo", Role: "agent", Password: goodPassword, Teams: []int64{99}}, "teams"},
		{NewUser{Username: "bo", Role: "agent", Password: goodPassword, TimeZone: "Mars/Olympus"}, "time_zone"},
	}
	for _, tc := range tests {
		_, err := users.Create(ctx, "admin", tc.in)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Fields[tc.field] == "" {
			t.Errorf("Create(%+v) = %v, want a field error on %s", tc.in, err, tc.field)
		}
	}
	team, err := st.CreateTeam(ctx, "Billing")
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, "admin", NewUser{Username: "bo.b@x", DisplayName: "Bo B", Email: "bo@example.com",
		Role: "supervisor", Password: goodPassword, Teams: []int64{team.ID}, TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Bo B" || u.Email != "bo@example.com" || len(u.Teams) != 1 || u.TimeZone != "Europe/Berlin" {
		t.Errorf("created %+v", u)
	}
	if ev, _ := st.ListAuditFor(ctx, "user:"+itoa(u.ID), 5); len(ev) != 1 || ev[0].Action != "user.create" || strings.Contains(ev[0].New, goodPassword) {
		t.Errorf("audit: %+v", ev)
	}
}

func TestLastAdminAndSelf(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	users := NewUsers(st, nil)
	admin, err := s.EnsureUser(ctx, "admin", "Admin", store.RoleAdmin, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	agent := store.RoleAgent
	if _, err := users.Update(ctx, admin, admin.ID, UserChange{Role: &agent}); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("demote the last admin: %v, want ErrLastAdmin", err)
	}
	yes := true
	if _, err := users.Update(ctx, store.User{Username: "cli"}, admin.ID, UserChange{Disabled: &yes}); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("disable the last admin: %v, want ErrLastAdmin", err)
	}
	if err := users.Delete(ctx, store.User{Username: "cli"}, admin.ID); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("delete the last admin: %v, want ErrLastAdmin", err)
	}
	if err := users.Delete(ctx, admin, admin.ID); !errors.Is(err, ErrSelf) {
		t.Errorf("delete yourself: %v, want ErrSelf", err)
	}
	if u, err := st.UserByID(ctx, admin.ID); err != nil || u.Role != store.RoleAdmin || u.Disabled {
		t.Errorf("admin after refusals: %+v %v", u, err)
	}
}

func TestPasswords(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	users := NewUsers(st, nil)
	ana, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	var ve *ValidationError
	if err := users.ChangeOwnPassword(ctx, ana, "wrong one", "another good password"); !errors.As(err, &ve) || ve.Fields["current"] == "" {
		t.Errorf("wrong current password: %v", err)
	}
	if err := users.ChangeOwnPassword(ctx, ana, goodPassword, "short"); !errors.As(err, &ve) || ve.Fields["password"] == "" {
		t.Errorf("short new password: %v", err)
	}
	if err := users.ChangeOwnPassword(ctx, ana, goodPassword, "another good password"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Login(ctx, "ana", "another good password"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if err := users.SetPassword(ctx, "admin", ana.ID, "reset by the admin 1"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Login(ctx, "ana", "reset by the admin 1"); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
	ev, err := st.ListAuditFor(ctx, "user:"+itoa(ana.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ev {
		if e.Action == "user.password" {
			n++
		}
		if strings.Contains(e.Old+e.New, "another good password") || strings.Contains(e.Old+e.New, "reset by the admin") {
			t.Errorf("audit holds a password: %+v", e)
		}
	}
	if n != 2 {
		t.Errorf("user.password events: %d, want 2", n)
	}
}

func cookie(token string) *http.Cookie { return &http.Cookie{Name: SessionCookie, Value: token} }

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
