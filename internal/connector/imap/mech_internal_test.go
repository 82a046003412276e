package imap

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestOAuthBearerAtDovecot: Dial prefers XOAUTH2, so OAUTHBEARER (RFC 7628) is proved
// here: a good token logs in, a refused one comes back as the server's challenge.
func TestOAuthBearerAtDovecot(t *testing.T) {
	const user = "alice@example.test"
	srv := oauthtest.Start(t)
	srv.AddClient("app", "secret", user)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: srv.IntrospectionURL})
	host, p, _ := net.SplitHostPort(d.IMAPAddr)
	port, _ := strconv.Atoi(p)
	cfg := Config{Host: host, Port: port, Security: SecurityNone, Login: user}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := credential.ClientCredentials(credential.OAuthConfig{TokenURL: srv.TokenURL, ClientID: "app",
		ClientSecret: vault.NewSecret("secret")})(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token   string
		refused bool
	}{{"not-a-token", true}, {token, false}} {
		s := &Source{readTimeout: DefaultReadTimeout, newMail: make(chan struct{}, 1)}
		if err := s.connect(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		err := s.c.Authenticate(credential.NewOAuthClient(credential.MechOAUTHBEARER, user, tt.token, host, port))
		s.c.Close()
		var ce *credential.ChallengeError
		if refused := errors.As(err, &ce); refused != tt.refused || (!refused && err != nil) {
			t.Errorf("token %q: error %v, want refused=%t", tt.token, err, tt.refused)
		}
	}
}
