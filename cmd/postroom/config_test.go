package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

func TestMailboxFromURLOAuth(t *testing.T) {
	const (
		tenant   = "contoso.onmicrosoft.com"
		clientID = "11111111-2222-3333-4444-555555555555"
		ids      = "tenant=" + tenant + "&client_id=" + clientID
	)
	tests := []struct {
		raw     string
		want    store.Mailbox
		wantErr string
	}{
		{raw: "graph://support@contoso.com?" + ids + "&secret_expires=2026-12-31",
			want: store.Mailbox{Direction: store.Inbound, Protocol: "graph", Address: "support@contoso.com", Login: "support@contoso.com",
				Folder: "Inbox", Auth: store.AuthOAuthApp,
				OAuth: store.OAuth{Tenant: tenant, ClientID: clientID, SecretExpiresAt: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}}},
		{raw: "graph://support@contoso.com/Support%20Queue?" + ids + "&cloud=usgov&graph_url=https://graph.microsoft.us&poll=30s",
			want: store.Mailbox{Direction: store.Inbound, Protocol: "graph", Address: "support@contoso.com", Login: "support@contoso.com",
				Folder: "Support Queue", Auth: store.AuthOAuthApp, GraphURL: "https://graph.microsoft.us", PollInterval: 30 * time.Second,
				OAuth: store.OAuth{Tenant: tenant, ClientID: clientID, Cloud: "usgov"}}},
		{raw: "graph://sales@contoso.com?direction=outbound&auth=oauth_delegated&client_id=" + clientID,
			want: store.Mailbox{Direction: store.Outbound, Protocol: "graph", Address: "sales@contoso.com", Login: "sales@contoso.com",
				IsDefault: true, Auth: store.AuthOAuthDelegated, OAuth: store.OAuth{ClientID: clientID}}},
		{raw: "imaps://support%40contoso.com@outlook.office365.com/INBOX?auth=oauth_app&" + ids,
			want: store.Mailbox{Direction: store.Inbound, Protocol: "imap", Security: "tls", Host: "outlook.office365.com", Port: 993,
				Login: "support@contoso.com", Address: "support@contoso.com", Folder: "INBOX", Auth: store.AuthOAuthApp,
				OAuth: store.OAuth{Tenant: tenant, ClientID: clientID}}},
		{raw: "smtp://support%40contoso.com@smtp.office365.com?auth=oauth_ropc&" + ids + "&scopes=https://outlook.office.com/SMTP.Send",
			want: store.Mailbox{Direction: store.Outbound, Protocol: "smtp", Security: "starttls", Host: "smtp.office365.com", Port: 587,
				Login: "support@contoso.com", Address: "support@contoso.com", IsDefault: true, Auth: store.AuthOAuthROPC,
				OAuth: store.OAuth{Tenant: tenant, ClientID: clientID, Scopes: "https://outlook.office.com/SMTP.Send"}}},
		{raw: "graph://contoso.com?" + ids, wantErr: "graph://support@contoso.com"},
		{raw: "graph://support@contoso.com:443?" + ids, wantErr: "no port"},
		{raw: "graph://support@contoso.com?direction=sideways&" + ids, wantErr: "direction="},
		{raw: "graph://support@contoso.com/Inbox?direction=outbound&" + ids, wantErr: "no folder"},
		{raw: "graph://support@contoso.com?" + ids + "&secret_expires=31.12.2026", wantErr: "2026-12-31"},
		{raw: "imaps://support%40contoso.com@outlook.office365.com/?" + ids + "&client_secret=x", wantErr: `parameter "client_secret"`},
		{raw: "imaps://support%40contoso.com@outlook.office365.com/?" + ids + "&graph_url=https://graph.microsoft.com", wantErr: `parameter "graph_url"`},
		{raw: "imaps://bob@mail.example.com/?adress=a@b.c", wantErr: `parameter "adress"`},
		{raw: "ews://bob@mail.example.com/", wantErr: "or graph"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := mailboxFromURL("x", tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "client_secret=x") {
					t.Errorf("the error repeats a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name, tt.want.MaxSizeMB, tt.want.Enabled = "x", 5, true
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestMailboxURLsPassTheRules: what the OAuth URLs give is accepted by the mailbox rules
// (through app.EnsureMailbox, as serve's bootstrap does), with Exchange Online's ports.
func TestMailboxURLsPassTheRules(t *testing.T) {
	ctx := context.Background()
	a, err := app.Open(ctx, app.Config{DataDir: t.TempDir(), Getenv: noEnv, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const ids = "tenant=contoso.onmicrosoft.com&client_id=11111111-2222-3333-4444-555555555555"
	for _, tc := range []struct {
		name, raw, password string
		check               func(m store.Mailbox) bool
	}{
		{"ropc", "imaps://support%40contoso.com@outlook.office365.com/INBOX?auth=oauth_ropc&" + ids, "user-pw",
			func(m store.Mailbox) bool {
				return m.Auth == store.AuthOAuthROPC && m.PasswordSet && m.Port == 993 && m.OAuth.Cloud == "global"
			}},
		{"delegated", "graph://support@contoso.com?auth=oauth_delegated&" + ids, "",
			func(m store.Mailbox) bool {
				return m.Protocol == "graph" && m.Folder == "Inbox" && m.AfterAction == store.AfterMarkRead && m.OAuth.Provider == "microsoft"
			}},
		{"sender", "smtp://support%40contoso.com@smtp.office365.com?auth=oauth_ropc&" + ids, "user-pw",
			func(m store.Mailbox) bool {
				return m.Direction == store.Outbound && m.Port == 587 && m.Security == "starttls"
			}},
	} {
		m, err := mailboxFromURL(tc.name, tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := a.EnsureMailbox(ctx, "system", app.MailboxInput{Mailbox: m, Password: vault.NewSecret(tc.password)})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.check(got) || !got.Enabled {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
}

func TestMailboxOAuthSecrets(t *testing.T) {
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"POSTROOM_INBOUND_CLIENT_SECRET":            "qWe8Q~in",
		"POSTROOM_OUTBOUND_CLIENT_CERTIFICATE_FILE": path,
	}
	getenv := func(k string) string { return env[k] }
	sec, cert, err := mailboxOAuthSecrets(getenv, envInboundURL)
	if err != nil || sec.Reveal() != "qWe8Q~in" || !cert.IsZero() {
		t.Errorf("inbound: secret %v certificate set %v (%v)", sec.Reveal() == "qWe8Q~in", !cert.IsZero(), err)
	}
	sec, cert, err = mailboxOAuthSecrets(getenv, envOutboundURL)
	if err != nil || !sec.IsZero() || cert.Reveal() != strings.TrimSuffix(pem, "\n") {
		t.Errorf("outbound: secret set %v, certificate from the file %v (%v)", !sec.IsZero(), cert.Reveal() == strings.TrimSuffix(pem, "\n"), err)
	}
	env["POSTROOM_INBOUND_CLIENT_CERTIFICATE_FILE"] = filepath.Join(t.TempDir(), "missing.pem")
	if _, _, err := mailboxOAuthSecrets(getenv, envInboundURL); err == nil || !strings.Contains(err.Error(), "POSTROOM_INBOUND_CLIENT_CERTIFICATE_FILE") {
		t.Errorf("missing certificate file: %v", err)
	}
}
