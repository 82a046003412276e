package imap

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadLiteral: a body comes back whole whether its buffer is allocated at once (the
// size the server announced) or grows (a size far from the announced one); a body cut
// short is an error, never a shorter message.
func TestReadLiteral(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	n := int64(len(body))
	for _, c := range []struct {
		name      string
		announced int64
	}{
		{"as announced", n},
		{"a little larger than announced", n - 100},
		{"far larger than announced", 10},
		{"nothing announced", 0},
	} {
		got, err := readLiteral(bytes.NewReader(body), n, c.announced)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: %d bytes, %v; want the %d sent", c.name, len(got), err, n)
		}
	}
	for _, announced := range []int64{n, 0} {
		got, err := readLiteral(bytes.NewReader(body[:n-5]), n, announced)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "cut short") {
			t.Errorf("body cut short (announced %d): %d bytes, error %v; want a cut-short error", announced, len(got), err)
		}
	}
}
