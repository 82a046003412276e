package message

import (
	"bufio"
	"bytes"
	"io"
)

// How a multipart's part (or its preamble) ended.
const (
	endNone      = iota // still being read
	endDelimiter        // at a delimiter line: another part follows
	endClose            // at the close-delimiter line: no part follows
	endInput            // at the end of the input, without a close-delimiter (truncated)
)

// multipartReader splits a multipart body (RFC 2046 §5.1.1) into its parts, streaming. It
// replaces go-message's splitter, which is stricter than real mail: it takes a line that
// merely begins with "--boundary" and a dash (the delimiter of an inner boundary that
// begins with the outer one, "----=_Part_7-alt" inside "----=_Part_7", or a body line
// "--sep-- end") for a delimiter and then fails on it. Here, as in Python's email package
// and MimeKit, a delimiter line is exactly "--" boundary ["--"], then only white space, at
// the start of a line; the line end before it belongs to it. A part may be empty (two
// delimiter lines in a row); a body that ends without its close-delimiter (a truncated
// message) ends its last part, wherever it is nested. Line ends may be CRLF or LF, mixed.
//
// Parse and openPart both read multiparts with it, so that they agree on every part.
type multipartReader struct {
	br      *bufio.Reader
	dash    []byte // "--" + boundary
	atStart bool   // the next byte read starts a line
	end     int    // how the part being read (or the last one) ended
	cur     *mimePart
	parts   int // parts returned by next
}

func newMultipartReader(r io.Reader, boundary string) *multipartReader {
	mr := &multipartReader{br: bufio.NewReader(r), dash: []byte("--" + boundary), atStart: true}
	mr.cur = &mimePart{mr: mr} // the preamble, skipped by the first next
	return mr
}

// next skips what is left of the current part and returns the next part's content: its
// header and body, as written. It returns io.EOF after the last part.
func (mr *multipartReader) next() (io.Reader, error) {
	if mr.cur != nil {
		_, _ = io.Copy(io.Discard, mr.cur) // ends at the part's end, or the input's
		mr.cur = nil
	}
	if mr.end != endDelimiter {
		return nil, io.EOF
	}
	mr.end = endNone
	mr.parts++
	mr.cur = &mimePart{mr: mr}
	return mr.cur, nil
}

// delimiter says whether rest, what follows "--boundary" at the start of a line, makes the
// line a delimiter (endDelimiter), a close-delimiter (endClose) or neither (endNone).
func delimiter(rest []byte) int {
	kind := endDelimiter
	if bytes.HasPrefix(rest, []byte("--")) {
		kind, rest = endClose, rest[2:]
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return endNone
		}
	}
	return kind
}

// mimePart reads one part's content, up to (not including) the line end before the next
// delimiter line.
type mimePart struct {
	mr   *multipartReader
	done bool
	held []byte // the previous line's end: content, unless a delimiter line follows
	line []byte // the current line (or piece of a long line) without its end
	term []byte // the current line's end, held back until the next line is known
	hbuf [2]byte
	tbuf [2]byte
}

func (p *mimePart) Read(b []byte) (int, error) {
	for len(p.held) == 0 && len(p.line) == 0 {
		if p.done {
			return 0, io.EOF
		}
		p.fill()
	}
	if len(p.held) > 0 {
		n := copy(b, p.held)
		p.held = p.held[n:]
		return n, nil
	}
	n := copy(b, p.line)
	p.line = p.line[n:]
	return n, nil
}

// fill reads the next line (or piece of a long line) of the multipart body.
func (p *mimePart) fill() {
	mr := p.mr
	line, err := mr.br.ReadSlice('\n')
	start := mr.atStart
	mr.atStart = err == nil
	if start && bytes.HasPrefix(line, mr.dash) {
		if kind := delimiter(line[len(mr.dash):]); kind != endNone {
			p.done, p.term, mr.end = true, nil, kind
			return
		}
	}
	p.held = append(p.hbuf[:0], p.term...)
	p.term = nil
	p.line = line
	switch {
	case err == nil:
		cut := len(line) - 1
		if cut > 0 && line[cut-1] == '\r' {
			cut--
		}
		p.line, p.term = line[:cut], append(p.tbuf[:0], line[cut:]...)
	case err != bufio.ErrBufferFull:
		// The input ended (any read error counts as its end): the last line, if any,
		// and the line end before it are content.
		p.done, mr.end = true, endInput
	}
}
