package graph_test

import (
	"context"
	"errors"
	"testing"

	"github.com/postroom/postroom/internal/connector"
	"github.com/postroom/postroom/internal/connector/graph"
	"github.com/postroom/postroom/internal/mstest"
)

// TestDraftSendSteps: PrepareDraft makes the reply a draft (nothing sent), DraftState
// reads it as unsent, SendDraft sends it once, and afterwards DraftState reads the same
// id as sent (the Sent Items copy keeps the immutable id), and as sent too when Graph
// answers 404 ErrorItemNotFound (the copy not there yet). Any other failure is an error,
// never "sent": a 404 for an unknown mailbox must not make a reply count as sent.
func TestDraftSendSteps(t *testing.T) {
	e := newEnv(t, mstest.Options{})
	ctx := context.Background()
	s := e.sink(t)
	raw := reply("Content-Type: text/plain; charset=utf-8\r\n", "Hello Ana,\r\n\r\nyour parcel left today.\r\n")
	id, err := s.PrepareDraft(ctx, e.sample.Mailbox, []string{"ana@example.net"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Sent(e.sample.Mailbox)); n != 0 {
		t.Fatalf("PrepareDraft sent %d messages, want none", n)
	}
	if st, err := s.DraftState(ctx, id); err != nil || st != graph.DraftUnsent {
		t.Fatalf("DraftState before sending = %v, %v; want unsent", st, err)
	}
	if err := s.SendDraft(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, err := s.DraftState(ctx, id); err != nil || st != graph.DraftSent {
		t.Fatalf("DraftState after sending = %v, %v; want sent", st, err)
	}
	e.srv.FailNext(mstest.Fault{PathContains: id, Status: 404, Code: "ErrorItemNotFound"})
	if st, err := s.DraftState(ctx, id); err != nil || st != graph.DraftSent {
		t.Fatalf("DraftState on 404 ErrorItemNotFound = %v, %v; want sent", st, err)
	}
	if n := len(e.srv.Sent(e.sample.Mailbox)); n != 1 {
		t.Fatalf("%d messages sent, want exactly 1", n)
	}
	drafts, err := e.srv.Messages(e.sample.Mailbox, "drafts")
	if err != nil || len(drafts) != 0 {
		t.Fatalf("drafts left: %d, %v", len(drafts), err)
	}

	cfg := e.config()
	cfg.Mailbox = "nobody@" + e.sample.Mailbox[len("support@"):]
	other, err := graph.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := other.DraftState(ctx, id)
	if err == nil || st == graph.DraftSent {
		t.Fatalf("DraftState in an unknown mailbox = %v, %v; want an error, not sent", st, err)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Advice == "" {
		t.Errorf("DraftState in an unknown mailbox: %v, want a *connector.Error with advice", err)
	}
}
