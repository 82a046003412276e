package message

import (
	"net"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// A deceptive link is one whose visible text shows an address (a URL, a domain name or an
// email address) of another site than the one its href leads to: "www.bank.com" linking to
// bank.com.evil.net. Sites are compared by registrable domain (the public suffix plus one
// label, so "bank.com" and "login.bank.com" are one site), after IDNA, so a look-alike
// written in other scripts ("pаypal.com" with a Cyrillic а) is a different site; the
// target is shown in its ASCII (punycode) form, which does not look alike. Link text that
// shows no address ("Click here", "Invoice 77") is never flagged.

// LinkCheck is the outcome of LinkDeception.
type LinkCheck struct {
	// Deceptive is true when the text shows another site than the target.
	Deceptive bool
	// Shown is the host (or address) the text shows, Target where the link goes, in ASCII.
	Shown, Target string
}

var (
	// schemeURL matches text that starts like an absolute URL.
	schemeURL = regexp.MustCompile(`(?i)^[a-z][a-z0-9+.\-]*://`)
	// bareHost matches a domain name, optionally with a port and a path, as text shows it:
	// "www.bank.com", "bank.com/login". Letters of every script are allowed (IDN).
	bareHost = regexp.MustCompile(`^[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?)+\.?(?::[0-9]{1,5})?(?:[/?#]\S*)?$`)
	// emailText matches a single email address as text shows it.
	emailText = regexp.MustCompile(`^(?i:mailto:)?[^\s@<>()]+@([^\s@<>()]+)$`)
)

// LinkDeception checks a link's visible text against its href.
func LinkDeception(text, href string) LinkCheck {
	target, targetAddr := linkTargetHost(href)
	if target == "" {
		return LinkCheck{}
	}
	shown := shownHost(text)
	if shown == "" {
		return LinkCheck{}
	}
	c := LinkCheck{Shown: shown, Target: target}
	if targetAddr != "" {
		c.Target = targetAddr
	}
	c.Deceptive = site(shown) != site(target)
	return c
}

// linkTargetHost returns the ASCII host an http(s) or mailto href leads to, and for mailto
// the address itself.
func linkTargetHost(href string) (host, addr string) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", ""
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return asciiHost(u.Hostname()), ""
	case "mailto":
		a := u.Opaque
		if a == "" {
			a = u.Path
		}
		if un, err := url.PathUnescape(a); err == nil {
			a = un
		}
		a, _, _ = strings.Cut(a, ",") // several recipients: the first
		local, domain, ok := strings.Cut(strings.TrimSpace(a), "@")
		if !ok || local == "" {
			return "", ""
		}
		h := asciiHost(domain)
		if h == "" {
			return "", ""
		}
		return h, local + "@" + h
	}
	return "", ""
}

// shownHost returns the ASCII host the link text shows, or "" when it shows none.
func shownHost(text string) string {
	t := strings.TrimSpace(strings.Join(strings.Fields(text), " "))
	t = strings.TrimRight(t, ".,;:!?)]>'\"")
	t = strings.TrimLeft(t, "(<['\"")
	if t == "" || strings.ContainsAny(t, " \t") {
		return ""
	}
	if schemeURL.MatchString(t) {
		u, err := url.Parse(t)
		if err != nil {
			return ""
		}
		return asciiHost(u.Hostname())
	}
	if m := emailText.FindStringSubmatch(t); m != nil {
		return domainLike(m[1])
	}
	if bareHost.MatchString(t) {
		host := t
		if i := strings.IndexAny(host, "/?#"); i >= 0 {
			host = host[:i]
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		return domainLike(host)
	}
	return ""
}

// domainLike returns the ASCII form of a name written without a scheme when its ending is
// a real public suffix ("bank.com", not "Mr.Smith" or "report.final"), else "".
func domainLike(name string) string {
	h := asciiHost(name)
	if h == "" || net.ParseIP(h) != nil {
		return h
	}
	suffix, icann := publicsuffix.PublicSuffix(h)
	if !icann && !strings.Contains(suffix, ".") {
		return ""
	}
	return h
}

// asciiHost lowercases a host and converts it to its ASCII (punycode) form; "" when it is
// not a valid name or address.
func asciiHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if h == "" {
		return ""
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return ip.String()
	}
	a, err := idna.Lookup.ToASCII(h)
	if err != nil {
		return ""
	}
	return a
}

// site is the registrable domain of an ASCII host, the host itself for addresses and
// public suffixes.
func site(h string) string {
	if net.ParseIP(h) != nil {
		return h
	}
	if s, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return s
	}
	return h
}

// LinkWarningClass is the class of the marker markDeceptiveLinks puts after a deceptive
// link (the email frame's stylesheet makes it stand out).
const LinkWarningClass = "postroom-link-warning"

// markDeceptiveLinks adds to every deceptive link (LinkDeception) of sanitized HTML a
// title saying where it goes and, right after it, a visible marker "⚠ goes to evil.example".
// It works on the token stream, in linear time.
func markDeceptiveLinks(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var out strings.Builder
	var open *html.Token // the <a> being collected
	var inner []html.Token
	var text strings.Builder
	flush := func() {
		if open == nil {
			return
		}
		c := LinkDeception(text.String(), tokenAttr(*open, "href"))
		if c.Deceptive {
			open.Attr = dropAttrs(open.Attr, "title")
			open.Attr = append(open.Attr, html.Attribute{Key: "title",
				Val: "Suspicious link: the text shows " + c.Shown + " but the link goes to " + c.Target})
		}
		out.WriteString(open.String())
		for _, t := range inner {
			out.WriteString(t.String())
		}
		out.WriteString("</a>")
		if c.Deceptive {
			out.WriteString(`<span class="` + LinkWarningClass + `">⚠ goes to ` + html.EscapeString(c.Target) + `</span>`)
		}
		open, inner = nil, nil
		text.Reset()
	}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if open != nil {
				flush()
			}
			return out.String()
		}
		tok := z.Token()
		switch {
		case tok.DataAtom == atom.A && tt == html.StartTagToken:
			flush() // an <a> inside an <a> ends the first, as browsers do
			t := tok
			open = &t
		case tok.DataAtom == atom.A && tt == html.EndTagToken:
			if open != nil {
				flush()
			} else {
				out.WriteString(tok.String())
			}
		case open != nil:
			if tt == html.TextToken {
				text.WriteString(tok.Data)
			}
			inner = append(inner, tok)
		default:
			out.WriteString(tok.String())
		}
	}
}
