package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// testRoutingAudit: a routing object's save and delete and a queue's settings write their
// audit events in the same transaction: a save that fails writes none.
func testRoutingAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	o, err := s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSchema, Name: "Fast", Spec: []byte(`{"start":1}`)},
		store.AuditEvent{Actor: "ana", Action: "schema.save", New: "Fast"})
	must(t, "SaveRoutingObject", err)
	// The same name again is refused, and leaves no audit event behind.
	_, err = s.SaveRoutingObject(ctx, store.RoutingObject{Kind: store.KindSchema, Name: "Fast", Spec: []byte(`{}`)},
		store.AuditEvent{Actor: "ana", Action: "schema.save", New: "Fast again"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v, want ErrConflict", err)
	}
	q, err := s.EnsureDefaultQueue(ctx)
	must(t, "EnsureDefaultQueue", err)
	must(t, "SetQueueSpec", s.SetQueueSpec(ctx, q.ID, q.Name, []byte(`{"max_depth":5}`),
		store.AuditEvent{Actor: "ana", Action: "queue.settings", New: `{"max_depth":5}`}))
	must(t, "DeleteRoutingObject", s.DeleteRoutingObject(ctx, o.ID, store.AuditEvent{Actor: "ana", Action: "schema.delete", Object: fmt.Sprintf("schema:%d", o.ID)}))

	events, err := s.ListAudit(ctx, 10)
	must(t, "ListAudit", err)
	var got []string
	for i := len(events) - 1; i >= 0; i-- {
		got = append(got, events[i].Action+" "+events[i].Object+" "+events[i].New)
	}
	want := []string{
		fmt.Sprintf("schema.save schema:%d Fast", o.ID),
		fmt.Sprintf("queue.settings queue:%d {\"max_depth\":5}", q.ID),
		fmt.Sprintf("schema.delete schema:%d ", o.ID),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
}
