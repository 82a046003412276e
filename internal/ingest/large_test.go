package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// largeMail is a customer email with a base64 attachment of the given content, and a
// small text part before it.
func largeMail(i int, name string, content []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(content)
	var b strings.Builder
	fmt.Fprintf(&b, "From: Customer <customer@example.org>\r\nTo: support@example.test\r\n"+
		"Subject: Scan %d\r\nMessage-ID: <scan-%d@example.org>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"+
		"--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe scan is attached.\r\n"+
		"--b%d\r\nContent-Type: application/pdf; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		i, i, i, i, i, name)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	fmt.Fprintf(&b, "%s\r\n--b%d--\r\n", enc, i)
	return []byte(b.String())
}

// TestLargeMessages: messages with attachments of several MB (larger than one fetch batch
// holds, and than what the parser keeps in memory) arrive whole: the raw source and each
// attachment read back byte for byte, one work item each, all acknowledged. Small ones in
// between keep their order.
func TestLargeMessages(t *testing.T) {
	e := newTestEnv(t)
	r := rand.New(rand.NewPCG(1, 2))
	var raws [][]byte
	var contents [][]byte
	for i := range 5 {
		n := 64 << 10 // small
		if i%2 == 0 {
			n = (3 + i) << 20 // 3, 5 and 7 MB: a batch holds at most one or two of them
		}
		c := make([]byte, n)
		for j := range c {
			c[j] = byte(r.Uint32())
		}
		contents = append(contents, c)
		raw := largeMail(i, fmt.Sprintf("scan-%d.pdf", i), c)
		raws = append(raws, raw)
		e.d.Append(t, e.user, "INBOX", raw)
	}
	m := e.mailbox("support", "INBOX", e.password)
	e.run(Options{})
	e.waitAllSeen("INBOX", len(raws))
	if n := e.count(m.ID); n != len(raws) {
		t.Fatalf("%d messages stored, want %d", n, len(raws))
	}
	ctx := context.Background()
	byName := e.messagesBySubject()
	for i, raw := range raws {
		msgs := byName[fmt.Sprintf("Scan %d", i)]
		if len(msgs) != 1 {
			t.Errorf("Scan %d stored %d times, want once", i, len(msgs))
			continue
		}
		got, err := e.st.RawMessage(ctx, msgs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("Scan %d: raw source of %d bytes read back, want the %d sent", i, len(got), len(raw))
		}
		if len(msgs[0].Attachments) != 1 {
			t.Errorf("Scan %d has %d attachments, want 1", i, len(msgs[0].Attachments))
			continue
		}
		a, err := e.st.Attachment(ctx, msgs[0].Attachments[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Filename != fmt.Sprintf("scan-%d.pdf", i) || !bytes.Equal(a.Data, contents[i]) || a.Size != int64(len(contents[i])) {
			t.Errorf("Scan %d: attachment %q of %d bytes (Size %d), want scan-%d.pdf with the %d bytes sent",
				i, a.Filename, len(a.Data), a.Size, i, len(contents[i]))
		}
	}
	if n := len(e.workItems()); n != len(raws) {
		t.Errorf("%d work items, want %d", n, len(raws))
	}
}
