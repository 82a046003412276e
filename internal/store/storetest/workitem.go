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
			w.MailboxName != "support" || w.State != store.StateNew || w.MailboxID != support.ID {
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
		{"%", []int64{created[1]}},
		{"my_file", []int64{created[3]}},
		{"_", []int64{created[3]}},
		{`\`, nil},
		{"nothing like this", nil},
	} {
		got, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: tc.query})
		must(t, "ListWorkItems query", err)
		equalIDs(t, "ListWorkItems Query "+tc.query, ids(got), tc.want)
	}

	must(t, "SetWorkItemState", s.SetWorkItemState(ctx, created[1], store.StateOpen))
	must(t, "SetWorkItemState", s.SetWorkItemState(ctx, created[3], store.StateOpen))
	open, err := s.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateOpen})
	must(t, "ListWorkItems state", err)
	equalIDs(t, "ListWorkItems State open", ids(open), []int64{created[3], created[1]})
	openDan, err := s.ListWorkItems(ctx, store.WorkItemFilter{State: store.StateOpen, Query: "dan"})
	must(t, "ListWorkItems state and query", err)
	equalIDs(t, "ListWorkItems State open Query dan", ids(openDan), []int64{created[3]})

	page, err := s.ListWorkItems(ctx, store.WorkItemFilter{Limit: 2})
	must(t, "ListWorkItems limit", err)
	equalIDs(t, "ListWorkItems Limit 2", ids(page), newestFirst[:2])
	page, err = s.ListWorkItems(ctx, store.WorkItemFilter{Limit: 2, Offset: 2})
	must(t, "ListWorkItems offset", err)
	equalIDs(t, "ListWorkItems Limit 2 Offset 2", ids(page), newestFirst[2:4])
}

func testWorkItemState(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	res := ingest(t, s, mail(mb, "imap:1:1", "a@x", "Hi"))
	before, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	must(t, "SetWorkItemState", s.SetWorkItemState(ctx, res.WorkItemID, store.StateOpen))
	w, err := s.WorkItem(ctx, res.WorkItemID)
	must(t, "WorkItem", err)
	if w.State != store.StateOpen {
		t.Errorf("State = %q, want open", w.State)
	}
	if w.UpdatedAt.Before(before.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v < %v", w.UpdatedAt, before.UpdatedAt)
	}
	if err := s.SetWorkItemState(ctx, res.WorkItemID, "bogus"); err == nil {
		t.Error("SetWorkItemState accepted an unknown state")
	}
	if w, _ := s.WorkItem(ctx, res.WorkItemID); w.State != store.StateOpen {
		t.Errorf("State after a refused change = %q, want open", w.State)
	}
	wantErr(t, "SetWorkItemState missing", s.SetWorkItemState(ctx, res.WorkItemID+1000, store.StateOpen), store.ErrNotFound)
}
