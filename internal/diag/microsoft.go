package diag

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/store"
)

// The sign-in steps of an OAuth 2.0 mailbox. For Microsoft's identity platform one token
// request answers several questions in a fixed order (ms365-protocol.md §1.7-1.8): is the
// sign-in service reachable, does the tenant exist, is the app registered and enabled in
// it, is its secret or certificate good, may the account sign in, and did an administrator
// consent. The request is made once; the checklist then shows one step per question, the
// ones Microsoft got past as passed and the one its AADSTS code names as failed.

// secretExpiryWarning is how soon before its recorded expiry a client secret is pointed out
// (the same 14 days as the mailboxes page and the metric).
const secretExpiryWarning = 14 * 24 * time.Hour

// oauthLogin is what the sign-in steps obtained for the login steps that follow.
type oauthLogin struct {
	token  string // the access token: only ever handed to a login command or a Graph request
	claims tokenClaims
}

// tokenClaims are the claims of a Microsoft access token that the checklist reads. The
// token is decoded, not verified: the servers that take it verify it.
type tokenClaims struct {
	readable bool // the token is a JWT whose payload could be read

	Audience string   `json:"-"` // aud: a string (or the first of an array)
	RawAud   any      `json:"aud"`
	TenantID string   `json:"tid"`
	AppID    string   `json:"appid"`
	AZP      string   `json:"azp"`
	AppName  string   `json:"app_displayname"`
	ObjectID string   `json:"oid"`
	Roles    []string `json:"roles"`
	Scope    string   `json:"scp"`
	UPN      string   `json:"upn"`
	Username string   `json:"preferred_username"`
	IDType   string   `json:"idtyp"`
}

// decodeClaims reads the payload of a JWT access token (RFC 7519 §7.2 without the
// signature check). A token that is not a readable JWT gives readable=false.
func decodeClaims(token string) tokenClaims {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return tokenClaims{}
	}
	var c tokenClaims
	if json.Unmarshal(payload, &c) != nil {
		return tokenClaims{}
	}
	switch a := c.RawAud.(type) {
	case string:
		c.Audience = a
	case []any:
		if len(a) > 0 {
			c.Audience, _ = a[0].(string)
		}
	}
	c.readable = true
	return c
}

// user is the account a delegated token is for.
func (c tokenClaims) user() string {
	if c.UPN != "" {
		return c.UPN
	}
	return c.Username
}

// scopes are the delegated permissions of the token (scp), short names.
func (c tokenClaims) scopes() []string { return strings.Fields(c.Scope) }

// Application ids Microsoft tokens may carry as aud instead of the resource URL.
const (
	graphAppID    = "00000003-0000-0000-c000-000000000000"
	exchangeAppID = "00000002-0000-0ff1-ce00-000000000000"
)

// audienceIs reports whether aud is Microsoft Graph (aud=graph true) or Exchange Online
// (false); known=false when aud is neither recognisably.
func audienceIs(aud string) (graph, known bool) {
	a := strings.ToLower(aud)
	switch {
	case a == graphAppID || strings.Contains(a, "graph"):
		return true, true
	case a == exchangeAppID || strings.Contains(a, "outlook") || strings.Contains(a, "office365"):
		return false, true
	}
	return false, false
}

// microsoftProvider reports whether m signs in at Microsoft's identity platform.
func microsoftProvider(m store.Mailbox) bool {
	return m.OAuth.Provider == "" || m.OAuth.Provider == credential.ProviderMicrosoft
}

// cloudOf is the Microsoft cloud of m (the global one when unknown).
func cloudOf(m store.Mailbox) credential.Cloud {
	c, ok := credential.CloudByName(m.OAuth.Cloud)
	if !ok {
		c, _ = credential.CloudByName("")
	}
	return c
}

// checkOAuthSettings catches OAuth settings no token endpoint could take.
func checkOAuthSettings(m store.Mailbox, opts *Options) (name, detail, advice string) {
	const name0 = "Check settings"
	if m.Protocol == protoGraph {
		if !usesOAuth(m) {
			return name0, "sign-in method password", "Microsoft Graph takes only OAuth 2.0: choose the app (client credentials) or Sign in with Microsoft"
		}
		if !microsoftProvider(m) {
			return name0, fmt.Sprintf("provider %q", m.OAuth.Provider), "Microsoft Graph takes only Microsoft's sign-in: set the provider to Microsoft"
		}
		if mailboxAddress(m) == "" {
			return name0, "no mailbox address", "enter the address of the Microsoft 365 mailbox (a user or shared mailbox), e.g. support@contoso.com"
		}
	}
	if m.Auth == store.AuthOAuthROPC && m.Login == "" {
		return name0, "no login name", "enter the user principal name of the account that signs in (its full address)"
	}
	if _, err := credential.PlanFor(m, credential.AudienceOf(m.Protocol)); err != nil {
		return name0, err.Error(), "complete the OAuth settings: the Application (client) ID and the Directory (tenant) ID, or the token URL of another provider"
	}
	if opts.Token == nil {
		return name0, "no token source for this OAuth sign-in",
			"save the mailbox's OAuth settings (client id, tenant and secret, or Sign in with Microsoft), then test again"
	}
	return "", "", ""
}

// mailboxAddress is the mailbox a Graph test opens: its login, else its address.
func mailboxAddress(m store.Mailbox) string {
	if m.Login != "" {
		return m.Login
	}
	return m.Address
}

// hostOf is the host (and port) of a URL, for step names.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}

// Sign-in stages: the order in which Microsoft checks a token request.
type stage int

const (
	stageReach stage = iota
	stageTenant
	stageApp
	stageCredential // client secret or certificate
	stageAccount    // the person's password (ROPC) or sign-in (refresh token)
	stagePermissions
)

// signIn runs the sign-in steps of an OAuth mailbox for aud and keeps the token in
// r.oauth. It returns false when a step failed.
func (r *run) signIn(m store.Mailbox, aud credential.Audience) bool {
	plan, _ := credential.PlanFor(m, aud) // checked in checkSettings
	host := hostOf(plan.TokenURL)
	tok, err := r.opts.Token(r.ctx, true)
	if !microsoftProvider(m) {
		name := "Get an OAuth token from " + host
		if googleProvider(m) {
			name = "Get an OAuth token from Google"
		}
		switch {
		case err == nil:
			r.oauth = &oauthLogin{token: tok, claims: decodeClaims(tok)}
			return r.put(name, "token received", "")
		case r.ctx.Err() != nil:
			return r.putTimeout(name, host)
		}
		detail, advice := tokenWords(err), connector.Advice(err)
		if advice == "" {
			advice = fmt.Sprintf("the token endpoint %s refused the request: check the token URL, client id, secret and scopes", host)
		}
		return r.put(name, detail, advice)
	}

	steps := r.signInSteps(m, host)
	if err != nil && r.ctx.Err() != nil {
		return r.putTimeout(steps[0].name, host)
	}
	failAt, detail, advice := stage(-1), "", ""
	var claims tokenClaims
	if err != nil {
		failAt, detail, advice = r.explainTokenError(m, plan, host, err)
	} else {
		claims = decodeClaims(tok)
		r.oauth = &oauthLogin{token: tok, claims: claims}
	}
	for _, s := range steps {
		if s.stage == failAt {
			return r.put(s.name, detail, advice)
		}
		if failAt >= 0 && s.stage > failAt {
			// A stage this sign-in has no step for failed (e.g. a client secret
			// problem of a delegated sign-in): the next step shows it.
			return r.put(s.name, detail, advice)
		}
		if s.stage == stagePermissions && err == nil {
			d, a := r.permissions(m, aud, claims)
			return r.put(s.name, d, a)
		}
		if !r.put(s.name, r.passDetail(m, s.stage, host, claims, err == nil), "") {
			return false
		}
	}
	return true
}

type signInStep struct {
	stage stage
	name  string
}

// signInSteps are the steps shown for m's sign-in method.
func (r *run) signInSteps(m store.Mailbox, host string) []signInStep {
	tenant := m.OAuth.Tenant
	if tenant == "" {
		tenant = "organizations"
	}
	steps := []signInStep{
		{stageReach, "Reach the sign-in service at " + host},
		{stageTenant, "Tenant " + tenant},
		{stageApp, "App " + m.OAuth.ClientID},
	}
	cred := "Client secret"
	if m.CertificateSet && !m.ClientSecretSet {
		cred = "Certificate"
	}
	switch m.Auth {
	case store.AuthOAuthApp:
		steps = append(steps, signInStep{stageCredential, cred})
	case store.AuthOAuthROPC:
		steps = append(steps, signInStep{stageAccount, "Sign in as " + m.Login + " (password grant)"})
	default:
		who := m.OAuth.Account
		if who == "" {
			who = mailboxAddress(m)
		}
		name := "Stored sign-in"
		if who != "" {
			name += " of " + who
		}
		steps = append(steps, signInStep{stageAccount, name})
	}
	return append(steps, signInStep{stagePermissions, "Consent and permissions"})
}

// passDetail is the detail of a sign-in step Microsoft got past.
func (r *run) passDetail(m store.Mailbox, s stage, host string, c tokenClaims, gotToken bool) string {
	switch s {
	case stageReach:
		return host + " answered"
	case stageTenant:
		if gotToken && c.TenantID != "" {
			return "directory " + c.TenantID
		}
		return "found"
	case stageApp:
		if gotToken && c.AppName != "" {
			return fmt.Sprintf("%q, enabled", c.AppName)
		}
		return "registered and enabled"
	case stageCredential:
		if !gotToken {
			return "accepted"
		}
		return secretExpiryDetail(m)
	case stageAccount:
		switch {
		case m.Auth == store.AuthOAuthROPC && gotToken:
			return "signed in. Note: " + ropcWarning
		case m.Auth == store.AuthOAuthROPC:
			return "password accepted"
		case gotToken:
			return "valid (renewed now)"
		}
		return "valid"
	}
	return "ok"
}

// secretExpiryDetail describes an accepted client secret with its recorded expiry.
func secretExpiryDetail(m store.Mailbox) string {
	if m.CertificateSet && !m.ClientSecretSet {
		return "accepted"
	}
	exp := m.OAuth.SecretExpiresAt
	if exp.IsZero() {
		return "accepted; its expiry date is not recorded: enter it (App registrations > the app > Certificates & secrets shows it) so that postroom warns 14 days ahead"
	}
	left := time.Until(exp)
	day := exp.UTC().Format(time.DateOnly)
	switch {
	case left <= 0:
		return fmt.Sprintf("accepted, although its recorded expiry date %s has passed: correct the date in the mailbox settings", day)
	case left < secretExpiryWarning:
		return fmt.Sprintf("accepted, but it expires on %s (%s): create a new secret before then (App registrations > the app > Certificates & secrets > New client secret) and paste its Value here", day, inDays(left))
	}
	return fmt.Sprintf("accepted; expires on %s (%s)", day, inDays(left))
}

func inDays(d time.Duration) string {
	days := int(d.Hours() / 24)
	switch days {
	case 0:
		return "in less than a day"
	case 1:
		return "in 1 day"
	}
	return fmt.Sprintf("in %d days", days)
}

// ropcWarning goes with every password-grant step.
const ropcWarning = "Microsoft recommends against the password grant (ROPC): it stops working as soon as MFA or a Conditional Access policy applies to the account; prefer the app (client credentials) or Sign in with Microsoft"

// tokenWords is what the token endpoint (or the network) said, without library prefixes
// and without Microsoft's trace lines.
func tokenWords(err error) string {
	var ee *credential.EndpointError
	if errors.As(err, &ee) {
		desc, _, _ := strings.Cut(strings.ReplaceAll(ee.Description, "\r\n", "\n"), "\n")
		switch {
		case ee.Code != "" && desc != "":
			return ee.Code + ": " + desc
		case ee.Code != "":
			return fmt.Sprintf("HTTP %d %s", ee.Status, ee.Code)
		}
		return fmt.Sprintf("HTTP %d %s", ee.Status, http.StatusText(ee.Status))
	}
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Err != nil {
		return ce.Err.Error()
	}
	return err.Error()
}

// explainTokenError says which stage a failed Microsoft token request failed at, in the
// endpoint's words, and what to do.
func (r *run) explainTokenError(m store.Mailbox, plan credential.Plan, host string, err error) (stage, string, string) {
	detail := tokenWords(err)
	var ee *credential.EndpointError
	if !errors.As(err, &ee) {
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Kind != connector.KindNetwork {
			// The token source could not be built or could not sign (settings).
			return stageCredential, detail, ce.Advice
		}
		return stageReach, detail, r.unreachableAdvice(m, host, loginHostName(m), err)
	}
	code := ee.AADSTS
	switch {
	case ee.Status == http.StatusTooManyRequests || ee.Status >= 500 || ee.Code == "temporarily_unavailable" || ee.Code == "server_error":
		return stageReach, detail, fmt.Sprintf("Microsoft's sign-in service has a temporary problem (HTTP %d): this is not a settings problem; test again in a few minutes", ee.Status)
	case code == "" && ee.Code == "":
		return stageReach, detail, fmt.Sprintf("%s answered, but not as Microsoft's sign-in service: check the authority URL (Microsoft's global one is %s)", host, cloudOf(m).LoginURL)
	}
	tenant := m.OAuth.Tenant
	client := m.OAuth.ClientID
	portal := "Microsoft Entra admin center (entra.microsoft.com) > App registrations > the app"
	switch code {
	case "90002":
		return stageTenant, detail, fmt.Sprintf("Microsoft does not know the tenant %q%s: copy the Directory (tenant) ID from Microsoft Entra admin center > Overview and paste it here%s",
			tenant, cloudPhrase(m), otherCloudHint(m))
	case "90038":
		return stageTenant, detail, fmt.Sprintf("the tenant %q belongs to another Microsoft cloud than the one chosen%s: choose the tenant's cloud (US Government or China) under Cloud", tenant, cloudPhrase(m))
	case "900023":
		return stageTenant, detail, fmt.Sprintf("%q is neither a tenant id nor a domain: enter the Directory (tenant) ID, a GUID like 84bd8158-6d4d-4958-8b9f-9d6445542f95 (Microsoft Entra admin center > Overview), or a verified domain such as contoso.onmicrosoft.com", tenant)
	case "9001023":
		return stageTenant, detail, "this sign-in needs the tenant itself: enter the Directory (tenant) ID (Microsoft Entra admin center > Overview); organizations and common work only for a person's sign-in"
	case "700016":
		return stageApp, detail, fmt.Sprintf("there is no app with the client id %s in the tenant %s: copy the Application (client) ID from %s > Overview (not the Object ID, not the Secret ID); if the app is registered in another tenant (multi-tenant), an administrator of %s must consent to it first",
			client, tenant, "App registrations > the app", tenant)
	case "7000112":
		return stageApp, detail, "the app is disabled in this tenant: Microsoft Entra admin center > Enterprise applications > the app > Properties: set \"Enabled for users to sign in\" to Yes and Save"
	case "700025":
		return stageCredential, detail, "the app is a public client, which must not send a secret: remove the client secret from this mailbox, or turn \"Allow public client flows\" off (" + portal + " > Authentication)"
	case "7000215":
		return stageCredential, detail, "the client secret is not one of this app's: paste the secret's Value (shown only once, when it was created), not its Secret ID; if nobody copied the Value, create a new secret (" + portal + " > Certificates & secrets > New client secret) and paste its Value here"
	case "7000222":
		r.secretExpired = true
		exp := ""
		if !m.OAuth.SecretExpiresAt.IsZero() {
			exp = fmt.Sprintf(" (recorded expiry %s)", m.OAuth.SecretExpiresAt.UTC().Format(time.DateOnly))
		}
		return stageCredential, detail + exp, "the client secret has expired: create a new one (" + portal + " > Certificates & secrets > New client secret), paste its Value here and record its expiry date, so that postroom warns 14 days before the next one expires"
	case "7000218":
		return stageCredential, detail, "postroom sent no client secret or certificate: enter the app's client secret (or upload its certificate) in the mailbox settings"
	case "700027":
		if strings.Contains(strings.ToLower(ee.Description), "expired") {
			return stageCredential, detail, "the app's certificate has expired: make a new certificate, upload its public part (.cer) under " + portal + " > Certificates & secrets > Certificates, and upload the new certificate with its private key (PEM) here"
		}
		return stageCredential, detail, "the certificate postroom signs with is not registered on this app: upload its public part (.cer) under " + portal + " > Certificates & secrets > Certificates, or upload here the certificate (with private key) whose thumbprint the app lists"
	case "700024":
		return stageCredential, detail, "Microsoft finds the signed client assertion outside its valid time: the clock of the machine postroom runs on is off; set it right (NTP), then test again"
	case "50012", "50027", "700021":
		return stageCredential, detail, "Microsoft refused the certificate credential: upload the app's certificate and its private key again as one PEM file, and check that the certificate is registered on the app with client id " + client
	case "50126":
		return stageAccount, detail, fmt.Sprintf("Microsoft refused the login name or password of %s: check both (the login is the full user principal name); a shared mailbox cannot sign in with a password: use the app (client credentials) for it. Note: %s", m.Login, ropcWarning)
	case "50034":
		return stageAccount, detail, fmt.Sprintf("there is no account %s in the tenant: check the login (the user principal name, often the address) and the tenant. Note: %s", m.Login, ropcWarning)
	case "50076":
		return stageAccount, detail, fmt.Sprintf("the account %s must use multi-factor authentication, which the password grant cannot do: switch this mailbox to Sign in with Microsoft (delegated) or to the app (client credentials). Note: %s", m.Login, ropcWarning)
	case "50079":
		return stageAccount, detail, fmt.Sprintf("the account %s must register for multi-factor authentication, and the password grant cannot do MFA at all: switch this mailbox to Sign in with Microsoft (delegated) or to the app (client credentials). Note: %s", m.Login, ropcWarning)
	case "53003":
		return stageAccount, detail, fmt.Sprintf("a Conditional Access policy blocks this sign-in: find the policy in Microsoft Entra admin center > Sign-in logs (filter by application %s), then exclude the app or meet the policy; better, switch this mailbox to the app (client credentials). Note: %s", client, ropcWarning)
	case "50057":
		return stageAccount, detail, "the account is disabled: enable it (Microsoft 365 admin center > Users > Active users), or sign in with another account"
	case "50055":
		return stageAccount, detail, "the account's password has expired: set a new password, then enter it here (or sign in again)"
	case "50053":
		return stageAccount, detail, "the account is locked after too many failed sign-ins (or the sign-in came from a blocked address): wait, or unlock it; the Sign-in logs in Microsoft Entra admin center say why"
	case "700082":
		return stageAccount, detail, "the stored sign-in expired after 90 days without use: sign in again (Mailboxes > this mailbox > Sign in with Microsoft)"
	case "50173", "70008", "70000", "700084", "54005":
		return stageAccount, detail, "the stored sign-in was revoked or has expired (a password change or an administrator's sign-out does that): sign in again (Mailboxes > this mailbox > Sign in with Microsoft)"
	case "65001":
		return stagePermissions, detail, fmt.Sprintf("nobody has consented to the app's permissions%s: an administrator grants admin consent (%s > API permissions > Grant admin consent for the tenant: every permission needs a green check mark), then test again%s",
			askedPermissions(m), portal, delegatedConsentHint(m))
	case "65004":
		return stagePermissions, detail, "the account declined the app's permissions: sign in again and accept, or let an administrator grant admin consent (" + portal + " > API permissions > Grant admin consent)"
	case "70011", "1002012", "700022":
		return stagePermissions, detail, fmt.Sprintf("Microsoft does not accept the scopes %q: clear the custom scopes of this mailbox, so that postroom asks for the right ones", strings.Join(plan.Scopes, " "))
	case "500011":
		return stagePermissions, detail, "the service the token is asked for is not in this tenant (for IMAP, POP3 and SMTP the tenant needs Exchange Online): check the cloud and clear the mailbox's custom scopes"
	}
	// An AADSTS code without advice of its own: the stage its OAuth error class names.
	look := ""
	if code != "" {
		look = fmt.Sprintf(" (what AADSTS%s means: https://login.microsoftonline.com/error?code=%s)", code, code)
	}
	switch ee.Code {
	case "invalid_client":
		return stageCredential, detail, "Microsoft refused the app's credential: check the client secret or certificate" + look
	case "unauthorized_client":
		return stageApp, detail, "the app may not sign in this way: check the app registration" + look
	case "invalid_grant", "interaction_required":
		return stageAccount, detail, "Microsoft refused the account's sign-in: sign in again" + look
	case "invalid_scope", "invalid_resource":
		return stagePermissions, detail, "Microsoft refused the requested scopes: clear the mailbox's custom scopes" + look
	}
	return stageCredential, detail, "Microsoft refused the sign-in" + look
}

// loginHostName is the login host of m's cloud (or authority URL), for allow-lists.
func loginHostName(m store.Mailbox) string {
	if m.OAuth.AuthorityURL != "" {
		return hostOf(m.OAuth.AuthorityURL)
	}
	return hostOf(cloudOf(m).LoginURL)
}

// cloudPhrase names the chosen cloud for advice: " in the global cloud".
func cloudPhrase(m store.Mailbox) string {
	c := cloudOf(m)
	if c.Name == credential.CloudCustom {
		return " at " + loginHostName(m)
	}
	return " in the " + c.Label + " cloud"
}

// otherCloudHint suggests the other clouds when a tenant is not found.
func otherCloudHint(m store.Mailbox) string {
	switch cloudOf(m).Name {
	case credential.CloudGlobal:
		return "; a US Government (GCC High, DoD) or China (21Vianet) tenant signs in at its own cloud: choose it under Cloud"
	case credential.CloudCustom:
		return "; check that the authority URL is the one of the tenant's cloud"
	}
	return "; a commercial or GCC tenant signs in at the global cloud: choose Global under Cloud"
}

// askedPermissions names, for a person's Graph sign-in, the delegated permissions postroom
// asks for (the .Shared ones since they open a shared mailbox, ms365-protocol.md §8.1), so
// that an app registration set up for Mail.ReadWrite alone shows what to add.
func askedPermissions(m store.Mailbox) string {
	if m.Protocol != protoGraph || m.Auth == store.AuthOAuthApp || m.OAuth.Scopes != "" {
		return ""
	}
	return " (postroom asks for the delegated permissions " + credential.ScopeMailReadWriteShared + ", " + credential.ScopeMailSendShared +
		" and User.Read: add any that is missing under Add a permission > Microsoft Graph > Delegated permissions)"
}

// delegatedConsentHint adds what a person's sign-in can do about consent.
func delegatedConsentHint(m store.Mailbox) string {
	switch m.Auth {
	case store.AuthOAuthDelegated:
		return "; or the account consents itself when it signs in again (Sign in with Microsoft)"
	case store.AuthOAuthROPC:
		return " (the password grant cannot ask the account for consent)"
	}
	return ""
}

// unreachableAdvice explains a request to a Microsoft host that got no HTTP answer.
func (r *run) unreachableAdvice(m store.Mailbox, host, hostName string, err error) string {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Sprintf("the host name %s does not exist: check the authority URL and the Graph host of this mailbox", de.Name)
	}
	if a := certAdvice(hostName, err); a != "" {
		return a + " (a proxy that inspects TLS must have its authority trusted on this machine)"
	}
	if isTLSFailure(err) {
		return fmt.Sprintf("the TLS connection to %s failed: if a proxy inspects TLS, trust its certificate authority on the machine postroom runs on", host)
	}
	return fmt.Sprintf("postroom cannot reach %s: allow this machine to connect out over HTTPS (port 443) to %s (through the proxy, if there is one), and check the authority URL and Graph host",
		host, strings.Join(allowList(m), ", "))
}

// allowList are the Microsoft hosts a mailbox needs to reach, for advice and prechecks.
func allowList(m store.Mailbox) []string {
	c := cloudOf(m)
	login := loginHostName(m)
	hosts := []string{login}
	switch m.Protocol {
	case protoGraph:
		hosts = append(hosts, hostOf(credential.GraphURLFor(m.GraphURL, m.OAuth.Cloud)))
	case protoSMTP:
		hosts = append(hosts, c.SMTPHost)
	default:
		hosts = append(hosts, c.IMAPHost)
	}
	return slices.Compact(hosts)
}

// Permissions each protocol needs: application roles (app-only) and delegated scopes.
func neededPermissions(m store.Mailbox) (roles, scopes []string, api string) {
	switch m.Protocol {
	case protoGraph:
		// Reading, marking and moving need Mail.ReadWrite; outbound too, for the drafts
		// that carry large attachments. Mail.Send is checked by the "Send as" step. A
		// person's sign-in needs the .Shared ones on another mailbox (graphScopeFits).
		return []string{"Mail.ReadWrite"}, []string{"Mail.ReadWrite.Shared"}, "Microsoft Graph"
	case protoPOP3:
		return []string{"POP.AccessAsApp"}, []string{"POP.AccessAsUser.All"}, "Office 365 Exchange Online"
	case protoSMTP:
		return []string{"SMTP.SendAsApp"}, []string{"SMTP.Send"}, "Office 365 Exchange Online"
	case protoEWS:
		return []string{"full_access_as_app"}, []string{"EWS.AccessAsUser.All"}, "Office 365 Exchange Online"
	}
	return []string{"IMAP.AccessAsApp"}, []string{"IMAP.AccessAsUser.All"}, "Office 365 Exchange Online"
}

// missing returns the names in want that have (case-insensitively) none in have.
func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			out = append(out, w)
		}
	}
	return out
}

// permissions is the "Consent and permissions" step: the token's audience, then its roles
// (app-only) or scopes (delegated) against what the protocol needs.
func (r *run) permissions(m store.Mailbox, aud credential.Audience, c tokenClaims) (detail, advice string) {
	if !c.readable {
		return "the token cannot be read here (it is not a JWT): the next steps show whether it is accepted", ""
	}
	wantGraph := aud == credential.AudienceGraph
	if isGraph, known := audienceIs(c.Audience); known && isGraph != wantGraph {
		return fmt.Sprintf("the token is for %s", c.Audience), wrongAudienceAdvice(m, c.Audience)
	}
	roles, scopes, api := neededPermissions(m)
	portal := "Microsoft Entra admin center > App registrations > the app > API permissions"
	if m.Auth == store.AuthOAuthApp {
		if len(c.Roles) == 0 && m.Protocol == protoGraph {
			// Graph answers such a token 401 NoPermissionsInAccessToken (reference §8.4).
			return "the token carries no application permissions (no roles): admin consent is missing",
				fmt.Sprintf("admin consent is missing for Mail.ReadWrite / Mail.Send: grant it in the app registration: an administrator opens %s > Grant admin consent for the tenant (each permission needs a green check mark), then test again; a new token or a new sign-in does not help",
					portal)
		}
		if len(c.Roles) == 0 {
			return "the token carries no application permissions (no roles): admin consent is missing",
				fmt.Sprintf("an administrator must grant admin consent: %s > Grant admin consent for the tenant (each permission needs a green check mark). The app needs the %s application permission(s) %s%s",
					portal, api, strings.Join(roles, ", "), sendRoleHint(m))
		}
		detail = "roles: " + strings.Join(c.Roles, ", ")
		if miss := missing(roles, c.Roles); len(miss) > 0 {
			return detail, fmt.Sprintf("the app lacks the application permission %s: %s > Add a permission > %s > Application permissions > %s, then Grant admin consent for the tenant",
				strings.Join(miss, ", "), portal, apiMenu(api), strings.Join(miss, ", "))
		}
		return detail, ""
	}
	have := c.scopes()
	detail = "scopes: " + strings.Join(have, ", ")
	if user := c.user(); user != "" {
		detail = "signed in as " + user + "; " + detail
	}
	if m.Protocol == protoGraph {
		// scp holds every scope consented for Graph (reference §8.6): only what this
		// mailbox needs is looked for, whatever else is there.
		if !graphScopeFits(have, "Mail.ReadWrite", c.user(), mailboxAddress(m)) {
			return detail, sharedScopesAdvice(portal, c.user(), mailboxAddress(m))
		}
		return detail, ""
	}
	if miss := missing(scopes, have); len(miss) > 0 {
		return detail, fmt.Sprintf("the sign-in did not grant the delegated permission %s: %s > Add a permission > %s > Delegated permissions > %s, grant admin consent, then sign in again",
			strings.Join(miss, ", "), portal, apiMenu(api), strings.Join(miss, ", "))
	}
	return detail, ""
}

// graphScopeFits reports whether delegated scopes let user use mailbox addr for perm
// (Mail.ReadWrite or Mail.Send): perm.Shared always does; perm itself only on the user's
// own mailbox (reference §8.1). An unknown user counts as another account.
func graphScopeFits(have []string, perm, user, addr string) bool {
	if len(missing([]string{perm + ".Shared"}, have)) == 0 {
		return true
	}
	return user != "" && strings.EqualFold(user, addr) && len(missing([]string{perm}, have)) == 0
}

// sharedScopesAdvice is the fix for a person's Graph sign-in without the .Shared
// permissions.
func sharedScopesAdvice(portal, user, addr string) string {
	who := "the signed-in account"
	if user != "" {
		who = user
	}
	why := fmt.Sprintf("%s is not %s's own mailbox: a person's sign-in to another mailbox (a shared mailbox) needs the delegated permissions Mail.ReadWrite.Shared and Mail.Send.Shared (Mail.ReadWrite and Mail.Send cover only the account's own mailbox)",
		addr, who)
	if user != "" && strings.EqualFold(user, addr) {
		why = "the sign-in has neither Mail.ReadWrite nor Mail.ReadWrite.Shared"
	}
	return fmt.Sprintf("%s: %s > Add a permission > Microsoft Graph > Delegated permissions > Mail.ReadWrite.Shared and Mail.Send.Shared, then Grant admin consent for the tenant and test again (the account also needs Full Access on the mailbox, and Send As to send from it)",
		why, portal)
}

// apiMenu is where an API's permissions are in the "Add a permission" dialog.
func apiMenu(api string) string {
	if api == "Microsoft Graph" {
		return "Microsoft Graph"
	}
	return "APIs my organization uses > " + api
}

func sendRoleHint(m store.Mailbox) string {
	if m.Protocol == protoGraph && m.Direction == store.Outbound {
		return " and Mail.Send"
	}
	return ""
}

// wrongAudienceAdvice explains a token for the wrong service.
func wrongAudienceAdvice(m store.Mailbox, aud string) string {
	c := cloudOf(m)
	want := credential.MailboxScopes(c, m, credential.AudienceOf(m.Protocol))
	what := "Exchange Online (IMAP, POP3, SMTP)"
	if m.Protocol == protoGraph {
		what = "Microsoft Graph"
	}
	s := fmt.Sprintf("a token for %s cannot be used with %s, each service takes only its own tokens: ", aud, what)
	if m.OAuth.Scopes != "" {
		return s + fmt.Sprintf("clear the custom scopes of this mailbox (postroom then asks for %s)", strings.Join(want, " "))
	}
	return s + fmt.Sprintf("check the cloud and the Graph host of this mailbox (postroom asks for %s)", strings.Join(want, " "))
}

// exchangeLoginAdvice explains an IMAP, POP3 or SMTP server that refused a token Microsoft
// had just issued. Exchange Online says no more than "authentication failed"; what the
// token says (app or person, audience, service principal) narrows the cause.
func (r *run) exchangeLoginAdvice(m store.Mailbox, serverWords string) string {
	if googleProvider(m) {
		return googleLoginAdvice(m, serverWords)
	}
	if !microsoftProvider(m) {
		return fmt.Sprintf("the server refused the OAuth token for %s: check that the provider's app may use %s for this account and that its scopes are the ones the server expects",
			m.Login, protoName(m.Protocol))
	}
	var c tokenClaims
	if r.oauth != nil {
		c = r.oauth.claims
	}
	if isGraph, known := audienceIs(c.Audience); known && isGraph {
		return wrongAudienceAdvice(m, c.Audience)
	}
	addr := m.Login
	enable := casmailboxEnable(m.Protocol, addr)
	if m.Protocol == protoSMTP && (strings.Contains(serverWords, "5.7.139") || strings.Contains(serverWords, "SmtpClientAuthentication")) {
		return fmt.Sprintf("SMTP AUTH is disabled for %s or for the whole organisation: in Exchange Online PowerShell run %s (for the organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false; security defaults also block it)",
			addr, enable)
	}
	if m.Auth == store.AuthOAuthApp {
		sp := c.ObjectID
		if sp == "" {
			sp = "<service principal object id>"
		}
		grant := fmt.Sprintf("New-ServicePrincipal -AppId %s -ObjectId %s (once per tenant), then Add-MailboxPermission -Identity %s -User %s -AccessRights FullAccess",
			psQuote(m.OAuth.ClientID), psQuote(sp), psQuote(addr), psQuote(sp))
		if m.Protocol == protoSMTP {
			return fmt.Sprintf("Exchange Online refused the app's valid token for %s. SMTP AUTH must be enabled for the mailbox: %s (and not disabled for the whole organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false). The app's service principal also needs FullAccess on the mailbox: %s; and Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs. Changes can take up to an hour to apply",
				addr, enable, grant, psQuote(addr), psQuote(sp))
		}
		return fmt.Sprintf("Exchange Online refused the app's valid token for %s: the app's service principal needs FullAccess on the mailbox. In Exchange Online PowerShell: %s. If it has it: %s must be enabled for the mailbox (%s) and the login must be the mailbox's address. Changes can take up to an hour to apply",
			addr, grant, protoName(m.Protocol), enable)
	}
	user := c.user()
	if user != "" && !strings.EqualFold(user, addr) {
		extra := ""
		if m.Protocol == protoSMTP {
			extra = fmt.Sprintf(" and Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs", psQuote(addr), psQuote(user))
		}
		return fmt.Sprintf("the signed-in account %s may not open %s: in Exchange Online PowerShell run Add-MailboxPermission -Identity %s -User %s -AccessRights FullAccess -AutoMapping $false%s; also check %s is enabled for the mailbox (%s)",
			user, addr, psQuote(addr), psQuote(user), extra, protoName(m.Protocol), enable)
	}
	return fmt.Sprintf("Exchange Online refused the account's valid token for %s: %s must be enabled for the mailbox (%s) and the mailbox must have an Exchange Online licence; the login must be the mailbox's address",
		addr, protoName(m.Protocol), enable)
}

// casmailboxEnable is the Set-CASMailbox command that enables a protocol for a mailbox.
func casmailboxEnable(protocol, addr string) string {
	switch protocol {
	case protoPOP3:
		return "Set-CASMailbox -Identity " + psQuote(addr) + " -PopEnabled $true"
	case protoSMTP:
		return "Set-CASMailbox -Identity " + psQuote(addr) + " -SmtpClientAuthenticationDisabled $false"
	}
	return "Set-CASMailbox -Identity " + psQuote(addr) + " -ImapEnabled $true"
}

func protoName(protocol string) string {
	switch protocol {
	case protoPOP3:
		return "POP3"
	case protoSMTP:
		return "SMTP AUTH"
	case protoGraph:
		return "Microsoft Graph"
	}
	return "IMAP"
}

// psQuote quotes s for PowerShell: a single-quoted string, in which only ' needs doubling.
// Values that need no quotes (ids, addresses) and placeholders such as <group address> are
// left bare, to read like Microsoft's own examples.
func psQuote(s string) string {
	if placeholderRe.MatchString(s) || plainRe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

var (
	plainRe       = regexp.MustCompile(`^[A-Za-z0-9@._-]+$`)
	placeholderRe = regexp.MustCompile(`^<[A-Za-z0-9 ()._-]+>$`)
)

// tokenFor returns the current access token for a login command: the one the sign-in steps
// obtained, or a renewed one when refresh is set (a server refused the first).
func (r *run) tokenFor(ctx context.Context, refresh bool) (string, error) {
	if !refresh && r.oauth != nil {
		return r.oauth.token, nil
	}
	tok, err := r.opts.Token(ctx, true)
	if err != nil {
		return "", err
	}
	r.oauth = &oauthLogin{token: tok, claims: decodeClaims(tok)}
	return tok, nil
}
