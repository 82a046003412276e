package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func testQueues(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	def, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	if def.ID == 0 || def.Name != store.DefaultQueue || !def.Enabled || def.CreatedAt.IsZero() {
		t.Errorf("EnsureDefaultQueue = %+v, want the enabled %q queue", def, store.DefaultQueue)
	}
	again, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue again", err)
	if again.ID != def.ID {
		t.Errorf("EnsureDefaultQueue again = id %d, want the same queue %d", again.ID, def.ID)
	}

	billing, err := s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	must(t, "CreateQueue Billing", err)
	if billing.ID == 0 || billing.Name != "Billing" || !billing.Enabled {
		t.Errorf("CreateQueue = %+v, want Billing, enabled, with an id", billing)
	}
	recent(t, "CreatedAt", billing.CreatedAt, start)
	archive, err := s.CreateQueue(ctx, store.Queue{Name: "Archive"})
	must(t, "CreateQueue Archive", err)
	_, err = s.CreateQueue(ctx, store.Queue{Name: "Billing", Enabled: true})
	wantErr(t, "CreateQueue with a name in use", err, store.ErrConflict)
	_, err = s.CreateQueue(ctx, store.Queue{Name: store.DefaultQueue})
	wantErr(t, "CreateQueue Default", err, store.ErrConflict)

	got, err := s.Queue(ctx, billing.ID)
	must(t, "Queue", err)
	if got.ID != billing.ID || got.Name != "Billing" || !got.Enabled {
		t.Errorf("Queue = %+v, want %+v", got, billing)
	}
	sameTime(t, "Queue CreatedAt", got.CreatedAt, billing.CreatedAt)
	_, err = s.Queue(ctx, archive.ID+1000)
	wantErr(t, "Queue missing", err, store.ErrNotFound)

	list, err := s.ListQueues(ctx)
	must(t, "ListQueues", err)
	var names []string
	for _, q := range list {
		names = append(names, fmt.Sprintf("%s:%t", q.Name, q.Enabled))
	}
	if fmt.Sprint(names) != "[Archive:false Billing:true Default:true]" {
		t.Errorf("ListQueues = %v, want [Archive:false Billing:true Default:true] (by name)", names)
	}
	// A disabled Default stays disabled: EnsureDefaultQueue only creates.
	must(t, "SetQueueEnabled Default off", s.SetQueueEnabled(ctx, def.ID, false))
	def, err = s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	if def.Enabled {
		t.Error("EnsureDefaultQueue enabled a Default queue an administrator disabled")
	}
}

// testEnsureDefaultQueueConcurrent: nodes starting together all get the one Default queue.
func testEnsureDefaultQueueConcurrent(t *testing.T, s store.Store) {
	const callers = 8
	var wg sync.WaitGroup
	got := make([]store.Queue, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = s.EnsureDefaultQueue(t.Context()) })
	}
	wg.Wait()
	for i := range callers {
		must(t, "EnsureDefaultQueue", errs[i])
		if got[i].ID != got[0].ID || got[i].Name != store.DefaultQueue {
			t.Errorf("caller %d got %+v, caller 0 got %+v: want the same Default queue", i, got[i], got[0])
		}
	}
	// Creating the same new queue at once: one wins, the others get ErrConflict.
	created := make([]error, callers)
	for i := range callers {
		wg.Go(func() { _, created[i] = s.CreateQueue(t.Context(), store.Queue{Name: "Rush", Enabled: true}) })
	}
	wg.Wait()
	wins := 0
	for _, err := range created {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("concurrent CreateQueue: %v, want nil or ErrConflict", err)
		}
	}
	list, err := s.ListQueues(t.Context())
	must(t, "ListQueues", err)
	if wins != 1 || len(list) != 2 {
		t.Errorf("%d concurrent CreateQueue calls won, %d queues exist; want 1 and 2 (Default, Rush)", wins, len(list))
	}
}

// testAssignMailbox: assignment to an enabled queue enables, to a disabled queue or none
// disables, in one step; every assignment moves UpdatedAt.
func testAssignMailbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	def, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	paused, err := s.CreateQueue(ctx, store.Queue{Name: "Paused", Enabled: false})
	must(t, "CreateQueue", err)
	mb, err := s.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap"})
	must(t, "CreateMailbox", err)
	out, err := s.CreateMailbox(ctx, store.Mailbox{Name: "out", Direction: store.Outbound, Protocol: "smtp"})
	must(t, "CreateMailbox out", err)

	prev := mb.UpdatedAt
	step := func(what string, queueID int64, wantQueue int64, wantEnabled bool) {
		t.Helper()
		waitPast(prev)
		must(t, what, s.AssignMailbox(ctx, mb.ID, queueID))
		got := getMailbox(t, s, mb.ID)
		if got.QueueID != wantQueue || got.Enabled != wantEnabled {
			t.Errorf("%s: QueueID %d Enabled %v, want %d %v", what, got.QueueID, got.Enabled, wantQueue, wantEnabled)
		}
		if !got.UpdatedAt.After(prev) {
			t.Errorf("%s: UpdatedAt %v did not move past %v", what, got.UpdatedAt, prev)
		}
		prev = got.UpdatedAt
	}
	step("assign to Default", def.ID, def.ID, true)
	step("assign to a disabled queue", paused.ID, paused.ID, false)
	step("assign back to Default", def.ID, def.ID, true)
	step("unassign", 0, 0, false)
	step("assign again", def.ID, def.ID, true)

	wantErr(t, "AssignMailbox to an unknown queue", s.AssignMailbox(ctx, mb.ID, paused.ID+1000), store.ErrNotFound)
	wantErr(t, "AssignMailbox of an unknown mailbox", s.AssignMailbox(ctx, out.ID+1000, def.ID), store.ErrNotFound)
	if got := getMailbox(t, s, mb.ID); got.QueueID != def.ID || !got.Enabled {
		t.Errorf("a refused assignment changed the mailbox: QueueID %d Enabled %v", got.QueueID, got.Enabled)
	}
	if err := s.AssignMailbox(ctx, out.ID, def.ID); err == nil {
		t.Error("AssignMailbox of an outbound mailbox succeeded, want an error")
	}
	if got := getMailbox(t, s, out.ID); got.QueueID != 0 || got.Enabled {
		t.Errorf("outbound mailbox after a refused assignment: QueueID %d Enabled %v, want 0 false", got.QueueID, got.Enabled)
	}
}

// testSetQueueEnabled: a queue's flag and its mailboxes' flags change together.
func testSetQueueEnabled(t *testing.T, s store.Store) {
	ctx := t.Context()
	def, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	other, err := s.CreateQueue(ctx, store.Queue{Name: "Other", Enabled: true})
	must(t, "CreateQueue", err)
	a := newMailbox(t, s, "a", store.Inbound)
	b := newMailbox(t, s, "b", store.Inbound)
	c := newMailbox(t, s, "c", store.Inbound)
	must(t, "AssignMailbox a", s.AssignMailbox(ctx, a.ID, def.ID))
	must(t, "AssignMailbox b", s.AssignMailbox(ctx, b.ID, def.ID))
	must(t, "AssignMailbox c", s.AssignMailbox(ctx, c.ID, other.ID))
	before := map[int64]store.Mailbox{}
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		before[id] = getMailbox(t, s, id)
		waitPast(before[id].UpdatedAt)
	}

	must(t, "SetQueueEnabled false", s.SetQueueEnabled(ctx, def.ID, false))
	q, err := s.Queue(ctx, def.ID)
	must(t, "Queue", err)
	if q.Enabled {
		t.Error("queue still enabled after SetQueueEnabled(false)")
	}
	for _, id := range []int64{a.ID, b.ID} {
		got := getMailbox(t, s, id)
		if got.Enabled || got.QueueID != def.ID {
			t.Errorf("mailbox %s of the disabled queue: Enabled %v QueueID %d, want disabled and still assigned", got.Name, got.Enabled, got.QueueID)
		}
		if !got.UpdatedAt.After(before[id].UpdatedAt) {
			t.Errorf("mailbox %s UpdatedAt did not move when its queue was disabled", got.Name)
		}
	}
	if got := getMailbox(t, s, c.ID); !got.Enabled || !got.UpdatedAt.Equal(before[c.ID].UpdatedAt) {
		t.Errorf("mailbox c of another queue changed: Enabled %v UpdatedAt %v", got.Enabled, got.UpdatedAt)
	}
	// A mailbox assigned to the disabled queue stays disabled.
	d := newMailbox(t, s, "d", store.Inbound)
	must(t, "AssignMailbox d", s.AssignMailbox(ctx, d.ID, def.ID))
	if getMailbox(t, s, d.ID).Enabled {
		t.Error("mailbox assigned to a disabled queue is enabled")
	}

	must(t, "SetQueueEnabled true", s.SetQueueEnabled(ctx, def.ID, true))
	for _, id := range []int64{a.ID, b.ID, d.ID} {
		if got := getMailbox(t, s, id); !got.Enabled {
			t.Errorf("mailbox %s still disabled after its queue was enabled", got.Name)
		}
	}
	wantErr(t, "SetQueueEnabled missing", s.SetQueueEnabled(ctx, other.ID+1000, false), store.ErrNotFound)
	if !getMailbox(t, s, c.ID).Enabled {
		t.Error("SetQueueEnabled of a missing queue changed a mailbox")
	}
}
