package app_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

const ewsBox = "support@contoso.local"

// startEWS starts the EWS stand-in with a service account that has Full Access to ewsBox.
func startEWS(t *testing.T) *ewstest.Server {
	t.Helper()
	s, err := ewstest.Start(ewstest.Options{})
	if err != nil {
		t.Fatalf("start the EWS stand-in: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(ewstest.User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox(ewsBox)
	s.Grant("svc@contoso.local", ewsBox)
	return s
}

// ewsInput is an EWS mailbox on the stand-in, signing in with Basic.
func ewsInput(s *ewstest.Server, name, direction string) mailbox.Input {
	hostport := strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), ewstest.Path)
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	pw := vault.NewSecret("pw")
	in := mailbox.Input{Name: name, Direction: direction, Protocol: mailbox.EWS, Address: ewsBox, Host: host, Port: p,
		Security: mailbox.SecurityNone, Login: "svc@contoso.local", Password: &pw, Auth: store.AuthPassword}
	if direction == store.Inbound {
		in.PollInterval = 10 * time.Second
	}
	return in
}

func ewsMessage(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@example.com>\r\nTo: %s\r\nSubject: EWS question %d\r\nMessage-ID: <ews%d@example.com>\r\nDate: Mon, 07 Dec 2026 06:00:00 +0000\r\n\r\nHello %d\r\n", i, i, ewsBox, i, i, i)
}

// TestEWSMailboxIngest: an EWS mailbox ingests its unread mail once and marks it read after
// the commit; after Exchange forgets the sync state and while it throttles, a new message
// is stored and nothing twice.
func TestEWSMailboxIngest(t *testing.T) {
	s := startEWS(t)
	var ids []string
	for i := range 5 {
		id, err := s.Deliver(ewsBox, ewsMessage(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	m, err := h.app.Mailboxes.Create(ctx, "admin", ewsInput(s, "exchange", store.Inbound))
	if err != nil {
		t.Fatalf("create the EWS mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	readAll := func(want int) {
		waitFor(t, "the messages marked read in Exchange", func() (bool, string) {
			read := 0
			for _, x := range s.Messages(ewsBox, "inbox") {
				if x.IsRead {
					read++
				}
			}
			return read == want, fmt.Sprintf("%d of %d read", read, want)
		})
	}
	waitFor(t, "the messages stored", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == len(ids), fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	readAll(len(ids))

	// Exchange forgets the sync state and throttles: the next poll reads the folder from the
	// start, waits out the back-off, and stores only the new message.
	s.InvalidateSyncStates()
	s.Throttle(2, 300*time.Millisecond)
	id, err := s.Deliver(ewsBox, ewsMessage(9))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, id)
	waitFor(t, "the new message stored", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		return c == len(ids), fmt.Sprintf("%d stored", c)
	})
	readAll(len(ids))
	time.Sleep(200 * time.Millisecond)
	for _, id := range ids {
		if _, err := h.app.Store.MessageBySource(ctx, m.ID, "ews:"+id); err != nil {
			t.Errorf("message %s is not stored: %v", id, err)
		}
	}
	if c, _ := h.app.Store.CountMessages(ctx, m.ID); c != len(ids) {
		t.Errorf("%d stored, want %d: one each", c, len(ids))
	}
}

// TestEWSReply: an agent's reply leaves through an outbound EWS mailbox (CreateItem,
// SendAndSaveCopy) with the threading headers of the composed MIME, a copy in Sent Items.
func TestEWSReply(t *testing.T) {
	s := startEWS(t)
	if _, err := s.Deliver(ewsBox, ewsMessage(1)); err != nil {
		t.Fatal(err)
	}
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	for _, in := range []mailbox.Input{ewsInput(s, "exchange", store.Inbound), ewsInput(s, "exchange_out", store.Outbound)} {
		m, err := h.app.Mailboxes.Create(ctx, "admin", in)
		if err != nil {
			t.Fatalf("create %s: %v", in.Name, err)
		}
		if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.replyAsAgent("Your parcel left our warehouse today.")
	var sent []ewstest.Sent
	waitFor(t, "the reply at Exchange", func() (bool, string) {
		sent = s.Sent()
		return len(sent) == 1, fmt.Sprintf("%d sent", len(sent))
	})
	raw := string(sent[0].Raw)
	if !strings.Contains(raw, "In-Reply-To: <ews1@example.com>") || !strings.Contains(raw, "parcel left our warehouse") ||
		len(sent[0].Recipients) != 1 || sent[0].Recipients[0] != "c1@example.com" {
		t.Errorf("sent %+v:\n%s\nwant In-Reply-To the customer's email, the agent's text, to the customer", sent[0], raw)
	}
	if n := len(s.Messages(ewsBox, "sentitems")); n != 1 {
		t.Errorf("Sent Items: %d, want the reply's copy", n)
	}
	waitFor(t, "the reply marked sent", func() (bool, string) {
		n, _ := h.app.Store.CountOutbox(ctx, store.OutboxSent)
		return n == 1, fmt.Sprintf("%d sent in the outbox", n)
	})
}
