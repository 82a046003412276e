package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// Values of the CLI's OAuth tests; no output may contain the secrets.
const (
	cliTenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	cliClientID     = "11111111-2222-3333-4444-555555555555"
	cliClientSecret = "qWe8Q~cli-client-secret-never-printed"
	cliRefreshToken = "0.AAAA-cli-refresh-token-never-printed"
)

// secretFile writes a file holding content (with the newline an editor adds).
func (c *cli) secretFile(name, content string) string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// stdinRun runs `postroom mailbox args... -data DIR` with stdin as standard input.
func (c *cli) stdinRun(stdin string, args ...string) error {
	c.t.Helper()
	var out, errOut bytes.Buffer
	err := runMailbox(context.Background(), append(args, "-data", c.dir), strings.NewReader(stdin), &out, &errOut, noEnv)
	c.output.Write(out.Bytes())
	c.output.Write(errOut.Bytes())
	return err
}

// storedSecret reads a mailbox's secret back from the data folder.
func (c *cli) storedSecret(mailboxName, secret string) string {
	c.t.Helper()
	ctx := context.Background()
	a, err := app.Open(ctx, app.Config{DataDir: c.dir, Getenv: noEnv, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		c.t.Fatal(err)
	}
	defer a.Close()
	m, err := a.Store.MailboxByName(ctx, mailboxName)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := a.Passwords.Secrets().Get(ctx, m.ID, secret)
	if err != nil {
		c.t.Fatalf("secret %s of %s: %v", secret, mailboxName, err)
	}
	return s.Reveal()
}

// certificatePEM returns a self-signed certificate with its RSA private key as one PEM
// bundle, and a line of the key's base64 (which no output may contain).
func certificatePEM(t *testing.T) (bundle, keyLine string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "postroom cli"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(keyPEM), strings.Split(string(keyPEM), "\n")[2]
}

// TestMailboxCLIGraph adds a Microsoft Graph mailbox with a client secret, shows it, and
// changes its OAuth settings and secrets the ways an administrator would.
func TestMailboxCLIGraph(t *testing.T) {
	c := newCLI(t)
	authority := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)) // nothing may reach Microsoft from a test
	graph := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	secretFile := c.secretFile("secret", cliClientSecret)
	expires := time.Now().UTC().AddDate(0, 0, 100).Format(time.DateOnly)

	out := c.ok("add", "graph", "--direction", "inbound", "--protocol", "graph", "--address", "support@contoso.com",
		"--oauth-cloud", "custom", "--oauth-authority-url", authority, "--graph-url", graph,
		"--oauth-tenant", cliTenant, "--oauth-client-id", cliClientID, "--client-secret-file", secretFile, "--secret-expires", expires)
	if !strings.Contains(out, `created inbound mailbox "graph" (disabled`) {
		t.Errorf("add printed %q", out)
	}
	v := c.show("graph")
	if v.Protocol != "graph" || v.Auth != "oauth_app" || v.Folder != "Inbox" || v.Login != "support@contoso.com" || v.GraphURL != graph ||
		v.OAuth.Provider != "microsoft" || v.OAuth.Cloud != "custom" || v.OAuth.AuthorityURL != authority || v.OAuth.Tenant != cliTenant ||
		v.OAuth.ClientID != cliClientID || v.OAuth.SecretExpiresAt == nil || *v.OAuth.SecretExpiresAt != expires ||
		!v.ClientSecretSet || v.ClientCertificateSet || v.PasswordSet {
		t.Errorf("show -json: %+v", v)
	}
	if got := c.storedSecret("graph", store.SecretClientSecret); got != cliClientSecret {
		t.Errorf("stored client secret %q, want the file's", got)
	}

	text := c.ok("show", "graph")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^auth:\s+oauth_app$`),
		regexp.MustCompile(`(?m)^graph_url:\s+` + regexp.QuoteMeta(graph) + `$`),
		regexp.MustCompile(`(?m)^oauth_tenant:\s+` + cliTenant + `$`),
		regexp.MustCompile(`(?m)^oauth_client_id:\s+` + cliClientID + `$`),
		regexp.MustCompile(`(?m)^client_secret:\s+set$`),
		regexp.MustCompile(`(?m)^client_certificate:\s+not set$`),
		regexp.MustCompile(`(?m)^secret_expires:\s+` + expires + ` \(in (99|100) days\)$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("show does not match %s:\n%s", want, text)
		}
	}
	if regexp.MustCompile(`(?m)^(host|port|security|password):`).MatchString(text) {
		t.Errorf("show of a Graph app mailbox lists host, port, security or password:\n%s", text)
	}
	if list := c.ok("list"); !regexp.MustCompile(`(?m)^graph\s+inbound\s+graph\s+` + regexp.QuoteMeta(graph) + `\s+no\s+disabled$`).MatchString(list) {
		t.Errorf("list:\n%s", list)
	}

	// Edit changes only the OAuth flags given; the secret stays. A new tenant needs the
	// secret again (the stored one only goes to the tenant it was entered for).
	if msg := c.fails("edit", "graph", "-oauth-tenant", "contoso.onmicrosoft.com"); !strings.Contains(msg, "you changed the tenant: enter the client secret again") {
		t.Errorf("edit -oauth-tenant without the secret: %s", msg)
	}
	c.ok("edit", "graph", "-oauth-scopes", "https://graph.microsoft.com/.default")
	v = c.show("graph")
	if v.OAuth.Scopes != "https://graph.microsoft.com/.default" || v.OAuth.ClientID != cliClientID ||
		v.OAuth.SecretExpiresAt == nil || !v.ClientSecretSet {
		t.Errorf("after edit: %+v", v)
	}
	// An expiry date soon is a warning in show; "none" removes it.
	soon := time.Now().UTC().AddDate(0, 0, 6).Format(time.DateOnly)
	c.ok("edit", "graph", "-secret-expires", soon)
	if text := c.ok("show", "graph"); !regexp.MustCompile(`(?m)^secret_expires:\s+` + soon + ` \(expires in [56] days: create a new secret`).MatchString(text) {
		t.Errorf("show with the secret expiring in 6 days:\n%s", text)
	}
	c.ok("edit", "graph", "-secret-expires", "none")
	if v = c.show("graph"); v.OAuth.SecretExpiresAt != nil {
		t.Errorf("after -secret-expires none: %v", *v.OAuth.SecretExpiresAt)
	}
	for _, bad := range []string{"31/12/2026", "", "tomorrow"} {
		if msg := c.fails("edit", "graph", "-secret-expires", bad); !strings.Contains(msg, "-secret-expires") || !strings.Contains(msg, "2026-12-31") {
			t.Errorf("-secret-expires %q: %s", bad, msg)
		}
	}

	// A new secret from standard input, then a certificate from a file.
	if err := c.stdinRun("qWe8Q~the-next-secret\n", "edit", "graph", "-client-secret-stdin"); err != nil {
		t.Fatal(err)
	}
	if got := c.storedSecret("graph", store.SecretClientSecret); got != "qWe8Q~the-next-secret" {
		t.Errorf("client secret from standard input: %q", got)
	}
	bundle, keyLine := certificatePEM(t)
	c.ok("edit", "graph", "-client-certificate-file", c.secretFile("app.pem", bundle))
	if v = c.show("graph"); !v.ClientCertificateSet {
		t.Errorf("after -client-certificate-file: %+v", v)
	}
	if got := c.storedSecret("graph", store.SecretCertificate); strings.TrimSpace(got) != strings.TrimSpace(bundle) {
		t.Error("the stored certificate is not the file's")
	}

	// Copy: the settings without the secrets, and how to give them.
	if out := c.ok("copy", "graph", "graph2"); !strings.Contains(out, "graph2 -client-secret-stdin") {
		t.Errorf("copy printed %q", out)
	}
	if cp := c.show("graph2"); cp.ClientSecretSet || cp.ClientCertificateSet || cp.OAuth.ClientID != cliClientID || cp.GraphURL != graph {
		t.Errorf("copy: %+v", cp)
	}

	for _, s := range []string{cliClientSecret, "qWe8Q~the-next-secret", keyLine} {
		if strings.Contains(c.output.String(), s) {
			t.Errorf("a secret (%.12s...) was printed:\n%s", s, c.output.String())
		}
	}
	db, err := os.ReadFile(filepath.Join(c.dir, "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cliClientSecret, keyLine} {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("the database holds a secret (%.12s...) in plain text", s)
		}
	}
}

// TestMailboxCLIExchangeOnline: IMAP and SMTP with OAuth and no host get Exchange Online's
// hosts; a custom provider takes a refresh token.
func TestMailboxCLIExchangeOnline(t *testing.T) {
	c := newCLI(t)
	secretFile := c.secretFile("secret", cliClientSecret)
	c.ok("add", "exo", "-direction", "inbound", "-address", "support@contoso.com", "-auth", "oauth_app",
		"-oauth-tenant", "contoso.onmicrosoft.com", "-oauth-client-id", cliClientID, "-client-secret-file", secretFile)
	c.ok("add", "exoout", "-direction", "outbound", "-address", "support@contoso.com", "-auth", "oauth_app",
		"-oauth-tenant", "contoso.onmicrosoft.com", "-oauth-client-id", cliClientID, "-client-secret-file", secretFile)
	list := c.ok("list")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^exo\s+inbound\s+imap\s+outlook\.office365\.com:993\s+no\s+disabled$`),
		regexp.MustCompile(`(?m)^exoout\s+outbound\s+smtp\s+smtp\.office365\.com:587\s+no\s+disabled$`),
	} {
		if !want.MatchString(list) {
			t.Errorf("list does not match %s:\n%s", want, list)
		}
	}
	if v := c.show("exo"); v.Login != "support@contoso.com" || v.Security != "tls" || v.OAuth.Cloud != "global" || !v.ClientSecretSet {
		t.Errorf("exo: %+v", v)
	}

	// Another provider, a person's sign-in, the refresh token from standard input.
	err := c.stdinRun(cliRefreshToken+"\n", "add", "gmail", "-direction", "inbound", "-host", "imap.gmail.com", "-address", "help@example.org",
		"-login", "help@example.org", "-auth", "oauth_delegated", "-oauth-provider", "custom", "-oauth-client-id", "postroom.apps.example.org",
		"-oauth-token-url", "https://oauth2.example.org/token", "-oauth-authorize-url", "https://accounts.example.org/auth",
		"-oauth-scopes", "https://mail.example.org/", "-refresh-token-stdin")
	if err != nil {
		t.Fatal(err)
	}
	v := c.show("gmail")
	if v.Auth != "oauth_delegated" || !v.RefreshTokenSet || v.OAuth.Provider != "custom" || v.OAuth.TokenURL != "https://oauth2.example.org/token" || v.Host != "imap.gmail.com" {
		t.Errorf("gmail: %+v", v)
	}
	if got := c.storedSecret("gmail", store.SecretRefreshToken); got != cliRefreshToken {
		t.Errorf("stored refresh token %q", got)
	}
	text := c.ok("show", "gmail")
	for _, want := range []string{"oauth_provider:", "custom", "oauth_token_url:", "refresh_token:", "account:", "(nobody signed in yet)"} {
		if !strings.Contains(text, want) {
			t.Errorf("show gmail lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "oauth_tenant:") || strings.Contains(text, "client_secret:") || strings.Contains(text, "secret_expires:") {
		t.Errorf("show of a person's sign-in at a custom provider lists a tenant or a client secret:\n%s", text)
	}
	// Back to a password: the OAuth settings go.
	if err := c.stdinRun("app-password\n", "edit", "gmail", "-auth", "password", "-password-stdin"); err != nil {
		t.Fatal(err)
	}
	if v := c.show("gmail"); v.Auth != "password" || v.OAuth.Provider != "" || v.OAuth.TokenURL != "" || !v.PasswordSet {
		t.Errorf("gmail back to a password: %+v", v)
	}
	for _, s := range []string{cliClientSecret, cliRefreshToken, "app-password"} {
		if strings.Contains(c.output.String(), s) {
			t.Errorf("a secret (%.12s...) was printed:\n%s", s, c.output.String())
		}
	}
}

func TestMailboxCLIOAuthValidation(t *testing.T) {
	c := newCLI(t)
	secretFile := c.secretFile("secret", cliClientSecret)
	graph := []string{"-direction", "inbound", "-protocol", "graph", "-address", "support@contoso.com"}
	ids := []string{"-oauth-tenant", cliTenant, "-oauth-client-id", cliClientID}
	args := func(name string, parts ...[]string) []string {
		out := []string{"add", name}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		args  []string
		field string
	}{
		{args("a1", graph, ids), "client_secret (-client-secret-stdin or -client-secret-file): "},
		{args("a2", graph, []string{"-oauth-client-id", cliClientID, "-client-secret-file", secretFile}), "oauth_tenant (-oauth-tenant): "},
		{args("a3", graph, ids, []string{"-oauth-client-id", "postroom", "-client-secret-file", secretFile}), "oauth_client_id (-oauth-client-id): "},
		{args("a4", graph, ids, []string{"-oauth-cloud", "mars", "-client-secret-file", secretFile}), "oauth_cloud (-oauth-cloud): "},
		{args("a5", graph, ids, []string{"-oauth-cloud", "custom", "-client-secret-file", secretFile}), "oauth_authority_url (-oauth-authority-url): "},
		{args("a6", graph, ids, []string{"-auth", "password", "-client-secret-file", secretFile}), "auth (-auth): "},
		{args("a7", graph, ids, []string{"-auth", "kerberos", "-client-secret-file", secretFile}), "auth (-auth): "},
		{args("a8", graph, ids, []string{"-graph-url", "http://graph.example.com", "-client-secret-file", secretFile}), "graph_url (-graph-url): "},
		{args("a9", graph, ids, []string{"-oauth-provider", "okta", "-client-secret-file", secretFile}), "oauth_provider (-oauth-provider): "},
		{args("a10", graph, ids, []string{"-client-certificate-file", secretFile}), "client_certificate (-client-certificate-file): "},
		{args("a11", []string{"-direction", "inbound", "-host", "imap.example.org", "-login", "x", "-auth", "oauth_delegated", "-oauth-provider", "custom", "-oauth-client-id", "x"}), "oauth_token_url (-oauth-token-url): "},
	}
	for _, tc := range tests {
		msg := c.fails(tc.args...)
		if !strings.Contains(msg, "the mailbox has errors:") || !strings.Contains(msg, "\n  "+tc.field) {
			t.Errorf("%v: stderr %q does not name %q", tc.args[1:], msg, tc.field)
		}
	}

	// No secret as a flag value: a clear refusal that does not echo the value.
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"client-secret", []string{"add", "p", "-direction", "inbound", "-client-secret", cliClientSecret}},
		{"client-secret", []string{"add", "p", "--client-secret=" + cliClientSecret}},
		{"refresh-token", []string{"edit", "p", "-refresh-token", cliRefreshToken}},
		{"client-certificate", []string{"edit", "p", "-client-certificate", cliClientSecret}},
	} {
		code, out, errOut := c.run(tc.args...)
		if code == 0 || !strings.Contains(errOut, "there is no -"+tc.flag+" flag") || !strings.Contains(errOut, "shell history") ||
			strings.Contains(out+errOut, cliClientSecret) || strings.Contains(out+errOut, cliRefreshToken) {
			t.Errorf("-%s: exit %d, stderr %q", tc.flag, code, errOut)
		}
	}
	// Standard input holds one secret.
	if err := c.stdinRun("x\n", "add", "p", "-direction", "inbound", "-password-stdin", "-client-secret-stdin"); err == nil ||
		!strings.Contains(err.Error(), "-password-stdin and -client-secret-stdin") {
		t.Errorf("two secrets from standard input: %v", err)
	}
	if code, _, errOut := c.run("add", "p", "-client-secret-stdin", "-client-secret-file", secretFile, "-direction", "inbound"); code != 1 || !strings.Contains(errOut, "not both") {
		t.Errorf("both client secret flags: %d %q", code, errOut)
	}
	if code, _, errOut := c.run("add", "p", "-client-certificate-file", filepath.Join(t.TempDir(), "missing.pem"), "-direction", "inbound"); code != 1 || !strings.Contains(errOut, "-client-certificate-file") {
		t.Errorf("missing certificate file: %d %q", code, errOut)
	}
	if err := c.stdinRun("\n", "add", "p", "-direction", "inbound", "-client-secret-stdin"); err == nil || !strings.Contains(err.Error(), "no client secret") {
		t.Errorf("empty standard input: %v", err)
	}
	// The help documents the flags.
	code, _, errOut := c.run("add", "-h")
	for _, f := range []string{"-auth", "-oauth-provider", "-oauth-cloud", "-oauth-authority-url", "-oauth-tenant", "-oauth-client-id",
		"-oauth-token-url", "-oauth-authorize-url", "-oauth-scopes", "-graph-url", "-secret-expires", "-client-secret-stdin",
		"-client-secret-file", "-client-certificate-file", "-refresh-token-stdin", "-refresh-token-file"} {
		if code != 2 || !strings.Contains(errOut, "  "+f+" ") && !strings.Contains(errOut, "  "+f+"\n") {
			t.Errorf("add -h does not document %s:\n%s", f, errOut)
		}
	}
	if code, out, _ := c.run("help"); code != 0 || !strings.Contains(out, "-protocol graph") || !strings.Contains(out, "outlook.office365.com") {
		t.Errorf("mailbox help does not show a Microsoft 365 example:\n%s", out)
	}
	mbs := c.ok("list")
	if !strings.Contains(mbs, "no mailboxes") {
		t.Errorf("refused commands created mailboxes:\n%s", mbs)
	}
	if strings.Contains(c.output.String(), cliClientSecret) {
		t.Errorf("the client secret was printed:\n%s", c.output.String())
	}
}
