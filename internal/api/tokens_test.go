package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/auth"
)

// createdToken is what POST /api/v1/tokens answers, the one time the token is shown.
type createdToken struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

func createToken(t *testing.T, admin *client, name string) createdToken {
	t.Helper()
	resp := admin.postJSON("/api/v1/tokens", fmt.Sprintf(`{"name": %q}`, name))
	if resp.status != http.StatusCreated {
		t.Fatalf("create token %q: %d %s", name, resp.status, resp.body)
	}
	var ct createdToken
	if err := json.Unmarshal(resp.body, &ct); err != nil || ct.ID == 0 || !strings.HasPrefix(ct.Token, auth.APITokenPrefix) {
		t.Fatalf("create token %q: %s (%v)", name, resp.body, err)
	}
	return ct
}

// meStatus is the status of GET /api/v1/me with the bearer token.
func (f *fixture) meStatus(t *testing.T, token string) int {
	t.Helper()
	c := f.client(t)
	c.bearer = token
	return c.get("/api/v1/me").status
}

func TestTokensListAndRevoke(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	nightly := createToken(t, admin, "nightly report")
	backup := createToken(t, admin, "backup")

	// The list names both tokens, newest first, and shows neither token nor hash.
	resp := admin.get("/api/v1/tokens")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /api/v1/tokens: %d %s", resp.status, resp.body)
	}
	for _, tok := range []createdToken{nightly, backup} {
		for _, secret := range []string{tok.Token, strings.TrimPrefix(tok.Token, auth.APITokenPrefix), auth.HashToken(tok.Token)} {
			if strings.Contains(string(resp.body), secret) {
				t.Errorf("the token list shows the token or its hash %q: %s", secret, resp.body)
			}
		}
	}
	var list struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(resp.body, &list); err != nil {
		t.Fatalf("token list: %v: %s", err, resp.body)
	}
	var names []string
	for _, tok := range list.Tokens {
		names = append(names, fmt.Sprint(tok["name"]))
		if tok["user"] != "admin" {
			t.Errorf("token %v: user = %v, want admin", tok["name"], tok["user"])
		}
		if s, _ := tok["created_at"].(string); s == "" {
			t.Errorf("token %v has no created_at", tok["name"])
		}
		keys := make([]string, 0, len(tok))
		for k := range tok {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"created_at", "expires_at", "id", "last_used_at", "name", "scopes", "user"}; !slices.Equal(keys, want) {
			t.Errorf("token %v has the fields %v, want %v", tok["name"], keys, want)
		}
	}
	if want := []string{"backup", "nightly report"}; !slices.Equal(names, want) {
		t.Fatalf("token list names = %v, want %v (newest first)", names, want)
	}
	if id, _ := list.Tokens[1]["id"].(float64); int64(id) != nightly.ID {
		t.Errorf("token %q listed with id %v, created as %d", "nightly report", list.Tokens[1]["id"], nightly.ID)
	}

	for _, tok := range []createdToken{nightly, backup} {
		if got := f.meStatus(t, tok.Token); got != http.StatusOK {
			t.Fatalf("GET /me with token %q before revocation: %d, want 200", tok.Name, got)
		}
	}

	// Revoking one refuses it from the next request on; the other keeps working.
	if resp := admin.del(fmt.Sprintf("/api/v1/tokens/%d", nightly.ID)); resp.status != http.StatusNoContent {
		t.Fatalf("revoke %q: %d %s, want 204", nightly.Name, resp.status, resp.body)
	}
	if got := f.meStatus(t, nightly.Token); got != http.StatusUnauthorized {
		t.Errorf("GET /me with the revoked token: %d, want 401", got)
	}
	if got := f.meStatus(t, backup.Token); got != http.StatusOK {
		t.Errorf("GET /me with the other token: %d, want 200", got)
	}
	after := admin.get("/api/v1/tokens")
	if err := json.Unmarshal(after.body, &list); err != nil || len(list.Tokens) != 1 || list.Tokens[0]["name"] != "backup" {
		t.Errorf("token list after revoking %q: %d %s", nightly.Name, after.status, after.body)
	}

	// The audit log says who created and who revoked which token, without the token.
	events, err := f.st.ListAuditFor(t.Context(), fmt.Sprintf("token:%d", nightly.ID), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Actor != "admin" || events[0].Action != "token.delete" || !strings.Contains(events[0].Old, "nightly report") ||
		events[1].Actor != "admin" || events[1].Action != "token.create" || !strings.Contains(events[1].New, "nightly report") {
		t.Errorf("audit of the token = %+v, want token.create then token.delete by admin naming %q", events, nightly.Name)
	}
	for _, e := range events {
		if strings.Contains(e.Old+e.New, nightly.Token) || strings.Contains(e.Old+e.New, auth.HashToken(nightly.Token)) {
			t.Errorf("audit event shows the token or its hash: %+v", e)
		}
	}

	// Revoked already, unknown, or not an id: 404 that says so.
	for _, path := range []string{
		fmt.Sprintf("/api/v1/tokens/%d", nightly.ID),
		fmt.Sprintf("/api/v1/tokens/%d", backup.ID+1000),
		"/api/v1/tokens/abc",
	} {
		resp := admin.del(path)
		if resp.status != http.StatusNotFound {
			t.Errorf("DELETE %s: %d %s, want 404", path, resp.status, resp.body)
			continue
		}
		if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "API token") || !strings.Contains(msg, "not found") {
			t.Errorf("DELETE %s: error %q does not say that the API token is not found", path, msg)
		}
	}
	if got := f.meStatus(t, backup.Token); got != http.StatusOK {
		t.Errorf("GET /me with the remaining token after the 404s: %d, want 200", got)
	}

	// A script with an admin's token may revoke too, even the token it is using.
	script := f.client(t)
	script.bearer = backup.Token
	if resp := script.del(fmt.Sprintf("/api/v1/tokens/%d", backup.ID)); resp.status != http.StatusNoContent {
		t.Errorf("revoke with the token itself: %d %s, want 204", resp.status, resp.body)
	}
	if got := f.meStatus(t, backup.Token); got != http.StatusUnauthorized {
		t.Errorf("GET /me with the self-revoked token: %d, want 401", got)
	}
}

func TestTokensOfOthersNeedAdmin(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn(t, "admin")
	tok := createToken(t, admin, "nightly report")
	path := fmt.Sprintf("/api/v1/tokens/%d", tok.ID)
	for _, user := range []string{"ana", "sam"} {
		c := f.signedIn(t, user)
		// Each lists their own tokens only: none yet.
		resp := c.get("/api/v1/tokens")
		if resp.status != http.StatusOK || strings.Contains(string(resp.body), "nightly report") {
			t.Errorf("%s lists the tokens: %d %s, want 200 without the admin's token", user, resp.status, resp.body)
		}
		if resp := c.get("/api/v1/tokens?all=1"); resp.status != http.StatusForbidden {
			t.Errorf("%s lists everyone's tokens: %d %s, want 403", user, resp.status, resp.body)
		} else if msg, _ := resp.json(t)["error"].(string); !strings.Contains(msg, "admin") {
			t.Errorf("%s's 403 %q does not say that an admin is needed", user, msg)
		}
		// Another's token is not found to them.
		if resp := c.del(path); resp.status != http.StatusNotFound {
			t.Errorf("%s revokes the admin's token: %d %s, want 404", user, resp.status, resp.body)
		}
	}
	if got := f.meStatus(t, tok.Token); got != http.StatusOK {
		t.Errorf("GET /me with the token after the refused revocations: %d, want 200", got)
	}
	// The admin lists everyone's and revokes an agent's.
	ana := f.signedIn(t, "ana")
	anaTok := createToken(t, ana, "ana's script")
	resp := admin.get("/api/v1/tokens?all=1")
	if resp.status != http.StatusOK || !strings.Contains(string(resp.body), "ana's script") || !strings.Contains(string(resp.body), "nightly report") {
		t.Errorf("admin lists all tokens: %d %s, want both", resp.status, resp.body)
	}
	if resp := admin.get("/api/v1/tokens"); strings.Contains(string(resp.body), "ana's script") {
		t.Errorf("admin's own list shows ana's token: %s", resp.body)
	}
	if resp := admin.del(fmt.Sprintf("/api/v1/tokens/%d", anaTok.ID)); resp.status != http.StatusNoContent {
		t.Errorf("admin revokes ana's token: %d %s, want 204", resp.status, resp.body)
	}
	if got := f.meStatus(t, anaTok.Token); got != http.StatusUnauthorized {
		t.Errorf("ana's revoked token: %d, want 401", got)
	}
	// Without sign-in: 401.
	if resp := f.client(t).get("/api/v1/tokens"); resp.status != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/tokens signed out: %d, want 401", resp.status)
	}
}
