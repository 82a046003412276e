package message

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	"golang.org/x/text/encoding/charmap"
)

// Charsets as senders write them. go-message knows the IANA names and aliases and the
// WHATWG labels; these are the spellings seen in real mail that neither registry has.
var charsetAliases = map[string]string{
	"utf7":                "utf-7",
	"unicode-1-1-utf-7":   "utf-7",
	"x-unicode-2-0-utf-7": "utf-7",
	"csunicode11utf7":     "utf-7",
	"ascii":               "us-ascii",
	"us_ascii":            "us-ascii",
	"win-1252":            "windows-1252",
	"win1252":             "windows-1252",
	"x-ansi":              "windows-1252",
	"ansi":                "windows-1252",
	"latin-1":             "iso-8859-1",
}

// normalizeCharset turns a charset label as found in a Content-Type parameter, an RFC 2047
// encoded-word or an RFC 2231 value into the name to look up: lower case, without quotes,
// white space or an RFC 2231 language suffix ("utf-8*fr").
func normalizeCharset(label string) string {
	cs := strings.Trim(strings.TrimSpace(label), `"'`)
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	cs = strings.ToLower(strings.TrimSpace(cs))
	if a, ok := charsetAliases[cs]; ok {
		return a
	}
	return cs
}

// decodeCharset converts data in charset label to UTF-8. It never fails: an unknown or
// broken label, or bytes the charset does not define, fall back as header text does
// (lenientUTF8: UTF-8 where the bytes are UTF-8, windows-1252 for the others).
func decodeCharset(label string, data []byte) string {
	cs := normalizeCharset(label)
	switch cs {
	case "", "utf-8", "us-ascii":
		return lenientUTF8(data)
	case "utf-7":
		return decodeUTF7(data)
	}
	if s, ok := convertCharset(cs, data); ok {
		return s
	}
	return lenientUTF8(data)
}

// convertCharset converts data from the normalized charset cs with go-message's charset
// table (IANA and WHATWG names), trying the spelling with hyphens for underscores too
// ("iso8859_1"). It reports false when the charset is unknown or the result not UTF-8.
func convertCharset(cs string, data []byte) (string, bool) {
	if gomessage.CharsetReader == nil {
		return "", false
	}
	for _, name := range []string{cs, strings.ReplaceAll(cs, "_", "-")} {
		r, err := gomessage.CharsetReader(name, bytes.NewReader(data))
		if err != nil {
			continue
		}
		s, err := io.ReadAll(r)
		if err != nil || !utf8.Valid(s) {
			return "", false
		}
		return string(s), true
	}
	return "", false
}

// lenientUTF8 reads bytes of unknown charset the way mail clients show 8-bit header text:
// what is valid UTF-8 stays, every other byte is read as windows-1252 (the superset of
// Latin-1 that unlabelled 8-bit mail uses).
func lenientUTF8[T string | []byte](data T) string {
	s := string(data)
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(charmap.Windows1252.DecodeByte(s[i]))
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// decodeUTF7 decodes UTF-7 (RFC 2152), which x/text does not provide: text outside a
// "+...-" shift is ASCII; a shift holds UTF-16 code units in modified base64 and ends at
// the first character that is not base64 (a "-" there is dropped); "+-" is "+". Broken
// shifts decode as far as they go.
func decodeUTF7(data []byte) string {
	var b strings.Builder
	b.Grow(len(data))
	var units []uint16
	for i := 0; i < len(data); {
		c := data[i]
		if c != '+' {
			j := i + 1
			for j < len(data) && data[j] != '+' {
				j++
			}
			b.WriteString(lenientUTF8(data[i:j]))
			i = j
			continue
		}
		j := i + 1
		for j < len(data) && base64Value(data[j]) >= 0 {
			j++
		}
		if j == i+1 {
			b.WriteByte('+') // "+-" or a lone "+"
		} else {
			units = units[:0]
			var bits uint32
			n := 0
			for _, ch := range data[i+1 : j] {
				bits = bits<<6 | uint32(base64Value(ch))
				n += 6
				if n >= 16 {
					n -= 16
					units = append(units, uint16(bits>>n))
					bits &= 1<<n - 1
				}
			}
			b.WriteString(string(utf16.Decode(units)))
		}
		if j < len(data) && data[j] == '-' {
			j++
		}
		i = j
	}
	return b.String()
}

// base64Value is the value of a base64 digit, or -1.
func base64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// tolerantCharsetReader is the CharsetReader of the address parser's word decoder: it
// never refuses a charset (decodeCharset's fallback), so one odd encoded-word does not
// make a whole address list unreadable.
func tolerantCharsetReader(label string, input io.Reader) (io.Reader, error) {
	data, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeCharset(label, data)), nil
}
