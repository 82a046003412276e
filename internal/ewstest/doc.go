// Package ewstest is a local stand-in for Exchange Web Services (EWS) as Exchange Server
// on-premises serves it: an HTTP server on loopback whose endpoint /EWS/Exchange.asmx speaks
// SOAP 1.1 with the element names and namespaces of Microsoft's published schema
// (messages.xsd, types.xsd: http://schemas.microsoft.com/exchange/services/2006/messages and
// .../types) and Exchange's response codes. Tests, `postroom bench ews` and the demo use it;
// production code never imports it (as internal/mstest plays Microsoft Graph).
//
// It serves SyncFolderItems (Changes/Create with ItemId Id and ChangeKey, SyncState,
// IncludesLastItemInRange, MaxChangesReturned), GetItem with IncludeMimeContent (base64
// MimeContent), UpdateItem (SetItemField message:IsRead), MoveItem and CreateItem
// (MessageDisposition SendAndSaveCopy or SaveOnly with MimeContent: delivered into the
// recipients' stand-in mailboxes, or recorded as sent to outside addresses, with a copy in
// sentitems), and streaming subscriptions (Subscribe with StreamingSubscriptionRequest,
// GetStreamingEvents: NewMailEvent notifications and ConnectionStatus heartbeats on one
// open response). Each mailbox has the folders inbox, sentitems, deleteditems and drafts.
//
// Sign-in is HTTP Basic (a user's login and password) or a Bearer token (AddToken); after
// RequireNTLM only NTLM (NTLMv2 answers checked, MS-NLMP), per connection as IIS does. A user
// reaches its own mailbox, mailboxes it has delegate access to (Grant), and any mailbox
// through the ExchangeImpersonation header when it holds the impersonation role
// (User.Impersonate); otherwise ErrorImpersonateUserDenied or ErrorAccessDenied. An unknown
// address is ErrorNonExistentMailbox.
//
// Autodiscover: POST /autodiscover/autodiscover.svc (SOAP GetUserSettings of
// http://schemas.microsoft.com/exchange/2010/Autodiscover, WS-Addressing action checked)
// and POST /autodiscover/autodiscover.xml (POX, Outlook's request and 2006a response
// schemas), with the same sign-in as EWS, answering the stand-in's EWS URL (or SetEWSURL's)
// as ExternalEwsUrl / InternalEwsUrl and the EXCH and EXPR EwsUrl; an unknown address is
// InvalidUser (SOAP) or error 500 "The email address can't be found." (POX). On demand:
// RedirectAddress, RedirectURL, RefuseAutodiscover (404), RedirectHTTP (the 302 of the plain
// listener). Options.TLS serves https with a certificate of its own for Options.TLSHosts
// (CertPool trusts it), so that tests can play a domain's autodiscover hosts through an
// HTTP client that dials every host name to the stand-in.
//
// Faults on demand: InvalidateSyncStates (the next SyncFolderItems with an older state gets
// ErrorInvalidSyncStateData), Throttle (ErrorServerBusy faults with BackOffMilliseconds),
// FailNext (drop the connection, or answer 500), DropSubscriptions.
package ewstest
