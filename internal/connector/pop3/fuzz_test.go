package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzResponse feeds arbitrary server output to the response parsers (status line,
// listing, streamed message) and checks that they never panic, respect their limits and
// that byte-stuffing round-trips: whatever a server stuffs, dotReader gives back.
//
//	go test -fuzz FuzzResponse -fuzztime 60s ./internal/connector/pop3/
func FuzzResponse(f *testing.F) {
	seeds := []string{
		"+OK Dovecot ready.\r\n",
		"-ERR [AUTH] Authentication failed.\r\n",
		"-ERR [IN-USE] Maximum number of connections from user+IP exceeded\r\n",
		"-ERR [SYS/TEMP] try again\r\n",
		"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n",
		"+OK 2 messages:\r\n1 320\r\n2 4096\r\n.\r\n",
		"+OK\r\n1 000000016578c3a1\r\n2 000000026578c3a1\r\n.\r\n",
		"+OK 120 octets\r\nSubject: x\r\n\r\n..leading\r\n.\r\n",
		"+OK\r\n.\r\n",
		"+ \r\n",
		"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
		"+OK\nbare\nlf\n.\n",
		".\rx\r\n.\r\n",
		"-ERR [",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 64)
		if line, err := readLine(r); err == nil {
			if len(line) > maxLineLength {
				t.Fatalf("line of %d octets passed the limit", len(line))
			}
			_, err := parseStatus("F", line)
			var pe *Error
			if errors.As(err, &pe) && strings.ContainsAny(string(pe.Code), "] \r\n") {
				t.Fatalf("response code %q has a character RFC 2449 excludes", pe.Code)
			}
		}
		_ = readListing(r, "UIDL", func(line []byte) error {
			if _, uid, err := parseUIDListing(line); err == nil && !validUIDL(uid) {
				t.Fatalf("invalid unique-id %q accepted", uid)
			}
			if n, size, err := parseScanListing(line); err == nil && (n < 1 || size < 0) {
				t.Fatalf("LIST line %q gave %d %d", line, n, size)
			}
			return nil
		})
		_, _ = io.Copy(io.Discard, &dotReader{r: r})

		// Round trip: stuffed and terminated, the data comes back as it was (with a final
		// CRLF added when its last line had none).
		want := data
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(bytes.Clone(want), '\r', '\n')
		}
		wire := append(stuff(data), "+OK after"...)
		rr := bufio.NewReaderSize(bytes.NewReader(wire), 16)
		got, err := io.ReadAll(&dotReader{r: rr})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round trip of %q: got %q, %v", data, got, err)
		}
		if rest, _ := io.ReadAll(rr); string(rest) != "+OK after" {
			t.Fatalf("round trip of %q: left %q after the terminator", data, rest)
		}
	})
}
