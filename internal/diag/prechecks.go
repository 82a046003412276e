package diag

import (
	"fmt"
	"strings"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// Precheck is one thing a Microsoft 365 administrator sets up before the first connection
// test (the seeds' pre-checks: app registration, permissions with admin consent, licence,
// access policy, mailbox permissions, SMTP AUTH, network).
type Precheck struct {
	Title string
	Why   string
	// PowerShell holds the commands to run, filled in with the entered tenant id, client id
	// and mailbox address (placeholders in <angle brackets> where they are not known yet);
	// "" when none. Exchange Online commands start with Connect-ExchangeOnline.
	PowerShell string
	// Portal says where to click.
	Portal string
}

// Placeholders for values not entered yet.
const (
	phTenant  = "<tenant id>"
	phClient  = "<client id>"
	phMailbox = "<mailbox address>"
	phSP      = "<service principal object id>"
	phGroup   = "<group address>"
	phUser    = "<user who signs in>"
)

// MicrosoftPrechecks returns the walk-through the mailbox form shows for a Microsoft 365
// mailbox m (Graph, or IMAP/POP3/SMTP with OAuth) before the administrator tests it. The
// list depends on the protocol, the direction, the sign-in method and the cloud; commands
// are filled in with what m holds so far. It does no I/O.
func MicrosoftPrechecks(m store.Mailbox) []Precheck {
	tenant := orPlaceholder(m.OAuth.Tenant, phTenant)
	client := orPlaceholder(m.OAuth.ClientID, phClient)
	addr := orPlaceholder(mailboxAddress(m), phMailbox)
	cloud := cloudOf(m)
	entra := entraCenter(cloud)
	appOnly := m.Auth == "" || m.Auth == store.AuthOAuthApp
	graph := m.Protocol == protoGraph
	connect := connectExchange(cloud)

	var out []Precheck

	// 1. The app registration, and that it is enabled.
	reg := Precheck{
		Title: "Register an app in Microsoft Entra ID",
		Why: "postroom signs in as this app. Its Application (client) ID and Directory (tenant) ID go into this form; " +
			"the app must stay enabled (a disabled app gets AADSTS7000112).",
		Portal: entra + " > Identity > Applications > App registrations > New registration: a name such as postroom, " +
			"\"Accounts in this organizational directory only\". Copy Application (client) ID and Directory (tenant) ID from Overview. " +
			"Then Enterprise applications > the app > Properties: \"Enabled for users to sign in\" = Yes.",
	}
	if m.Auth == store.AuthOAuthDelegated {
		reg.Portal += " For Sign in with Microsoft, add under Authentication a Web platform with the redirect URI shown next to the sign-in button."
	}
	if m.Auth == store.AuthOAuthROPC {
		reg.Portal += " For the password grant without a secret, turn on Authentication > \"Allow public client flows\"."
	}
	out = append(out, reg)

	// 2. The app's credential.
	if m.Auth != store.AuthOAuthROPC || m.ClientSecretSet {
		out = append(out, Precheck{
			Title: "Create a client secret (or upload a certificate)",
			Why: "The app proves who it is with it. Copy the secret's Value at once (it is shown only once; the Secret ID is not the secret) " +
				"and record its expiry date here: postroom warns 14 days before it expires.",
			Portal: entra + " > App registrations > the app > Certificates & secrets > Client secrets > New client secret; " +
				"or Certificates > Upload certificate (the .cer), and upload here the same certificate with its private key (PEM).",
		})
	}

	// 3. API permissions with admin consent.
	out = append(out, permissionsPrecheck(m, entra, tenant))

	// 4. The mailbox: licensed (or shared).
	lic := Precheck{
		Title: "Use a licensed or shared mailbox",
		Why: fmt.Sprintf("%s must be an Exchange Online mailbox: a user mailbox with a licence that includes Exchange Online, or a shared mailbox (no licence needed). "+
			"An unlicensed or on-premises mailbox answers MailboxNotEnabledForRESTAPI in Graph and refuses IMAP/POP/SMTP sign-in.", addr),
		PowerShell: connect + "\nGet-EXOMailbox -Identity " + psQuote(addr) + " | Format-List PrimarySmtpAddress,RecipientTypeDetails",
		Portal:     "Microsoft 365 admin center > Users > Active users > the user > Licenses and apps; or Teams & groups > Shared mailboxes > Add a shared mailbox.",
	}
	out = append(out, lic)

	// 5. Limit the app to the contact center's mailboxes (Graph app-only).
	if graph && appOnly {
		group := phGroup
		if at := strings.LastIndexByte(mailboxAddress(m), '@'); at > 0 {
			group = "postroom-mailboxes@" + mailboxAddress(m)[at+1:]
		}
		out = append(out, Precheck{
			Title: "Limit the app to the contact center's mailboxes",
			Why: "An application permission such as Mail.ReadWrite covers every mailbox of the tenant unless Exchange Online narrows it. " +
				"An application access policy (or its successor, RBAC for Applications) does; the mailbox must then be in its scope, " +
				"or Graph answers ErrorAccessDenied \"[RAOP] Blocked by tenant configured AppOnly AccessPolicy settings\". Changes take 30 minutes to 2 hours to apply.",
			PowerShell: strings.Join([]string{
				connect,
				"# a mail-enabled security group holding the mailboxes postroom may use",
				"New-DistributionGroup -Name 'postroom mailboxes' -Type Security -PrimarySmtpAddress " + psQuote(group),
				"Add-DistributionGroupMember -Identity " + psQuote(group) + " -Member " + psQuote(addr),
				"New-ApplicationAccessPolicy -AppId " + psQuote(client) + " -PolicyScopeGroupId " + psQuote(group) + " -AccessRight RestrictAccess -Description 'postroom mailboxes'",
				"Test-ApplicationAccessPolicy -Identity " + psQuote(addr) + " -AppId " + psQuote(client) + "   # AccessCheckResult : Granted",
				"# or, RBAC for Applications (remove the tenant-wide Mail.* consent in Entra ID so that the scope counts):",
				"New-ServicePrincipal -AppId " + psQuote(client) + " -ObjectId " + phSP + " -DisplayName postroom",
				"New-ManagementScope -Name postroom-scope -RecipientRestrictionFilter \"MemberOfGroup -eq '<group distinguished name>'\"",
				"New-ManagementRoleAssignment -App " + phSP + " -Role 'Application Mail.ReadWrite' -CustomResourceScope postroom-scope",
				"New-ManagementRoleAssignment -App " + phSP + " -Role 'Application Mail.Send' -CustomResourceScope postroom-scope",
				"Test-ServicePrincipalAuthorization -Identity " + phSP + " -Resource " + psQuote(addr),
			}, "\n"),
			Portal: "Exchange admin center > Recipients > Groups > Add a group > Mail-enabled security; the service principal object id is in " +
				entra + " > Enterprise applications > the app > Object ID (not the app registration's).",
		})
	}

	// 6. IMAP/POP/SMTP: mailbox permissions.
	if !graph {
		if appOnly {
			cmds := []string{
				connect,
				"New-ServicePrincipal -AppId " + psQuote(client) + " -ObjectId " + phSP + " -DisplayName postroom",
				"Add-MailboxPermission -Identity " + psQuote(addr) + " -User " + phSP + " -AccessRights FullAccess",
			}
			if m.Protocol == protoSMTP {
				cmds = append(cmds, "Add-RecipientPermission -Identity "+psQuote(addr)+" -Trustee "+phSP+" -AccessRights SendAs -Confirm:$false")
			}
			out = append(out, Precheck{
				Title: "Give the app access to the mailbox",
				Why: "With app-only sign-in Exchange Online accepts the token for " + protoName(m.Protocol) +
					" only when the app's service principal holds FullAccess on the mailbox; without it the login is refused although the token is valid. " +
					"Application access policies do not apply to IMAP, POP and SMTP.",
				PowerShell: strings.Join(cmds, "\n"),
				Portal:     "The service principal object id is in " + entra + " > Enterprise applications > the app > Object ID (not the app registration's object id).",
			})
		} else {
			user := phUser
			if m.Auth == store.AuthOAuthROPC && m.Login != "" {
				user = m.Login
			} else if m.OAuth.Account != "" {
				user = m.OAuth.Account
			}
			cmds := []string{connect,
				"Add-MailboxPermission -Identity " + psQuote(addr) + " -User " + psQuote(user) + " -AccessRights FullAccess -AutoMapping $false"}
			if m.Protocol == protoSMTP {
				cmds = append(cmds, "Add-RecipientPermission -Identity "+psQuote(addr)+" -Trustee "+psQuote(user)+" -AccessRights SendAs -Confirm:$false")
			}
			out = append(out, Precheck{
				Title:      "Let the signing-in account open a shared mailbox",
				Why:        "When the account that signs in is not the mailbox itself (a shared mailbox), it needs FullAccess on it (and SendAs to send as it). Skip this when it is the account's own mailbox.",
				PowerShell: strings.Join(cmds, "\n"),
				Portal:     "Exchange admin center > Recipients > Mailboxes > the mailbox > Delegation > Read and manage (Full Access) / Send as.",
			})
		}
		out = append(out, protocolPrecheck(m, addr, connect))
	} else if !appOnly && !strings.EqualFold(mailboxAddress(m), m.OAuth.Account) {
		user := orPlaceholder(m.OAuth.Account, phUser)
		out = append(out, Precheck{
			Title: "Let the signing-in account open a shared mailbox",
			Why: "When the account that signs in is not the mailbox itself, it needs FullAccess on it (and SendAs to send as it), and the app the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent; " +
				"otherwise Graph answers ErrorAccessDenied. Change notifications need app-only access for such a mailbox, so postroom polls it. Skip this when it is the account's own mailbox.",
			PowerShell: strings.Join([]string{connect,
				"Add-MailboxPermission -Identity " + psQuote(addr) + " -User " + psQuote(user) + " -AccessRights FullAccess -AutoMapping $false",
				"Add-RecipientPermission -Identity " + psQuote(addr) + " -Trustee " + psQuote(user) + " -AccessRights SendAs -Confirm:$false"}, "\n"),
			Portal: "Exchange admin center > Recipients > Mailboxes > the mailbox > Delegation.",
		})
	}

	// 7. The password grant's limits.
	if m.Auth == store.AuthOAuthROPC {
		out = append(out, Precheck{
			Title: "Check that the account can sign in with a password alone",
			Why: "The password grant (ROPC) fails as soon as MFA (AADSTS50076/50079), security defaults or a Conditional Access policy (AADSTS53003) applies to the account, " +
				"and Microsoft recommends against it. Prefer the app (client credentials) or Sign in with Microsoft; keep this only for an existing setup.",
			Portal: entra + " > Protection > Conditional Access and Identity > Users > the account > Authentication methods; Sign-in logs show why a sign-in was blocked.",
		})
	}

	// 8. Network.
	hosts := allowList(m)
	ports := "443"
	switch {
	case m.Protocol == protoIMAP:
		ports = "443 (sign-in) and 993 (IMAP)"
	case m.Protocol == protoPOP3:
		ports = "443 (sign-in) and 995 (POP3)"
	case m.Protocol == protoSMTP:
		ports = "443 (sign-in) and 587 (SMTP)"
	}
	out = append(out, Precheck{
		Title: "Allow postroom to reach Microsoft",
		Why: fmt.Sprintf("postroom connects out to %s on port %s. A firewall or proxy that blocks them shows as \"cannot reach\" in the test. "+
			"postroom needs no inbound connection from Microsoft unless change notifications are turned on (then Graph must reach postroom's public URL).",
			strings.Join(hosts, ", "), ports),
		Portal: "Your firewall or proxy's allow-list.",
	})
	return out
}

// permissionsPrecheck is the API permissions step for m's protocol and sign-in method.
func permissionsPrecheck(m store.Mailbox, entra, tenant string) Precheck {
	appOnly := m.Auth == "" || m.Auth == store.AuthOAuthApp
	var perms, where string
	switch {
	case m.Protocol == protoGraph && appOnly:
		perms = "Mail.ReadWrite"
		if m.Direction == store.Outbound {
			perms += " and Mail.Send"
		}
		where = "Microsoft Graph > Application permissions > " + perms
	case m.Protocol == protoGraph:
		perms = "Mail.ReadWrite.Shared, Mail.Send.Shared, User.Read and offline_access"
		where = "Microsoft Graph > Delegated permissions > " + perms
	case appOnly:
		roles, _, _ := neededPermissions(m)
		perms = roles[0]
		where = "APIs my organization uses > Office 365 Exchange Online > Application permissions > " + perms
	default:
		_, scopes, _ := neededPermissions(m)
		perms = scopes[0] + " and offline_access"
		where = "Microsoft Graph > Delegated permissions > " + perms + " (listed under IMAP, POP and SMTP)"
	}
	why := "The token carries only the permissions an administrator consented to: without admin consent an app-only token has no roles and every request is refused. "
	if !appOnly {
		why = "The sign-in carries only the permissions consented to; the password grant cannot ask for consent, so an administrator grants it for the tenant. "
	}
	if m.Protocol == protoGraph && !appOnly {
		why = "Mail.ReadWrite and Mail.Send cover only the signing-in account's own mailbox; Mail.ReadWrite.Shared and Mail.Send.Shared cover it and the shared mailboxes the account holds Full Access and Send As on, so postroom asks for those. " +
			"The sign-in carries only the permissions consented to: an administrator grants consent for the tenant (where users may not consent themselves, and always for the password grant). "
	}
	return Precheck{
		Title: "Add the permissions " + perms + " and grant admin consent",
		Why:   why + "postroom checks the permissions in the token when it tests.",
		Portal: fmt.Sprintf("%s > App registrations > the app > API permissions > Add a permission > %s; then \"Grant admin consent for %s\" and check that each permission shows a green check mark.",
			entra, where, tenantLabel(tenant)),
	}
}

// protocolPrecheck enables the mailbox's protocol in Exchange Online.
func protocolPrecheck(m store.Mailbox, addr, connect string) Precheck {
	enable := casmailboxEnable(m.Protocol, addr)
	if m.Protocol == protoSMTP {
		return Precheck{
			Title: "Turn on SMTP AUTH for the mailbox",
			Why: "Exchange Online refuses SMTP AUTH (535 5.7.139) where it is disabled, for the mailbox or the whole organisation; security defaults disable it. " +
				"The mailbox setting wins over the organisation's.",
			PowerShell: strings.Join([]string{connect, enable,
				"Get-CASMailbox -Identity " + psQuote(addr) + " | Format-List SmtpClientAuthenticationDisabled",
				"Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled"}, "\n"),
			Portal: "Microsoft 365 admin center > Users > Active users > the user > Mail > Manage email apps > Authenticated SMTP.",
		}
	}
	what := "ImapEnabled"
	if m.Protocol == protoPOP3 {
		what = "PopEnabled"
	}
	return Precheck{
		Title:      "Turn on " + protoName(m.Protocol) + " for the mailbox",
		Why:        "Exchange Online refuses the sign-in for a mailbox whose " + protoName(m.Protocol) + " access is turned off.",
		PowerShell: strings.Join([]string{connect, enable, "Get-CASMailbox -Identity " + psQuote(addr) + " | Format-List " + what}, "\n"),
		Portal:     "Microsoft 365 admin center > Users > Active users > the user > Mail > Manage email apps > " + protoName(m.Protocol) + ".",
	}
}

func orPlaceholder(v, ph string) string {
	if strings.TrimSpace(v) == "" {
		return ph
	}
	return v
}

func tenantLabel(tenant string) string {
	if tenant == phTenant {
		return "<your tenant>"
	}
	return tenant
}

// entraCenter names the Entra admin center of a cloud (the global one's address is
// known; the sovereign clouds' portals are reached from their own sign-in pages).
func entraCenter(c credential.Cloud) string {
	if c.Name == credential.CloudGlobal || c.Name == credential.CloudCustom {
		return "Microsoft Entra admin center (entra.microsoft.com)"
	}
	return "Microsoft Entra admin center of the " + c.Label + " cloud"
}

// connectExchange is the Connect-ExchangeOnline line for a cloud.
func connectExchange(c credential.Cloud) string {
	switch c.Name {
	case credential.CloudUSGov:
		return "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh"
	case credential.CloudUSDoD:
		return "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovDoD"
	case credential.CloudChina:
		return "Connect-ExchangeOnline -ExchangeEnvironmentName O365China"
	}
	return "Connect-ExchangeOnline"
}
