package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Graph benchmark settings.
const (
	// graphArrivalGap is the time between two arrivals in the latency phase: a steady
	// stream, each message measured on its own.
	graphArrivalGap = 50 * time.Millisecond
	// graphRateLimit lifts the stand-in's requests-per-window limit (Microsoft's 10,000 per
	// 10 minutes per app and mailbox) so the benchmark measures postroom, not the limit;
	// the 4-concurrent-requests limit stays.
	graphRateLimit = math.MaxInt32
)

// GraphOptions configure the Graph benchmark.
type GraphOptions struct {
	Messages int // loaded before the mailbox is enabled (ingest phase)
	Arrivals int // delivered one at a time afterwards (latency phase, change notifications)
	Logger   *slog.Logger
	Progress io.Writer
}

// GraphResult holds the figures of a Graph run.
type GraphResult struct {
	Messages   int
	Ingest     time.Duration // first message stored → all stored and marked read
	Requests   int           // Graph HTTP requests of the ingest phase
	Arrivals   int
	P50, P99   time.Duration // arrival at the stand-in → work item committed
	Lost       int
	Duplicated int
}

// Rate is messages per second of the ingest phase.
func (r GraphResult) Rate() float64 { return rate(r.Messages, r.Ingest) }

// RequestsPerMessage is Graph requests per ingested message.
func (r GraphResult) RequestsPerMessage() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Messages)
}

// Line is the machine-readable last line.
func (r GraphResult) Line() string {
	return fmt.Sprintf("graph_msgs_per_s=%.0f requests_per_msg=%.2f p99_arrival_ms=%d lost=%d duplicated=%d",
		r.Rate(), r.RequestsPerMessage(), r.P99.Milliseconds(), r.Lost, r.Duplicated)
}

// Report prints the figures for people.
func (r GraphResult) Report(w io.Writer) {
	fmt.Fprintf(w, "ingest:    %d messages in %s = %.0f msgs/s, %.2f Graph requests per message\n",
		r.Messages, r.Ingest.Round(time.Millisecond), r.Rate(), r.RequestsPerMessage())
	fmt.Fprintf(w, "arrivals:  %d messages, one every %s, with change notifications: p50 %d ms, p99 %d ms\n",
		r.Arrivals, graphArrivalGap, r.P50.Milliseconds(), r.P99.Milliseconds())
	fmt.Fprintf(w, "exactness: lost=%d duplicated=%d\n", r.Lost, r.Duplicated)
}

// Graph measures a Microsoft Graph mailbox against the local stand-in (internal/mstest),
// which it starts: the ingest of opts.Messages messages waiting in the inbox (delta sync,
// $value, mark read), then the latency from arrival to work item of opts.Arrivals messages
// with change notifications to postroom's public URL (its loopback address here).
func Graph(ctx context.Context, opts GraphOptions) (GraphResult, error) {
	res := GraphResult{Messages: opts.Messages, Arrivals: opts.Arrivals}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mstest.Start(mstest.Options{Logger: quiet, RateLimit: graphRateLimit})
	if err != nil {
		return res, fmt.Errorf("start the Microsoft stand-in: %w", err)
	}
	defer ms.Close()
	sample, err := ms.SampleTenant(mstest.SampleOptions{Messages: -1})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "loading %d messages into %s at the stand-in...\n", opts.Messages, sample.Mailbox)
	ids := map[string]int{} // immutable id -> message number
	for i := range opts.Messages {
		id, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(i))
		if err != nil {
			return res, fmt.Errorf("deliver message %d: %w", i, err)
		}
		ids[id] = i
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer ln.Close()
	dir, err := os.MkdirTemp("", "postroom-bench-graph-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var mu sync.Mutex
	committed := map[string]time.Time{} // source id -> first commit
	afterCommit := func(_ int64, sourceID string) error {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, ok := committed[sourceID]; !ok {
			committed[sourceID] = now
		}
		return nil
	}
	noEnv := func(string) string { return "" }
	a, err := app.Open(ctx, app.Config{DataDir: dir, Getenv: noEnv, Logger: opts.Logger, Version: "bench",
		PublicURL: "http://" + ln.Addr().String(), AfterCommit: afterCommit, IngestReload: 100 * time.Millisecond})
	if err != nil {
		return res, err
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan struct{})
	go func() { defer close(served); _ = a.Serve(ctx, ln) }()
	stopped := func() {}
	defer func() { cancel(); stopped(); <-served }()
	m, err := a.EnsureMailbox(ctx, "bench", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "bench_graph", Direction: store.Inbound, Protocol: "graph", Address: sample.Mailbox, Folder: "Inbox",
			AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, PollInterval: time.Hour, Enabled: false,
			Auth: store.AuthOAuthApp, GraphURL: ms.GraphURL(),
			OAuth: store.OAuth{Provider: "microsoft", Cloud: "custom", AuthorityURL: ms.LoginURL(), Tenant: sample.TenantID, ClientID: sample.ClientID},
		},
		ClientSecret: vault.NewSecret(sample.ClientSecret),
	})
	if err != nil {
		return res, err
	}
	ms.ResetRequests()
	stopped = a.Start(ctx)
	start := time.Now()
	if err := a.Mailboxes.Enable(ctx, "bench", m.ID); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "ingesting...\n")
	if err := waitGraph(ctx, func() (bool, string, error) {
		n, err := a.Store.CountMessages(ctx, m.ID)
		if err != nil {
			return false, "", err
		}
		read := 0
		if n == opts.Messages {
			msgs, err := ms.Messages(sample.Mailbox, "inbox")
			if err != nil {
				return false, "", err
			}
			for _, x := range msgs {
				if x.IsRead {
					read++
				}
			}
		}
		return n == opts.Messages && read == opts.Messages, fmt.Sprintf("%d stored, %d marked read", n, read), nil
	}); err != nil {
		return res, fmt.Errorf("ingest phase: %w", err)
	}
	res.Ingest = time.Since(start)
	res.Requests = ms.Requests(sample.ClientID)

	fmt.Fprintf(progress, "waiting for the change-notification subscription...\n")
	if err := waitGraph(ctx, func() (bool, string, error) {
		return len(ms.Subscriptions()) > 0, "no subscription", nil
	}); err != nil {
		return res, fmt.Errorf("subscription: %w", err)
	}
	fmt.Fprintf(progress, "delivering %d messages, one every %s...\n", opts.Arrivals, graphArrivalGap)
	arrived := map[string]time.Time{}
	for i := range opts.Arrivals {
		at := time.Now()
		id, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(opts.Messages+i))
		if err != nil {
			return res, fmt.Errorf("deliver arrival %d: %w", i, err)
		}
		ids[id] = opts.Messages + i
		arrived[id] = at
		time.Sleep(graphArrivalGap)
	}
	total := opts.Messages + opts.Arrivals
	_ = waitGraph(ctx, func() (bool, string, error) {
		n, err := a.Store.CountMessages(ctx, m.ID)
		return n >= total, fmt.Sprintf("%d of %d stored", n, total), err
	})

	// Exactness: every delivered message stored exactly once, by its Graph id.
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for id := range ids {
		if _, err := a.Store.MessageBySource(ctx, m.ID, "graph:"+id); err != nil {
			res.Lost++
		}
		if at, ok := arrived[id]; ok {
			if c, ok := committed["graph:"+id]; ok {
				lat = append(lat, c.Sub(at))
			}
		}
	}
	stored, err := a.Store.CountMessages(ctx, m.ID)
	if err != nil {
		return res, err
	}
	res.Duplicated = max(stored-(len(ids)-res.Lost), 0)
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if len(lat) < opts.Arrivals { // an arrival never stored counts as infinitely late
		res.P99 = max(res.P99, stallTimeout)
	}
	return res, nil
}

// percentile returns the p-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// waitGraph polls cond until it holds, ctx ends, or nothing changed for stallTimeout.
func waitGraph(ctx context.Context, cond func() (bool, string, error)) error {
	last, since := "", time.Now()
	for {
		ok, state, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if state != last {
			last, since = state, time.Now()
		} else if time.Since(since) > stallTimeout {
			return fmt.Errorf("stalled for %s at: %s", stallTimeout, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
