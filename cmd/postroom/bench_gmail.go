package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/postroom/postroom/internal/bench"
)

// Defaults of `postroom bench gmail`, as for Graph.
const (
	defaultGmailMessages = 5000
	defaultGmailArrivals = 200
	benchGmailGoalP99MS  = 1000
)

func runBenchGmail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench gmail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", defaultGmailMessages, "unread messages waiting in the mailbox before it is enabled (ingest phase)")
	arrivals := fs.Int("arrivals", defaultGmailArrivals, "messages delivered one at a time afterwards (latency phase)")
	logLevel := fs.String("log-level", benchDefaultLogLevel, "log level of the product under test: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *arrivals < 1 {
		return fmt.Errorf("-n and -arrivals must be at least 1")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	res, err := bench.Gmail(ctx, bench.GmailOptions{Messages: *n, Arrivals: *arrivals, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      p99 arrival <= %d ms, lost=0, duplicated=0 (the mailbox asks getProfile every %s: Gmail's push needs Cloud Pub/Sub)",
		benchGmailGoalP99MS, bench.GmailWatch))
}
