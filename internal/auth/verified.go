package auth

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/postroom/postroom/internal/store"
)

// StartSession starts a session for a user whose identity was verified elsewhere (single
// sign-on: internal/sso checked the identity provider's id token). It is the session a
// password sign-in gets: same lifetime, cookie and CSRF token. A disabled user is
// ErrDisabled.
func (s *Service) StartSession(ctx context.Context, u store.User) (string, store.Session, error) {
	if u.Disabled {
		return "", store.Session{}, ErrDisabled
	}
	token := randomToken()
	now := s.now().UTC()
	sess := s.newSession(ctx, token, u.ID, now)
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, fmt.Errorf("start session of %q: %w", u.Username, err)
	}
	s.logger.InfoContext(ctx, "signed in through single sign-on", slog.String("user", u.Username))
	return token, sess, nil
}
