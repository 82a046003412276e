package diag

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	smtpconn "github.com/postroom/postroom/internal/connector/smtp"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// smtpExtensions are the EHLO keywords (RFC 5321 §4.1.1.1) shown in the EHLO step, in this
// order; the ones that matter for submission come first.
var smtpExtensions = []string{"AUTH", "STARTTLS", "SIZE", "8BITMIME", "SMTPUTF8", "PIPELINING",
	"CHUNKING", "BINARYMIME", "DSN", "ENHANCEDSTATUSCODES", "REQUIRETLS"}

// smtpTest is the state of an SMTP test between steps.
type smtpTest struct {
	r        *run
	c        *smtp.Client
	plain    bool  // no TLS on the connection
	ehloErr  error // EHLO after STARTTLS failed for a reason other than TLS
	ehloDone bool  // EHLO was sent on the current (final) channel
}

// testSMTP runs: Resolve, Connect, TLS, EHLO, Authenticate, then QUIT. It never sends
// MAIL. Security none behaves as the SMTP connector does: STARTTLS when the server offers
// it, plain text otherwise.
func testSMTP(r *run, m store.Mailbox, password vault.Secret) {
	t := &smtpTest{r: r}
	defer t.close()
	if !r.resolve() || !r.connect() {
		return
	}
	if !r.step("TLS", greetingTimeout, func(ctx context.Context) (string, error) { return t.secure(ctx, m.Security) }) {
		return
	}
	if !r.step("EHLO", greetingTimeout, func(context.Context) (string, error) { return t.ehlo() }) {
		return
	}
	if m.Login == "" {
		r.step("Authenticate", 0, func(context.Context) (string, error) {
			return "no login configured: the server must relay without authentication", nil
		})
		return
	}
	r.step("Authenticate as "+m.Login, 0, func(ctx context.Context) (string, error) {
		if r.oauth != nil {
			return t.authOAuth(ctx, m)
		}
		return t.auth(m.Host, m.Login, password)
	})
}

// secure sets up TLS as configured.
func (t *smtpTest) secure(ctx context.Context, security string) (string, error) {
	if security == securityTLS {
		tc, err := t.r.handshake(ctx)
		if err != nil {
			return "", err
		}
		t.c = smtp.NewClient(tc)
		return t.r.tlsDetail("implicit TLS"), nil
	}
	if security == securityNone {
		if err := t.r.plainAllowed(); err != nil {
			return "", err
		}
	}
	// NewClientStartTLS reads the greeting, says EHLO and sends STARTTLS (RFC 3207 §4).
	c, err := smtp.NewClientStartTLS(t.r.currentConn(), t.r.tlsConfig)
	if err != nil {
		var se *smtp.SMTPError
		switch {
		case strings.Contains(err.Error(), "support STARTTLS"): // go-smtp has no typed error for it
			if security == securityStartTLS {
				return "", fail("the server does not offer STARTTLS",
					fmt.Sprintf("%s does not offer STARTTLS: use security tls (usually port 465), or check the port (587 is usual for starttls)", t.r.addr))
			}
			if err := t.r.reconnect(ctx); err != nil {
				return "", err
			}
			t.c = smtp.NewClient(t.r.currentConn())
			t.plain = true
			return plainDetail + "; the server offers no STARTTLS", nil
		case errors.As(err, &se):
			return "", fail(words(err), fmt.Sprintf("the server refused to start TLS: use security tls (usually port 465), or ask the mail administrator to fix STARTTLS on %s", t.r.addr))
		}
		return "", t.noGreeting(err)
	}
	t.c = c
	// go-smtp shakes hands on the first command after STARTTLS; RFC 3207 §4.2 wants a new
	// EHLO then anyway, so send it here and report its answer in the EHLO step.
	if err := t.c.Hello(helloName); err != nil {
		if isTLSFailure(err) || t.r.ctx.Err() != nil {
			return "", err
		}
		t.ehloErr = err
	}
	t.ehloDone = true
	if security == securityNone {
		return t.r.tlsDetail("none configured, but the server offers STARTTLS, which postroom uses"), nil
	}
	return t.r.tlsDetail("STARTTLS"), nil
}

// noGreeting explains a connection that did not bring an SMTP greeting and EHLO answer.
func (t *smtpTest) noGreeting(err error) error {
	if isTLSFailure(err) || t.r.ctx.Err() != nil {
		return err
	}
	return fail(words(err), fmt.Sprintf("%s did not greet as an SMTP server: check the port (465 for tls, 587 for starttls)", t.r.addr))
}

// ehlo says EHLO (unless the TLS step did on this channel) and shows the extensions.
func (t *smtpTest) ehlo() (string, error) {
	err := t.ehloErr
	if !t.ehloDone {
		err = t.c.Hello(helloName)
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code != 220 {
			return "", fail(words(err), "the server refused EHLO: ask the mail administrator why it refuses this machine")
		}
		return "", t.noGreeting(err)
	}
	var shown []string
	for _, ext := range smtpExtensions {
		if ok, param := t.c.Extension(ext); ok {
			shown = append(shown, strings.TrimSpace(ext+" "+param))
		}
	}
	if len(shown) == 0 {
		return "no extensions announced", nil
	}
	return "extensions: " + strings.Join(shown, ", "), nil
}

// auth authenticates with PLAIN (RFC 4616) or LOGIN, as the SMTP connector does (RFC 4954).
func (t *smtpTest) auth(host, login string, password vault.Secret) (string, error) {
	ok, mechs := t.c.Extension("AUTH")
	if !ok {
		if t.plain {
			return "", fail("the server announces no AUTH on this plain-text connection",
				"the server offers no authentication here: leave the login empty if it relays without one; otherwise use its submission port (587 or 465) with security starttls or tls")
		}
		return "", fail("the server announces no AUTH",
			fmt.Sprintf("%s does not offer authentication: use the submission port (587 or 465), or leave the login empty if this server relays without one", t.r.addr))
	}
	var client sasl.Client
	var mech string
	switch {
	case t.c.SupportsAuth(sasl.Plain):
		client, mech = sasl.NewPlainClient("", login, password.Reveal()), sasl.Plain
	case t.c.SupportsAuth(sasl.Login):
		client, mech = sasl.NewLoginClient(login, password.Reveal()), sasl.Login
	default:
		advice := "postroom signs in with PLAIN or LOGIN, which this server does not offer: ask the mail administrator to enable one of them (over TLS)"
		if strings.Contains(strings.ToUpper(mechs), "XOAUTH2") || strings.Contains(strings.ToUpper(mechs), "OAUTHBEARER") {
			advice = "the server accepts only OAuth 2.0 sign-in here, which this mailbox is not set up for: ask the mail administrator to enable AUTH PLAIN or LOGIN, or use OAuth 2.0"
		}
		return "", fail("the server offers AUTH "+mechs, advice)
	}
	if err := t.c.Auth(client); err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return "", err
		}
		if advice := smtpconn.AuthOffAdvice(login, err); advice != "" {
			return "", fail(words(err), advice)
		}
		return "", fail(words(err), smtpAuthAdvice(se, mech, host))
	}
	return fmt.Sprintf("accepted (AUTH %s)", mech), nil
}

// authOAuth authenticates with XOAUTH2 (or OAUTHBEARER, RFC 7628) and the token the
// sign-in steps obtained.
func (t *smtpTest) authOAuth(ctx context.Context, m store.Mailbox) (string, error) {
	ok, mechs := t.c.Extension("AUTH")
	if !ok {
		return "", fail("the server announces no AUTH",
			fmt.Sprintf("%s does not offer authentication: use the submission port (Exchange Online: smtp.office365.com, port 587, security starttls)", t.r.addr))
	}
	mech := credential.PickOAuthMechanism(strings.Fields(mechs))
	if mech == "" {
		return "", fail("the server offers AUTH "+mechs,
			"the server does not take OAuth 2.0 sign-in (XOAUTH2 or OAUTHBEARER): check the host (Exchange Online: smtp.office365.com, port 587, security starttls), or use a password for this mailbox")
	}
	token, err := t.r.tokenFor(ctx, false)
	if err != nil {
		return "", err
	}
	client := &finalAnswerClient{Client: credential.NewOAuthClient(mech, m.Login, token, m.Host, t.r.port())}
	if err := t.c.Auth(client); err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return "", err
		}
		if se.Code/100 == 4 {
			return "", fail(words(err), "the server cannot check the sign-in right now (temporary failure): test again later")
		}
		// Exchange's 535 5.7.139: SMTP AUTH is off, whatever the token; the same advice as
		// the running sender gives.
		if advice := smtpconn.AuthOffAdvice(m.Login, err); advice != "" {
			return "", fail(words(err), advice)
		}
		return "", fail(words(err), t.r.exchangeLoginAdvice(m, words(err)))
	}
	return fmt.Sprintf("accepted (AUTH %s)", mech), nil
}

// finalAnswerClient sends the mechanism's initial response after the server's empty
// "334 " challenge rather than on the AUTH line: RFC 4954 §4 allows both, and a token of
// real size (1-3 kB) makes the AUTH line longer than some servers take (Dovecot answers
// "500 5.5.2 Line too long" past 512 octets). It answers a later error challenge the way
// the mechanisms ask (an empty response for XOAUTH2, %x01 for OAUTHBEARER, RFC 7628
// §3.2.3), so that the server ends the exchange with its own reply code and words (535
// 5.7.139 and the like) instead of the client cancelling it.
type finalAnswerClient struct {
	sasl.Client
	mech string
	ir   []byte // the initial response, sent at the first challenge
	sent bool
}

func (a *finalAnswerClient) Start() (string, []byte, error) {
	mech, ir, err := a.Client.Start()
	if err != nil {
		return "", nil, err
	}
	a.mech, a.ir = mech, ir
	return mech, nil, nil
}

func (a *finalAnswerClient) Next(challenge []byte) ([]byte, error) {
	if !a.sent && len(challenge) == 0 {
		a.sent = true
		return a.ir, nil
	}
	if a.mech == credential.MechOAUTHBEARER {
		return []byte{0x01}, nil
	}
	return []byte{}, nil
}

// smtpAuthAdvice words a refused AUTH by its reply code (RFC 4954 §6, RFC 5321 §4.2).
func smtpAuthAdvice(se *smtp.SMTPError, mech, host string) string {
	switch {
	case se.Code == 530 || se.Code == 538:
		return "the server wants an encrypted connection before the password: use security starttls or tls"
	case se.Code == 534:
		return "the server refuses this way of signing in for this login" + providerHint(host) +
			": ask the mail administrator which sign-in it allows"
	case se.Code == 504:
		return fmt.Sprintf("the server refused the mechanism %s although it announced it: ask the mail administrator to enable AUTH PLAIN or LOGIN", mech)
	case se.Code/100 == 4:
		return "the server cannot check the password right now (temporary failure): try again later; if it persists, tell the mail administrator"
	}
	return "the server refused the login name or password: check both (the login is often the full email address)" + providerHint(host)
}

// close says QUIT (nothing was sent) and closes the connection.
func (t *smtpTest) close() {
	if t.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.r.ctx, logoutTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, t.r.closeConn)
	defer stop()
	_ = t.c.Quit() // returns at once when the greeting or EHLO had failed
	t.c.Close()
}
