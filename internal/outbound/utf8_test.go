package outbound_test

import (
	"context"
	"errors"
	"testing"

	"github.com/postroom/postroom/internal/outbound"
	"github.com/postroom/postroom/internal/store"
)

// TestTextMustBeUTF8: a reply, forward or new email whose text (or subject) is not valid
// UTF-8 is refused with a field error on that field, for the pages and the API alike.
func TestTextMustBeUTF8(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addOutbound(t, "127.0.0.1", 25, "none", "", "")
	bad := "caf\xe9 \xff"
	check := func(what, field string, err error) {
		t.Helper()
		var fe *outbound.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s with invalid UTF-8: %v, want a field error on %s", what, err, field)
		}
	}
	_, err := f.svc.Reply(ctx, f.agent, f.workItem, outbound.ReplyRequest{Text: bad})
	check("reply", "text", err)
	_, err = f.svc.Forward(ctx, f.agent, f.workItem, outbound.ForwardRequest{Text: bad, To: []string{"boss@example.test"}})
	check("forward", "text", err)
	_, err = f.svc.NewEmail(ctx, f.agent, outbound.NewEmailRequest{Text: bad, Subject: "Hi", To: []string{"ana@example.org"}})
	check("new email", "text", err)
	_, err = f.svc.NewEmail(ctx, f.agent, outbound.NewEmailRequest{Text: "Hello", Subject: "\xffHi", To: []string{"ana@example.org"}})
	check("new email subject", "subject", err)
	if n, err := f.st.CountOutbox(ctx, store.OutboxQueued); err != nil || n != 0 {
		t.Errorf("outbox holds %d (%v), want none", n, err)
	}
}
