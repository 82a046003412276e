// Package googletest is a local stand-in for Google Workspace: the OAuth 2.0 token
// endpoint of accounts.google.com (the JWT bearer grant of service accounts with
// domain-wide delegation, RFC 7523, and the refresh token grant of "Sign in with Google"),
// an RFC 7662 introspection endpoint for Dovecot's oauth2 passdb, and the subset of the
// Gmail API v1 postroom uses (users.getProfile, users.history.list, users.messages.list,
// users.messages.get format=raw, users.messages.modify, users.messages.send). Tests,
// `postroom demo` and `postroom bench gmail` use it; production code never imports it.
//
// A Server listens on 127.0.0.1 on one port: /token (TokenURL), /o/oauth2/auth
// (AuthorizeURL: "Sign in with Google" for a browser already signed in as login_hint, who
// consents at once; PKCE S256 required; AddClient and AddRedirectURI register the client),
// /introspect (IntrospectURL) and /gmail/v1/users/{userId}/... (GmailURL). The
// authorization_code grant answers with a refresh token and an unsigned id_token naming the
// user's email.
//
// The directory is built by test code: AddUser (a Workspace user, UserConfig says whether
// it is suspended or has IMAP turned off), AddServiceAccount (a service account and its
// key, ServiceAccount.KeyJSON in the shape Google's console downloads),
// ServiceAccount.Delegate (the admin console's domain-wide delegation: the client id and
// its scopes), AddClient and GrantRefresh (an OAuth client and a user's refresh token).
//
// The token endpoint checks an assertion as Google does: RS256 signature by the account's
// key (else invalid_grant "Invalid JWT Signature."), iss = client_email, aud = the token
// URI, exp no later than iat + 1 hour and both within ClockSkew of the server's clock
// (else invalid_grant "Invalid JWT: Token must be a short-lived token ..."), sub a user of
// the domain (else invalid_grant "Invalid email or User ID"), and the requested scopes
// within those delegated to the client id (else 401 unauthorized_client "Client is
// unauthorized to retrieve access tokens using this method, or client not authorized for
// any of the scopes requested."). Access tokens are opaque ("ya29." and random text) and
// live AccessTokenLifetime.
//
// Gmail errors use Google's JSON shape {"error":{"code","message","errors":[{"message",
// "domain","reason"}],"status"}}: 401 authError, 404 notFound (also for a startHistoryId
// older than the history kept, ExpireHistory), 429 rateLimitExceeded (RateLimitNext), 400
// failedPrecondition "Mail service not enabled" for a suspended user.
//
// Deliberate simplifications: one domain; labels are plain names (INBOX, UNREAD, SENT, and
// any other string); messages.list takes labelIds and pageToken but no q; a message sent
// with messages.send is kept in the sender's mailbox with SENT and not delivered to anyone;
// history records only messageAdded and label changes; a suspended user's token grant
// still succeeds (Google's answer there is unverified), the user is refused at IMAP
// (introspection) and by the Gmail API; an assertion without sub (the service account
// itself) is refused with unauthorized_client, where Google gives a token Gmail then
// refuses.
package googletest
