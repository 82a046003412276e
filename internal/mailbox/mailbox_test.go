package mailbox_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/credential"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

const secret = "s3cret-Horse-Battery"

func newService(t *testing.T) (*mailbox.Service, store.Store, *credential.Passwords) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureDefaultQueue(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := vault.New(make([]byte, 32))
	pw := credential.NewPasswords(st, v)
	return mailbox.NewService(st, pw, nil), st, pw
}

func pw(s string) *vault.Secret {
	v := vault.NewSecret(s)
	return &v
}

func inbound(name string) mailbox.Input {
	return mailbox.Input{Name: name, Direction: store.Inbound, Protocol: mailbox.IMAP, Host: "imap.example.com",
		Security: mailbox.SecurityTLS, Login: "support@example.com", Password: pw(secret)}
}

func outboundInput(name, addr string) mailbox.Input {
	return mailbox.Input{Name: name, Direction: store.Outbound, Protocol: mailbox.SMTP, Host: "smtp.example.com",
		Security: mailbox.SecurityStartTLS, Login: addr, Password: pw(secret), Address: addr}
}

func fieldErr(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *mailbox.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	return ve.Fields
}

// TestValidation: each rule of the form refuses with the field named; the edges pass.
func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*mailbox.Input)
		field string // "" = accepted
	}{
		{"41 characters", func(in *mailbox.Input) { in.Name = strings.Repeat("a", 41) }, "name"},
		{"40 characters", func(in *mailbox.Input) { in.Name = strings.Repeat("b", 40) }, ""},
		{"space", func(in *mailbox.Input) { in.Name = "a b" }, "name"},
		{"hash", func(in *mailbox.Input) { in.Name = "bad#name" }, "name"},
		{"allowed characters", func(in *mailbox.Input) { in.Name = "Support_EU@shop.1" }, ""},
		{"max size 4", func(in *mailbox.Input) { in.MaxSizeMB = 4 }, "max_size_mb"},
		{"max size 21", func(in *mailbox.Input) { in.MaxSizeMB = 21 }, "max_size_mb"},
		{"max size 5", func(in *mailbox.Input) { in.MaxSizeMB = 5 }, ""},
		{"max size 20", func(in *mailbox.Input) { in.MaxSizeMB = 20 }, ""},
		{"plain text off loopback", func(in *mailbox.Input) { in.Security = mailbox.SecurityNone }, "security"},
		{"plain text on loopback", func(in *mailbox.Input) { in.Security, in.Host = mailbox.SecurityNone, "127.0.0.1" }, ""},
		{"no host", func(in *mailbox.Input) { in.Host = "" }, "host"},
		{"host with scheme", func(in *mailbox.Input) { in.Host = "imaps://imap.example.com" }, "host"},
		{"port out of range", func(in *mailbox.Input) { in.Port = 70000 }, "port"},
		{"no login", func(in *mailbox.Input) { in.Login = "" }, "login"},
		{"no password", func(in *mailbox.Input) { in.Password = nil }, "password"},
		{"bad address", func(in *mailbox.Input) { in.Address = "support at example" }, "address"},
		{"move without folder", func(in *mailbox.Input) { in.AfterAction = store.AfterMove }, "move_folder"},
		{"unknown action", func(in *mailbox.Input) { in.AfterAction = "shred" }, "after_action"},
		{"pop3 with a folder", func(in *mailbox.Input) { in.Protocol, in.Folder = mailbox.POP3, "INBOX" }, "folder"},
		{"pop3 keep", func(in *mailbox.Input) { in.Protocol, in.AfterAction = mailbox.POP3, store.AfterKeep }, ""},
		{"ews", func(in *mailbox.Input) { in.Protocol, in.Folder = mailbox.EWS, "" }, ""},
		{"ews with starttls", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.Security = mailbox.EWS, "", mailbox.SecurityStartTLS
		}, "security"},
		{"ews without host: autodiscover", func(in *mailbox.Input) { in.Protocol, in.Folder, in.Host = mailbox.EWS, "", "" }, ""},
		{"ews autodiscover over plain http", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.Host, in.Security = mailbox.EWS, "", "", mailbox.SecurityNone
		}, "security"},
		{"ews autodiscover host", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.Host, in.AutodiscoverHost = mailbox.EWS, "", "", "mail.hoster.net:8443"
		}, ""},
		{"ews autodiscover host and a host", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.AutodiscoverHost = mailbox.EWS, "", "mail.hoster.net"
		}, "autodiscover_host"},
		{"ews autodiscover host with a scheme", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.Host, in.AutodiscoverHost = mailbox.EWS, "", "", "https://mail.hoster.net/autodiscover"
		}, "autodiscover_host"},
		{"ews autodiscover host port out of range", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.Host, in.AutodiscoverHost = mailbox.EWS, "", "", "mail.hoster.net:0"
		}, "autodiscover_host"},
		{"imap with an autodiscover host", func(in *mailbox.Input) { in.AutodiscoverHost = "mail.hoster.net" }, "autodiscover_host"},
		{"ews other folder", func(in *mailbox.Input) { in.Protocol, in.Folder = mailbox.EWS, "Support" }, "folder"},
		{"ews move to a named folder", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.AfterAction, in.MoveFolder = mailbox.EWS, "", store.AfterMove, "Done"
		}, "move_folder"},
		{"ews move to deleted items", func(in *mailbox.Input) {
			in.Protocol, in.Folder, in.AfterAction, in.MoveFolder = mailbox.EWS, "", store.AfterMove, "deleteditems"
		}, ""},
		{"graph without address", graphApp(func(in *mailbox.Input) { in.Address = "" }), "address"},
		{"graph with a password", func(in *mailbox.Input) { in.Protocol, in.Auth = mailbox.Graph, store.AuthPassword }, "auth"},
		{"graph app", graphApp(nil), ""},
		{"graph app without tenant", graphApp(func(in *mailbox.Input) { in.OAuth.Tenant = "" }), "oauth_tenant"},
		{"graph app on common", graphApp(func(in *mailbox.Input) { in.OAuth.Tenant = "common" }), "oauth_tenant"},
		{"client id not a GUID", graphApp(func(in *mailbox.Input) { in.OAuth.ClientID = "postroom" }), "oauth_client_id"},
		{"app without secret", graphApp(func(in *mailbox.Input) { in.ClientSecret = nil }), "client_secret"},
		{"certificate without key", graphApp(func(in *mailbox.Input) {
			in.ClientSecret = nil
			c := vault.NewSecret("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
			in.Certificate = &c
		}), "client_certificate"},
		{"custom cloud without authority", graphApp(func(in *mailbox.Input) { in.OAuth.Cloud = "custom" }), "oauth_authority_url"},
		{"custom cloud over plain http", graphApp(func(in *mailbox.Input) {
			in.OAuth.Cloud, in.OAuth.AuthorityURL = "custom", "http://login.example.com"
		}), "oauth_authority_url"},
		{"custom cloud on loopback", graphApp(func(in *mailbox.Input) {
			in.OAuth.Cloud, in.OAuth.AuthorityURL, in.GraphURL = "custom", "http://127.0.0.1:9443", "http://127.0.0.1:9444"
		}), ""},
		{"unknown cloud", graphApp(func(in *mailbox.Input) { in.OAuth.Cloud = "mars" }), "oauth_cloud"},
		{"ropc without password", func(in *mailbox.Input) {
			in.Auth, in.Password = store.AuthOAuthROPC, nil
			in.OAuth = store.OAuth{Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}
		}, "password"},
		{"custom provider without token URL", func(in *mailbox.Input) {
			in.Auth, in.OAuth = store.AuthOAuthDelegated, store.OAuth{Provider: "custom", ClientID: "postroom"}
		}, "oauth_token_url"},
		{"unknown method", func(in *mailbox.Input) { in.Auth = "kerberos" }, "auth"},
		{"poll too fast", func(in *mailbox.Input) { in.PollInterval = 1e9 }, "poll_interval_seconds"},
		{"bad direction", func(in *mailbox.Input) { in.Direction = "sideways" }, "direction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _, _ := newService(t)
			in := inbound("box")
			tt.edit(&in)
			m, err := svc.Create(context.Background(), "admin", in)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m.Enabled {
					t.Error("a new mailbox is enabled; it must start disabled")
				}
				return
			}
			if f := fieldErr(t, err); f[tt.field] == "" {
				t.Errorf("errors %v do not name %q", f, tt.field)
			}
		})
	}
	t.Run("outbound needs an address", func(t *testing.T) {
		svc, _, _ := newService(t)
		in := outboundInput("out", "")
		in.Login = ""
		in.Password = nil
		if f := fieldErr(t, func() error { _, err := svc.Create(context.Background(), "admin", in); return err }()); f["address"] == "" {
			t.Errorf("errors %v", f)
		}
	})
	t.Run("unique name", func(t *testing.T) {
		svc, _, _ := newService(t)
		ctx := context.Background()
		if _, err := svc.Create(ctx, "admin", inbound("dup")); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Create(ctx, "admin", inbound("dup"))
		if f := fieldErr(t, err); !strings.Contains(f["name"], "already exists") {
			t.Errorf("errors %v", f)
		}
	})
}

// TestLifecycle: created disabled; Enable assigns to the Default queue; no delete while
// enabled; a disabled queue disables its mailboxes; unassigned is disabled; delete works.
func TestLifecycle(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := context.Background()
	m, err := svc.Create(ctx, "admin", inbound("support"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Enabled || m.QueueID != 0 {
		t.Fatalf("new mailbox: enabled %t queue %d", m.Enabled, m.QueueID)
	}
	if err := svc.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	m, _ = st.Mailbox(ctx, m.ID)
	def, _ := st.EnsureDefaultQueue(ctx)
	if !m.Enabled || m.QueueID != def.ID {
		t.Fatalf("after Enable: enabled %t queue %d, want the Default queue %d", m.Enabled, m.QueueID, def.ID)
	}
	if err := svc.Delete(ctx, "admin", m.ID); !errors.Is(err, mailbox.ErrEnabled) {
		t.Fatalf("delete while enabled: %v", err)
	}
	if err := svc.SetQueueEnabled(ctx, "admin", def.ID, false); err != nil {
		t.Fatal(err)
	}
	if m, _ = st.Mailbox(ctx, m.ID); m.Enabled {
		t.Fatal("the queue was disabled but its mailbox is still enabled")
	}
	if err := svc.Enable(ctx, "admin", m.ID); !errors.Is(err, mailbox.ErrQueueDisabled) {
		t.Fatalf("enable in a disabled queue: %v", err)
	}
	if err := svc.SetQueueEnabled(ctx, "admin", def.ID, true); err != nil {
		t.Fatal(err)
	}
	if m, _ = st.Mailbox(ctx, m.ID); !m.Enabled {
		t.Fatal("the queue was enabled again but its mailbox stayed disabled")
	}
	sales, err := svc.CreateQueue(ctx, "admin", "Sales")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Assign(ctx, "admin", m.ID, sales.ID); err != nil {
		t.Fatal(err)
	}
	if m, _ = st.Mailbox(ctx, m.ID); !m.Enabled || m.QueueID != sales.ID {
		t.Fatalf("assigned to Sales: enabled %t queue %d", m.Enabled, m.QueueID)
	}
	if err := svc.Assign(ctx, "admin", m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if m, _ = st.Mailbox(ctx, m.ID); m.Enabled {
		t.Fatal("unassigned but still enabled")
	}
	if err := svc.Delete(ctx, "admin", m.ID); err != nil {
		t.Fatalf("delete a disabled mailbox: %v", err)
	}
	if _, err := st.Mailbox(ctx, m.ID); !store.IsNotFound(err) {
		t.Fatalf("deleted mailbox still found: %v", err)
	}
	if _, err := svc.Create(ctx, "admin", inbound("support")); err != nil {
		t.Fatalf("the name of a deleted mailbox is not free again: %v", err)
	}
}

// TestDefaultOutbound: the first outbound mailbox is the default; the default cannot be
// deleted while there are others; making another the default frees it.
func TestDefaultOutbound(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := context.Background()
	first, err := svc.Create(ctx, "admin", outboundInput("out1", "support@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := svc.Create(ctx, "admin", outboundInput("out2", "billing@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if !first.IsDefault || second.IsDefault {
		t.Fatalf("defaults: first %t second %t", first.IsDefault, second.IsDefault)
	}
	if err := svc.Delete(ctx, "admin", first.ID); !errors.Is(err, mailbox.ErrDefaultOutbound) {
		t.Fatalf("delete the default: %v", err)
	}
	in := mailbox.FromMailbox(second)
	in.IsDefault = true
	if _, err := svc.Update(ctx, "admin", second.ID, in); err != nil {
		t.Fatal(err)
	}
	if first, _ = st.Mailbox(ctx, first.ID); first.IsDefault {
		t.Fatal("two default outbound mailboxes")
	}
	if err := svc.Delete(ctx, "admin", first.ID); err != nil {
		t.Fatalf("delete the former default: %v", err)
	}
}

// TestPasswordWriteOnly: an update without a password keeps it; copy takes everything but
// the name and the password; audit events never hold the password.
func TestPasswordWriteOnly(t *testing.T) {
	svc, st, pws := newService(t)
	ctx := context.Background()
	m, err := svc.Create(ctx, "admin", inbound("support"))
	if err != nil {
		t.Fatal(err)
	}
	// An update without password that keeps the server keeps the stored one (a new server
	// needs it again: TestSecretStaysWithItsDestination).
	in := mailbox.FromMailbox(m)
	in.Folder = "Support"
	m, err = svc.Update(ctx, "admin", m.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pws.Get(ctx, m.ID); got.Reveal() != secret || !m.PasswordSet || m.Folder != "Support" {
		t.Fatalf("after an update without password: password kept %t, set %t, folder %s", got.Reveal() == secret, m.PasswordSet, m.Folder)
	}
	in.Name = "renamed"
	if _, err := svc.Update(ctx, "admin", m.ID, in); fieldErr(t, err)["name"] == "" {
		t.Error("the name changed")
	}
	cp, err := svc.Copy(ctx, "admin", m.ID, "support.copy")
	if err != nil {
		t.Fatal(err)
	}
	if cp.PasswordSet || cp.Enabled || cp.Host != m.Host || cp.Login != m.Login || cp.Folder != m.Folder || cp.Name != "support.copy" {
		t.Errorf("copy: %+v", cp)
	}
	events, _ := st.ListAudit(ctx, 100)
	if len(events) < 3 {
		t.Fatalf("%d audit events, want create, update and copy", len(events))
	}
	for _, e := range events {
		if strings.Contains(e.Old+e.New, secret) {
			t.Errorf("audit %s holds the password", e.Action)
		}
	}
	if !strings.Contains(events[len(events)-1].New, "password=***") {
		t.Errorf("create event does not say a password is set: %q", events[len(events)-1].New)
	}
}

func TestFromAddresses(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := context.Background()
	out, err := svc.Create(ctx, "admin", outboundInput("out", "support@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := svc.Create(ctx, "admin", inbound("in"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddFromAddress(ctx, "admin", out.ID, "not an address", "Sales"); fieldErr(t, err)["address"] == "" {
		t.Error("bad address accepted")
	}
	if _, err := svc.AddFromAddress(ctx, "admin", out.ID, "sales@example.com", " "); fieldErr(t, err)["display_name"] == "" {
		t.Error("empty display name accepted")
	}
	if _, err := svc.AddFromAddress(ctx, "admin", in.ID, "sales@example.com", "Sales"); err == nil {
		t.Error("From address added to an inbound mailbox")
	}
	f, err := svc.AddFromAddress(ctx, "admin", out.ID, "sales@example.com", "Example Sales")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddFromAddress(ctx, "admin", out.ID, "Sales@Example.com", "Again"); fieldErr(t, err)["address"] == "" {
		t.Error("duplicate address accepted")
	}
	if err := svc.DeleteFromAddress(ctx, "admin", f.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := st.ListFromAddresses(ctx, out.ID); len(list) != 0 {
		t.Errorf("%d From addresses left", len(list))
	}
}

// TestConnectionTest: against real Dovecot the right password passes every step; a wrong
// password, a closed port and a missing folder each fail with their own advice.
func TestConnectionTest(t *testing.T) {
	svc, _, _ := newService(t)
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "support@example.test", "right-pw")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(d.CertPEM)
	svc.RootCAs = roots
	host, p, _ := net.SplitHostPort(d.IMAPSAddr)
	port, _ := strconv.Atoi(p)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := free.Addr().(*net.TCPAddr).Port
	free.Close()
	ctx := context.Background()
	m, err := svc.Create(ctx, "admin", mailbox.Input{Name: "support", Direction: store.Inbound, Protocol: mailbox.IMAP,
		Host: host, Port: port, Security: mailbox.SecurityTLS, Login: "support@example.test", Password: pw("right-pw")})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := svc.Test(ctx, m.ID)
	if err != nil || !rep.OK {
		t.Fatalf("right password: %v %+v", err, rep)
	}
	tests := []struct {
		name   string
		edit   func(*mailbox.Input)
		advice string
	}{
		{"wrong password", func(in *mailbox.Input) { in.Password = pw("wrong-pw") }, "refused the login name or password"},
		{"closed port", func(in *mailbox.Input) { in.Port, in.Password = closed, pw("right-pw") }, "nothing accepts connections"},
		{"missing folder", func(in *mailbox.Input) { in.Folder = "Support" }, "the folder Support does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mailbox.FromMailbox(m)
			tt.edit(&in)
			rep, err := svc.TestInput(ctx, m.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			last := rep.Steps[len(rep.Steps)-1]
			if rep.OK || last.OK || !strings.Contains(last.Advice, tt.advice) {
				t.Errorf("report %+v; want the last step failed with advice containing %q", rep, tt.advice)
			}
		})
	}
}

// graphApp returns an edit that makes a Graph mailbox signing in as an app with a secret,
// then applies more.
func graphApp(more func(*mailbox.Input)) func(*mailbox.Input) {
	return func(in *mailbox.Input) {
		secret := vault.NewSecret("qWe8Q~secret")
		in.Protocol, in.Auth, in.Host, in.Port, in.Security, in.Login, in.Password = mailbox.Graph, store.AuthOAuthApp, "", 0, "", "", nil
		in.Address = "support@contoso.example"
		in.OAuth = store.OAuth{Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "11111111-2222-3333-4444-555555555555"}
		in.ClientSecret = &secret
		if more != nil {
			more(in)
		}
	}
}

// TestOAuthDefaults: an OAuth mailbox of Microsoft without a host gets Exchange Online's
// hosts and ports; a Graph mailbox gets the Inbox; secrets are stored but never returned,
// and the audit log shows them masked.
func TestOAuthDefaults(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := context.Background()
	in := inbound("exo")
	in.Host, in.Port, in.Security, in.Password = "", 0, "", nil
	in.Auth = store.AuthOAuthApp
	in.OAuth = store.OAuth{Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}
	secret := vault.NewSecret("qWe8Q~very-secret")
	in.ClientSecret = &secret
	m, err := svc.Create(ctx, "admin", in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if m.Host != "outlook.office365.com" || m.Port != 993 || m.Security != mailbox.SecurityTLS {
		t.Errorf("IMAP app mailbox: %s:%d %s, want outlook.office365.com:993 tls", m.Host, m.Port, m.Security)
	}
	if !m.ClientSecretSet || m.OAuth.Provider != "microsoft" || m.OAuth.Cloud != "global" {
		t.Errorf("mailbox %+v: want the client secret stored, provider microsoft, cloud global", m)
	}
	g, err := svc.Create(ctx, "admin", func() mailbox.Input { x := inbound("graph"); graphApp(nil)(&x); return x }())
	if err != nil {
		t.Fatalf("Create graph: %v", err)
	}
	if g.Folder != "Inbox" || g.Host != "" || g.AfterAction != store.AfterMarkRead || g.Login != g.Address {
		t.Errorf("graph mailbox: folder %q host %q after %q login %q, want Inbox, no host, mark_read, login = address", g.Folder, g.Host, g.AfterAction, g.Login)
	}
	events, err := st.ListAudit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if strings.Contains(e.New, "very-secret") || strings.Contains(e.New, "qWe8Q") {
			t.Errorf("audit event %q shows a secret", e.New)
		}
	}
}

func TestSecretExpiry(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m := store.Mailbox{Auth: store.AuthOAuthApp}
	for _, c := range []struct {
		at            time.Time
		warn, expired bool
		days          int
	}{
		{now.Add(15 * 24 * time.Hour), false, false, 15},
		{now.Add(14 * 24 * time.Hour), true, false, 14},
		{now.Add(36 * time.Hour), true, false, 1},
		{now.Add(-time.Hour), false, true, -1},
	} {
		m.OAuth.SecretExpiresAt = c.at
		e := mailbox.SecretExpiry(m, now)
		if e.Warn != c.warn || e.Expired != c.expired || e.DaysLeft != c.days {
			t.Errorf("expiry at %v: %+v, want warn %v expired %v days %d", c.at, e, c.warn, c.expired, c.days)
		}
	}
	if e := mailbox.SecretExpiry(store.Mailbox{Auth: store.AuthPassword, OAuth: store.OAuth{SecretExpiresAt: now}}, now); e.Warn || e.Expired {
		t.Errorf("a password mailbox warns of a secret expiry: %+v", e)
	}
}

func TestSignInExpiry(t *testing.T) {
	used := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	m := store.Mailbox{Auth: store.AuthOAuthDelegated, RefreshTokenSet: true, RefreshTokenAt: used}
	if e := mailbox.SignInExpiry(m, used.Add(70*24*time.Hour)); e.Warn || e.Expired || e.DaysLeft != 20 {
		t.Errorf("70 days unused: %+v, want 20 days left, no warning", e)
	}
	if e := mailbox.SignInExpiry(m, used.Add(80*24*time.Hour)); !e.Warn || e.DaysLeft != 10 {
		t.Errorf("80 days unused: %+v, want a warning, 10 days left", e)
	}
	if e := mailbox.SignInExpiry(m, used.Add(91*24*time.Hour)); !e.Expired {
		t.Errorf("91 days unused: %+v, want lapsed", e)
	}
	m.Auth = store.AuthOAuthApp
	if e := mailbox.SignInExpiry(m, used.Add(91*24*time.Hour)); !e.At.IsZero() {
		t.Errorf("an app sign-in has no refresh token to lapse: %+v", e)
	}
}

// TestEWSURL: the EWS endpoint is made of host, port and security.
func TestEWSURL(t *testing.T) {
	for _, tt := range []struct {
		m    store.Mailbox
		want string
	}{
		{store.Mailbox{Host: "mail.contoso.com", Port: 443, Security: mailbox.SecurityTLS}, "https://mail.contoso.com/EWS/Exchange.asmx"},
		{store.Mailbox{Host: "mail.contoso.com", Port: 8443, Security: mailbox.SecurityTLS}, "https://mail.contoso.com:8443/EWS/Exchange.asmx"},
		{store.Mailbox{Host: "127.0.0.1", Port: 9000, Security: mailbox.SecurityNone}, "http://127.0.0.1:9000/EWS/Exchange.asmx"},
		{store.Mailbox{Port: 443, Security: mailbox.SecurityTLS}, ""}, // autodiscover finds it
	} {
		if got := mailbox.EWSURL(tt.m); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.m, got, tt.want)
		}
	}
}
