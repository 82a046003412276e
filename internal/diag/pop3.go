package diag

import (
	"context"
	"errors"
	"fmt"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// testPOP3 runs: Resolve, Connect, TLS, Log in, List messages, then QUIT (no DELE was
// sent, so nothing is removed: RFC 1939 §6). It uses the POP3 connector's client step by
// step; the client closes its connection itself when a step's context ends.
func testPOP3(r *run, m store.Mailbox, password vault.Secret) {
	if !r.resolve() {
		return
	}
	cfg := pop3.Config{Host: m.Host, Port: m.Port, Security: m.Security, Login: m.Login,
		RootCAs: r.tlsConfig.RootCAs}
	if cfg.Port == 0 {
		cfg.Port = defaultPort(protoPOP3, m.Security)
	}
	var c *pop3.Client
	greeted := false
	defer func() {
		if c == nil {
			return
		}
		if greeted {
			ctx, cancel := context.WithTimeout(r.ctx, logoutTimeout)
			defer cancel()
			_ = c.Quit(ctx)
		}
		c.Close()
	}()
	if !r.step("Connect to "+r.addr, connectTimeout, func(ctx context.Context) (string, error) {
		var err error
		c, err = pop3.Connect(ctx, cfg)
		if err != nil {
			return "", err
		}
		return "connected", nil
	}) {
		return
	}
	if !r.step("TLS", greetingTimeout, func(ctx context.Context) (string, error) {
		if m.Security == securityNone {
			if err := r.plainAllowed(); err != nil {
				return "", err
			}
		}
		if err := c.Greet(ctx); err != nil {
			return "", err
		}
		greeted = true
		if m.Security == securityNone {
			return plainDetail, nil
		}
		how := "implicit TLS"
		if m.Security == securityStartTLS {
			how = "STLS"
		}
		st, ok := c.TLSConnectionState()
		if !ok {
			return how, nil
		}
		return tlsDetail(how, &st), nil
	}) {
		return
	}
	if !r.step("Log in as "+m.Login, 0, func(ctx context.Context) (string, error) {
		if r.oauth != nil {
			return pop3LoginOAuth(ctx, r, c, m)
		}
		err := c.Login(ctx, m.Login, password)
		var ce *connector.Error
		if pop3.ExchangeRefusal(err) {
			return "", fail(words(err), exchangePasswordAdvice(protoPOP3))
		}
		if errors.As(err, &ce) && ce.Kind == connector.KindAuth {
			return "", fail(words(err), "the server refused the login name or password: check both (the login is often the full email address)"+providerHint(m.Host))
		}
		if err != nil {
			return "", err
		}
		if c.Capabilities().SASL("PLAIN") {
			return "logged in (AUTH PLAIN)", nil
		}
		return "logged in (USER/PASS)", nil
	}) {
		return
	}
	r.step("List messages", 0, func(ctx context.Context) (string, error) {
		count, size, err := c.Stat(ctx)
		if err != nil {
			return "", err
		}
		// The POP3 source tells messages apart by UIDL (RFC 1939 §7); a server that does
		// not announce it in CAPA is asked directly.
		if !c.Capabilities().Has("UIDL") {
			if _, err := c.UIDL(ctx); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d messages, %s", count, byteSize(size)), nil
	})
}

// pop3LoginOAuth logs in with AUTH XOAUTH2 (or OAUTHBEARER) and the token the sign-in
// steps obtained; the POP3 client renews it once when the server refuses it.
func pop3LoginOAuth(ctx context.Context, r *run, c *pop3.Client, m store.Mailbox) (string, error) {
	err := c.LoginOAuth(ctx, m.Login, r.tokenFor)
	var ce *connector.Error
	var ee *credential.EndpointError
	switch {
	case err == nil:
		return "logged in (OAuth 2.0)", nil
	case errors.As(err, &ee) && errors.As(err, &ce):
		// The renewal the client asked for after a refusal failed.
		return "", fail(tokenWords(err), ce.Advice)
	case errors.As(err, &ce) && ce.Kind == connector.KindAuth:
		return "", fail(words(err), r.exchangeLoginAdvice(m, words(err)))
	case errors.As(err, &ce) && ce.Kind == connector.KindConfig:
		return "", fail(words(err), ce.Advice)
	}
	return "", err
}

// byteSize formats a size for people (1 kB = 1000 bytes, as mail clients show it).
func byteSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1000/1000)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1000/1000/1000)
}
