package graph_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/vault"
)

// TestErrorsCarryKindAndAdvice: each way a Graph mailbox can be set up wrong gives an
// error whose kind says who acts and whose advice names the fix.
func TestErrorsCarryKindAndAdvice(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env, cfg *graph.Config)
		kind  connector.Kind
		words []string
	}{
		{"unlicensed mailbox", func(t *testing.T, e *env, cfg *graph.Config) {
			if _, err := e.sample.Tenant.AddUser(mstest.UserConfig{UPN: "onprem@contoso.example", Password: "pw-1234", NoMailbox: true}); err != nil {
				t.Fatal(err)
			}
			cfg.Mailbox = "onprem@contoso.example"
		}, connector.KindConfig, []string{"MailboxNotEnabledForRESTAPI", "Exchange Online licence", "shared mailbox", "on-premises"}},

		{"unknown mailbox", func(t *testing.T, e *env, cfg *graph.Config) {
			cfg.Mailbox = "nobody@contoso.example"
		}, connector.KindConfig, []string{"ErrorInvalidUser", `no mailbox "nobody@contoso.example"`}},

		{"outside the access policy", func(t *testing.T, e *env, cfg *graph.Config) {
			e.sample.App.SetAccessPolicy(&mstest.AccessPolicy{Mailboxes: []string{"sales@contoso.example"}})
		}, connector.KindAuth, []string{"ErrorAccessDenied", "application access policy", "Test-ApplicationAccessPolicy -Identity support@contoso.example", "Add-DistributionGroupMember"}},

		{"no admin consent", func(t *testing.T, e *env, cfg *graph.Config) {
			e.sample.App.SetAdminConsent(false)
		}, connector.KindAuth, []string{"401 NoPermissionsInAccessToken", "admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration",
			"Grant admin consent"}},

		{"no mail permission", func(t *testing.T, e *env, cfg *graph.Config) {
			e.sample.App.SetRoles(mstest.RoleUserReadAll)
		}, connector.KindAuth, []string{"ErrorAccessDenied", "application permission Mail.ReadWrite", "Grant admin consent"}},

		{"person's sign-in without the .Shared permissions", func(t *testing.T, e *env, cfg *graph.Config) {
			e.sample.App.SetScopes(mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend, mstest.ScopeGraphUserRead)
			cfg.Token = e.agentToken(mstest.ScopeGraphMailReadWrite, mstest.ScopeGraphMailSend)
		}, connector.KindAuth, []string{"ErrorAccessDenied", "Microsoft Graph denied agent@contoso.example access to support@contoso.example",
			"delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent",
			"Add-MailboxPermission -Identity support@contoso.example -User agent@contoso.example -AccessRights FullAccess"}},

		{"folder missing", func(t *testing.T, e *env, cfg *graph.Config) {
			cfg.Folder = "Kundendienst"
		}, connector.KindConfig, []string{`folder "Kundendienst" does not exist`}},

		{"token for the wrong resource", func(t *testing.T, e *env, cfg *graph.Config) {
			cfg.Token = credential.ClientCredentials(credential.OAuthConfig{
				TokenURL: e.srv.TokenURL(e.sample.TenantID), ClientID: e.sample.ClientID, ClientSecret: vault.NewSecret(e.sample.ClientSecret),
				Scopes: []string{"https://outlook.office365.com/.default"}, Logger: e.log,
			})
		}, connector.KindAuth, []string{"InvalidAuthenticationToken", "wrong audience", "https://graph.microsoft.com/.default"}},

		{"secret expired while running", func(t *testing.T, e *env, cfg *graph.Config) {
			if _, err := cfg.Token(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			e.sample.App.ExpireSecret(e.sample.ClientSecret)
			e.srv.ExpireAccessTokens()
		}, connector.KindAuth, []string{"AADSTS7000222", "client secret has expired"}},

		{"nothing listens", func(t *testing.T, e *env, cfg *graph.Config) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg.GraphURL = "http://" + ln.Addr().String()
			_ = ln.Close()
		}, connector.KindNetwork, []string{"nothing accepts connections"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, mstest.Options{})
			cfg := e.config()
			c.setup(t, e, &cfg)
			src, err := graph.Open(context.Background(), cfg)
			if err == nil {
				_, err = src.Next(context.Background(), 10)
			}
			assertKind(t, err, c.kind, c.words...)
		})
	}
}

// TestSecretsNeverLogged: neither the client secret nor an access token reaches the log,
// even when Graph refuses the token.
func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	e.deliver(t, "inbox", 0, 2)
	src := e.open(t, e.config())
	token, err := e.token(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.ExpireAccessTokens()
	newIngest().drain(t, src, 10)
	for _, secret := range []string{e.sample.ClientSecret, token} {
		if strings.Contains(e.logs.String(), secret) {
			t.Fatalf("a secret reached the log:\n%s", e.logs)
		}
	}
}
