package diag

import (
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestGoogleLoginAdvice: Gmail's own words for IMAP turned off and a disabled account
// get the admin console's fix.
func TestGoogleLoginAdvice(t *testing.T) {
	m := store.Mailbox{Login: "support@acme.test", Auth: store.AuthOAuthApp}
	for words, want := range map[string]string{
		"NO [ALERT] IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)":      "Enable IMAP access for all users",
		"NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)": "Enable IMAP",
		"NO [ALERT] Account disabled (Failure)":                   "suspended",
		"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)": "domain-wide delegation",
	} {
		if got := googleLoginAdvice(m, words); !strings.Contains(got, want) {
			t.Errorf("%q: advice %q, want %q in it", words, got, want)
		}
	}
}
