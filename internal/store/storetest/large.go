package storetest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// pattern returns n bytes that differ from chunk to chunk (any split or reordering of the
// stored pieces shows).
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i) + byte(i>>10) + byte(i>>18)
	}
	return b
}

// testIngestLarge: a large raw message and large attachments (given whole in Data, or as a
// stream through Open) come back byte for byte, also after a failed transaction made the
// store read a stream twice; an outbound message's large raw source reaches the outbox
// whole.
func testIngestLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := newMailbox(t, s, "large", store.Inbound)
	body := pattern(3<<20+12345, 1) // several chunks and a short last one
	raw := append([]byte("Message-ID: <big@example.org>\r\nSubject: Big\r\n\r\n"), body...)
	whole := pattern(1<<20, 2)        // exactly a few chunks
	streamed := pattern(2<<20+777, 3) // streamed in chunks
	short := pattern(100, 4)          // streamed, less than a chunk
	miscounted := pattern(300<<10, 5) // streamed, its Size wrong
	opens := 0
	open := func(b []byte) func() (io.Reader, error) {
		return func() (io.Reader, error) { opens++; return bytes.NewReader(b), nil }
	}
	in := mail(mb, "imap:1:1", "big@example.org", "Big")
	in.Raw = raw
	in.Message.Size = int64(len(raw))
	in.Message.Attachments = []store.Attachment{
		{Filename: "whole.bin", ContentType: "application/octet-stream", Size: int64(len(whole)), Data: whole},
		{Filename: "streamed.bin", ContentType: "application/octet-stream", Size: int64(len(streamed)), Open: open(streamed)},
		{Filename: "short.bin", ContentType: "application/octet-stream", Size: int64(len(short)), Open: open(short)},
		{Filename: "miscounted.bin", ContentType: "application/octet-stream", Size: 1, Open: open(miscounted)},
	}
	// The first try fails after the attachments were written (a missing mailbox's
	// cursor); the retry reads every stream again.
	bad := in
	bad.Cursor = &store.Cursor{MailboxID: mb.ID + 1000, Value: "1:1"}
	if _, err := s.IngestMessage(ctx, bad); err == nil {
		t.Fatal("IngestMessage with a cursor of a missing mailbox succeeded, want an error")
	}
	res := ingest(t, s, in)
	if opens != 6 {
		t.Errorf("the streams were opened %d times over two transactions, want 6", opens)
	}

	got, err := s.RawMessage(ctx, res.MessageID)
	must(t, "RawMessage", err)
	if !bytes.Equal(got, raw) {
		t.Errorf("RawMessage: %d bytes, want the %d stored, byte for byte", len(got), len(raw))
	}
	m, err := s.Message(ctx, res.MessageID)
	must(t, "Message", err)
	want := map[string][]byte{"whole.bin": whole, "streamed.bin": streamed, "short.bin": short, "miscounted.bin": miscounted}
	if len(m.Attachments) != len(want) {
		t.Fatalf("%d attachments, want %d", len(m.Attachments), len(want))
	}
	for _, a := range m.Attachments {
		w := want[a.Filename]
		if a.Size != int64(len(w)) {
			t.Errorf("%s: Size %d, want %d (what was stored)", a.Filename, a.Size, len(w))
		}
		full, err := s.Attachment(ctx, a.ID)
		must(t, "Attachment "+a.Filename, err)
		if !bytes.Equal(full.Data, w) || full.Size != int64(len(w)) {
			t.Errorf("Attachment %s: %d bytes (Size %d), want the %d stored, byte for byte", a.Filename, len(full.Data), full.Size, len(w))
		}
	}

	// An outbound message's raw source is kept whole: the outbox sends it from there.
	f := newReplyFixture(t, s)
	reply := f.replyInput("big-reply@example.org")
	reply.Raw = append([]byte("Message-ID: <big-reply@example.org>\r\n\r\n"), []byte(strings.Repeat("quoted text\r\n", 80000))...)
	item, err := s.CreateReply(ctx, reply)
	must(t, "CreateReply", err)
	got, err = s.RawMessage(ctx, item.MessageID)
	must(t, "RawMessage of the reply", err)
	if !bytes.Equal(got, reply.Raw) {
		t.Errorf("RawMessage of the reply: %d bytes, want the %d stored", len(got), len(reply.Raw))
	}
	out, err := s.OutboxItem(ctx, item.ID)
	must(t, "OutboxItem", err)
	if !bytes.Equal(out.Raw, reply.Raw) {
		t.Errorf("the outbox holds %d bytes of the reply, want all %d", len(out.Raw), len(reply.Raw))
	}
}
