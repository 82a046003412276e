package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Sign-in throttling, audit and second factor (SignIn), used by the sign-in page and
// POST /api/v1/session alike.
//
// Every failed sign-in (wrong user name or password, wrong second-factor code) is counted
// against two keys in the store (store.Throttles), so that the count survives restarts and
// is shared by every node on one PostgreSQL database:
//
//   - the account, "account:<name as typed, trimmed, lower-cased>", whether or not such a
//     user exists, so that the throttle does not tell which names exist (AccountRule:
//     5 free failures, then the account is refused for 1 s, 2 s, 4 s, ... up to a lock of
//     15 min after each further failure; forgotten after 24 h without failures, or at the
//     account's next successful sign-in, or when an admin unlocks it);
//   - the client address, "address:<ip>" (an IPv6 address by its /64), with a larger budget
//     because many people share one NAT (AddressRule: 100 free failures, then the same
//     doubling up to 15 min; forgotten after 1 h without failures; a success does not
//     forgive an address).
//
// The check comes before bcrypt: a refused attempt costs one indexed read, no hashing, and
// its answer is held for up to 1 s (never beyond the lock's end), so that each connection
// of a flood gets about one refusal a second.
// A throttled attempt is refused with ThrottledError (HTTP 429 with Retry-After) and is
// not counted again, so that an attacker cannot stretch a lock beyond the rule's maximum.
// bcrypt work is bounded: at most GOMAXPROCS comparisons at once, and only attempts from
// an address that signed someone in on this node within 24 h, on an account and address
// without failures, may use all of them; every other attempt (a new address, or failures
// already) takes one of half of the slots, so that a flood from addresses that never
// signed anyone in leaves room for the users of addresses that do (this scheduling hint
// is kept in memory, per node; it refuses nothing). An attempt that finds no slot within
// 5 s is refused with ErrBusy (503). One account signs in once at a
// time per process, one address 8 times: an attempt beyond is throttled for 1 s. A lock
// seen in the store is believed for 5 s without reading the store again, so that a flood
// against a locked account or address costs no database work; an unlock counts at once on
// the node that does it and within 5 s on the others.
//
// Every sign-in is an audit event: "login.success" (actor the user) or "login.failure"
// (actor "anonymous"), object "user:<name as typed, trimmed, at most 100 characters>",
// New "address=<ip> method=password reason=bad_credentials|throttled|disabled|second_factor".
// A refusal for throttling is audited once per key and lock, not once per request, so
// that a flood cannot fill the audit log.
//
// The client address is the host of the connection's remote address. X-Forwarded-For is
// believed only from proxies the operator named (TrustProxies, POSTROOM_TRUSTED_PROXIES):
// then the address is the right-most one in the header that is not itself such a proxy.

// ThrottleRule is how failures of one kind of key are throttled: Free failures are
// forgiven, after the next the key is refused for First, then twice as long after each
// further failure, at most Max; a key without failures for QuietAfter starts again.
type ThrottleRule struct {
	Free       int
	First      time.Duration
	Max        time.Duration
	QuietAfter time.Duration
}

// LockFor is how long a key is refused after its n-th failure.
func (r ThrottleRule) LockFor(n int) time.Duration {
	if n <= r.Free {
		return 0
	}
	k := n - r.Free - 1
	if k >= 40 {
		return r.Max
	}
	d := r.First << k
	if d <= 0 || d > r.Max {
		d = r.Max
	}
	return d
}

// The rules of accounts and client addresses.
var (
	AccountRule = ThrottleRule{Free: 5, First: time.Second, Max: 15 * time.Minute, QuietAfter: 24 * time.Hour}
	AddressRule = ThrottleRule{Free: 100, First: time.Second, Max: 15 * time.Minute, QuietAfter: time.Hour}
)

// maxAuditName is the longest user name kept in an audit event's object.
const maxAuditName = 100

// slotWait is how long an attempt waits for a bcrypt slot before ErrBusy.
const slotWait = 5 * time.Second

// tarpit is how long a throttled attempt waits before its answer, at most.
const tarpit = time.Second

// maxPerAddress is how many sign-ins of one client address a process checks at once.
const maxPerAddress = 8

// pruneEvery is how often a process deletes quiet throttle keys.
const pruneEvery = 10 * time.Minute

// Errors of SignIn besides ErrBadCredentials and ErrDisabled.
var (
	// ErrThrottled is matched (errors.Is) by every *ThrottledError.
	ErrThrottled = errors.New("too many failed sign-ins")
	// ErrBusy means too many sign-ins are being checked at once.
	ErrBusy = errors.New("too many sign-ins at once: try again in a few seconds")
	// ErrSecondFactorRequired means the password is right and the user has a second
	// factor: send the code of the authenticator app too. *SecondFactorError matches it.
	ErrSecondFactorRequired = errors.New("second factor required: enter the 6-digit code of your authenticator app")
	// ErrBadSecondFactor means the code is wrong or was used already; it counts as a
	// failed sign-in.
	ErrBadSecondFactor = errors.New("wrong second factor code: enter the current 6-digit code of your authenticator app (each code works once)")
)

// ThrottledError is a sign-in refused because its account or address failed too often.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins: try again in %s", HumanWait(e.RetryAfter))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Seconds is the Retry-After value: whole seconds, at least 1.
func (e *ThrottledError) Seconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// HumanWait says a wait as people do: "1 second", "40 seconds", "3 minutes".
func HumanWait(d time.Duration) string {
	s := max(1, int(math.Ceil(d.Seconds())))
	switch {
	case s == 1:
		return "1 second"
	case s < 120:
		return fmt.Sprintf("%d seconds", s)
	default:
		return fmt.Sprintf("%d minutes", (s+59)/60)
	}
}

// SecondFactorError is ErrSecondFactorRequired with a ticket: a sealed, short-lived proof
// that the password was right, which the sign-in page's second step sends with the code
// instead of the password.
type SecondFactorError struct {
	Ticket string
}

func (e *SecondFactorError) Error() string { return ErrSecondFactorRequired.Error() }

// Is makes errors.Is(err, ErrSecondFactorRequired) true.
func (e *SecondFactorError) Is(target error) bool { return target == ErrSecondFactorRequired }

// Attempt is one sign-in.
type Attempt struct {
	User     string
	Password string
	// Code is the second factor's code, when the user has one.
	Code string
	// Ticket replaces User and Password in the second step of the sign-in page
	// (SecondFactorError).
	Ticket string
	// Address is the client's address (Service.ClientAddress).
	Address string
}

// guardStore is what throttling and second factors need of the store.
type guardStore interface {
	store.Throttles
	store.Audit
}

// guard is the per-Service state of SignIn.
type guard struct {
	st      guardStore // nil when the store has no such role: nothing is throttled
	logger  *slog.Logger
	account ThrottleRule
	address ThrottleRule
	tarpit  time.Duration // how long a refusal is held before it is answered

	slots        chan struct{}
	suspectSlots chan struct{}

	mu        sync.Mutex
	inFlight  map[string]int       // account and address keys being checked now
	locks     map[string]lockMemo  // locks seen in the store lately, so that a flood is refused without reading it
	good      map[string]time.Time // address keys -> their last successful sign-in on this node
	audited   map[string]time.Time // key -> the lock whose refusal was audited
	lastPrune time.Time
	vault     *vault.Vault
	proxies   []netip.Prefix
}

func newGuard(st store.Users, logger *slog.Logger) *guard {
	n := max(1, runtime.GOMAXPROCS(0))
	g := &guard{
		logger:       logger,
		account:      AccountRule,
		tarpit:       tarpit,
		address:      AddressRule,
		slots:        make(chan struct{}, n),
		suspectSlots: make(chan struct{}, max(1, n/2)),
		inFlight:     map[string]int{},
		locks:        map[string]lockMemo{},
		good:         map[string]time.Time{},
		audited:      map[string]time.Time{},
	}
	if gs, ok := st.(guardStore); ok {
		g.st = gs
	}
	return g
}

// UseVault gives the Service the vault that seals second-factor secrets and sign-in
// tickets. Call it once, before serving; without it no second factor can be enrolled.
func (s *Service) UseVault(v *vault.Vault) {
	s.guard.mu.Lock()
	defer s.guard.mu.Unlock()
	s.guard.vault = v
}

// TrustProxies names the reverse proxies whose X-Forwarded-For is believed. Call it once,
// before serving.
func (s *Service) TrustProxies(prefixes []netip.Prefix) {
	s.guard.mu.Lock()
	defer s.guard.mu.Unlock()
	s.guard.proxies = append([]netip.Prefix(nil), prefixes...)
}

// ClientAddress is the address of r's client: the host of r.RemoteAddr, or, when that is a
// trusted proxy, the right-most X-Forwarded-For address that is not a trusted proxy.
func (s *Service) ClientAddress(r *http.Request) string {
	s.guard.mu.Lock()
	proxies := s.guard.proxies
	s.guard.mu.Unlock()
	return clientAddress(r, proxies)
}

func clientAddress(r *http.Request, proxies []netip.Prefix) string {
	host := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		host = ap.Addr().Unmap().String()
	}
	trusted := func(a string) bool {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return false
		}
		for _, p := range proxies {
			if p.Contains(ip.Unmap()) {
				return true
			}
		}
		return false
	}
	if len(proxies) == 0 || !trusted(host) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(h, ",") {
			hops = append(hops, strings.TrimSpace(part))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(hops[i])
		if err != nil {
			return host // a hop we cannot read: stop believing the header there
		}
		if !trusted(hops[i]) {
			return ip.Unmap().String()
		}
	}
	return host
}

// AuditName is the user name as typed, as it goes into audit events: trimmed, control
// characters replaced, at most 100 characters.
func AuditName(name string) string {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "?")
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, name)
	if utf8.RuneCountInString(name) > maxAuditName {
		name = string([]rune(name)[:maxAuditName])
	}
	return name
}

// AccountKey is the throttling key of a user name.
func AccountKey(name string) string {
	return "account:" + strings.ToLower(AuditName(name))
}

// addressKey is the throttling key of a client address: IPv6 by its /64, which one
// customer line usually holds whole.
func addressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "address:" + AuditName(addr)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "address:" + p.String()
	}
	return "address:" + ip.String()
}

// SignIn checks a sign-in attempt and starts a session: the throttle first (ThrottledError,
// nothing else done), then the password (ErrBadCredentials, counted), a disabled user
// (ErrDisabled), the second factor when the user has one (SecondFactorError when the code
// is missing; ErrBadSecondFactor, counted). Every outcome is audited. A success forgets
// the account's failures.
func (s *Service) SignIn(ctx context.Context, a Attempt) (string, store.Session, store.User, error) {
	g := s.guard
	now := s.now().UTC()
	var ticketUser store.User
	name := a.User
	if a.Ticket != "" {
		u, err := s.openTicket(ctx, a.Ticket, now)
		if err != nil {
			return "", store.Session{}, store.User{}, err
		}
		ticketUser, name = u, u.Username
	}
	name = AuditName(name)
	acct, addr := AccountKey(name), addressKey(a.Address)
	// What is counted and audited is written even when the client hangs up meanwhile; only
	// the wait for a bcrypt slot ends with the request.
	reqCtx := ctx
	ctx = context.WithoutCancel(ctx)
	fail := func(reason string, err error) (string, store.Session, store.User, error) {
		g.audit(ctx, "anonymous", "login.failure", name, a.Address, reason, "")
		return "", store.Session{}, store.User{}, err
	}

	suspect, err := g.check(ctx, now, acct, addr)
	var te *ThrottledError
	if errors.As(err, &te) {
		g.auditThrottled(ctx, name, a.Address, te, now)
		g.hold(reqCtx, te)
		return "", store.Session{}, store.User{}, te
	}
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	if !g.enter(acct, addr) {
		te := &ThrottledError{RetryAfter: time.Second}
		g.auditThrottled(ctx, name, a.Address, te, now)
		g.hold(reqCtx, te)
		return "", store.Session{}, store.User{}, te
	}
	defer g.leave(acct, addr)

	u := ticketUser
	if a.Ticket == "" {
		release, err := g.acquire(reqCtx, suspect || !g.isGood(addr, now))
		if err != nil {
			return "", store.Session{}, store.User{}, err
		}
		u, err = s.checkPassword(ctx, name, a.Password)
		release()
		if errors.Is(err, ErrBadCredentials) {
			g.failed(ctx, now, acct, addr)
			return fail("bad_credentials", err)
		}
		if err != nil {
			return "", store.Session{}, store.User{}, err
		}
	}
	if u.Disabled {
		s.logger.InfoContext(ctx, "sign-in of a disabled user refused", slog.String("user", u.Username))
		return fail("disabled", ErrDisabled)
	}
	f, has, err := s.activeSecondFactor(ctx, u.ID)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	if has {
		if strings.TrimSpace(a.Code) == "" {
			ticket, err := s.ticket(u, now)
			if err != nil {
				return "", store.Session{}, store.User{}, err
			}
			return "", store.Session{}, store.User{}, &SecondFactorError{Ticket: ticket}
		}
		ok, err := s.checkCode(ctx, f, a.Code, now)
		if err != nil {
			return "", store.Session{}, store.User{}, err
		}
		if !ok {
			g.failed(ctx, now, acct, addr)
			return fail("second_factor", ErrBadSecondFactor)
		}
	}
	if g.st != nil {
		if err := g.st.ResetSignInThrottle(ctx, acct); err != nil {
			s.logger.WarnContext(ctx, "forget failed sign-ins", slog.Any("error", err))
		}
		g.forgetLock(acct)
		g.markGood(addr, now)
	}
	token, sess, u, err := s.startSession(ctx, u)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	method := "password"
	if has {
		method = "password+totp"
	}
	g.audit(ctx, u.Username, "login.success", name, a.Address, "", method)
	return token, sess, u, nil
}

// check returns a ThrottledError when a key is refused now, and whether any key has
// failures (the attempt is suspect).
func (g *guard) check(ctx context.Context, now time.Time, keys ...string) (bool, error) {
	if g.st == nil {
		return false, nil
	}
	g.mu.Lock()
	var cached time.Time
	for _, k := range keys {
		if m := g.locks[k]; now.Before(m.seen.Add(lockMemory)) && m.until.After(cached) {
			cached = m.until
		}
	}
	g.mu.Unlock()
	if cached.After(now) {
		return true, &ThrottledError{RetryAfter: cached.Sub(now)}
	}
	states, err := g.st.SignInThrottles(ctx, keys...)
	if err != nil {
		return false, fmt.Errorf("sign-in throttle: %w", err)
	}
	var until time.Time
	suspect := false
	for _, t := range states {
		suspect = suspect || t.Failures > 0
		if t.LockedUntil.After(until) {
			until = t.LockedUntil
		}
	}
	if until.After(now) {
		g.rememberLock(now, states...)
		return suspect, &ThrottledError{RetryAfter: until.Sub(now)}
	}
	return suspect, nil
}

// lockMemo is a lock seen in the store at seen.
type lockMemo struct {
	until, seen time.Time
}

// lockMemory is how long a process believes a lock it saw in the store without reading
// it again: short, so that an unlock on another node counts within seconds.
const lockMemory = 5 * time.Second

// rememberLock keeps the locks of states, seen now.
func (g *guard) rememberLock(now time.Time, states ...store.SignInThrottle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.locks) > 100_000 {
		for k, m := range g.locks {
			if !now.Before(m.seen.Add(lockMemory)) {
				delete(g.locks, k)
			}
		}
		if len(g.locks) > 100_000 {
			clear(g.locks)
		}
	}
	for _, t := range states {
		if t.LockedUntil.After(now) {
			g.locks[t.Key] = lockMemo{until: t.LockedUntil, seen: now}
		}
	}
}

// goodFor is how long an address that signed someone in keeps its place in the bcrypt
// lane of the addresses that have not been failing.
const goodFor = 24 * time.Hour

// isGood reports whether someone signed in from addr on this node within goodFor.
func (g *guard) isGood(addr string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.good[addr]
	return ok && now.Sub(t) < goodFor
}

// markGood notes a successful sign-in from addr.
func (g *guard) markGood(addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.good) > 100_000 {
		clear(g.good)
	}
	g.good[addr] = now
}

// forgetLock drops a remembered lock (an unlock, a success).
func (g *guard) forgetLock(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.locks, key)
}

// failed counts a failure against the account and the address.
func (g *guard) failed(ctx context.Context, now time.Time, acct, addr string) {
	if g.st == nil {
		return
	}
	for _, k := range []struct {
		key  string
		rule ThrottleRule
	}{{acct, g.account}, {addr, g.address}} {
		t, err := g.st.RecordSignInFailure(ctx, store.SignInFailure{Key: k.key, At: now, QuietAfter: k.rule.QuietAfter, LockFor: k.rule.LockFor})
		if err != nil {
			g.logger.WarnContext(ctx, "count failed sign-in", slog.Any("error", err))
			continue
		}
		if t.LockedUntil.After(now) {
			g.rememberLock(now, t)
		}
	}
	g.mu.Lock()
	prune := now.Sub(g.lastPrune) >= pruneEvery
	if prune {
		g.lastPrune = now
	}
	g.mu.Unlock()
	if prune {
		before := now.Add(-max(g.account.QuietAfter, g.address.QuietAfter) - g.account.Max)
		if _, err := g.st.PruneSignInThrottles(ctx, before); err != nil {
			g.logger.WarnContext(ctx, "prune sign-in throttles", slog.Any("error", err))
		}
	}
}

// hold keeps a refused attempt waiting for g.tarpit (or its lock's end, if sooner) before
// it is answered, so that each connection of a flood gets about one answer a second and
// the refusals cost next to no CPU; Retry-After counts the wait.
func (g *guard) hold(ctx context.Context, te *ThrottledError) {
	d := min(g.tarpit, te.RetryAfter)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		te.RetryAfter -= d
	case <-ctx.Done():
	}
}

// enter marks the account and the address as being checked: false when the account is
// already, or maxPerAddress attempts of the address are.
func (g *guard) enter(acct, addr string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight[acct] > 0 || g.inFlight[addr] >= maxPerAddress {
		return false
	}
	g.inFlight[acct]++
	g.inFlight[addr]++
	return true
}

func (g *guard) leave(acct, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range []string{acct, addr} {
		if g.inFlight[k]--; g.inFlight[k] <= 0 {
			delete(g.inFlight, k)
		}
	}
}

// acquire takes a bcrypt slot (and a suspect slot first when suspect).
func (g *guard) acquire(ctx context.Context, suspect bool) (func(), error) {
	timer := time.NewTimer(slotWait)
	defer timer.Stop()
	take := func(c chan struct{}) error {
		select {
		case c <- struct{}{}:
			return nil
		case <-timer.C:
			return ErrBusy
		case <-ctx.Done():
			return fmt.Errorf("sign-in: %w", ctx.Err())
		}
	}
	if suspect {
		if err := take(g.suspectSlots); err != nil {
			return nil, err
		}
	}
	if err := take(g.slots); err != nil {
		if suspect {
			<-g.suspectSlots
		}
		return nil, err
	}
	return func() {
		<-g.slots
		if suspect {
			<-g.suspectSlots
		}
	}, nil
}

// audit writes a sign-in audit event; a failure to write it is logged.
func (g *guard) audit(ctx context.Context, actor, action, name, address, reason, method string) {
	if g.st == nil {
		return
	}
	if method == "" {
		method = "password"
	}
	detail := fmt.Sprintf("address=%s method=%s", AuditName(address), method)
	if reason != "" {
		detail += " reason=" + reason
	}
	if err := g.st.AddAudit(ctx, store.AuditEvent{Actor: actor, Action: action, Object: "user:" + name, New: detail}); err != nil {
		g.logger.ErrorContext(ctx, "audit sign-in", slog.String("action", action), slog.Any("error", err))
	}
}

// auditThrottled audits a refusal for throttling once per account and lock.
func (g *guard) auditThrottled(ctx context.Context, name, address string, te *ThrottledError, now time.Time) {
	until := now.Add(te.RetryAfter).Truncate(time.Second)
	key := AccountKey(name) + " " + addressKey(address)
	g.mu.Lock()
	if len(g.audited) > 10000 {
		clear(g.audited)
	}
	seen := g.audited[key].Equal(until)
	g.audited[key] = until
	g.mu.Unlock()
	if seen {
		return
	}
	g.audit(ctx, "anonymous", "login.failure", name, address, fmt.Sprintf("throttled retry_after=%d", te.Seconds()), "")
}

// SignInLock returns the throttling state of u's account (zero when it has none).
func (s *Service) SignInLock(ctx context.Context, u store.User) (store.SignInThrottle, error) {
	if s.guard.st == nil {
		return store.SignInThrottle{}, nil
	}
	list, err := s.guard.st.SignInThrottles(ctx, AccountKey(u.Username))
	if err != nil || len(list) == 0 {
		return store.SignInThrottle{}, err
	}
	return list[0], nil
}

// Unlock forgets the failed sign-ins and the lock of user id's account, as an admin
// (actor) does; audited as "user.unlock".
func (s *Service) Unlock(ctx context.Context, actor string, id int64) (store.User, error) {
	u, err := s.st.UserByID(ctx, id)
	if err != nil {
		return store.User{}, fmt.Errorf("unlock user %d: %w", id, err)
	}
	if s.guard.st == nil {
		return u, nil
	}
	old, err := s.SignInLock(ctx, u)
	if err != nil {
		return store.User{}, fmt.Errorf("unlock user %q: %w", u.Username, err)
	}
	if err := s.guard.st.ResetSignInThrottle(ctx, AccountKey(u.Username)); err != nil {
		return store.User{}, fmt.Errorf("unlock user %q: %w", u.Username, err)
	}
	s.guard.forgetLock(AccountKey(u.Username))
	desc := fmt.Sprintf("failures=%d", old.Failures)
	if !old.LockedUntil.IsZero() {
		desc += " locked_until=" + old.LockedUntil.Format(time.RFC3339)
	}
	if err := s.guard.st.AddAudit(ctx, store.AuditEvent{Actor: actor, Action: "user.unlock", Object: fmt.Sprintf("user:%d", id), Old: desc, New: "failures=0"}); err != nil {
		s.logger.ErrorContext(ctx, "audit unlock", slog.Any("error", err))
	}
	s.logger.InfoContext(ctx, "user unlocked", slog.String("user", u.Username), slog.String("by", actor))
	return u, nil
}
