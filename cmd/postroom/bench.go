package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/bench"
	"github.com/postroom/postroom/internal/localserver"
)

// Defaults of `postroom bench`: the goals (10,000 × 10 KB; one 20 MB message;
// 1,000 IDLE mailboxes).
const (
	defaultBenchMessages = 10000
	defaultBenchSize     = 10240
	defaultLargeSize     = 20_000_000
	defaultIdleMailboxes = 1000
	benchDefaultLogLevel = "warn" // one line per message at info would drown the figures
	defaultGraphMessages = 5000   // the Graph ingest
	defaultGraphArrivals = 200
	benchGraphGoalP99MS  = 1000 // arrival → work item with change notifications
	benchIngestGoalRatio = 0.7  // ratio to mbsync the issue asks for
	benchLargeGoalFactor = 3    // peak RSS at most 3× the message's size
	benchIdleGoalMB      = 200  // peak RSS for 1,000 IDLE mailboxes
	benchIdleManyGoalMB  = 1024 // peak RSS for 10,000 IDLE mailboxes (1 GiB)
	benchIdleMany        = 10000
)

// benchUsage is what `postroom bench` and `postroom bench -h` print.
const benchUsage = `usage: postroom bench KIND [flags]

Benchmarks on throwaway servers on loopback (Dovecot; ingest also needs mbsync from isync):
  ingest    postroom's ingest rate beside mbsync's on the same mailbox
  rss20mb   peak memory while one 20 MB message is ingested
  idle      1,000 mailboxes in IMAP IDLE on one Dovecot (-mailboxes 10000: on a go-imap peer)
  graph     Microsoft Graph ingest against the local Microsoft 365 stand-in
  ews       Exchange Web Services ingest against the local EWS stand-in
  gmail     Gmail API ingest against the local Google Workspace stand-in
  routing   assignment decisions on SQLite, then PostgreSQL (127.0.0.1:5432)
  signin    sign-in under a flood of wrong passwords (throttling, bcrypt bound)
  failover  three serve processes on PostgreSQL (127.0.0.1:5432), one killed with SIGKILL

Run "postroom bench KIND -h" for the flags of one.
`

// runBench runs one of the benchmarks against a throwaway Dovecot on loopback (needs root,
// dovecot and, for ingest, mbsync from isync).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	switch args[0] {
	case "ingest":
		return runBenchIngest(ctx, args[1:], stdout, stderr)
	case "rss20mb":
		return runBenchLarge(ctx, args[1:], stdout, stderr)
	case "idle":
		return runBenchIdle(ctx, args[1:], stdout, stderr)
	case benchIMAPPeer: // not in the usage: bench idle starts it
		return runBenchIMAPPeer(ctx, args[1:], stdout, stderr)
	case "graph":
		return runBenchGraph(ctx, args[1:], stdout, stderr)
	case "ews":
		return runBenchEWS(ctx, args[1:], stdout, stderr)
	case "gmail":
		return runBenchGmail(ctx, args[1:], stdout, stderr)
	case "routing":
		return runBenchRouting(ctx, args[1:], stdout, stderr)
	case "signin":
		return runBenchSignIn(ctx, args[1:], stdout, stderr)
	case "failover":
		return runBenchFailover(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "postroom bench: unknown benchmark %q\n%s", args[0], benchUsage)
		return errUsage
	}
}

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", defaultBenchMessages, "number of messages")
	size := fs.Int("size", defaultBenchSize, "approximate size of each message in bytes")
	useTLS := fs.Bool("tls", false, "connect with implicit TLS (both postroom and mbsync) instead of plain text on loopback")
	noFSync := fs.Bool("mbsync-nofsync", false, `take the ratio against mbsync with "FSync no" instead of its default "FSync yes" (both are run and reported)`)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of postroom's ingest to this file")
	rules := fs.Int("rules", 0, "classification rules active while postroom ingests (the issue measures 50; 0: none)")
	rulesLanguage := fs.Bool("rules-language", false, "with -rules: one rule asks for the detected language, so every message is run through language detection")
	traceFile := fs.String("trace", "", "write an execution trace of postroom's ingest to this file (go tool trace)")
	logLevel := fs.String("log-level", benchDefaultLogLevel, "log level of the product under test: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *size < 1 {
		return fmt.Errorf("-n and -size must be at least 1")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	res, err := bench.Ingest(ctx, bench.IngestOptions{
		Messages: *n, Size: *size, TLS: *useTLS, MbsyncNoFSync: *noFSync, CPUProfile: *cpuProfile, Trace: *traceFile, Rules: *rules, RulesLanguage: *rulesLanguage,
		Logger: log, Progress: stdout,
	})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      ratio >= %.1f, lost=0, duplicated=0", benchIngestGoalRatio))
}

func runBenchLarge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench rss20mb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", defaultLargeSize, "size of the one message in bytes")
	useTLS := fs.Bool("tls", false, "connect with implicit TLS instead of plain text on loopback")
	text := fs.Bool("text", false, "make the message one long plain-text body instead of a short text and one attachment")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations during the ingest) to this file")
	logLevel := fs.String("log-level", benchDefaultLogLevel, "log level of the product under test: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	res, err := bench.LargeMessage(ctx, bench.LargeOptions{Size: *size, Text: *text, TLS: *useTLS, MemProfile: *memProfile, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      peak RSS <= %d × the message's size", benchLargeGoalFactor))
}

func runBenchIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("mailboxes", defaultIdleMailboxes, "number of inbound mailboxes watched, one user each at the peer")
	peer := fs.String("peer", bench.PeerAuto, fmt.Sprintf("IMAP server the mailboxes are on: dovecot, goimap (go-imap in a separate process) or auto (dovecot up to %d mailboxes, goimap above)", bench.AutoDovecotMax))
	useTLS := fs.Bool("tls", false, "connect with implicit TLS instead of plain text on loopback (dovecot only)")
	settle := fs.Duration("settle", 3*time.Second, "how long the connected mailboxes idle before the memory is read (each re-enters IDLE every 60 s)")
	memProfile := fs.String("memprofile", "", "write a heap profile of the product, once the mailboxes idle, to this file")
	logLevel := fs.String("log-level", benchDefaultLogLevel, "log level of the product under test: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start the imap peer: %w", err)
	}
	peerCommand := func(userFormat string, users int) *exec.Cmd {
		return exec.Command(exe, "bench", benchIMAPPeer, "-user-format", userFormat, "-users", strconv.Itoa(users))
	}
	res, err := bench.Idle(ctx, bench.IdleOptions{Mailboxes: *n, TLS: *useTLS, Peer: *peer, PeerCommand: peerCommand,
		Settle: *settle, MemProfile: *memProfile, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      peak RSS <= %d MB for %d mailboxes (1 GiB), <= %d MB for %d",
		benchIdleManyGoalMB, benchIdleMany, benchIdleGoalMB, defaultIdleMailboxes))
}

// benchIMAPPeer is the hidden `postroom bench` subcommand that runs the go-imap peer of
// `bench idle` in a process of its own, so that its memory and files are not counted
// with the product's.
const benchIMAPPeer = "imap-peer"

func runBenchIMAPPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench "+benchIMAPPeer, flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.Int("users", 1, "number of users, each with an empty INBOX")
	format := fs.String("user-format", "user%05d@example.test", "login of user i (fmt verb for the number)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return localserver.RunIMAPPeer(ctx, *format, *users, os.Stdin, stdout, stderr)
}

func runBenchGraph(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", defaultGraphMessages, "messages waiting in the mailbox before it is enabled (ingest phase)")
	arrivals := fs.Int("arrivals", defaultGraphArrivals, "messages delivered one at a time afterwards (latency phase)")
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
	res, err := bench.Graph(ctx, bench.GraphOptions{Messages: *n, Arrivals: *arrivals, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      p99 arrival <= %d ms, lost=0, duplicated=0 (the stand-in's 10,000 requests / 10 min limit is lifted; 4 concurrent requests per mailbox kept)", benchGraphGoalP99MS))
}

// runBenchEWS measures an EWS mailbox against the local EWS stand-in.
func runBenchEWS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench ews", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", defaultGraphMessages, "messages waiting in the mailbox before it is enabled (ingest phase)")
	arrivals := fs.Int("arrivals", defaultGraphArrivals, "messages delivered one at a time afterwards (latency phase)")
	poll := fs.Duration("poll", 10*time.Second, "the mailbox's poll interval (at least 10s, as in the mailbox form)")
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
	res, err := bench.EWS(ctx, bench.EWSOptions{Messages: *n, Arrivals: *arrivals, PollInterval: *poll, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      p99 arrival <= %d ms, lost=0, duplicated=0", benchGraphGoalP99MS))
}

// benchResult is what each benchmark reports.
type benchResult interface {
	Report(w io.Writer) // the figures for people
	Line() string       // the machine-readable last line
}

// printBench prints the figures, the goal and, last, the machine-readable line.
func printBench(w io.Writer, res benchResult, goal string) error {
	res.Report(w)
	fmt.Fprintln(w, goal)
	fmt.Fprintln(w, res.Line())
	return nil
}

// runBenchRouting runs the routing benchmark on SQLite, then PostgreSQL; the last two
// lines are the result lines, one per store.
func runBenchRouting(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench routing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agents := fs.Int("agents", 1000, "number of agents (random skills and languages)")
	items := fs.Int("items", 100000, "number of queued work items")
	queues := fs.Int("queues", 20, "number of queues")
	stores := fs.String("stores", "sqlite,postgres", "stores to measure, in order")
	pgURL := fs.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server to create a throwaway database on")
	logLevel := fs.String("log-level", benchDefaultLogLevel, "log level of the product under test")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the assignment phase to this file (per store: FILE.sqlite, FILE.postgres)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *agents < 1 || *items < 1 || *queues < 1 {
		return fmt.Errorf("-agents, -items and -queues must be at least 1")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	var lines []string
	for _, s := range strings.Split(*stores, ",") {
		res, err := bench.Routing(ctx, bench.RoutingOptions{Store: strings.TrimSpace(s), PostgresURL: *pgURL, Agents: *agents,
			Items: *items, Queues: *queues, Logger: log, Progress: stdout, CPUProfile: profileName(*cpuProfile, s)})
		if err != nil {
			return fmt.Errorf("bench routing on %s: %w", s, err)
		}
		lines = append(lines, res.Line())
	}
	fmt.Fprintln(stdout, "goal: assignments_per_s >= 5000 (sqlite), >= 2000 (postgres); p99_decision_ms <= 10; double_assigned=0")
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return nil
}

func profileName(base, store string) string {
	if base == "" {
		return ""
	}
	return base + "." + strings.TrimSpace(store)
}

// runBenchSignIn floods sign-in with wrong passwords and measures a real user's sign-in.
func runBenchSignIn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench signin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seconds := fs.Int("seconds", 10, "length of each flood in seconds")
	attackers := fs.Int("attackers", 64, "concurrent attacking connections")
	logLevel := fs.String("log-level", "error", "log level of the product under test")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *seconds < 1 || *attackers < 1 {
		return fmt.Errorf("-seconds and -attackers must be at least 1")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	res, err := bench.SignIn(ctx, bench.SignInOptions{Phase: time.Duration(*seconds) * time.Second, Attackers: *attackers, Logger: log, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, "goal:      a flood does not slow the user's sign-in noticeably; one account gets a few guesses a minute at most")
}

// Defaults of `postroom bench failover`: the figures.
const (
	defaultFailoverNodes     = 3
	defaultFailoverMailboxes = 50
	defaultFailoverMessages  = 5000
	defaultFailoverSize      = 4096
	defaultFailoverRounds    = 10
	benchFailoverGoalS       = 10 // takeover after the kill
)

// runBenchFailover runs `postroom serve` nodes (this executable) on a throwaway PostgreSQL
// database, kills one in the middle of the arrivals and measures the takeover.
func runBenchFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postroom bench failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", defaultFailoverNodes, "number of postroom serve processes")
	mailboxes := fs.Int("mailboxes", defaultFailoverMailboxes, "number of inbound IMAP mailboxes, one Dovecot user each")
	messages := fs.Int("messages", defaultFailoverMessages, "messages delivered in all while the nodes run, spread evenly over the mailboxes")
	size := fs.Int("size", defaultFailoverSize, "approximate size of each message in bytes")
	rounds := fs.Int("rounds", defaultFailoverRounds, "deliveries to every mailbox, at least a second apart; the kill comes after half of them")
	lease := fs.Int("lease-seconds", 0, "POSTROOM_LEASE_SECONDS given to the nodes; 0: the product's default")
	pgURL := fs.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server to create a throwaway database on")
	keep := fs.Bool("keep", false, "keep the nodes' logs and data folders (the path is printed)")
	binary := fs.String("binary", "", "the postroom executable the nodes run; empty: this program")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *nodes < 2 || *mailboxes < 1 || *messages < *mailboxes || *size < 1 || *rounds < 2 || *lease < 0 {
		return fmt.Errorf("need -nodes >= 2, -mailboxes >= 1, -messages >= -mailboxes, -size >= 1, -rounds >= 2 and -lease-seconds >= 0")
	}
	bin := *binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this program to start its nodes: %w", err)
		}
		bin = exe
	}
	res, err := bench.Failover(ctx, bench.FailoverOptions{Binary: bin, PostgresURL: *pgURL, Nodes: *nodes, Mailboxes: *mailboxes,
		Messages: *messages, Size: *size, Rounds: *rounds, RoundEvery: time.Second, LeaseSeconds: *lease, KeepDir: *keep, Progress: stdout})
	if err != nil {
		return err
	}
	return printBench(stdout, res, fmt.Sprintf("goal:      takeover <= %d s after the kill, lost=0, duplicated=0", benchFailoverGoalS))
}
