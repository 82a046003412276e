package message

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// forwardPrefix matches one leading forward prefix in any letter case ("Fwd:", "FW:",
// "WG:", ..., also numbered).
var forwardPrefix = regexp.MustCompile(`^(?i:` + forwardWords + `)` + prefixCount + `\s*:\s*`)

// ForwardSubject returns "Fwd: " + subject with one forward prefix: "Fwd: Fwd: x" and
// "FW: x" become "Fwd: x"; a reply prefix stays ("Re: x" becomes "Fwd: Re: x").
func ForwardSubject(subject string) string {
	return strings.TrimSpace("Fwd: " + stripPrefixes(forwardPrefix, subject))
}

// ForwardDraft builds the forward of orig from from to the addresses to: the subject
// gets one "Fwd: ", the note comes first, then the original inline under a
// "Forwarded message" line with its From, Date, Subject, To (and Cc) and its text.
// References carry orig's thread and Message-ID, so that an answer to the forward is
// found in the same conversation; there is no In-Reply-To (the forward answers nobody).
func ForwardDraft(orig store.Message, from mail.Address, to []mail.Address, note string, now time.Time) Draft {
	return Draft{
		From:       from,
		To:         to,
		Subject:    ForwardSubject(orig.Subject),
		References: threadReferences(orig),
		Text:       forwardText(note, orig),
		Date:       now,
	}
}

// forwardText is the note followed by the original message inline.
func forwardText(note string, orig store.Message) string {
	var b strings.Builder
	note = strings.TrimRight(strings.ReplaceAll(note, "\r\n", "\n"), "\n")
	if note != "" {
		b.WriteString(note)
		b.WriteString("\n\n")
	}
	b.WriteString("---------- Forwarded message ----------\n")
	if who := displayAddress(mail.Address{Name: orig.FromName, Address: orig.FromAddr}); who != "" {
		fmt.Fprintf(&b, "From: %s\n", who)
	}
	if !orig.Date.IsZero() {
		fmt.Fprintf(&b, "Date: %s\n", orig.Date.Format("Mon, 2 Jan 2006 15:04 -0700"))
	}
	fmt.Fprintf(&b, "Subject: %s\n", orig.Subject)
	if orig.To != "" {
		fmt.Fprintf(&b, "To: %s\n", orig.To)
	}
	if orig.Cc != "" {
		fmt.Fprintf(&b, "Cc: %s\n", orig.Cc)
	}
	b.WriteString("\n")
	b.WriteString(strings.TrimSpace(strings.ReplaceAll(orig.TextBody, "\r\n", "\n")))
	b.WriteString("\n")
	return b.String()
}
