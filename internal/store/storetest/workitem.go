package storetest

import (
	"testing"

	"github.com/postroom/postroom/internal/store"
)

func testListWorkItems(t *testing.T, s store.Store) {
	ctx := t.Context()
	support := newMailbox(t, s, "support", store.Inbound)
	sales := newMailbox(t, s, "sales", store.Inbound)
	type item struct {
		mb                  store.Mailbox
		subject, name, addr string
	}
	items := []item{
		{support, "Invoice 42 missing", "Ana Pérez", "ana@example.org"},
		{sales, "Quote for 100% discount", "Bob Stone", "bob@shop.example"},
		{support, "ÉTÉ sale question", "Carla", "carla@example.net"},
		{sales, "my_file upload", "Dan", "dan@example.org"},
		{support, "Hello", "INVOICE dept", "billing@example.com"},
	}
	var created []int64
	for i, it := range items {
		in := mail(it.mb, "imap:1:"+string(rune('a'+i)), string(rune('a'+i))+"@x", it.subject)
		in.Message.FromName = it.name
		in.Message.FromAddr = it.addr
		created = append(created, ingest(t, s, in).WorkItemID)
	}
	newestFirst := []int64{created[4], created[3], created[2], created[1], created[0]}

	all, err := s.ListWorkItems(ctx, store.WorkItemFilter{})
	must(t, "ListWorkItems", err)
	equalIDs(t, "ListWorkItems newest first", ids(all), newestFirst)
	if len(all) == 5 {
		w := all[4]
		if w.Subject != items[0].subject || w.FromName != items[0].name || w.FromAddr != items[0].addr ||
			w.MailboxName != "support" || w.State != store.StateQueued || w.MailboxID != support.ID {
			t.Errorf("listed work item = %+v, want the listing fields of the first message", w)
		}
		if all[3].MailboxName != "sales" {
			t.Errorf("MailboxName = %q, want sales", all[3].MailboxName)
		}
	}

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"invoice", []int64{created[4], created[0]}}, // subject, and sender name in capitals
		{"INVOICE 42", []int64{created[0]}},
		{"pérez", []int64{created[0]}},
		{"PÉREZ", []int64{created[0]}},
		{"été", []int64{created[2]}},
		{"@example.org", []int64{created[3], created[0]}},
		{"SHOP.EXAMPLE", []int64{created[1]}},
		{"100%", []int64{created[1]}},
		{"%", nil}, // no word to search for
		{"my_file", []int64{created[3]}},
		{"_", nil},
		{`\`, nil},
		{"nothing like this", nil},
	} {
		got, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: tc.query})
		must(t, "ListWorkItems query", err)
		equalIDs(t, "ListWorkItems Query "+tc.query, ids(got), tc.want)
	}

	agent := newAgent(t, s, "alice")
	for _, id := range []int64{created[1], created[3]} {
		change(t, s, store.Change{WorkItemID: id, From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent.ID})
	}
	assigned, err := s.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateAssigned})
	must(t, "ListWorkItems state", err)
	equalIDs(t, "ListWorkItems State assigned", ids(assigned), []int64{created[3], created[1]})
	assignedDan, err := s.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateAssigned, Query: "dan"})
	must(t, "ListWorkItems state and query", err)
	equalIDs(t, "ListWorkItems State assigned Query dan", ids(assignedDan), []int64{created[3]})
	queued, err := s.ListWorkItems(ctx, store.WorkItemFilter{States: []string{store.StateQueued, store.StateDone}})
	must(t, "ListWorkItems states", err)
	equalIDs(t, "ListWorkItems States queued, done", ids(queued), []int64{created[4], created[2], created[0]})
	mine, err := s.ListWorkItems(ctx, store.WorkItemFilter{AssignedTo: agent.ID})
	must(t, "ListWorkItems assigned to", err)
	equalIDs(t, "ListWorkItems AssignedTo alice", ids(mine), []int64{created[3], created[1]})
	if n, err := s.CountWorkItems(ctx, store.WorkItemFilter{State: store.StateAssigned, Limit: 1}); err != nil || n != 2 {
		t.Errorf("CountWorkItems assigned = %d, %v; want 2", n, err)
	}

	page, err := s.ListWorkItems(ctx, store.WorkItemFilter{Limit: 2})
	must(t, "ListWorkItems limit", err)
	equalIDs(t, "ListWorkItems Limit 2", ids(page), newestFirst[:2])
	page, err = s.ListWorkItems(ctx, store.WorkItemFilter{Limit: 2, Offset: 2})
	must(t, "ListWorkItems offset", err)
	equalIDs(t, "ListWorkItems Limit 2 Offset 2", ids(page), newestFirst[2:4])
}

func testWorkItemState(t *testing.T, s store.Store) {
	mb := newMailbox(t, s, "support", store.Inbound)
	agent := newAgent(t, s, "alice")
	res := ingest(t, s, mail(mb, "imap:1:1", "a@x", "Hi"))
	before := getWorkItem(t, s, res.WorkItemID)
	if before.State != store.StateQueued {
		t.Errorf("State of a new item = %q, want queued", before.State)
	}
	waitPast(before.UpdatedAt)
	change(t, s, store.Change{WorkItemID: res.WorkItemID, From: []string{store.StateQueued}, To: store.StateAssigned,
		AssignedTo: &agent.ID})
	w := getWorkItem(t, s, res.WorkItemID)
	if w.State != store.StateAssigned || w.AssignedTo != agent.ID || w.AssignedName != "alice" {
		t.Errorf("after the change: state %q assigned to %d (%q), want assigned to alice (%d)", w.State, w.AssignedTo, w.AssignedName, agent.ID)
	}
	if !w.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("UpdatedAt did not move: %v, before %v", w.UpdatedAt, before.UpdatedAt)
	}
	// A change whose item is no longer in the expected state is refused and writes nothing.
	r := apply(t, s, store.Change{WorkItemID: res.WorkItemID, From: []string{store.StateQueued}, To: store.StateOnHold})
	wantErr(t, "change from a state the item left", r[0].Err, store.ErrStateChanged)
	if w := getWorkItem(t, s, res.WorkItemID); w.State != store.StateAssigned {
		t.Errorf("State after a refused change = %q, want assigned", w.State)
	}
	r = apply(t, s, store.Change{WorkItemID: res.WorkItemID + 1000, To: store.StateDone})
	wantErr(t, "change of a missing item", r[0].Err, store.ErrStateChanged)
	if n := len(listAll(t, s)); n != 1 {
		t.Errorf("%d work items after changing a missing one, want 1", n)
	}
}
