package pop3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/postroom/postroom/internal/connector"
)

// After-processing actions of a POP3 mailbox; the same values as store.AfterDelete and
// store.AfterKeep.
const (
	AfterDelete = "delete" // delete at the server once stored (the default)
	AfterKeep   = "keep"   // leave on the server; UIDL tells stored ones apart
)

// Size guards of Next.
const (
	// retrSlack is added to twice the LIST size to bound a download: LIST sizes are exact
	// (RFC 1939 §5), but some servers count bare-LF line ends that go out as CRLF. A server
	// that streams past the bound is cut off rather than fill memory.
	retrSlack = 1 << 20
	// maxHeaderBytes bounds the header kept of an over-size message when the server has no
	// TOP and the whole message must be read past.
	maxHeaderBytes = 1 << 20
)

// Source reads one POP3 maildrop. It is not safe for concurrent use.
//
// How it fits connector.Source:
//
//   - A POP3 session sees a snapshot of the maildrop taken at login, and while it lasts the
//     server may keep other clients out ([IN-USE], RFC 2449 §8.1.1). So the Source holds a
//     session only while it has messages to hand out: when Next finds none it QUITs, and
//     the next call logs in again and so sees mail that arrived meanwhile.
//   - SourceID is "pop3:<uidl>" (RFC 1939 §7). There is no cursor: Incoming.Cursor is "".
//     Next asks Config.Skip before each download, so messages stored before are not
//     downloaded again.
//   - Ack with AfterDelete sends DELE for each message and then QUIT, because the server
//     removes them only then (RFC 1939 §6). That ends the session: the next Next or Ack
//     logs in again by itself. Ids no longer on the server are ignored (already deleted).
//     With AfterKeep, Ack only records in memory that the messages are done, so this
//     Source does not return them again.
//   - A message over Config.MaxSize comes back as its header only, with OverSize set; the
//     caller then calls SetAside, which leaves it on the server and out of later Next
//     calls of this Source. Ack never deletes such a message either.
//   - Nothing is marked or deleted while reading (DESIGN.md invariant 1): RETR and TOP
//     change nothing that matters, and deletes happen only in Ack.
type Source struct {
	cfg  Config
	log  *slog.Logger
	c    *Client       // nil between sessions
	msgs []MessageInfo // listing of the current session, by message number
	// done holds the SourceIDs this Source has finished with (acknowledged, skipped, kept
	// because over size). It is pruned to the messages still on the server at each login,
	// so it stays as small as the maildrop.
	done map[string]bool
}

var _ connector.Source = (*Source)(nil)

// Dial connects and logs in, so that a wrong setting shows at once. Errors are
// *connector.Error with advice.
func Dial(ctx context.Context, cfg Config) (*Source, error) {
	switch cfg.AfterAction {
	case "":
		cfg.AfterAction = AfterDelete
	case AfterDelete, AfterKeep:
	default:
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "pop3 config",
			Err: fmt.Errorf("unknown after action %q", cfg.AfterAction), Advice: "set the after-processing action to delete or keep"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{cfg: cfg, log: log, done: map[string]bool{}}
	if err := s.login(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// login opens a session and reads the listing.
func (s *Source) login(ctx context.Context) error {
	c, err := Open(ctx, s.cfg)
	if err != nil {
		return err
	}
	if s.cfg.Token != nil {
		err = c.LoginOAuth(ctx, s.cfg.Login, s.cfg.Token)
	} else {
		err = c.Login(ctx, s.cfg.Login, s.cfg.Password)
	}
	if err != nil {
		c.Close()
		return err
	}
	msgs, err := c.Messages(ctx)
	if err != nil {
		c.Close()
		return err
	}
	present := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		present[SourceID(m.UIDL)] = true
	}
	for id := range s.done {
		if !present[id] {
			delete(s.done, id)
		}
	}
	s.c, s.msgs = c, msgs
	s.log.Debug("pop3 session opened", slog.Int("messages", len(msgs)))
	return nil
}

// end QUITs the session (deletes nothing: Ack QUITs right after its DELEs).
func (s *Source) end(ctx context.Context) error {
	c := s.c
	s.c, s.msgs = nil, nil
	if c == nil {
		return nil
	}
	return c.Quit(ctx)
}

// drop closes a session after a failure without QUIT.
func (s *Source) drop() {
	if s.c != nil {
		s.c.Close()
	}
	s.c, s.msgs = nil, nil
}

// Next returns up to max messages not done yet, oldest first. When there are none it ends
// the session and returns an empty slice; the next call logs in again.
func (s *Source) Next(ctx context.Context, max int) ([]connector.Incoming, error) {
	if s.c == nil {
		if err := s.login(ctx); err != nil {
			return nil, err
		}
	}
	var out []connector.Incoming
	for _, m := range s.msgs {
		if len(out) >= max {
			break
		}
		id := SourceID(m.UIDL)
		if s.done[id] {
			continue
		}
		if s.cfg.Skip != nil && s.cfg.Skip(id) {
			s.done[id] = true
			continue
		}
		raw, err := s.fetch(ctx, m)
		if err != nil {
			s.drop()
			return nil, err
		}
		out = append(out, connector.Incoming{SourceID: id, Raw: raw, Size: m.Size, OverSize: s.overSize(m)})
	}
	if len(out) == 0 {
		if err := s.end(ctx); err != nil {
			s.log.Debug("pop3 quit", slog.Any("error", err))
		}
	}
	return out, nil
}

func (s *Source) overSize(m MessageInfo) bool {
	return s.cfg.MaxSize > 0 && m.Size > s.cfg.MaxSize
}

// fetch downloads one message, or only its header when it is over size.
func (s *Source) fetch(ctx context.Context, m MessageInfo) ([]byte, error) {
	if s.overSize(m) {
		return s.header(ctx, m)
	}
	var buf bytes.Buffer
	buf.Grow(int(m.Size))
	w := &limitWriter{w: &buf, n: 2*m.Size + retrSlack}
	if _, err := s.c.Retr(ctx, m.Number, w); err != nil {
		if errors.Is(err, errTooLong) {
			return nil, &connector.Error{Kind: connector.KindServer, Op: "pop3 retr", Err: err,
				Advice: fmt.Sprintf("the server sent far more than the %d bytes it listed for message %s: check the server", m.Size, m.UIDL)}
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// header returns the header of message m with TOP m 0, or by reading past the body with
// RETR when the server has no TOP (it is optional, RFC 1939 §7).
func (s *Source) header(ctx context.Context, m MessageInfo) ([]byte, error) {
	var buf bytes.Buffer
	_, err := s.c.Top(ctx, m.Number, 0, &limitWriter{w: &buf, n: maxHeaderBytes + retrSlack})
	var pe *Error
	if err == nil || !errors.As(err, &pe) {
		return buf.Bytes(), err
	}
	hw := &headerWriter{}
	if _, err := s.c.Retr(ctx, m.Number, hw); err != nil {
		return nil, err
	}
	return hw.buf.Bytes(), nil
}

// Ack acknowledges messages (see Source for what that means per after action). Ids not
// of this source or no longer on the server are ignored.
func (s *Source) Ack(ctx context.Context, sourceIDs []string) error {
	if s.cfg.AfterAction == AfterKeep {
		for _, id := range sourceIDs {
			s.done[id] = true
		}
		return nil
	}
	if s.c == nil {
		if err := s.login(ctx); err != nil {
			return err
		}
	}
	byID := make(map[string]MessageInfo, len(s.msgs))
	for _, m := range s.msgs {
		byID[SourceID(m.UIDL)] = m
	}
	var deleted int
	for _, id := range sourceIDs {
		m, ok := byID[id]
		switch {
		case !ok:
			s.log.Debug("pop3 ack: message no longer on the server", slog.String("source_id", id))
			continue
		case s.overSize(m):
			s.done[id] = true // the original stays at the source (issue 4)
			continue
		}
		if err := s.c.Dele(ctx, m.Number); err != nil {
			s.drop() // without QUIT: the server forgets the deletes of this session
			return err
		}
		deleted++
	}
	if deleted == 0 {
		return nil
	}
	// RFC 1939 §6: the deletes happen when QUIT enters the UPDATE state.
	if err := s.end(ctx); err != nil {
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Kind == connector.KindServer {
			ce.Advice = "the server could not delete the messages it was asked to (it said so at QUIT); postroom tries again: if it persists, check the server's log"
		}
		return err
	}
	for _, id := range sourceIDs {
		s.done[id] = true
	}
	return nil
}

// SetAside leaves messages stored only in part (over size) on the server: it changes
// nothing there, and this Source does not return them again. A new Source asks
// Config.Skip, which knows them as stored.
func (s *Source) SetAside(_ context.Context, sourceIDs []string) error {
	for _, id := range sourceIDs {
		s.done[id] = true
	}
	return nil
}

// Close ends the session, if one is open.
func (s *Source) Close() error {
	if s.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
	defer cancel()
	err := s.end(ctx)
	if err != nil {
		s.log.Debug("pop3 quit at close", slog.Any("error", err))
	}
	return nil
}

// SourceID is the dedup key of a POP3 message: "pop3:<uidl>".
func SourceID(uidl string) string { return "pop3:" + uidl }

// ParseSourceID returns the unique-id of a SourceID made by SourceID.
func ParseSourceID(id string) (uidl string, ok bool) {
	uidl, ok = strings.CutPrefix(id, "pop3:")
	return uidl, ok && validUIDL(uidl)
}

var errTooLong = errors.New("message longer than expected")

// limitWriter fails once more than n bytes are written.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errTooLong
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// headerWriter keeps what comes before the first empty line (the header and the blank
// line), up to maxHeaderBytes, and discards the rest.
type headerWriter struct {
	buf  bytes.Buffer
	full bool
}

func (h *headerWriter) Write(p []byte) (int, error) {
	if h.full {
		return len(p), nil
	}
	h.buf.Write(p)
	b := h.buf.Bytes()
	end := -1
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 && (end < 0 || i+2 < end) {
		end = i + 2
	}
	switch {
	case end >= 0:
		h.buf.Truncate(end)
		h.full = true
	case h.buf.Len() >= maxHeaderBytes:
		h.buf.Truncate(maxHeaderBytes)
		h.full = true
	}
	return len(p), nil
}
