package storetest

import (
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

func testFromAddresses(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	out1 := newMailbox(t, s, "out1", store.Outbound)
	out2 := newMailbox(t, s, "out2", store.Outbound)

	sales, err := s.AddFromAddress(ctx, store.FromAddress{MailboxID: out1.ID, Address: "Sales@Example.com", DisplayName: "Sales — Ünited"})
	must(t, "AddFromAddress", err)
	if sales.ID == 0 || sales.MailboxID != out1.ID || sales.Address != "Sales@Example.com" || sales.DisplayName != "Sales — Ünited" {
		t.Errorf("AddFromAddress = %+v, want the address as given with an id", sales)
	}
	recent(t, "CreatedAt", sales.CreatedAt, start)
	_, err = s.AddFromAddress(ctx, store.FromAddress{MailboxID: out1.ID, Address: "sales@example.COM", DisplayName: "Other"})
	wantErr(t, "AddFromAddress differing only in case", err, store.ErrConflict)
	billing, err := s.AddFromAddress(ctx, store.FromAddress{MailboxID: out1.ID, Address: "billing@example.com"})
	must(t, "AddFromAddress billing", err)
	// The same address on another mailbox is another From address.
	sales2, err := s.AddFromAddress(ctx, store.FromAddress{MailboxID: out2.ID, Address: "sales@example.com", DisplayName: "Sales"})
	must(t, "AddFromAddress on out2", err)
	_, err = s.AddFromAddress(ctx, store.FromAddress{MailboxID: out2.ID + 1000, Address: "x@example.com"})
	wantErr(t, "AddFromAddress to a missing mailbox", err, store.ErrNotFound)

	list, err := s.ListFromAddresses(ctx, out1.ID)
	must(t, "ListFromAddresses out1", err)
	if len(list) != 2 || list[0].ID != billing.ID || list[1].ID != sales.ID {
		t.Fatalf("ListFromAddresses(out1) = %+v, want billing then sales", list)
	}
	if f := list[1]; f.Address != sales.Address || f.DisplayName != sales.DisplayName || f.MailboxID != out1.ID {
		t.Errorf("listed %+v, want %+v", f, sales)
	}
	sameTime(t, "listed CreatedAt", list[1].CreatedAt, sales.CreatedAt)
	all, err := s.ListFromAddresses(ctx, 0)
	must(t, "ListFromAddresses all", err)
	var got []int64
	for _, f := range all {
		got = append(got, f.ID)
	}
	equalIDs(t, "ListFromAddresses(0) (by mailbox, then address)", got, []int64{billing.ID, sales.ID, sales2.ID})
	none, err := s.ListFromAddresses(ctx, out2.ID+1000)
	must(t, "ListFromAddresses of a missing mailbox", err)
	if len(none) != 0 {
		t.Errorf("ListFromAddresses of a missing mailbox = %+v, want none", none)
	}

	must(t, "DeleteFromAddress", s.DeleteFromAddress(ctx, sales.ID))
	wantErr(t, "DeleteFromAddress again", s.DeleteFromAddress(ctx, sales.ID), store.ErrNotFound)
	list, err = s.ListFromAddresses(ctx, out1.ID)
	must(t, "ListFromAddresses after delete", err)
	if len(list) != 1 || list[0].ID != billing.ID {
		t.Errorf("ListFromAddresses after delete = %+v, want billing only", list)
	}
	// The address is free again on its mailbox.
	_, err = s.AddFromAddress(ctx, store.FromAddress{MailboxID: out1.ID, Address: "sales@example.com"})
	must(t, "AddFromAddress after delete", err)
}
