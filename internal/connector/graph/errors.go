package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/postroom/postroom/internal/connector"
)

// classify turns an error of do into one an administrator can act on: Graph's error
// answers (reference 3.13) become *connector.Error with Kind and Advice naming the fix.
func (c *client) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ae, ok := asAPIError(err)
	if !ok {
		return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
			Advice: "the connection to Microsoft Graph failed; postroom tries again"}
	}
	mb := c.mailbox
	e := &connector.Error{Op: op, Err: ae}
	code := strings.ToLower(ae.Code)
	msg := strings.ToLower(ae.Message)
	switch {
	case ae.Status == http.StatusUnauthorized && strings.Contains(msg, "audience"):
		e.Kind = connector.KindAuth
		e.Advice = "Microsoft Graph refused the access token: it was issued for another service (wrong audience). " +
			"The mailbox's sign-in must ask for the scope https://graph.microsoft.com/.default " +
			"(or the Graph host of its cloud, e.g. https://graph.microsoft.us/.default), not the Outlook/IMAP one"
	case ae.Status == http.StatusUnauthorized && (code == "nopermissionsinaccesstoken" || strings.Contains(msg, "contains no permissions")):
		// An app-only token without roles (reference §8.4): the token is valid, consent is
		// missing; a new token or a new sign-in does not help.
		e.Kind = connector.KindAuth
		e.Advice = AdviceAdminConsentMissing
	case ae.Status == http.StatusUnauthorized:
		e.Kind = connector.KindAuth
		e.Advice = "Microsoft Graph refused the access token even after postroom fetched a new one: the app's client secret " +
			"or certificate may have been replaced or the sign-in revoked: check the credentials in the app registration " +
			"and, for a delegated sign-in, sign in again"
	case code == "erroraccessdenied" && (strings.Contains(msg, "raop") || strings.Contains(msg, "accesspolicy") || strings.Contains(msg, "access policy")):
		e.Kind = connector.KindAuth
		e.Advice = fmt.Sprintf("the app may not open %[1]s: the mailbox is outside the app's application access policy "+
			"(or its RBAC for Applications scope). In Exchange Online PowerShell add it to the policy's group: "+
			"Add-DistributionGroupMember -Identity <policy group> -Member %[1]s, then check with "+
			"Test-ApplicationAccessPolicy -Identity %[1]s -AppId <client id>; with RBAC for Applications add it to the "+
			"management scope and check with Test-ServicePrincipalAuthorization -Identity <service principal id> -Resource %[1]s. "+
			"A change can take an hour or more to reach Microsoft Graph", mb)
	case code == "erroraccessdenied" && c.account() != "":
		e.Kind = connector.KindAuth
		e.Advice = delegatedAccessAdvice(mb, c.account())
	case code == "erroraccessdenied":
		e.Kind = connector.KindAuth
		e.Advice = fmt.Sprintf("Microsoft Graph denied access to %s: the app lacks the application permission Mail.ReadWrite "+
			"(and Mail.Send to send) or its admin consent. In Entra ID ▸ App registrations ▸ the app ▸ API permissions add "+
			"Microsoft Graph ▸ Application permissions ▸ Mail.ReadWrite and Mail.Send, then click Grant admin consent", mb)
	case code == "errorsendasdenied":
		user := c.account()
		if user == "" {
			user = "<user>"
		}
		e.Kind = connector.KindAuth
		e.Advice = fmt.Sprintf("the sign-in may not send as %[1]s: grant Send As in Exchange Online PowerShell "+
			"(Add-RecipientPermission -Identity %[1]s -Trustee %[2]s -AccessRights SendAs), or send from the mailbox itself", mb, user)
	case code == "authorization_requestdenied":
		e.Kind = connector.KindAuth
		e.Advice = "the app may not read the directory: add the application permission User.Read.All with admin consent, " +
			"or name the mailbox by its address"
	case code == "mailboxnotenabledforrestapi":
		e.Kind = connector.KindConfig
		e.Advice = fmt.Sprintf("%s has no Exchange Online mailbox that Microsoft Graph can open: the user has no Exchange Online "+
			"licence, the mailbox is inactive or soft-deleted, or it is hosted on-premises. Assign an Exchange Online licence "+
			"(a shared mailbox needs none: use a shared mailbox), or for an on-premises mailbox connect with IMAP to your "+
			"Exchange server", mb)
	case code == "errorinvaliduser" || code == "request_resourcenotfound" || code == "errornonexistentmailbox":
		e.Kind = connector.KindConfig
		e.Advice = fmt.Sprintf("there is no mailbox %q in this tenant: check the address; use the mailbox's primary SMTP "+
			"address or its user id (a distribution list or group address does not work)", mb)
	case code == "resourcenotfound" || code == "badrequest" && strings.Contains(msg, "unsupported segment") ||
		ae.Status == http.StatusNotFound && code == "" || ae.Status == http.StatusMethodNotAllowed && code == "":
		e.Kind = connector.KindConfig
		e.Advice = fmt.Sprintf("the Graph host %s does not serve this request: check the mailbox's Graph URL "+
			"(https://graph.microsoft.com for the global cloud, https://graph.microsoft.us for US Government, "+
			"https://microsoftgraph.chinacloudapi.cn for China)", c.origin.Host)
	case code == "errormessagesizeexceeded" || ae.Status == http.StatusRequestEntityTooLarge:
		e.Kind = connector.KindRejected
		e.Advice = fmt.Sprintf("the message is larger than %[1]s may send (Exchange Online allows 35 MB by default, up to "+
			"150 MB): raise the limit with Set-Mailbox -Identity %[1]s -MaxSendSize 150MB, or send smaller attachments", mb)
	case code == "errorquotaexceeded" || ae.Status == http.StatusInsufficientStorage:
		e.Kind = connector.KindServer
		e.Advice = fmt.Sprintf("the mailbox %s is full: free space in it or raise its quota; postroom tries again", mb)
	case code == "erroritemnotfound":
		e.Kind = connector.KindServer
		e.Advice = "the item is no longer in the mailbox (moved or deleted meanwhile); postroom reads the folder again"
	case ae.Status == http.StatusTooManyRequests:
		e.Kind = connector.KindServer
		e.Advice = "Microsoft Graph is throttling this mailbox; postroom waits and tries again by itself"
	case ae.Status >= 500:
		e.Kind = connector.KindServer
		e.Advice = fmt.Sprintf("Microsoft Graph had a temporary failure (HTTP %d); postroom tries again by itself: "+
			"if it goes on, see Microsoft 365 service health", ae.Status)
	default:
		e.Kind = connector.KindServer
		e.Advice = "Microsoft Graph refused the request; postroom tries again: if it persists, report it with the request-id"
	}
	return e
}

// AdviceAdminConsentMissing is the fix for an app-only token without roles: Graph answers
// 401 NoPermissionsInAccessToken (reference §8.4) when no administrator granted consent
// to the app's application permissions. It names the fix in the app registration, not a
// new sign-in.
const AdviceAdminConsentMissing = "admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration " +
	"(Entra ID ▸ App registrations ▸ the app ▸ API permissions ▸ Grant admin consent for the tenant; each permission " +
	"needs a green check mark). The token is valid but carries no permissions, so a new token does not help; postroom " +
	"tries again by itself and picks up the consent"

// delegatedAccessAdvice is the fix for ErrorAccessDenied on a person's sign-in (reference
// §8.1): delegated Mail.ReadWrite and Mail.Send cover only the account's own mailbox;
// another user's or a shared mailbox needs the .Shared permissions and Full Access.
func delegatedAccessAdvice(mb, user string) string {
	if strings.EqualFold(mb, user) {
		return fmt.Sprintf("Microsoft Graph denied %s access to their own mailbox: the app needs the delegated permissions "+
			"Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent (Entra ID ▸ App registrations ▸ the app ▸ API permissions ▸ "+
			"Add a permission ▸ Microsoft Graph ▸ Delegated permissions, then Grant admin consent)", user)
	}
	return fmt.Sprintf("Microsoft Graph denied %[2]s access to %[1]s: a person's sign-in to another mailbox (a shared mailbox) "+
		"needs the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent (Entra ID ▸ App "+
		"registrations ▸ the app ▸ API permissions ▸ Add a permission ▸ Microsoft Graph ▸ Delegated permissions, then Grant "+
		"admin consent), and Full Access on the mailbox for the account: in Exchange Online PowerShell "+
		"Add-MailboxPermission -Identity %[1]s -User %[2]s -AccessRights FullAccess -AutoMapping $false "+
		"(and to send: Add-RecipientPermission -Identity %[1]s -Trustee %[2]s -AccessRights SendAs)", mb, user)
}
