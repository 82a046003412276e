package web

import (
	"context"
	"crypto/x509"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// TestBrowserMigrateToOAuth drives the self-service migration in Chromium against real
// Dovecot, which takes the Microsoft stand-in's tokens for XOAUTH2 (as Exchange Online
// does): two IMAP mailboxes sign in with passwords; the admin enters the app registration,
// tests it on one mailbox with a wrong secret (the checklist says what to fix), then with
// the right one, and migrates both. The mailbox the app may open is migrated and then
// signs in with the app even after its password changed; the other (the app holds no
// Full Access on it) is rolled back and keeps working with its password.
func TestBrowserMigrateToOAuth(t *testing.T) {
	f := newFixture(t)
	f.withTokens()
	ms, sample := sampleTenant(t, "")
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: ms.IntrospectURL()})
	sales := "sales@" + mstest.SampleDomain
	d.AddUser(t, sample.Mailbox, secretPassword)
	d.AddUser(t, sales, secretPassword)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(d.CertPEM) {
		t.Fatal("dovecot certificate is not PEM")
	}
	f.mbox.RootCAs = roots
	host, portText, err := net.SplitHostPort(d.IMAPSAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	imaps := func(name, user string) mailbox.Input {
		return mailbox.Input{Name: name, Direction: store.Inbound, Protocol: mailbox.IMAP, Address: user, Login: user,
			Host: host, Port: port, Security: mailbox.SecurityTLS}
	}
	support := f.addPasswordMailbox(t, imaps("exo_support", sample.Mailbox))
	salesBox := f.addPasswordMailbox(t, imaps("exo_sales", sales))
	bg := context.Background()
	for _, m := range []store.Mailbox{support, salesBox} {
		if rep, err := f.mbox.Test(bg, m.ID); err != nil || !rep.OK {
			t.Fatalf("%s does not work with its password before the migration: %v %+v", m.Name, err, rep)
		}
	}

	ctx, shots := adminBrowser(t, f)
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/mailboxes"), chromedp.WaitVisible(chromedp.CSS("table.mailboxes")))
	submit(t, ctx, chromedp.Click(chromedp.ID("migrate-oauth")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("migrate-mailboxes")))
	if h1 := get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h1 != "Migrate mailboxes to OAuth 2.0" {
		t.Fatalf("the link led to %q", h1)
	}
	pick, testWith := "pick-"+itoa(support.ID), "test-"+itoa(support.ID)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("oauth_tenant"), sample.TenantID),
		chromedp.SendKeys(chromedp.ID("oauth_client_id"), sample.ClientID),
		chromedp.SetValue(chromedp.ID("oauth_cloud"), credential.CloudCustom),
		chromedp.SendKeys(chromedp.ID("oauth_authority_url"), ms.LoginURL()),
		chromedp.SendKeys(chromedp.ID("client_secret"), "not-the-secret"),
		chromedp.Click(chromedp.ID(pick)),
		chromedp.Click(chromedp.ID("pick-"+itoa(salesBox.ID))),
		chromedp.Click(chromedp.ID(testWith)),
	)
	screenshot(t, ctx, shots, "01-form")

	// Test with a wrong secret: the checklist fails at the sign-in, with advice; the form
	// keeps the ids and the ticks but not the secret.
	submit(t, ctx, chromedp.Click(chromedp.ID("migrate-test")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("test-report")))
	report := get(t, ctx, chromedp.Text(chromedp.ID("test-report")))
	if !strings.Contains(report, "Connection test: failed") || !strings.Contains(strings.ToLower(report), "secret") {
		t.Errorf("test with a wrong secret:\n%s", report)
	}
	if heading := get(t, ctx, chromedp.Text(chromedp.ID("test-heading"))); !strings.Contains(heading, "exo_support") {
		t.Errorf("report heading = %q, want the test mailbox", heading)
	}
	if v := get(t, ctx, chromedp.Value(chromedp.ID("client_secret"))); v != "" {
		t.Errorf("the secret field came back with %q", v)
	}
	if note := get(t, ctx, chromedp.Text(chromedp.ID("retype-client-secret"))); !strings.Contains(note, "Paste the client secret again") {
		t.Errorf("note under the secret = %q", note)
	}
	if tenant := get(t, ctx, chromedp.Value(chromedp.ID("oauth_tenant"))); tenant != sample.TenantID {
		t.Errorf("tenant after the test = %q", tenant)
	}
	checked := `[...document.querySelectorAll("#migrate-mailboxes input:checked")].map(i => i.id).sort().join(" ")`
	wantChecked := strings.Join(slices.Sorted(slices.Values([]string{pick, "pick-" + itoa(salesBox.ID), testWith})), " ")
	if got := get(t, ctx, chromedp.Evaluate[string](checked)); got != wantChecked {
		t.Errorf("ticks after the test = %q, want %q", got, wantChecked)
	}
	if ps := get(t, ctx, chromedp.Text(chromedp.ID("prechecks"))); !strings.Contains(ps, sample.ClientID) {
		t.Errorf("the walk-through is not filled in with the client id:\n%s", ps)
	}
	screenshot(t, ctx, shots, "02-test-wrong-secret")

	// The right secret: the test passes.
	do(t, ctx, chromedp.SendKeys(chromedp.ID("client_secret"), sample.ClientSecret))
	submit(t, ctx, chromedp.Click(chromedp.ID("migrate-test")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("test-report")))
	if report := get(t, ctx, chromedp.Text(chromedp.ID("test-report"))); !strings.Contains(report, "Connection test: passed") {
		t.Fatalf("test with the right secret:\n%s", report)
	}
	screenshot(t, ctx, shots, "03-test-passed")
	if m := f.mailboxNamed(t, "exo_support"); m.Auth != store.AuthPassword {
		t.Fatalf("the test saved the sign-in: %s", m.Auth)
	}

	// Migrate both: the secret is pasted again.
	do(t, ctx, chromedp.SendKeys(chromedp.ID("client_secret"), sample.ClientSecret))
	submit(t, ctx, chromedp.Click(chromedp.ID("migrate-run")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("migrate-results")))
	if sum := get(t, ctx, chromedp.Text(chromedp.ID("migrate-summary"))); !strings.HasPrefix(sum, "1 migrated, 1 rolled back") {
		t.Errorf("result summary = %q", sum)
	}
	supportRow := get(t, ctx, chromedp.Text(chromedp.ID("result-"+itoa(support.ID))))
	salesRow := get(t, ctx, chromedp.Text(chromedp.ID("result-"+itoa(salesBox.ID))))
	if !strings.Contains(supportRow, "exo_support") || !strings.Contains(supportRow, "migrated") {
		t.Errorf("result of exo_support = %q", supportRow)
	}
	if !strings.Contains(salesRow, "exo_sales") || !strings.Contains(salesRow, "rolled back") || !strings.Contains(salesRow, "keeps its old settings") {
		t.Errorf("result of exo_sales = %q", salesRow)
	}
	salesAdvice := get(t, ctx, chromedp.Text(chromedp.CSS("#result-"+itoa(salesBox.ID)+" .advice")))
	if salesAdvice == "" {
		t.Error("the rolled-back mailbox's row gives no advice")
	}
	t.Logf("advice for the rolled-back mailbox: %s", salesAdvice)
	listed := `[...document.querySelectorAll("#migrate-mailboxes td.name label")].map(l => l.textContent.trim()).join(" ")`
	if names := get(t, ctx, chromedp.Evaluate[string](listed)); strings.Contains(names, "exo_support") || !strings.Contains(names, "exo_sales") {
		t.Errorf("password mailboxes after the migration = %q, want exo_sales still listed and exo_support gone", names)
	}
	screenshot(t, ctx, shots, "04-results")
	html := get(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(html, sample.ClientSecret) || strings.Contains(html, secretPassword) {
		t.Error("the client secret or a password is in the page")
	}

	// What the mailboxes do now: exo_support signs in with the app, on the same server,
	// even after its password changed; exo_sales still works with its password.
	migrated := f.mailboxNamed(t, "exo_support")
	if migrated.Auth != store.AuthOAuthApp || migrated.Protocol != mailbox.IMAP || migrated.Host != host || migrated.Port != port {
		t.Errorf("exo_support after the migration: auth %s, %s at %s:%d; want oauth_app on the same IMAP server", migrated.Auth, migrated.Protocol, migrated.Host, migrated.Port)
	}
	d.AddUser(t, sample.Mailbox, "changed-after-migration")
	if rep, err := f.mbox.Test(bg, migrated.ID); err != nil || !rep.OK {
		t.Errorf("exo_support does not sign in with the app after the migration: %v %+v", err, rep)
	}
	back := f.mailboxNamed(t, "exo_sales")
	if back.Auth != store.AuthPassword {
		t.Errorf("exo_sales after the rollback: auth %s, want password", back.Auth)
	}
	if rep, err := f.mbox.Test(bg, back.ID); err != nil || !rep.OK {
		t.Errorf("exo_sales does not work with its password after the rollback: %v %+v", err, rep)
	}
}
