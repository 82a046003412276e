package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// clock is a settable time for the Service under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// signIn signs in through a request that carries a client address and user agent, the way
// the API and the pages call Login (behind WithClient).
func signIn(t *testing.T, s *Service, user, password string) (string, store.Session) {
	t.Helper()
	var token string
	var sess store.Session
	h := s.WithClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		token, sess, _, err = s.Login(r.Context(), user, password)
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
	}))
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.RemoteAddr = "198.51.100.7:53211"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
	h.ServeHTTP(httptest.NewRecorder(), r)
	return token, sess
}

func authWithCookie(s *Service, token string) (store.User, store.Session, error) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: token})
	return s.Authenticate(r)
}

func TestSessionIdleAndAbsoluteTimeouts(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	s.now = c.now
	if _, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionTimeouts(ctx); err != nil || got != DefaultSessionTimeouts {
		t.Fatalf("SessionTimeouts without a setting = %+v, %v; want the defaults %+v", got, err, DefaultSessionTimeouts)
	}

	// Idle: used every 90 minutes it lives on; 2 hours without a request ends it.
	token, sess := signIn(t, s, "ana", "correct horse")
	if !sess.ExpiresAt.Equal(c.t.Add(12 * time.Hour)) {
		t.Errorf("session expires at %v, want 12 h after sign-in", sess.ExpiresAt)
	}
	stored, err := st.SessionByTokenHash(ctx, HashToken(token))
	if err != nil || stored.ClientAddr != "198.51.100.7" || !strings.Contains(stored.UserAgent, "Firefox/133.0") {
		t.Errorf("stored session = %+v, %v; want the client address and user agent", stored, err)
	}
	for range 3 {
		c.advance(90 * time.Minute)
		if _, _, err := authWithCookie(s, token); err != nil {
			t.Fatalf("session used every 90 minutes refused at %v: %v", c.t, err)
		}
	}
	c.advance(2 * time.Hour)
	if _, _, err := authWithCookie(s, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session idle for 2 h: err %v, want ErrUnauthenticated", err)
	}
	if _, err := st.SessionByTokenHash(ctx, HashToken(token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("idle session still stored: %v", err)
	}

	// Absolute: used every hour, it still ends 12 hours after sign-in.
	token, _ = signIn(t, s, "ana", "correct horse")
	start := c.t
	for c.t.Before(start.Add(11 * time.Hour)) {
		c.advance(time.Hour)
		if _, _, err := authWithCookie(s, token); err != nil {
			t.Fatalf("busy session refused %v after sign-in: %v", c.t.Sub(start), err)
		}
	}
	c.advance(time.Hour)
	if _, _, err := authWithCookie(s, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("busy session 12 h after sign-in: err %v, want ErrUnauthenticated", err)
	}

	// An admin shortens both; a session open already is held to the new times.
	admin := store.User{Username: "root", Role: store.RoleAdmin}
	token, _ = signIn(t, s, "ana", "correct horse")
	if err := s.SetSessionTimeouts(ctx, admin, SessionTimeouts{Idle: 10 * time.Minute, Absolute: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c.advance(9 * time.Minute)
	if _, _, err := authWithCookie(s, token); err != nil {
		t.Fatalf("9 minutes idle with a 10-minute idle timeout: %v", err)
	}
	c.advance(11 * time.Minute)
	if _, _, err := authWithCookie(s, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("11 minutes idle with a 10-minute idle timeout: err %v, want ErrUnauthenticated", err)
	}
	_, sess = signIn(t, s, "ana", "correct horse")
	if !sess.ExpiresAt.Equal(c.t.Add(time.Hour)) {
		t.Errorf("session after the change expires at %v, want 1 h after sign-in", sess.ExpiresAt)
	}

	// Each timeout end is audited.
	events, err := st.ListAudit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events {
		if e.Action == "session.end" {
			reasons = append(reasons, e.Old)
		}
	}
	if len(reasons) != 3 || !strings.Contains(strings.Join(reasons, "|"), "idle timeout") || !strings.Contains(strings.Join(reasons, "|"), "absolute timeout") {
		t.Errorf("session.end audit = %q, want 3 (idle, absolute, idle)", reasons)
	}
}

func TestSessionTouchedAtMostOncePerMinute(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	s.now = c.now
	if _, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "correct horse"); err != nil {
		t.Fatal(err)
	}
	token, _ := signIn(t, s, "ana", "correct horse")
	seen := func() time.Time {
		se, err := st.SessionByTokenHash(ctx, HashToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return se.LastSeenAt
	}
	start := c.t
	c.advance(30 * time.Second)
	if _, _, err := authWithCookie(s, token); err != nil {
		t.Fatal(err)
	}
	if got := seen(); !got.Equal(start) {
		t.Errorf("last seen after a request 30 s in = %v, want unchanged %v", got, start)
	}
	c.advance(45 * time.Second)
	if _, _, err := authWithCookie(s, token); err != nil {
		t.Fatal(err)
	}
	if got := seen(); !got.Equal(c.t) {
		t.Errorf("last seen after a request 75 s in = %v, want %v", got, c.t)
	}
}

func TestSessionTimeoutsCheck(t *testing.T) {
	for _, tc := range []struct {
		t     SessionTimeouts
		field string
	}{
		{SessionTimeouts{Idle: time.Hour, Absolute: 8 * time.Hour}, ""},
		{SessionTimeouts{Idle: time.Minute, Absolute: 8 * time.Hour}, "idle"},
		{SessionTimeouts{Idle: 9 * time.Hour, Absolute: 8 * time.Hour}, "idle"},
		{SessionTimeouts{Idle: time.Hour, Absolute: 31 * 24 * time.Hour}, "absolute"},
	} {
		bad := tc.t.Check()
		if (tc.field == "") != (bad == nil) || (tc.field != "" && bad[tc.field] == "") {
			t.Errorf("Check(%+v) = %v, want a complaint about %q", tc.t, bad, tc.field)
		}
	}
	s, _ := newTestService(t)
	var in *ValidationError
	if err := s.SetSessionTimeouts(context.Background(), store.User{Username: "root"}, SessionTimeouts{Idle: time.Minute, Absolute: time.Hour}); !errors.As(err, &in) {
		t.Errorf("SetSessionTimeouts with a 1-minute idle timeout: %v, want a ValidationError", err)
	}
}

func TestEndSessions(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	ana, err := s.EnsureUser(ctx, "ana", "Ana", store.RoleAgent, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := signIn(t, s, "ana", "correct horse")
	t2, _ := signIn(t, s, "ana", "correct horse")
	list, err := s.ListSessions(ctx, ana.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListSessions = %+v, %v; want 2", list, err)
	}
	_, s1, _ := authWithCookie(s, t1)
	if _, err := s.EndSession(ctx, ana, ana, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := authWithCookie(s, t1); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("ended session: %v, want ErrUnauthenticated", err)
	}
	if _, _, err := authWithCookie(s, t2); err != nil {
		t.Errorf("the other session after ending one: %v", err)
	}
	root := store.User{Username: "root"}
	if n, err := s.EndSessions(ctx, root, ana); err != nil || n != 1 {
		t.Errorf("EndSessions = %d, %v; want 1", n, err)
	}
	if _, _, err := authWithCookie(s, t2); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("session after EndSessions: %v, want ErrUnauthenticated", err)
	}
	if _, err := s.EndSession(ctx, root, ana, s1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ending an ended session: %v, want ErrNotFound", err)
	}
	events, _ := st.ListAudit(ctx, 0)
	var ends []string
	for _, e := range events {
		if e.Action == "session.end" {
			ends = append(ends, e.Actor+" "+e.Object)
		}
	}
	if len(ends) != 2 {
		t.Errorf("session.end events = %q, want 2 (ana's end, root's end of all)", ends)
	}
}

func TestUserAgentSummary(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0":                                                                  "Firefox on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0":               "Edge on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iOS",
		"curl/8.5.0":         "curl",
		"Go-http-client/1.1": "Go-http-client",
		"":                   "",
	} {
		if got := UserAgentSummary(ua); got != want {
			t.Errorf("UserAgentSummary(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestSecureTransportCookieAndHSTS(t *testing.T) {
	set := func(h http.Handler) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://postroom.example/login", nil))
		return rec.Result()
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSessionCookie(w, r, "tok", time.Now().Add(time.Hour))
	})
	plain := set(handler)
	if c := plain.Cookies(); len(c) != 1 || c[0].Secure {
		t.Errorf("cookie over plain HTTP without SecureTransport = %+v, want one, not Secure", c)
	}
	if v := plain.Header.Get("Strict-Transport-Security"); v != "" {
		t.Errorf("HSTS without SecureTransport: %q", v)
	}
	secure := set(SecureTransport(handler))
	if c := secure.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cookie behind SecureTransport = %+v, want Secure", c)
	}
	if v := secure.Header.Get("Strict-Transport-Security"); v != "max-age=31536000" {
		t.Errorf("HSTS behind SecureTransport = %q, want max-age=31536000", v)
	}
	cleared := set(SecureTransport(http.HandlerFunc(ClearSessionCookie)))
	if c := cleared.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cleared cookie behind SecureTransport = %+v, want Secure", c)
	}
}
