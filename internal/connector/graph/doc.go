// Package graph reads and sends the mail of a Microsoft 365 mailbox through Microsoft Graph
// v1.0 (shared/reference/ms365-protocol.md, sections 3 and 4): a connector.Source and
// connector.Waiter (Source), a connector.Sink (Sink), and the change-notification
// subscription of a folder with its webhook (Subscriber). It is our own small REST code on
// net/http and encoding/json; no Microsoft SDK.
//
// Hosts: Config.GraphURL is the Graph host of the mailbox's cloud (DefaultGraphURL, or e.g.
// https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn, or a local stand-in).
// Every request carries the bearer token of Config.Token (an app token for
// https://graph.microsoft.com/.default or a delegated one) and Prefer: IdType="ImmutableId",
// so message ids survive moves. A token refused with 401 InvalidAuthenticationToken is
// renewed once (Token(ctx, true)) and the request sent again; so is an app-only token
// without roles (401 NoPermissionsInAccessToken), which is then reported as missing admin
// consent (AdviceAdminConsentMissing), not as a sign-in to renew.
//
// How a folder is read (Source):
//
//   - Delta query on the folder's messages, odata.maxpagesize = Config.PageSize,
//     changeType=created (later rounds only report new arrivals; updates such as our own
//     "mark read" do not bring a message back). @odata.nextLink pages are followed verbatim
//     until the page that carries the @odata.deltaLink; that link starts the next round.
//   - Incoming.SourceID is "graph:" + the immutable id; Raw is GET .../messages/{id}/$value,
//     the message's MIME bytes.
//   - The cursor is the deltaLink of a finished round (with the mailbox and folder it belongs
//     to, see FormatCursor). It rides only on the last message of a round, which the ingest
//     pipeline stores in the same transaction as that message. A crash anywhere before that
//     restarts the round from the previous cursor: messages come again and the store's dedup
//     by SourceID recognises them. Nothing is lost, because no message of a round is behind
//     the saved cursor until the whole round is stored. When a round ends with no message to
//     carry its cursor, Config.SaveCursor (if set) saves it: by then the caller has stored
//     every message Next returned before (it calls Next again only after committing a batch).
//   - A link Graph no longer knows (410 Gone, or any 4xx with code syncStateNotFound in any
//     case: the delta or skip token fell out of Microsoft's cache), a deltaLink or the
//     nextLink of an unfinished round, restarts with a full sync of the folder. It is logged
//     at warn level. Nothing is duplicated: messages handed out before are skipped,
//     Config.Skip asks the store, and dedup catches the rest. A second such failure in a row
//     (before a link Graph handed out could be followed) is a KindServer error, and the next
//     call starts afresh: a dead link is never asked twice.
//   - The first sync of a mailbox (no cursor) with AfterAction mark_read takes the unread
//     messages only, as the IMAP source does: read ones were handled before postroom.
//   - A message over Config.MaxSizeBytes is not downloaded whole: Raw holds its header,
//     OverSize is set, and SetAside moves it to the folder OversizeFolder.
//   - Ack, after the store committed: mark_read PATCHes isRead true, move moves the message
//     to MoveFolder (created when missing), delete deletes it (to Deleted Items), keep leaves
//     it. These go in JSON batches of up to 20, chained with dependsOn so that Graph runs
//     them one after the other (one of the mailbox's 4 concurrent requests, not 20). A
//     message that is gone already (404) counts as done; throttled members are sent again.
//   - Wait returns when Notify is called (the webhook saw a change) or after max: without a
//     public URL for notifications, the caller polls with delta.
//
// Throttling: at most 4 requests of a mailbox are in flight at once (Limiter; share one
// between the Source, Sink and Subscriber of a mailbox); each MailboxConcurrency 429 lowers
// that by one (Microsoft refuses below 4 at times), and a minute without one raises it again.
// Every 429, and 503 and 504 answers, are retried after their Retry-After (integer seconds,
// at most maxRetryWait; exponential backoff when absent), and while one request waits out a
// Retry-After, the other requests of the mailbox wait too; a 429 inside a $batch holds back
// the rest of the batch the same way. A 429 means the request was not carried out, so a
// throttled sendMail is sent again without risk of a duplicate. After maxAttempts tries the
// throttling is reported as a KindServer *connector.Error; the caller's backoff takes over.
//
// Change notifications need app-only access on another user's or a shared mailbox: Graph
// refuses a person's sign-in there (403), and Subscribe returns at once with
// ErrNotificationsNeedApp; the folder is then polled with delta.
//
// Errors an administrator can act on are *connector.Error with Kind and Advice: a refused
// token, missing permission or consent (for a person's sign-in to a shared mailbox: the
// delegated Mail.ReadWrite.Shared and Mail.Send.Shared), a mailbox outside the application access policy or
// RBAC scope (with the PowerShell to run), an unlicensed or on-premises mailbox, an unknown
// mailbox, a missing folder, network failures (connector.ClassifyDial).
//
// Sending (Sink): sendMail with the message as base64 MIME (Content-Type text/plain), so our
// own Message-ID, In-Reply-To and References go out unchanged, saved to Sent Items. A message
// over 3 MB is sent as a draft made from its MIME without the large attachments, which are
// then added (under 3 MB in one POST each, larger through upload sessions up to 150 MB), and
// /send. The US Government L4/L5 clouds (Config.Cloud usgov, usgov-dod) have no upload
// sessions and take at most 4 MB per request: a message with an attachment of 3 MB or more is
// refused there for good (KindRejected) with advice naming the limit. Graph answers 202 for
// all recipients at once: there are no per-recipient results. The outbox sends in steps
// instead, so that a resend after a crash is recognised: PrepareDraft makes the complete
// draft (MIME, attachments as above) and returns its immutable id, SendDraft sends it, and
// DraftState tells a draft that is still unsent (isDraft true) from one that went (its copy
// in Sent Items keeps the immutable id, isDraft false; 404 ErrorItemNotFound while the copy
// is not there yet).
//
// Change notifications (Subscriber): a subscription is asked for 4,200 minutes (the stricter
// of Microsoft's caps for Outlook messages is 4,230) or less when Graph states a lower cap,
// and renewed when two thirds of the lifetime Graph granted have passed. Its Subscribed and
// Ended hooks report each subscription's id, expiry and clientState hash, so that the
// caller can store them; HandleNotifications answers a notification request with any
// such check (postroom checks against the stored subscriptions on every node), and
// RequestRenew and RequestRecreate carry lifecycle events received elsewhere to Run.
package graph
