package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Session timeouts. An administrator sets both (SetSessionTimeouts); they are kept in the
// settings table and read on every request, so a change applies at once on every node,
// to the sessions open already too.
const (
	// DefaultIdleTimeout ends a session that made no request for 2 hours.
	DefaultIdleTimeout = 2 * time.Hour
	// DefaultAbsoluteTimeout ends every session 12 hours after its sign-in: one working
	// day, so that a forgotten browser does not stay signed in overnight.
	DefaultAbsoluteTimeout = 12 * time.Hour

	// MinIdleTimeout and MaxAbsoluteTimeout bound what an administrator may set; the idle
	// timeout is at most the absolute one.
	MinIdleTimeout     = 5 * time.Minute
	MaxAbsoluteTimeout = 30 * 24 * time.Hour

	// touchInterval is how stale a session's LastSeenAt or a token's LastUsedAt may get
	// before a request writes it again: a busy client writes at most once a minute. The
	// idle timeout may therefore end a session up to a minute early.
	touchInterval = time.Minute

	settingIdleTimeout     = "session.idle_timeout_seconds"
	settingAbsoluteTimeout = "session.absolute_timeout_seconds"
)

// SessionLifetime is the default absolute session lifetime (DefaultAbsoluteTimeout);
// the one in force is SessionTimeouts.Absolute.
const SessionLifetime = DefaultAbsoluteTimeout

// SessionTimeouts are the idle and absolute timeouts of browser sessions.
type SessionTimeouts struct {
	Idle     time.Duration
	Absolute time.Duration
}

// DefaultSessionTimeouts are the timeouts when an administrator has set none.
var DefaultSessionTimeouts = SessionTimeouts{Idle: DefaultIdleTimeout, Absolute: DefaultAbsoluteTimeout}

// Check returns what is wrong with t for a person to fix, keyed by "idle" and "absolute";
// nil when t is fine.
func (t SessionTimeouts) Check() map[string]string {
	bad := map[string]string{}
	if t.Absolute < MinIdleTimeout || t.Absolute > MaxAbsoluteTimeout {
		bad["absolute"] = fmt.Sprintf("choose between %d minutes and %d days", int(MinIdleTimeout.Minutes()), int(MaxAbsoluteTimeout.Hours()/24))
	}
	switch {
	case t.Idle < MinIdleTimeout:
		bad["idle"] = fmt.Sprintf("choose at least %d minutes", int(MinIdleTimeout.Minutes()))
	case t.Idle > t.Absolute:
		bad["idle"] = "choose at most the absolute timeout: a session ends at the absolute timeout whatever its activity"
	}
	if len(bad) == 0 {
		return nil
	}
	return bad
}

// settings is the settings table behind the Service's store, when it has one (every
// store.Store does); without it the defaults apply and cannot be changed.
func (s *Service) settings() store.Settings {
	st, _ := s.st.(store.Settings)
	return st
}

// audit records e when the Service's store keeps an audit log; a failure is logged, not
// returned: what it records has happened.
func (s *Service) audit(ctx context.Context, e store.AuditEvent) {
	a, ok := s.st.(store.Audit)
	if !ok {
		return
	}
	if err := a.AddAudit(ctx, e); err != nil {
		s.logger.ErrorContext(ctx, "audit", slog.String("action", e.Action), slog.String("object", e.Object), slog.Any("error", err))
	}
}

// SessionTimeouts returns the timeouts in force: the administrator's, or the defaults.
func (s *Service) SessionTimeouts(ctx context.Context) (SessionTimeouts, error) {
	t := DefaultSessionTimeouts
	st := s.settings()
	if st == nil {
		return t, nil
	}
	for key, d := range map[string]*time.Duration{settingIdleTimeout: &t.Idle, settingAbsoluteTimeout: &t.Absolute} {
		v, err := st.Setting(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return DefaultSessionTimeouts, fmt.Errorf("session timeouts: %w", err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.logger.WarnContext(ctx, "session timeout setting unreadable: the default applies", slog.String("key", key))
			continue
		}
		*d = time.Duration(n) * time.Second
	}
	if t.Idle > t.Absolute {
		t.Idle = t.Absolute
	}
	return t, nil
}

// SetSessionTimeouts stores new timeouts (checked with Check; a *ValidationError when wrong)
// and records "settings.sessions" in the audit log.
func (s *Service) SetSessionTimeouts(ctx context.Context, actor store.User, t SessionTimeouts) error {
	if bad := t.Check(); bad != nil {
		return &ValidationError{Fields: bad}
	}
	st := s.settings()
	if st == nil {
		return errors.New("set session timeouts: this store keeps no settings")
	}
	old, err := s.SessionTimeouts(ctx)
	if err != nil {
		return err
	}
	if err := st.SetSetting(ctx, settingIdleTimeout, strconv.FormatInt(int64(t.Idle/time.Second), 10)); err != nil {
		return fmt.Errorf("set idle timeout: %w", err)
	}
	if err := st.SetSetting(ctx, settingAbsoluteTimeout, strconv.FormatInt(int64(t.Absolute/time.Second), 10)); err != nil {
		return fmt.Errorf("set absolute timeout: %w", err)
	}
	s.audit(ctx, store.AuditEvent{Actor: actor.Username, Action: "settings.sessions", Object: "settings:sessions",
		Old: fmt.Sprintf("idle=%s absolute=%s", old.Idle, old.Absolute), New: fmt.Sprintf("idle=%s absolute=%s", t.Idle, t.Absolute)})
	s.logger.InfoContext(ctx, "session timeouts changed", slog.String("user", actor.Username), slog.Duration("idle", t.Idle), slog.Duration("absolute", t.Absolute))
	return nil
}

// sessionEnd says why a session must end at now, or "" when it is still good.
func sessionEnd(sess store.Session, t SessionTimeouts, now time.Time) string {
	seen := sess.LastSeenAt
	if seen.IsZero() {
		seen = sess.CreatedAt
	}
	switch {
	case !now.Before(sess.ExpiresAt), !now.Before(sess.CreatedAt.Add(t.Absolute)):
		return "absolute timeout"
	case !now.Before(seen.Add(t.Idle)):
		return "idle timeout"
	}
	return ""
}

// checkSession applies the timeouts to a stored session: an ended one is deleted (and
// audited as "session.end"), a live one has its LastSeenAt moved on when it is a minute old.
func (s *Service) checkSession(ctx context.Context, sess store.Session) error {
	t, err := s.SessionTimeouts(ctx)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if why := sessionEnd(sess, t, now); why != "" {
		if err := s.st.DeleteSession(ctx, sess.TokenHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logger.WarnContext(ctx, "delete expired session", slog.Any("error", err))
		} else if err == nil {
			s.audit(ctx, store.AuditEvent{Actor: "system", Action: "session.end", Object: sessionObject(sess.ID),
				Old: fmt.Sprintf("user_id=%d reason=%q", sess.UserID, why)})
		}
		return ErrUnauthenticated
	}
	if now.Sub(sess.LastSeenAt) >= touchInterval {
		if err := s.st.TouchSession(ctx, sess.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logger.WarnContext(ctx, "record session use", slog.Int64("session_id", sess.ID), slog.Any("error", err))
		}
	}
	return nil
}

func sessionObject(id int64) string { return fmt.Sprintf("session:%d", id) }

// ListSessions lists the open sessions of a user, the most recently seen first.
func (s *Service) ListSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	t, err := s.SessionTimeouts(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	list, err := s.st.ListSessions(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	open := list[:0]
	for _, se := range list {
		if sessionEnd(se, t, now) == "" {
			open = append(open, se)
		}
	}
	return open, nil
}

// EndSession ends session id of owner, on actor's behalf (owner themself or an admin;
// the caller checks that), and records "session.end". ErrNotFound (wrapped) when owner
// has no such session.
func (s *Service) EndSession(ctx context.Context, actor, owner store.User, id int64) (store.Session, error) {
	se, err := s.st.DeleteSessionOf(ctx, owner.ID, id)
	if err != nil {
		return store.Session{}, fmt.Errorf("end session %d of %q: %w", id, owner.Username, err)
	}
	s.audit(ctx, store.AuditEvent{Actor: actor.Username, Action: "session.end", Object: sessionObject(id),
		Old: fmt.Sprintf("user=%s client=%q agent=%q", owner.Username, se.ClientAddr, UserAgentSummary(se.UserAgent))})
	s.logger.InfoContext(ctx, "session ended", slog.String("user", owner.Username), slog.String("by", actor.Username), slog.Int64("session_id", id))
	return se, nil
}

// EndSessions ends every session of owner on actor's behalf and records one
// "session.end" on "user:<id>" with how many ended.
func (s *Service) EndSessions(ctx context.Context, actor, owner store.User) (int, error) {
	n, err := s.st.DeleteSessionsOf(ctx, owner.ID)
	if err != nil {
		return 0, fmt.Errorf("end the sessions of %q: %w", owner.Username, err)
	}
	s.audit(ctx, store.AuditEvent{Actor: actor.Username, Action: "session.end", Object: fmt.Sprintf("user:%d", owner.ID),
		Old: fmt.Sprintf("user=%s sessions=%d", owner.Username, n)})
	s.logger.InfoContext(ctx, "sessions ended", slog.String("user", owner.Username), slog.String("by", actor.Username), slog.Int("sessions", n))
	return n, nil
}

// endSessionByToken ends the session of a token (sign-out) and records "session.end".
func (s *Service) endSessionByToken(ctx context.Context, token string) error {
	hash := HashToken(token)
	sess, err := s.st.SessionByTokenHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.st.DeleteSession(ctx, hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	s.audit(ctx, store.AuditEvent{Actor: "system", Action: "session.end", Object: sessionObject(sess.ID),
		Old: fmt.Sprintf("user_id=%d reason=%q", sess.UserID, "signed out")})
	return nil
}

// clientKey is the context key of a request's client (WithClient).
type clientKey struct{}

type clientInfo struct{ addr, userAgent string }

// WithClient makes the request's client address (ClientAddress: the connection's peer, or
// the address a trusted proxy names) and User-Agent known to Login, which keeps them with
// the session for its owner to recognise it.
func (s *Service) WithClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), clientKey{}, clientInfo{addr: s.ClientAddress(r), userAgent: r.UserAgent()})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// clientOf returns the client address and User-Agent WithClient put in ctx.
func clientOf(ctx context.Context) (addr, userAgent string) {
	c, _ := ctx.Value(clientKey{}).(clientInfo)
	return c.addr, c.userAgent
}

// UserAgentSummary names the browser and system of a User-Agent header for people, like
// "Firefox on Linux" or "curl"; "" when there is none, and the header's first word for
// others (at most 40 characters).
func UserAgentSummary(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return ""
	}
	browser := ""
	for _, b := range []struct{ marker, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.marker) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ marker, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.marker) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	}
	first, _, _ := strings.Cut(ua, " ")
	first, _, _ = strings.Cut(first, "/")
	if len(first) > 40 {
		first = first[:40]
	}
	return strings.ToValidUTF8(first, "")
}

// secureKey is the context key SecureTransport sets.
type secureKey struct{}

// HSTS is the Strict-Transport-Security value SecureTransport sends: one year.
const HSTS = "max-age=31536000"

// SecureTransport marks every request as reaching postroom over HTTPS, for a server whose
// public URL is https or whose TLS ends at a proxy: the session cookie is then Secure
// whatever the connection to postroom, and every response carries Strict-Transport-Security
// (RFC 6797), so that browsers never use plain HTTP for postroom again.
func SecureTransport(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", HSTS)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), secureKey{}, true)))
	})
}

// secureRequest reports whether cookies of r must be Secure: it came over TLS, or through
// SecureTransport.
func secureRequest(r *http.Request) bool {
	secure, _ := r.Context().Value(secureKey{}).(bool)
	return secure || r.TLS != nil
}

// newSession makes the session Login stores for token: it lasts the absolute timeout in
// force, and keeps the client WithClient put in ctx.
func (s *Service) newSession(ctx context.Context, token string, userID int64, now time.Time) store.Session {
	t, err := s.SessionTimeouts(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "session timeouts unreadable: the defaults apply", slog.Any("error", err))
	}
	addr, ua := clientOf(ctx)
	return store.Session{
		TokenHash:  HashToken(token),
		UserID:     userID,
		CSRFToken:  randomToken(),
		CreatedAt:  now,
		ExpiresAt:  now.Add(t.Absolute),
		LastSeenAt: now,
		ClientAddr: addr,
		UserAgent:  ua,
	}
}
