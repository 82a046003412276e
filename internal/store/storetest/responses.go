package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// testResponseTemplates: canned responses are created, listed global first, renamed,
// refused under a name their queue already has (whatever the case), and deleted.
func testResponseTemplates(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := time.Now()
	q, err := s.CreateQueue(ctx, store.Queue{Name: "Billing"})
	must(t, "CreateQueue", err)
	refund, err := s.SaveResponseTemplate(ctx, store.ResponseTemplate{QueueID: q.ID, Name: "Refund", Body: "Hello {{.CustomerName}}"})
	must(t, "SaveResponseTemplate refund", err)
	thanks, err := s.SaveResponseTemplate(ctx, store.ResponseTemplate{Name: "Thanks", Body: "Thank you"})
	must(t, "SaveResponseTemplate thanks", err)
	if refund.ID == 0 || thanks.ID == 0 || refund.ID == thanks.ID {
		t.Fatalf("ids %d and %d, want two distinct ids", refund.ID, thanks.ID)
	}
	recent(t, "CreatedAt", refund.CreatedAt, start)

	_, err = s.SaveResponseTemplate(ctx, store.ResponseTemplate{QueueID: q.ID, Name: "REFUND", Body: "again"})
	wantErr(t, "a second REFUND in Billing", err, store.ErrConflict)
	// The same name in another scope is another template.
	_, err = s.SaveResponseTemplate(ctx, store.ResponseTemplate{Name: "refund", Body: "global"})
	must(t, "global refund", err)

	list, err := s.ResponseTemplates(ctx)
	must(t, "ResponseTemplates", err)
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	if want := []string{"refund", "Thanks", "Refund"}; !slices.Equal(names, want) {
		t.Errorf("ResponseTemplates names = %v, want %v (global first, then by queue)", names, want)
	}

	refund.Name, refund.Body = "Refund issued", "Your refund for #{{.WorkItem}} is on its way."
	saved, err := s.SaveResponseTemplate(ctx, refund)
	must(t, "update refund", err)
	got, err := s.ResponseTemplate(ctx, refund.ID)
	must(t, "ResponseTemplate", err)
	if got.Name != "Refund issued" || got.Body != refund.Body || got.QueueID != q.ID {
		t.Errorf("after update: %+v", got)
	}
	sameTime(t, "CreatedAt after update", got.CreatedAt, saved.CreatedAt)

	_, err = s.SaveResponseTemplate(ctx, store.ResponseTemplate{ID: 9999, Name: "ghost", Body: "x"})
	wantErr(t, "update of a missing template", err, store.ErrNotFound)

	must(t, "DeleteResponseTemplate", s.DeleteResponseTemplate(ctx, thanks.ID))
	_, err = s.ResponseTemplate(ctx, thanks.ID)
	wantErr(t, "deleted template", err, store.ErrNotFound)
	wantErr(t, "delete twice", s.DeleteResponseTemplate(ctx, thanks.ID), store.ErrNotFound)
}

// testSignatures: one signature per address (whatever the case) and one per queue; a
// second save replaces the first.
func testSignatures(t *testing.T, s store.Store) {
	ctx := t.Context()
	q, err := s.CreateQueue(ctx, store.Queue{Name: "Support"})
	must(t, "CreateQueue", err)
	a, err := s.SetSignature(ctx, store.Signature{Address: "Help@Example.com", Body: "-- \n{{.AgentName}}"})
	must(t, "SetSignature address", err)
	qs, err := s.SetSignature(ctx, store.Signature{QueueID: q.ID, Body: "Support team"})
	must(t, "SetSignature queue", err)
	again, err := s.SetSignature(ctx, store.Signature{Address: "help@example.com", Body: "Kind regards,\n{{.AgentName}}"})
	must(t, "SetSignature again", err)
	if again.ID != a.ID {
		t.Errorf("a second signature of the same address got id %d, want %d (replaced)", again.ID, a.ID)
	}
	list, err := s.Signatures(ctx)
	must(t, "Signatures", err)
	if len(list) != 2 || list[0].Address != "help@example.com" || list[0].Body != "Kind regards,\n{{.AgentName}}" ||
		list[1].QueueID != q.ID || list[1].ID != qs.ID || list[1].Address != "" {
		t.Fatalf("Signatures = %+v, want the address's (replaced) then the queue's", list)
	}
	must(t, "DeleteSignature", s.DeleteSignature(ctx, qs.ID))
	wantErr(t, "delete twice", s.DeleteSignature(ctx, qs.ID), store.ErrNotFound)
	if list, _ = s.Signatures(ctx); len(list) != 1 {
		t.Errorf("after delete: %+v", list)
	}
}

// testDrafts: a draft is per user and work item, replaced by the next save, removed by
// DeleteDraft, refused for a missing work item, and gone with its work item's user.
func testDrafts(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "support", store.Inbound)
	res := ingest(t, s, mail(mb, "imap:1:1", "d1@example.org", "Broken printer"))
	_, err := s.CreateUser(ctx, store.User{Username: "root", Role: store.RoleAdmin, PasswordHash: "x"})
	must(t, "CreateUser root", err)
	ana, err := s.CreateUser(ctx, store.User{Username: "ana", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser ana", err)
	ben, err := s.CreateUser(ctx, store.User{Username: "ben", Role: store.RoleAgent, PasswordHash: "x"})
	must(t, "CreateUser ben", err)

	_, err = s.Draft(ctx, ana.ID, res.WorkItemID)
	wantErr(t, "no draft yet", err, store.ErrNotFound)

	d := store.Draft{UserID: ana.ID, WorkItemID: res.WorkItemID, Text: "Hello,\nfirst try", Cc: []string{"a@example.org", " ", "\"Doe, J\" <j@example.org>"},
		Bcc: []string{"boss@example.com"}, From: "help@example.com", ReplyAll: true}
	_, err = s.SaveDraft(ctx, d)
	must(t, "SaveDraft", err)
	got, err := s.Draft(ctx, ana.ID, res.WorkItemID)
	must(t, "Draft", err)
	if got.Text != d.Text || !slices.Equal(got.Cc, []string{"a@example.org", "\"Doe, J\" <j@example.org>"}) ||
		!slices.Equal(got.Bcc, d.Bcc) || got.From != d.From || !got.ReplyAll || got.UpdatedAt.IsZero() {
		t.Fatalf("Draft = %+v, want what was saved (blank Cc entries dropped)", got)
	}
	_, err = s.Draft(ctx, ben.ID, res.WorkItemID)
	wantErr(t, "ben's draft", err, store.ErrNotFound)

	d.Text, d.Cc, d.Bcc, d.ReplyAll = "second try", nil, nil, false
	_, err = s.SaveDraft(ctx, d)
	must(t, "SaveDraft again", err)
	if got, _ = s.Draft(ctx, ana.ID, res.WorkItemID); got.Text != "second try" || got.Cc != nil || got.ReplyAll {
		t.Errorf("after the second save: %+v", got)
	}

	_, err = s.SaveDraft(ctx, store.Draft{UserID: ana.ID, WorkItemID: 9999, Text: "x"})
	wantErr(t, "draft on a missing work item", err, store.ErrNotFound)

	must(t, "DeleteDraft", s.DeleteDraft(ctx, ana.ID, res.WorkItemID))
	_, err = s.Draft(ctx, ana.ID, res.WorkItemID)
	wantErr(t, "deleted draft", err, store.ErrNotFound)
	must(t, "DeleteDraft of none", s.DeleteDraft(ctx, ana.ID, res.WorkItemID))

	_, err = s.SaveDraft(ctx, store.Draft{UserID: ben.ID, WorkItemID: res.WorkItemID, Text: "ben's"})
	must(t, "SaveDraft ben", err)
	must(t, "DeleteUser ben", s.DeleteUser(ctx, ben.ID))
	_, err = s.Draft(ctx, ben.ID, res.WorkItemID)
	wantErr(t, "draft of a deleted user", err, store.ErrNotFound)
}
