package web

import (
	"testing"
	"time"
)

func TestFlashes(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	f := newFlashes(func() time.Time { return now })
	k := flashKey{session: "s1", kind: flashReplySent, id: 7}
	f.put(k, int64(42))
	if _, ok := f.peek(flashKey{session: "s2", kind: flashReplySent, id: 7}); ok {
		t.Error("another session sees the flash")
	}
	if v, ok := f.peek(k); !ok || v.(int64) != 42 {
		t.Fatalf("peek = %v %v", v, ok)
	}
	if v, ok := f.take(k); !ok || v.(int64) != 42 {
		t.Fatalf("take after peek = %v %v, want the value kept by peek", v, ok)
	}
	if _, ok := f.take(k); ok {
		t.Error("take returned the flash twice")
	}
	f.put(k, int64(1))
	now = now.Add(flashLifetime)
	if _, ok := f.peek(k); ok {
		t.Error("a flash outlived flashLifetime")
	}
	for i := range maxFlashes + 10 {
		f.put(flashKey{session: "s", kind: flashTestReport, id: int64(i)}, i)
	}
	if n := len(f.entries); n > maxFlashes {
		t.Errorf("%d flashes kept, want at most %d", n, maxFlashes)
	}
	last := flashKey{session: "s", kind: flashTestReport, id: int64(maxFlashes + 9)}
	if _, ok := f.peek(last); !ok {
		t.Error("the newest flash was dropped to make room")
	}
}
