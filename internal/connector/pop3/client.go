// Package pop3 implements a POP3 client (RFC 1939; CAPA and response codes RFC 2449 and
// RFC 3206; STLS RFC 2595; AUTH RFC 5034 over SASL, RFC 4422) and the POP3 Source.
//
// No maintained Go POP3 library exists, so the client is our own and small: one command
// at a time, no pipelining.
//
// Invariants a change must keep:
//
//   - Every exchange runs under a context: when it ends, the connection is closed, so a hung
//     server cannot hold the caller. Each read or write also has a deadline
//     (Config.ReadTimeout, DefaultReadTimeout): a server that sends nothing for that long
//     is hung, and the connection is closed with a KindNetwork error.
//   - Any failure other than a "-ERR" answer (I/O error, timeout, malformed answer, a
//     download the caller stopped) leaves the connection closed: the client never guesses
//     where in the stream it is.
//   - Deletions happen only at QUIT (RFC 1939 §6). Close without QUIT drops the
//     connection and the server forgets every DELE of the session.
//   - Secrets are never logged and never part of an error.
//
// OAuth 2.0 logins (LoginOAuth): AUTH XOAUTH2 when the server offers it, else OAUTHBEARER
// (RFC 7628); a refused token is renewed once and the login tried again on the same
// connection, since an abandoned AUTH leaves the session in the AUTHORIZATION state.
// Exchange's own refusal ("-ERR Authentication failure: unknown user name or bad
// password."; ExchangeRefusal) gets Exchange's fixes as advice: for a token, the service
// principal, FullAccess and Set-CASMailbox -PopEnabled; for a password, OAuth 2.0.
//
// The Source (source.go) reads a maildrop for the ingest pipeline; see its doc for how a
// POP3 snapshot, UIDL and "delete after commit" fit the connector.Source contract.
package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/vault"
)

// Security settings of a mailbox.
const (
	SecurityTLS      = "tls"      // implicit TLS (pop3s, port 995, RFC 8314)
	SecurityStartTLS = "starttls" // STLS on the plain port (RFC 2595 §4)
	SecurityNone     = "none"     // plain text, for loopback servers only
)

// Default ports (RFC 1939 §3, RFC 8314 §7.3).
const (
	defaultPort    = 110
	defaultTLSPort = 995
)

// Timeouts.
const (
	// dialTimeout bounds connecting, the TLS handshake and the greeting, as for IMAP; a
	// server that does not greet in this time is treated as down.
	dialTimeout = 20 * time.Second
	// DefaultReadTimeout bounds each wait for the server within a command: for its status
	// line, and between reads of a multi-line answer, so a large message on a slow link is
	// not cut off while it still flows. Servers delay a failed login by a few seconds on
	// purpose (Dovecot: up to 15 s), far below this.
	DefaultReadTimeout = 2 * time.Minute
	// quitTimeout bounds the QUIT of Close; a server that does not answer is just dropped.
	quitTimeout = 5 * time.Second
)

// Config says how to reach and read one POP3 maildrop.
type Config struct {
	Host     string
	Port     int    // 0: 995 for tls, else 110
	Security string // SecurityTLS, SecurityStartTLS or SecurityNone ("" = none)
	Login    string
	Password vault.Secret
	// AfterAction is AfterDelete ("" means the same) or AfterKeep.
	AfterAction string
	// Skip, when set, is asked before a message is downloaded with its SourceID; true
	// means it is stored already and Next passes over it. With AfterKeep every message
	// stays on the server, and without Skip each new session downloads all of them again.
	Skip func(sourceID string) bool
	// MaxSize, when above 0, is the largest message Next downloads whole (bytes, as LIST
	// reports them). A larger one comes back as its header only (TOP n 0) with OverSize
	// set and the full Size, and Ack never deletes it: the original stays on the server.
	MaxSize int64
	// Token, when set, makes the Source log in with OAuth 2.0 (LoginOAuth) as Login
	// instead of the password.
	Token connector.TokenFunc
	// ReadTimeout is how long the client waits for a byte from the server within a command
	// before it closes the connection as hung; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// RootCAs, when not nil, replaces the system's trusted roots (tests use it).
	RootCAs *x509.CertPool
	Logger  *slog.Logger
}

func (cfg Config) addr() string {
	port := cfg.Port
	if port == 0 {
		port = defaultPort
		if cfg.Security == SecurityTLS {
			port = defaultTLSPort
		}
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(port))
}

// Client is one POP3 connection. It is not safe for concurrent use. Its methods return
// *connector.Error values with advice; a "-ERR" answer is inside as an *Error
// (errors.As), with the server's response code.
type Client struct {
	cfg  Config
	addr string
	raw  net.Conn // the TCP connection; closing it aborts everything
	conn net.Conn // raw, or the TLS connection over it
	dl   *deadlineConn
	r    *bufio.Reader
	w    *bufio.Writer
	caps Capabilities
	// broken is why the connection was closed; every later call returns it.
	broken error
	log    *slog.Logger
}

// deadlineConn sets a deadline before every read and write, so that each wait for the
// server is bounded while a long download keeps flowing.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Capabilities are the server's CAPA answer (RFC 2449 §5): capability name (upper case)
// to its arguments. Empty when the server does not know CAPA.
type Capabilities map[string][]string

// Has reports whether the server announced the capability name.
func (c Capabilities) Has(name string) bool {
	_, ok := c[strings.ToUpper(name)]
	return ok
}

// SASL reports whether the server announced the SASL mechanism mech (RFC 5034 §3).
func (c Capabilities) SASL(mech string) bool {
	for _, m := range c["SASL"] {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// Open connects and greets: Connect followed by Greet.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	c, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Greet(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect opens the TCP connection to the server, nothing more: the first step of a
// connection test ("Connect to host:port"). Greet does the rest.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	addr := cfg.addr()
	switch cfg.Security {
	case SecurityTLS, SecurityStartTLS, SecurityNone, "":
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "pop3 connect",
			Err: fmt.Errorf("unknown security %q", cfg.Security), Advice: "set security to tls, starttls or none"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, connector.ClassifyDial("pop3 connect", addr, err)
	}
	c := &Client{cfg: cfg, addr: addr, raw: raw, log: log.With(slog.String("pop3_server", addr))}
	c.setConn(raw)
	return c, nil
}

func (c *Client) readTimeout() time.Duration {
	if c.cfg.ReadTimeout > 0 {
		return c.cfg.ReadTimeout
	}
	return DefaultReadTimeout
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.dl = &deadlineConn{Conn: conn, timeout: c.readTimeout()}
	c.r = bufio.NewReader(c.dl)
	c.w = bufio.NewWriter(c.dl)
}

// Greet makes the connection ready to log in: the TLS handshake (security tls), the
// server's greeting, STLS and a second handshake (security starttls), and CAPA. TLS
// failures are *connector.Error of KindTLS: a connection test reports them as its "TLS"
// step.
func (c *Client) Greet(ctx context.Context) error {
	if c.cfg.Security == SecurityTLS {
		if err := c.handshake(ctx); err != nil {
			return err
		}
	}
	c.dl.timeout = dialTimeout
	err := c.run(ctx, func() error {
		line, err := readLine(c.r)
		if err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		_, err = parseStatus("greeting", line)
		return err
	})
	c.dl.timeout = c.readTimeout()
	if err != nil {
		c.abort(err)
		var pe *Error
		if errors.As(err, &pe) {
			return &connector.Error{Kind: connector.KindServer, Op: "pop3 greeting", Err: err,
				Advice: "the server refuses connections for now (it may be overloaded); postroom retries"}
		}
		if errors.Is(err, errProtocol) {
			return &connector.Error{Kind: connector.KindConfig, Op: "pop3 greeting", Err: err,
				Advice: fmt.Sprintf("%s does not speak POP3: check the port (110 or 995 for POP3) and the protocol", c.addr)}
		}
		return connector.ClassifyDial("pop3 greeting", c.addr, err)
	}
	c.caps = c.capa(ctx)
	if c.cfg.Security == SecurityStartTLS {
		if err := c.startTLS(ctx); err != nil {
			return err
		}
		// RFC 2595 §4: the capabilities may differ after STLS; ask again.
		c.caps = c.capa(ctx)
	}
	if c.broken != nil {
		return c.opError("pop3 capa", c.broken)
	}
	return nil
}

// capa asks for the capabilities; a server without CAPA (RFC 1939 only) gives none.
func (c *Client) capa(ctx context.Context) Capabilities {
	caps := Capabilities{}
	err := c.run(ctx, func() error {
		if _, err := c.command("CAPA"); err != nil {
			return err
		}
		return readListing(c.r, "CAPA", func(line []byte) error {
			if f := strings.Fields(string(line)); len(f) > 0 {
				caps[strings.ToUpper(f[0])] = f[1:]
			}
			return nil
		})
	})
	if err != nil {
		c.log.Debug("pop3 server has no CAPA", slog.Any("error", err))
	}
	return caps
}

func (c *Client) startTLS(ctx context.Context) error {
	err := c.run(ctx, func() error {
		if _, err := c.command("STLS"); err != nil {
			return err
		}
		// Anything the server sent after its +OK would be read as if it came over TLS
		// (the STARTTLS injection of CVE-2011-0411): refuse it.
		if c.r.Buffered() > 0 {
			return protocolErrorf("STLS: data after +OK, before the TLS handshake")
		}
		return nil
	})
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return &connector.Error{Kind: connector.KindConfig, Op: "pop3 stls", Err: err,
				Advice: "the server does not offer STLS on this port: use security tls with the server's TLS port (995)"}
		}
		return c.opError("pop3 stls", err)
	}
	return c.handshake(ctx)
}

func (c *Client) handshake(ctx context.Context) error {
	tc := tls.Client(c.conn, &tls.Config{ServerName: c.cfg.Host, RootCAs: c.cfg.RootCAs, MinVersion: tls.VersionTLS12})
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.abort(err)
		return tlsError(c.addr, connector.ClassifyDial("pop3 tls", c.addr, err))
	}
	c.setConn(tc)
	return nil
}

// tlsError rewrites the advice for a server that answers TLS with plain text: the shared
// advice names the IMAP and SMTP ports, a POP3 admin needs 995.
func tlsError(addr string, err error) error {
	var rec tls.RecordHeaderError
	var ce *connector.Error
	if errors.As(err, &rec) && errors.As(err, &ce) {
		ce.Advice = fmt.Sprintf("%s does not speak TLS on this port: use security starttls or none here, or the server's POP3 TLS port (995)", addr)
	}
	return err
}

// TLSConnectionState returns the TLS state once TLS is up (a connection test shows the
// version and the certificate); ok is false on a plain connection.
func (c *Client) TLSConnectionState() (state tls.ConnectionState, ok bool) {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}

// Capabilities returns the server's CAPA answer as of the last Greet.
func (c *Client) Capabilities() Capabilities { return c.caps }

// Login logs in with AUTH PLAIN when the server announces it (RFC 5034), else with USER
// and PASS (RFC 1939 §7).
func (c *Client) Login(ctx context.Context, login string, password vault.Secret) error {
	if c.caps.SASL("PLAIN") {
		return c.loginError(login, c.authenticate(ctx, sasl.NewPlainClient("", login, password.Reveal())))
	}
	err := c.run(ctx, func() error {
		if err := checkArg(login); err != nil {
			return fmt.Errorf("login name: %w", err)
		}
		if err := checkArg(password.Reveal()); err != nil {
			return fmt.Errorf("password: %w", err)
		}
		if _, err := c.command("USER", login); err != nil {
			return err
		}
		_, err := c.command("PASS", password.Reveal())
		return err
	})
	return c.loginError(login, err)
}

// Authenticate logs in with a SASL mechanism (RFC 5034): PLAIN here, XOAUTH2 or
// OAUTHBEARER for OAuth 2.0. The initial response goes on the AUTH line when it fits in
// 255 octets, else after the server's empty challenge (RFC 5034 §4).
func (c *Client) Authenticate(ctx context.Context, client sasl.Client) error {
	return c.loginError("", c.authenticate(ctx, client))
}

func (c *Client) authenticate(ctx context.Context, client sasl.Client) error {
	mech, ir, err := client.Start()
	if err != nil {
		return &connector.Error{Kind: connector.KindConfig, Op: "pop3 auth", Err: err,
			Advice: "the login could not be prepared: check the mailbox's authentication settings"}
	}
	return c.run(ctx, func() error {
		line := "AUTH " + mech
		if ir != nil {
			enc := base64.StdEncoding.EncodeToString(ir)
			if len(ir) == 0 {
				enc = "=" // an empty initial response (RFC 5034 §4)
			}
			if len(line)+1+len(enc)+2 <= maxCommandLength {
				line += " " + enc
				ir = nil
			}
		}
		if err := c.send(line); err != nil {
			return err
		}
		for {
			resp, err := readLine(c.r)
			if err != nil {
				return fmt.Errorf("read AUTH answer: %w", err)
			}
			if len(resp) == 0 || resp[0] != '+' || hasIndicator(string(resp), "+OK") {
				_, err := parseStatus("AUTH", resp)
				return err
			}
			// A continuation "+ base64" (RFC 5034 §4).
			challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(resp[1:])))
			if err != nil {
				return c.cancelAuth(protocolErrorf("AUTH: challenge is not base64"))
			}
			var answer []byte
			if ir != nil && len(challenge) == 0 {
				answer, ir = ir, nil
			} else if answer, err = client.Next(challenge); err != nil {
				return c.cancelAuth(err)
			}
			if err := c.send(base64.StdEncoding.EncodeToString(answer)); err != nil {
				return err
			}
		}
	})
}

// cancelAuth sends "*" to abandon an AUTH exchange (RFC 5034 §4) and reads the -ERR.
// When the cause is the server's refusal of an OAuth token, the session stays usable
// (AUTHORIZATION state), and the error carries the server's -ERR as an *Error too.
func (c *Client) cancelAuth(cause error) error {
	if err := c.send("*"); err != nil {
		return err
	}
	line, err := readLine(c.r)
	if err != nil {
		return err
	}
	var ce *credential.ChallengeError
	if _, perr := parseStatus("AUTH", line); errors.As(cause, &ce) && perr != nil {
		return fmt.Errorf("pop3 AUTH cancelled: %w (server: %w)", cause, perr)
	}
	return fmt.Errorf("pop3 AUTH cancelled: %w", cause)
}

// adviceTokenRefused is what an admin reads when the server refuses the OAuth token even
// after a renewal.
const adviceTokenRefused = "the server refused the OAuth token: the grant may be revoked or expired: sign in again / check the app's permissions"

// ExchangeRefusal reports whether err is Exchange's refusal of a login: "-ERR
// Authentication failure: unknown user name or bad password." (ms365-protocol.md §2.3, §8
// item 10; its USER/PASS answer ends in the same words), with no response code. Exchange
// Online says no more, whatever the cause; Dovecot says "-ERR [AUTH] Authentication
// failed." (RFC 3206), which is not this.
func ExchangeRefusal(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Code == "" && strings.Contains(strings.ToLower(pe.Text), "unknown user name or bad password")
}

// exchangeTokenAdvice is the advice when Exchange refuses a token even after a renewal: the
// token endpoint issued it, so the grant stands, and what is missing is on Exchange's side.
func exchangeTokenAdvice(login string) string {
	return fmt.Sprintf("Exchange refused the OAuth token for %[1]s even after postroom fetched a new one: check the app's permissions in Exchange. "+
		"Signing in as an app, its service principal must be registered in Exchange Online PowerShell "+
		"(New-ServicePrincipal -AppId <client id> -ObjectId <enterprise application object id>) and hold FullAccess on the mailbox "+
		"(Add-MailboxPermission -Identity %[1]s -User <service principal id> -AccessRights FullAccess), with the admin-consented "+
		"permission POP.AccessAsApp; a person who signs in needs POP.AccessAsUser.All and FullAccess on the mailbox if it is not their own. "+
		"POP3 must be enabled for the mailbox: Set-CASMailbox -Identity %[1]s -PopEnabled $true; the login must be the mailbox's address. "+
		"Changes can take up to an hour to apply", login)
}

// exchangePasswordAdvice is the advice when Exchange refuses a password.
func exchangePasswordAdvice(who string) string {
	return fmt.Sprintf("Exchange refused %s with a password: Exchange Online (Microsoft 365) no longer accepts passwords for POP3, "+
		"Microsoft turned off basic authentication: use OAuth 2.0 for this mailbox (Microsoft 365 sign-in); "+
		"for an Exchange server of your own, check the login name and password", who)
}

// LoginOAuth logs in as login with an OAuth 2.0 access token from token: AUTH XOAUTH2
// when the server offers it (Microsoft offers only it), else OAUTHBEARER (RFC 7628). When
// the server refuses the token, it asks token for a new one (refresh=true) and tries
// once more; a second refusal is a KindAuth error that says to sign in again (or, in
// Exchange's words, what Exchange needs).
func (c *Client) LoginOAuth(ctx context.Context, login string, token connector.TokenFunc) error {
	mech := credential.PickOAuthMechanism(c.caps["SASL"])
	if mech == "" {
		return &connector.Error{Kind: connector.KindConfig, Op: "pop3 auth",
			Err:    fmt.Errorf("the server offers neither XOAUTH2 nor OAUTHBEARER (SASL %v)", c.caps["SASL"]),
			Advice: "the server does not accept OAuth 2.0 sign-in here: use a password for this mailbox, or the provider's OAuth POP3 host (and TLS: some servers offer it only after STLS)"}
	}
	if login == "" {
		return &connector.Error{Kind: connector.KindConfig, Op: "pop3 auth", Err: errors.New("no login for the OAuth sign-in"),
			Advice: "set the login of this mailbox to the account's email address"}
	}
	op := "pop3 auth " + mech
	var err error
	for attempt := range 2 {
		tok, terr := token(ctx, attempt > 0)
		if terr != nil {
			return connector.TokenError("pop3 oauth token", terr)
		}
		err = c.authenticate(ctx, credential.NewOAuthClient(mech, login, tok, c.cfg.Host, c.port()))
		if err == nil {
			return nil
		}
		if !tokenRefused(err) || c.broken != nil {
			break
		}
		if attempt == 0 {
			c.log.Info("pop3: the server refused the OAuth token; renewing it and logging in again", slog.Any("error", err))
		}
	}
	if tokenRefused(err) {
		advice := adviceTokenRefused
		if ExchangeRefusal(err) {
			advice = exchangeTokenAdvice(login)
		}
		return &connector.Error{Kind: connector.KindAuth, Op: op, Err: err, Advice: advice}
	}
	return c.loginError(login, err)
}

// tokenRefused reports whether err is the server's refusal of a token: its error
// challenge, or a -ERR without a code or with [AUTH] (RFC 3206 §5).
func tokenRefused(err error) bool {
	var ce *credential.ChallengeError
	if errors.As(err, &ce) {
		return true
	}
	var pe *Error
	return errors.As(err, &pe) && (pe.Code == "" || pe.Code == CodeAuth)
}

func (c *Client) port() int {
	_, p, _ := net.SplitHostPort(c.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (c *Client) loginError(login string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if !errors.As(err, &pe) {
		if errors.Is(err, errBadArgument) {
			return &connector.Error{Kind: connector.KindConfig, Op: "pop3 login", Err: err,
				Advice: "the login name or password contains a line break: type them again"}
		}
		return c.opError("pop3 login", err)
	}
	who := "the login"
	if login != "" {
		who = fmt.Sprintf("the login %q", login)
	}
	switch pe.Code {
	case CodeInUse:
		return &connector.Error{Kind: connector.KindServer, Op: "pop3 login", Err: err,
			Advice: "another client holds the mailbox (a mail app using POP3 on this account?): close it; postroom retries"}
	case CodeLoginDelay:
		return &connector.Error{Kind: connector.KindServer, Op: "pop3 login", Err: err,
			Advice: "the server allows a login only every few minutes: set a longer poll interval for this mailbox"}
	case CodeSysTemp:
		return &connector.Error{Kind: connector.KindServer, Op: "pop3 login", Err: err,
			Advice: "the server has a temporary problem; postroom retries: if it persists, check the server's log"}
	case CodeSysPerm:
		return &connector.Error{Kind: connector.KindConfig, Op: "pop3 login", Err: err,
			Advice: fmt.Sprintf("the server refuses %s for a lasting reason: ask the mail administrator", who)}
	}
	if ExchangeRefusal(err) {
		return &connector.Error{Kind: connector.KindAuth, Op: "pop3 login", Err: err, Advice: exchangePasswordAdvice(who)}
	}
	return &connector.Error{Kind: connector.KindAuth, Op: "pop3 login", Err: err,
		Advice: fmt.Sprintf("the server refused %s: check the login name and password of this mailbox", who)}
}

// Stat returns the number of messages and their total size (RFC 1939 §5).
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	err = c.run(ctx, func() error {
		text, err := c.command("STAT")
		if err != nil {
			return err
		}
		count, size, err = parseStat(text)
		return err
	})
	if err != nil {
		return 0, 0, c.opError("pop3 stat", err)
	}
	return count, size, nil
}

// MessageInfo is one message of the maildrop.
type MessageInfo struct {
	Number int    // message number in this session (RFC 1939 §5)
	Size   int64  // octets, as LIST reports
	UIDL   string // unique-id, stable across sessions (RFC 1939 §7); "" from List
}

// List returns every message's number and size (LIST without argument).
func (c *Client) List(ctx context.Context) ([]MessageInfo, error) {
	var out []MessageInfo
	err := c.run(ctx, func() error {
		if _, err := c.command("LIST"); err != nil {
			return err
		}
		return readListing(c.r, "LIST", func(line []byte) error {
			n, size, err := parseScanListing(line)
			if err == nil {
				out = append(out, MessageInfo{Number: n, Size: size})
			}
			return err
		})
	})
	if err != nil {
		return nil, c.opError("pop3 list", err)
	}
	return out, nil
}

// UIDL returns every message's unique-id by number (UIDL without argument).
func (c *Client) UIDL(ctx context.Context) (map[int]string, error) {
	out := map[int]string{}
	err := c.run(ctx, func() error {
		if _, err := c.command("UIDL"); err != nil {
			return err
		}
		return readListing(c.r, "UIDL", func(line []byte) error {
			n, uid, err := parseUIDListing(line)
			if err == nil {
				out[n] = uid
			}
			return err
		})
	})
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, &connector.Error{Kind: connector.KindConfig, Op: "pop3 uidl", Err: err,
				Advice: "the server does not support UIDL, which postroom needs to tell messages apart: ask the mail administrator to enable it, or use IMAP"}
		}
		return nil, c.opError("pop3 uidl", err)
	}
	return out, nil
}

// Messages returns LIST joined with UIDL, in message number order.
func (c *Client) Messages(ctx context.Context) ([]MessageInfo, error) {
	list, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	uids, err := c.UIDL(ctx)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, m := range list {
		m.UIDL = uids[m.Number]
		if m.UIDL == "" {
			c.log.Warn("pop3 message without unique-id skipped", slog.Int("number", m.Number))
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// Retr writes message n to w, byte-stuffing undone, line ends as the server sends them
// (RFC 1939 §5). The message streams: nothing but a small buffer is held. If w fails, the
// rest of the answer cannot be skipped safely and the connection is closed.
func (c *Client) Retr(ctx context.Context, n int, w io.Writer) (int64, error) {
	return c.stream(ctx, w, "pop3 retr", "RETR", strconv.Itoa(n))
}

// Top writes the header of message n and the first lines of its body to w (RFC 1939 §7).
func (c *Client) Top(ctx context.Context, n, lines int, w io.Writer) (int64, error) {
	return c.stream(ctx, w, "pop3 top", "TOP", strconv.Itoa(n), strconv.Itoa(lines))
}

func (c *Client) stream(ctx context.Context, w io.Writer, op, verb string, args ...string) (int64, error) {
	var written int64
	err := c.run(ctx, func() error {
		if _, err := c.command(verb, args...); err != nil {
			return err
		}
		var err error
		written, err = io.Copy(w, &dotReader{r: c.r})
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, args[0], err)
		}
		return nil
	})
	if err != nil {
		return written, c.opError(op, err)
	}
	return written, nil
}

// Dele marks message n deleted; the server removes it at QUIT (RFC 1939 §5, §6).
func (c *Client) Dele(ctx context.Context, n int) error {
	return c.simple(ctx, "pop3 dele", "DELE", strconv.Itoa(n))
}

// Noop does nothing but keeps the connection alive (RFC 1939 §5).
func (c *Client) Noop(ctx context.Context) error { return c.simple(ctx, "pop3 noop", "NOOP") }

// Rset unmarks every message marked deleted (RFC 1939 §5).
func (c *Client) Rset(ctx context.Context) error { return c.simple(ctx, "pop3 rset", "RSET") }

// Quit ends the session: the server removes the messages marked deleted and answers
// whether that worked (RFC 1939 §6). The connection is closed either way.
func (c *Client) Quit(ctx context.Context) error {
	err := c.simple(ctx, "pop3 quit", "QUIT")
	c.abort(errors.New("pop3 session ended with QUIT"))
	return err
}

// Close drops the connection without QUIT: deletions of this session are forgotten.
func (c *Client) Close() error {
	c.abort(errors.New("pop3 connection closed"))
	return nil
}

func (c *Client) simple(ctx context.Context, op, verb string, args ...string) error {
	err := c.run(ctx, func() error {
		_, err := c.command(verb, args...)
		return err
	})
	if err != nil {
		return c.opError(op, err)
	}
	return nil
}

// run runs one exchange. It closes the connection when ctx ends first, and after any
// failure but a "-ERR" answer.
func (c *Client) run(ctx context.Context, f func() error) error {
	if c.broken != nil {
		return c.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	err := f()
	if !stop() {
		c.abort(fmt.Errorf("pop3 connection closed: %w", ctx.Err()))
		if err == nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	var pe *Error
	if err != nil && !errors.As(err, &pe) {
		c.abort(err)
	}
	return err
}

func (c *Client) abort(cause error) {
	if c.broken == nil {
		c.broken = cause
	}
	c.raw.Close()
}

// errBadArgument marks an argument that would break the command line.
var errBadArgument = errors.New("contains a line break")

func checkArg(a string) error {
	if strings.ContainsAny(a, "\r\n") {
		return errBadArgument
	}
	return nil
}

// command sends "VERB args" and reads the status line; it returns the text after +OK.
func (c *Client) command(verb string, args ...string) (string, error) {
	line := verb
	for _, a := range args {
		if err := checkArg(a); err != nil {
			return "", fmt.Errorf("%s argument: %w", verb, err)
		}
		line += " " + a
	}
	if err := c.send(line); err != nil {
		return "", err
	}
	resp, err := readLine(c.r)
	if err != nil {
		return "", fmt.Errorf("read %s answer: %w", verb, err)
	}
	return parseStatus(verb, resp)
}

func (c *Client) send(line string) error {
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// opError classifies a failed command like the IMAP source does.
func (c *Client) opError(op string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	var pe *Error
	switch {
	case errors.As(err, &pe) && pe.Code == CodeInUse:
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: "another client holds the mailbox (a mail app using POP3 on this account?): close it; postroom retries"}
	case errors.As(err, &pe):
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: "the server refused the command; it is retried: if it persists, check the server's log"}
	case errors.Is(err, errProtocol):
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: "the server sent an answer that breaks the POP3 protocol; postroom reconnects: if it persists, check the server"}
	case errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded):
		return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
			Advice: fmt.Sprintf("the server stopped answering (nothing for %s in the middle of a command); postroom closed the connection and reconnects", c.readTimeout())}
	}
	return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
		Advice: "the connection to the server broke; postroom reconnects by itself"}
}
