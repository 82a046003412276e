package message

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Email HTML formats text with style attributes, and a page whose Content Security Policy
// refuses inline styles (postroom's pages do) ignores them. MoveStylesToSheet turns the
// style attributes that SanitizeHTML kept into classes of one stylesheet, which a page can
// allow by its hash without allowing any other inline style.

// styleProps are the properties a style declaration may set: those SanitizeHTML keeps.
var styleProps = map[string]bool{
	"color": true, "background-color": true, "text-align": true, "font-weight": true, "font-style": true,
	"text-decoration": true, "font-size": true, "vertical-align": true, "white-space": true,
}

var (
	// styleValue is a value with nothing that could end the rule, load anything or escape:
	// no quotes, backslashes, colons, semicolons, braces, slashes or angle brackets.
	styleValue = regexp.MustCompile(`^[a-zA-Z0-9#%., ()\-]{1,64}$`)
	// styleFunc finds the functions a value calls; only colour functions may appear.
	styleFunc   = regexp.MustCompile(`([a-zA-Z\-]*)\s*\(`)
	colourFuncs = map[string]bool{"rgb": true, "rgba": true, "hsl": true, "hsla": true}
)

// StyleClassPrefix starts the class names MoveStylesToSheet gives.
const StyleClassPrefix = "postroom-s"

// MoveStylesToSheet replaces every style attribute of sanitized HTML (SanitizeHTML's
// output) by a class, one per distinct style, and returns the HTML and the stylesheet of
// those classes ("" when there is none). Each declaration is checked again on its own:
// a property SanitizeHTML keeps and a plain value, so the sheet can only format text.
func MoveStylesToSheet(sanitized string) (body, css string) {
	z := html.NewTokenizer(strings.NewReader(sanitized))
	var out, sheet strings.Builder
	classes := map[string]string{}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return out.String(), sheet.String()
		}
		tok := z.Token()
		if (tt == html.StartTagToken || tt == html.SelfClosingTagToken) && tokenAttr(tok, "style") != "" {
			decl := vetStyle(tokenAttr(tok, "style"))
			tok.Attr = dropAttrs(tok.Attr, "style")
			if decl != "" {
				class, ok := classes[decl]
				if !ok {
					class = fmt.Sprintf("%s%d", StyleClassPrefix, len(classes))
					classes[decl] = class
					fmt.Fprintf(&sheet, ".%s{%s}\n", class, decl)
				}
				if old := tokenAttr(tok, "class"); old != "" {
					class = old + " " + class
					tok.Attr = dropAttrs(tok.Attr, "class")
				}
				tok.Attr = append(tok.Attr, html.Attribute{Key: "class", Val: class})
			}
		}
		out.WriteString(tok.String())
	}
}

// vetStyle returns the declarations of a style attribute that pass, normalised as
// "prop:value;...", or "".
func vetStyle(style string) string {
	var kept []string
	for d := range strings.SplitSeq(style, ";") {
		prop, val, ok := strings.Cut(d, ":")
		if !ok {
			continue
		}
		prop = strings.ToLower(strings.TrimSpace(prop))
		val = strings.TrimSpace(val)
		if !styleProps[prop] || !styleValue.MatchString(val) {
			continue
		}
		plain := true
		for _, m := range styleFunc.FindAllStringSubmatch(val, -1) {
			if !colourFuncs[strings.ToLower(m[1])] {
				plain = false
			}
		}
		if plain {
			kept = append(kept, prop+":"+val)
		}
	}
	return strings.Join(kept, ";")
}
