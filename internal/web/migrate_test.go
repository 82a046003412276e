package web

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// addPasswordMailbox creates a mailbox that signs in with secretPassword.
func (f *fixture) addPasswordMailbox(t *testing.T, in mailbox.Input) store.Mailbox {
	t.Helper()
	pw := vault.NewSecret(secretPassword)
	in.Password = &pw
	if in.Login == "" {
		in.Login = in.Address
	}
	m, err := f.mbox.Create(context.Background(), "admin", in)
	if err != nil {
		t.Fatalf("create mailbox %s: %v", in.Name, err)
	}
	return m
}

// withTokens gives the mailbox service the token sources of stored OAuth mailboxes, as
// the application wires it, so that a migration's connection test can sign in.
func (f *fixture) withTokens() {
	tokens := credential.NewTokens(f.passwords.Secrets(), credential.TokensOptions{Logger: slog.New(slog.DiscardHandler)})
	f.mbox.Tokens, f.mbox.OnCredentialsChange = tokens, tokens.Forget
}

// exoInbound is an inbound IMAP mailbox at Exchange Online's host, signing in with a password.
func exoInbound(name, address string) mailbox.Input {
	return mailbox.Input{Name: name, Direction: store.Inbound, Protocol: mailbox.IMAP, Address: address,
		Host: "outlook.office365.com", Security: mailbox.SecurityTLS}
}

// migrateRowState returns, for the mailbox table of the migrate page, whether mailbox id
// is listed, ticked, and chosen as the test mailbox.
func migrateRowState(body string, id int64) (listed, ticked, test bool) {
	row := regexp.MustCompile(`(?s)<tr id="row-` + itoa(id) + `".*?</tr>`).FindString(body)
	if row == "" {
		return false, false, false
	}
	return true, strings.Contains(row, `name="id" value="`+itoa(id)+`" checked`),
		strings.Contains(row, `name="test_id" value="`+itoa(id)+`" checked`)
}

// summaryText returns the items of the page's error summary.
func summaryText(body string) string {
	m := regexp.MustCompile(`(?s)id="form-errors">(.*?)</div>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " "))
}

// TestMigratePage: the page is reached from the Mailboxes page; it lists the mailboxes
// that sign in with a password (not those with OAuth already), ticks those at Exchange
// Online's hosts and takes the first of them as the test mailbox; it is for
// administrators only.
func TestMigratePage(t *testing.T) {
	f := newFixture(t)
	exoIn := f.addPasswordMailbox(t, exoInbound("exo_in", "support@contoso.example"))
	exoOut := f.addPasswordMailbox(t, mailbox.Input{Name: "exo_out", Direction: store.Outbound, Protocol: mailbox.SMTP,
		Address: "support@contoso.example", Host: "SMTP.Office365.com", Security: mailbox.SecurityStartTLS})
	gcc := f.addPasswordMailbox(t, exoInbound("gcc_in", "support@agency.example"))
	if _, err := f.mbox.Update(context.Background(), "admin", gcc.ID, func() mailbox.Input {
		in := mailbox.FromMailbox(gcc)
		in.Name, in.Host = "", "outlook.office365.us"
		pw := vault.NewSecret(secretPassword) // a new host needs the password again
		in.Password = &pw
		return in
	}()); err != nil {
		t.Fatal(err)
	}
	secret := vault.NewSecret(testClientSecret)
	graph, err := f.mbox.Create(context.Background(), "admin", mailbox.Input{Name: "graph_desk", Direction: store.Inbound,
		Protocol: mailbox.Graph, Address: "desk@contoso.example", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Tenant: testTenantID, ClientID: testClientID}, ClientSecret: &secret})
	if err != nil {
		t.Fatal(err)
	}

	c := f.signIn(t, "admin")
	if list := c.get("/mailboxes"); !strings.Contains(list.body, `href="/mailboxes/migrate"`) {
		t.Error("the Mailboxes page has no link to the migration page")
	}
	p := c.get("/mailboxes/migrate")
	if p.status != http.StatusOK || !strings.Contains(p.body, "<h1>Migrate mailboxes to OAuth 2.0</h1>") {
		t.Fatalf("GET /mailboxes/migrate: %d\n%s", p.status, p.body)
	}
	for _, tt := range []struct {
		m                    store.Mailbox
		listed, ticked, test bool
	}{
		{exoIn, true, true, true},
		{exoOut, true, true, false},
		{gcc, true, true, false},
		{f.inbound, true, false, false},
		{f.outbound, true, false, false},
		{graph, false, false, false},
	} {
		listed, ticked, test := migrateRowState(p.body, tt.m.ID)
		if listed != tt.listed || ticked != tt.ticked || test != tt.test {
			t.Errorf("%s (host %q, sign-in %s): listed %v ticked %v test %v, want %v %v %v",
				tt.m.Name, tt.m.Host, tt.m.Auth, listed, ticked, test, tt.listed, tt.ticked, tt.test)
		}
	}
	for _, want := range []string{`name="oauth_tenant"`, `name="oauth_client_id"`, `value="usgov"`, `value="custom"`,
		`name="oauth_authority_url"`, `name="client_secret" type="password" value=""`, `name="client_certificate"`,
		`name="oauth_secret_expires_at" type="date"`, `name="to_graph"`, `id="prechecks"`, `formaction="/mailboxes/migrate/test"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	// Supervisors and agents may not migrate, nor see the page.
	for _, user := range []string{"sam", "ana"} {
		other := f.signIn(t, user)
		if r := other.get("/mailboxes/migrate"); r.status != http.StatusForbidden {
			t.Errorf("%s GET /mailboxes/migrate: %d, want 403", user, r.status)
		}
		token := other.get("/workitems").csrf(t)
		form := url.Values{"csrf": {token}, "id": {itoa(exoIn.ID)}, "test_id": {itoa(exoIn.ID)}, "client_secret": {testClientSecret},
			"oauth_tenant": {testTenantID}, "oauth_client_id": {testClientID}}
		if r := other.post("/mailboxes/migrate", form); r.status != http.StatusForbidden {
			t.Errorf("%s POST /mailboxes/migrate: %d, want 403", user, r.status)
		}
	}
	if list := f.signIn(t, "sam").get("/mailboxes"); strings.Contains(list.body, `href="/mailboxes/migrate"`) {
		t.Error("a supervisor's Mailboxes page links to the migration")
	}
	if m := f.mailboxNamed(t, "exo_in"); m.Auth != store.AuthPassword {
		t.Errorf("a refused request changed exo_in's sign-in to %s", m.Auth)
	}
}

// TestMigrateFormErrors: what is missing or wrong comes back next to its field, with the
// values typed kept and the secret never sent back (a note asks to paste it again); a
// refused form changes no mailbox; a form without the CSRF token is refused.
func TestMigrateFormErrors(t *testing.T) {
	f := newFixture(t)
	exoIn := f.addPasswordMailbox(t, exoInbound("exo_in", "support@contoso.example"))
	// At Exchange Online too, so ticked at first; the forms below leave it unticked.
	unticked := f.addPasswordMailbox(t, exoInbound("exo_other", "other@contoso.example"))
	c := f.signIn(t, "admin")
	token := c.get("/mailboxes/migrate").csrf(t)
	const pem = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-but-private\n-----END PRIVATE KEY-----"

	// No secret, no test mailbox, no mailbox ticked, a date that is not one.
	form := url.Values{"csrf": {token}, "oauth_tenant": {testTenantID}, "oauth_client_id": {testClientID},
		"oauth_cloud": {credential.CloudGlobal}, "oauth_secret_expires_at": {"31/05/2027"}}
	p := c.post("/mailboxes/migrate", form)
	if p.status != http.StatusBadRequest {
		t.Fatalf("empty migration: %d, want 400\n%s", p.status, p.body)
	}
	for field, want := range map[string]string{
		"client_secret": "paste the app's client secret", "oauth_secret_expires_at": "YYYY-MM-DD",
		"id": "tick the mailboxes to migrate", "test_id": "choose the mailbox to test",
	} {
		if msg := fieldError(p.body, field); !strings.Contains(msg, want) {
			t.Errorf("error next to %s = %q, want it to contain %q", field, msg, want)
		}
	}
	if sum := summaryText(p.body); !strings.Contains(sum, "Nothing was changed") || !strings.Contains(sum, "Client secret:") {
		t.Errorf("error summary = %q", sum)
	}
	if !strings.Contains(p.body, `value="`+testTenantID+`"`) || !strings.Contains(p.body, `value="31/05/2027"`) {
		t.Error("the refused form lost the values typed")
	}

	// Ids that break the mailbox rules come back next to their fields, from the test; the
	// secret and the certificate typed are not in the page, and notes ask for them again.
	form = url.Values{"csrf": {token}, "oauth_tenant": {"contoso corp"}, "oauth_client_id": {"my-app"},
		"oauth_cloud": {credential.CloudGlobal}, "client_secret": {testClientSecret}, "client_certificate": {pem},
		"id": {itoa(exoIn.ID)}, "test_id": {itoa(exoIn.ID)}}
	for _, path := range []string{"/mailboxes/migrate/test", "/mailboxes/migrate"} {
		p = c.post(path, form)
		if p.status != http.StatusBadRequest {
			t.Fatalf("POST %s with bad ids: %d, want 400\n%s", path, p.status, p.body)
		}
		if msg := fieldError(p.body, "oauth_tenant"); !strings.Contains(msg, "directory (tenant) id") {
			t.Errorf("%s: error next to the tenant = %q", path, msg)
		}
		if msg := fieldError(p.body, "oauth_client_id"); !strings.Contains(msg, "is a GUID") {
			t.Errorf("%s: error next to the client id = %q", path, msg)
		}
		for _, want := range []string{`id="retype-client-secret"`, `id="retype-certificate"`, `value="contoso corp"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s: the page lacks %s", path, want)
			}
		}
		if strings.Contains(p.body, testClientSecret) || strings.Contains(p.body, "not-a-real-key-but-private") {
			t.Errorf("%s: the client secret or the certificate is in the page", path)
		}
		if listed, ticked, test := migrateRowState(p.body, exoIn.ID); !listed || !ticked || !test {
			t.Errorf("%s: the refused form lost the ticks (listed %v ticked %v test %v)", path, listed, ticked, test)
		}
		if listed, ticked, test := migrateRowState(p.body, unticked.ID); !listed || ticked || test {
			t.Errorf("%s: the refused form changed the ticks of exo_other (listed %v ticked %v test %v)", path, listed, ticked, test)
		}
	}

	// "Another authority URL" without the URL.
	form.Set("oauth_tenant", testTenantID)
	form.Set("oauth_client_id", testClientID)
	form.Set("oauth_cloud", credential.CloudCustom)
	p = c.post("/mailboxes/migrate", form)
	if msg := fieldError(p.body, "oauth_authority_url"); p.status != http.StatusBadRequest || !strings.Contains(msg, "authority") {
		t.Errorf("custom authority without a URL: %d, error %q", p.status, msg)
	}

	// A ticked mailbox that signs in with OAuth already is not migrated again.
	secret := vault.NewSecret(testClientSecret)
	graph, err := f.mbox.Create(context.Background(), "admin", mailbox.Input{Name: "graph_desk", Direction: store.Inbound,
		Protocol: mailbox.Graph, Address: "desk@contoso.example", Auth: store.AuthOAuthApp,
		OAuth: store.OAuth{Tenant: testTenantID, ClientID: testClientID}, ClientSecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	form.Set("oauth_cloud", credential.CloudGlobal)
	form.Add("id", itoa(graph.ID))
	p = c.post("/mailboxes/migrate", form)
	if msg := fieldError(p.body, "id"); p.status != http.StatusBadRequest || !strings.Contains(msg, "already signs in with OAuth 2.0") {
		t.Errorf("ticked OAuth mailbox: %d, error %q", p.status, msg)
	}

	// Without the CSRF token.
	form.Del("csrf")
	if p := c.post("/mailboxes/migrate", form); p.status != http.StatusForbidden {
		t.Errorf("migration without the CSRF token: %d, want 403", p.status)
	}
	if m := f.mailboxNamed(t, "exo_in"); m.Auth != store.AuthPassword || m.Protocol != mailbox.IMAP {
		t.Errorf("refused forms changed exo_in: sign-in %s, protocol %s", m.Auth, m.Protocol)
	}
}

// TestMigrateToGraphResultTable migrates two IMAP mailboxes at Exchange Online to
// Microsoft Graph against the Microsoft stand-in. With a wrong secret the test mailbox
// fails first and nothing is migrated. With the right one, the mailbox the app may open
// is migrated, and the one that does not exist in the tenant is rolled back: the result
// table says which, with the failed step's advice, and the rolled-back mailbox keeps its
// settings and password.
func TestMigrateToGraphResultTable(t *testing.T) {
	f := newFixture(t)
	f.withTokens()
	ms, sample := sampleTenant(t, "")
	ctx := context.Background()
	good := f.addPasswordMailbox(t, exoInbound("exo_support", sample.Mailbox))
	stranger := f.addPasswordMailbox(t, exoInbound("exo_stranger", "nobody@"+mstest.SampleDomain))

	c := f.signIn(t, "admin")
	page := c.get("/mailboxes/migrate")
	expires := time.Now().UTC().AddDate(0, 6, 0).Format(time.DateOnly)
	form := url.Values{"csrf": {page.csrf(t)}, "oauth_tenant": {sample.TenantID}, "oauth_client_id": {sample.ClientID},
		"oauth_cloud": {credential.CloudCustom}, "oauth_authority_url": {ms.LoginURL()}, "graph_url": {ms.GraphURL()},
		"to_graph": {"1"}, "client_secret": {"not-the-secret"}, "oauth_secret_expires_at": {expires},
		"id": {itoa(good.ID), itoa(stranger.ID)}, "test_id": {itoa(good.ID)}}

	// A wrong secret: the test mailbox fails, nothing is migrated.
	p := c.post("/mailboxes/migrate", form)
	steps := reportSteps(p.body)
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="gate-failed"`) || !strings.Contains(p.body, "Connection test: failed") {
		t.Fatalf("migration with a wrong secret: %d, steps %q\n%s", p.status, steps, p.body)
	}
	if len(steps) == 0 || !strings.HasPrefix(steps[len(steps)-1], "fail ") || !strings.Contains(strings.ToLower(advice(p.body)), "secret") {
		t.Errorf("wrong secret: steps %q, advice %q; want a failed last step with advice about the secret", steps, advice(p.body))
	}
	if strings.Contains(p.body, `id="migrate-results"`) {
		t.Error("a result table after the test mailbox failed")
	}
	for _, m := range []store.Mailbox{good, stranger} {
		if got := f.mailboxNamed(t, m.Name); got.Auth != store.AuthPassword || got.Protocol != mailbox.IMAP {
			t.Errorf("%s changed although the test mailbox failed: %s %s", m.Name, got.Auth, got.Protocol)
		}
	}

	// The right secret.
	form.Set("client_secret", sample.ClientSecret)
	p = c.post("/mailboxes/migrate", form)
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="migrate-results"`) {
		t.Fatalf("migration: %d\n%s", p.status, p.body)
	}
	if sum := resultSummary(p.body); sum != "1 migrated, 1 rolled back (they keep their old sign-in and keep working)." {
		t.Errorf("result summary = %q", sum)
	}
	goodRow, strangerRow := resultRow(p.body, good.ID), resultRow(p.body, stranger.ID)
	if !strings.Contains(goodRow, "exo_support") || !strings.Contains(goodRow, `<span class="badge pass">migrated</span>`) {
		t.Errorf("result row of exo_support = %q", goodRow)
	}
	if !strings.Contains(strangerRow, "exo_stranger") || !strings.Contains(strangerRow, `<span class="badge fail">rolled back</span>`) ||
		!strings.Contains(strangerRow, `class="failed-step"`) || !strings.Contains(strangerRow, `<p class="advice">There is no mailbox nobody@`) {
		t.Errorf("result row of exo_stranger = %q, want rolled back with the failed step and its advice", strangerRow)
	}
	if strings.Contains(p.body, sample.ClientSecret) || !strings.Contains(p.body, `id="retype-client-secret"`) {
		t.Error("after the migration the secret is in the page, or the note to paste it again is missing")
	}
	if listed, _, _ := migrateRowState(p.body, good.ID); listed {
		t.Error("the migrated mailbox is still listed as signing in with a password")
	}
	if listed, ticked, _ := migrateRowState(p.body, stranger.ID); !listed || !ticked {
		t.Errorf("the rolled-back mailbox: listed %v ticked %v, want it listed and ticked for another try", listed, ticked)
	}

	got := f.mailboxNamed(t, "exo_support")
	if got.Auth != store.AuthOAuthApp || got.Protocol != mailbox.Graph || got.OAuth.ClientID != sample.ClientID ||
		!got.ClientSecretSet || got.OAuth.SecretExpiresAt.Format(time.DateOnly) != expires {
		t.Errorf("migrated mailbox: auth %s protocol %s client %s secret stored %v expires %v",
			got.Auth, got.Protocol, got.OAuth.ClientID, got.ClientSecretSet, got.OAuth.SecretExpiresAt)
	}
	if rep, err := f.mbox.Test(ctx, got.ID); err != nil || !rep.OK {
		t.Errorf("the migrated mailbox's stored settings do not pass the test: %v %+v", err, rep)
	}
	back := f.mailboxNamed(t, "exo_stranger")
	if back.Auth != store.AuthPassword || back.Protocol != mailbox.IMAP || back.Host != "outlook.office365.com" {
		t.Errorf("rolled-back mailbox: auth %s protocol %s host %s, want its password sign-in over IMAP", back.Auth, back.Protocol, back.Host)
	}
	if pw, err := f.passwords.Get(ctx, back.ID); err != nil || pw.Reveal() != secretPassword {
		t.Errorf("the rolled-back mailbox lost its password (err %v)", err)
	}
	if detail := c.get(listView{Selected: good.ID}.URL("")); !strings.Contains(detail.body, "app registration with a client secret (no user)") {
		t.Error("the Mailboxes page does not show the migrated mailbox's new sign-in")
	}
}

// advice returns the advice texts of a page's test report.
func advice(body string) string {
	var out []string
	for _, m := range regexp.MustCompile(`<p class="advice">([^<]*)</p>`).FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return strings.Join(out, " | ")
}

// resultSummary is the line above the result table.
func resultSummary(body string) string {
	m := regexp.MustCompile(`id="migrate-summary">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// resultRow is the result table's row of mailbox id.
func resultRow(body string, id int64) string {
	return regexp.MustCompile(`(?s)<tr id="result-` + fmt.Sprint(id) + `".*?</tr>`).FindString(body)
}
