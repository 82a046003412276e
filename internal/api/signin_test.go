package api

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/postroom/postroom/internal/vault"
)

// TestSignInThrottled: the acceptance script's flood: 30 wrong passwords in a row for one
// user get a 429 with Retry-After within those 30; then even the right password is refused
// with 429 (before bcrypt); an unknown user name is throttled the same way; an admin unlocks
// the user and the right password works again; every failure is audited with the address.
func TestSignInThrottled(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	flood := func(user string) int {
		for i := 1; i <= 30; i++ {
			resp := c.postJSON("/api/v1/session", fmt.Sprintf(`{"user":%q,"password":"wrong-%d"}`, user, i))
			switch resp.status {
			case http.StatusUnauthorized:
				continue
			case http.StatusTooManyRequests:
				secs, err := strconv.Atoi(resp.header.Get("Retry-After"))
				if err != nil || secs < 1 {
					t.Fatalf("%s: 429 with Retry-After %q", user, resp.header.Get("Retry-After"))
				}
				if msg := resp.json(t)["error"].(string); !strings.Contains(msg, "try again in") {
					t.Errorf("429 says %q", msg)
				}
				return i
			default:
				t.Fatalf("%s: attempt %d: %d %s", user, i, resp.status, resp.body)
			}
		}
		t.Fatalf("%s: 30 wrong passwords, no 429", user)
		return 0
	}
	// 5 free failures, then 1 s, 2 s, 4 s: the 7th attempt is refused unless the 6th took
	// over a second (a loaded machine); by the 10th the wait is 8 s.
	if n := flood("ana"); n < 7 || n > 10 {
		t.Errorf("the 429 came at attempt %d, want the 7th to 10th", n)
	}
	if n := flood("nobody"); n < 7 || n > 10 {
		t.Errorf("unknown user: the 429 came at attempt %d, want the same as for a real user", n)
	}
	// A refusal is held until the lock's end or 1 s: go on until the lock is longer than
	// that, then even the right password is refused.
	for i := 0; ; i++ {
		resp := c.postJSON("/api/v1/session", `{"user":"ana","password":"wrong-again"}`)
		if secs, _ := strconv.Atoi(resp.header.Get("Retry-After")); resp.status == http.StatusTooManyRequests && secs >= 2 {
			break
		}
		if i == 30 {
			t.Fatalf("the lock never grew: %d %s", resp.status, resp.body)
		}
	}
	resp := c.postJSON("/api/v1/session", fmt.Sprintf(`{"user":"ana","password":%q}`, testPassword))
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") == "" {
		t.Fatalf("the right password while locked: %d %s", resp.status, resp.body)
	}

	anaID := userID(t, f, "ana")
	// Only admins unlock.
	sam := f.signedIn(t, "sam")
	if resp := sam.postJSON(fmt.Sprintf("/api/v1/users/%d/unlock", anaID), ""); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor unlocks: %d", resp.status)
	}
	admin := f.signedIn(t, "admin")
	state := admin.get(fmt.Sprintf("/api/v1/users/%d/signin", anaID)).json(t)
	if state["failed_signins"].(float64) < 6 {
		t.Errorf("sign-in state while locked: %v", state)
	}
	resp = admin.postJSON(fmt.Sprintf("/api/v1/users/%d/unlock", anaID), "")
	if resp.status != http.StatusOK {
		t.Fatalf("unlock: %d %s", resp.status, resp.body)
	}
	if got := resp.json(t); got["failed_signins"].(float64) != 0 || got["locked_until"] != nil {
		t.Errorf("after unlock: %v", got)
	}
	if resp := admin.postJSON("/api/v1/users/9999/unlock", ""); resp.status != http.StatusNotFound {
		t.Errorf("unlock of an unknown user: %d", resp.status)
	}
	f.signedIn(t, "ana")

	events, err := f.st.ListAudit(t.Context(), 500)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Action+" "+e.Object+" "+strings.Fields(e.New + " x")[0]] = true
		if e.Action == "login.failure" && !strings.Contains(e.New, "reason=") {
			t.Errorf("failure without a reason: %+v", e)
		}
	}
	for _, want := range []string{"login.failure user:ana address=127.0.0.1", "login.failure user:nobody address=127.0.0.1",
		"login.success user:ana address=127.0.0.1", "user.unlock " + fmt.Sprintf("user:%d", anaID) + " failures=0"} {
		if !seen[want] {
			t.Errorf("no audit event %q", want)
		}
	}
}

func userID(t *testing.T, f *fixture, name string) int64 {
	t.Helper()
	u, err := f.st.UserByUsername(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestSignInSecondFactor: a user with a second factor gets 401 "second factor required"
// without a code, signs in with one, cannot use it twice; an admin removes the factor.
func TestSignInSecondFactor(t *testing.T) {
	f := newFixture(t)
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	f.auth.UseVault(v)
	ana, err := f.st.UserByUsername(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	en, err := f.auth.StartSecondFactor(t.Context(), ana)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(en.Secret, time.Now().Add(-30*time.Second))
	if err := f.auth.ConfirmSecondFactor(t.Context(), ana, code); err != nil {
		t.Fatal(err)
	}
	c := f.client(t)
	resp := c.postJSON("/api/v1/session", fmt.Sprintf(`{"user":"ana","password":%q}`, testPassword))
	if resp.status != http.StatusUnauthorized || !strings.Contains(string(resp.body), "second factor required") {
		t.Fatalf("without a code: %d %s", resp.status, resp.body)
	}
	now, _ := totp.GenerateCode(en.Secret, time.Now())
	resp = c.postJSON("/api/v1/session", fmt.Sprintf(`{"user":"ana","password":%q,"code":%q}`, testPassword, now))
	if resp.status != http.StatusOK {
		t.Fatalf("with the code: %d %s", resp.status, resp.body)
	}
	resp = f.client(t).postJSON("/api/v1/session", fmt.Sprintf(`{"user":"ana","password":%q,"code":%q}`, testPassword, now))
	if resp.status != http.StatusUnauthorized || !strings.Contains(string(resp.body), "second factor code") {
		t.Fatalf("the same code again: %d %s", resp.status, resp.body)
	}
	admin := f.signedIn(t, "admin")
	if state := admin.get(fmt.Sprintf("/api/v1/users/%d/signin", ana.ID)).json(t); state["second_factor"] != true {
		t.Errorf("state: %v", state)
	}
	if resp := admin.do("DELETE", fmt.Sprintf("/api/v1/users/%d/second-factor", ana.ID), "", ""); resp.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", resp.status, resp.body)
	}
	if resp := admin.do("DELETE", fmt.Sprintf("/api/v1/users/%d/second-factor", ana.ID), "", ""); resp.status != http.StatusNotFound {
		t.Errorf("remove again: %d %s", resp.status, resp.body)
	}
	f.signedIn(t, "ana")
	events, _ := f.st.ListAuditFor(t.Context(), fmt.Sprintf("user:%d", ana.ID), 20)
	found := false
	for _, e := range events {
		found = found || e.Action == "user.second_factor.remove" && e.Actor == "admin"
	}
	if !found {
		t.Errorf("the removal is not audited: %+v", events)
	}
}
