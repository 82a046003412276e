package diag

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	imapconn "github.com/postroom/postroom/internal/connector/imap"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// logoutTimeout bounds the polite LOGOUT (RFC 9051 §6.1.3) / QUIT at the end of a test; the
// result is known by then, so a server that does not answer is simply hung up on.
const logoutTimeout = 2 * time.Second

// imapTest is the state of an IMAP test between steps.
type imapTest struct {
	r       *run
	c       *imapclient.Client
	folders []*imap.ListData // LIST "" "*", fetched once when needed
	greeted bool             // the server greeted: LOGOUT is worth sending
}

// testIMAP runs: Resolve, Connect, TLS, Log in, Open folder and, for after-action move,
// the move folder's check.
func testIMAP(r *run, m store.Mailbox, password vault.Secret) {
	t := &imapTest{r: r}
	defer t.close()
	folder := m.Folder
	if folder == "" {
		folder = "INBOX"
	}
	if !r.resolve() || !r.connect() {
		return
	}
	if !r.step("TLS", greetingTimeout, func(ctx context.Context) (string, error) { return t.secure(ctx, m.Security) }) {
		return
	}
	if !r.step("Log in as "+m.Login, 0, func(ctx context.Context) (string, error) {
		if r.oauth != nil {
			return t.loginOAuth(ctx, m)
		}
		return t.login(m.Host, m.Login, password)
	}) {
		return
	}
	if !r.step("Open folder "+folder, 0, func(context.Context) (string, error) { return t.open(folder, m.Login) }) {
		return
	}
	if m.AfterAction == store.AfterMove {
		// Not "Folder X exists": a missing folder passes (see moveFolder).
		name := strings.TrimSpace("Move folder " + m.MoveFolder)
		r.step(name, 0, func(context.Context) (string, error) { return t.moveFolder(folder, m.MoveFolder) })
	}
}

// secure sets up TLS as configured and waits for the server's greeting over it.
func (t *imapTest) secure(ctx context.Context, security string) (string, error) {
	opts := &imapclient.Options{TLSConfig: t.r.tlsConfig}
	var how string
	switch security {
	case securityTLS:
		tc, err := t.r.handshake(ctx)
		if err != nil {
			return "", err
		}
		t.c = imapclient.New(tc, opts)
		how = "implicit TLS"
	case securityStartTLS:
		// NewStartTLS reads the greeting, sends STARTTLS (RFC 9051 §6.2.1) and does the
		// handshake.
		c, err := imapclient.NewStartTLS(t.r.currentConn(), opts)
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return "", fail(words(err), fmt.Sprintf("the server refused STARTTLS on %s: use security tls (port 993), or ask the mail administrator to enable STARTTLS", t.r.addr))
			}
			return "", t.noGreeting(err, security)
		}
		t.c = c
		how = "STARTTLS"
	default:
		if err := t.r.plainAllowed(); err != nil {
			return "", err
		}
		t.c = imapclient.New(t.r.currentConn(), opts)
	}
	if err := t.c.WaitGreeting(); err != nil {
		return "", t.noGreeting(err, security)
	}
	t.greeted = true
	if security == securityNone {
		return plainDetail, nil
	}
	return t.r.tlsDetail(how), nil
}

// noGreeting explains a connection that did not bring an IMAP greeting.
func (t *imapTest) noGreeting(err error, security string) error {
	if isTLSFailure(err) || t.r.ctx.Err() != nil {
		return err
	}
	advice := fmt.Sprintf("%s did not greet as an IMAP server: check the port (993 for tls, 143 for starttls)", t.r.addr)
	if security != securityTLS {
		advice += "; if it is a TLS port, use security tls"
	}
	return fail(err.Error(), advice)
}

// login logs in with LOGIN (RFC 9051 §6.2.3).
func (t *imapTest) login(host, login string, password vault.Secret) (string, error) {
	// RFC 9051 §6.2.3: LOGINDISABLED means the server takes no password here.
	if t.c.Caps().Has(imap.CapLoginDisabled) {
		return "", fail("the server announces LOGINDISABLED",
			"the server does not accept a password on this connection: use security tls or starttls")
	}
	err := t.c.Login(login, password.Reveal()).Wait()
	if err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) {
			return "", err
		}
		if imapconn.ExchangeRefusal(err) {
			return "", fail(words(err), exchangePasswordAdvice(protoIMAP))
		}
		return "", fail(words(err), imapLoginAdvice(ie.Code, host, login))
	}
	if t.c.Caps().Has(imap.CapIdle) {
		return "logged in; the server supports IDLE: new mail is seen at once", nil
	}
	return "logged in; the server has no IDLE: the folder is polled", nil
}

// loginOAuth logs in with AUTHENTICATE XOAUTH2 (or OAUTHBEARER, RFC 7628) and the token
// the sign-in steps obtained. It is not retried with a renewed token: that one is fresh.
func (t *imapTest) loginOAuth(ctx context.Context, m store.Mailbox) (string, error) {
	mechs := t.c.Caps().AuthMechanisms()
	mech := credential.PickOAuthMechanism(mechs)
	if mech == "" {
		return "", fail(fmt.Sprintf("the server offers AUTH=%s", strings.Join(mechs, " AUTH=")),
			"the server does not take OAuth 2.0 sign-in (XOAUTH2 or OAUTHBEARER) here: check the host (Exchange Online: outlook.office365.com, security tls, port 993), or use a password for this mailbox")
	}
	token, err := t.r.tokenFor(ctx, false)
	if err != nil {
		return "", err
	}
	err = t.c.Authenticate(credential.NewOAuthClient(mech, m.Login, token, m.Host, t.r.port()))
	if err == nil {
		return fmt.Sprintf("logged in (AUTHENTICATE %s)", mech), nil
	}
	// After a refused token the exchange may still be open (the client answers the
	// error challenge by returning): no LOGOUT on this connection, it is closed.
	t.greeted = false
	var ce *credential.ChallengeError
	var ie *imap.Error
	if errors.As(err, &ce) || errors.As(err, &ie) {
		return "", fail(words(err), t.r.exchangeLoginAdvice(m, words(err)))
	}
	return "", err
}

// exchangePasswordAdvice explains Exchange's refusal of a password ("NO LOGIN failed.",
// "-ERR ... unknown user name or bad password."): Exchange Online takes none for IMAP and
// POP3 any more.
func exchangePasswordAdvice(protocol string) string {
	return "Exchange refused the password: Exchange Online (Microsoft 365) no longer accepts passwords for " + protoName(protocol) +
		", Microsoft turned off basic authentication: set this mailbox to sign in with OAuth 2.0 (Microsoft 365 app or a person's sign-in); " +
		"for an Exchange server of your own, check the login name and password"
}

// imapLoginAdvice words a refused LOGIN by its response code (RFC 5530).
func imapLoginAdvice(code imap.ResponseCode, host, login string) string {
	switch code {
	case imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeContactAdmin:
		return fmt.Sprintf("the login %q is not allowed to use IMAP: ask the mail administrator to enable IMAP access for it", login)
	case imap.ResponseCodeUnavailable:
		return "the server cannot check passwords right now: try again later; if it persists, tell the mail administrator"
	case imap.ResponseCodeExpired:
		return "the password has expired: change it at the mail provider, then enter the new one here"
	case imap.ResponseCodePrivacyRequired:
		return "the server accepts the password only over an encrypted connection: use security tls or starttls"
	}
	return "the server refused the login name or password: check both (the login is often the full email address)" + providerHint(host)
}

// open opens the folder read-only (EXAMINE, RFC 9051 §6.3.3), which changes nothing.
func (t *imapTest) open(folder, login string) (string, error) {
	data, err := t.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) {
			return "", err
		}
		names, lerr := t.folderNames()
		if lerr != nil {
			return "", fail(words(err), fmt.Sprintf("the folder %q cannot be opened: check its name (case matters)", folder))
		}
		if !hasFolder(names, folder) {
			return "", fail(words(err), missingFolderAdvice(folder, names, "check its name (case matters)"))
		}
		return "", fail(words(err), fmt.Sprintf("the folder %q exists but the server refused to open it: check that the login %q may read it", folder, login))
	}
	return fmt.Sprintf("%d messages", data.NumMessages), nil
}

// moveFolder checks the folder that processed messages are moved to. A missing folder
// passes with a note, because the IMAP connector creates it before the first move; but when
// a folder of the same name in another case exists, the setting is almost surely a typo
// that would create a second folder, so the step fails.
func (t *imapTest) moveFolder(watched, target string) (string, error) {
	names, err := t.folderNames()
	if err != nil {
		return "", err
	}
	if target == "" {
		return "", fail("after-processing action is move, but no folder is set",
			"choose the folder to move processed messages to; the server's folders are: "+listNames(names))
	}
	if sameFolder(watched, target) {
		return "", fail(fmt.Sprintf("%q is the watched folder", target),
			"choose another folder to move processed messages to than the one postroom reads")
	}
	if hasFolder(names, target) {
		return "messages are moved there once stored", nil
	}
	for _, n := range names {
		if strings.EqualFold(n, target) {
			return "", fail(fmt.Sprintf("no folder %q on the server, but there is %q", target, n),
				fmt.Sprintf("folder names are case-sensitive: use %s, or postroom would create a second folder %s", n, target))
		}
	}
	return fmt.Sprintf("not there yet: postroom creates it when it moves the first message (the server's folders are: %s)", listNames(names)), nil
}

// folderNames lists the folders that can hold messages (LIST "" "*", RFC 9051 §6.3.9).
func (t *imapTest) folderNames() ([]string, error) {
	if t.folders == nil {
		list, err := t.c.List("", "*", nil).Collect()
		if err != nil {
			return nil, fmt.Errorf("imap list: %w", err)
		}
		t.folders = list
	}
	var names []string
	for _, f := range t.folders {
		if hasAttr(f.Attrs, imap.MailboxAttrNoSelect) || hasAttr(f.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		names = append(names, f.Mailbox)
	}
	return names, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// sameFolder compares folder names: exactly, except INBOX, which is case-insensitive
// (RFC 9051 §5.1).
func sameFolder(a, b string) bool {
	if strings.EqualFold(a, "INBOX") {
		return strings.EqualFold(b, "INBOX")
	}
	return a == b
}

func hasFolder(names []string, folder string) bool {
	for _, n := range names {
		if sameFolder(n, folder) {
			return true
		}
	}
	return false
}

// missingFolderAdvice names the missing folder, a near miss in case, and the server's folders.
func missingFolderAdvice(folder string, names []string, what string) string {
	advice := fmt.Sprintf("the folder %s does not exist: %s", folder, what)
	for _, n := range names {
		if strings.EqualFold(n, folder) {
			advice += fmt.Sprintf(" (the server has %s)", n)
			break
		}
	}
	return advice + "; the server's folders are: " + listNames(names)
}

// close logs out politely and closes the connection.
func (t *imapTest) close() {
	if t.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.r.ctx, logoutTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, t.r.closeConn)
	defer stop()
	if t.greeted {
		_ = t.c.Logout().Wait()
	}
	t.c.Close()
}
