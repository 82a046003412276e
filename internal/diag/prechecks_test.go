package diag_test

import (
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/diag"
	"github.com/postroom/postroom/internal/store"
)

const (
	preTenant = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	preClient = "11111111-2222-3333-4444-555555555555"
)

func preMailbox(protocol, dir, auth string) store.Mailbox {
	return store.Mailbox{Name: "support", Protocol: protocol, Direction: dir, Auth: auth,
		Login: "support@contoso.com", Address: "support@contoso.com",
		OAuth: store.OAuth{Provider: "microsoft", Cloud: "global", Tenant: preTenant, ClientID: preClient}}
}

// precheck finds the precheck whose title contains title.
func precheck(t *testing.T, list []diag.Precheck, title string) diag.Precheck {
	t.Helper()
	for _, p := range list {
		if strings.Contains(p.Title, title) {
			return p
		}
	}
	var titles []string
	for _, p := range list {
		titles = append(titles, p.Title)
	}
	t.Fatalf("no precheck %q in %q", title, titles)
	return diag.Precheck{}
}

func hasPrecheck(list []diag.Precheck, title string) bool {
	for _, p := range list {
		if strings.Contains(p.Title, title) {
			return true
		}
	}
	return false
}

func contains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s = %q\nwant it to contain %q", what, text, w)
		}
	}
}

// TestPrechecksGraphApp: a Graph mailbox signing in as the app gets the app registration,
// the Graph application permissions with admin consent, the licence, the access policy
// commands filled in with its ids, and the hosts to allow.
func TestPrechecksGraphApp(t *testing.T) {
	list := diag.MicrosoftPrechecks(preMailbox("graph", store.Outbound, store.AuthOAuthApp))
	for _, p := range list {
		if p.Title == "" || p.Why == "" || p.Portal == "" {
			t.Errorf("precheck %+v lacks a title, a why or where to click", p)
		}
	}
	contains(t, "registration portal", precheck(t, list, "Register an app").Portal, "App registrations > New registration", "Enabled for users to sign in")
	perm := precheck(t, list, "permissions")
	contains(t, "permissions title", perm.Title, "Mail.ReadWrite and Mail.Send")
	contains(t, "permissions portal", perm.Portal, "Microsoft Graph > Application permissions", "Grant admin consent for "+preTenant)
	pol := precheck(t, list, "Limit the app")
	contains(t, "access policy commands", pol.PowerShell,
		"Connect-ExchangeOnline\n",
		"Add-DistributionGroupMember -Identity postroom-mailboxes@contoso.com -Member support@contoso.com",
		"New-ApplicationAccessPolicy -AppId "+preClient+" -PolicyScopeGroupId postroom-mailboxes@contoso.com -AccessRight RestrictAccess",
		"Test-ApplicationAccessPolicy -Identity support@contoso.com -AppId "+preClient,
		"New-ManagementRoleAssignment", "Test-ServicePrincipalAuthorization")
	contains(t, "licence", precheck(t, list, "licensed or shared").PowerShell, "Get-EXOMailbox -Identity support@contoso.com")
	contains(t, "network", precheck(t, list, "Allow postroom to reach Microsoft").Why, "login.microsoftonline.com, graph.microsoft.com on port 443")
	if hasPrecheck(list, "SMTP AUTH") || hasPrecheck(list, "Give the app access to the mailbox") {
		t.Error("a Graph mailbox gets IMAP/SMTP prechecks")
	}
	if hasPrecheck(list, "password alone") {
		t.Error("an app sign-in gets the password grant's precheck")
	}
}

// TestPrechecksExchangeApp: app-only IMAP and SMTP need the Exchange Online permission,
// FullAccess (and SendAs for SMTP), the protocol turned on, and no access policy.
func TestPrechecksExchangeApp(t *testing.T) {
	imap := diag.MicrosoftPrechecks(preMailbox("imap", store.Inbound, store.AuthOAuthApp))
	contains(t, "imap permissions", precheck(t, imap, "permissions").Portal, "Office 365 Exchange Online > Application permissions > IMAP.AccessAsApp")
	access := precheck(t, imap, "Give the app access to the mailbox")
	contains(t, "imap access", access.PowerShell, "New-ServicePrincipal -AppId "+preClient,
		"Add-MailboxPermission -Identity support@contoso.com -User <service principal object id> -AccessRights FullAccess")
	contains(t, "imap enabled", precheck(t, imap, "Turn on IMAP").PowerShell, "Set-CASMailbox -Identity support@contoso.com -ImapEnabled $true")
	if hasPrecheck(imap, "Limit the app") {
		t.Error("IMAP gets the access policy precheck, which does not apply to it")
	}
	contains(t, "imap network", precheck(t, imap, "Allow postroom").Why, "outlook.office365.com", "993")

	smtp := diag.MicrosoftPrechecks(preMailbox("smtp", store.Outbound, store.AuthOAuthApp))
	contains(t, "smtp access", precheck(t, smtp, "Give the app access").PowerShell, "Add-RecipientPermission -Identity support@contoso.com -Trustee <service principal object id> -AccessRights SendAs")
	contains(t, "smtp auth", precheck(t, smtp, "Turn on SMTP AUTH").PowerShell,
		"Set-CASMailbox -Identity support@contoso.com -SmtpClientAuthenticationDisabled $false", "Get-TransportConfig")
	contains(t, "smtp network", precheck(t, smtp, "Allow postroom").Why, "smtp.office365.com", "587")
}

// TestPrechecksPasswordGrant: the password grant is warned about, and the signing-in
// account gets FullAccess on a shared mailbox.
func TestPrechecksPasswordGrant(t *testing.T) {
	m := preMailbox("imap", store.Inbound, store.AuthOAuthROPC)
	m.Login = "agent@contoso.com"
	list := diag.MicrosoftPrechecks(m)
	contains(t, "ropc", precheck(t, list, "password alone").Why, "AADSTS50076", "Conditional Access", "recommends against")
	contains(t, "delegated access", precheck(t, list, "signing-in account").PowerShell,
		"Add-MailboxPermission -Identity agent@contoso.com -User agent@contoso.com -AccessRights FullAccess")
	contains(t, "delegated permissions", precheck(t, list, "permissions").Title, "IMAP.AccessAsUser.All and offline_access")
}

// TestPrechecksGraphDelegated: a person's sign-in to a shared Graph mailbox walks through
// the delegated .Shared permissions with admin consent, the account's Full Access and
// Send As, and why the mailbox is polled.
func TestPrechecksGraphDelegated(t *testing.T) {
	m := preMailbox("graph", store.Inbound, store.AuthOAuthDelegated)
	m.OAuth.Account = "agent@contoso.com"
	list := diag.MicrosoftPrechecks(m)
	perm := precheck(t, list, "permissions")
	contains(t, "permissions title", perm.Title, "Mail.ReadWrite.Shared, Mail.Send.Shared, User.Read and offline_access", "grant admin consent")
	contains(t, "permissions portal", perm.Portal, "Microsoft Graph > Delegated permissions > Mail.ReadWrite.Shared, Mail.Send.Shared",
		"Grant admin consent for "+preTenant)
	contains(t, "permissions why", perm.Why, "Mail.ReadWrite and Mail.Send cover only the signing-in account's own mailbox")
	shared := precheck(t, list, "signing-in account")
	contains(t, "shared mailbox", shared.Why, "Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent", "Change notifications need app-only access", "polls")
	contains(t, "shared mailbox commands", shared.PowerShell,
		"Add-MailboxPermission -Identity support@contoso.com -User agent@contoso.com -AccessRights FullAccess",
		"Add-RecipientPermission -Identity support@contoso.com -Trustee agent@contoso.com -AccessRights SendAs")
}

// TestPrechecksPlaceholdersAndQuoting: what is not entered yet is a placeholder, and what
// is entered cannot break out of the PowerShell command.
func TestPrechecksPlaceholdersAndQuoting(t *testing.T) {
	m := store.Mailbox{Protocol: "graph", Direction: store.Inbound, Auth: store.AuthOAuthApp}
	list := diag.MicrosoftPrechecks(m)
	contains(t, "placeholders", precheck(t, list, "Limit the app").PowerShell,
		"-AppId <client id>", "-Identity <mailbox address>", "-PolicyScopeGroupId <group address>")
	contains(t, "tenant placeholder", precheck(t, list, "permissions").Portal, "Grant admin consent for <your tenant>")

	m = preMailbox("graph", store.Inbound, store.AuthOAuthApp)
	m.Login = "o'brien@contoso.com; Remove-Mailbox x"
	pol := precheck(t, diag.MicrosoftPrechecks(m), "Limit the app").PowerShell
	contains(t, "quoted address", pol, "-Member 'o''brien@contoso.com; Remove-Mailbox x'")
	if strings.Contains(pol, " o'brien") {
		t.Errorf("the address is not quoted: %s", pol)
	}
}

// TestPrechecksSovereignCloud: a US Government mailbox connects to its cloud's hosts.
func TestPrechecksSovereignCloud(t *testing.T) {
	m := preMailbox("imap", store.Inbound, store.AuthOAuthApp)
	m.OAuth.Cloud = "usgov"
	list := diag.MicrosoftPrechecks(m)
	contains(t, "usgov network", precheck(t, list, "Allow postroom").Why, "login.microsoftonline.us", "outlook.office365.us")
	contains(t, "usgov connect", precheck(t, list, "Give the app access").PowerShell, "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh")
}
