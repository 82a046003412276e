// Package ews reads and sends mail of Exchange Server (on-premises) mailboxes over Exchange
// Web Services, with a small SOAP 1.1 client of its own (encoding/xml) for the operations
// it needs: SyncFolderItems, GetItem with IncludeMimeContent, UpdateItem (message:IsRead),
// MoveItem and CreateItem (SendAndSaveCopy with MimeContent).
//
// The Source reads one distinguished folder (inbox by default) with SyncFolderItems. The
// last message of each page of changes carries the page's SyncState as its Cursor, so the
// ingest pipeline saves the state in the same transaction as the messages; a page without
// new messages is saved with Config.SaveCursor. The SourceID is "ews:" + the ItemId.
// Messages are marked read (or moved) by Ack, after the commit. When Exchange no longer
// knows a sync state (ErrorInvalidSyncStateData) the folder is read again from an empty
// state: what was stored before is recognised (Config.Skip and the store's dedup), never
// stored twice. ErrorServerBusy is waited out for its BackOffMilliseconds hint. Wait
// (connector.Waiter) holds a streaming subscription (Subscribe, GetStreamingEvents) open
// and returns at the first NewMailEvent; without one (refused, lost, or the connection
// broke) the folder is polled, and a lost subscription is made again.
//
// Sign-in is HTTP Basic (login and password; https only, plain http only to loopback), NTLM
// with the same login and password (github.com/Azure/go-ntlmssp; chosen by itself when a
// 401 offers NTLM or Negotiate and not Basic), or an OAuth 2.0 bearer token
// (Config.Token). Kerberos is not supported. The
// mailbox is opened as a delegate (the folder ids name it) or with the
// ExchangeImpersonation header (Config.Impersonate, or by itself when delegate access is
// refused with ErrorAccessDenied and impersonation works).
//
// Discover finds a mailbox's EWS URL with Exchange Autodiscover from its address (SOAP
// GetUserSettings, then POX, at the domain and autodiscover.<domain>; the http 302; the
// SRV record; or only a named host), following redirects to https, at most 10; Endpoints
// remembers what it found per mailbox for a process, and Config.Stale forgets it when the
// URL answers 404 or ErrorMailboxMoveInProgress. Autodiscover sends the credentials
// (password, NTLM, bearer token) only to hosts in the address's domain (the domain or a
// name under it, compared in IDNA ASCII form, so evilcontoso.com is not contoso.com), to
// the named host, and to what an https answer of such a host names (a RedirectUrl, the
// domain of a RedirectAddr, the EWS URL). A host outside the domain named only by the
// plain http redirect or the SRV record, which nothing authenticates, is not asked: the
// failure names it and says to type it as the autodiscover host.
//
// Errors are *connector.Error whose Advice names the fix for Exchange's codes
// (ErrorAccessDenied, ErrorNonExistentMailbox, ErrorImpersonateUserDenied, ErrorServerBusy
// with its back-off hint) and for a 401 with the methods the server offered.
package ews
