package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"time"

	"github.com/postroom/postroom/internal/connector/imap"
)

// LargeOptions configure LargeMessage.
type LargeOptions struct {
	Size int // bytes of the one message
	// Text makes the message one long plain-text body instead of a short text and one
	// attachment.
	Text bool
	TLS  bool
	// MemProfile, when set, is the file a heap profile is written to after the ingest; its
	// alloc_space view shows what allocated how much during it.
	MemProfile string
	Logger     *slog.Logger
	Progress   io.Writer
}

// LargeResult is what LargeMessage measured.
type LargeResult struct {
	Size        int // bytes of the message as loaded
	Text        bool
	Elapsed     time.Duration
	Stored      bool // stored whole (not over size), once, and acknowledged
	PeakRSS     int64
	BaselineRSS int64
	RSSMethod   string
}

// Factor is the peak RSS over the message's size.
func (r LargeResult) Factor() float64 {
	if r.Size == 0 {
		return 0
	}
	return float64(r.PeakRSS) / float64(r.Size)
}

// Line is the machine-readable summary, the last line of `postroom bench rss20mb`.
func (r LargeResult) Line() string {
	return fmt.Sprintf("message_mb=%s peak_rss_mb=%s baseline_rss_mb=%s peak_over_size=%.2f stored=%t",
		mb(int64(r.Size)), mb(r.PeakRSS), mb(r.BaselineRSS), r.Factor(), r.Stored)
}

// Report is the human-readable account of the run.
func (r LargeResult) Report(w io.Writer) {
	kind := "short text and one base64 attachment"
	if r.Text {
		kind = "one plain-text body"
	}
	fmt.Fprintf(w, "message:   one of %d bytes (%s MB): %s\n", r.Size, mb(int64(r.Size)), kind)
	fmt.Fprintf(w, "postroom:  %s to fetch, store as a work item and mark \\Seen (stored whole, once: %t)\n", r.Elapsed.Round(time.Millisecond), r.Stored)
	fmt.Fprintf(w, "memory:    peak RSS %s MB = %.2f × the message (baseline before the ingest %s MB; %s)\n",
		mb(r.PeakRSS), r.Factor(), mb(r.BaselineRSS), r.RSSMethod)
}

// LargeMessage loads one message of opts.Size bytes into a throwaway Dovecot and measures
// the peak RSS of postroom ingesting it.
func LargeMessage(ctx context.Context, opts LargeOptions) (LargeResult, error) {
	if opts.Size < 1 {
		return LargeResult{}, errors.New("the message needs at least one byte")
	}
	if opts.Size > mailboxMaxSizeMB<<20 {
		return LargeResult{}, fmt.Errorf("%d bytes is over the largest Max size of a mailbox (%d MB): it would be stored as its header only", opts.Size, mailboxMaxSizeMB)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := LargeResult{Text: opts.Text}
	s, err := startServer([]string{postroomUser}, opts.TLS)
	if err != nil {
		return res, err
	}
	defer s.stop()
	gen := newGenerator(uint64(time.Now().UnixNano()), strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := s.seed(ctx, []string{postroomUser}, 1, func(i int) []byte {
		var raw []byte
		if opts.Text {
			raw = gen.largeTextMessage(i, opts.Size)
		} else {
			raw = gen.largeMessage(i, opts.Size)
		}
		res.Size = len(raw)
		return raw
	}, gen.messageID); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "loaded:    one message of %d bytes\n", res.Size)

	p, err := openProduct(ctx, s, postroomUser, log)
	if err != nil {
		return res, err
	}
	defer p.close()
	meter := startPhase()
	if opts.MemProfile != "" {
		runtime.MemProfileRate = 4096 // from here on: the ingest's allocations in detail
	}
	res.BaselineRSS = currentRSS()
	res.RSSMethod = meter.Method
	var stalled bool
	res.Elapsed, stalled, err = p.runUntilDone(ctx, 1)
	res.PeakRSS = meter.Peak()
	if err != nil {
		return res, fmt.Errorf("postroom ingest: %w", err)
	}
	if opts.MemProfile != "" {
		if err := writeHeapProfile(opts.MemProfile); err != nil {
			return res, err
		}
	}
	if stalled {
		return res, nil
	}
	uv, err := s.uidValidity(ctx, postroomUser)
	if err != nil {
		return res, fmt.Errorf("read UIDVALIDITY: %w", err)
	}
	m, err := p.app.Store.MessageBySource(ctx, p.mailbox.ID, imap.SourceID(uv, 1)) // the folder's first message
	if err != nil {
		return res, fmt.Errorf("read the stored message: %w", err)
	}
	n, err := p.app.Store.CountMessages(ctx, p.mailbox.ID)
	if err != nil {
		return res, fmt.Errorf("count stored messages: %w", err)
	}
	seen, err := s.seenCount(ctx, postroomUser)
	if err != nil {
		return res, err
	}
	res.Stored = n == 1 && !m.OverSize && !m.Unparsed && m.Size == int64(res.Size) && seen == 1
	return res, nil
}
