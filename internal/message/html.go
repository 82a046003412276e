package message

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// SanitizeHTML returns the HTML of an email made safe to embed in our pages. It works in two
// passes: the first, on the parsed tree, replaces every image that is not a cid: reference by
// its alt text and drops links that are not http, https or mailto; the second, bluemonday
// with a UGC-like allowlist, is the security boundary: no script, no event handlers, no
// javascript: URLs, no iframe, object, embed, form, style or link elements, no style
// attributes that could load (only a few formatting properties with checked values), and no
// remote loads at all: img src must be a cid: URL, rewritten to cidURL(contentID) with the
// content id unescaped and without "cid:" or brackets. Links get
// rel="nofollow noreferrer noopener" and, when absolute, target="_blank"; a link whose text
// shows another site than it leads to is marked (markDeceptiveLinks, after the sanitizer,
// whose output it keeps: it adds only a title and a span of its own).
//
// cidURL must return a URL of our own (typically a path to the attachment download).
func SanitizeHTML(htmlText string, cidURL func(contentID string) string) string {
	return strings.TrimSpace(markDeceptiveLinks(sanitizePolicy(cidURL).Sanitize(dropRemote(htmlText))))
}

var (
	// cidSrc matches an img src that refers to a MIME part (RFC 2392).
	cidSrc = regexp.MustCompile(`(?i)^\s*cid:`)
	// linkHref matches the link targets we keep.
	linkHref = regexp.MustCompile(`(?i)^\s*(https?|mailto):`)
	// dimension matches width and height values.
	dimension = regexp.MustCompile(`^[0-9]{1,4}(%|px)?$`)
	// plainValue matches simple attribute values (alignment, colours, font faces).
	plainValue = regexp.MustCompile(`^[a-zA-Z0-9#%,. \-]{1,64}$`)
)

// sanitizePolicy builds the allowlist. It is built per call because the cid: rewriting
// depends on cidURL; building it is cheap next to parsing.
func sanitizePolicy(cidURL func(string) string) *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements(
		"p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "strike", "small",
		"big", "sub", "sup", "tt", "blockquote", "pre", "code", "kbd", "samp", "var", "hr",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
		"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col",
		"center", "font", "abbr", "address", "cite", "del", "ins", "mark", "q", "wbr",
		"figure", "figcaption", "section", "article", "aside", "details", "summary",
	)
	p.AllowAttrs("title").Globally()
	p.AllowAttrs("dir").Matching(bluemonday.Direction).Globally()
	p.AllowAttrs("lang").Matching(regexp.MustCompile(`^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$`)).Globally()
	p.AllowAttrs("align", "valign").Matching(plainValue).OnElements(
		"p", "div", "table", "tr", "td", "th", "thead", "tbody", "tfoot", "col", "colgroup", "img", "h1", "h2", "h3", "h4", "h5", "h6")
	p.AllowAttrs("width", "height").Matching(dimension).OnElements("table", "td", "th", "col", "img")
	p.AllowAttrs("colspan", "rowspan").Matching(bluemonday.Integer).OnElements("td", "th")
	p.AllowAttrs("cellpadding", "cellspacing", "border").Matching(bluemonday.Integer).OnElements("table")
	p.AllowAttrs("bgcolor").Matching(plainValue).OnElements("table", "tr", "td", "th")
	p.AllowAttrs("color", "face", "size").Matching(plainValue).OnElements("font")
	p.AllowAttrs("start").Matching(bluemonday.Integer).OnElements("ol")
	p.AllowAttrs("type").Matching(regexp.MustCompile(`^[1aAiI]$|^(disc|circle|square)$`)).OnElements("ol", "ul", "li")

	// Formatting styles only; bluemonday checks each value, so url(...) cannot pass.
	p.AllowStyles(
		"color", "background-color", "text-align", "font-weight", "font-style",
		"text-decoration", "font-size", "vertical-align", "white-space",
	).Globally()

	// Links: absolute http(s) and mailto only.
	p.AllowAttrs("href").Matching(linkHref).OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.AllowRelativeURLs(false)

	// Images: cid: only, rewritten to our own URL.
	p.AllowAttrs("src").Matching(cidSrc).OnElements("img")
	p.AllowAttrs("alt").OnElements("img")
	p.AllowURLSchemes("cid")
	p.RewriteSrc(func(u *url.URL) {
		if !strings.EqualFold(u.Scheme, "cid") {
			*u = url.URL{}
			return
		}
		id := u.Opaque
		if id == "" {
			id = strings.TrimPrefix(u.String(), u.Scheme+":")
		}
		if un, err := url.PathUnescape(id); err == nil {
			id = un
		}
		id = strings.Trim(strings.TrimSpace(id), "<>")
		target, err := url.Parse(cidURL(id))
		if err != nil {
			*u = url.URL{}
			return
		}
		*u = *target
	})
	return p
}

// dropRemote replaces every img whose src is not a cid: URL by its alt text, removes srcset
// and background attributes everywhere, and drops hrefs that are not http, https or mailto
// (bluemonday would keep cid: ones, which must only serve images). It works on the token
// stream, in linear time: html.Parse's tree building is quadratic on deeply nested input.
func dropRemote(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return b.String() // io.EOF: strings.Reader has no other error
		}
		tok := z.Token()
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			tok.Attr = dropAttrs(tok.Attr, "srcset", "background", "poster", "lowsrc", "dynsrc")
			switch tok.DataAtom {
			case atom.Img:
				if !cidSrc.MatchString(tokenAttr(tok, "src")) {
					if alt := strings.TrimSpace(tokenAttr(tok, "alt")); alt != "" {
						b.WriteString(html.EscapeString(alt))
					}
					continue
				}
			case atom.A:
				if h := tokenAttr(tok, "href"); h != "" && !linkHref.MatchString(h) {
					tok.Attr = dropAttrs(tok.Attr, "href")
				}
			}
		}
		b.WriteString(tok.String())
	}
}

func tokenAttr(t html.Token, key string) string {
	for _, a := range t.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

func dropAttrs(attrs []html.Attribute, keys ...string) []html.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		drop := false
		for _, k := range keys {
			if strings.EqualFold(a.Key, k) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}

// htmlToText renders HTML as readable plain text: tags stripped, entities decoded,
// paragraphs and line breaks kept, list items marked with "- ", link targets shown after
// the link text when they differ from it. The content of script, style, title and the other
// raw-text elements is skipped. It works on the token stream, in linear time.
func htmlToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var w textWriter
	var skip atom.Atom // inside this raw-text element
	pre := 0
	type link struct {
		href  string
		start int
	}
	var links []link
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return w.String()
		case html.TextToken:
			if skip != 0 {
				continue
			}
			if pre > 0 {
				w.raw(string(z.Text()))
			} else {
				w.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip != 0 {
				continue
			}
			switch a {
			case atom.Script, atom.Style, atom.Title, atom.Textarea, atom.Iframe, atom.Noembed,
				atom.Noframes, atom.Noscript, atom.Xmp, atom.Plaintext:
				if tt == html.StartTagToken {
					skip = a
				}
			case atom.Br:
				w.lineBreak()
				w.space = false
			case atom.Hr:
				w.breakLines(1)
				w.raw("----")
				w.breakLines(1)
			case atom.Li:
				w.breakLines(1)
				w.raw("- ")
			case atom.Td, atom.Th:
				w.space = true
			case atom.Pre:
				w.breakLines(2)
				pre++
			case atom.A:
				if tt == html.StartTagToken {
					links = append(links, link{href: linkTarget(z), start: w.b.Len()})
				}
			default:
				w.breakLines(blockBreaks(a))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip != 0 {
				if a == skip {
					skip = 0
				}
				continue
			}
			switch a {
			case atom.Li:
				w.breakLines(1)
			case atom.Td, atom.Th:
				w.space = true
			case atom.Pre:
				pre = max(pre-1, 0)
				w.breakLines(2)
			case atom.A:
				if n := len(links); n > 0 {
					l := links[n-1]
					links = links[:n-1]
					if l.href != "" && !strings.Contains(w.b.String()[l.start:], l.href) {
						w.text(" <" + l.href + ">")
					}
				}
			default:
				w.breakLines(blockBreaks(a))
			}
		}
	}
}

// linkTarget returns the http(s) href of the current <a> tag, or "".
func linkTarget(z *html.Tokenizer) string {
	for {
		k, v, more := z.TagAttr()
		if string(k) == "href" {
			h := strings.TrimSpace(string(v))
			if strings.HasPrefix(h, "http://") || strings.HasPrefix(h, "https://") {
				return h
			}
			return ""
		}
		if !more {
			return ""
		}
	}
}

// blockBreaks is how many line breaks surround an element: 2 for paragraphs, headings,
// tables, lists and quotes, 1 for other blocks and rows, 0 for inline elements.
func blockBreaks(a atom.Atom) int {
	switch a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table,
		atom.Blockquote, atom.Ul, atom.Ol, atom.Dl:
		return 2
	case atom.Div, atom.Tr, atom.Dt, atom.Dd, atom.Section, atom.Article, atom.Header,
		atom.Footer, atom.Address, atom.Figure, atom.Caption, atom.Body:
		return 1
	}
	return 0
}

// textWriter accumulates text with collapsed white space and requested line breaks.
type textWriter struct {
	b        strings.Builder
	newlines int  // line breaks owed before the next text
	space    bool // a space is owed before the next word
}

func (w *textWriter) breakLines(n int) {
	if w.b.Len() > 0 && w.newlines < n {
		w.newlines = n
	}
}

func (w *textWriter) lineBreak() {
	if w.b.Len() > 0 {
		w.newlines++
	}
}

func (w *textWriter) flush() {
	switch {
	case w.newlines > 0:
		w.b.WriteString(strings.Repeat("\n", min(w.newlines, 2)))
	case w.space && w.b.Len() > 0:
		w.b.WriteByte(' ')
	}
	w.newlines, w.space = 0, false
}

// raw writes s as is (preformatted text or a list marker).
func (w *textWriter) raw(s string) {
	if s == "" {
		return
	}
	w.flush()
	w.b.WriteString(s)
}

// text writes s with its white space collapsed.
func (w *textWriter) text(s string) {
	words := strings.Fields(s)
	if len(words) == 0 {
		if s != "" {
			w.space = true
		}
		return
	}
	if startsSpace(s) {
		w.space = true
	}
	for i, word := range words {
		if i > 0 {
			w.space = true
		}
		w.flush()
		w.b.WriteString(word)
	}
	w.space = endsSpace(s)
}

func startsSpace(s string) bool { return strings.TrimLeft(s, " \t\r\n\f") != s }
func endsSpace(s string) bool   { return strings.TrimRight(s, " \t\r\n\f") != s }

func (w *textWriter) String() string {
	lines := strings.Split(w.b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	s := strings.Join(lines, "\n")
	for strings.Contains(s, "\n\n\n") {
		s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	}
	return strings.TrimSpace(s)
}
