package message

import (
	"encoding/base64"
	"fmt"
	"mime"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// maxWordCharset bounds the charset label of an encoded-word; a longer "=?...?" is text.
const maxWordCharset = 64

// encodedWord is one RFC 2047 encoded-word found in a header value.
type encodedWord struct {
	start, end int    // its bytes in the value
	charset    string // as written
	encoding   byte   // 'Q' or 'B'
	text       string // the encoded text
}

// nextWord finds the first encoded-word "=?charset?Q|B?text?=" in v. It is more lenient
// than RFC 2047, as mail clients are: the charset may be misspelt or carry an RFC 2231
// language ("utf-8*fr"), and the text may hold raw 8-bit bytes or spaces; it ends at the
// first "?=" on its line. The search takes time linear in the bytes up to the word's end,
// however many "=?" come before it.
func nextWord(v string) (encodedWord, bool) {
	// endAt and lineAt are the absolute positions of the first "?=" at or after the text
	// of the candidate tried last, and of the first line end before endAt (endAt if none);
	// candidates only move forward, so each byte is scanned once.
	endAt, lineAt := -1, -1
	for off := 0; ; {
		i := strings.Index(v[off:], "=?")
		if i < 0 {
			return encodedWord{}, false
		}
		start := off + i
		off = start + 2
		rest := v[off:min(len(v), off+maxWordCharset+4)]
		q := strings.IndexByte(rest, '?')
		if q < 0 || q > maxWordCharset || strings.ContainsAny(rest[:q], "\r\n") {
			continue
		}
		if len(rest) < q+3 || rest[q+2] != '?' {
			continue
		}
		enc := rest[q+1] &^ 0x20 // upper case
		if enc != 'Q' && enc != 'B' {
			continue
		}
		textStart := off + q + 3
		if endAt < textStart {
			e := strings.Index(v[textStart:], "?=")
			if e < 0 {
				return encodedWord{}, false // no encoded-word can end further on
			}
			endAt, lineAt = textStart+e, -1
		}
		if lineAt < textStart {
			lineAt = endAt
			if n := strings.IndexAny(v[textStart:endAt], "\r\n"); n >= 0 {
				lineAt = textStart + n
			}
		}
		if lineAt < endAt {
			continue
		}
		return encodedWord{
			start: start, end: endAt + 2,
			charset: rest[:q], encoding: enc, text: v[textStart:endAt],
		}, true
	}
}

// payload decodes an encoded-word's text to bytes in its charset. Q: "_" is a space, "=XX"
// a byte, anything else (raw 8-bit bytes, a stray "=") itself. B: characters outside the
// base64 alphabet are skipped and missing padding is forgiven.
func (w encodedWord) payload() []byte {
	if w.encoding == 'B' {
		clean := make([]byte, 0, len(w.text))
		for i := 0; i < len(w.text); i++ {
			if base64Value(w.text[i]) >= 0 {
				clean = append(clean, w.text[i])
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		out, _ := base64.RawStdEncoding.DecodeString(string(clean))
		return out
	}
	t := w.text
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(t) && isHex(t[i+1]) && isHex(t[i+2]):
			n, _ := strconv.ParseUint(t[i+1:i+3], 16, 8)
			out = append(out, byte(n))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// decodeText decodes an unstructured header value (Subject, a display name, a filename)
// to UTF-8, the way mature mail readers do: RFC 2047 encoded-words are decoded whatever
// their charset is called (decodeCharset), white space between two encoded-words is
// dropped, and adjacent words of one charset are decoded together, so that a character
// split across two words comes out whole. Raw 8-bit bytes outside encoded-words are read as
// UTF-8 where they are UTF-8 and as windows-1252 otherwise (lenientUTF8), as bodies are.
func decodeText(v string) string {
	var b strings.Builder
	var pending []byte // bytes of adjacent encoded-words in charset pendingCS
	var pendingCS string
	flush := func() {
		if pending != nil {
			b.WriteString(decodeCharset(pendingCS, pending))
			pending = nil
		}
	}
	afterWord := false
	for {
		w, ok := nextWord(v)
		if !ok {
			break
		}
		between := v[:w.start]
		if !afterWord || strings.Trim(between, " \t\r\n") != "" {
			flush()
			b.WriteString(lenientUTF8(between))
		}
		cs := normalizeCharset(w.charset)
		// UTF-7 words are decoded one by one: a shift left open at the end of one word
		// must not run into the next.
		if pending != nil && (cs != pendingCS || cs == "utf-7") {
			flush()
		}
		pendingCS = cs
		pending = append(pending, w.payload()...)
		if pending == nil {
			pending = []byte{}
		}
		v = v[w.end:]
		afterWord = true
	}
	flush()
	b.WriteString(lenientUTF8(v))
	return b.String()
}

// escapeWordBytes rewrites the raw 8-bit bytes inside Q encoded-words of v as "=XX", so
// that a strict RFC 2047 decoder (the address parser's) reads them in the word's charset.
func escapeWordBytes(v string) string {
	var b strings.Builder
	for {
		w, ok := nextWord(v)
		if !ok {
			break
		}
		if w.encoding != 'Q' || !has8bit(w.text) {
			b.WriteString(v[:w.end])
			v = v[w.end:]
			continue
		}
		b.WriteString(v[:w.end-len("?=")-len(w.text)])
		for i := 0; i < len(w.text); i++ {
			if c := w.text[i]; c >= 0x80 {
				fmt.Fprintf(&b, "=%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
		b.WriteString("?=")
		v = v[w.end:]
	}
	b.WriteString(v)
	return b.String()
}

func has8bit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// paramRe finds name=value parameters in a Content-Type or Content-Disposition value.
var paramRe = regexp.MustCompile(`(?i)(?:^|;)\s*([a-z0-9*_.!#$%&'+^{|}~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)`)

// mediaParams parses a Content-Type or Content-Disposition value into its lower-case
// value and parameters, forgiving what mime.ParseMediaType refuses: broken parameters (a
// duplicate, a stray word) keep the others, RFC 2231 values (name*=, name*0=, name*0*=)
// are decoded whatever their charset is called ("latin1", "ascii"; Go only knows
// "us-ascii" and "utf-8"), and RFC 2047 encoded-words in values (name="=?utf-8?...?=",
// written by many clients) are decoded.
func mediaParams(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	matches := paramRe.FindAllStringSubmatch(v, -1)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		params = map[string]string{}
		for _, m := range matches {
			k := strings.ToLower(m[1])
			if _, dup := params[k]; !dup && !strings.Contains(k, "*") {
				params[k] = unquote(m[2])
			}
		}
	}
	for k, pv := range extendedParams(matches) {
		params[k] = pv
	}
	for k, pv := range params {
		if k != "boundary" { // compared byte for byte with the body's delimiter lines
			params[k] = decodeText(pv)
		}
	}
	return mt, params
}

// unquote removes the quotes and backslash escapes of a quoted-string parameter value.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// extendedParams decodes the RFC 2231 parameters among matches (paramRe's): "name*=" (one
// encoded value), "name*0=", "name*1=" (continuations) and "name*0*=" (encoded
// continuations). An encoded value starts with charset'language' and percent-encodes its
// bytes; the parts are joined in order and decoded with decodeCharset.
func extendedParams(matches [][]string) map[string]string {
	type segment struct {
		n       int
		encoded bool
		value   string
	}
	segs := map[string][]segment{}
	for _, m := range matches {
		name := strings.ToLower(m[1])
		base, rest, ok := strings.Cut(name, "*")
		if !ok || base == "" {
			continue
		}
		s := segment{value: unquote(m[2])}
		switch {
		case rest == "":
			s.encoded = true
		default:
			s.encoded = strings.HasSuffix(rest, "*")
			n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
			if err != nil || n < 0 || n > 999 {
				continue
			}
			s.n = n
		}
		segs[base] = append(segs[base], s)
	}
	out := map[string]string{}
	for base, ss := range segs {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		var charset string
		var data []byte
		for i, s := range ss {
			if i > 0 && s.n == ss[i-1].n {
				continue // a duplicate segment
			}
			v := s.value
			if s.encoded && i == 0 {
				if parts := strings.SplitN(v, "'", 3); len(parts) == 3 {
					charset, v = parts[0], parts[2]
				}
			}
			if s.encoded {
				data = append(data, percentDecode(v)...)
			} else {
				data = append(data, v...)
			}
		}
		out[base] = decodeCharset(charset, data)
	}
	return out
}

// percentDecode decodes %XX escapes, keeping a "%" that starts none.
func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out = append(out, byte(n))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}
