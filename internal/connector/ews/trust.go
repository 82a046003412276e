package ews

import (
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// Where autodiscover sends the credentials. Secrets go only where they were entered for,
// and autodiscover has nobody to ask as Outlook asks its user before it follows an
// unauthenticated source (the plain http redirect, which anyone on the path can write, and
// the SRV record, which a spoofed DNS answer can name). So the password, the NTLM exchange
// and the bearer token go only to:
//
//   - hosts in the mailbox address's domain: the domain itself or a name that ends in
//     "." + the domain, compared in the form DNS looks up (lower case, IDNA ASCII), so
//     that evilcontoso.com or contoso.com.evil.net is not contoso.com;
//   - the autodiscover host the administrator named (DiscoverConfig.Host);
//   - what an answer of such a host names over https: a RedirectUrl (or an HTTP redirect
//     of an autodiscover request), and the domain of a RedirectAddr, which then counts as
//     the address's domain. The EWS URL found is such an answer too.
//
// A plain http redirect or SRV target elsewhere is not asked; the failure names it and how
// to use it (type it as the autodiscover host).

// hostASCII returns the host name h as DNS looks it up: lower case, IDNA (punycode)
// ASCII, without a trailing dot. ok is false for what is no host name.
func hostASCII(h string) (string, bool) {
	h = strings.TrimSuffix(strings.TrimSpace(h), ".")
	if h == "" {
		return "", false
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return ip.String(), true
	}
	a, err := idna.Lookup.ToASCII(h)
	if err != nil {
		// idna refuses some names DNS has (an underscore): plain ASCII names pass as
		// they are; anything else is no host name to trust.
		a = strings.ToLower(h)
		for _, r := range a {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return "", false
			}
		}
	}
	a = strings.TrimSuffix(a, ".")
	if a == "" || strings.Contains(a, "..") {
		return "", false
	}
	return a, true
}

// trustDomain lets the credentials go to domain and the names under it.
func (d *discoverer) trustDomain(domain string) {
	if a, ok := hostASCII(domain); ok && net.ParseIP(a) == nil {
		d.trustedDomains = append(d.trustedDomains, a)
	}
}

// trustHost lets the credentials go to the host of u (a URL or a host name, with or
// without a port).
func (d *discoverer) trustHost(u string) {
	if a, ok := hostASCII(hostOf(u)); ok {
		if d.trustedHosts == nil {
			d.trustedHosts = map[string]bool{}
		}
		d.trustedHosts[a] = true
	}
}

// trusts reports whether the credentials may go to the host of u.
func (d *discoverer) trusts(u string) bool {
	a, ok := hostASCII(hostOf(u))
	if !ok {
		return false
	}
	if d.trustedHosts[a] {
		return true
	}
	if net.ParseIP(a) != nil {
		return false
	}
	for _, dom := range d.trustedDomains {
		if a == dom || strings.HasSuffix(a, "."+dom) {
			return true
		}
	}
	return false
}

// hostOf returns the host name of a URL or of a host[:port].
func hostOf(u string) string {
	if strings.Contains(u, "://") {
		if p, err := url.Parse(u); err == nil {
			return p.Hostname()
		}
		return ""
	}
	if h, _, err := net.SplitHostPort(u); err == nil {
		return h
	}
	return u
}
