package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func TestValidatePassword(t *testing.T) {
	refused := map[string]string{
		"":                          "enter a password",
		"short-pw":                  "at least 12",
		strings.Repeat("é", 37):     "at most 72 bytes",
		"winniethepooh":             "attackers try", // on John the Ripper's list as it is
		"Password2024!":             "attackers try", // "password" with digits and symbols around
		"!!Sunshine123456":          "attackers try",
		"monkeymonkey":              "attackers try",
		"abcabcabcabc":              "attackers try",
		"zzzzzzzzzzzz":              "attackers try",
		"123456789012":              "attackers try",
		"abcdefghijklmn":            "attackers try",
		"qwertyuiopasdf":            "attackers try",
		"CorrectHorseBatteryStaple": "attackers try",
		"margaret.jones":            "user name", // the user name itself
		"Margaret.Jones2025":        "user name",
		"\xff\xfe-not-utf8-at-all":  "UTF-8",
	}
	for pw, want := range refused {
		got := ValidatePassword(pw, "margaret.jones")
		if !strings.Contains(got, want) {
			t.Errorf("ValidatePassword(%q) = %q, want it to say %q", pw, got, want)
		}
	}
	for _, pw := range []string{"tangerine lamp orbit", "Kx7#pQ2!vLm9", "my cat eats cold rice", "9183-4471-2290"} {
		if got := ValidatePassword(pw, "margaret.jones"); got != "" {
			t.Errorf("ValidatePassword(%q) = %q, want it accepted", pw, got)
		}
	}
	if n := len(commonPasswords()); n < 3400 {
		t.Errorf("the common password list has %d entries, want the whole embedded list", n)
	}
}

// TestCreateUserPolicy: Service.CreateUser (POSTROOM_ADMIN_PASSWORD, EnsureUser) applies the
// policy; only EnsureSampleUser (the demo) bypasses it.
func TestCreateUserPolicy(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "admin", "", store.RoleAdmin, "password1234"); err == nil || !strings.Contains(err.Error(), "attackers try") {
		t.Errorf("CreateUser with a common password: %v", err)
	}
	if _, err := s.EnsureUser(ctx, "agent", "", store.RoleAgent, "demo"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("EnsureUser with a short password: %v", err)
	}
	if _, err := s.EnsureSampleUser(ctx, "agent", "", store.RoleAgent, "demo"); err != nil {
		t.Fatalf("EnsureSampleUser: %v", err)
	}
	if _, _, _, err := s.Login(ctx, "agent", "demo"); err != nil {
		t.Errorf("the sample user cannot sign in: %v", err)
	}
}
