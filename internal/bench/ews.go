package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/ewstest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// ewsArrivalGap is the time between two arrivals in the EWS latency phase.
const ewsArrivalGap = 50 * time.Millisecond

// EWSOptions configure the EWS benchmark.
type EWSOptions struct {
	Messages int // loaded before the mailbox is enabled (ingest phase)
	Arrivals int // delivered one at a time afterwards (latency phase)
	// PollInterval is the mailbox's poll interval (the form's least is 10 s).
	PollInterval time.Duration
	Logger       *slog.Logger
	Progress     io.Writer
}

// EWSResult holds the figures of an EWS run.
type EWSResult struct {
	Messages     int
	Ingest       time.Duration // enable → all stored and marked read
	Requests     int           // EWS HTTP requests of the ingest phase
	Arrivals     int
	PollInterval time.Duration
	P50, P99     time.Duration // arrival at the stand-in → work item committed
	Lost         int
	Duplicated   int
}

// Rate is messages per second of the ingest phase.
func (r EWSResult) Rate() float64 { return rate(r.Messages, r.Ingest) }

// RequestsPerMessage is EWS requests per ingested message.
func (r EWSResult) RequestsPerMessage() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Messages)
}

// Line is the machine-readable last line.
func (r EWSResult) Line() string {
	return fmt.Sprintf("ews_msgs_per_s=%.0f requests_per_msg=%.2f p99_arrival_ms=%d lost=%d duplicated=%d",
		r.Rate(), r.RequestsPerMessage(), r.P99.Milliseconds(), r.Lost, r.Duplicated)
}

// Report prints the figures for people.
func (r EWSResult) Report(w io.Writer) {
	fmt.Fprintf(w, "ingest:    %d messages in %s = %.0f msgs/s, %.2f EWS requests per message\n",
		r.Messages, r.Ingest.Round(time.Millisecond), r.Rate(), r.RequestsPerMessage())
	fmt.Fprintf(w, "arrivals:  %d messages, one every %s, streaming notifications (polled every %s without): p50 %d ms, p99 %d ms\n",
		r.Arrivals, ewsArrivalGap, r.PollInterval, r.P50.Milliseconds(), r.P99.Milliseconds())
	fmt.Fprintf(w, "exactness: lost=%d duplicated=%d\n", r.Lost, r.Duplicated)
}

// EWS measures an Exchange Web Services mailbox against the local stand-in
// (internal/ewstest), which it starts: the ingest of opts.Messages messages waiting in the
// inbox (SyncFolderItems, GetItem with MimeContent, UpdateItem IsRead), then the latency
// from arrival to work item of opts.Arrivals messages (streaming notifications wake the
// mailbox's loop).
func EWS(ctx context.Context, opts EWSOptions) (EWSResult, error) {
	res := EWSResult{Messages: opts.Messages, Arrivals: opts.Arrivals, PollInterval: opts.PollInterval}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	srv, err := ewstest.Start(ewstest.Options{})
	if err != nil {
		return res, fmt.Errorf("start the EWS stand-in: %w", err)
	}
	defer srv.Close()
	const address = "support@contoso.local"
	sample, err := srv.SampleSetup(address, 0)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "loading %d messages into %s at the EWS stand-in...\n", opts.Messages, address)
	ids := map[string]int{}
	for i := range opts.Messages {
		id, err := srv.Deliver(address, ewstest.SampleMessage(i, address))
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
	dir, err := os.MkdirTemp("", "postroom-bench-ews-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var mu sync.Mutex
	committed := map[string]time.Time{}
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
			Name: "bench_ews", Direction: store.Inbound, Protocol: "ews", Address: address, Host: sample.Host, Port: sample.Port,
			Security: "none", Login: sample.Login, Folder: "inbox", AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB,
			PollInterval: opts.PollInterval, Auth: store.AuthPassword,
		},
		Password: vault.NewSecret(sample.Password),
	})
	if err != nil {
		return res, err
	}
	srv.ResetRequests()
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
			for _, x := range srv.Messages(address, "inbox") {
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
	res.Requests = int(srv.Requests())

	fmt.Fprintf(progress, "delivering %d messages, one every %s...\n", opts.Arrivals, ewsArrivalGap)
	arrived := map[string]time.Time{}
	for i := range opts.Arrivals {
		at := time.Now()
		id, err := srv.Deliver(address, ewstest.SampleMessage(opts.Messages+i, address))
		if err != nil {
			return res, fmt.Errorf("deliver arrival %d: %w", i, err)
		}
		ids[id] = opts.Messages + i
		arrived[id] = at
		time.Sleep(ewsArrivalGap)
	}
	total := opts.Messages + opts.Arrivals
	_ = waitGraph(ctx, func() (bool, string, error) {
		n, err := a.Store.CountMessages(ctx, m.ID)
		return n >= total, fmt.Sprintf("%d of %d stored", n, total), err
	})
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for id := range ids {
		if _, err := a.Store.MessageBySource(ctx, m.ID, "ews:"+id); err != nil {
			res.Lost++
		}
		if at, ok := arrived[id]; ok {
			if c, ok := committed["ews:"+id]; ok {
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
	if len(lat) < opts.Arrivals {
		res.P99 = max(res.P99, stallTimeout)
	}
	return res, nil
}
