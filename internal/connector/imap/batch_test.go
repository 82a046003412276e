package imap_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/connector/imap"
)

// bigMail is a message of about size bytes.
func bigMail(i, size int) []byte {
	head := fmt.Sprintf("From: c%d@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n", i, i, i)
	line := strings.Repeat("x", 998) + "\r\n"
	return []byte(head + strings.Repeat(line, max(size-len(head), 0)/len(line)+1))
}

// TestNextBatchesByBytes: large messages come a few at a time (a batch holds at most
// MaxBatchBytes of them, or one alone), small ones many at a time, each exactly once, whole
// and in order, also while Ack marks the previous batch \Seen as the next one is fetched.
func TestNextBatchesByBytes(t *testing.T) {
	d, cfg := setup(t)
	var sent [][]byte
	for i := range 12 {
		size := 500
		if i%3 == 0 {
			size = 3 << 20
		}
		raw := bigMail(i, size)
		sent = append(sent, raw)
		d.Append(t, user, "INBOX", raw)
	}
	s := dial(t, cfg)
	ctx := context.Background()
	var got [][]byte
	for batches := 0; ; batches++ {
		if batches > len(sent) {
			t.Fatalf("still fetching after %d batches", batches)
		}
		b, err := s.Next(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		var bytes int
		var ids []string
		for _, in := range b {
			got = append(got, in.Raw)
			bytes += len(in.Raw)
			ids = append(ids, in.SourceID)
		}
		if len(b) > 1 && bytes > imap.MaxBatchBytes {
			t.Errorf("a batch of %d messages holds %d bytes, more than %d", len(b), bytes, imap.MaxBatchBytes)
		}
		if err := s.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("%d messages fetched, want %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Errorf("message %d: %d bytes fetched, want the %d sent, in order", i, len(got[i]), len(sent[i]))
		}
	}
	for subj, flags := range flagsOf(t, d) {
		if !strings.Contains(flags, `\Seen`) {
			t.Errorf("%q is not \\Seen after its Ack", subj)
		}
	}
}
