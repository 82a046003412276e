package web

// DemoMicrosoft is the local Microsoft 365 stand-in of `postroom demo` (internal/mstest):
// its sample tenant and app registration. The Mailboxes, mailbox form and migration pages
// show it to administrators, so that a newcomer can add a Microsoft 365 mailbox or try
// "Migrate to OAuth 2.0" against it. Its client secret is a throwaway of the stand-in on
// loopback, never a real one, which is why it may be shown.
type DemoMicrosoft struct {
	LoginURL     string // authority of the stand-in (cloud "Another authority URL")
	GraphURL     string
	TenantID     string
	ClientID     string
	ClientSecret string
	Mailbox      string // the sample shared mailbox
}
