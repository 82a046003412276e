package smtp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
)

// SASL mechanism names for OAuth 2.0. XOAUTH2 is Google's and Microsoft's (Microsoft
// offers only XOAUTH2); OAUTHBEARER is RFC 7628.
const (
	mechXOAuth2     = "XOAUTH2"
	mechOAuthBearer = sasl.OAuthBearer
)

// codeAuthFailed is RFC 4954 §6's "535 5.7.8 Authentication credentials invalid".
const codeAuthFailed = 535

// enhancedAuthOff is the enhanced status code with which Exchange Online refuses SMTP AUTH
// itself rather than the credentials (ms365-protocol.md §8 item 5): "535 5.7.139
// Authentication unsuccessful, SmtpClientAuthentication is disabled for the
// Tenant/Mailbox". Bad credentials get "535 5.7.3 Authentication unsuccessful".
var enhancedAuthOff = smtp.EnhancedCode{5, 7, 139}

// AuthOffAdvice returns the advice for Exchange Online's refusal of SMTP AUTH for the
// mailbox login (535 5.7.139), or "" when err is not one. No new token or password can
// fix it: an administrator must change a setting, so the error is KindConfig and the
// login is not retried. The words after the code tell the variants apart: SMTP AUTH off
// for the mailbox or organisation (the documented one), security defaults, or basic
// authentication (a password) turned off.
func AuthOffAdvice(login string, err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != codeAuthFailed {
		return ""
	}
	msg := strings.ToLower(se.Message)
	if se.EnhancedCode != enhancedAuthOff && !strings.Contains(msg, "smtpclientauthentication") {
		return ""
	}
	enable := fmt.Sprintf("Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false", login)
	switch {
	case strings.Contains(msg, "basic authentication"):
		return fmt.Sprintf("Exchange Online no longer accepts a password for SMTP AUTH (Microsoft turned off basic authentication): "+
			"set this outbound mailbox to sign in with OAuth 2.0 (Microsoft 365); SMTP AUTH must stay enabled for %s (%s)", login, enable)
	case strings.Contains(msg, "security defaults"):
		return fmt.Sprintf("the security defaults of the Microsoft 365 organisation block SMTP AUTH for %s: an administrator turns them off "+
			"in the Microsoft Entra admin center (Identity > Overview > Properties > Manage security defaults; protect sign-ins with "+
			"Conditional Access instead), and SMTP AUTH must be enabled for the mailbox: %s", login, enable)
	}
	return fmt.Sprintf("SMTP AUTH is disabled for %s in Exchange Online: an administrator enables it for the mailbox in Exchange Online "+
		"PowerShell with %s (or, for every mailbox that has no setting of its own, for the organisation with "+
		"Set-TransportConfig -SmtpClientAuthenticationDisabled $false; security defaults also block it). A new token or password "+
		"does not help; the change can take up to an hour to apply", login, enable)
}

// adviceTokenRefused is what an admin reads when the server refuses the OAuth token even
// after a renewal.
const adviceTokenRefused = "the server refused the OAuth token: the grant may be revoked or expired: sign in again / check the app's permissions"

// auth logs in: with OAuth 2.0 when a TokenFunc is configured, with the password when a
// login is, else not at all.
func (s *Sink) auth(ctx context.Context, c *smtp.Client) error {
	if s.cfg.Token != nil {
		return s.authToken(ctx, c)
	}
	if s.cfg.Login == "" {
		return nil
	}
	if err := needAuth(c); err != nil {
		return err
	}
	var client sasl.Client
	switch {
	case c.SupportsAuth(sasl.Plain):
		client = sasl.NewPlainClient("", s.cfg.Login, s.cfg.Password.Reveal())
	case c.SupportsAuth(sasl.Login):
		client = sasl.NewLoginClient(s.cfg.Login, s.cfg.Password.Reveal())
	default:
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("no common mechanism"),
			Advice: "the server supports neither AUTH PLAIN nor LOGIN: use OAuth 2.0 or another submission server"}
	}
	if err := c.Auth(client); err != nil {
		if advice := AuthOffAdvice(s.cfg.Login, err); advice != "" {
			return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: withCode(err), Advice: advice}
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return &connector.Error{Kind: connector.KindAuth, Op: "smtp auth", Err: withCode(err),
				Advice: fmt.Sprintf("the server refused the login %q: check the login name and password of this outbound mailbox", s.cfg.Login)}
		}
		return classifySMTP("smtp auth", err)
	}
	return nil
}

// authToken logs in with XOAUTH2 (preferred) or OAUTHBEARER. A 535 renews the token once
// and retries once on the same connection, except Exchange Online's 535 5.7.139 (SMTP AUTH
// disabled), which no token can pass.
func (s *Sink) authToken(ctx context.Context, c *smtp.Client) error {
	if err := needAuth(c); err != nil {
		return err
	}
	if s.cfg.Login == "" {
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("no login for the OAuth sign-in"),
			Advice: "set the login of this outbound mailbox to the account's email address"}
	}
	var mech string
	switch {
	case c.SupportsAuth(mechXOAuth2):
		mech = mechXOAuth2
	case c.SupportsAuth(mechOAuthBearer):
		mech = mechOAuthBearer
	default:
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("server offers neither XOAUTH2 nor OAUTHBEARER"),
			Advice: "the server does not accept OAuth 2.0 sign-in: use a password for this outbound mailbox, or the provider's OAuth submission host"}
	}
	var err error
	for attempt := range 2 {
		refresh := attempt > 0
		token, terr := s.cfg.Token(ctx, refresh)
		if terr != nil {
			return connector.TokenError("smtp oauth token", terr)
		}
		err = c.Auth(s.tokenClient(mech, token))
		var se *smtp.SMTPError
		if err == nil || !errors.As(err, &se) || se.Code != codeAuthFailed || AuthOffAdvice(s.cfg.Login, err) != "" {
			break
		}
		s.log.Info("smtp: OAuth token refused", slog.String("server", s.cfg.addr()), slog.String("mechanism", mech), slog.Bool("renewed", refresh))
	}
	if err == nil {
		return nil
	}
	if advice := AuthOffAdvice(s.cfg.Login, err); advice != "" {
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth " + mech, Err: withCode(err), Advice: advice}
	}
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se) && se.Code == codeAuthFailed:
		return &connector.Error{Kind: connector.KindAuth, Op: "smtp auth " + mech, Err: withCode(err), Advice: adviceTokenRefused}
	case errors.As(err, &se) && se.Code >= 500:
		return &connector.Error{Kind: connector.KindAuth, Op: "smtp auth " + mech, Err: withCode(err),
			Advice: fmt.Sprintf("the server refused the OAuth sign-in (%d %s): check the app's permissions for SMTP", se.Code, se.Message)}
	}
	return classifySMTP("smtp auth "+mech, err)
}

// codedReply is a server's refusal shown with its enhanced status code (RFC 3463), which
// go-smtp leaves out of its text: "535 5.7.139 Authentication unsuccessful, ..." is what an
// administrator looks up, and the code alone tells Exchange's variants apart.
type codedReply struct{ *smtp.SMTPError }

func (r codedReply) Error() string {
	c := r.EnhancedCode
	if c == smtp.NoEnhancedCode || c == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", r.Code, r.Message)
	}
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, c[0], c[1], c[2], r.Message)
}

func (r codedReply) Unwrap() error { return r.SMTPError }

// withCode shows an SMTP reply in err with its enhanced code; other errors stay as they are.
func withCode(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return codedReply{se}
	}
	return err
}

func (s *Sink) tokenClient(mech, token string) sasl.Client {
	if mech == mechXOAuth2 {
		return &lineLimited{Client: &xoauth2Client{user: s.cfg.Login, token: token}}
	}
	return &lineLimited{Client: &oauthBearerClient{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: s.cfg.Login, Token: token, Host: s.cfg.Host, Port: s.cfg.Port,
	})}}
}

// maxCommandLine is the longest SMTP command line a server must accept (RFC 5321
// §4.5.3.1.4: 512 octets with CRLF). Dovecot's submission service holds to it; an
// access token of Microsoft's size does not fit in an AUTH line with it.
const maxCommandLine = 512

// lineLimited sends the initial response on the AUTH line (RFC 4954 §4) only when the line
// stays within maxCommandLine; otherwise it sends AUTH with the mechanism alone and gives
// the response after the server's empty 334 challenge, which every server accepts.
type lineLimited struct {
	sasl.Client
	deferred []byte // the initial response held back for the first challenge
	answered bool
}

func (a *lineLimited) Start() (string, []byte, error) {
	mech, ir, err := a.Client.Start()
	if err != nil {
		return mech, ir, err
	}
	if len("AUTH ")+len(mech)+1+base64.StdEncoding.EncodedLen(len(ir))+2 > maxCommandLine {
		a.deferred = ir
		return mech, nil, nil
	}
	a.answered = true
	return mech, ir, nil
}

func (a *lineLimited) Next(challenge []byte) ([]byte, error) {
	if !a.answered {
		a.answered = true
		return a.deferred, nil
	}
	return a.Client.Next(challenge)
}

func needAuth(c *smtp.Client) error {
	if ok, _ := c.Extension("AUTH"); !ok {
		return &connector.Error{Kind: connector.KindConfig, Op: "smtp auth", Err: errors.New("server offers no AUTH"),
			Advice: "the server does not offer authentication on this connection: use STARTTLS or TLS, or leave the login empty if it relays without one"}
	}
	return nil
}

// xoauth2Client is the XOAUTH2 SASL mechanism (Google's and Microsoft's documentation;
// go-sasl has none): one initial response, and on failure the server's JSON error
// challenge is answered with an empty response so that it ends with 535.
type xoauth2Client struct {
	user, token string
}

func (a *xoauth2Client) Start() (string, []byte, error) {
	return mechXOAuth2, []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// oauthBearerClient is go-sasl's OAUTHBEARER client, except that it answers the server's
// error challenge with the dummy response RFC 7628 §3.2.3 asks for ("%x01"), so that the
// server ends the exchange with its own 535 rather than the client cancelling it.
type oauthBearerClient struct {
	sasl.Client
}

func (a *oauthBearerClient) Next([]byte) ([]byte, error) { return []byte{0x01}, nil }
