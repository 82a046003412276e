package app_test

import (
	"context"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// TestGraphSharedMailboxOfAPersonIsPolled: a shared mailbox read with a person's sign-in
// (the agent, password grant) gets no change notifications from Microsoft Graph, which
// sends them for a shared mailbox to an app only (ms365-protocol.md §8.2). With a public
// URL for notifications, postroom does not subscribe, polls with delta at the mailbox's
// interval, and the mailbox page says so.
func TestGraphSharedMailboxOfAPersonIsPolled(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{})
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	in := graphInput(ms, sample, "contoso")
	in.Auth, in.Login = store.AuthOAuthROPC, sample.Agent
	password := vault.NewSecret(sample.AgentPassword)
	in.Password = &password
	in.PollInterval = 10 * time.Second
	m, err := h.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatalf("create the Graph mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	want := len(sample.MessageIDs)
	waitFor(t, "the sample messages", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == want, fmt.Sprintf("%d stored, status %s %s", c, got.Status, got.StatusMessage)
	})
	const note = "notifications need app-only access; polling every 10 s"
	waitFor(t, "the polling note", func() (bool, string) {
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return got.Status == store.StatusConnected && got.StatusMessage == note, got.Status + " " + got.StatusMessage
	})
	if subs := ms.Subscriptions(); len(subs) != 0 {
		t.Errorf("postroom subscribed for a person's sign-in to a shared mailbox: %+v", subs)
	}

	// The page an administrator looks at.
	if _, err := h.app.Auth.EnsureUser(ctx, "boss", "Bo Admin", store.RoleAdmin, "boss-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, h.url, "boss", "boss-pw-for-tests")
	status, page := c.do("GET", fmt.Sprintf("/mailboxes?selected=%d", m.ID), nil)
	if status != 200 || !strings.Contains(html.UnescapeString(string(page)), note) {
		t.Errorf("mailbox page: %d, does not say %q", status, note)
	}

	// Mail that arrives is picked up by the next delta poll.
	id, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(300))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the polled message", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		return c == want+1, fmt.Sprintf("%d stored", c)
	})
	checkGraphOnce(t, h.app.Store, m.ID, append(append([]string{}, sample.MessageIDs...), id))
}
