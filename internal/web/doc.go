// Package web serves postroom's server-rendered pages: sign-in, the agent's "My work"
// (my.go: status, Get next, offers, own items; it reloads itself with a meta refresh), the
// work item list, a work item's conversation with the reply form (and its From choice),
// its lifecycle buttons, history and decision traces (workitemview.go; every action goes
// through workitem.Service, as the API's do: workitemaction.go), and the administration
// of mailboxes, their From addresses and the queues (admins change, supervisors look),
// with the mailboxes' OAuth 2.0 sign-in settings and the delegated sign-in ("Sign in with
// Microsoft", signin.go: authorization code with PKCE, the redirect URI /oauth/callback)
// and the self-service migration of password mailboxes to OAuth 2.0 (migrate.go),
// staff single sign-on (ssopages.go: the login page's "Sign in with ..." link to
// /login/sso, the redirect URI /sso/callback, the admin's /settings/sso; the protocol is
// internal/sso's), and, for admins, data protection (privacy.go): the audit log (/audit)
// and the erasure of a customer's data (/privacy), whose rules are in internal/privacy.
// Pages are html/template files embedded in the binary, one Go file per page; there is no
// JavaScript at all (menus are plain links, confirmations are pages, the form's "Test
// connection" is a second submit button with its own formaction; the mailbox form shows
// only the fields of the chosen client type, sign-in method and provider through CSS :has
// rules on its selects, and keeps a field with an error in view).
//
// Invariants a change must keep:
//
//   - Every response carries the security headers of securityHeaders: a Content-Security-Policy
//     with script-src 'none' (the pages need no script, so any injected script is dead),
//     frame-ancestors 'none' and X-Frame-Options DENY (no clickjacking), form-action 'self'
//     (widened only on a page with a sign-in button, to the origin of that mailbox's
//     authorize endpoint, because browsers hold a form's redirects to form-action),
//     Referrer-Policy no-referrer (URLs of work items do not leak to links in emails) and
//     X-Content-Type-Options nosniff. With an https PublicURL or Options.SecureCookies
//     (auth.SecureTransport) every response also carries Strict-Transport-Security and the
//     session cookie is Secure.
//   - Email HTML is shown only after message.SanitizeHTML, and then only inside
//     <iframe sandbox srcdoc> without allow-scripts or allow-same-origin: belt and braces,
//     so that even a sanitizer bug cannot run script or reach the page. Email text is
//     escaped by html/template like any other value. The email's formatting reaches the
//     frame as one stylesheet allowed by its CSP hash (message.MoveStylesToSheet): the
//     policy never allows 'unsafe-inline'.
//   - Every POST form carries a CSRF token: the session's (auth.CheckCSRF, constant time)
//     once signed in, and a double-submit cookie on the sign-in form. Missing or wrong
//     gives a 403 page. net/http's CrossOriginProtection also refuses cross-origin POSTs
//     by their Sec-Fetch-Site/Origin headers.
//   - Pages need a session; without one (or when it expired) GET requests are redirected
//     to /login?next=<path>. Role checks use auth.Allowed.
//   - The sign-in form signs in through auth.Service.SignIn, like the API: a throttled
//     sign-in is a 429 page with Retry-After that says when to try again; a user with a
//     second factor gets a second step asking for the code, which carries a ticket sealed
//     by the vault instead of the password (loginthrottle.go).
//   - The email frame's inline (cid:) images use signed, expiring URLs, because the
//     sandboxed frame's requests carry no SameSite cookie (signed.go). Every other
//     attachment and raw source needs the session.
//   - No page changes a work item's state itself: actions go through workitem.Service.Do
//     (with the state the form was rendered with, so that a stale page is refused), statuses
//     and Get next through routing.Engine. A refusal or a conflict is a 409 page that says
//     why, never a 500; without the engine the pages say that routing is not running.
//   - Raw sources and attachments are served by the same code as the API
//     (workitem.ServeRaw, workitem.ServeAttachment).
//   - Mailbox rules live in internal/mailbox only: the pages pass the form to it and show
//     its *mailbox.ValidationError next to the fields (the form's field names are the
//     API's JSON names; the OAuth settings' keys are oauth_tenant, oauth_client_id, ...).
//     Secrets are write-only: no page ever contains a password, client secret,
//     certificate or refresh token, not even a form sent back with errors (the field
//     comes back empty, with a note); pages say only whether one is stored.
//   - A delegated sign-in's state and PKCE verifier stay in this process, bound to the
//     admin's session and the mailbox, for ten minutes, and are taken once: a callback
//     with another state, from another session, or a second time changes nothing.
package web
