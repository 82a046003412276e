package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// search lists the work items matching query (newest first) and fails the test on error.
func search(t *testing.T, s store.Store, query string) []int64 {
	t.Helper()
	list, err := s.ListWorkItems(t.Context(), store.WorkItemFilter{Query: query, Limit: 500})
	must(t, fmt.Sprintf("ListWorkItems Query %q", query), err)
	return ids(list)
}

// testSearch: a search finds a word in any field of any message of the conversation, in
// any script, and what a user types is never query syntax.
func testSearch(t *testing.T, s store.Store) {
	mb := newMailbox(t, s, "support", store.Inbound)
	parcel := mail(mb, "imap:1:1", "p@x", "Delivery question")
	parcel.Message.TextBody = "Hello, the parcel arrived DAMAGED. Order 4711-B."
	parcel.Message.Cc = "Claims Desk <claims@insurer.example>"
	p := ingest(t, s, parcel).WorkItemID

	scripts := mail(mb, "imap:1:2", "s@x", "Вопрос о заказе")
	scripts.Message.FromName, scripts.Message.FromAddr = "Δήμητρα", "dimitra@example.gr"
	scripts.Message.TextBody = "您好，我的订单还没有到。नमस्ते, मेरा ऑर्डर कहाँ है? Straße und Café."
	sc := ingest(t, s, scripts).WorkItemID

	other := mail(mb, "imap:1:3", "o@x", "Unrelated")
	other.Message.TextBody = "A and b. Nothing about deliveries"
	o := ingest(t, s, other).WorkItemID

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"damaged", []int64{p}},                // a word of the body only
		{"Damaged PARCEL", []int64{p}},         // any case, any order
		{"parcel missing", nil},                // every word must occur
		{"damag", []int64{p}},                  // the last word is a prefix
		{"damag parcel", nil},                  // ...the others are not
		{"insurer", []int64{p}},                // the Cc list
		{"claims@insurer.example", []int64{p}}, // an address is its words
		{"4711", []int64{p}},                   // digits
		{"заказе", []int64{sc}},                // Cyrillic subject
		{"ВОПРОС", []int64{sc}},                // ...in capitals
		{"δήμητρα", []int64{sc}},               // Greek sender name, lowered
		{"订单", []int64{sc}},                    // a Chinese word inside a run
		{"没有", []int64{sc}},                    // ...another one
		{"订", []int64{sc}},                     // ...one character
		{"单到", nil},                            // not adjacent in the text
		{"ऑर्डर", []int64{sc}},                 // Devanagari with vowel signs
		{"straße", []int64{sc}},                // ß kept
		{"café", []int64{sc}},                  // accents kept...
		{"cafe", nil},                          // ...and not folded away
		{"deliver", []int64{o, p}},             // prefix: "deliveries", "delivery"
		{"nothing-about", []int64{o}},          // punctuation separates words
		{`"damaged"`, []int64{p}},              // quotes are not syntax
		{`damaged*`, []int64{p}},               // nor *
		{`-damaged`, []int64{p}},               // nor - (no negation)
		{`(damaged)`, []int64{p}},              // nor parentheses
		{`doc:damaged`, nil},                   // nor a column filter: "doc" is a word
		{`damaged:`, []int64{p}},               // nor :
		{`damaged OR nothing`, nil},            // OR is a word
		{`NOT damaged`, nil},                   // NOT is a word
		{`a AND`, []int64{o}},                  // "a", and a word starting with "and"
		{`NEAR(damaged parcel)`, nil},          // NEAR is a word
		{`'damaged'`, []int64{p}},              // tsquery quotes
		{`damaged & !parcel | x`, nil},         // tsquery operators: x is a word
		{`damaged <-> parcel`, []int64{p}},     // tsquery phrase operator
		{`"`, nil}, {`*`, nil}, {`)`, nil}, {`-`, nil}, {`:`, nil}, {`\`, nil}, {`'`, nil}, {"%_", nil},
	} {
		equalIDs(t, fmt.Sprintf("search %q", tc.query), search(t, s, tc.query), tc.want)
	}
	// The sender's address (scripts has another).
	equalIDs(t, "search customer@example.org", search(t, s, "customer@example.org"), []int64{o, p})
}

// testSearchConversation: a work item is found through any message of its conversation:
// a later customer message and the agent's reply (stored as a message) too.
func testSearchConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newReplyFixture(t, s)
	second := mail(f.in, "imap:1:2", "q2@example.org", "Re: Question")
	second.Message.TextBody = "Any news about my refund?"
	if r := ingest(t, s, reply(second, "q@example.org")); r.WorkItemID != f.res.WorkItemID {
		t.Fatalf("the follow-up made work item %d, want %d", r.WorkItemID, f.res.WorkItemID)
	}
	equalIDs(t, "search a word of the follow-up", search(t, s, "refund"), []int64{f.res.WorkItemID})

	in := f.replyInput("r1@example.com")
	in.Message.TextBody = "We sent you a voucher."
	_, err := s.CreateReply(ctx, in)
	must(t, "CreateReply", err)
	equalIDs(t, "search a word of the agent's reply", search(t, s, "voucher"), []int64{f.res.WorkItemID})
	// Words of different messages of the conversation are not combined: each message is
	// matched on its own.
	equalIDs(t, "search words of two messages", search(t, s, "refund voucher"), nil)
}

// testSearchLarge: a message with a huge body and very long words is stored and indexed
// (PostgreSQL refuses a tsvector over 1 MiB and lexemes over 2046 bytes).
func testSearchLarge(t *testing.T, s store.Store) {
	mb := newMailbox(t, s, "support", store.Inbound)
	var body strings.Builder
	body.WriteString("needle " + strings.Repeat("Q", 5000) + " ")
	for i := range 60000 {
		fmt.Fprintf(&body, "w%dx ", i)
	}
	in := mail(mb, "imap:1:1", "big@x", "Log file")
	in.Message.TextBody = body.String()
	id := ingest(t, s, in).WorkItemID
	equalIDs(t, "search the first word of a huge body", search(t, s, "needle"), []int64{id})
	equalIDs(t, "search the start of a very long word", search(t, s, strings.Repeat("q", 40)), []int64{id})
	equalIDs(t, "search a word within the first 256 KiB", search(t, s, "w1000x"), []int64{id})
}

// testSearchPaging: paging, counts, sort and the other filters work with a search.
func testSearchPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	var hits []int64 // oldest first
	for i := range 7 {
		in := mail(mb, fmt.Sprintf("imap:1:%d", i), fmt.Sprintf("m%d@x", i), fmt.Sprintf("Item %d", i))
		if i%3 != 2 {
			in.Message.TextBody = "Please check the warranty terms."
		}
		res := ingest(t, s, in)
		if i%3 != 2 {
			hits = append(hits, res.WorkItemID)
		}
	}
	newest := []int64{hits[4], hits[3], hits[2], hits[1], hits[0]}
	n, err := s.CountWorkItems(ctx, store.WorkItemFilter{Query: "warranty", Limit: 2})
	if err != nil || n != 5 {
		t.Errorf("CountWorkItems warranty = %d, %v; want 5", n, err)
	}
	for _, tc := range []struct {
		f    store.WorkItemFilter
		want []int64
	}{
		{store.WorkItemFilter{Query: "warranty", Limit: 2}, newest[:2]},
		{store.WorkItemFilter{Query: "warranty", Limit: 2, Offset: 2}, newest[2:4]},
		{store.WorkItemFilter{Query: "warranty", Limit: 2, Offset: 4}, newest[4:]},
		{store.WorkItemFilter{Query: "warranty", Limit: 2, Offset: 6}, nil},
		{store.WorkItemFilter{Query: "warranty", Sort: "oldest", Limit: 3}, hits[:3]},
	} {
		got, err := s.ListWorkItems(ctx, tc.f)
		must(t, "ListWorkItems", err)
		equalIDs(t, fmt.Sprintf("ListWorkItems %+v", tc.f), ids(got), tc.want)
	}

	agent := newAgent(t, s, "alice")
	change(t, s, store.Change{WorkItemID: hits[1], From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent.ID})
	unassigned, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: "warranty", Unassigned: true, Sort: "oldest"})
	must(t, "ListWorkItems unassigned", err)
	equalIDs(t, "ListWorkItems Query warranty Unassigned", ids(unassigned), []int64{hits[0], hits[2], hits[3], hits[4]})
	if n, err := s.CountWorkItems(ctx, store.WorkItemFilter{Unassigned: true}); err != nil || n != 6 {
		t.Errorf("CountWorkItems Unassigned = %d, %v; want 6", n, err)
	}
	mine, err := s.ListWorkItems(ctx, store.WorkItemFilter{Query: "warranty", AssignedTo: agent.ID})
	must(t, "ListWorkItems assigned", err)
	equalIDs(t, "ListWorkItems Query warranty AssignedTo alice", ids(mine), []int64{hits[1]})
	if n, err := s.CountWorkItems(ctx, store.WorkItemFilter{Query: `"`}); err != nil || n != 0 {
		t.Errorf(`CountWorkItems Query " = %d, %v; want 0`, n, err)
	}
}

// testSavedViews: a user's views and the shared ones are listed for them, names are
// unique per user, and deleting the user deletes their views.
func testSavedViews(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := newAgent(t, s, "alice")
	bob := newAgent(t, s, "bob")
	sup, err := s.CreateUser(ctx, store.User{Username: "sue", DisplayName: "Sue Visor", Role: store.RoleSupervisor, PasswordHash: "h"})
	must(t, "CreateUser sue", err)
	_, err = s.CreateUser(ctx, store.User{Username: "admin", Role: store.RoleAdmin, PasswordHash: "h"})
	must(t, "CreateUser admin", err) // a user can be deleted while an admin is left

	mine, err := s.CreateSavedView(ctx, store.SavedView{UserID: alice.ID, Name: "My pending", Filter: "assignee=me&state=pending"})
	must(t, "CreateSavedView", err)
	if mine.ID == 0 || mine.CreatedAt.IsZero() || mine.OwnerName != "alice" {
		t.Errorf("CreateSavedView = %+v, want an id, a creation time and the owner's name", mine)
	}
	shared, err := s.CreateSavedView(ctx, store.SavedView{UserID: sup.ID, Name: "Billing, oldest first",
		Filter: "assignee=none&queue=2&sort=oldest", Shared: true})
	must(t, "CreateSavedView shared", err)
	_, err = s.CreateSavedView(ctx, store.SavedView{UserID: alice.ID, Name: "My pending", Filter: "state=done"})
	wantErr(t, "CreateSavedView with a name in use", err, store.ErrConflict)
	_, err = s.CreateSavedView(ctx, store.SavedView{UserID: bob.ID, Name: "My pending", Filter: "state=done"})
	must(t, "CreateSavedView, the same name for another user", err)
	_, err = s.CreateSavedView(ctx, store.SavedView{UserID: alice.ID + 1000, Name: "x"})
	wantErr(t, "CreateSavedView of a missing user", err, store.ErrNotFound)

	names := func(list []store.SavedView) string {
		var out []string
		for _, v := range list {
			out = append(out, fmt.Sprintf("%s/%d", v.Name, v.UserID))
		}
		return strings.Join(out, ", ")
	}
	list, err := s.ListSavedViews(ctx, alice.ID)
	must(t, "ListSavedViews alice", err)
	if got, want := names(list), fmt.Sprintf("Billing, oldest first/%d, My pending/%d", sup.ID, alice.ID); got != want {
		t.Errorf("views of alice = %s, want %s", got, want)
	}
	if len(list) == 2 && (list[0].Filter != shared.Filter || !list[0].Shared || list[0].OwnerName != "Sue Visor") {
		t.Errorf("shared view = %+v, want %+v", list[0], shared)
	}
	list, err = s.ListSavedViews(ctx, bob.ID)
	must(t, "ListSavedViews bob", err)
	if got, want := names(list), fmt.Sprintf("Billing, oldest first/%d, My pending/%d", sup.ID, bob.ID); got != want {
		t.Errorf("views of bob = %s, want %s (not alice's)", got, want)
	}

	got, err := s.SavedView(ctx, mine.ID)
	must(t, "SavedView", err)
	if got.Name != mine.Name || got.Filter != mine.Filter || got.UserID != alice.ID || got.Shared {
		t.Errorf("SavedView = %+v, want %+v", got, mine)
	}
	must(t, "DeleteSavedView", s.DeleteSavedView(ctx, mine.ID))
	_, err = s.SavedView(ctx, mine.ID)
	wantErr(t, "SavedView deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteSavedView again", s.DeleteSavedView(ctx, mine.ID), store.ErrNotFound)

	must(t, "DeleteUser sue", s.DeleteUser(ctx, sup.ID))
	list, err = s.ListSavedViews(ctx, alice.ID)
	must(t, "ListSavedViews after deleting the owner", err)
	if len(list) != 0 {
		t.Errorf("views after deleting their owner: %s, want none", names(list))
	}
	if _, err := s.SavedView(ctx, shared.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SavedView of a deleted owner: %v, want ErrNotFound", err)
	}
}

// testSearchDense: a word in more messages than a page walks the list in order (on
// SQLite, past denseMatches); the pages and the count are those of a rare word's.
func testSearchDense(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	const n = 1100
	var batch []store.InboundMessage
	for i := range n {
		in := mail(mb, fmt.Sprintf("imap:1:%d", i), fmt.Sprintf("d%d@x", i), fmt.Sprintf("Item %d", i))
		in.Message.TextBody = "Thank you for your order."
		if i%100 == 0 {
			in.Message.TextBody += " Rare words."
		}
		batch = append(batch, in)
	}
	res, err := s.IngestMessages(ctx, batch)
	must(t, "IngestMessages", err)
	newest := make([]int64, n)
	for i, r := range res {
		newest[n-1-i] = r.WorkItemID
	}
	agent := newAgent(t, s, "alice")
	change(t, s, store.Change{WorkItemID: newest[1], From: []string{store.StateQueued}, To: store.StateAssigned, AssignedTo: &agent.ID})
	for _, tc := range []struct {
		f    store.WorkItemFilter
		want []int64
	}{
		{store.WorkItemFilter{Query: "thank order", Limit: 3}, newest[:3]},
		{store.WorkItemFilter{Query: "thank order", Limit: 3, Offset: 1090}, newest[1090:1093]},
		{store.WorkItemFilter{Query: "thank order", Limit: 3, Offset: 1099}, newest[1099:]},
		{store.WorkItemFilter{Query: "thank", Limit: 3, Unassigned: true}, []int64{newest[0], newest[2], newest[3]}},
		{store.WorkItemFilter{Query: "thank", Limit: 2, State: store.StateAssigned}, newest[1:2]},
		{store.WorkItemFilter{Query: "rare", Limit: 2}, []int64{newest[99], newest[199]}},
	} {
		got, err := s.ListWorkItems(ctx, tc.f)
		must(t, "ListWorkItems", err)
		equalIDs(t, fmt.Sprintf("ListWorkItems %+v", tc.f), ids(got), tc.want)
	}
	for q, want := range map[string]int{"thank order": n, "rare": n / 100, "thank rare": n / 100} {
		if c, err := s.CountWorkItems(ctx, store.WorkItemFilter{Query: q}); err != nil || c != want {
			t.Errorf("CountWorkItems %q = %d, %v; want %d", q, c, err, want)
		}
	}
}
