package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/mailbox"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// startMS starts the Microsoft stand-in with its sample tenant.
func startMS(t *testing.T, opts mstest.SampleOptions) (*mstest.Server, *mstest.Sample) {
	t.Helper()
	ms, err := mstest.Start(mstest.Options{})
	if err != nil {
		t.Fatalf("start the Microsoft stand-in: %v", err)
	}
	t.Cleanup(func() { ms.Close() })
	sample, err := ms.SampleTenant(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ms, sample
}

// graphInput is a Graph mailbox of the sample tenant, signing in as the sample app.
func graphInput(ms *mstest.Server, sample *mstest.Sample, name string) mailbox.Input {
	secret := vault.NewSecret(sample.ClientSecret)
	return mailbox.Input{
		Name: name, Direction: store.Inbound, Protocol: mailbox.Graph, Address: sample.Mailbox,
		Auth:         store.AuthOAuthApp,
		OAuth:        store.OAuth{Cloud: "custom", AuthorityURL: ms.LoginURL(), Tenant: sample.TenantID, ClientID: sample.ClientID},
		GraphURL:     ms.GraphURL(),
		ClientSecret: &secret,
		PollInterval: 10 * time.Second,
	}
}

// TestGraphMailboxIngest: a Graph mailbox (app-only, client secret) ingests the sample
// messages through delta sync and $value, marks them read after commit, and a message
// delivered later becomes a work item too; each exactly once.
func TestGraphMailboxIngest(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{})
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	m, err := h.app.Mailboxes.Create(ctx, "admin", graphInput(ms, sample, "contoso"))
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
	waitFor(t, "the messages marked read at Microsoft", func() (bool, string) {
		msgs, _ := ms.Messages(sample.Mailbox, "inbox")
		read := 0
		for _, x := range msgs {
			if x.IsRead {
				read++
			}
		}
		return read == want, fmt.Sprintf("%d of %d read", read, len(msgs))
	})
	delivered, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(100))
	if err != nil {
		t.Fatal(err)
	}
	// A change notification (the harness has a public URL) or the next delta poll picks it up.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, _ := h.app.Store.CountMessages(ctx, m.ID); c == want+1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ids := append(slices.Clone(sample.MessageIDs), delivered)
	checkGraphOnce(t, h.app.Store, m.ID, ids)
}

// checkGraphOnce asserts that each Graph message id is stored exactly once in the
// mailbox, and nothing else is.
func checkGraphOnce(t *testing.T, st store.Store, mailboxID int64, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		if _, err := st.MessageBySource(ctx, mailboxID, "graph:"+id); err != nil {
			t.Errorf("message %s is not stored: %v", id, err)
		}
	}
	if c, err := st.CountMessages(ctx, mailboxID); err != nil || c != len(ids) {
		t.Errorf("%d messages stored (%v), want %d: one each", c, err, len(ids))
	}
}

// TestGraphChangeNotifications: with a public URL, a Graph mailbox subscribes to change
// notifications (the validation handshake answered by postroom), and a delivered message
// becomes a work item at once, long before the next poll (the poll interval is an hour).
func TestGraphChangeNotifications(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	in := graphInput(ms, sample, "contoso")
	in.PollInterval = time.Hour
	m, err := h.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a subscription", func() (bool, string) {
		subs := ms.Subscriptions()
		return len(subs) == 1, fmt.Sprintf("%+v", subs)
	})
	sub := ms.Subscriptions()[0]
	if !strings.HasPrefix(sub.NotificationURL, h.url+"/graph/notify/") {
		t.Errorf("notification URL %q is not postroom's", sub.NotificationURL)
	}
	var ids []string
	for i := range 3 {
		id, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(200+i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		waitFor(t, "the notified message", func() (bool, string) {
			c, _ := h.app.Store.CountMessages(ctx, m.ID)
			return c == i+1, fmt.Sprintf("%d stored", c)
		})
	}
	checkGraphOnce(t, h.app.Store, m.ID, ids)
}

// TestGraphSecretRotatedWhileRunning: the app's client secret expires while the mailbox
// runs: the next token renewal fails and the mailbox shows the error with the fix; the
// connection test records the expiry for the warnings; the admin enters a new secret and
// the mail that arrived meanwhile comes in, each message once, no secret in the log.
func TestGraphSecretRotatedWhileRunning(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: 2})
	logs := &testenv.LogBuffer{}
	h := startAppLogged(t, t.TempDir(), nil, logs)
	ctx := context.Background()
	m, err := h.app.Mailboxes.Create(ctx, "admin", graphInput(ms, sample, "contoso"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sample messages", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		return c == 2, fmt.Sprintf("%d stored", c)
	})

	sample.App.ExpireSecret(sample.ClientSecret)
	ms.ExpireAccessTokens()
	late, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(50))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mailbox in error", func() (bool, string) {
		got, _ := h.app.Store.Mailbox(ctx, m.ID)
		return got.Status == store.StatusError && strings.Contains(got.StatusMessage, "expired"), got.Status + " " + got.StatusMessage
	})
	rep, err := h.app.Mailboxes.Test(ctx, m.ID)
	if err != nil || rep.OK || !rep.SecretExpired {
		t.Fatalf("connection test: ok %v secretExpired %v (%v), want a failed test that says the secret expired", rep.OK, rep.SecretExpired, err)
	}
	got, _ := h.app.Store.Mailbox(ctx, m.ID)
	if exp := mailbox.SecretExpiry(got, time.Now().Add(time.Second)); !exp.Expired {
		t.Errorf("the expired secret is not recorded: expiry %+v", exp)
	}

	fresh := "pst8Q~fresh-secret-for-the-test-0123456789"
	sample.App.AddSecret(fresh, time.Now().Add(365*24*time.Hour))
	in := mailbox.FromMailbox(got)
	secret := vault.NewSecret(fresh)
	in.ClientSecret = &secret
	in.OAuth.SecretExpiresAt = time.Now().Add(365 * 24 * time.Hour)
	if _, err := h.app.Mailboxes.Update(ctx, "admin", m.ID, in); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message that arrived meanwhile", func() (bool, string) {
		c, _ := h.app.Store.CountMessages(ctx, m.ID)
		st, _ := h.app.Store.Mailbox(ctx, m.ID)
		return c == 3, fmt.Sprintf("%d stored, %s %s", c, st.Status, st.StatusMessage)
	})
	checkGraphOnce(t, h.app.Store, m.ID, append(slices.Clone(sample.MessageIDs), late))
	for _, s := range []string{sample.ClientSecret, fresh} {
		if strings.Contains(logs.String(), s) {
			t.Error("a client secret is in the log")
		}
	}
}

// TestGraphReply: an agent's reply goes out through an outbound Graph mailbox as the
// shared mailbox (sendMail with the MIME message), saved to Sent Items, threaded to the
// customer's email.
func TestGraphReply(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: 1})
	h := startApp(t, "sqlite", nil, nil)
	ctx := context.Background()
	m, err := h.app.Mailboxes.Create(ctx, "admin", graphInput(ms, sample, "contoso"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	out := graphInput(ms, sample, "contoso_out")
	out.Direction, out.PollInterval = store.Outbound, 0
	o, err := h.app.Mailboxes.Create(ctx, "admin", out)
	if err != nil {
		t.Fatalf("create the outbound Graph mailbox: %v", err)
	}
	if err := h.app.Mailboxes.Enable(ctx, "admin", o.ID); err != nil {
		t.Fatal(err)
	}
	h.replyAsAgent("Your parcel left our warehouse today.")
	var sent []mstest.SentMessage
	waitFor(t, "the reply at Microsoft", func() (bool, string) {
		sent = ms.Sent(sample.Mailbox)
		return len(sent) == 1, fmt.Sprintf("%d sent", len(sent))
	})
	raw := string(sent[0].Raw)
	if !sent[0].SavedToSentItems || !strings.Contains(raw, "In-Reply-To: <sample-0@") || !strings.Contains(raw, "parcel left our warehouse") {
		t.Errorf("sent %+v:\n%s\nwant saved to Sent Items, In-Reply-To the customer's email and the agent's text", sent[0], raw)
	}
	waitFor(t, "the reply marked sent", func() (bool, string) {
		n, _ := h.app.Store.CountOutbox(ctx, store.OutboxSent)
		return n == 1, fmt.Sprintf("%d sent in the outbox", n)
	})
}
