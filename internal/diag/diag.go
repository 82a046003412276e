// Package diag is the "Test connection" checklist of a mailbox: it connects to the mail
// server the way the connectors do (IMAP RFC 9051, POP3 RFC 1939 with STLS RFC 2595, SMTP
// submission RFC 6409 with STARTTLS RFC 3207 and AUTH RFC 4954, implicit TLS RFC 8314) and
// reports each step separately, so an administrator sees which step failed, the server's own
// words and what to fix in plain words.
//
// OAuth 2.0 mailboxes (Auth other than store.AuthPassword) get their access token from
// Options.Token and log in with XOAUTH2 (or OAUTHBEARER). For Microsoft's identity
// platform the token request is explained step by step (microsoft.go): sign-in service
// reachable, tenant, app, client secret or certificate (or the person's sign-in), consent
// and the permissions read from the token; each AADSTS code names its own fix. Microsoft
// Graph mailboxes (protocol "graph") then check the mailbox, the folder and sending with a
// few Graph GETs (graph.go). EWS mailboxes (protocol "ews", Exchange Server) make one
// SyncFolderItems of the inbox, whose Exchange error codes come back named with their fix
// (ews.go). Google Workspace mailboxes (provider google, google.go) get
// Google's token errors explained by the token source's advice (domain-wide delegation
// with the client id and scope, wrong subject, clock skew), Gmail's IMAP refusals (IMAP
// turned off, a suspended user) named with the admin console's fix, and Gmail API
// mailboxes (protocol "gmail") are opened with users.getProfile. Exchange Online's own refusals are recognised with the
// connectors' classifiers (imap.ExchangeRefusal, pop3.ExchangeRefusal,
// smtp.AuthOffAdvice): 535 5.7.139 (SMTP AUTH disabled) gives the running sender's
// Set-CASMailbox advice, and Exchange's "LOGIN failed." to a password says that Exchange
// Online no longer takes passwords. MicrosoftPrechecks (prechecks.go) is the walk-through the
// mailbox form shows before the first test, with the PowerShell commands filled in.
//
// Invariants:
//   - Steps run in order and stop at the first failure: a Report never lists a step after a
//     failed one, and Report.OK is true only when every listed step passed.
//   - Nothing is changed at the server: IMAP folders are opened read-only (EXAMINE), POP3
//     only counts (STAT), SMTP never sends MAIL (it ends with QUIT), Microsoft Graph gets
//     only GET requests: no test message is ever sent, not even to the mailbox itself (an
//     inbound mailbox would turn it into a work item).
//   - IMAP with after-action move (and Graph likewise): a move folder that does not exist
//     yet passes with a note, as the connector creates it before the first move; one that
//     differs from an existing folder only in case fails (a typo that would create a second
//     folder).
//   - The password, the client secret, access and refresh tokens are only handed to the
//     protocol's login command or the token source; they never appear in a Step (Detail and
//     Advice hold server answers, claims such as roles and audience, and advice only).
//   - The token is always fetched anew (TokenFunc with refresh=true), so a cached token
//     cannot hide a secret that expired or a consent that was revoked since.
//   - The whole test is bounded by Options.Timeout and ctx; every step that talks to the
//     server closes the connection when its time is up, because go-imap has no context.
package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/pop3"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Step is one line of the checklist. Advice is set only on a failed step; a passing step
// may carry a note in Detail.
type Step struct {
	Name   string // e.g. "Connect to mail.example.com:993", "TLS", "Log in as support@example.com"
	OK     bool
	Detail string // what happened, with the server's own words on failure
	Advice string // on failure: what to fix, in plain words
}

// Report is the result of a connection test. Steps after the first failure are not run
// and not listed.
type Report struct {
	OK    bool
	Steps []Step
	// SecretExpired is set when Microsoft answered that the mailbox's client secret has
	// expired (AADSTS7000222): the caller may record the expiry (store.OAuth.SecretExpiresAt)
	// so that the mailboxes page and the metric show it.
	SecretExpired bool
}

// Options tune a test. A nil *Options means the zero value.
type Options struct {
	// RootCAs, when not nil, replaces the system's trusted roots (tests use it).
	RootCAs *x509.CertPool
	// Timeout bounds the whole test; 0 means DefaultTimeout.
	Timeout time.Duration
	// Token gets the access tokens of an OAuth 2.0 mailbox (Auth other than
	// store.AuthPassword) for its protocol's audience (credential.AudienceOf), e.g.
	// credential.Tokens.For. The test always calls it with refresh=true. A mailbox whose
	// token source cannot be built passes a TokenFunc that returns that error: its advice
	// is shown. Nil for an OAuth mailbox fails the "Check settings" step.
	Token connector.TokenFunc
	// HTTPClient makes the Microsoft Graph requests of a Graph mailbox and the EWS and
	// autodiscover requests of an EWS mailbox; nil means a client that trusts RootCAs (or
	// the system's roots). The token requests are Token's own.
	HTTPClient *http.Client
}

// Protocols and security settings, as stored on a mailbox (internal/mailbox owns the rules).
const (
	protoIMAP  = "imap"
	protoPOP3  = "pop3"
	protoSMTP  = "smtp"
	protoGraph = "graph"
	protoEWS   = "ews"

	securityTLS      = "tls"
	securityStartTLS = "starttls"
	securityNone     = "none"
)

// Time limits.
const (
	// DefaultTimeout bounds a whole test: an administrator waits for the answer in a browser.
	// It leaves room for a default Dovecot's 2 s auth_failure_delay on a wrong password.
	DefaultTimeout = 20 * time.Second
	// resolveTimeout bounds the DNS lookup; resolvers retry after 5 s (resolv.conf default
	// timeout), so a lookup that takes longer will not succeed for the connectors either.
	resolveTimeout = 5 * time.Second
	// connectTimeout bounds the TCP handshake: a reachable server answers a SYN in well
	// under a second; a firewall that drops packets never answers.
	connectTimeout = 5 * time.Second
	// greetingTimeout bounds the TLS handshake and the server's greeting (RFC 5321 §4.5.3.2
	// allows 5 minutes for SMTP, but a server that is not overloaded greets at once; a TLS
	// port spoken to in plain text, or the reverse, never does).
	greetingTimeout = 10 * time.Second
	// certExpiryWarning is how soon before its expiry a certificate is pointed out in the
	// TLS step's detail.
	certExpiryWarning = 14 * 24 * time.Hour
)

// helloName is the name given in EHLO, the same as the SMTP connector's.
const helloName = "localhost"

// Test runs the connection test of mailbox m and returns the checklist. A mailbox that
// signs in with a password logs in with password; an OAuth 2.0 mailbox (every Graph
// mailbox is one) logs in with a token from opts.Token, and password is not used. It never
// returns an error: every failure is a failed Step with advice.
func Test(ctx context.Context, m store.Mailbox, password vault.Secret, opts *Options) Report {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r := &run{ctx: ctx, opts: opts, timeout: timeout}
	defer r.closeConn()
	if name, detail, advice := checkSettings(m, opts); advice != "" {
		r.steps = append(r.steps, Step{Name: name, Detail: detail, Advice: advice})
		r.failed = true
		return r.report()
	}
	if m.Protocol == protoGraph {
		testGraph(r, m)
		return r.report()
	}
	if m.Protocol == protoGmail {
		testGmail(r, m)
		return r.report()
	}
	if usesOAuth(m) && !r.signIn(m, credential.AudienceOf(m.Protocol)) {
		return r.report()
	}
	port := m.Port
	if port == 0 {
		port = defaultPort(m.Protocol, m.Security)
	}
	r.host = m.Host
	r.addr = net.JoinHostPort(m.Host, strconv.Itoa(port))
	r.tlsConfig = &tls.Config{
		ServerName: m.Host,
		RootCAs:    opts.RootCAs,
		MinVersion: tls.VersionTLS12,
		// Runs after the usual verification; it only records what was accepted.
		VerifyConnection: func(cs tls.ConnectionState) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.tlsState = &cs
			return nil
		},
	}
	switch m.Protocol {
	case protoIMAP:
		testIMAP(r, m, password)
	case protoPOP3:
		testPOP3(r, m, password)
	case protoSMTP:
		testSMTP(r, m, password)
	case protoEWS:
		testEWS(r, m, password)
	}
	return r.report()
}

// usesOAuth reports whether m signs in with an OAuth 2.0 token.
func usesOAuth(m store.Mailbox) bool {
	return m.Auth != "" && m.Auth != store.AuthPassword
}

// checkSettings catches settings no server could accept. It returns the step to report
// (advice != "") or empty strings.
func checkSettings(m store.Mailbox, opts *Options) (name, detail, advice string) {
	const name0 = "Check settings"
	switch m.Protocol {
	case protoIMAP, protoPOP3, protoSMTP, protoGraph, protoEWS, protoGmail:
	default:
		return name0, fmt.Sprintf("protocol %q", m.Protocol), "the connection test knows IMAP, POP3, SMTP, Microsoft Graph and EWS: set the protocol to one of them"
	}
	if usesOAuth(m) || m.Protocol == protoGraph {
		if n, d, a := checkOAuthSettings(m, opts); a != "" {
			return n, d, a
		}
	}
	if m.Protocol == protoGraph {
		return "", "", ""
	}
	switch m.Security {
	case securityTLS, securityStartTLS, securityNone:
	default:
		return name0, fmt.Sprintf("security %q", m.Security), "set security to tls, starttls or none"
	}
	if strings.TrimSpace(m.Host) == "" && m.Protocol != protoEWS { // EWS: autodiscover finds the server
		return name0, "no host", "enter the mail server's host name"
	}
	if m.Port < 0 || m.Port > 65535 {
		return name0, fmt.Sprintf("port %d", m.Port), "use a port from 1 to 65535"
	}
	if m.Protocol != protoSMTP && m.Login == "" {
		return name0, "no login name", "enter the login name of the mailbox (often its full email address)"
	}
	if m.Protocol == protoSMTP && usesOAuth(m) && m.Login == "" {
		return name0, "no login name", "enter the address of the mailbox to send as: the OAuth sign-in names it"
	}
	return "", "", ""
}

// defaultPort is the port for a protocol and security when none is set (RFC 8314 §7.3,
// RFC 6409 §3.1).
func defaultPort(protocol, security string) int {
	tlsPort := security == securityTLS
	switch protocol {
	case protoIMAP:
		if tlsPort {
			return 993
		}
		return 143
	case protoPOP3:
		if tlsPort {
			return 995
		}
		return 110
	case protoEWS:
		if tlsPort {
			return 443
		}
		return 80
	default:
		if tlsPort {
			return 465
		}
		return 587
	}
}

// run is one test in progress.
type run struct {
	ctx       context.Context // bounded by Options.Timeout
	opts      *Options
	timeout   time.Duration // the whole test's limit
	steps     []Step
	failed    bool
	host      string
	addr      string   // host:port as configured
	ips       []net.IP // what host resolved to
	mu        sync.Mutex
	conn      net.Conn // the TCP connection, closed when a step runs out of time (guarded by mu)
	tlsConfig *tls.Config
	tlsState  *tls.ConnectionState // set once a handshake succeeded (guarded by mu)

	// OAuth mailboxes: what the sign-in steps obtained.
	oauth         *oauthLogin
	secretExpired bool
}

func (r *run) report() Report {
	return Report{OK: len(r.steps) > 0 && !r.failed, Steps: r.steps, SecretExpired: r.secretExpired}
}

// put records a step whose outcome is already known: it passes when advice is "". It
// returns false when the step failed or an earlier one had (nothing is recorded then).
func (r *run) put(name, detail, advice string) bool {
	if r.failed {
		return false
	}
	ok := advice == ""
	r.steps = append(r.steps, Step{Name: name, OK: ok, Detail: detail, Advice: advice})
	r.failed = !ok
	return ok
}

// putTimeout records name as failed because the test ran out of time (or was canceled)
// while waiting for who.
func (r *run) putTimeout(name, who string) bool {
	if errors.Is(r.ctx.Err(), context.Canceled) {
		return r.put(name, "the test was canceled", "test again")
	}
	return r.put(name, fmt.Sprintf("no answer within %s", r.timeout.Round(time.Second)),
		fmt.Sprintf("%s did not answer in time: check that this machine may connect to it (firewall, proxy), then test again", who))
}

// closeConn closes the current connection; a step's timer may call it from another
// goroutine.
func (r *run) closeConn() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
	}
}

func (r *run) setConn(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conn = c
}

func (r *run) currentConn() net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn
}

// stepError is a failure with its detail and advice already worded.
type stepError struct {
	detail, advice string
}

func (e *stepError) Error() string { return e.detail + ": " + e.advice }

func fail(detail, advice string) error { return &stepError{detail: detail, advice: advice} }

// step runs f as the step called name, with at most timeout (0: what is left of the whole
// test), and records the result. It returns false when the step failed or an earlier one
// had; f is not run then.
func (r *run) step(name string, timeout time.Duration, f func(ctx context.Context) (detail string, err error)) bool {
	if r.failed {
		return false
	}
	ctx, cancel := r.ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(r.ctx, timeout)
	}
	defer cancel()
	budget := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	var stop func() bool
	if r.currentConn() != nil {
		stop = context.AfterFunc(ctx, r.closeConn)
	}
	detail, err := f(ctx)
	fired := stop != nil && !stop()
	return r.record(ctx, name, budget, fired, detail, err)
}

func (r *run) record(ctx context.Context, name string, budget time.Duration, timedOut bool, detail string, err error) bool {
	if err == nil && !timedOut {
		r.steps = append(r.steps, Step{Name: name, OK: true, Detail: detail})
		return true
	}
	r.failed = true
	s := Step{Name: name}
	switch {
	case errors.Is(r.ctx.Err(), context.Canceled):
		s.Detail = "the test was canceled"
	case timedOut || (ctx.Err() != nil && !isStepError(err)):
		s.Detail = fmt.Sprintf("no answer within %s", budget.Round(time.Second))
		s.Advice = connector.Advice(connector.ClassifyDial("", r.addr, context.DeadlineExceeded))
	default:
		s.Detail, s.Advice = explain(r.addr, err)
		if a := certAdvice(r.host, err); a != "" {
			s.Advice = a
		}
	}
	r.steps = append(r.steps, s)
	return false
}

func isStepError(err error) bool {
	var se *stepError
	return errors.As(err, &se)
}

// explain turns an error into the server's words and advice.
func explain(addr string, err error) (detail, advice string) {
	var se *stepError
	if errors.As(err, &se) {
		return se.detail, se.advice
	}
	var ce *connector.Error
	if !errors.As(err, &ce) {
		errors.As(connector.ClassifyDial("", addr, err), &ce)
	}
	return words(ce.Err), ce.Advice
}

// words is what the server (or the network) said, without library prefixes.
func words(err error) string {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return strings.TrimPrefix(ie.Error(), "imap: ")
	}
	var pe *pop3.Error
	if errors.As(err, &pe) {
		if pe.Code != "" {
			return fmt.Sprintf("-ERR [%s] %s", pe.Code, pe.Text)
		}
		return "-ERR " + pe.Text
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := strconv.Itoa(se.Code)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			code += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return code + " " + se.Message
	}
	return err.Error()
}

// resolve is the "Resolve <host>" step.
func (r *run) resolve() bool {
	return r.step("Resolve "+r.host, resolveTimeout, func(ctx context.Context) (string, error) {
		if ip := net.ParseIP(r.host); ip != nil {
			r.ips = []net.IP{ip}
			return "an IP address: nothing to resolve", nil
		}
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, r.host)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return "", fail(err.Error(), fmt.Sprintf("the host name %q does not exist: check its spelling", r.host))
			}
			if ctx.Err() != nil || (errors.As(err, &de) && (de.IsTimeout || de.IsTemporary)) {
				return "", fail(err.Error(), "the name server did not answer: check the DNS settings of the machine postroom runs on, then try again")
			}
			return "", fail(err.Error(), fmt.Sprintf("the host name %q cannot be resolved: check its spelling", r.host))
		}
		var shown []string
		for _, a := range addrs {
			r.ips = append(r.ips, a.IP)
			shown = append(shown, a.IP.String())
		}
		return strings.Join(shown, ", "), nil
	})
}

// connect is the "Connect to host:port" step: a TCP connection only.
func (r *run) connect() bool {
	return r.step("Connect to "+r.addr, connectTimeout, func(ctx context.Context) (string, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return "", err
		}
		r.setConn(conn)
		return "connected to " + conn.RemoteAddr().String(), nil
	})
}

// reconnect opens a new TCP connection to the same address (SMTP with security none,
// when the server turned out to have no STARTTLS, as the SMTP connector does).
func (r *run) reconnect(ctx context.Context) error {
	r.closeConn()
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", r.addr)
	if err != nil {
		return connector.ClassifyDial("connect", r.addr, err)
	}
	r.setConn(conn)
	return nil
}

// handshake does implicit TLS on r.conn and returns the TLS connection.
func (r *run) handshake(ctx context.Context) (*tls.Conn, error) {
	tc := tls.Client(r.currentConn(), r.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// port is the port of the configured address.
func (r *run) port() int {
	_, p, _ := net.SplitHostPort(r.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// plainAllowed fails when plain text is configured for a server that is not on this
// machine (the mailbox rules allow security none only on loopback).
func (r *run) plainAllowed() error {
	for _, ip := range r.ips {
		if !ip.IsLoopback() {
			return fail(fmt.Sprintf("%s is not a loopback address", ip),
				"plain text would send the password over the network: use security tls or starttls (none is only for a server on this machine)")
		}
	}
	return nil
}

// plainDetail is the TLS step's detail for security none.
const plainDetail = "none (plain text, loopback only)"

// tlsDetail describes the TLS connection and certificate accepted in this run.
func (r *run) tlsDetail(how string) string {
	r.mu.Lock()
	st := r.tlsState
	r.mu.Unlock()
	return tlsDetail(how, st)
}

// tlsDetail describes an accepted TLS connection: version, certificate names, issuer and
// expiry, with a note when the certificate expires soon.
func tlsDetail(how string, st *tls.ConnectionState) string {
	if st == nil {
		return how
	}
	s := how + ", " + tls.VersionName(st.Version)
	if len(st.PeerCertificates) == 0 {
		return s
	}
	leaf := st.PeerCertificates[0]
	issuer := leaf.Issuer.CommonName
	if issuer == "" && len(leaf.Issuer.Organization) > 0 {
		issuer = leaf.Issuer.Organization[0]
	}
	s += fmt.Sprintf(", certificate for %s issued by %s, valid until %s",
		strings.Join(certNames(leaf), ", "), issuer, leaf.NotAfter.UTC().Format(time.DateOnly))
	if left := time.Until(leaf.NotAfter); left < certExpiryWarning {
		when := "in less than a day"
		if days := int(left.Hours() / 24); days >= 1 {
			when = fmt.Sprintf("in %d days", days)
		}
		s += fmt.Sprintf(" (it expires %s: ask the mail server's administrator to renew it)", when)
	}
	return s
}

// certNames are the names a certificate is valid for.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	return names
}

// certAdvice words a certificate failure with what the certificate says; "" when err is
// not one.
func certAdvice(host string, err error) string {
	var (
		hostname  x509.HostnameError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &hostname) && hostname.Certificate != nil:
		if host == "" { // autodiscover: the host came from the address
			host = hostname.Host
		}
		return fmt.Sprintf("the server's TLS certificate is for another name (%s), not %s: enter a host name the certificate names, or ask the mail server's administrator for a certificate that names %s",
			strings.Join(certNames(hostname.Certificate), ", "), host, host)
	case errors.As(err, &authority):
		issuer := ""
		if authority.Cert != nil && authority.Cert.Issuer.CommonName != "" {
			issuer = fmt.Sprintf(" (issuer %q)", authority.Cert.Issuer.CommonName)
		}
		return "the server's TLS certificate is not signed by a trusted authority" + issuer +
			": install a certificate from a public authority on the server or, for a company authority, add it to the trusted certificates of the machine postroom runs on"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil:
		if time.Now().Before(invalid.Cert.NotBefore) {
			return fmt.Sprintf("the server's TLS certificate is valid only from %s: check the clock of this machine and of the server",
				invalid.Cert.NotBefore.UTC().Format(time.DateOnly))
		}
		return fmt.Sprintf("the server's TLS certificate has expired (on %s): ask the mail server's administrator to renew it",
			invalid.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return ""
}

// isTLSFailure reports whether err comes from the TLS handshake or certificate check.
func isTLSFailure(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
		hostname  x509.HostnameError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &hostname) || errors.As(err, &authority) || errors.As(err, &invalid) ||
		strings.HasPrefix(err.Error(), "tls: ")
}

// providerHint adds what big providers need beyond a right password, for their hosts only.
func providerHint(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	has := func(domains ...string) bool {
		return slices.ContainsFunc(domains, func(d string) bool { return h == d || strings.HasSuffix(h, "."+d) })
	}
	switch {
	case has("office365.com", "outlook.com", "outlook.office.com", "hotmail.com"):
		return "; Microsoft 365 refuses passwords (basic authentication) for IMAP, POP3 and SMTP: the mailbox needs OAuth 2.0"
	case has("gmail.com", "googlemail.com"):
		return "; Gmail accepts only an app password (with 2-step verification) or OAuth 2.0, not the account password"
	}
	return ""
}

// listNames formats folder names for advice, at most maxListed of them.
func listNames(names []string) string {
	// maxListed keeps the advice readable; a server with hundreds of folders still shows
	// enough to spot a spelling.
	const maxListed = 30
	if len(names) == 0 {
		return "(none)"
	}
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListed)
}
