package message

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func testCIDURL(id string) string { return "/attachments/cid/" + url.PathEscape(id) }

func TestSanitizeHTML(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // substrings of the output
		notWant []string // must not appear (case-insensitive)
	}{
		{
			name: "formatting kept",
			in:   `<p>Hello <b>bold</b> <i>it</i> <u>u</u></p><ul><li>one</li></ul><table border="1"><tr><td colspan="2">cell</td></tr></table><blockquote>quoted</blockquote><pre>a  b</pre>`,
			want: []string{"<p>Hello <b>bold</b> <i>it</i> <u>u</u></p>", "<ul><li>one</li></ul>", `<td colspan="2">cell</td>`, "<blockquote>quoted</blockquote>", "<pre>a  b</pre>"},
		},
		{
			name:    "scripts and handlers",
			in:      `<p onclick="alert(1)">x</p><script>alert(2)</script><img src="cid:a@b" onerror="alert(3)"><svg onload="alert(4)"><circle/></svg><body onload="alert(5)">y</body>`,
			want:    []string{"<p>x</p>", "y"},
			notWant: []string{"alert", "<script", "onclick", "onerror", "onload", "<svg"},
		},
		{
			name:    "javascript and data links",
			in:      `<a href="javascript:alert(1)">a</a><a href=" JaVaScRiPt:alert(2)">b</a><a href="data:text/html,<script>alert(3)</script>">c</a><a href="vbscript:x">d</a>`,
			want:    []string{"a", "b", "c", "d"},
			notWant: []string{"javascript", "data:", "vbscript", "href"},
		},
		{
			name:    "frames, objects, forms, style blocks, links, meta",
			in:      `<iframe src="https://evil.example/f">inside</iframe><object data="https://evil.example/o"></object><embed src="https://evil.example/e"><form action="https://evil.example/p"><input name="pw"><button>Send</button></form><style>@import url(http://evil.example/s.css);</style><link rel="stylesheet" href="http://evil.example/l.css"><meta http-equiv="refresh" content="0;url=http://evil.example/"><base href="http://evil.example/">ok`,
			want:    []string{"ok"},
			notWant: []string{"evil.example", "<iframe", "<object", "<embed", "<form", "<input", "<style", "@import", "<link", "<meta", "<base", "inside"},
		},
		{
			name:    "remote images removed, alt text kept",
			in:      `<p><img src="http://tracker.example/p.gif" alt="Our logo" width="1"><img src="https://tracker.example/b.png"><img src="//tracker.example/x.png"><img src="/relative.png"><img srcset="https://tracker.example/2x.png 2x" src="cid:ok@x"></p>`,
			want:    []string{"Our logo", `src="/attachments/cid/ok@x"`},
			notWant: []string{"tracker.example", "relative.png", "srcset"},
		},
		{
			name:    "remote CSS in attributes removed, safe styles kept",
			in:      `<p style="background-image: url(http://tracker.example/s.png); color: red">s</p><div style="background:url('https://tracker.example/a')">d</div><table background="http://tracker.example/t.gif"><tr><td background="http://tracker.example/t2.gif">t</td></tr></table><p style="behavior: url(x.htc); width: expression(alert(1))">e</p>`,
			want:    []string{`<p style="color: red">s</p>`, "<div>d</div>", "t</td>"},
			notWant: []string{"tracker.example", "url(", "expression", "behavior"},
		},
		{
			name: "cid images rewritten",
			in:   `<img src="cid:logo.png@shop.example" alt="logo"><img src="CID:%3Cimg%201@x%3E">`,
			want: []string{`<img src="/attachments/cid/logo.png@shop.example" alt="logo"`, `<img src="/attachments/cid/img%201@x"`},
		},
		{
			name:    "links get rel and target",
			in:      `<a href="https://example.com/help" target="_self">help</a><a href="mailto:help@example.com">mail</a><a href="cid:x@y">cid link</a><a href="/admin/delete">relative</a>`,
			want:    []string{`href="https://example.com/help"`, `target="_blank"`, "noopener", "noreferrer", "nofollow", `href="mailto:help@example.com"`, "cid link", "relative"},
			notWant: []string{`target="_self"`, "cid:x@y", "/admin/delete"},
		},
		{
			name:    "mutation-style markup",
			in:      `<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript><math><mtext><table><mglyph><style><img src=x onerror=alert(2)>`,
			notWant: []string{"onerror", "alert", "<img"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeHTML(tt.in, testCIDURL)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output %q\nwant it to contain %q", got, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
					t.Errorf("output %q\nmust not contain %q", got, w)
				}
			}
		})
	}
}

// TestSanitizeDangerousEmail runs the hand-written hostile email through Parse and
// SanitizeHTML, as the agent page does.
func TestSanitizeDangerousEmail(t *testing.T) {
	m := Parse(readEML(t, "dangerous-html.eml"))
	got := SanitizeHTML(m.HTMLBody, testCIDURL)
	for _, bad := range []string{"<script", "alert", "onerror", "onclick", "javascript:", "tracker.example", "evil.example", "<iframe", "<object", "<form", "<style", "@import", "cookie"} {
		if strings.Contains(got, bad) {
			t.Errorf("sanitized email contains %q:\n%s", bad, got)
		}
	}
	for _, good := range []string{"<p>Hello <b>agent</b>,</p>", "pixel", "free money", `<a href="https://example.com/help"`, "help page", `<p style="color: red">styled</p>`, "table bg"} {
		if !strings.Contains(got, good) {
			t.Errorf("sanitized email lost %q:\n%s", good, got)
		}
	}
}

// TestHTMLLinearTime feeds deeply nested markup, which a tree builder handles in quadratic
// time; the test run would time out if that came back.
func TestHTMLLinearTime(t *testing.T) {
	deep := strings.Repeat("<div><span>", 200000) + "bottom" + `<img src="http://x.example/a.png" alt="a">`
	if got := htmlToText(deep); got != "bottom" {
		t.Errorf("htmlToText = %q", got)
	}
	if got := SanitizeHTML(deep, testCIDURL); !strings.Contains(got, "bottom") || strings.Contains(got, "x.example") {
		t.Errorf("SanitizeHTML lost the text or kept the image: %.200q", got)
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>One</p><p>Two<br>Three</p>", "One\n\nTwo\nThree"},
		{"<div>a</div><div>b</div>", "a\nb"},
		{"Fish &amp; chips &lt;3 &eacute;", "Fish & chips <3 é"},
		{"<ol><li>first</li><li>second</li></ol>after", "- first\n- second\n\nafter"},
		{"<pre>  keep\n    indent</pre>", "keep\n    indent"},
		{"<table><tr><td>Name</td><td>Qty</td></tr><tr><td>Kettle</td><td>1</td></tr></table>", "Name Qty\nKettle 1"},
		{`<a href="https://x.example/a">https://x.example/a</a> and <a href="https://y.example/">Y</a>`, "https://x.example/a and Y <https://y.example/>"},
		{"<head><title>T</title><style>p{}</style></head><script>x()</script>body text", "body text"},
		{"  spaced \n\n   out  ", "spaced out"},
	}
	for _, tt := range tests {
		if got := htmlToText(tt.in); got != tt.want {
			t.Errorf("htmlToText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSanitizeHTML checks that no input gets a script, an event handler or a remote source
// through.
func FuzzSanitizeHTML(f *testing.F) {
	f.Add(`<p onclick="x">a</p><script>alert(1)</script><img src="http://x/y" alt="z"><img src="cid:a@b">`)
	f.Add(`<a href="javascript:alert(1)">x</a><a href="https://ok.example/">ok</a>`)
	f.Add(`<style>@import url(http://x)</style><div style="background:url(http://x)">d</div>`)
	f.Add(`<svg><image href="http://x/y"/></svg><math><mtext><table><mglyph><style><img src=x onerror=alert(2)>`)
	srcAttr := regexp.MustCompile(`(?i)\s(src|href|style|background|srcset|action|data)\s*=\s*"([^"]*)"`)
	handler := regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	f.Fuzz(func(t *testing.T, in string) {
		out := SanitizeHTML(in, testCIDURL)
		low := strings.ToLower(out)
		if strings.Contains(low, "<script") || strings.Contains(low, "<iframe") || strings.Contains(low, "<style") || handler.MatchString(out) {
			t.Fatalf("unsafe output %q", out)
		}
		for _, m := range srcAttr.FindAllStringSubmatch(out, -1) {
			name, val := strings.ToLower(m[1]), strings.ToLower(m[2])
			switch name {
			case "src":
				if !strings.HasPrefix(val, "/attachments/cid/") {
					t.Fatalf("src %q in %q", val, out)
				}
			case "href":
				if !strings.HasPrefix(val, "http:") && !strings.HasPrefix(val, "https:") && !strings.HasPrefix(val, "mailto:") {
					t.Fatalf("href %q in %q", val, out)
				}
			case "style":
				if strings.Contains(val, "url") || strings.Contains(val, "expression") || strings.Contains(val, "import") {
					t.Fatalf("style %q in %q", val, out)
				}
			default:
				t.Fatalf("attribute %s in %q", name, out)
			}
		}
	})
}
