// Package demo runs the in-process demo mail server behind `postroom demo`: an
// IMAP server (IMAP4rev1, RFC 3501, with IDLE RFC 2177, UIDPLUS RFC 4315,
// MOVE RFC 6851, NAMESPACE RFC 2342, SPECIAL-USE RFC 6154) and an SMTP server
// (RFC 5321, AUTH PLAIN RFC 4954/RFC 4616) that share one in-memory message
// store, plus a corpus of sample customer emails (RFC 5322, MIME RFC 2045-2049,
// encoded words RFC 2047, DSN RFC 3464) that preloads the support INBOX.
//
// Mail flow:
//
//	customer (smtplib, swaks, postroom's outbound sink)
//	  -> SMTP SMTPAddr, no auth needed (AUTH PLAIN accepted for the demo logins)
//	  -> recipient @example.com  -> INBOX of SupportLogin  (what postroom ingests)
//	  -> any other recipient      -> INBOX of CustomersLogin (where replies can be read)
//
// Invariants a change must keep:
//   - Loopback demo only: plaintext IMAP and SMTP, no TLS, one shared password
//     for every login. Nothing is relayed beyond this process.
//   - Everything lives in memory. Each Start creates new mailboxes whose
//     UIDVALIDITY is 1 and whose UIDs restart at 1, so a client must not keep an
//     IMAP cursor across demo runs (RFC 3501 §2.3.1.1 would require a new
//     UIDVALIDITY; imapmemserver gives no way to choose it).
//   - A message accepted over SMTP is in the target INBOX before the server
//     answers 250 to DATA, and clients that have the INBOX selected are told
//     about it (EXISTS) at once when idling, else on their next command.
//     Every write to a mailbox goes through mailStore.deliver or
//     imapSession.Append so that idling sessions wake up; our IDLE takes its
//     wake-up channel before polling, so no delivery falls between the two.
//   - One sample (and any multipart message whose boundary matches no part)
//     cannot be walked by a MIME parser; BODY[] still returns it byte for
//     byte. go-imap's imapserver panics on BODYSTRUCTURE for a multipart
//     with no readable part and drops that connection, so the samples avoid
//     that shape and SMTP delivery logs a warning when it sees it.
//   - Stored messages use CRLF line endings (RFC 5322 §2.1), so RFC822.SIZE
//     equals the length of BODY[].
//   - Sample Message-IDs are fixed; only the dates follow the clock, so loading
//     the samples twice yields the same Message-IDs.
package demo
