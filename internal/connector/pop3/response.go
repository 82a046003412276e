package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the wire format.
const (
	// maxLineLength bounds one response line (status, CAPA, LIST, UIDL, SASL challenge),
	// CRLF included. RFC 2449 §4 limits a status line to 512 octets, but servers send longer
	// texts and SASL challenges; 8 KiB keeps a broken peer from growing memory without end.
	maxLineLength = 8 << 10
	// maxCommandLength is the longest command line, CRLF included (RFC 2449 §4). It decides
	// whether an AUTH initial response may be sent on the command line (RFC 5034 §4).
	maxCommandLength = 255
	// maxListingLines bounds the lines of one LIST, UIDL or CAPA answer: one line per
	// message, so a million covers any real maildrop and stops a server that never ends.
	maxListingLines = 1 << 20
	// maxUIDLLength is the longest unique-id (RFC 1939 §7: 1 to 70 characters).
	maxUIDLLength = 70
)

// ResponseCode is an extended response code of a "-ERR" line (RFC 2449 §8, RFC 3206).
type ResponseCode string

// Response codes postroom acts on.
const (
	CodeAuth       ResponseCode = "AUTH"        // the credentials are wrong (RFC 3206 §5)
	CodeSysTemp    ResponseCode = "SYS/TEMP"    // a temporary server problem (RFC 3206 §4)
	CodeSysPerm    ResponseCode = "SYS/PERM"    // a lasting server problem (RFC 3206 §4)
	CodeInUse      ResponseCode = "IN-USE"      // another session holds the maildrop (RFC 2449 §8.1.1)
	CodeLoginDelay ResponseCode = "LOGIN-DELAY" // logged in too soon after the last login (RFC 2449 §8.1.2)
)

// Error is a "-ERR" answer of the server. The connection stays usable after one.
type Error struct {
	Command string       // the command's keyword, e.g. "PASS" (never its arguments)
	Code    ResponseCode // "" when the server sent none
	Text    string       // the server's words after the code
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s: server said -ERR %s", e.Command, e.Text)
	}
	return fmt.Sprintf("%s: server said -ERR [%s] %s", e.Command, e.Code, e.Text)
}

// errProtocol marks a response that breaks the protocol; the connection cannot be trusted
// after one and is closed.
var errProtocol = errors.New("pop3 protocol violation")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxLineLength octets and
// returns it without the line end.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLineLength {
			return nil, protocolErrorf("response line longer than %d octets", maxLineLength)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			line = line[:len(line)-1]
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// parseStatus parses a status line (RFC 1939 §3): "+OK [text]" gives the text,
// "-ERR [text]" gives an *Error, anything else a protocol error. The indicators are
// matched without regard to case, as some servers write "+ok".
func parseStatus(command string, line []byte) (string, error) {
	s := string(line)
	switch {
	case hasIndicator(s, "+OK"):
		return strings.TrimSpace(s[3:]), nil
	case hasIndicator(s, "-ERR"):
		code, text := parseCode(strings.TrimSpace(s[4:]))
		return "", &Error{Command: command, Code: code, Text: text}
	}
	return "", protocolErrorf("%s: want +OK or -ERR, got %q", command, clip(s))
}

// hasIndicator reports whether s starts with the status indicator ind followed by a space
// or the line end.
func hasIndicator(s, ind string) bool {
	return len(s) >= len(ind) && strings.EqualFold(s[:len(ind)], ind) && (len(s) == len(ind) || s[len(ind)] == ' ')
}

// parseCode splits "[CODE] text" into the code and the text (RFC 2449 §8:
// resp-code = "[" resp-level *("/" resp-level) "]"). A malformed code is left in the text.
func parseCode(s string) (ResponseCode, string) {
	if !strings.HasPrefix(s, "[") {
		return "", s
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", s
	}
	code := s[1:end]
	for level := range strings.SplitSeq(code, "/") {
		if level == "" {
			return "", s
		}
		for i := 0; i < len(level); i++ {
			// rchar = %x21-2E / %x30-5C / %x5E-7F: printable, without "/" and "]".
			if c := level[i]; c < 0x21 || c > 0x7f {
				return "", s
			}
		}
	}
	return ResponseCode(strings.ToUpper(code)), strings.TrimSpace(s[end+1:])
}

// parseStat parses the text of a STAT answer: "nn mm" (RFC 1939 §5).
func parseStat(text string) (count int, size int64, err error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, protocolErrorf("STAT: want \"count size\", got %q", clip(text))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, protocolErrorf("STAT: want \"count size\", got %q", clip(text))
	}
	return count, size, nil
}

// parseScanListing parses one LIST line "n size"; anything after the size is allowed and
// ignored (RFC 1939 §5).
func parseScanListing(line []byte) (n int, size int64, err error) {
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return 0, 0, protocolErrorf("LIST: want \"number size\", got %q", clip(string(line)))
	}
	n, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || n < 1 || size < 0 {
		return 0, 0, protocolErrorf("LIST: want \"number size\", got %q", clip(string(line)))
	}
	return n, size, nil
}

// parseUIDListing parses one UIDL line "n unique-id" (RFC 1939 §7: the id is 1 to 70
// characters in the range 0x21 to 0x7E).
func parseUIDListing(line []byte) (n int, uid string, err error) {
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return 0, "", protocolErrorf("UIDL: want \"number unique-id\", got %q", clip(string(line)))
	}
	n, err = strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return 0, "", protocolErrorf("UIDL: bad message number in %q", clip(string(line)))
	}
	uid = f[1]
	if !validUIDL(uid) {
		return 0, "", protocolErrorf("UIDL: bad unique-id in %q", clip(string(line)))
	}
	return n, uid, nil
}

func validUIDL(uid string) bool {
	if len(uid) < 1 || len(uid) > maxUIDLLength {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return false
		}
	}
	return true
}

// readListing reads the lines of a multi-line answer after its "+OK" line up to the
// terminating ".", undoing byte-stuffing (RFC 1939 §3), and hands each to f.
func readListing(r *bufio.Reader, command string, f func(line []byte) error) error {
	for i := 0; ; i++ {
		if i > maxListingLines {
			return protocolErrorf("%s: more than %d lines", command, maxListingLines)
		}
		line, err := readLine(r)
		if err != nil {
			return fmt.Errorf("read %s listing: %w", command, err)
		}
		if len(line) > 0 && line[0] == '.' {
			if len(line) == 1 {
				return nil
			}
			line = line[1:]
		}
		if err := f(line); err != nil {
			return err
		}
	}
}

// dotReader streams the body of a multi-line answer (RETR, TOP): it removes the
// byte-stuffing "." at the start of lines and ends at the terminating ".CRLF"
// (RFC 1939 §3). Line ends are passed on unchanged, so a CRLF message comes out byte for
// byte as the server holds it. A lone LF also ends a line, as in net/textproto.
type dotReader struct {
	r     *bufio.Reader
	state dotState
}

type dotState int

const (
	stateBeginLine dotState = iota // at the start of a line
	stateData                      // inside a line
	stateDot                       // read a "." at the start of a line
	stateDotCR                     // read ".\r" at the start of a line
	stateEOF                       // read the terminator
)

func (d *dotReader) Read(p []byte) (n int, err error) {
	for n < len(p) {
		switch d.state {
		case stateEOF:
			return n, io.EOF
		case stateData:
			// Copy up to the end of the line in one go.
			if d.r.Buffered() == 0 {
				if _, err := d.r.Peek(1); err != nil {
					return n, unexpectedEOF(err)
				}
			}
			buf, _ := d.r.Peek(d.r.Buffered())
			k := len(buf)
			if i := bytes.IndexByte(buf, '\n'); i >= 0 {
				k = i + 1
			}
			k = min(k, len(p)-n)
			copy(p[n:], buf[:k])
			n += k
			if _, err := d.r.Discard(k); err != nil {
				return n, err
			}
			if p[n-1] == '\n' {
				d.state = stateBeginLine
			}
			continue
		}
		c, err := d.r.ReadByte()
		if err != nil {
			return n, unexpectedEOF(err)
		}
		switch d.state {
		case stateBeginLine:
			if c == '.' {
				d.state = stateDot // the stuffed or terminating ".": dropped
				continue
			}
		case stateDot:
			switch c {
			case '\r':
				d.state = stateDotCR
				continue
			case '\n':
				d.state = stateEOF
				continue
			}
		case stateDotCR:
			if c == '\n' {
				d.state = stateEOF
				continue
			}
			// ".\r" followed by data: a stuffed line that starts with CR.
			p[n] = '\r'
			n++
			if n == len(p) {
				d.state = stateData // c is line data: read it again next time
				return n, d.r.UnreadByte()
			}
		}
		p[n] = c
		n++
		d.state = stateData
		if c == '\n' {
			d.state = stateBeginLine
		}
	}
	return n, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// clip shortens server text quoted in an error.
func clip(s string) string {
	const maxQuoted = 80
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}
