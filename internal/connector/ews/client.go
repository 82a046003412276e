package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/go-ntlmssp"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/vault"
)

// Namespaces of EWS and SOAP 1.1.
const (
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
)

// Limits of the client.
const (
	// requestTimeout bounds one request; a GetItem of large messages gets transferTimeout.
	requestTimeout  = 60 * time.Second
	transferTimeout = 10 * time.Minute
	// maxBusyRetries is how many ErrorServerBusy answers in a row one call waits out.
	maxBusyRetries = 5
	// maxBackOff caps one wait for ErrorServerBusy.
	maxBackOff = 5 * time.Minute
	// maxResponse bounds a response: 150 MB messages come base64 encoded.
	maxResponse = 256 << 20
)

// ResponseError is an EWS error: a response message with ResponseClass="Error" or a SOAP
// fault, with Exchange's ResponseCode (ErrorAccessDenied, ErrorServerBusy, ...).
type ResponseError struct {
	Code    string
	Message string
	// BackOff is ErrorServerBusy's BackOffMilliseconds hint, 0 when none.
	BackOff time.Duration
	// Fault is true when it came as a SOAP fault (HTTP 500).
	Fault bool
}

func (e *ResponseError) Error() string {
	s := e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.BackOff > 0 {
		s += fmt.Sprintf(" (back off %s)", e.BackOff)
	}
	return s
}

// HTTPError is an answer that is not SOAP: a 401 with the methods the server offered, or
// another status.
type HTTPError struct {
	Status int
	// Offered lists the WWW-Authenticate schemes of a 401 ("Negotiate", "NTLM", "Basic").
	Offered []string
}

func (e *HTTPError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("HTTP 401 Unauthorized (the server offers: %s)", strings.Join(e.Offered, ", "))
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// client makes SOAP calls for one mailbox.
type client struct {
	url         string
	mailbox     string
	login       string
	password    vault.Secret
	token       connector.TokenFunc
	impersonate bool
	http        *http.Client
	log         *slog.Logger
	stale       func()
	requests    atomic.Int64
	ntlm        bool // the server offers only Windows authentication: NTLM through go-ntlmssp
	// triedImpersonation: orImpersonate tried the ExchangeImpersonation header once.
	triedImpersonation bool
}

// orImpersonate runs f as a delegate; when Exchange answers ErrorAccessDenied it runs f
// again with the ExchangeImpersonation header, and keeps impersonating when that works
// (the account holds ApplicationImpersonation but no Full Access). When impersonation is
// refused too, the first error is returned.
func (c *client) orImpersonate(f func() error) error {
	err := f()
	if Code(err) != "ErrorAccessDenied" || c.impersonate || c.triedImpersonation {
		return err
	}
	c.triedImpersonation = true
	c.impersonate = true
	if err2 := f(); err2 == nil {
		c.log.Info("ews: the account may not open the mailbox as a delegate but may impersonate it: impersonating")
		return nil
	}
	c.impersonate = false
	return err
}

// offersWindowsAuth reports whether a 401 offers NTLM or Negotiate and not Basic.
func offersWindowsAuth(offered []string) bool {
	windows := false
	for _, o := range offered {
		switch strings.ToLower(o) {
		case "basic":
			return false
		case "ntlm", "negotiate":
			windows = true
		}
	}
	return windows
}

// useNTLM switches the client to NTLM: the login and password go into an NTLMv2 handshake
// (github.com/Azure/go-ntlmssp) instead of a Basic header; Basic is not sent any more.
func (c *client) useNTLM() {
	c.ntlm = true
	hc := *c.http
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = ntlmssp.Negotiator{RoundTripper: rt}
	c.http = &hc
	c.log.Info("ews: the server takes Windows authentication only; signing in with NTLM")
}

func newClient(cfg Config) (*client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: fmt.Errorf("EWS URL %q", cfg.URL),
			Advice: "give the EWS URL, such as https://mail.contoso.com/EWS/Exchange.asmx"}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: fmt.Errorf("EWS URL %q is not https", cfg.URL),
			Advice: "EWS sends the password or token with every request: use https:// (plain http only to this machine)"}
	}
	if cfg.Mailbox == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: errors.New("no mailbox address"),
			Advice: "give the mailbox's primary SMTP address"}
	}
	if cfg.Token == nil && cfg.Login == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews config", Err: errors.New("no login"),
			Advice: "give the account that signs in (user@domain or DOMAIN\\user) and its password, or choose OAuth"}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &client{url: u.String(), mailbox: cfg.Mailbox, login: cfg.Login, password: cfg.Password, token: cfg.Token,
		impersonate: cfg.Impersonate, http: hc, log: log, stale: cfg.Stale}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// envelope wraps an operation's element in a SOAP envelope with the server version and,
// for impersonation, the ExchangeImpersonation header.
func (c *client) envelope(body string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + nsSoap + `" xmlns:t="` + nsTypes + `" xmlns:m="` + nsMessages + `"><soap:Header>`)
	b.WriteString(`<t:RequestServerVersion Version="Exchange2013"/>`)
	if c.impersonate {
		b.WriteString(`<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>` + esc(c.mailbox) + `</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`)
	}
	b.WriteString(`</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// mailboxElem names the mailbox in a DistinguishedFolderId (delegate access); with
// impersonation the header names it.
func (c *client) folderID(id string) string {
	if c.impersonate {
		return `<t:DistinguishedFolderId Id="` + esc(id) + `"/>`
	}
	return `<t:DistinguishedFolderId Id="` + esc(id) + `"><t:Mailbox><t:EmailAddress>` + esc(c.mailbox) + `</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>`
}

// call posts one operation and returns its response element (<m:{op}Response>). It waits
// out ErrorServerBusy faults for their BackOffMilliseconds (up to maxBusyRetries) and asks
// a new token once after a 401.
func (c *client) call(ctx context.Context, op, body string, timeout time.Duration) (*node, error) {
	env := c.envelope(body)
	refresh := false
	busy := 0
	for {
		resp, err := c.post(ctx, env, refresh, timeout)
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized && c.token != nil && !refresh {
			refresh = true
			continue
		}
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized && c.token == nil && !c.ntlm && offersWindowsAuth(he.Offered) {
			c.useNTLM()
			continue
		}
		var re *ResponseError
		if errors.As(err, &re) && re.Code == "ErrorServerBusy" && busy < maxBusyRetries {
			busy++
			wait := min(max(re.BackOff, 100*time.Millisecond), maxBackOff)
			c.log.Info("ews: Exchange is busy (throttled): waiting as it asks", slog.String("op", op), slog.Duration("back_off", wait))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			if c.stale != nil && (errors.As(err, &he) && he.Status == http.StatusNotFound || Code(err) == "ErrorMailboxMoveInProgress") {
				c.log.Info("ews: the EWS URL no longer serves the mailbox: autodiscover runs again at the next connection", slog.String("error", err.Error()))
				c.stale()
			}
			return nil, err
		}
		r := resp.path("Body")
		if r == nil || len(r.Kids) == 0 {
			return nil, fmt.Errorf("ews %s: an answer without a body", op)
		}
		return r.Kids[0], nil
	}
}

// post sends one request and decodes the envelope; a SOAP fault becomes *ResponseError,
// another non-200 answer *HTTPError.
func (c *client) post(ctx context.Context, env []byte, refresh bool, timeout time.Duration) (*node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(env))
	if err != nil {
		return nil, fmt.Errorf("ews request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if err := c.authorize(ctx, req, refresh); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ews post: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, &HTTPError{Status: resp.StatusCode, Offered: offeredSchemes(resp.Header)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("ews read answer: %w", err)
	}
	root, perr := parseTree(bytes.NewReader(data))
	if perr != nil || root.Local != "Envelope" {
		if resp.StatusCode != http.StatusOK {
			return nil, &HTTPError{Status: resp.StatusCode}
		}
		return nil, fmt.Errorf("ews: the answer is not SOAP: %v", perr)
	}
	if f := root.path("Body", "Fault"); f != nil {
		re := &ResponseError{Fault: true, Code: f.path("detail", "ResponseCode").text(), Message: f.kid("faultstring").text()}
		if re.Code == "" {
			_, re.Code, _ = strings.Cut(f.kid("faultcode").text(), ":")
		}
		for _, v := range f.path("detail", "MessageXml").all("Value") {
			if v.Attrs["Name"] == "BackOffMilliseconds" {
				if ms, err := strconv.ParseInt(v.text(), 10, 64); err == nil {
					re.BackOff = time.Duration(ms) * time.Millisecond
				}
			}
		}
		return nil, re
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Status: resp.StatusCode}
	}
	return root, nil
}

// authorize signs req in: an OAuth 2.0 bearer token when the client has one (refresh
// asks for a new one), else Basic with the login and password (which the NTLM transport
// replaces after useNTLM). It counts the request.
func (c *client) authorize(ctx context.Context, req *http.Request, refresh bool) error {
	if c.token != nil {
		tok, err := c.token(ctx, refresh)
		if err != nil {
			return connector.TokenError("ews oauth token", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	} else {
		req.SetBasicAuth(c.login, c.password.Reveal())
	}
	c.requests.Add(1)
	return nil
}

// offeredSchemes are the authentication schemes a 401's WWW-Authenticate headers offer.
func offeredSchemes(h http.Header) []string {
	var offered []string
	for _, v := range h.Values("WWW-Authenticate") {
		if f := strings.Fields(v); len(f) > 0 {
			offered = append(offered, strings.TrimSuffix(f[0], ","))
		}
	}
	return offered
}

// responseMessages returns the response messages of resp, and the error of each.
func responseMessages(resp *node) ([]*node, []error) {
	msgs := resp.kid("ResponseMessages")
	if msgs == nil {
		return nil, nil
	}
	errs := make([]error, len(msgs.Kids))
	for i, m := range msgs.Kids {
		if m.Attrs["ResponseClass"] != "Success" {
			code := m.kid("ResponseCode").text()
			if code == "NoError" && m.Attrs["ResponseClass"] == "Warning" {
				continue
			}
			errs[i] = &ResponseError{Code: code, Message: m.kid("MessageText").text()}
		}
	}
	return msgs.Kids, errs
}

// Code returns the EWS ResponseCode in err, "" when none.
func Code(err error) string {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// Classify turns an error of a call into a *connector.Error that names the fix.
func (c *client) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) {
		return err
	}
	return Classify(op, c.login, err)
}

// Classify turns an error of an EWS call into a *connector.Error whose Advice names the
// fix for Exchange's error codes, a 401 (with the methods the server offered) and network
// failures. login is the account that signs in.
func Classify(op, login string, err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	e := &connector.Error{Kind: connector.KindServer, Op: op, Err: err}
	var re *ResponseError
	var he *HTTPError
	switch {
	case errors.As(err, &re):
		switch re.Code {
		case "ErrorAccessDenied":
			e.Kind = connector.KindAuth
			e.Advice = fmt.Sprintf("%s signs in but may neither open this mailbox as a delegate nor impersonate it: give it Full Access (Add-MailboxPermission <mailbox> -User %s -AccessRights FullAccess), or the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation -User %s); postroom tries impersonation by itself when delegate access is refused", login, login, login)
		case "ErrorMailboxMoveInProgress":
			e.Advice = "the mailbox is being moved to another Exchange server: postroom tries again, and asks autodiscover for its new EWS URL when the host is left empty"
		case "ErrorNonExistentMailbox":
			e.Kind = connector.KindConfig
			e.Advice = "Exchange knows no mailbox with this address: give the mailbox's primary SMTP address (Get-Mailbox <name> | fl PrimarySmtpAddress)"
		case "ErrorImpersonateUserDenied":
			e.Kind = connector.KindAuth
			e.Advice = fmt.Sprintf("%s may not impersonate this mailbox: give it Full Access to the mailbox (Add-MailboxPermission <mailbox> -User %s -AccessRights FullAccess), which postroom uses first, or the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation -User %s)", login, login, login)
		case "ErrorServerBusy":
			e.Advice = fmt.Sprintf("Exchange is throttling this account (it asked to wait %s): postroom waits and tries again; if it persists, give the account a throttling policy with higher EWS limits (New-ThrottlingPolicy, Set-ThrottlingPolicyAssociation)", re.BackOff)
		case "ErrorInvalidSyncStateData":
			e.Advice = "Exchange no longer knows the folder's sync state: postroom reads the folder from the start; copies stored before are recognised, not duplicated"
		case "ErrorFolderNotFound":
			e.Kind = connector.KindConfig
			e.Advice = "the folder does not exist in this mailbox: choose inbox, or a well-known folder (deleteditems, junkemail)"
		case "ErrorMissingEmailAddress":
			e.Kind = connector.KindConfig
			e.Advice = "the account has no mailbox of its own: give the mailbox address to open"
		case "ErrorInvalidRecipients", "ErrorMimeContentConversionFailed", "ErrorMessageSizeExceeded":
			e.Kind = connector.KindRejected
			e.Advice = "Exchange refused the message: " + re.Message
		default:
			e.Advice = "Exchange answered with an error; postroom tries again: if it persists, see the Exchange server's event log"
		}
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		e.Kind = connector.KindAuth
		offered := strings.Join(he.Offered, ", ")
		if offered == "" {
			offered = "none named"
		}
		e.Advice = fmt.Sprintf("Exchange refused the sign-in of %s (it offers: %s): check the login (user@domain or DOMAIN\\user) and password; postroom signs in with Basic, NTLM (when the server offers only Windows authentication) or OAuth bearer tokens", login, offered)
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		e.Kind = connector.KindConfig
		e.Advice = "no EWS at this URL: it usually ends in /EWS/Exchange.asmx"
	case errors.As(err, &he) && he.Status == http.StatusForbidden:
		e.Kind = connector.KindAuth
		e.Advice = "Exchange forbids EWS to this account (Set-CASMailbox -EWSEnabled $true) or requires another authentication"
	case errors.As(err, &he):
		e.Advice = "Exchange answered with an HTTP error; postroom tries again"
	default:
		e.Kind = connector.KindNetwork
		e.Advice = "the EWS server could not be reached or hung up: check the EWS URL; postroom tries again"
	}
	return e
}
