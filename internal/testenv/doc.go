// Package testenv starts real servers for postroom's tests (Dovecot itself and the process
// helpers live in internal/localserver, which postroom bench shares; this package adds what
// fails the test and cleans up at t.Cleanup): Dovecot (IMAP RFC 9051/3501,
// POP3 RFC 1939, submission RFC 6409 with SASL PLAIN/LOGIN and, against a token
// introspection endpoint (RFC 7662), XOAUTH2 and OAUTHBEARER RFC 7628, and optionally LMTP
// RFC 2033), Postfix's smtp-sink as a receiving SMTP peer (RFC 5321), a private Postfix as
// an MTA between them, and headless Chromium driven through the DevTools protocol
// (chromedp). The PostgreSQL helper lives in postgres.go.
//
// StartPostfix (postfix.go) runs a Postfix of the test's own: main.cf and master.cf written
// by the helper, queue, data and log (Postfix's maillog_file, no syslog) under a temp dir,
// one SMTP listener on 127.0.0.1 that relays for 127.0.0.0/8 without AUTH or TLS. Mail goes
// to PostfixOptions.RelayHost (typically an SMTPSink or its RcptGate), except mail for
// LMTPDomains, which goes to an LMTP server (Dovecot with DovecotOptions.LMTP). So a
// recipient the relay host refuses with 5xx makes Postfix write its own bounce (an RFC 3464
// delivery status notification) to the sender, delivered into the sender's Dovecot mailbox.
// Queue delays are 1 s, so retries and bounces come within seconds. The system Postfix
// (/etc/postfix, /var/spool/postfix) is neither read nor touched; "postfix start" and a
// SIGTERM to the master's process group start and stop the instance. Postfix needs root,
// the postfix user and the postdrop group, all set up by the Debian package.
//
// The recipe for Dovecot and smtp-sink is shared/reference/testmail.md; every deviation from
// it is commented where it happens.
//
// Invariants every helper keeps:
//   - Nothing touches the system configuration or system services: each server gets its own
//     temporary directory, its own configuration and free ports on 127.0.0.1 only.
//   - A missing binary fails the test with install advice (./scripts/test installs everything).
//     It never skips: a skipped integration test looks green and proves nothing.
//   - Every server is stopped at t.Cleanup (SIGTERM to its process group, SIGKILL after a
//     grace period), so no process or listener outlives the test that started it.
//   - When a test fails, the server's log tail is written to the test log.
//   - Ports are picked per start; a start that loses a port race is retried on new ports.
//
// Dovecot and smtp-sink drop privileges to nobody, Postfix to its postfix user; they need
// root to do so (the developers' machines and CI run as root).
package testenv
