// Package api serves the JSON API under /api/v1/ (described by the OpenAPI 3.0 document
// served at GET /api/v1/openapi.json).
//
// Authentication is a browser session cookie (POST /api/v1/session) or an API token in an
// "Authorization: Bearer prt_..." header (RFC 6750 §2.1); see internal/auth. Every other
// request gets 401 (an expired token too, saying so). A role too low for an endpoint gets
// 403, and so does an API token whose scopes do not allow the request (auth.Authorize: a
// "read" token may only GET and HEAD; a role scope caps the role). Any user creates,
// lists and revokes their own tokens (/api/v1/tokens) and lists and ends their own browser
// sessions (/api/v1/me/sessions); admins those of everyone. With Options.SecureCookies
// every answer carries Strict-Transport-Security and the session cookie is Secure.
//
// Cross-site request forgery: a cookie-authenticated request with an unsafe method (POST,
// PUT, PATCH, DELETE) must carry "Content-Type: application/json". An HTML form on another
// site can only send application/x-www-form-urlencoded, multipart/form-data or text/plain,
// and a cross-site fetch with application/json needs a CORS preflight, which this API never
// grants (it sends no Access-Control-* headers). So a forged request cannot reach a handler
// with the victim's cookie. The session cookie is also SameSite=Lax, and net/http's
// CrossOriginProtection refuses browser requests whose Sec-Fetch-Site or Origin say they
// come from another origin. Bearer-token requests need none of this: browsers never attach
// a bearer token on their own. POST /api/v1/session (sign-in) needs no authentication but
// also requires a JSON body, which stops login CSRF. It signs in through
// auth.Service.SignIn: a sign-in refused for throttling is 429 with Retry-After (seconds),
// one that needs the user's second factor is 401 "second factor required" until "code" is
// sent.
//
// Invariants a change must keep:
//
//   - Every response body is JSON, errors included: {"error": "what is wrong and what to
//     do"}, plus "fields" (field name to message) for invalid input.
//   - No secret (password, token hash, mailbox credential) ever appears in a response.
//     The plaintext of a new API token is returned exactly once, by POST /api/v1/tokens.
//   - Email HTML is returned only after message.SanitizeHTML. Raw sources and attachments
//     are served as downloads, or (raster images only) inline under
//     "Content-Security-Policy: sandbox" and "X-Content-Type-Options: nosniff".
//   - An unknown id is 404 (store.ErrNotFound), never 500.
//   - The work item list's q is a search, never syntax: any text answers 200 (only one
//     over 1000 characters is a field error). Saved views follow workitem.Views' rules.
//   - Mailbox administration goes through internal/mailbox, the one place for its rules:
//     its *ValidationError is 400 with "fields" keyed by the JSON field names, its lifecycle
//     errors (delete while enabled, the default outbound mailbox, a disabled queue) are 409.
//     In a request body an unknown field or a value of the wrong JSON type is a field error
//     too, never a silent default. Reads are for supervisors and admins, changes for admins.
//   - Every JSON request body is one UTF-8 JSON value with nothing after it but white
//     space; anything else is 400 (decodeBody, readObject).
//   - A mailbox's secrets are write-only: password, client_secret, client_certificate (a
//     PEM bundle with its private key) and refresh_token. Requests may set them, no
//     response carries them ("password_set", "client_secret_set", "client_certificate_set"
//     and "refresh_token_set" say whether one is stored), and an absent, null or empty one
//     keeps the stored one, unless the change sends it elsewhere (mailbox's secret
//     destination rule: then fields.<secret> asks for it again).
//   - Single sign-on's settings (GET/PUT /api/v1/sso, admins) go through internal/sso: its
//     client_secret is write-only in the same way, and must be given again when the issuer
//     changes. When local passwords are off, POST /api/v1/session answers 403 with advice
//     for everyone but the break-glass admins (sso.Service.PasswordRefusal).
//   - A mailbox's OAuth settings are the object "oauth"; its members that are sent replace
//     the stored ones, the others keep theirs. Their field errors are keyed oauth_<member>
//     (oauth_tenant, oauth_client_id, ...), the keys of mailbox.ValidationError.
//   - Data protection (privacy.go) is for admins and follows internal/privacy: the audit
//     log (GET /api/v1/audit, and GET /api/v1/audit.csv, a CSV download like the board's
//     history) and erasure (POST /api/v1/erasure: a dry run unless "confirm" is true).
package api
