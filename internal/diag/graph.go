package diag

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// The Microsoft Graph checklist (ms365-protocol.md §3): after the sign-in steps, GET
// requests only: the mailbox (its inbox, or Sent Items for an outbound mailbox), the
// folder postroom reads and the one it moves to, and for sending the Mail.Send permission.
// Nothing is created, marked, moved or sent: sending a test message, even to the mailbox
// itself, would land in an inbound mailbox and become a work item, and the reference names
// no probe that sends nothing; so "can send" is the permission plus the mailbox being
// within the app's reach (an access policy covers every Graph call on a mailbox). An RBAC
// for Applications scope that grants Mail.ReadWrite but not Mail.Send on the mailbox shows
// only at the first real send, as an outbox error with its own advice.

// graphBodyLimit bounds what is read of a Graph answer: folders and error envelopes are
// small.
const graphBodyLimit = 1 << 20

// graphTest is the state of a Graph test between steps.
type graphTest struct {
	r      *run
	m      store.Mailbox
	http   *http.Client
	graph  string // Graph host, e.g. https://graph.microsoft.com
	base   string // graph/v1.0/users/{address}
	addr   string
	claims tokenClaims
}

// graphFolder is the part of a mailFolder the test reads.
type graphFolder struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Total       *int   `json:"totalItemCount"`
	Unread      *int   `json:"unreadItemCount"`
}

type graphFolderList struct {
	Value    []graphFolder `json:"value"`
	NextLink string        `json:"@odata.nextLink"`
}

// graphError is an answer of Graph other than 2xx (reference §3.12).
type graphError struct {
	Status     int
	Code       string // error.code; "" when the body is not Graph's envelope
	Message    string
	RequestID  string
	RetryAfter time.Duration
}

func (e *graphError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	} else {
		s += " " + http.StatusText(e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request-id " + e.RequestID + ")"
	}
	return s
}

// testGraph runs the sign-in steps, then: Reach Microsoft Graph, Mailbox, and Read folder
// (plus Move folder) for an inbound mailbox or Send as for an outbound one.
func testGraph(r *run, m store.Mailbox) {
	if !r.signIn(m, credential.AudienceGraph) {
		return
	}
	g := &graphTest{r: r, m: m, http: r.opts.HTTPClient, addr: mailboxAddress(m), claims: r.oauth.claims}
	if g.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12}
		g.http = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	g.graph = credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud)
	g.base = g.graph + "/v1.0/users/" + url.PathEscape(g.addr)
	if !g.mailbox() {
		return
	}
	if m.Direction == store.Outbound {
		g.send()
		return
	}
	folder := m.Folder
	if folder == "" {
		folder = "Inbox"
	}
	if !r.step("Read folder "+folder, 0, func(ctx context.Context) (string, error) { return g.readFolder(ctx, folder) }) {
		return
	}
	if m.AfterAction == store.AfterMove {
		name := strings.TrimSpace("Move folder " + m.MoveFolder)
		r.step(name, 0, func(ctx context.Context) (string, error) { return g.moveFolder(ctx, folder, m.MoveFolder) })
	}
}

// mailbox is two steps answered by one request: Graph answers at all (as Graph), and the
// mailbox exists, is licensed and within the app's reach.
func (g *graphTest) mailbox() bool {
	r := g.r
	host := hostOf(g.graph)
	reach := "Reach Microsoft Graph at " + host
	probe := "inbox"
	if g.m.Direction == store.Outbound {
		probe = "sentitems"
	}
	var f graphFolder
	err := g.get(r.ctx, "/mailFolders/"+probe+"?$select=id,displayName,totalItemCount", &f)
	var ge *graphError
	switch {
	case err == nil:
	case r.ctx.Err() != nil:
		return r.putTimeout(reach, host)
	case !errors.As(err, &ge):
		return r.put(reach, err.Error(), r.unreachableAdvice(g.m, host, hostOf(g.graph), err))
	case ge.Code == "":
		return r.put(reach, ge.Error(), fmt.Sprintf("%s answered, but not as Microsoft Graph: check the Graph host of this mailbox (the cloud's own is %s)", host, cloudOf(g.m).GraphURL))
	}
	if !r.put(reach, host+" answered", "") {
		return false
	}
	name := "Mailbox " + g.addr
	if err != nil {
		return r.put(name, ge.Error(), g.advice(ge))
	}
	detail := "found: licensed for Exchange Online and within the app's reach"
	if g.m.Auth != store.AuthOAuthApp {
		detail = "found: the signed-in account may open it"
	}
	return r.put(name, detail, "")
}

// advice explains a Graph error answer.
func (g *graphTest) advice(ge *graphError) string {
	addr, client := g.addr, g.m.OAuth.ClientID
	msg := strings.ToLower(ge.Message)
	switch {
	case ge.Status == http.StatusTooManyRequests:
		wait := "a minute"
		if ge.RetryAfter > 0 {
			wait = ge.RetryAfter.Round(time.Second).String()
		}
		return fmt.Sprintf("Microsoft Graph is throttling requests for %s (429, Retry-After %s): this is not a settings problem; it happens while postroom or another app works the mailbox hard. Test again in %s", addr, wait, wait)
	case ge.Status >= 500:
		return fmt.Sprintf("Microsoft Graph has a temporary problem (HTTP %d): this is not a settings problem; test again in a few minutes", ge.Status)
	case ge.Code == "NoPermissionsInAccessToken" || strings.Contains(msg, "contains no permissions"):
		// An app-only token without roles (reference §8.4).
		return "admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration: an administrator opens Microsoft Entra admin center > App registrations > the app > API permissions > Grant admin consent for the tenant (each permission needs a green check mark), then test again; a new token or a new sign-in does not help"
	case ge.Code == "InvalidAuthenticationToken" && strings.Contains(msg, "audience"):
		return wrongAudienceAdvice(g.m, g.claims.Audience)
	case ge.Code == "InvalidAuthenticationToken":
		return fmt.Sprintf("Microsoft Graph refused the token it was just given: check that the Graph host (%s) belongs to the cloud the sign-in is at (%s), then test again", g.graph, loginHostName(g.m))
	case ge.Code == "ErrorAccessDenied" && (strings.Contains(msg, "raop") || strings.Contains(msg, "accesspolicy") || strings.Contains(msg, "access policy")):
		return accessPolicyAdvice(addr, client, g.claims.ObjectID)
	case ge.Code == "ErrorAccessDenied" && g.m.Auth != store.AuthOAuthApp:
		user := g.claims.user()
		if user != "" && !strings.EqualFold(user, addr) {
			return fmt.Sprintf("the signed-in account %s may not open %s: in Exchange Online PowerShell run Add-MailboxPermission -Identity %s -User %s -AccessRights FullAccess -AutoMapping $false (and for sending: Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs); the app also needs the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent",
				user, addr, psQuote(addr), psQuote(user), psQuote(addr), psQuote(user))
		}
		return "the signed-in account may not read this mailbox: grant the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared with admin consent (Microsoft Entra admin center > App registrations > the app > API permissions), then test again"
	case ge.Code == "ErrorAccessDenied":
		return fmt.Sprintf("the app may not read %s: grant it the Microsoft Graph application permission Mail.ReadWrite with admin consent; if it has it, an RBAC for Applications assignment may leave the mailbox out: check with Test-ServicePrincipalAuthorization -Identity %s -Resource %s",
			addr, psQuote(spOr(g.claims.ObjectID)), psQuote(addr))
	case ge.Code == "ErrorInvalidUser" || ge.Code == "Request_ResourceNotFound" || ge.Code == "ErrorNonExistentMailbox":
		return fmt.Sprintf("there is no mailbox %s in the tenant: check the address (the mailbox's primary address or user principal name); a distribution list or a Microsoft 365 group address is not a mailbox", addr)
	case ge.Code == "MailboxNotEnabledForRESTAPI" || ge.Code == "MailboxNotSupportedForRESTAPI":
		return fmt.Sprintf("%s has no Exchange Online mailbox that Graph can open: assign the user a licence that includes Exchange Online (Microsoft 365 admin center > Users > Active users > the user > Licenses and apps), or use a shared mailbox (it needs no licence); a mailbox still on-premises (hybrid) cannot be read through Graph: use its own IMAP and SMTP servers", addr)
	case ge.Code == "Authorization_RequestDenied":
		return "the app lacks a directory permission for this request: grant the Microsoft Graph application permission Mail.ReadWrite with admin consent"
	}
	return fmt.Sprintf("Microsoft Graph refused the request (%s): check the mailbox address and the app's permissions", ge.Code)
}

// spOr is the service principal id, or a placeholder.
func spOr(id string) string {
	if id == "" {
		return "<service principal id>"
	}
	return id
}

// accessPolicyAdvice is the fix for a mailbox outside the app's application access policy
// or RBAC for Applications scope (reference §5).
func accessPolicyAdvice(addr, client, sp string) string {
	return fmt.Sprintf("the tenant limits the app to some mailboxes (application access policy or RBAC for Applications) and %s is not one of them. "+
		"In Exchange Online PowerShell, see what applies: Get-ApplicationAccessPolicy; Test-ApplicationAccessPolicy -Identity %s -AppId %s (AccessCheckResult must be Granted). "+
		"Add the mailbox to the policy's mail-enabled security group: Add-DistributionGroupMember -Identity <policy group address> -Member %s; "+
		"or, with no policy yet: New-ApplicationAccessPolicy -AppId %s -PolicyScopeGroupId <group address with %s in it> -AccessRight RestrictAccess -Description \"postroom mailboxes\". "+
		"With RBAC for Applications, add the mailbox to the management scope and check with Test-ServicePrincipalAuthorization -Identity %s -Resource %s. "+
		"Changes take 30 minutes to 2 hours to reach Graph: test again after that",
		addr, psQuote(addr), psQuote(client), psQuote(addr), psQuote(client), addr, psQuote(spOr(sp)), psQuote(addr))
}

// readFolder resolves the folder as the Graph connector does and reads one message id.
func (g *graphTest) readFolder(ctx context.Context, folder string) (string, error) {
	f, found, err := g.resolve(ctx, folder)
	if err != nil {
		return "", g.stepErr(err)
	}
	if !found {
		names, lerr := g.folderNames(ctx)
		if lerr != nil {
			return "", fail(fmt.Sprintf("no folder %q", folder), fmt.Sprintf("the folder %s does not exist in %s: check its name", folder, g.addr))
		}
		return "", fail(fmt.Sprintf("no folder %q", folder), graphMissingFolderAdvice(folder, g.addr, names))
	}
	var page struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if err := g.get(ctx, "/mailFolders/"+url.PathEscape(f.ID)+"/messages?$top=1&$select=id", &page); err != nil {
		return "", g.stepErr(err)
	}
	switch {
	case f.Total != nil && f.Unread != nil:
		return fmt.Sprintf("%d messages, %d unread", *f.Total, *f.Unread), nil
	case f.Total != nil:
		return fmt.Sprintf("%d messages", *f.Total), nil
	}
	return "readable", nil
}

// moveFolder checks the folder processed messages are moved to: missing passes with a
// note (the connector creates it), the watched folder or a missing name fails.
func (g *graphTest) moveFolder(ctx context.Context, watched, target string) (string, error) {
	if strings.TrimSpace(target) == "" {
		names, _ := g.folderNames(ctx)
		return "", fail("after-processing action is move, but no folder is set",
			"choose the folder to move processed messages to; the mailbox's folders are: "+listNames(names))
	}
	w, _, err := g.resolve(ctx, watched)
	if err != nil {
		return "", g.stepErr(err)
	}
	f, found, err := g.resolve(ctx, target)
	if err != nil {
		return "", g.stepErr(err)
	}
	if found && f.ID == w.ID {
		return "", fail(fmt.Sprintf("%q is the watched folder", target),
			"choose another folder to move processed messages to than the one postroom reads")
	}
	if found {
		return "messages are moved there once stored", nil
	}
	names, err := g.folderNames(ctx)
	if err != nil {
		return "", g.stepErr(err)
	}
	return fmt.Sprintf("not there yet: postroom creates it when it moves the first message (the mailbox's folders are: %s)", listNames(names)), nil
}

// send is the "Send as" step of an outbound mailbox: the Mail.Send permission (nothing is
// sent, see the top of this file).
func (g *graphTest) send() bool {
	r, c := g.r, g.claims
	name := "Send as " + g.addr
	const none = "postroom sends no test message"
	if !c.readable {
		return r.put(name, "the token cannot be read here: the first reply shows whether sending works; "+none, "")
	}
	portal := "Microsoft Entra admin center > App registrations > the app > API permissions > Add a permission > Microsoft Graph"
	if g.m.Auth == store.AuthOAuthApp {
		if len(missing([]string{"Mail.Send"}, c.Roles)) > 0 {
			return r.put(name, "the token has no Mail.Send role (roles: "+strings.Join(c.Roles, ", ")+")",
				"the app may not send mail: "+portal+" > Application permissions > Mail.Send, then Grant admin consent for the tenant")
		}
		return r.put(name, "Mail.Send granted and the mailbox is within the app's reach; sent replies are kept in Sent Items; "+none, "")
	}
	user := c.user()
	own := user != "" && strings.EqualFold(user, g.addr)
	if !graphScopeFits(c.scopes(), "Mail.Send", user, g.addr) {
		if own {
			return r.put(name, "the sign-in has no Mail.Send or Mail.Send.Shared scope (scopes: "+c.Scope+")",
				"the account may not send through the app: "+portal+" > Delegated permissions > Mail.Send.Shared, grant admin consent, then test again")
		}
		return r.put(name, "the sign-in has no Mail.Send.Shared scope (scopes: "+c.Scope+"); Mail.Send covers only the account's own mailbox",
			"a person's sign-in sends from another mailbox (a shared mailbox) only with the delegated permission Mail.Send.Shared: "+portal+
				" > Delegated permissions > Mail.Send.Shared, grant admin consent, then test again")
	}
	if own {
		return r.put(name, "Mail.Send granted; "+none, "")
	}
	who := user
	if who == "" {
		who = phUser
	}
	return r.put(name, fmt.Sprintf("Mail.Send.Shared granted; %s sends as %s only with SendAs on it (Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs); %s",
		who, g.addr, psQuote(g.addr), psQuote(who), none), "")
}

// stepErr turns a Graph error inside a step into the step's failure.
func (g *graphTest) stepErr(err error) error {
	var ge *graphError
	if errors.As(err, &ge) {
		return fail(ge.Error(), g.advice(ge))
	}
	if g.r.ctx.Err() != nil {
		return err
	}
	return fail(err.Error(), g.r.unreachableAdvice(g.m, hostOf(g.graph), hostOf(g.graph), err))
}

// resolve finds a folder the way the Graph connector does: a well-known name ("inbox"), a
// top-level display name ("Support"), else one below the inbox, a path of display names
// ("Inbox/Support") or an id. Display names compare without case, as in Outlook.
func (g *graphTest) resolve(ctx context.Context, path string) (graphFolder, bool, error) {
	parts := splitFolderPath(path)
	var cur graphFolder
	first := parts[0]
	if wellKnown[strings.ToLower(first)] {
		if err := g.get(ctx, "/mailFolders/"+strings.ToLower(first)+"?$select=id,displayName,totalItemCount,unreadItemCount", &cur); err != nil {
			return graphFolder{}, false, err
		}
	} else {
		top, err := g.child(ctx, "", first)
		if err != nil {
			return graphFolder{}, false, err
		}
		if top.ID == "" && len(parts) == 1 {
			var byID graphFolder
			err := g.get(ctx, "/mailFolders/"+url.PathEscape(first)+"?$select=id,displayName,totalItemCount,unreadItemCount", &byID)
			var ge *graphError
			switch {
			case err == nil:
				return byID, true, nil
			case !errors.As(err, &ge) || (ge.Status != http.StatusNotFound && ge.Status != http.StatusBadRequest):
				return graphFolder{}, false, err
			}
			var inbox graphFolder
			if err := g.get(ctx, "/mailFolders/inbox?$select=id,displayName", &inbox); err != nil {
				return graphFolder{}, false, err
			}
			if top, err = g.child(ctx, inbox.ID, first); err != nil {
				return graphFolder{}, false, err
			}
		}
		if top.ID == "" {
			return graphFolder{}, false, nil
		}
		cur = top
	}
	for _, name := range parts[1:] {
		next, err := g.child(ctx, cur.ID, name)
		if err != nil {
			return graphFolder{}, false, err
		}
		if next.ID == "" {
			return graphFolder{}, false, nil
		}
		cur = next
	}
	return cur, true, nil
}

// child finds the child folder of parentID ("" = the top level) called name.
func (g *graphTest) child(ctx context.Context, parentID, name string) (graphFolder, error) {
	list, err := g.children(ctx, parentID)
	if err != nil {
		return graphFolder{}, err
	}
	for _, f := range list {
		if strings.EqualFold(f.DisplayName, name) {
			return f, nil
		}
	}
	return graphFolder{}, nil
}

// maxFolderPages bounds the folder listing of one parent: 10 pages of 100 is more folders
// than anyone reads in advice.
const maxFolderPages = 10

// children lists the child folders of parentID ("" = the top level).
func (g *graphTest) children(ctx context.Context, parentID string) ([]graphFolder, error) {
	path := "/mailFolders?$select=id,displayName,totalItemCount,unreadItemCount&$top=100"
	if parentID != "" {
		path = "/mailFolders/" + url.PathEscape(parentID) + "/childFolders?$select=id,displayName,totalItemCount,unreadItemCount&$top=100"
	}
	u := g.base + path
	var out []graphFolder
	for page := 0; u != "" && page < maxFolderPages; page++ {
		var list graphFolderList
		if err := g.getURL(ctx, u, &list); err != nil {
			return nil, err
		}
		out = append(out, list.Value...)
		u = list.NextLink
	}
	return out, nil
}

// folderNames are the mailbox's top-level folders and the inbox's children ("Inbox/x").
func (g *graphTest) folderNames(ctx context.Context) ([]string, error) {
	top, err := g.children(ctx, "")
	if err != nil {
		return nil, err
	}
	var inbox graphFolder
	if err := g.get(ctx, "/mailFolders/inbox?$select=id,displayName", &inbox); err != nil {
		return nil, err
	}
	var names []string
	for _, f := range top {
		names = append(names, f.DisplayName)
		if f.ID == inbox.ID {
			below, err := g.children(ctx, inbox.ID)
			if err != nil {
				return nil, err
			}
			for _, c := range below {
				names = append(names, f.DisplayName+"/"+c.DisplayName)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// graphMissingFolderAdvice names the missing folder, a near miss and the mailbox's folders.
func graphMissingFolderAdvice(folder, addr string, names []string) string {
	near := ""
	last := folder
	if i := strings.LastIndexByte(folder, '/'); i >= 0 {
		last = folder[i+1:]
	}
	for _, n := range names {
		base := n
		if i := strings.LastIndexByte(n, '/'); i >= 0 {
			base = n[i+1:]
		}
		if strings.EqualFold(base, last) && !strings.EqualFold(n, folder) {
			near = fmt.Sprintf(" (the mailbox has %s)", n)
			break
		}
	}
	return fmt.Sprintf("the folder %s does not exist in %s%s: check its name, and write a folder below the inbox as Inbox/Name; the mailbox's folders are: %s",
		folder, addr, near, listNames(names))
}

// splitFolderPath splits "Inbox/Support" into its names; "" is the inbox.
func splitFolderPath(path string) []string {
	var parts []string
	for p := range strings.SplitSeq(strings.Trim(path, "/"), "/") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return []string{"inbox"}
	}
	return parts
}

// wellKnown are the folder names Graph takes in place of an id (reference §3.1).
var wellKnown = map[string]bool{
	"inbox": true, "sentitems": true, "deleteditems": true, "archive": true, "drafts": true,
	"junkemail": true, "outbox": true, "msgfolderroot": true, "recoverableitemsdeletions": true,
	"clutter": true, "conversationhistory": true,
}

// get GETs a path below the mailbox and decodes the JSON answer into out.
func (g *graphTest) get(ctx context.Context, path string, out any) error {
	return g.getURL(ctx, g.base+path, out)
}

// getURL GETs u with the token. A non-2xx answer is a *graphError.
func (g *graphTest) getURL(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("graph request %s: %w", redact(u), err)
	}
	req.Header.Set("Authorization", "Bearer "+g.r.oauth.token)
	req.Header.Set("Accept", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the step's name already
		}
		return fmt.Errorf("graph GET %s: %w", hostOf(u), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, graphBodyLimit))
	if err != nil {
		return fmt.Errorf("graph GET %s: read the answer: %w", hostOf(u), err)
	}
	if resp.StatusCode/100 != 2 {
		ge := &graphError{Status: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
		if e, ok := graph.DecodeError(body); ok && e.Code != "" {
			ge.Code, ge.Message = e.Code, e.Message
			if ge.RequestID == "" {
				ge.RequestID = e.RequestID
			}
		}
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
			ge.RetryAfter = time.Duration(s) * time.Second
		}
		return ge
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &graphError{Status: resp.StatusCode, Message: "the answer is not JSON"}
	}
	return nil
}

// redact drops the query of a URL for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.RawQuery, p.User = "", nil
	return p.String()
}
