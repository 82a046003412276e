package message

import (
	"strings"
	"testing"
)

func TestLinkDeception(t *testing.T) {
	for _, c := range []struct {
		name, text, href string
		deceptive        bool
		target           string
	}{
		{"lookalike subdomain", "www.bank.com", "https://bank.com.evil.net/login", true, "bank.com.evil.net"},
		{"URL text", "https://www.bank.com/login", "http://evil.example/x", true, "evil.example"},
		{"punycode lookalike", "paypal.com", "https://xn--pypal-4ve.com/", true, "xn--pypal-4ve.com"},
		{"IDN text, shown in ASCII", "pаypal.com", "https://paypal.com/", true, "paypal.com"},
		{"email text to another address", "support@bank.com", "mailto:phish@evil.net", true, "phish@evil.net"},
		{"IP target", "bank.com", "http://192.0.2.7/login", true, "192.0.2.7"},
		{"trailing punctuation", "(www.bank.com).", "https://evil.net/", true, "evil.net"},
		{"same host, other path", "bank.com/login", "https://bank.com/account?id=7", false, ""},
		{"www and a subdomain of one site", "www.bank.com", "https://secure.bank.com/", false, ""},
		{"same site, case and trailing dot", "Bank.COM", "https://bank.com./", false, ""},
		{"IDN text to its own punycode", "bücher.de", "https://xn--bcher-kva.de/", false, ""},
		{"plain words", "Click here", "https://evil.net/", false, ""},
		{"one word", "Invoice", "https://evil.net/", false, ""},
		{"not a public suffix", "Mr.Smith", "https://evil.net/", false, ""},
		{"a number", "1.5", "https://evil.net/", false, ""},
		{"file name", "report.docx", "https://evil.net/", false, ""},
		{"same mail domain", "help@bank.com", "mailto:help@bank.com?subject=Hi", false, ""},
		{"target without host", "www.bank.com", "mailto:", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := LinkDeception(c.text, c.href)
			if got.Deceptive != c.deceptive {
				t.Fatalf("LinkDeception(%q, %q) = %+v, want deceptive %v", c.text, c.href, got, c.deceptive)
			}
			if c.deceptive && got.Target != c.target {
				t.Errorf("target = %q, want %q", got.Target, c.target)
			}
		})
	}
}

func TestSanitizeHTMLMarksDeceptiveLinks(t *testing.T) {
	in := `<p>Pay at <a href="https://bank.com.evil.net/pay"><b>www.bank.com</b></a> or see ` +
		`<a href="https://www.bank.com/help" title="Help">bank.com/help</a> or <a href="https://evil.net/">click here</a>.</p>`
	got := SanitizeHTML(in, func(string) string { return "" })
	if n := strings.Count(got, `class="postroom-link-warning"`); n != 1 {
		t.Fatalf("%d markers, want 1 (the deceptive link only):\n%s", n, got)
	}
	if !strings.Contains(got, `</b></a><span class="postroom-link-warning">⚠ goes to bank.com.evil.net</span>`) {
		t.Errorf("marker not right after the deceptive link:\n%s", got)
	}
	if !strings.Contains(got, `title="Suspicious link: the text shows www.bank.com but the link goes to bank.com.evil.net"`) {
		t.Errorf("deceptive link has no title naming its target:\n%s", got)
	}
	if !strings.Contains(got, `title="Help"`) {
		t.Errorf("an honest link lost its title:\n%s", got)
	}
}

// The plain-text view of an HTML-only mail is not touched by the marking.
func TestHTMLToTextHasNoMarker(t *testing.T) {
	got := htmlToText(`<p><a href="https://bank.com.evil.net/">www.bank.com</a></p>`)
	if strings.Contains(got, "⚠") || got != "www.bank.com <https://bank.com.evil.net/>" {
		t.Errorf("text = %q", got)
	}
}
