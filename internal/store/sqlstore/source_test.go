package sqlstore

import (
	"strings"
	"testing"
)

// TestContentHash: two deliveries of one email hash the same whatever the receiving
// servers added or how they folded and ended lines; any change by the sender does not.
func TestContentHash(t *testing.T) {
	const base = "From: Ana <ana@example.org>\r\nTo: support@example.com\r\nCc: sales@example.com\r\n" +
		"Subject: Where is my order?\r\nMessage-ID: <a@example.org>\r\nDate: Mon, 23 Nov 2026 09:59:00 +0000\r\n" +
		"\r\nHello,\r\nwhere is it?\r\n"
	same := map[string]string{
		"trace fields on top": "Return-Path: <ana@example.org>\r\nDelivered-To: sales@example.com\r\n" +
			"Received: from mx by mail.example.com\r\n\tid 42; Mon, 23 Nov 2026 10:00:00 +0000\r\nX-Spam-Status: No\r\n" + base,
		"LF line ends": "From: Ana <ana@example.org>\nTo: support@example.com\nCc: sales@example.com\n" +
			"Subject: Where is my order?\nMessage-ID: <a@example.org>\nDate: Mon, 23 Nov 2026 09:59:00 +0000\n" +
			"\nHello,\nwhere is it?\n",
		"folded subject": "From: Ana <ana@example.org>\r\nTo: support@example.com\r\nCc: sales@example.com\r\n" +
			"Subject: Where is\r\n  my order?\r\nMessage-ID: <a@example.org>\r\nDate: Mon, 23 Nov 2026 09:59:00 +0000\r\n" +
			"\r\nHello,\r\nwhere is it?\r\n",
		"header case": "FROM: Ana <ana@example.org>\r\nto: support@example.com\r\nCC: sales@example.com\r\n" +
			"subject: Where is my order?\r\nMessage-Id: <a@example.org>\r\nDATE: Mon, 23 Nov 2026 09:59:00 +0000\r\n" +
			"\r\nHello,\r\nwhere is it?\r\n",
	}
	different := map[string]string{
		"body":    base[:len(base)-len("where is it?\r\n")] + "where is it now?\r\n",
		"subject": strings.Replace(base, "my order", "my parcel", 1),
		"cc":      "From: Ana <ana@example.org>\r\nTo: support@example.com\r\nSubject: Where is my order?\r\nMessage-ID: <a@example.org>\r\nDate: Mon, 23 Nov 2026 09:59:00 +0000\r\n\r\nHello,\r\nwhere is it?\r\n",
		"no body": "From: Ana <ana@example.org>\r\nTo: support@example.com\r\nCc: sales@example.com\r\n" +
			"Subject: Where is my order?\r\nMessage-ID: <a@example.org>\r\nDate: Mon, 23 Nov 2026 09:59:00 +0000\r\n",
	}
	want := contentHash([]byte(base))
	if len(want) != 64 {
		t.Fatalf("contentHash = %q, want 64 hex digits", want)
	}
	for name, raw := range same {
		if got := contentHash([]byte(raw)); got != want {
			t.Errorf("%s: hash differs from the original", name)
		}
	}
	for name, raw := range different {
		if got := contentHash([]byte(raw)); got == want {
			t.Errorf("changed %s: same hash as the original", name)
		}
	}
	// Degenerate input hashes without failing.
	for _, raw := range []string{"", "\r\n", "no header at all", "\n\nbody only", ":\r\n\tfold\r\n\r\n"} {
		if len(contentHash([]byte(raw))) != 64 {
			t.Errorf("contentHash(%q) is not a hash", raw)
		}
	}
}
