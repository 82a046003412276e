package localserver

import "testing"

func TestEncodeMailboxUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":              "INBOX",
		"A&B":                "A&-B",
		"Küche":              "K&APw-che",
		"~peter/mail/台北/日本語": "~peter/mail/&U,BTFw-/&ZeVnLIqe-", // RFC 3501 §5.1.3
	} {
		if got := encodeMailboxUTF7(in); got != want {
			t.Errorf("encodeMailboxUTF7(%q) = %q, want %q", in, got, want)
		}
	}
}
