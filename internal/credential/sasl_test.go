package credential_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/credential"
)

func TestPickOAuthMechanism(t *testing.T) {
	tests := []struct {
		offered []string
		want    string
	}{
		{[]string{"PLAIN", "OAUTHBEARER", "XOAUTH2"}, credential.MechXOAUTH2},
		{[]string{"plain", "xoauth2"}, credential.MechXOAUTH2},
		{[]string{"PLAIN", "OAUTHBEARER"}, credential.MechOAUTHBEARER},
		{[]string{"PLAIN", "LOGIN"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := credential.PickOAuthMechanism(tt.offered); got != tt.want {
			t.Errorf("PickOAuthMechanism(%q) = %q, want %q", tt.offered, got, tt.want)
		}
	}
}

// TestOAuthClients: the initial responses of testmail.md §4, and a refusal challenge
// turned into an error that names the status and not the token.
func TestOAuthClients(t *testing.T) {
	const user, token = "alice@example.test", "tok-123"
	mech, ir, err := credential.NewOAuthClient("XOAUTH2", user, token, "127.0.0.1", 10143).Start()
	if err != nil || mech != "XOAUTH2" || string(ir) != "user=alice@example.test\x01auth=Bearer tok-123\x01\x01" {
		t.Errorf("XOAUTH2 start: %q %q %v", mech, ir, err)
	}
	bearer := credential.NewOAuthClient("OAUTHBEARER", user, token, "127.0.0.1", 10143)
	mech, ir, err = bearer.Start()
	if err != nil || mech != "OAUTHBEARER" || string(ir) != "n,a=alice@example.test,\x01host=127.0.0.1\x01port=10143\x01auth=Bearer tok-123\x01\x01" {
		t.Errorf("OAUTHBEARER start: %q %q %v", mech, ir, err)
	}
	_, err = bearer.Next([]byte(`{"status":"401","schemes":"bearer","scope":"mail"}`))
	var ce *credential.ChallengeError
	if !errors.As(err, &ce) || ce.Status != "401" || ce.Scope != "mail" {
		t.Fatalf("challenge: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "refused the OAUTHBEARER token (status 401") || strings.Contains(msg, token) {
		t.Errorf("challenge error text %q", msg)
	}
	if _, _, err := credential.NewOAuthClient("XOAUTH2", "a\x01b", token, "", 0).Start(); err == nil {
		t.Error("a user name with ^A was accepted")
	}
}
