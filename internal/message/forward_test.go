package message_test

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/message"
	"github.com/postroom/postroom/internal/store"
)

func TestForwardSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Order 12":          "Fwd: Order 12",
		"Fwd: Order 12":     "Fwd: Order 12",
		"FW: fwd: Order 12": "Fwd: Order 12",
		"WG[2]: Order 12":   "Fwd: Order 12",
		"Re: Order 12":      "Fwd: Re: Order 12",
		"  ":                "Fwd:",
	} {
		if got := message.ForwardSubject(in); got != want {
			t.Errorf("ForwardSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestForwardDraftComposes(t *testing.T) {
	orig := store.Message{MessageID: "orig@example.org", References: []string{"root@example.org"}, Subject: "Re: Lamp",
		FromName: "Kim", FromAddr: "kim@example.org", To: "support@example.com", Cc: "x@example.org",
		Date: time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC), TextBody: "It flickers.\r\nPlease help."}
	d := message.ForwardDraft(orig, mail.Address{Address: "support@example.com"},
		[]mail.Address{{Address: "repair@example.net"}}, "Can you look at this?", time.Now())
	raw, parsed, err := message.Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Subject != "Fwd: Re: Lamp" || parsed.InReplyTo != "" || strings.Join(parsed.References, " ") != "root@example.org orig@example.org" {
		t.Errorf("subject %q, in-reply-to %q, references %v", parsed.Subject, parsed.InReplyTo, parsed.References)
	}
	want := "Can you look at this?\n\n---------- Forwarded message ----------\nFrom: Kim <kim@example.org>\n" +
		"Date: Sat, 1 Mar 2025 09:30 +0000\nSubject: Re: Lamp\nTo: support@example.com\nCc: x@example.org\n\nIt flickers.\nPlease help.\n"
	if got := strings.ReplaceAll(parsed.TextBody, "\r\n", "\n"); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(string(raw), "In-Reply-To") {
		t.Error("a forward has no In-Reply-To")
	}
}
