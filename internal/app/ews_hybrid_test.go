package app_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestEWSHybridModernAuth: an app-only OAuth EWS mailbox on an Exchange Server on premises
// gets its tokens from the Microsoft stand-in for the server's own URL (registered as an
// SPN, hybrid modern authentication), not for outlook.office365.com; the EWS stand-in,
// checking signature and audience as Exchange Server does, accepts them and the inbox is
// ingested.
func TestEWSHybridModernAuth(t *testing.T) {
	const onPrem = "https://mail.contoso.local"
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	ms.AddServicePrincipalName(onPrem)
	ewsApp, err := sample.Tenant.AddApp(mstest.AppConfig{DisplayName: "postroom EWS", Roles: []string{"full_access_as_app"}, AdminConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	ewsApp.AddSecret("ews-app-secret", time.Now().Add(24*time.Hour))

	s, err := ewstest.Start(ewstest.Options{TLS: true, TLSHosts: []string{"mail.contoso.local"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(ewstest.User{Login: ewsApp.ClientID(), Impersonate: true}) // full_access_as_app: any mailbox, by impersonation
	s.AddMailbox(ewsBox)
	var mu sync.Mutex
	var audiences []string
	s.TrustBearer(func(tok string) (string, bool) {
		c, err := ms.ParseToken(tok)
		if err != nil {
			return "", false
		}
		mu.Lock()
		audiences = append(audiences, c.Audience)
		mu.Unlock()
		return c.AppID, c.Audience == onPrem && slices.Contains(c.Roles, "full_access_as_app")
	})
	if _, err := s.Deliver(ewsBox, ewsMessage(1)); err != nil {
		t.Fatal(err)
	}
	hc := s.Client(func(host, _ string) string {
		if host != "mail.contoso.local" {
			return ""
		}
		return s.TLSAddr()
	})
	h := startAppEdit(t, t.TempDir(), "sqlite", "", nil, nil, nil, func(c *app.Config) { c.HTTPClient = hc })
	ctx := context.Background()
	secret := vault.NewSecret("ews-app-secret")
	m, err := h.app.Mailboxes.Create(ctx, "admin", mailbox.Input{Name: "exchange_hma", Direction: store.Inbound, Protocol: mailbox.EWS,
		Address: ewsBox, Host: "mail.contoso.local", Port: 443, Security: mailbox.SecurityTLS, Auth: store.AuthOAuthApp,
		OAuth:        store.OAuth{Cloud: "custom", AuthorityURL: ms.LoginURL(), Tenant: sample.TenantID, ClientID: ewsApp.ClientID()},
		ClientSecret: &secret, PollInterval: 10 * time.Second})
	if err != nil {
		t.Fatalf("create the OAuth EWS mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message stored", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 1, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	mu.Lock()
	defer mu.Unlock()
	if len(audiences) == 0 {
		t.Fatal("no bearer token reached the EWS stand-in")
	}
	for _, a := range audiences {
		if a != onPrem {
			t.Errorf("a token for %s reached Exchange Server, want only %s", a, onPrem)
		}
	}
}
