package ingest

import (
	"testing"
	"time"
)

// TestBackoff: the wait after n failures in a row doubles from about a second up to about
// five minutes, always within ±25% of the nominal value.
func TestBackoff(t *testing.T) {
	nominal := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, want := range nominal {
		for range 50 {
			got := backoff(i + 1)
			if got < want*3/4 || got > want*5/4 {
				t.Fatalf("backoff(%d) = %v, want %v ±25%%", i+1, got, want)
			}
		}
	}
	for _, n := range []int{10, 20, 1000} {
		if got := backoff(n); got > maxBackoff*5/4 || got < maxBackoff*3/4 {
			t.Errorf("backoff(%d) = %v, want about %v", n, got, maxBackoff)
		}
	}
}

// TestSpread: the wait between two reads of a mailbox is never longer than its poll
// interval, never shorter than nine tenths of it, and not the same for every mailbox.
func TestSpread(t *testing.T) {
	const poll = time.Minute
	seen := map[time.Duration]bool{}
	for range 200 {
		got := spread(poll)
		if got > poll || got < poll*9/10 {
			t.Fatalf("spread(%v) = %v, want between %v and %v", poll, got, poll*9/10, poll)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Errorf("spread(%v) gave the same wait 200 times: mailboxes started together would wake together", poll)
	}
	if got := spread(0); got != 0 {
		t.Errorf("spread(0) = %v, want 0", got)
	}
}
