package diag_test

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// Exchange Online's own refusals (ms365-protocol.md §2.3, §8 items 5 and 10).
const (
	exchangeSMTPAuthOff  = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0601CA0005.namprd06.prod.outlook.com]"
	exchangeSMTPBadCreds = "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0005.namprd06.prod.outlook.com]"
	exchangePOP3Refused  = "-ERR Authentication failure: unknown user name or bad password."
)

// exchangeFront puts a fault proxy in front of Dovecot's plain-text listener for protocol
// that refuses logins in Exchange Online's words: Dovecot's XOAUTH2 error challenge
// (Exchange sends none) is swallowed and answered with the empty response, Dovecot's
// refusal becomes refusal (for IMAP: the words after the tag and NO), and the STARTTLS
// offer of submission is dropped so that the test stays in plain text, where the proxy
// reads the lines. m is pointed at the proxy with security none.
func exchangeFront(t *testing.T, d *testenv.Dovecot, m store.Mailbox, refusal string) store.Mailbox {
	t.Helper()
	target := map[string]string{"imap": d.IMAPAddr, "pop3": d.POP3Addr, "smtp": d.SubmissionAddr}[m.Protocol]
	rules := []testenv.LineRule{
		{Match: regexp.MustCompile(`^250-STARTTLS$`)},
		{Match: regexp.MustCompile(`^(\+|334) eyJ`), Answer: "\r\n"},
	}
	switch m.Protocol {
	case "imap":
		rules = append(rules, testenv.LineRule{Match: regexp.MustCompile(`^(\S+) NO \[AUTHENTICATIONFAILED\]`), Replace: "$1 NO " + refusal})
	case "pop3":
		rules = append(rules, testenv.LineRule{Match: regexp.MustCompile(`^-ERR \[AUTH\]`), Replace: refusal})
	case "smtp":
		rules = append(rules, testenv.LineRule{Match: regexp.MustCompile(`^535 `), Replace: refusal})
	}
	p := testenv.StartFaultProxy(t, target)
	p.RewriteLines(rules...)
	m.Host, m.Port = hostPort(t, p.Addr)
	m.Security = "none"
	return m
}

// noSignInAgain checks that the failed step does not send anyone to sign in again or to
// the password: a disabled SMTP AUTH is a setting in Exchange.
func noSignInAgain(t *testing.T, _ *tenant, rep diag.Report) {
	last := rep.Steps[len(rep.Steps)-1]
	if strings.Contains(last.Advice, "sign in again") || strings.Contains(last.Advice, "check both") {
		t.Errorf("advice %q sends the administrator to the sign-in or the password", last.Advice)
	}
}

// TestExchangeLines: Exchange Online's refusals, fed through the fault proxy in front of
// real Dovecot (whose oauth2 passdb asks the stand-in), reach the administrator with
// Exchange's words and Exchange's fix: SMTP AUTH disabled (535 5.7.139) names
// Set-CASMailbox -SmtpClientAuthenticationDisabled $false and Set-TransportConfig, for an
// app, a person and a password alike, and never a new sign-in; "NO AUTHENTICATE failed." and
// "-ERR Authentication failure: ..." to a valid token name the service principal,
// FullAccess and the protocol switch; the same lines to a password say Microsoft turned off
// basic authentication.
func TestExchangeLines(t *testing.T) {
	e := startMS(t)
	authOff := []string{"SMTP AUTH is disabled for {mailbox}", "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
		"Set-TransportConfig -SmtpClientAuthenticationDisabled $false"}
	cases := []msCase{
		{name: "smtp app-only, SMTP AUTH disabled", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.sharedMB.Update(func(c *mstest.UserConfig) { c.SMTPAuthDisabled = true })
			return exchangeFront(t, e.d, f.exchange(t, e, "smtp"), exchangeSMTPAuthOff), appCreds(f)
		}, want: msWant{last: "Authenticate as {mailbox}", fail: true, detail: []string{"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"},
			advice: authOff, check: noSignInAgain}},
		{name: "smtp delegated, SMTP AUTH disabled", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.user.Update(func(c *mstest.UserConfig) { c.SMTPAuthDisabled = true })
			m := delegated(f.exchange(t, e, "smtp"), f)
			m.Login, m.Address = f.user.UPN(), f.user.UPN()
			refresh := f.signInOnce(t, m)
			return exchangeFront(t, e.d, m, exchangeSMTPAuthOff), creds{secret: f.secret, refresh: refresh}
		}, want: msWant{last: "Authenticate as {user}", fail: true, detail: []string{"5.7.139"},
			advice: []string{"SMTP AUTH is disabled for {user}", "Set-CASMailbox -Identity {user} -SmtpClientAuthenticationDisabled $false"},
			check:  noSignInAgain}},
		{name: "smtp app-only without FullAccess, 5.7.3", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.RevokeFullAccess(f.shared)
			return exchangeFront(t, e.d, f.exchange(t, e, "smtp"), exchangeSMTPBadCreds), appCreds(f)
		}, want: msWant{last: "Authenticate as {mailbox}", fail: true, detail: []string{"535 5.7.3 Authentication unsuccessful"},
			advice: []string{"Exchange Online refused the app's valid token for {mailbox}", "Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess"}}},
		{name: "imap app-only without FullAccess", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.app.RevokeFullAccess(f.shared)
			return exchangeFront(t, e.d, f.exchange(t, e, "imap"), "AUTHENTICATE failed."), appCreds(f)
		}, want: msWant{last: "Log in as {mailbox}", fail: true, detail: []string{"NO AUTHENTICATE failed."},
			advice: []string{"New-ServicePrincipal -AppId {client} -ObjectId {sp}", "Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess",
				"Set-CASMailbox -Identity {mailbox} -ImapEnabled $true"}}},
		{name: "pop3 app-only, POP disabled", setup: func(t *testing.T, e *msEnv, f *tenant) (store.Mailbox, creds) {
			f.sharedMB.Update(func(c *mstest.UserConfig) { c.POPDisabled = true })
			return exchangeFront(t, e.d, f.exchange(t, e, "pop3"), exchangePOP3Refused), appCreds(f)
		}, want: msWant{last: "Log in as {mailbox}", fail: true, detail: []string{exchangePOP3Refused},
			advice: []string{"Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess", "Set-CASMailbox -Identity {mailbox} -PopEnabled $true"}}},
	}
	runMS(t, e, cases)

	// A password: Exchange Online takes none for IMAP and POP3, and SMTP AUTH may be off too.
	basicOff := []string{"Exchange Online (Microsoft 365) no longer accepts passwords", "Microsoft turned off basic authentication", "OAuth 2.0"}
	const login = "support@contoso.example"
	pw := func(protocol string) store.Mailbox {
		m := store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: protocol, Login: login, Address: login,
			Auth: store.AuthPassword, Folder: "INBOX", AfterAction: store.AfterMarkRead}
		if protocol == "smtp" {
			m.Direction, m.Folder, m.AfterAction = store.Outbound, "", ""
		}
		return m
	}
	steps := func(m store.Mailbox, last string) []string {
		return []string{"Resolve " + m.Host, "Connect to " + net.JoinHostPort(m.Host, strconv.Itoa(m.Port)), "TLS", last}
	}
	for _, tc := range []struct {
		name    string
		m       store.Mailbox
		last    string
		advice  []string
		detail  string
		notWant string
	}{
		{name: "imap password", m: exchangeFront(t, e.d, pw("imap"), "LOGIN failed."), last: "Log in as " + login,
			advice: append(basicOff, "IMAP"), detail: "NO LOGIN failed.", notWant: "check both"},
		{name: "pop3 password", m: exchangeFront(t, e.d, pw("pop3"), exchangePOP3Refused), last: "Log in as " + login,
			advice: append(basicOff, "POP3"), detail: exchangePOP3Refused, notWant: "check both"},
		{name: "smtp password, SMTP AUTH disabled", m: exchangeFront(t, e.d, pw("smtp"), exchangeSMTPAuthOff), last: "Authenticate as " + login,
			advice: []string{"SMTP AUTH is disabled for " + login, "Set-CASMailbox -Identity " + login + " -SmtpClientAuthenticationDisabled $false",
				"Set-TransportConfig -SmtpClientAuthenticationDisabled $false"}, detail: "535 5.7.139", notWant: "check both"},
		{name: "smtp password, 5.7.3", m: exchangeFront(t, e.d, pw("smtp"), exchangeSMTPBadCreds), last: "Authenticate as " + login,
			advice: []string{"the server refused the login name or password: check both"}, detail: "535 5.7.3", notWant: "Set-CASMailbox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := want{steps: steps(tc.m, tc.last), fail: true, advice: tc.advice, detail: []string{tc.detail}}
			if tc.m.Protocol == "smtp" {
				want.steps = append(want.steps[:3:3], "EHLO", tc.last)
			}
			rep := diag.Test(context.Background(), tc.m, vault.NewSecret(password), &diag.Options{RootCAs: e.roots})
			check(t, rep, want)
			if last := rep.Steps[len(rep.Steps)-1]; strings.Contains(last.Advice, tc.notWant) {
				t.Errorf("advice %q, want none of %q", last.Advice, tc.notWant)
			}
		})
	}
}
