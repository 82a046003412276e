package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/connector/gmail"
	"github.com/postroom/postroom/internal/googletest"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/vault"
)

// Gmail benchmark settings.
const (
	// gmailArrivalGap is the time between two arrivals in the latency phase.
	gmailArrivalGap = 50 * time.Millisecond
	// GmailWatch is how often a waiting Gmail source asks getProfile for news
	// (gmail.DefaultWatchInterval): Gmail's push goes through Google Cloud Pub/Sub, which
	// postroom does not use, so arrival latency is that of this watch.
	GmailWatch     = gmail.DefaultWatchInterval
	gmailBenchUser = "support@bench.example"
)

// GmailOptions configure the Gmail benchmark.
type GmailOptions struct {
	Messages int // loaded before the mailbox is enabled (ingest phase)
	Arrivals int // delivered one at a time afterwards (latency phase)
	Logger   *slog.Logger
	Progress io.Writer
}

// GmailResult holds the figures of a Gmail run.
type GmailResult struct {
	Messages   int
	Ingest     time.Duration // enable → all stored and marked read
	Requests   int64         // Gmail API requests of the ingest phase
	Arrivals   int
	P50, P99   time.Duration // arrival at the stand-in → work item committed
	Lost       int
	Duplicated int
}

// Rate is messages per second of the ingest phase.
func (r GmailResult) Rate() float64 { return rate(r.Messages, r.Ingest) }

// RequestsPerMessage is Gmail API requests per ingested message.
func (r GmailResult) RequestsPerMessage() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Messages)
}

// Line is the machine-readable last line.
func (r GmailResult) Line() string {
	return fmt.Sprintf("gmail_msgs_per_s=%.0f requests_per_msg=%.2f p99_arrival_ms=%d lost=%d duplicated=%d",
		r.Rate(), r.RequestsPerMessage(), r.P99.Milliseconds(), r.Lost, r.Duplicated)
}

// Report prints the figures for people.
func (r GmailResult) Report(w io.Writer) {
	fmt.Fprintf(w, "ingest:    %d messages in %s = %.0f msgs/s, %.2f Gmail API requests per message\n",
		r.Messages, r.Ingest.Round(time.Millisecond), r.Rate(), r.RequestsPerMessage())
	fmt.Fprintf(w, "arrivals:  %d messages, one every %s, the mailbox watched every %s: p50 %d ms, p99 %d ms\n",
		r.Arrivals, gmailArrivalGap, GmailWatch, r.P50.Milliseconds(), r.P99.Milliseconds())
	fmt.Fprintf(w, "exactness: lost=%d duplicated=%d\n", r.Lost, r.Duplicated)
}

// Gmail measures a Gmail API mailbox (provider google, a service account with domain-wide
// delegation) against the local Google stand-in (internal/googletest), which it starts:
// the ingest of opts.Messages unread messages (messages.list, messages.get raw, UNREAD
// removed), then the latency from arrival to work item of opts.Arrivals messages found
// through history.list.
func Gmail(ctx context.Context, opts GmailOptions) (GmailResult, error) {
	res := GmailResult{Messages: opts.Messages, Arrivals: opts.Arrivals}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := googletest.Start(googletest.Options{Logger: quiet})
	if err != nil {
		return res, fmt.Errorf("start the Google stand-in: %w", err)
	}
	defer g.Close()
	g.AddUser(gmailBenchUser, googletest.UserConfig{})
	sa, err := g.AddServiceAccount("postroom-bench", "postroom")
	if err != nil {
		return res, err
	}
	sa.Delegate(googletest.ScopeMail)
	fmt.Fprintf(progress, "loading %d messages into %s at the stand-in...\n", opts.Messages, gmailBenchUser)
	ids := map[string]int{}
	for i := range opts.Messages {
		id, err := g.Deliver(gmailBenchUser, gmailSample(i))
		if err != nil {
			return res, err
		}
		ids[id] = i
	}
	dir, err := os.MkdirTemp("", "postroom-bench-gmail-")
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
		AfterCommit: afterCommit, IngestReload: 100 * time.Millisecond})
	if err != nil {
		return res, err
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	host, port, err := splitHostPort(g.GmailURL())
	if err != nil {
		return res, err
	}
	m, err := a.EnsureMailbox(ctx, "bench", app.MailboxInput{
		Mailbox: store.Mailbox{
			Name: "bench_gmail", Direction: store.Inbound, Protocol: "gmail", Address: gmailBenchUser, Login: gmailBenchUser,
			Host: host, Port: port, Security: "none", Folder: "INBOX",
			AfterAction: store.AfterMarkRead, MaxSizeMB: mailboxMaxSizeMB, PollInterval: 10 * time.Second, Enabled: false,
			Auth: store.AuthOAuthApp, OAuth: store.OAuth{Provider: "google", ClientID: sa.ClientID},
		},
		ClientSecret: vault.NewSecret(string(sa.KeyJSON())),
	})
	if err != nil {
		return res, err
	}
	stopped := a.Start(ctx)
	defer func() { cancel(); stopped() }()
	before := g.Requests()
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
			for _, x := range g.Messages(gmailBenchUser) {
				if !slices.Contains(x.Labels, "UNREAD") {
					read++
				}
			}
		}
		return n == opts.Messages && read == opts.Messages, fmt.Sprintf("%d stored, %d marked read", n, read), nil
	}); err != nil {
		return res, fmt.Errorf("ingest phase: %w", err)
	}
	res.Ingest = time.Since(start)
	res.Requests = g.Requests() - before

	fmt.Fprintf(progress, "delivering %d messages, one every %s...\n", opts.Arrivals, gmailArrivalGap)
	arrived := map[string]time.Time{}
	for i := range opts.Arrivals {
		at := time.Now()
		id, err := g.Deliver(gmailBenchUser, gmailSample(opts.Messages+i))
		if err != nil {
			return res, err
		}
		ids[id] = opts.Messages + i
		arrived[id] = at
		time.Sleep(gmailArrivalGap)
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
		if _, err := a.Store.MessageBySource(ctx, m.ID, "gmail:"+id); err != nil {
			res.Lost++
		}
		if at, ok := arrived[id]; ok {
			if c, ok := committed["gmail:"+id]; ok {
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

// gmailSample is the i-th message of the benchmark: a customer's question of about 2 KB.
func gmailSample(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <customer%d@example.org>\r\nTo: %s\r\nSubject: Question %d\r\n"+
		"Message-ID: <gmail-bench-%d@example.org>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is question %d.\r\n%s\r\n",
		i, i, gmailBenchUser, i, i, i, gmailFiller)
}

// filler makes a benchmark message about 2 KB long.
var gmailFiller = strings.Repeat("The parcel has not arrived yet; please look into it. ", 36)

// splitHostPort reads http://host:port.
func splitHostPort(base string) (string, int, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return "", 0, fmt.Errorf("no port in %s", base)
	}
	return u.Hostname(), port, nil
}
