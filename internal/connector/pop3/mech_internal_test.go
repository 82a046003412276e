package pop3

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/credential/oauthtest"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// TestOAuthBearerAtDovecot: LoginOAuth prefers XOAUTH2, so OAUTHBEARER (RFC 7628) is
// proved here: a refused token is cancelled with "*" and leaves the session usable, and
// a good token then logs in on the same connection.
func TestOAuthBearerAtDovecot(t *testing.T) {
	const user = "alice@example.test"
	srv := oauthtest.Start(t)
	srv.AddClient("app", "secret", user)
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: srv.IntrospectionURL})
	host, p, _ := net.SplitHostPort(d.POP3Addr)
	port, _ := strconv.Atoi(p)
	ctx := context.Background()
	token, err := credential.ClientCredentials(credential.OAuthConfig{TokenURL: srv.TokenURL, ClientID: "app",
		ClientSecret: vault.NewSecret("secret")})(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, Config{Host: host, Port: port, Security: SecurityNone})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Capabilities().SASL("OAUTHBEARER") {
		t.Fatalf("Dovecot does not offer OAUTHBEARER: %v", c.Capabilities())
	}
	err = c.authenticate(ctx, credential.NewOAuthClient(credential.MechOAUTHBEARER, user, "not-a-token", host, port))
	if !tokenRefused(err) || c.broken != nil {
		t.Fatalf("bad token: %v (connection broken: %v)", err, c.broken)
	}
	if err := c.authenticate(ctx, credential.NewOAuthClient(credential.MechOAUTHBEARER, user, token, host, port)); err != nil {
		t.Fatalf("good token after a refused one: %v", err)
	}
	if _, _, err := c.Stat(ctx); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, "method=OAUTHBEARER") // Dovecot logged the login with this mechanism
}
