package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestEWSAutodiscoverIngestAndReply: EWS mailboxes saved without a host find their server
// by autodiscover from the address (the stand-in plays contoso.local's autodiscover and
// mail hosts over TLS; a test-only HTTP client sends those names to it on loopback): the
// connection test shows the URL found, the inbox is ingested once, and a reply leaves
// through the outbound mailbox found the same way.
func TestEWSAutodiscoverIngestAndReply(t *testing.T) {
	s, err := ewstest.Start(ewstest.Options{TLS: true, TLSHosts: []string{"contoso.local", "autodiscover.contoso.local", "mail.contoso.local"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(ewstest.User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox(ewsBox)
	s.Grant("svc@contoso.local", ewsBox)
	s.SetEWSURL("https://mail.contoso.local/EWS/Exchange.asmx")
	s.RefuseAutodiscover(true, false) // an Exchange 2007-style server: POX only
	if _, err := s.Deliver(ewsBox, ewsMessage(1)); err != nil {
		t.Fatal(err)
	}
	hc := s.Client(func(host, _ string) string {
		if !strings.HasSuffix(host, "contoso.local") {
			return ""
		}
		return s.TLSAddr()
	})
	h := startAppEdit(t, t.TempDir(), "sqlite", "", nil, nil, nil, func(c *app.Config) { c.HTTPClient = hc })
	ctx := context.Background()
	pw := vault.NewSecret("pw")
	in := mailbox.Input{Name: "exchange", Direction: store.Inbound, Protocol: mailbox.EWS, Address: ewsBox,
		Security: mailbox.SecurityTLS, Login: "svc@contoso.local", Password: &pw, Auth: store.AuthPassword}
	m, err := h.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatalf("create the EWS mailbox without a host: %v", err)
	}
	if m.Host != "" {
		t.Fatalf("host %q saved, want empty (autodiscover)", m.Host)
	}
	rep, err := h.app.Mailboxes.Test(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range rep.Steps {
		found = found || (strings.HasPrefix(st.Name, "Autodiscover") && st.OK && strings.Contains(st.Detail, "https://mail.contoso.local/EWS/Exchange.asmx"))
	}
	if !rep.OK || !found {
		t.Fatalf("connection test: %+v", rep)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the messages stored", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 1, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	waitFor(t, "the messages marked read in Exchange", func() (bool, string) {
		read := 0
		for _, x := range s.Messages(ewsBox, "inbox") {
			if x.IsRead {
				read++
			}
		}
		return read == 1, fmt.Sprintf("%d of 1 read", read)
	})
	if s.Ops("Autodiscover") == 0 {
		t.Error("autodiscover (POX) was not asked")
	}

	out := in
	out.Name, out.Direction, out.PollInterval = "exchange_out", store.Outbound, 0
	mo, err := h.app.Mailboxes.Create(ctx, "admin", out)
	if err != nil {
		t.Fatalf("create the outbound EWS mailbox without a host: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", mo.ID); err != nil {
		t.Fatal(err)
	}
	h.replyAsAgent("We found your order.")
	waitFor(t, "the reply at Exchange", func() (bool, string) {
		n := len(s.Sent())
		return n == 1, fmt.Sprintf("%d sent", n)
	})
	if sent := s.Sent(); !strings.Contains(string(sent[0].Raw), "In-Reply-To: <ews1@example.com>") || sent[0].From != ewsBox {
		t.Errorf("sent %+v: want the reply to the customer's email from %s", sent[0], ewsBox)
	}
	if c, _ := h.app.Store.CountMessages(ctx, m.ID); c != 1 {
		t.Errorf("%d stored, want 1: once", c)
	}
}
