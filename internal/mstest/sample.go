package mstest

import (
	"fmt"
	"time"
)

// Sample is a ready-made demo tenant (SampleTenant).
type Sample struct {
	Tenant *Tenant
	App    *App
	// TenantID, ClientID and ClientSecret are what an administrator enters in postroom.
	TenantID, ClientID, ClientSecret string
	// Mailbox is the licensed shared mailbox (support@contoso.example) the app may use over
	// Graph (Mail.ReadWrite, Mail.Send) and app-only IMAP/POP/SMTP (FullAccess).
	Mailbox string
	// Agent is a user (agent@contoso.example / AgentPassword) with FullAccess and SendAs on
	// Mailbox, for delegated sign-in (the app's delegated Graph scopes are the .Shared ones
	// that another user's mailbox needs).
	Agent, AgentPassword string
	// MessageIDs are the immutable ids of the sample messages in Mailbox's inbox.
	MessageIDs []string
}

// SampleOptions adjust SampleTenant; the zero value is fine.
type SampleOptions struct {
	// Messages is how many sample customer emails land in the inbox (default 3; -1 none).
	Messages int
	// RedirectURI is registered on the app for delegated sign-in (optional).
	RedirectURI string
	// SecretLifetime is how long the client secret lives (default 180 days).
	SecretLifetime time.Duration
}

// Sample directory ids: fixed, so a demo's settings look the same every time.
const (
	SampleTenantID = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	SampleClientID = "11111111-2222-3333-4444-555555555555"
	SampleDomain   = "contoso.example"
	SampleMailbox  = "support@contoso.example"
	SampleAgent    = "agent@contoso.example"
)

// SampleTenant builds tenant contoso.example (SampleTenantID) with an app "postroom"
// (SampleClientID, a fresh random secret, Mail.ReadWrite, Mail.Send, User.Read.All and the
// IMAP/POP/SMTP AccessAsApp roles, admin-consented, FullAccess on the mailbox), the shared
// mailbox support@contoso.example with a few customer emails, and a user
// agent@contoso.example who may sign in and open the shared mailbox (FullAccess and SendAs
// on it; the delegated scopes Mail.ReadWrite.Shared, Mail.Send.Shared, User.Read and the
// IMAP/POP/SMTP ones consented by the admin).
func (s *Server) SampleTenant(opts SampleOptions) (*Sample, error) {
	if opts.Messages == 0 {
		opts.Messages = 3
	}
	if opts.SecretLifetime <= 0 {
		opts.SecretLifetime = 180 * 24 * time.Hour
	}
	t, err := s.AddTenant(SampleTenantID, SampleDomain, "contoso.onmicrosoft.com")
	if err != nil {
		return nil, fmt.Errorf("sample tenant: %w", err)
	}
	cfg := AppConfig{
		ClientID:    SampleClientID,
		DisplayName: "postroom",
		Roles:       []string{RoleMailReadWrite, RoleMailSend, RoleUserReadAll, RoleIMAPAccessAsApp, RolePOPAccessAsApp, RoleSMTPSendAsApp},
		Scopes: []string{ScopeGraphMailReadWriteShared, ScopeGraphMailSendShared, ScopeGraphUserRead, ScopeIMAP, ScopePOP, ScopeSMTP,
			ScopeOfflineAccess},
		AdminConsent: true,
	}
	if opts.RedirectURI != "" {
		cfg.RedirectURIs = []string{opts.RedirectURI}
	}
	app, err := t.AddApp(cfg)
	if err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	secret := "pst8Q~" + randomToken(26)
	app.AddSecret(secret, s.now().Add(opts.SecretLifetime))
	if _, err := t.AddSharedMailbox(SampleMailbox, "Contoso Support"); err != nil {
		return nil, fmt.Errorf("sample mailbox: %w", err)
	}
	app.GrantFullAccess(SampleMailbox)
	agentPassword := "agent-" + randomToken(9)
	agent, err := t.AddUser(UserConfig{UPN: SampleAgent, DisplayName: "Alex Agent", Password: agentPassword})
	if err != nil {
		return nil, fmt.Errorf("sample agent: %w", err)
	}
	agent.GrantFullAccess(SampleMailbox)
	agent.GrantSendAs(SampleMailbox)
	sm := &Sample{Tenant: t, App: app, TenantID: SampleTenantID, ClientID: SampleClientID, ClientSecret: secret,
		Mailbox: SampleMailbox, Agent: SampleAgent, AgentPassword: agentPassword}
	for i := 0; i < opts.Messages; i++ {
		id, err := s.Deliver(SampleMailbox, "inbox", SampleMessage(i))
		if err != nil {
			return nil, fmt.Errorf("sample message %d: %w", i, err)
		}
		sm.MessageIDs = append(sm.MessageIDs, id)
	}
	return sm, nil
}

// sampleCustomers are the senders and subjects of SampleMessage.
var sampleCustomers = []struct{ name, addr, subject, body string }{
	{"Ana Souza", "ana@example.net", "Order 1234 not delivered", "Hello, my order 1234 was due on Monday and has not arrived. Can you check?"},
	{"Björn Larsson", "bjorn@example.org", "Wrong size in my parcel", "Hi, I ordered a medium jacket and got a small one. How do I exchange it?"},
	{"Chen Wei", "chen.wei@example.com", "Invoice copy, please", "Good morning, could you send me a copy of invoice 2026-0042? Thanks."},
	{"Dana Okafor", "dana@example.net", "Cancel my subscription", "Please cancel my subscription at the end of this month."},
}

// SampleMessage returns sample customer email number i (RFC 5322, CRLF line ends, a
// unique Message-ID for each i).
func SampleMessage(i int) []byte {
	c := sampleCustomers[i%len(sampleCustomers)]
	date := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return fmt.Appendf(nil, "From: %s <%s>\r\nTo: Contoso Support <%s>\r\nSubject: %s\r\n"+
		"Date: %s\r\nMessage-ID: <sample-%d@%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
		mimeWord(c.name), c.addr, SampleMailbox, c.subject, date.Format(time.RFC1123Z), i, hostOf(c.addr), c.body)
}
