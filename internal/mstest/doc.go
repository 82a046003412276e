// Package mstest is a faithful local stand-in for Microsoft's cloud: the identity platform
// (Entra ID v2.0 token and authorize endpoints) and Microsoft Graph mail v1.0, as
// shared/reference/ms365-protocol.md describes them on the wire. Tests, `postroom demo` and
// `postroom bench graph` use it; production code never imports it.
//
// A Server listens on 127.0.0.1 only, on two ports:
//
//   - the login host, LoginURL(): what postroom calls the "authority host". It serves
//     /{tenant}/oauth2/v2.0/token (client_credentials with a secret or a certificate client
//     assertion, password (ROPC), authorization_code with PKCE, refresh_token with rotation),
//     /{tenant}/oauth2/v2.0/authorize (a minimal HTML sign-in page a browser can fill),
//     /{tenant}/discovery/v2.0/keys (the JWKS of access and id tokens),
//     /{tenant}/v2.0/.well-known/openid-configuration (the OpenID Connect discovery
//     document: the stand-in is the OpenID provider of staff single sign-on, see oidc.go:
//     id tokens with nonce, groups and roles, signed by rotating keys, RotateSigningKey,
//     SpoilNextIDToken, User.SetGroups, User.SetAppRoles) and /introspect (RFC 7662, for
//     Dovecot's oauth2 passdb).
//   - the Graph host, GraphURL(): what postroom calls the "Graph host". It serves /v1.0/...:
//     messages, delta, $value, PATCH, move, childFolders, sendMail (JSON and MIME), drafts,
//     upload sessions, $batch and subscriptions.
//
// The directory is built by test code: AddTenant, then Tenant.AddApp, Tenant.AddUser and
// Tenant.AddSharedMailbox; apps get secrets (App.AddSecret), certificates, application
// permissions (roles) and delegated scopes, admin consent or not, mailbox permissions
// (App.GrantFullAccess) and an application access policy (App.SetAccessPolicy).
// SampleTenant builds a ready-made tenant for demos and benchmarks.
//
// Permissions are checked as Graph checks them (reference §8): an app-only token without
// roles (no admin consent) gets 401 NoPermissionsInAccessToken on every call; a delegated
// token opens the user's own mailbox with Mail.Read/ReadWrite/Send, and another user's or
// a shared mailbox only with Mail.Read.Shared/ReadWrite.Shared (plus the user's FullAccess,
// User.GrantFullAccess) and Mail.Send.Shared (plus SendAs, User.GrantSendAs), else 403
// ErrorAccessDenied or ErrorSendAsDenied; a delegated subscription on another user's or a
// shared mailbox is refused with 403 ExtensionError; a delegated token's scp carries every
// scope consented for its API, not only the requested ones.
//
// Access tokens are RS256 JWTs signed by a key made at Start, with aud, iss, tid, appid/azp,
// roles or scp, upn, oid, iat, nbf, exp, so a client can read its roles. One token is for
// one resource (audience): Graph (GraphAudience, or GraphURL() itself) or Exchange Online
// (ExchangeAudience, or the delegated https://outlook.office.com), or an Exchange Server's
// URL registered with AddServicePrincipalName (hybrid modern authentication; Exchange
// Online's permissions, the URL as audience). The Graph host refuses Exchange tokens and the
// introspection endpoint refuses Graph tokens.
//
// Errors follow Microsoft's shapes exactly: the identity platform's seven-field JSON with
// AADSTS codes (TokenError), Graph's {"error":{"code","message","innerError"}} envelope with
// a request-id header.
//
// Test hooks: Deliver puts a message into a mailbox folder (change notifications fire);
// Messages, Message, Folders and Sent read a mailbox back; Requests counts Graph requests per
// app, Uploaded the bytes a mailbox uploaded in its current upload window; fault injection (FailNext, ExpireDeltaTokens, ExpireAccessTokens, RevokeUserSessions,
// App.ExpireSecret, SetLatency, ...) makes the stand-in misbehave on demand; Advance moves its
// clock forward.
//
// Time: every expiry (tokens, secrets, codes, subscriptions, throttle windows) is measured
// against Options.Now (default time.Now) plus whatever Advance added, so tests never sleep
// to make something expire.
//
// Dovecot: testenv.DovecotOptions{IntrospectionURL: s.IntrospectURL()} makes real Dovecot
// take the stand-in's Exchange tokens for XOAUTH2/OAUTHBEARER. Dovecot sends only the
// token, so IntrospectURL answers for an app token with the one mailbox the app holds
// FullAccess on; IntrospectURLFor(mailbox) names the mailbox when there are several.
//
// Deliberate simplifications (the reference does not need more, or a test could not
// observe it):
//   - apps are single-tenant; one access token signing key (id tokens have their own
//     rotating keys); access tokens live exactly
//     AccessTokenLifetime (Microsoft randomises 60-90 minutes);
//   - ids are opaque strings shaped like Exchange's; folder ids are the same with and
//     without Prefer: IdType="ImmutableId" (message ids differ and change on move);
//   - a message's JSON body is its text or HTML part; $filter takes receivedDateTime,
//     isRead, internetMessageId and subject (messages) and displayName eq (folders);
//     $orderby receivedDateTime only; no $search, $count or $expand;
//   - notification URLs must be http or https on 127.0.0.1/::1 (Microsoft demands public
//     HTTPS); notifications are POSTed in the background, unbatched, without retries;
//   - delegated sending from another user's or a shared mailbox checks SendAs only (not
//     SendOnBehalf, and not FullAccess, which reply and draft sending would also need to
//     read the original); consent is all or nothing per scope (no tenant setting that
//     stops users from consenting themselves);
//   - a $batch is one request in Requests() and runs its members in order; each member
//     passes the per-mailbox throttle on its own;
//   - sendMail keeps MIME byte for byte (Exchange rewrites it; the reference asks for the
//     headers to survive) and adds only a missing Date, Message-ID or From;
//   - Set-CASMailbox protocol switches (IMAPDisabled, ...) act at introspection, per
//     protocol only when Dovecot sends X-Dovecot-Auth-Service (send_auth_headers = yes).
//   - delta and skip tokens live forever unless Options.DeltaTokenLifetime is set (Outlook
//     drops them from a cache after a time it does not state); an expired one answers 410
//     SyncStateNotFound, or DeltaExpiredStatus/DeltaExpiredCode (e.g. 400 syncStateNotFound);
//   - subscriptions are refused beyond MaxSubscriptionLifetime (4,230 minutes, the stricter
//     of Microsoft's published caps; 10,080 plays the newer one), never silently shortened;
//   - throttling: MaxConcurrent (set it below 4 to play §8.9) and RateLimit per app and
//     mailbox; UploadLimit per UploadWindow per mailbox across apps, counting PATCH, POST and
//     PUT bodies (upload-session ranges and $batch members too; the 429's text is unverified);
//     upload-session PUTs take no concurrency slot;
//   - Options.Cloud (usgov, usgov-dod) plays only the US Government L4/L5 rule that
//     createUploadSession does not exist (answered 400 "Resource not found for the segment",
//     as for any unknown path; the national cloud's exact answer is unverified); hosts,
//     audiences and the rest stay the global cloud's;
//   - IMAP, POP3 and SMTP are served by real Dovecot, which answers with its own lines;
//     Exchange's (535 5.7.139 and 5.7.3, "NO AUTHENTICATE failed.", "-ERR Authentication
//     failure: unknown user name or bad password.") are played by
//     testenv.FaultProxy.RewriteLines in front of it, in plain text only;
//   - not modelled at all: conditional access beyond the three sign-in refusals, token
//     revocation events (CAE), per-tenant SMTP AUTH settings (Set-TransportConfig), the
//     national clouds' own hosts and audiences, and the Outlook REST and EWS endpoints.
package mstest
