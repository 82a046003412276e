package automsg_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/automsg"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/store/sqlite"
)

// TestAcknowledgementFollowsTheCalendar: with a fixed clock, the queue's calendar chooses
// the open-hours, closed-hours or holiday text.
func TestAcknowledgementFollowsTheCalendar(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
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
	if _, err := st.CreateMailbox(ctx, store.Mailbox{Name: "out", Direction: store.Outbound, Protocol: "smtp", Address: "help@example.com",
		Host: "localhost", Port: 25, Security: "none", IsDefault: true, MaxSizeMB: 5}); err != nil {
		t.Fatal(err)
	}
	for _, n := range automsg.QueueNames {
		if err := st.SetAutoTemplate(ctx, store.AutoTemplate{QueueID: q.ID, Name: n, Enabled: true, Subject: "Re: {{.Subject}}", Body: n + " for {{.CustomerName}}"}); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := routing.Calendar{Name: "Office", TimeZone: "UTC", Hours: []routing.Hours{{Day: "mon", Start: "09:00", End: "17:00"}},
		Holidays: []routing.Holiday{{Date: "2026-03-09"}}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &routing.Config{Queues: map[int64]*routing.Queue{q.ID: {ID: q.ID, Schedule: sch}}}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), automsg.NameAckOpen},    // Monday 10:00
		{time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC), automsg.NameAckClosed},  // Monday evening
		{time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC), automsg.NameAckHoliday}, // a holiday Monday
	} {
		c := &automsg.Composer{Store: st, Hours: cfg.Hours, Now: func() time.Time { return tc.at }}
		in := &store.InboundMessage{Message: store.Message{MessageID: "m1@example.org", Subject: "Invoice", FromName: "Ada", FromAddr: "ada@example.org"},
			Classification: &store.Classification{QueueID: q.ID}}
		a, err := c.Acknowledgement(ctx, store.Mailbox{Name: "support", Address: "support@example.com"}, in)
		if err != nil || a == nil {
			t.Fatalf("at %s: %v, %v", tc.at, a, err)
		}
		_, raw, err := a.Compose(7)
		if err != nil || !bytes.Contains(raw, []byte(tc.want+" for Ada")) || a.From != "" || !a.NewConversationOnly {
			t.Errorf("at %s: want %q, got %v\n%s", tc.at, tc.want, err, raw)
		}
	}
	// A program's mail gets none.
	c := &automsg.Composer{Store: st, Hours: cfg.Hours}
	auto := &store.InboundMessage{Message: store.Message{FromAddr: "robot@example.org", Automatic: "Auto-Submitted: auto-replied"},
		Classification: &store.Classification{QueueID: q.ID}}
	if a, err := c.Acknowledgement(ctx, store.Mailbox{Name: "support"}, auto); a != nil || err != nil {
		t.Errorf("acknowledgement of automatic mail: %+v, %v", a, err)
	}
	// A sender who asks for no automatic answers (X-Auto-Response-Suppress) gets none,
	// though a person wrote the message.
	for _, v := range []string{"All", "DR, AutoReply", "OOF, autoreply"} {
		quiet := &store.InboundMessage{Raw: []byte("X-Auto-Response-Suppress: " + v + "\r\nSubject: Invoice\r\n\r\nhi\r\n"),
			Message:        store.Message{MessageID: "m2@example.org", Subject: "Invoice", FromAddr: "ada@example.org"},
			Classification: &store.Classification{QueueID: q.ID}}
		if a, err := c.Acknowledgement(ctx, store.Mailbox{Name: "support"}, quiet); a != nil || err != nil {
			t.Errorf("acknowledgement despite X-Auto-Response-Suppress: %s: %+v, %v", v, a, err)
		}
	}
	// OOF alone only suppresses out-of-office replies: an acknowledgement still goes.
	oof := &store.InboundMessage{Raw: []byte("X-Auto-Response-Suppress: OOF\r\nSubject: Invoice\r\n\r\nhi\r\n"),
		Message:        store.Message{MessageID: "m3@example.org", Subject: "Invoice", FromAddr: "ada@example.org"},
		Classification: &store.Classification{QueueID: q.ID}}
	if a, err := c.Acknowledgement(ctx, store.Mailbox{Name: "support"}, oof); a == nil || err != nil {
		t.Errorf("no acknowledgement for X-Auto-Response-Suppress: OOF: %v", err)
	}
}
