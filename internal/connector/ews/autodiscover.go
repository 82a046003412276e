package ews

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/vault"
)

// Namespaces and names of Exchange Autodiscover: the SOAP service (GetUserSettings, Exchange
// 2010 and later) and the POX service (Outlook's autodiscover.xml, Exchange 2007 and later).
const (
	nsAutodiscover     = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	nsAddressing       = "http://www.w3.org/2005/08/addressing"
	actionUserSettings = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
	nsPOXRequest       = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	nsPOXResponse      = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

	// AutodiscoverSOAPPath and AutodiscoverPOXPath are where Exchange serves Autodiscover.
	AutodiscoverSOAPPath = "/autodiscover/autodiscover.svc"
	AutodiscoverPOXPath  = "/autodiscover/autodiscover.xml"
)

// Limits of autodiscover.
const (
	// maxAutodiscoverHops is how many redirects (address, URL or HTTP) are followed, as
	// Microsoft advises ("stop redirecting after 10 redirects").
	maxAutodiscoverHops = 10
	// autodiscoverTimeout bounds one request to one endpoint.
	autodiscoverTimeout = 20 * time.Second
	maxAutodiscoverBody = 1 << 20
)

// DiscoverConfig says whose EWS endpoint Discover finds and how it signs in.
type DiscoverConfig struct {
	// Address is the mailbox's email address; its domain names the autodiscover hosts.
	Address string
	// Host, when set, is the autodiscover host an administrator names: only it is asked
	// (SOAP, then POX), and it is trusted with the credentials wherever it is (trust.go).
	// "mail.contoso.com" or "mail.contoso.com:8443" means https; a URL
	// "http://127.0.0.1:8080" may name plain http on this machine only.
	Host string
	// Login and Password sign in with Basic (NTLM when the server offers only Windows
	// authentication); Token, when set, signs in with an OAuth 2.0 bearer token instead.
	Login    string
	Password vault.Secret
	Token    connector.TokenFunc
	// HTTPClient makes the requests (nil: a default client). Its redirects are not
	// followed by itself: Discover follows https ones and counts them.
	HTTPClient *http.Client
	// LookupSRV looks up the _autodiscover._tcp SRV record of the domain, the last
	// candidate (nil: net.DefaultResolver.LookupSRV).
	LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	Logger    *slog.Logger
}

// Discovery is what Discover found.
type Discovery struct {
	// URL is the mailbox's EWS endpoint.
	URL string
	// Endpoint is the autodiscover URL that answered with it; Address the address it was
	// asked for (another than DiscoverConfig.Address after a RedirectAddr).
	Endpoint string
	Address  string
	// Hops is how many redirects were followed.
	Hops int
}

// adKind is an autodiscover service: SOAP GetUserSettings or POX.
type adKind int

const (
	adSOAP adKind = iota + 1
	adPOX
)

func (k adKind) path() string {
	if k == adSOAP {
		return AutodiscoverSOAPPath
	}
	return AutodiscoverPOXPath
}

// adEndpoint is one URL to ask.
type adEndpoint struct {
	url  string
	kind adKind
}

// adAnswer is the outcome of one request: the EWS URL, a redirect, or an error.
type adAnswer struct {
	ewsURL       string
	redirectAddr string
	redirectURL  string
}

// errNotAutodiscover marks an endpoint without autodiscover (404, a web page, no such
// host): the next candidate is asked.
var errNotAutodiscover = errors.New("no autodiscover here")

// adError is an answer of an autodiscover service that ends the search: the user is
// unknown (SOAP InvalidUser, POX error 500) or the request was refused.
type adError struct {
	code, message string
}

func (e *adError) Error() string {
	if e.message == "" {
		return "autodiscover error " + e.code
	}
	return fmt.Sprintf("autodiscover error %s: %s", e.code, e.message)
}

// discoverer is one Discover in progress.
type discoverer struct {
	c     *client
	cfg   DiscoverConfig
	hops  int
	tried []string
	// best is the most telling failure of a candidate so far (401, certificate).
	best     error
	bestRank int
	// trustedDomains and trustedHosts are where the credentials may go (trust.go): the
	// address's domain, the host override, and what trusted answers named.
	trustedDomains []string
	trustedHosts   map[string]bool
	// refused are the targets of unauthenticated sources (the plain http redirect, the
	// SRV record) outside the trusted domains, which were not asked.
	refused []string
	// domain is the domain of the address Discover started from.
	domain string
}

// Discover finds the EWS endpoint of a mailbox with Exchange Autodiscover, in the order of
// Microsoft's "Generate a list of Autodiscover endpoints": SOAP GetUserSettings
// (ExternalEwsUrl, else InternalEwsUrl) at https://<domain>/autodiscover/autodiscover.svc,
// then at https://autodiscover.<domain>/...; POX (EMailAddress with the 2006a response
// schema; EwsUrl of the EXPR, else EXCH, protocol) at the same hosts'
// /autodiscover/autodiscover.xml; an unauthenticated GET of
// http://autodiscover.<domain>/autodiscover/autodiscover.xml whose 302 names an https
// endpoint; and last the DNS SRV record _autodiscover._tcp.<domain>. With
// DiscoverConfig.Host only that host is asked. Redirects (POX RedirectAddr / RedirectUrl,
// SOAP RedirectAddress / RedirectUrl, HTTP 301/302/307/308) are followed to https only, at
// most 10. The credentials go only to hosts in the address's domain, to
// DiscoverConfig.Host, and to what a trusted host's answer names (trust.go): a 302 or SRV
// target outside the domain is not asked. Errors are *connector.Error whose Advice names
// the fix: no host answered (the hosts tried), a target outside the domain not asked (type
// it as the autodiscover host), a 401 (the methods offered), an unknown address, a
// certificate, too many redirects. Autodiscover does not read Active Directory (no SCP
// lookup).
func Discover(ctx context.Context, cfg DiscoverConfig) (Discovery, error) {
	addr := strings.TrimSpace(cfg.Address)
	at := strings.LastIndexByte(addr, '@')
	if at < 1 || at == len(addr)-1 {
		return Discovery{}, &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: fmt.Errorf("address %q", cfg.Address),
			Advice: "give the mailbox's email address (support@contoso.com): autodiscover starts from its domain"}
	}
	if cfg.Token == nil && cfg.Login == "" {
		return Discovery{}, &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: errors.New("no login"),
			Advice: "give the account that signs in (user@domain or DOMAIN\\user) and its password, or choose OAuth"}
	}
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &discoverer{cfg: cfg, c: &client{login: cfg.Login, password: cfg.Password, token: cfg.Token, http: &hc, log: log}}
	d.domain = strings.ToLower(addr[at+1:])
	d.trustDomain(d.domain)
	var override *url.URL
	if cfg.Host != "" {
		u, err := overrideBase(cfg.Host)
		if err != nil {
			return Discovery{}, err
		}
		override = u
		d.trustHost(u.Host)
	}
	for {
		domain := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
		var eps []adEndpoint
		if override != nil {
			eps = []adEndpoint{{override.String() + AutodiscoverSOAPPath, adSOAP}, {override.String() + AutodiscoverPOXPath, adPOX}}
		} else {
			for _, k := range []adKind{adSOAP, adPOX} {
				for _, h := range []string{domain, "autodiscover." + domain} {
					eps = append(eps, adEndpoint{"https://" + h + k.path(), k})
				}
			}
		}
		found, next, err := d.tryAll(ctx, addr, eps)
		if err != nil {
			return Discovery{}, err
		}
		if found != nil {
			return *found, nil
		}
		if next != "" { // RedirectAddr: start again with the other address
			addr = next
			continue
		}
		if override == nil {
			found, next, err = d.fallbacks(ctx, addr, domain)
			if err != nil {
				return Discovery{}, err
			}
			if found != nil {
				return *found, nil
			}
			if next != "" {
				addr = next
				continue
			}
		}
		return Discovery{}, d.failure(domain, override != nil)
	}
}

// overrideBase parses an autodiscover host override into a scheme://host[:port] base.
func overrideBase(h string) (*url.URL, error) {
	h = strings.TrimRight(strings.TrimSpace(h), "/")
	raw := h
	if !strings.Contains(h, "://") {
		raw = "https://" + h
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || (u.Path != "" && u.Path != "/") {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: fmt.Errorf("autodiscover host %q", h),
			Advice: "name the autodiscover host (autodiscover.contoso.com), without a path"}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: fmt.Errorf("autodiscover host %q is not https", h),
			Advice: "autodiscover sends the password or token: use https (plain http only to this machine)"}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// tryAll asks the endpoints in order until one answers with the EWS URL or a redirect to
// another address. A URL redirect is followed at once. Failures that let the next endpoint
// be asked are remembered; an unknown address or too many redirects end the search.
func (d *discoverer) tryAll(ctx context.Context, addr string, eps []adEndpoint) (*Discovery, string, error) {
	for _, ep := range eps {
		found, next, err := d.follow(ctx, addr, ep)
		if err != nil {
			if terminal(err) {
				return nil, "", d.classify(err)
			}
			d.remember(err)
			continue
		}
		if found != nil || next != "" {
			return found, next, nil
		}
	}
	return nil, "", nil
}

// terminal reports whether err ends the search: the address is unknown, a token could not
// be had, or too many redirects.
func terminal(err error) bool {
	var ae *adError
	if errors.As(err, &ae) {
		switch ae.code {
		case "InvalidUser", "500", "501":
			return true
		}
		return false
	}
	var ce *connector.Error
	return errors.As(err, &ce)
}

// follow asks ep and follows URL redirects from it.
func (d *discoverer) follow(ctx context.Context, addr string, ep adEndpoint) (*Discovery, string, error) {
	for {
		d.tried = append(d.tried, ep.url)
		ans, err := d.ask(ctx, addr, ep)
		if err != nil {
			return nil, "", err
		}
		switch {
		case ans.ewsURL != "":
			return &Discovery{URL: ans.ewsURL, Endpoint: ep.url, Address: addr, Hops: d.hops}, "", nil
		case ans.redirectAddr != "":
			if err := d.hop(fmt.Sprintf("%s redirects to the address %s", ep.url, ans.redirectAddr)); err != nil {
				return nil, "", err
			}
			d.c.log.Info("ews autodiscover: redirected to another address", slog.String("endpoint", ep.url), slog.String("address", ans.redirectAddr))
			// A trusted server named the address: its domain is trusted as the first was.
			if at := strings.LastIndexByte(ans.redirectAddr, '@'); at >= 0 {
				d.trustDomain(ans.redirectAddr[at+1:])
			}
			return nil, ans.redirectAddr, nil
		case ans.redirectURL != "":
			u, err := url.Parse(ans.redirectURL)
			if err == nil && !u.IsAbs() { // an HTTP redirect may name a path on the same host
				if base, berr := url.Parse(ep.url); berr == nil {
					u = base.ResolveReference(u)
				}
			}
			if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
				return nil, "", fmt.Errorf("%s redirects to %q, which is not https: %w", ep.url, ans.redirectURL, errNotAutodiscover)
			}
			// A trusted server named the URL over https: its host is trusted.
			d.trustHost(u.Host)
			if err := d.hop(fmt.Sprintf("%s redirects to %s", ep.url, ans.redirectURL)); err != nil {
				return nil, "", err
			}
			d.c.log.Info("ews autodiscover: redirected to another URL", slog.String("endpoint", ep.url), slog.String("url", ans.redirectURL))
			kind := ep.kind
			if strings.HasSuffix(strings.ToLower(u.Path), ".xml") {
				kind = adPOX
			} else if strings.HasSuffix(strings.ToLower(u.Path), ".svc") {
				kind = adSOAP
			}
			ep = adEndpoint{url: u.String(), kind: kind}
		default:
			return nil, "", fmt.Errorf("%s: an answer without a URL: %w", ep.url, errNotAutodiscover)
		}
	}
}

// hop counts a redirect; the 11th fails.
func (d *discoverer) hop(what string) error {
	d.hops++
	if d.hops > maxAutodiscoverHops {
		return &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: fmt.Errorf("more than %d redirects (last: %s)", maxAutodiscoverHops, what),
			Advice: "autodiscover redirects in a loop: check the Exchange autodiscover configuration (Get-ClientAccessService | fl AutoDiscoverServiceInternalUri, the RedirectAddr of mail users), or type the EWS server's host"}
	}
	return nil
}

// fallbacks are the last candidates without a host override: the HTTP redirect of
// http://autodiscover.<domain>, then the SRV record.
func (d *discoverer) fallbacks(ctx context.Context, addr, domain string) (*Discovery, string, error) {
	plain := "http://autodiscover." + domain + AutodiscoverPOXPath
	d.tried = append(d.tried, plain)
	if loc, err := d.httpRedirect(ctx, plain); err != nil {
		d.remember(err)
	} else if loc != "" {
		if err := d.hop(plain + " redirects to " + loc); err != nil {
			return nil, "", d.classify(err)
		}
		kind := adPOX
		if strings.HasSuffix(strings.ToLower(loc), ".svc") {
			kind = adSOAP
		}
		if d.trusts(loc) {
			found, next, err := d.tryAll(ctx, addr, []adEndpoint{{loc, kind}})
			if err != nil || found != nil || next != "" {
				return found, next, err
			}
		} else {
			d.refuse(plain, loc)
		}
	}
	lookup := d.cfg.LookupSRV
	if lookup == nil {
		lookup = net.DefaultResolver.LookupSRV
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, srvs, err := lookup(lctx, "autodiscover", "tcp", domain)
	cancel()
	d.tried = append(d.tried, "SRV _autodiscover._tcp."+domain)
	if err != nil || len(srvs) == 0 {
		return nil, "", nil
	}
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if host == "" {
			continue
		}
		base := "https://" + host
		if s.Port != 443 && s.Port != 0 {
			base = "https://" + net.JoinHostPort(host, strconv.Itoa(int(s.Port)))
		}
		if !d.trusts(base) {
			d.refuse("SRV _autodiscover._tcp."+domain, base)
			continue
		}
		found, next, err := d.tryAll(ctx, addr, []adEndpoint{{base + AutodiscoverSOAPPath, adSOAP}, {base + AutodiscoverPOXPath, adPOX}})
		if err != nil || found != nil || next != "" {
			return found, next, err
		}
	}
	return nil, "", nil
}

// refuse notes that source (the plain http redirect or the SRV record, neither
// authenticated) names target outside the trusted domains, which is not asked.
func (d *discoverer) refuse(source, target string) {
	name := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		name = u.Host
	}
	for _, r := range d.refused {
		if r == name {
			return
		}
	}
	d.refused = append(d.refused, name)
	d.c.log.Warn("ews autodiscover: not sending the credentials to a host an unauthenticated source names outside the mailbox's domain",
		slog.String("source", source), slog.String("target", target), slog.String("domain", d.domain))
}

// httpRedirect GETs the plain http autodiscover URL without credentials and returns the
// https Location of its redirect, "" when it has none.
func (d *discoverer) httpRedirect(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, autodiscoverTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("autodiscover request: %w", err)
	}
	resp, err := d.c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAutodiscoverBody))
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return "", nil
	}
	loc, err := resp.Location()
	if err != nil || loc.Scheme != "https" {
		return "", nil // only https redirects are followed: the next request carries credentials
	}
	return loc.String(), nil
}

// ask makes one autodiscover request, signing in as the EWS client does.
func (d *discoverer) ask(ctx context.Context, addr string, ep adEndpoint) (adAnswer, error) {
	var body []byte
	header := http.Header{}
	if ep.kind == adSOAP {
		body = soapUserSettings(addr, ep.url)
		header.Set("Content-Type", "text/xml; charset=utf-8")
		header.Set("SOAPAction", `"`+actionUserSettings+`"`)
	} else {
		body = poxRequest(addr)
		header.Set("Content-Type", "text/xml; charset=utf-8")
	}
	if !d.trusts(ep.url) { // every path to here checks; this is the last guard
		return adAnswer{}, fmt.Errorf("%s: not a trusted autodiscover host for %s, the credentials are not sent there: %w", ep.url, d.domain, errNotAutodiscover)
	}
	refresh := false
	for {
		status, hdr, data, err := d.c.send(ctx, ep.url, header, body, refresh)
		if err != nil {
			return adAnswer{}, fmt.Errorf("%s: %w", ep.url, err)
		}
		if status == http.StatusUnauthorized {
			offered := offeredSchemes(hdr)
			if d.c.token != nil && !refresh {
				refresh = true
				continue
			}
			if d.c.token == nil && !d.c.ntlm && offersWindowsAuth(offered) {
				d.c.useNTLM()
				continue
			}
			return adAnswer{}, fmt.Errorf("%s: %w", ep.url, &HTTPError{Status: status, Offered: offered})
		}
		switch status {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			return adAnswer{redirectURL: hdr.Get("Location")}, nil
		}
		root, perr := parseTree(bytes.NewReader(data))
		if perr != nil {
			if status != http.StatusOK {
				return adAnswer{}, fmt.Errorf("%s: HTTP %d: %w", ep.url, status, errNotAutodiscover)
			}
			return adAnswer{}, fmt.Errorf("%s: the answer is not XML: %w", ep.url, errNotAutodiscover)
		}
		if ep.kind == adSOAP {
			return readUserSettings(ep.url, root)
		}
		return readPOX(ep.url, root)
	}
}

// send posts body to u with the client's credentials and returns the answer.
func (c *client) send(ctx context.Context, u string, header http.Header, body []byte, refresh bool) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, autodiscoverTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("autodiscover request: %w", err)
	}
	req.Header = header.Clone()
	if err := c.authorize(ctx, req, refresh); err != nil {
		return 0, nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAutodiscoverBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// soapUserSettings is a GetUserSettings request for the EWS URLs of addr.
func soapUserSettings(addr, to string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="` + nsSoap + `" xmlns:a="` + nsAutodiscover + `" xmlns:wsa="` + nsAddressing + `">` +
		`<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>` +
		`<wsa:Action>` + actionUserSettings + `</wsa:Action><wsa:To>` + esc(to) + `</wsa:To></soap:Header>` +
		`<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>` + esc(addr) + `</a:Mailbox></a:User></a:Users>` +
		`<a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting></a:RequestedSettings>` +
		`</a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>`)
}

// poxRequest is Outlook's autodiscover request for addr.
func poxRequest(addr string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + nsPOXRequest + `"><Request>` +
		`<EMailAddress>` + esc(addr) + `</EMailAddress><AcceptableResponseSchema>` + nsPOXResponse + `</AcceptableResponseSchema>` +
		`</Request></Autodiscover>`)
}

// readUserSettings reads a GetUserSettings answer.
func readUserSettings(u string, root *node) (adAnswer, error) {
	if root.Local != "Envelope" {
		return adAnswer{}, fmt.Errorf("%s: not a SOAP answer: %w", u, errNotAutodiscover)
	}
	if f := root.path("Body", "Fault"); f != nil {
		return adAnswer{}, fmt.Errorf("%s: SOAP fault %s: %w", u, f.kid("faultstring").text(), errNotAutodiscover)
	}
	resp := root.path("Body", "GetUserSettingsResponseMessage", "Response")
	if resp == nil || resp.Space != nsAutodiscover {
		return adAnswer{}, fmt.Errorf("%s: no GetUserSettings response: %w", u, errNotAutodiscover)
	}
	if code := resp.kid("ErrorCode").text(); code != "" && code != "NoError" {
		return adAnswer{}, &adError{code: code, message: resp.kid("ErrorMessage").text()}
	}
	ur := resp.path("UserResponses", "UserResponse")
	if ur == nil {
		return adAnswer{}, fmt.Errorf("%s: no UserResponse: %w", u, errNotAutodiscover)
	}
	switch code := ur.kid("ErrorCode").text(); code {
	case "NoError", "":
	case "RedirectAddress":
		return adAnswer{redirectAddr: ur.kid("RedirectTarget").text()}, nil
	case "RedirectUrl":
		return adAnswer{redirectURL: ur.kid("RedirectTarget").text()}, nil
	default:
		return adAnswer{}, &adError{code: code, message: ur.kid("ErrorMessage").text()}
	}
	settings := map[string]string{}
	for _, s := range ur.kid("UserSettings").all("UserSetting") {
		settings[s.kid("Name").text()] = s.kid("Value").text()
	}
	for _, name := range []string{"ExternalEwsUrl", "InternalEwsUrl"} {
		if v := settings[name]; v != "" {
			return adAnswer{ewsURL: v}, nil
		}
	}
	return adAnswer{}, &adError{code: "NoEwsUrl", message: "autodiscover names no EWS URL for this mailbox"}
}

// readPOX reads an Outlook (POX) autodiscover answer.
func readPOX(u string, root *node) (adAnswer, error) {
	resp := root.kid("Response")
	if root.Local != "Autodiscover" || resp == nil {
		return adAnswer{}, fmt.Errorf("%s: not an autodiscover answer: %w", u, errNotAutodiscover)
	}
	if e := resp.kid("Error"); e != nil {
		return adAnswer{}, &adError{code: e.kid("ErrorCode").text(), message: e.kid("Message").text()}
	}
	acct := resp.kid("Account")
	if e := acct.kid("Error"); e != nil {
		return adAnswer{}, &adError{code: e.kid("ErrorCode").text(), message: e.kid("Message").text()}
	}
	if acct == nil || resp.Space != nsPOXResponse {
		return adAnswer{}, fmt.Errorf("%s: no Account in the 2006a schema: %w", u, errNotAutodiscover)
	}
	switch strings.ToLower(acct.kid("Action").text()) {
	case "redirectaddr":
		return adAnswer{redirectAddr: acct.kid("RedirectAddr").text()}, nil
	case "redirecturl":
		return adAnswer{redirectURL: acct.kid("RedirectUrl").text()}, nil
	}
	urls := map[string]string{}
	for _, p := range acct.all("Protocol") {
		if v := p.kid("EwsUrl").text(); v != "" {
			urls[strings.ToUpper(p.kid("Type").text())] = v
		}
	}
	for _, t := range []string{"EXPR", "EXCH"} {
		if v := urls[t]; v != "" {
			return adAnswer{ewsURL: v}, nil
		}
	}
	return adAnswer{}, &adError{code: "NoEwsUrl", message: "autodiscover names no EWS URL (no EXPR or EXCH protocol with an EwsUrl)"}
}

// remember keeps the most telling failure of a candidate that let the next be asked.
func (d *discoverer) remember(err error) {
	rank := 1
	var he *HTTPError
	var hostnameErr x509.HostnameError
	var unknownAuth x509.UnknownAuthorityError
	var invalidCert x509.CertificateInvalidError
	var tlsErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		rank = 4
	case errors.As(err, &hostnameErr), errors.As(err, &unknownAuth), errors.As(err, &invalidCert), errors.As(err, &tlsErr):
		rank = 3
	case errors.As(err, &he) && he.Status == http.StatusForbidden:
		rank = 2
	case errors.As(err, new(*adError)):
		rank = 2
	}
	if rank >= d.bestRank {
		d.best, d.bestRank = err, rank
	}
}

// failure is the error when no endpoint answered with an EWS URL.
func (d *discoverer) failure(domain string, override bool) error {
	tried := strings.Join(d.tried, ", ")
	if len(d.refused) > 0 && d.bestRank < 4 {
		// Nothing trusted answered (a 401 would say more) and an unauthenticated source
		// named a host elsewhere: name it and how to use it.
		targets := strings.Join(d.refused, " and ")
		secret := "the password"
		if d.cfg.Token != nil {
			secret = "the OAuth token"
		}
		return &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover",
			Err: fmt.Errorf("tried %s; not asked: %s, outside %s", tried, targets, domain),
			Advice: fmt.Sprintf("autodiscover for %s points to %s, outside %s: postroom does not send %s there unasked; if that is your Exchange server, type %s as the autodiscover host (or as the host)",
				domain, targets, domain, secret, d.refused[0])}
	}
	if d.bestRank >= 2 {
		return d.classify(d.best)
	}
	advice := fmt.Sprintf("no autodiscover host answered for %s: publish autodiscover.%s (a DNS name for the Exchange server's autodiscover service, with a trusted certificate), or type the Exchange server's host in the mailbox settings", domain, domain)
	if override {
		advice = "the autodiscover host named does not answer autodiscover: check that host, or type the Exchange server's host and leave autodiscover"
	}
	var err error = fmt.Errorf("tried %s", tried)
	if d.best != nil {
		err = fmt.Errorf("tried %s; last: %w", tried, d.best)
	}
	return &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: err, Advice: advice}
}

// classify turns an autodiscover failure into a *connector.Error that names the fix.
func (d *discoverer) classify(err error) error {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	e := &connector.Error{Kind: connector.KindConfig, Op: "ews autodiscover", Err: err}
	var ae *adError
	var he *HTTPError
	switch {
	case errors.As(err, &ae):
		switch ae.code {
		case "InvalidUser", "500", "501":
			e.Advice = "Exchange autodiscover knows no mailbox with this address: check the address (the mailbox's primary SMTP address, Get-Mailbox <name> | fl PrimarySmtpAddress)"
		case "NoEwsUrl":
			e.Advice = "autodiscover answers but names no EWS URL: set the EWS virtual directory's ExternalUrl (Set-WebServicesVirtualDirectory -ExternalUrl https://mail.contoso.com/EWS/Exchange.asmx), or type the EWS server's host"
		default:
			e.Kind = connector.KindServer
			e.Advice = "Exchange autodiscover answered with an error: see the Exchange server's event log, or type the EWS server's host"
		}
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		e.Kind = connector.KindAuth
		offered := strings.Join(he.Offered, ", ")
		if offered == "" {
			offered = "none named"
		}
		e.Advice = fmt.Sprintf("Exchange autodiscover refused the sign-in of %s (it offers: %s): check the login (user@domain or DOMAIN\\user) and password; postroom signs in with Basic, NTLM (when the server offers only Windows authentication) or OAuth bearer tokens", d.cfg.Login, offered)
		if d.cfg.Token != nil {
			e.Advice = fmt.Sprintf("Exchange autodiscover refused the OAuth token (it offers: %s): for Exchange Server the token's resource must be the server's external URL registered in Entra ID (hybrid modern authentication), or type the EWS server's host", offered)
		}
	case errors.As(err, &he) && he.Status == http.StatusForbidden:
		e.Kind = connector.KindAuth
		e.Advice = "Exchange autodiscover forbids this account or needs another authentication: check the autodiscover virtual directory's authentication (Get-AutodiscoverVirtualDirectory | fl *Authentication)"
	default:
		ce := connector.ClassifyDial("ews autodiscover", "", err)
		if errors.As(ce, &e) && e.Kind == connector.KindTLS {
			e.Advice += " (autodiscover checks the certificate of each autodiscover host; publish autodiscover with a trusted certificate, or type the EWS server's host)"
			return e
		}
		e.Kind = connector.KindNetwork
		e.Advice = "autodiscover could not be reached: check the network, or type the EWS server's host"
	}
	return e
}

// Endpoints remembers, for one process, the EWS URL autodiscover found for each mailbox
// (by a key the caller chooses), so that autodiscover runs once per mailbox rather than
// at every connection. The zero value is ready; it is safe for concurrent use.
type Endpoints struct {
	mu   sync.Mutex
	urls map[string]string
}

// Resolve returns the URL remembered for key, or the one Discover finds with cfg.
func (e *Endpoints) Resolve(ctx context.Context, key string, cfg DiscoverConfig) (string, error) {
	e.mu.Lock()
	u, ok := e.urls[key]
	e.mu.Unlock()
	if ok {
		return u, nil
	}
	d, err := Discover(ctx, cfg)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	if e.urls == nil {
		e.urls = map[string]string{}
	}
	e.urls[key] = d.URL
	e.mu.Unlock()
	if cfg.Logger != nil {
		cfg.Logger.Info("ews: autodiscover found the EWS URL", slog.String("url", d.URL), slog.String("autodiscover", d.Endpoint))
	}
	return d.URL, nil
}

// Forget drops the URL of key: the next Resolve asks autodiscover again.
func (e *Endpoints) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.urls, key)
}
