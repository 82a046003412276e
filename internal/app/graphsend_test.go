package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
)

// graphOutbound starts the app with an inbound and an outbound Graph mailbox of the
// sample tenant (one customer email waiting).
func graphOutbound(t *testing.T, dir string) (*harness, *mstest.Server, *mstest.Sample) {
	t.Helper()
	ms, sample := startMS(t, mstest.SampleOptions{Messages: 1})
	h := startAppIn(t, dir, "sqlite", "", nil, nil)
	ctx := context.Background()
	in, err := h.app.Mailboxes.Create(ctx, "admin", graphInput(ms, sample, "contoso"))
	if err != nil {
		t.Fatal(err)
	}
	out := graphInput(ms, sample, "contoso_out")
	out.Direction, out.PollInterval = store.Outbound, 0
	o, err := h.app.Mailboxes.Create(ctx, "admin", out)
	if err != nil {
		t.Fatalf("create the outbound Graph mailbox: %v", err)
	}
	for _, id := range []int64{in.ID, o.ID} {
		if err := h.app.Mailboxes.Enable(ctx, "admin", id); err != nil {
			t.Fatal(err)
		}
	}
	return h, ms, sample
}

// theOutboxRow waits for the work item's one outbox row to satisfy cond.
func theOutboxRow(t *testing.T, st store.Store, workItemID int64, what string, cond func(store.OutboxItem) bool) store.OutboxItem {
	t.Helper()
	var row store.OutboxItem
	waitFor(t, what, func() (bool, string) {
		rows, err := st.OutboxForWorkItem(context.Background(), workItemID)
		if err != nil || len(rows) != 1 {
			return false, fmt.Sprintf("%d rows, %v", len(rows), err)
		}
		row = rows[0]
		return cond(row), fmt.Sprintf("%+v", row)
	})
	return row
}

// sentItems lists the subjects in the sample mailbox's Sent Items and counts its drafts.
func sentItems(t *testing.T, ms *mstest.Server, mailbox string) (sent []string, drafts int) {
	t.Helper()
	s, err := ms.Messages(mailbox, "sentitems")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s {
		sent = append(sent, m.Subject)
	}
	d, err := ms.Messages(mailbox, "drafts")
	if err != nil {
		t.Fatal(err)
	}
	return sent, len(d)
}

// TestGraphReplyCrashBeforeSend: the process dies after it made the reply's draft and
// committed its id, while /send is on its way (it never reaches Microsoft). The next
// process on the data folder takes the dead one's claim at once (not after the 10-minute
// lease), finds the draft still a draft and sends that draft: one message in Sent Items,
// no draft left, no second draft made.
func TestGraphReplyCrashBeforeSend(t *testing.T) {
	dir := t.TempDir()
	h, ms, sample := graphOutbound(t, dir)
	ms.FailNext(mstest.Fault{PathContains: "/send", Delay: time.Minute})
	wi := h.replyAsAgent("Your parcel left our warehouse today.")
	row := theOutboxRow(t, h.app.Store, wi.ID, "the draft id committed", func(o store.OutboxItem) bool { return o.GraphDraftID != "" })
	time.Sleep(300 * time.Millisecond) // /send is waiting at Microsoft
	h.crash()                          // the process dies with the row claimed
	if sent := ms.Sent(sample.Mailbox); len(sent) != 0 {
		t.Fatalf("sent before the restart: %d, want 0 (the /send never arrived)", len(sent))
	}
	if _, drafts := sentItems(t, ms, sample.Mailbox); drafts != 1 {
		t.Fatalf("drafts before the restart: %d, want the reply's one", drafts)
	}
	restart := time.Now()
	h2 := startAppIn(t, dir, "sqlite", "", nil, nil)
	got := theOutboxRow(t, h2.app.Store, wi.ID, "the reply sent after the restart", func(o store.OutboxItem) bool { return o.State == store.OutboxSent })
	if took := time.Since(restart); took > time.Minute {
		t.Errorf("the reply went %v after the restart: it waited for the lease", took)
	}
	if got.GraphDraftID != row.GraphDraftID {
		t.Errorf("draft id %q after the restart, want the first one %q (no new draft)", got.GraphDraftID, row.GraphDraftID)
	}
	sent, drafts := sentItems(t, ms, sample.Mailbox)
	if n := len(ms.Sent(sample.Mailbox)); n != 1 || len(sent) != 1 || drafts != 0 {
		t.Errorf("after the restart: %d sent, Sent Items %q, %d drafts; want exactly one sent and no draft left", n, sent, drafts)
	}
}

// TestGraphReplyAnswerLost: Microsoft sends the reply, and the process dies before the
// 202 reaches it (the answer is held, then lost): the window between the server's
// acceptance and the commit. The row keeps its draft id; the next process takes the dead
// one's claim at once, reads the draft, finds it sent (its copy in Sent Items under the
// same immutable id; or 404 ErrorItemNotFound while the copy is not there yet) and records
// the reply sent without sending it again: exactly one message in Sent Items.
func TestGraphReplyAnswerLost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readable bool // the Sent Items copy answers the draft's id
	}{{"copy in Sent Items", true}, {"copy not there yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			h, ms, sample := graphOutbound(t, dir)
			ms.FailNext(mstest.Fault{PathContains: "/send", DropAfterServing: true, Delay: time.Minute})
			wi := h.replyAsAgent("Your parcel left our warehouse today.")
			waitFor(t, "the reply sent at Microsoft", func() (bool, string) {
				n := len(ms.Sent(sample.Mailbox))
				return n == 1, fmt.Sprintf("%d sent", n)
			})
			h.crash() // dies while Microsoft's 202 is on its way
			st := reopen(t, dir)
			row := theOutboxRow(t, st, wi.ID, "the row still claimed", func(o store.OutboxItem) bool {
				return o.State == store.OutboxQueued && o.GraphDraftID != "" && o.Claim.Instance != ""
			})
			st.Close()
			if !tc.readable {
				ms.FailNext(mstest.Fault{PathContains: row.GraphDraftID, Status: 404, Code: "ErrorItemNotFound"})
			}
			restart := time.Now()
			h2 := startAppIn(t, dir, "sqlite", "", nil, nil)
			theOutboxRow(t, h2.app.Store, wi.ID, "the reply recorded sent", func(o store.OutboxItem) bool { return o.State == store.OutboxSent })
			if took := time.Since(restart); took > time.Minute {
				t.Errorf("the reply was recorded %v after the restart: it waited for the lease", took)
			}
			sent, drafts := sentItems(t, ms, sample.Mailbox)
			if n := len(ms.Sent(sample.Mailbox)); n != 1 || len(sent) != 1 || drafts != 0 {
				t.Errorf("after the restart: %d sent, Sent Items %q, %d drafts; want still one sent, no draft", n, sent, drafts)
			}
		})
	}
}

// reopen opens the store of the stopped app in dir; the caller closes it.
func reopen(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := app.OpenStore(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return st
}
