// Package web serves postroom's server-rendered pages: sign-in, the work item list, a work
// item's conversation with the reply form, and the mailboxes' status. Pages are
// html/template files embedded in the binary; there is no JavaScript at all.
//
// Invariants a change must keep:
//
//   - Every response carries the security headers of securityHeaders: a Content-Security-Policy
//     with script-src 'none' (the pages need no script, so any injected script is dead),
//     frame-ancestors 'none' and X-Frame-Options DENY (no clickjacking),
//     Referrer-Policy no-referrer (URLs of work items do not leak to links in emails) and
//     X-Content-Type-Options nosniff.
//   - Email HTML is shown only after message.SanitizeHTML, and then only inside
//     <iframe sandbox srcdoc> without allow-scripts or allow-same-origin: belt and braces,
//     so that even a sanitizer bug cannot run script or reach the page. Email text is
//     escaped by html/template like any other value.
//   - Every POST form carries a CSRF token: the session's (auth.CheckCSRF, constant time)
//     once signed in, and a double-submit cookie on the sign-in form. Missing or wrong
//     gives a 403 page. net/http's CrossOriginProtection also refuses cross-origin POSTs
//     by their Sec-Fetch-Site/Origin headers.
//   - Pages need a session; without one (or when it expired) GET requests are redirected
//     to /login?next=<path>. Role checks use auth.Allowed.
//   - The email frame's inline (cid:) images use signed, expiring URLs, because the
//     sandboxed frame's requests carry no SameSite cookie (signed.go). Every other
//     attachment and raw source needs the session.
//   - Raw sources and attachments are served by the same code as the API
//     (api.ServeRaw, api.ServeAttachment).
package web
