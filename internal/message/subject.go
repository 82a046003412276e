package message

import (
	"regexp"
	"strings"
)

// Prefixes mail clients put before a subject when replying or forwarding, in the
// languages they use: "Re" (RFC 5322 §3.6.5) and "Aw"/"Antw" (German, Dutch), "Sv"
// (Scandinavian), "Vs" (Finnish), "Odp" (Polish), "Rif" (Italian); "Fwd"/"Fw", "Wg"
// (German), "Tr" (French), "Rv" (Spanish), "Enc" (Portuguese).
const (
	replyWords   = `re|aw|antw|sv|vs|odp|rif`
	forwardWords = `fwd|fw|wg|tr|rv|enc`
	// prefixCount is the count some clients add: "Re[2]:", "Re(2):", "Re^2:".
	prefixCount = `(?:\[\d+\]|\(\d+\)|\^\d+)?`
)

// topicPrefix matches one leading reply or forward prefix in any letter case.
var topicPrefix = regexp.MustCompile(`^(?i:` + replyWords + `|` + forwardWords + `)` + prefixCount + `\s*:\s*`)

// Topic is a subject as agents see it in lists and titles: without the reply and forward
// prefixes that grow with every round of a conversation ("Re: AW: Re: Fwd: Order 12" is
// "Order 12"). "" when nothing else is left.
func Topic(subject string) string {
	return stripPrefixes(topicPrefix, subject)
}

// stripPrefixes removes from the trimmed subject every leading prefix that prefix
// matches, one after the other.
func stripPrefixes(prefix *regexp.Regexp, subject string) string {
	s := strings.TrimSpace(subject)
	for {
		t := prefix.ReplaceAllString(s, "")
		if t == s {
			return s
		}
		s = t
	}
}
