// Package bench measures postroom against real servers on loopback, as `postroom bench`
// runs it:
//
//   - Ingest loads N generated customer emails of a given size into a throwaway Dovecot
//     and measures postroom's real ingest end to end (an internal/app App on SQLite:
//     IMAP fetch with BODY.PEEK, parse, store as work items, mark \Seen, RFC 9051), then
//     mbsync (isync) downloading the same messages to a Maildir, and compares the rates.
//   - LargeMessage measures the peak memory of ingesting one large message.
//   - Idle measures the memory of watching many mailboxes with IMAP IDLE (RFC 2177).
//   - Failover runs several `postroom serve` processes on one PostgreSQL database, kills
//     one with SIGKILL while mail arrives and measures the takeover of its mailboxes
//     (cluster.go: the nodes and the reads of their database, shared with the multi-node
//     tests of cmd/postroom).
//
// Invariants: nothing but 127.0.0.1 is contacted; every server, folder and database is
// temporary and removed at the end (Failover's node logs stay with -keep); figures are measured, never asserted, and each run
// ends with one machine-readable line of key=value pairs. Peak RSS is this process's only
// (rss.go): Dovecot and mbsync are child processes and never count.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
	"time"
)

// Users of the ingest benchmark: postroom and mbsync each read their own copy of the
// messages, so both start from the same unread mailbox.
const (
	postroomUser = "postroom@example.test"
	mbsyncUser   = "mbsync@example.test"
)

// IngestOptions configure Ingest.
type IngestOptions struct {
	Messages int // how many messages
	Size     int // about how many bytes each
	// TLS makes both postroom and mbsync connect with implicit TLS (IMAPS) instead of plain
	// text; both are on loopback either way.
	TLS bool
	// MbsyncNoFSync compares with mbsync run with "FSync no" instead of its default "FSync
	// yes". mbsync is run both ways and both rates are reported; this picks the one the
	// ratio is taken against. postroom's SQLite store runs in WAL mode with
	// synchronous=NORMAL: a commit survives a crash of the process, not a power cut, which is
	// also what "FSync no" promises on ext4 (data=ordered); "FSync yes" syncs every message.
	MbsyncNoFSync bool
	// CPUProfile and Trace, when set, are files a CPU profile and an execution trace
	// (runtime/trace: blocking, syscalls, the network) of postroom's ingest are written to.
	CPUProfile, Trace string
	// Rules is how many classification rules are active while postroom ingests (0: none);
	// with RulesLanguage one of them asks for the detected language (see benchRules).
	Rules         int
	RulesLanguage bool
	// Logger receives the App's log; Progress, when not nil, a line per phase.
	Logger   *slog.Logger
	Progress io.Writer
}

// IngestResult is what Ingest measured.
type IngestResult struct {
	Messages int
	Bytes    int64 // total size of the messages loaded
	Postroom time.Duration
	Mbsync   time.Duration // the run the ratio compares with
	// MbsyncFSync and MbsyncNoFSync are mbsync's runs with "FSync yes" (its default) and
	// "FSync no"; Mbsync is one of them.
	MbsyncFSync, MbsyncNoFSync time.Duration
	MbsyncCompared             string // "FSync yes" or "FSync no"
	Lost                       int    // at the server, not stored (by Message-ID)
	Duplicated                 int    // stored beyond once per Message-ID
	// Acked is how many messages postroom marked \Seen at the server.
	Acked int
	// Stalled is true when postroom stopped making progress before it was done.
	Stalled     bool
	PeakRSS     int64  // bytes, during postroom's ingest
	BaselineRSS int64  // bytes, just before postroom's ingest started
	RSSMethod   string // how PeakRSS was measured (rss.go)
}

// PostroomRate and MbsyncRate are messages per second.
func (r IngestResult) PostroomRate() float64 { return rate(r.Messages, r.Postroom) }
func (r IngestResult) MbsyncRate() float64   { return rate(r.Messages, r.Mbsync) }

// Ratio is postroom's rate over mbsync's.
func (r IngestResult) Ratio() float64 {
	if r.MbsyncRate() == 0 {
		return 0
	}
	return r.PostroomRate() / r.MbsyncRate()
}

// Line is the machine-readable summary, the last line of `postroom bench ingest`.
func (r IngestResult) Line() string {
	return fmt.Sprintf("postroom_msgs_per_s=%.1f mbsync_msgs_per_s=%.1f ratio=%.2f lost=%d duplicated=%d peak_rss_mb=%s",
		r.PostroomRate(), r.MbsyncRate(), r.Ratio(), r.Lost, r.Duplicated, mb(r.PeakRSS))
}

// Report is the human-readable account of the run, one fact per line.
func (r IngestResult) Report(w io.Writer) {
	fmt.Fprintf(w, "messages:  %d of about %d bytes (%s MB in all)\n", r.Messages, r.Bytes/int64(max(r.Messages, 1)), mb(r.Bytes))
	fmt.Fprintf(w, "postroom:  %s, %.1f msgs/s, %.1f MB/s (fetched, stored as work items, marked \\Seen: %d)\n",
		r.Postroom.Round(time.Millisecond), r.PostroomRate(), mbps(r.Bytes, r.Postroom), r.Acked)
	if r.Stalled {
		fmt.Fprintf(w, "postroom:  STALLED: nothing moved for %s before every message was stored and acknowledged\n", stallTimeout)
	}
	for _, run := range []struct {
		name string
		d    time.Duration
	}{{"FSync yes", r.MbsyncFSync}, {"FSync no", r.MbsyncNoFSync}} {
		ratio := 0.0
		if run.d > 0 {
			ratio = r.PostroomRate() / rate(r.Messages, run.d)
		}
		fmt.Fprintf(w, "mbsync:    %s, %.1f msgs/s, %.1f MB/s with %s (postroom / mbsync %.2f)\n",
			run.d.Round(time.Millisecond), rate(r.Messages, run.d), mbps(r.Bytes, run.d), run.name, ratio)
	}
	fmt.Fprintf(w, "ratio:     %.2f (postroom / mbsync with %s)\n", r.Ratio(), r.MbsyncCompared)
	fmt.Fprintf(w, "check:     lost=%d duplicated=%d\n", r.Lost, r.Duplicated)
	fmt.Fprintf(w, "memory:    peak RSS %s MB during the ingest (baseline %s MB; %s)\n", mb(r.PeakRSS), mb(r.BaselineRSS), r.RSSMethod)
}

// Ingest runs the ingest benchmark. An error means the benchmark could not run; what it
// measured (including losses and duplicates) is in the result.
func Ingest(ctx context.Context, opts IngestOptions) (IngestResult, error) {
	if opts.Messages < 1 || opts.Size < 1 {
		return IngestResult{}, errors.New("need at least one message of at least one byte")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := IngestResult{Messages: opts.Messages}

	s, err := startServer([]string{postroomUser, mbsyncUser}, opts.TLS)
	if err != nil {
		return res, err
	}
	defer s.stop()
	fmt.Fprintf(progress, "dovecot:   started on %s (plain) and %s (TLS)\n", s.d.IMAPAddr, s.d.IMAPSAddr)

	seedStart := time.Now()
	gen := newGenerator(uint64(time.Now().UnixNano()), strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := s.seed(ctx, []string{postroomUser, mbsyncUser}, opts.Messages, func(i int) []byte {
		raw := gen.message(i, opts.Size)
		res.Bytes += int64(len(raw))
		return raw
	}, gen.messageID); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "loaded:    %d messages into 2 mailboxes in %s\n", opts.Messages, time.Since(seedStart).Round(time.Millisecond))

	// postroom.
	p, err := openProduct(ctx, s, postroomUser, log)
	if err != nil {
		return res, err
	}
	defer p.close()
	if opts.Rules > 0 {
		if err := addBenchRules(ctx, p.app, opts.Rules, opts.RulesLanguage); err != nil {
			return res, err
		}
		fmt.Fprintf(progress, "rules:     %d classification rules active\n", opts.Rules)
	}
	settleDisk()
	stopProfile, err := startProfiles(opts.CPUProfile, opts.Trace)
	if err != nil {
		return res, err
	}
	meter := startPhase()
	res.BaselineRSS = currentRSS()
	res.RSSMethod = meter.Method
	res.Postroom, res.Stalled, err = p.runUntilDone(ctx, opts.Messages)
	res.PeakRSS = meter.Peak()
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return res, fmt.Errorf("postroom ingest: %w", err)
	}
	fmt.Fprintf(progress, "postroom:  done in %s\n", res.Postroom.Round(time.Millisecond))

	// What is at the server against what is stored.
	vctx, cancel := context.WithTimeout(ctx, doveadmTimeout)
	defer cancel()
	msgs, err := s.d.MessagesContext(vctx, postroomUser, benchFolder)
	if err != nil {
		return res, fmt.Errorf("list the messages at the server: %w", err)
	}
	uv, err := s.uidValidity(vctx, postroomUser)
	if err != nil {
		return res, fmt.Errorf("read UIDVALIDITY: %w", err)
	}
	if res.Lost, res.Duplicated, err = tally(vctx, p.app.Store, p.mailbox.ID, uv, msgs); err != nil {
		return res, err
	}
	res.Lost += max(opts.Messages-len(msgs), 0) // gone from the server altogether
	if res.Acked, err = s.seenCount(vctx, postroomUser); err != nil {
		return res, err
	}
	if err := p.close(); err != nil {
		return res, fmt.Errorf("close the store: %w", err)
	}

	// mbsync, both ways; Sync Pull changes nothing at the server, so both runs download
	// the same unread messages.
	for _, fsync := range []bool{true, false} {
		settleDisk()
		d, n, err := runMbsync(ctx, s, mbsyncUser, fsync)
		if err != nil {
			return res, err
		}
		if n != opts.Messages {
			return res, fmt.Errorf("mbsync downloaded %d messages, not %d: its rate would not compare", n, opts.Messages)
		}
		if fsync {
			res.MbsyncFSync = d
		} else {
			res.MbsyncNoFSync = d
		}
		fmt.Fprintf(progress, "mbsync:    done in %s (FSync %t)\n", d.Round(time.Millisecond), fsync)
	}
	res.Mbsync, res.MbsyncCompared = res.MbsyncFSync, "FSync yes"
	if opts.MbsyncNoFSync {
		res.Mbsync, res.MbsyncCompared = res.MbsyncNoFSync, "FSync no"
	}
	return res, nil
}

// settleDisk writes what earlier phases left in the kernel's page cache to disk (sync(2))
// before a timed phase starts: postroom's SQLite commits without fsync (WAL,
// synchronous=NORMAL), so without this the kernel would write its data back while mbsync
// runs, and mbsync's fsyncs would wait for it (and the seeding's writes for postroom's).
func settleDisk() { syscall.Sync() }

// startProfiles starts a CPU profile into cpuPath and an execution trace into tracePath
// ("" for none); the returned function stops them and closes the files.
func startProfiles(cpuPath, tracePath string) (stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var errs []error
		for _, f := range stops {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stops = append(stops, func() error {
			pprof.StopCPUProfile()
			return closeProfile("cpu profile", f)
		})
	}
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			_ = stop()
			return nil, fmt.Errorf("trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			_ = stop()
			return nil, fmt.Errorf("trace: %w", err)
		}
		stops = append(stops, func() error {
			trace.Stop()
			return closeProfile("trace", f)
		})
	}
	return stop, nil
}

// writeHeapProfile writes the heap profile (runtime/pprof "allocs") to path.
func writeHeapProfile(path string) error {
	runtime.GC() // the profile shows what was allocated up to the last collection
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return closeProfile("heap profile", f)
}

func closeProfile(what string, f *os.File) error {
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}
