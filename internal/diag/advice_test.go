package diag

import (
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestLoginAdvice: the provider hint appears only for the providers it is true for.
func TestLoginAdvice(t *testing.T) {
	cases := []struct {
		host, want, not string
	}{
		{"outlook.office365.com", "OAuth 2.0", ""},
		{"imap.gmail.com", "app password", ""},
		{"mail.example.com", "check both", "OAuth"},
		{"notoutlook.com", "check both", "OAuth"},
	}
	for _, tc := range cases {
		got := imapLoginAdvice(imap.ResponseCodeAuthenticationFailed, tc.host, "a@b")
		if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("advice for %s = %q, want %q and not %q", tc.host, got, tc.want, tc.not)
		}
	}
	if got := imapLoginAdvice(imap.ResponseCodeAuthorizationFailed, "mail.example.com", "a@b"); !strings.Contains(got, "not allowed to use IMAP") {
		t.Errorf("AUTHORIZATIONFAILED advice = %q", got)
	}
}

// TestPlainTextOnlyOnLoopback: security none to a host that resolved to anything but
// loopback is refused before a password could be sent.
func TestPlainTextOnlyOnLoopback(t *testing.T) {
	r := &run{ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}}
	if err := r.plainAllowed(); err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
	r.ips = append(r.ips, net.ParseIP("192.0.2.1"))
	err := r.plainAllowed()
	if err == nil || !strings.Contains(err.Error(), "use security tls or starttls") {
		t.Fatalf("non-loopback: %v", err)
	}
}
