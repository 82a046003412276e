package diag_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// lastStep is the failed (last) step of a report.
func lastStep(rep diag.Report) diag.Step { return rep.Steps[len(rep.Steps)-1] }

// TestGoogleConnectionTest: the connection test of a Google mailbox names the fix of each
// of Google's refusals: delegation missing (with the client id and scope), a wrong
// subject, IMAP turned off, a suspended user (Gmail API); and passes once all is right.
func TestGoogleConnectionTest(t *testing.T) {
	g, err := googletest.Start(googletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	user := "support@acme.test"
	g.AddUser(user, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: g.IntrospectURL()})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	host, port := hostPort(t, d.IMAPSAddr)
	m := store.Mailbox{ID: 1, Name: "google", Direction: store.Inbound, Protocol: "imap", Address: user, Login: user,
		Host: host, Port: port, Security: "tls", Folder: "INBOX", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Provider: credential.ProviderGoogle, ClientID: sa.ClientID}, ClientSecretSet: true}
	sec := credential.MailboxSecrets{ClientSecret: vault.NewSecret(string(sa.KeyJSON()))}
	test := func(m store.Mailbox) diag.Report {
		tok, err := credential.TokenFuncFor(m, credential.AudienceOf(m.Protocol), sec, credential.TokensOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return diag.Test(context.Background(), m, vault.Secret{}, &diag.Options{RootCAs: roots, Token: tok})
	}
	rep := test(m)
	if s := lastStep(rep); rep.OK || !strings.Contains(s.Advice, sa.ClientID) || !strings.Contains(s.Advice, "https://mail.google.com/") {
		t.Errorf("without delegation: %+v", s)
	}
	sa.Delegate(googletest.ScopeMail)
	wrong := m
	wrong.Address, wrong.Login = "nobody@acme.test", "nobody@acme.test"
	if rep := test(wrong); rep.OK || !strings.Contains(lastStep(rep).Advice, "no user nobody@acme.test") {
		t.Errorf("wrong subject: %+v", lastStep(rep))
	}
	if rep := test(m); !rep.OK {
		t.Fatalf("all right: %+v\n%s", rep.Steps, d.Log())
	}
	g.SetUser(user, googletest.UserConfig{IMAPDisabled: true})
	if rep := test(m); rep.OK || !strings.Contains(lastStep(rep).Advice, "IMAP") {
		t.Errorf("IMAP off: %+v", lastStep(rep))
	}
	g.SetUser(user, googletest.UserConfig{Suspended: true})
	gm := m
	gh, gp := hostPort(t, strings.TrimPrefix(g.GmailURL(), "http://"))
	gm.Protocol, gm.Host, gm.Port, gm.Security = "gmail", gh, gp, "none"
	if rep := test(gm); rep.OK || !strings.Contains(lastStep(rep).Advice, "suspended") {
		t.Errorf("suspended user, Gmail API: %+v", rep.Steps)
	}
}
