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
//     /{tenant}/discovery/v2.0/keys (the JWKS that signs access tokens) and /introspect
//     (RFC 7662, for Dovecot's oauth2 passdb).
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
// Access tokens are RS256 JWTs signed by a key made at Start, with aud, iss, tid, appid/azp,
// roles or scp, upn, oid, iat, nbf, exp, so a client can read its roles. One token is for
// one resource (audience): Graph (GraphAudience, or GraphURL() itself) or Exchange Online
// (ExchangeAudience, or the delegated https://outlook.office.com). The Graph host refuses
// Exchange tokens and the introspection endpoint refuses Graph tokens.
//
// Errors follow Microsoft's shapes exactly: the identity platform's seven-field JSON with
// AADSTS codes (TokenError), Graph's {"error":{"code","message","innerError"}} envelope with
// a request-id header.
//
// Test hooks: Deliver puts a message into a mailbox folder (change notifications fire);
// Messages, Message, Folders and Sent read a mailbox back; Requests counts Graph requests per
// app; fault injection (FailNext, ExpireDeltaTokens, ExpireAccessTokens, RevokeUserSessions,
// App.ExpireSecret, SetLatency, ...) makes the stand-in misbehave on demand; Advance moves its
// clock forward.
//
// Time: every expiry (tokens, secrets, codes, subscriptions, throttle windows) is measured
// against Options.Now (default time.Now) plus whatever Advance added, so tests never sleep
// to make something expire.
//
// Simplifications (all deliberate, documented where they happen): one signing key; ids are
// opaque strings that look like Microsoft's but encode nothing a client may parse; message
// bodies in JSON are the text part of the MIME message; $filter supports only what the
// reference names for delta (receivedDateTime ge/gt) and childFolders (displayName eq).
package mstest
