package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

func newClockedService(t *testing.T) (*Service, store.Store, *clock) {
	s, st := newTestService(t)
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s.now = c.now
	s.guard.tarpit = 0 // the clock is not the real one
	return s, st, c
}

func TestThrottleRule(t *testing.T) {
	want := map[int]time.Duration{1: 0, 5: 0, 6: time.Second, 7: 2 * time.Second, 8: 4 * time.Second, 15: 512 * time.Second, 16: 15 * time.Minute, 60: 15 * time.Minute}
	for n, d := range want {
		if got := AccountRule.LockFor(n); got != d {
			t.Errorf("AccountRule.LockFor(%d) = %s, want %s", n, got, d)
		}
	}
	if AddressRule.LockFor(100) != 0 || AddressRule.LockFor(101) != time.Second {
		t.Errorf("AddressRule: 100 free failures, then 1 s")
	}
}

// TestSignInThrottlesAccount: after 5 wrong passwords the account is refused, before any
// bcrypt, with a growing wait; the right password is refused too while locked; the lock
// survives a new Service on the same store (a restart); an unknown name is throttled the
// same way; a success forgets the failures; an admin unlocks.
func TestSignInThrottlesAccount(t *testing.T) {
	s, st, c := newClockedService(t)
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "a long passphrase for ana")
	if err != nil {
		t.Fatal(err)
	}
	try := func(s *Service, user, pw, addr string) error {
		_, _, _, err := s.SignIn(ctx, Attempt{User: user, Password: pw, Address: addr})
		return err
	}
	for _, name := range []string{"ana", "nobody-here"} {
		for i := 1; i <= 6; i++ {
			if err := try(s, name, fmt.Sprintf("wrong-%d", i), "192.0.2.7"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("%s: attempt %d: %v, want ErrBadCredentials", name, i, err)
			}
		}
		err := try(s, name, "a long passphrase for ana", "192.0.2.8")
		var te *ThrottledError
		if !errors.As(err, &te) || !errors.Is(err, ErrThrottled) || te.Seconds() != 1 {
			t.Fatalf("%s: attempt 7 at once: %v, want throttled for 1 s", name, err)
		}
	}
	// A restart (a new Service on the same store) does not forgive.
	s2 := NewService(st, nil)
	s2.now = c.now
	s2.guard.tarpit = 0
	if err := try(s2, "ana", "a long passphrase for ana", "192.0.2.8"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after a restart: %v, want throttled", err)
	}
	c.advance(1100 * time.Millisecond)
	if err := try(s, "ana", "wrong-7", "192.0.2.7"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the wait: %v, want ErrBadCredentials", err)
	}
	err = try(s, "ana", "wrong-8", "192.0.2.7")
	var te *ThrottledError
	if !errors.As(err, &te) || te.Seconds() != 2 {
		t.Fatalf("after the 7th failure: %v, want throttled for 2 s", err)
	}
	lock, err := s.SignInLock(ctx, u)
	if err != nil || lock.Failures != 7 {
		t.Fatalf("SignInLock = %+v, %v; want 7 failures", lock, err)
	}
	if _, err := s.Unlock(ctx, "boss", u.ID); err != nil {
		t.Fatal(err)
	}
	if err := try(s, "ana", "a long passphrase for ana", "192.0.2.7"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// The success forgot the count: 5 free failures again.
	for i := 1; i <= 5; i++ {
		if err := try(s, "ana", "wrong", "192.0.2.9"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("after a success, failure %d: %v", i, err)
		}
	}
	events, err := st.ListAudit(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e.Action+" "+e.Object+" "+e.New]++
	}
	for _, want := range []string{
		"login.failure user:ana address=192.0.2.7 method=password reason=bad_credentials",
		"login.failure user:nobody-here address=192.0.2.7 method=password reason=bad_credentials",
		"login.failure user:ana address=192.0.2.8 method=password reason=throttled retry_after=1",
		"login.success user:ana address=192.0.2.7 method=password",
		"user.unlock user:" + fmt.Sprint(u.ID) + " failures=0",
	} {
		if count[want] == 0 {
			t.Errorf("no audit event %q in %v", want, count)
		}
	}
}

// TestSignInThrottlesAddress: one address failing on many accounts is refused after its
// budget, for every account (and other addresses are not).
func TestSignInThrottlesAddress(t *testing.T) {
	s, _, _ := newClockedService(t)
	s.guard.address.Free = 10
	ctx := context.Background()
	if _, err := s.EnsureUser(ctx, "ben", "Ben", store.RoleAgent, "a long passphrase for ben"); err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		_, _, _, err := s.SignIn(ctx, Attempt{User: fmt.Sprintf("user%d", i), Password: "x", Address: "198.51.100.4"})
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, _, err := s.SignIn(ctx, Attempt{User: "ben", Password: "a long passphrase for ben", Address: "198.51.100.4"})
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("from the flooding address: %v, want throttled", err)
	}
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "ben", Password: "a long passphrase for ben", Address: "198.51.100.5"}); err != nil {
		t.Fatalf("from another address: %v", err)
	}
}

func TestClientAddress(t *testing.T) {
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "10.0.0.2:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.3")
	if got := clientAddress(r, nil); got != "10.0.0.2" {
		t.Errorf("no trusted proxy: %q, want the connection's address", got)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if got := clientAddress(r, proxies); got != "203.0.113.9" {
		t.Errorf("trusted proxies: %q, want 203.0.113.9", got)
	}
	r.RemoteAddr = "192.0.2.1:5555" // not a proxy: its header is the client's own invention
	if got := clientAddress(r, proxies); got != "192.0.2.1" {
		t.Errorf("untrusted peer: %q", got)
	}
	r.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:443"
	if got := addressKey(clientAddress(r, nil)); got != "address:2001:db8:1:2::/64" {
		t.Errorf("IPv6 key %q, want its /64", got)
	}
}

// TestSecondFactor: enrol, confirm, then sign-in needs the code; a code works once; a
// wrong code counts as a failure; the ticket carries the page's second step; an admin
// removes the factor.
func TestSecondFactor(t *testing.T) {
	s, st, c := newClockedService(t)
	key := make([]byte, 32)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	s.UseVault(v)
	ctx := context.Background()
	const pw = "a long passphrase for cy"
	u, err := s.EnsureUser(ctx, "cy", "Cy", store.RoleAgent, pw)
	if err != nil {
		t.Fatal(err)
	}
	en, err := s.StartSecondFactor(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(en.URI, "otpauth://totp/postroom:cy?") || !strings.Contains(en.URI, "secret="+en.Secret) {
		t.Errorf("URI %q", en.URI)
	}
	f, _ := st.SecondFactor(ctx, u.ID)
	if strings.Contains(string(f.Secret), en.Secret) {
		t.Fatal("the secret is stored in the clear")
	}
	// Not active before confirmation.
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Address: "192.0.2.1"}); err != nil {
		t.Fatalf("before confirmation: %v", err)
	}
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(en.Secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := s.ConfirmSecondFactor(ctx, u, "000000"); !errors.Is(err, ErrBadSecondFactor) && code(c.t) != "000000" {
		t.Fatalf("confirm with a wrong code: %v", err)
	}
	if err := s.ConfirmSecondFactor(ctx, u, code(c.t)); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if _, err := s.StartSecondFactor(ctx, u); !errors.Is(err, ErrSecondFactorActive) {
		t.Errorf("enrolling over an active factor: %v", err)
	}
	c.advance(30 * time.Second)
	_, _, _, err = s.SignIn(ctx, Attempt{User: "cy", Password: pw, Address: "192.0.2.1"})
	var sf *SecondFactorError
	if !errors.As(err, &sf) || !errors.Is(err, ErrSecondFactorRequired) || sf.Ticket == "" {
		t.Fatalf("without a code: %v, want second factor required with a ticket", err)
	}
	// The page's second step: the ticket and the code.
	if _, _, got, err := s.SignIn(ctx, Attempt{Ticket: sf.Ticket, Code: code(c.t), Address: "192.0.2.1"}); err != nil || got.ID != u.ID {
		t.Fatalf("ticket and code: %v", err)
	}
	// The same code again (same step): refused, counted.
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Code: code(c.t), Address: "192.0.2.1"}); !errors.Is(err, ErrBadSecondFactor) {
		t.Fatalf("a used code: %v, want ErrBadSecondFactor", err)
	}
	// A forged or stale ticket.
	if _, _, _, err := s.SignIn(ctx, Attempt{Ticket: sf.Ticket + "x", Code: "123456"}); !errors.Is(err, ErrTicket) {
		t.Errorf("forged ticket: %v", err)
	}
	c.advance(10 * time.Minute)
	if _, _, _, err := s.SignIn(ctx, Attempt{Ticket: sf.Ticket, Code: code(c.t)}); !errors.Is(err, ErrTicket) {
		t.Errorf("stale ticket: %v", err)
	}
	// API style: password and code at once.
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Code: code(c.t), Address: "192.0.2.1"}); err != nil {
		t.Fatalf("password and code: %v", err)
	}
	lock, _ := s.SignInLock(ctx, u)
	if lock.Failures != 0 {
		t.Errorf("after a success: %d failures", lock.Failures)
	}
	for i := range 6 {
		if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Code: "999999", Address: "192.0.2.1"}); !errors.Is(err, ErrBadSecondFactor) && code(c.t) != "999999" {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Code: code(c.t), Address: "192.0.2.1"}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after 6 wrong codes: %v, want throttled", err)
	}
	if err := s.RemoveSecondFactor(ctx, "boss", u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock(ctx, "boss", u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.SignIn(ctx, Attempt{User: "cy", Password: pw, Address: "192.0.2.1"}); err != nil {
		t.Fatalf("after the admin removed the factor: %v", err)
	}
	events, _ := st.ListAuditFor(ctx, fmt.Sprintf("user:%d", u.ID), 50)
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"user.second_factor.enable", "user.second_factor.remove", "user.unlock"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit of user %d lacks %s: %v", u.ID, want, actions)
		}
	}
}

// TestSignInBcryptBounded: while suspect attempts hold their half of the bcrypt slots, a
// clean attempt still gets one at once.
func TestSignInBcryptBounded(t *testing.T) {
	g := newGuard(nil, nil)
	g.slots = make(chan struct{}, 2)
	g.suspectSlots = make(chan struct{}, 1)
	rel, err := g.acquire(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(ctx, true); err == nil {
		t.Fatal("a second suspect attempt got a slot while the suspects' half is taken")
	}
	rel2, err := g.acquire(context.Background(), false)
	if err != nil {
		t.Fatalf("a clean attempt waits behind suspects: %v", err)
	}
	rel2()
}

// TestSignInInFlight: one account is checked once at a time, one address maxPerAddress
// times; the rest is throttled for a second instead of queueing for bcrypt.
func TestSignInInFlight(t *testing.T) {
	g := newGuard(nil, nil)
	if !g.enter("account:a", "address:x") || g.enter("account:a", "address:y") {
		t.Fatal("a second attempt on the same account was let in")
	}
	for i := 1; i < maxPerAddress; i++ {
		if !g.enter(fmt.Sprintf("account:b%d", i), "address:x") {
			t.Fatalf("attempt %d of one address refused", i+1)
		}
	}
	if g.enter("account:c", "address:x") {
		t.Fatalf("attempt %d of one address let in", maxPerAddress+1)
	}
	g.leave("account:a", "address:x")
	if !g.enter("account:a", "address:x") {
		t.Fatal("the account stays busy after leave")
	}
}

// TestSignInTarpit: a refusal is held up to a second (never past the lock), and
// Retry-After counts the wait.
func TestSignInTarpit(t *testing.T) {
	g := newGuard(nil, nil)
	te := &ThrottledError{RetryAfter: 3 * time.Second}
	start := time.Now()
	g.hold(context.Background(), te)
	if d := time.Since(start); d < 900*time.Millisecond || d > 2*time.Second {
		t.Errorf("held %s, want about 1 s", d)
	}
	if te.RetryAfter != 2*time.Second {
		t.Errorf("Retry-After after the hold %s, want 2 s", te.RetryAfter)
	}
	short := &ThrottledError{RetryAfter: 100 * time.Millisecond}
	start = time.Now()
	g.hold(context.Background(), short)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("held %s past the lock's end", d)
	}
}
