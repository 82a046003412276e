package app

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/metrics"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// TestRoutingMetrics: /metrics shows each queue's items by state, its oldest waiting age
// and its breached items, and the agents by status.
func TestRoutingMetrics(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "postroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := st.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap", Host: "127.0.0.1",
		Port: 143, Security: "none", Folder: "INBOX", MaxSizeMB: 5, PollInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, age := range []time.Duration{2 * time.Hour, 10 * time.Minute} {
		at := now.Add(-age)
		c := &store.Classification{QueueID: q.ID, FirstDue: at.Add(time.Hour), FirstRisk: at.Add(45 * time.Minute)}
		if _, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: mb.ID, Raw: []byte("x"), ReceivedAt: at, Classification: c,
			Message: store.Message{MailboxID: mb.ID, Direction: store.Inbound, SourceID: "m:" + string(rune('a'+i)), Subject: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := st.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAgentStatus(ctx, u.ID, store.AgentAvailable, now); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New()
	m := newRoutingMetrics(st, reg, slog.New(slog.DiscardHandler))
	if err := m.publish(ctx, now); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := reg.WriteText(ctx, &b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		`postroom_queue_items{queue="Billing",state="queued"} 2`,
		`postroom_queue_oldest_age_seconds{queue="Billing"} 7200`,
		`postroom_queue_sla_breached{queue="Billing"} 1`,
		`postroom_agents{status="available"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
}
