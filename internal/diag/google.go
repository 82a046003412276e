package diag

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/gmail"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// googleProvider reports whether m signs in with Google Workspace.
func googleProvider(m store.Mailbox) bool {
	return m.OAuth.Provider == credential.ProviderGoogle
}

// googleLoginAdvice explains Gmail's refusal of an OAuth login (IMAP or SMTP) from the
// server's words: IMAP turned off by the administrator or for the user, a suspended user,
// else a token Gmail does not take.
func googleLoginAdvice(m store.Mailbox, serverWords string) string {
	w := strings.ToLower(serverWords)
	switch {
	case strings.Contains(w, "imap access is disabled for your domain") || strings.Contains(w, "not enabled for imap"):
		return "IMAP is turned off for " + m.Login + ": in the Google Admin console > Apps > Google Workspace > Gmail > End User Access, turn on \"Enable IMAP access for all users\" for the user's organisational unit (and, for the user, Gmail settings > Forwarding and POP/IMAP > Enable IMAP), then test again; a change can take up to an hour"
	case strings.Contains(w, "suspended") || strings.Contains(w, "disabled") || strings.Contains(w, "mail service not enabled"):
		return m.Login + " is suspended or has no Gmail: in the Google Admin console > Directory > Users, restore the user (or give them a licence with Gmail), then test again"
	}
	scope := credential.GoogleScopeMail
	if m.Auth == store.AuthOAuthApp {
		id := m.OAuth.ClientID
		if id == "" {
			id = "the service account's client id"
		}
		return fmt.Sprintf("Gmail refused the service account's token for %s: check that domain-wide delegation of client id %s lists exactly the scope %s, that %s is a user (not an alias or group) with Gmail, and that IMAP is on for the user's organisational unit (Admin console > Apps > Google Workspace > Gmail > End User Access)",
			m.Login, id, scope, m.Login)
	}
	return fmt.Sprintf("Gmail refused the token for %s: sign in with Google again with the account %s and accept the scope %s", m.Login, m.Login, scope)
}

// protoGmail is the Gmail API (provider google).
const protoGmail = "gmail"

// testGmail runs the sign-in step, then opens the mailbox with users.getProfile (a GET:
// nothing changes).
func testGmail(r *run, m store.Mailbox) {
	if !r.signIn(m, credential.AudienceOf(m.Protocol)) {
		return
	}
	hc := r.opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	token := r.oauth.token
	r.step("Open the mailbox "+m.Address+" with the Gmail API", 0, func(ctx context.Context) (string, error) {
		_, err := gmail.Open(ctx, gmail.Config{BaseURL: credential.GmailBaseURL(m), Mailbox: m.Address, HTTPClient: hc,
			Token: func(context.Context, bool) (string, error) { return token, nil }})
		if err != nil {
			return "", fail(words(err), connector.Advice(err))
		}
		return "mailbox opened (users.getProfile)", nil
	})
}
