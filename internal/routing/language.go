package routing

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/abadojack/whatlanggo"
)

// LanguageDetector tells the language a text is written in, as an ISO 639-1 code ("en"),
// or "" when it is unsure. Implementations must be safe for concurrent use.
type LanguageDetector interface {
	Detect(text string) string
}

// Limits of language detection.
const (
	// detectMaxRunes is how much text is looked at: the subject and the start of the body
	// say the language of a message; the rest is often a quoted earlier message, maybe in
	// another language, and doubles the cost (about 0.6 ms per 1,000 characters; 400 are enough for a sentence or two).
	detectMaxRunes = 400

	// detectMinLetters is how many letters a text needs for an answer: "Thanks!" or an
	// order number cannot be told apart reliably.
	detectMinLetters = 20

	// detectMinConfidence is the detector's confidence (0..1) below which it is unsure.
	// whatlanggo's own "reliable" threshold (0.8) turns down correct answers on a short
	// Danish or Spanish sentence; below 0.5 its answers on short texts are often wrong.
	detectMinConfidence = 0.5
)

// NewLanguageDetector returns the detector the rules use: trigram statistics restricted
// to the languages of our customers, English, German, French, Spanish, Italian, Dutch,
// Portuguese, Polish, Swedish and Danish; any other language gives "".
//
// It is built on github.com/abadojack/whatlanggo (MIT, pure Go, no dependencies, a
// 400 KB module adding about 1 MB to a binary, no start-up cost). The more accurate
// github.com/pemistahl/lingua-go was tried first: its module is a 128 MB download and it
// embeds the models of all its 75 languages, so even restricted to ten languages in low
// accuracy mode a trivial program is 135 MB and loads its models for about 0.1 s; too
// much for a build on every CI run, for the ten European languages that trigrams tell
// apart well on a few sentences.
//
// Detect looks at the first 1,000 characters of text, skipping quoted lines ("> …").
func NewLanguageDetector() LanguageDetector {
	return trigramDetector{opts: whatlanggo.Options{Whitelist: map[whatlanggo.Lang]bool{
		whatlanggo.Eng: true, whatlanggo.Deu: true, whatlanggo.Fra: true, whatlanggo.Spa: true,
		whatlanggo.Ita: true, whatlanggo.Nld: true, whatlanggo.Por: true, whatlanggo.Pol: true,
		whatlanggo.Swe: true, whatlanggo.Dan: true,
	}}}
}

// detectedCodes maps the detector's languages to ISO 639-1.
var detectedCodes = map[whatlanggo.Lang]string{
	whatlanggo.Eng: "en", whatlanggo.Deu: "de", whatlanggo.Fra: "fr", whatlanggo.Spa: "es",
	whatlanggo.Ita: "it", whatlanggo.Nld: "nl", whatlanggo.Por: "pt", whatlanggo.Pol: "pl",
	whatlanggo.Swe: "sv", whatlanggo.Dan: "da",
}

// trigramDetector is NewLanguageDetector's detector. opts is only read after construction.
type trigramDetector struct {
	opts whatlanggo.Options
}

// Detect implements LanguageDetector.
func (d trigramDetector) Detect(text string) string {
	sample, letters := detectSample(text)
	if letters < detectMinLetters {
		return ""
	}
	info := whatlanggo.DetectWithOptions(sample, d.opts)
	if info.Confidence < detectMinConfidence {
		return ""
	}
	// Scripts other than Latin come back as their language whatever the whitelist says.
	return detectedCodes[info.Lang]
}

// detectSample returns the start of text without quoted lines, at most detectMaxRunes
// runes, and how many letters it holds.
func detectSample(text string) (string, int) {
	var b strings.Builder
	runes, letters := 0, 0
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), ">") {
			continue
		}
		for _, r := range line {
			if runes == detectMaxRunes {
				return b.String(), letters
			}
			if r == utf8.RuneError {
				continue
			}
			b.WriteRune(r)
			runes++
			if unicode.IsLetter(r) {
				letters++
			}
		}
	}
	return b.String(), letters
}
