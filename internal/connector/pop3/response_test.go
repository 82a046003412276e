package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		line     string
		ok       bool
		text     string
		code     ResponseCode
		protocol bool
	}{
		{line: "+OK", ok: true},
		{line: "+OK Dovecot ready.", ok: true, text: "Dovecot ready."},
		{line: "+ok 2 320", ok: true, text: "2 320"},
		{line: "-ERR", text: ""},
		{line: "-ERR [AUTH] Authentication failed.", code: CodeAuth, text: "Authentication failed."},
		{line: "-ERR [IN-USE] Maximum number of connections exceeded", code: CodeInUse, text: "Maximum number of connections exceeded"},
		{line: "-ERR [SYS/TEMP] try later", code: CodeSysTemp, text: "try later"},
		{line: "-ERR [sys/perm] no", code: CodeSysPerm, text: "no"},
		{line: "-ERR [LOGIN-DELAY]", code: CodeLoginDelay},
		{line: "-ERR [bad", text: "[bad"},
		{line: "-ERR [A//B] x", text: "[A//B] x"},
		{line: "-ERR [] x", text: "[] x"},
		{line: "-ERR no such message", text: "no such message"},
		{line: "+OKAY", protocol: true},
		{line: "* OK IMAP4rev1", protocol: true},
		{line: "", protocol: true},
		{line: "220 smtp.example.com ESMTP", protocol: true},
	}
	for _, tt := range tests {
		text, err := parseStatus("X", []byte(tt.line))
		var pe *Error
		switch {
		case tt.protocol:
			if !errors.Is(err, errProtocol) {
				t.Errorf("%q: %v, want a protocol error", tt.line, err)
			}
		case tt.ok:
			if err != nil || text != tt.text {
				t.Errorf("%q: text %q err %v, want %q", tt.line, text, err, tt.text)
			}
		case !errors.As(err, &pe):
			t.Errorf("%q: %v, want *Error", tt.line, err)
		case pe.Code != tt.code || pe.Text != tt.text || pe.Command != "X":
			t.Errorf("%q: %+v, want code %q text %q", tt.line, pe, tt.code, tt.text)
		}
	}
}

func TestParseListings(t *testing.T) {
	if n, size, err := parseScanListing([]byte("3 1200 extra")); err != nil || n != 3 || size != 1200 {
		t.Errorf("LIST line: %d %d %v", n, size, err)
	}
	for _, bad := range []string{"", "3", "0 10", "-1 10", "a 10", "3 -5", "3 x"} {
		if _, _, err := parseScanListing([]byte(bad)); err == nil {
			t.Errorf("LIST line %q accepted", bad)
		}
	}
	if n, uid, err := parseUIDListing([]byte("7 000000016578c3a1")); err != nil || n != 7 || uid != "000000016578c3a1" {
		t.Errorf("UIDL line: %d %q %v", n, uid, err)
	}
	for _, bad := range []string{"7", "0 abc", "x abc", "7 " + strings.Repeat("a", 71), "7 \x7fa"} {
		if _, _, err := parseUIDListing([]byte(bad)); err == nil {
			t.Errorf("UIDL line %q accepted", bad)
		}
	}
	if n, size, err := parseStat("2 320"); err != nil || n != 2 || size != 320 {
		t.Errorf("STAT: %d %d %v", n, size, err)
	}
}

// TestDotReader: byte-stuffing is undone, line ends pass unchanged, the reader stops at
// the terminator and leaves what follows, and a cut-off stream is an error.
func TestDotReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{".\r\n", ""},
		{"a\r\n.\r\n", "a\r\n"},
		{"..\r\n.\r\n", ".\r\n"},
		{"...x\r\n.\r\n", "..x\r\n"},
		{".x\r\n.\r\n", "x\r\n"}, // an unneeded stuffing dot is removed too (RFC 1939 §3)
		{"a\nb\n.\n", "a\nb\n"},
		{".\rx\r\n.\r\n", "\rx\r\n"},
		{"a.b\r\n.c\r\n.\r\n", "a.b\r\nc\r\n"},
	}
	for _, tt := range tests {
		r := bufio.NewReader(strings.NewReader(tt.in + "+OK next"))
		// One byte at a time exercises every state change at a buffer edge.
		got, err := io.ReadAll(iotest.OneByteReader(&dotReader{r: r}))
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.in, got, err, tt.want)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "+OK next" {
			t.Errorf("%q: left %q after the terminator", tt.in, rest)
		}
	}
	for _, cut := range []string{"", "abc", "abc\r\n", "abc\r\n.", "abc\r\n.\r"} {
		_, err := io.ReadAll(&dotReader{r: bufio.NewReader(strings.NewReader(cut))})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v, want unexpected EOF", cut, err)
		}
	}
}

func TestReadLineLimit(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", maxLineLength)+"\r\n"), 16)
	if _, err := readLine(r); !errors.Is(err, errProtocol) {
		t.Fatalf("over-long line: %v", err)
	}
	r = bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", maxLineLength-2)+"\r\n"), 16)
	if line, err := readLine(r); err != nil || len(line) != maxLineLength-2 {
		t.Fatalf("longest line: %d %v", len(line), err)
	}
}

// stuff is the server side of RFC 1939 §3: a "." at the start of a line is doubled and
// ".CRLF" ends the answer.
func stuff(body []byte) []byte {
	var b bytes.Buffer
	bol := true
	for _, c := range body {
		if bol && c == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(c)
		bol = c == '\n'
	}
	if !bol {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}
