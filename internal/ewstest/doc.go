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
// Faults on demand: InvalidateSyncStates (the next SyncFolderItems with an older state gets
// ErrorInvalidSyncStateData), Throttle (ErrorServerBusy faults with BackOffMilliseconds),
// FailNext (drop the connection, or answer 500), DropSubscriptions.
package ewstest
