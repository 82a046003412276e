package web

import (
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/postroom/postroom/internal/vault"
)

// TestLoginThrottled: wrong passwords on the sign-in page lead to a 429 page that says
// when to try again (with Retry-After), for the right password too; the admin's user page
// shows the lock and its Unlock button, after which the user signs in.
func TestLoginThrottled(t *testing.T) {
	f := newFixture(t)
	c := f.httpClient(t)
	var locked webPage
	for i := 1; i <= 30 && locked.status == 0; i++ {
		login := c.get("/login")
		resp := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {fmt.Sprintf("wrong-%d", i)}})
		switch resp.status {
		case http.StatusUnauthorized:
			if !strings.Contains(resp.body, "Wrong user name or password.") {
				t.Fatalf("attempt %d: %s", i, resp.body)
			}
		case http.StatusTooManyRequests:
			locked = resp
		default:
			t.Fatalf("attempt %d: %d", i, resp.status)
		}
	}
	if locked.status != http.StatusTooManyRequests {
		t.Fatal("30 wrong passwords and no 429 page")
	}
	if secs, err := strconv.Atoi(locked.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q", locked.header.Get("Retry-After"))
	}
	if !regexp.MustCompile(`Too many failed sign-ins .* Try again in \d+ seconds? \(at \d\d:\d\d:\d\d UTC\)`).MatchString(html.UnescapeString(locked.body)) {
		t.Errorf("the 429 page does not say when to try again:\n%s", locked.body)
	}
	// A refusal is held until the lock's end or 1 s: go on until the lock is longer than
	// that, then even the right password is refused.
	for i := 0; ; i++ {
		login := c.get("/login")
		resp := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {"wrong-again"}})
		if secs, _ := strconv.Atoi(resp.header.Get("Retry-After")); resp.status == http.StatusTooManyRequests && secs >= 2 {
			break
		}
		if i == 30 {
			t.Fatalf("the lock never grew: %d", resp.status)
		}
	}
	login := c.get("/login")
	if resp := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {testPassword}}); resp.status != http.StatusTooManyRequests {
		t.Fatalf("the right password while locked: %d", resp.status)
	}

	admin := f.signIn(t, "admin")
	ana, _ := f.st.UserByUsername(t.Context(), "ana")
	page := admin.get(fmt.Sprintf("/users/%d", ana.ID))
	if !strings.Contains(page.body, "failed sign-ins") || !strings.Contains(page.body, `id="unlock-user"`) {
		t.Fatalf("the user page shows no lock or no Unlock button:\n%s", page.body)
	}
	resp := admin.post(fmt.Sprintf("/users/%d/unlock", ana.ID), url.Values{"csrf": {page.csrf(t)}})
	if resp.status != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "notice=unlocked") {
		t.Fatalf("unlock: %d %s", resp.status, resp.header.Get("Location"))
	}
	if page := admin.get(fmt.Sprintf("/users/%d", ana.ID)); !strings.Contains(page.body, "No failed sign-ins lately") {
		t.Errorf("after unlock the page says:\n%s", page.body)
	}
	f.signIn(t, "ana")
	// Only admins unlock.
	sam := f.signIn(t, "sam")
	home := sam.get("/account")
	if resp := sam.post(fmt.Sprintf("/users/%d/unlock", ana.ID), url.Values{"csrf": {home.csrf(t)}}); resp.status != http.StatusForbidden {
		t.Errorf("a supervisor unlocks: %d", resp.status)
	}
}

var (
	secretText = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	ticketText = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// TestLoginSecondFactor: a user sets up a second factor on their Account page (the secret
// and otpauth:// URI shown once, active only after a code), then the sign-in page asks for
// the code after the password; a wrong code is refused; the right one signs in; an admin
// removes the factor.
func TestLoginSecondFactor(t *testing.T) {
	f := newFixture(t)
	key := make([]byte, vault.KeySize)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	f.auth.UseVault(v)

	ana := f.signIn(t, "ana")
	account := ana.get("/account")
	if !strings.Contains(account.body, `id="start-second-factor"`) {
		t.Fatalf("no set-up button on the Account page:\n%s", account.body)
	}
	setup := ana.post("/account/second-factor", url.Values{"csrf": {account.csrf(t)}})
	m := secretText.FindStringSubmatch(setup.body)
	if setup.status != http.StatusOK || m == nil || !strings.Contains(html.UnescapeString(setup.body), "otpauth://totp/postroom:ana?") {
		t.Fatalf("set-up page %d:\n%s", setup.status, setup.body)
	}
	secret := m[1]
	if resp := ana.post("/account/second-factor/confirm", url.Values{"csrf": {setup.csrf(t)}, "code": {"12345"}}); resp.status != http.StatusBadRequest || strings.Contains(resp.body, secret) {
		t.Fatalf("a wrong first code: %d (the secret must not be shown again)", resp.status)
	}
	code, _ := totp.GenerateCode(secret, time.Now().Add(-30*time.Second))
	if resp := ana.post("/account/second-factor/confirm", url.Values{"csrf": {setup.csrf(t)}, "code": {code}}); resp.status != http.StatusSeeOther {
		t.Fatalf("confirm: %d\n%s", resp.status, resp.body)
	}
	if page := ana.get("/account"); !strings.Contains(page.body, "On: sign-in asks for a code") || strings.Contains(page.body, secret) {
		t.Errorf("the Account page after set-up:\n%s", page.body)
	}

	c := f.httpClient(t)
	login := c.get("/login")
	step2 := c.post("/login", url.Values{"csrf": {login.csrf(t)}, "user": {"ana"}, "password": {testPassword}, "next": {"/account"}})
	tm := ticketText.FindStringSubmatch(step2.body)
	if step2.status != http.StatusOK || tm == nil || !strings.Contains(step2.body, `id="code"`) {
		t.Fatalf("the password alone: %d, want the second step\n%s", step2.status, step2.body)
	}
	wrong := c.post("/login", url.Values{"csrf": {step2.csrf(t)}, "ticket": {tm[1]}, "code": {"000000"}, "user": {"ana"}, "next": {"/account"}})
	if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, "Wrong code") {
		t.Fatalf("a wrong code: %d\n%s", wrong.status, wrong.body)
	}
	now, _ := totp.GenerateCode(secret, time.Now())
	ok := c.post("/login", url.Values{"csrf": {wrong.csrf(t)}, "ticket": {tm[1]}, "code": {now}, "user": {"ana"}, "next": {"/account"}})
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != "/account" {
		t.Fatalf("the right code: %d %s\n%s", ok.status, ok.header.Get("Location"), ok.body)
	}
	if page := c.get("/account"); page.status != http.StatusOK {
		t.Fatalf("signed in with the code, the Account page answers %d", page.status)
	}

	admin := f.signIn(t, "admin")
	u, _ := f.st.UserByUsername(t.Context(), "ana")
	page := admin.get(fmt.Sprintf("/users/%d", u.ID))
	if !strings.Contains(page.body, "Second factor: on") {
		t.Fatalf("the admin's user page:\n%s", page.body)
	}
	if resp := admin.post(fmt.Sprintf("/users/%d/second-factor/remove", u.ID), url.Values{"csrf": {page.csrf(t)}}); resp.status != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.status)
	}
	f.signIn(t, "ana") // the password alone again
}
