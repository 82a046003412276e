// Command postroom is the email channel of a contact center: it connects the mailboxes
// customers write to, turns every email into a work item and sends the agents' replies.
//
//	postroom demo      the whole product on embedded defaults with a demo mail server
//	postroom serve     the product against real mail servers
//	postroom migrate   apply the database schema and exit
//	postroom backup    copy the SQLite database, also while serve runs; restore puts it back
//	postroom user      administer users
//	postroom version   print the version
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `postroom: the email channel of a contact center

Usage:
  postroom demo     [flags]   run the whole product with a demo mail server (try this first)
  postroom serve    [flags]   run against real mail servers
  postroom migrate  [flags]   apply the database schema and exit
  postroom backup   [flags] FILE  copy the SQLite database to FILE, also while serve runs
  postroom restore  [flags] FILE  make the backup FILE the database of a new data folder
  postroom rotate-key [flags]   re-encrypt every stored secret under a new key (servers stopped)
  postroom mailbox  COMMAND   list, show, add, edit, enable, disable, delete, test or copy mailboxes
  postroom user     COMMAND   list, add, edit, enable, disable, delete users or set a password (passwd)
  postroom queue    COMMAND   list queues with their routing settings, or set them
  postroom rule     COMMAND   list, add or test classification rules
  postroom routing  COMMAND   export or import the whole routing configuration as JSON
  postroom agent    COMMAND   list agents' skills, languages, capacity and teams, or set them
  postroom bench    KIND      measure speed or memory (ingest, rss20mb, idle, graph, routing) on throwaway servers
  postroom version            print the version

Run "postroom COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr, getenv)
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr, getenv)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout, stderr, getenv)
	case "backup":
		err = runBackup(ctx, args[1:], stdout, stderr, getenv)
	case "restore":
		err = runRestore(ctx, args[1:], stdout, stderr, getenv)
	case "rotate-key":
		err = runRotateKey(ctx, args[1:], stdout, stderr, getenv)
	case "mailbox":
		err = runMailbox(ctx, args[1:], os.Stdin, stdout, stderr, getenv)
	case "user":
		err = runUser(ctx, args[1:], os.Stdin, stdout, stderr, getenv)
	case "queue":
		err = runQueue(ctx, args[1:], stdout, stderr, getenv)
	case "rule":
		err = runRule(ctx, args[1:], stdout, stderr, getenv)
	case "routing":
		err = runRouting(ctx, args[1:], stdout, stderr, getenv)
	case "agent":
		err = runAgent(ctx, args[1:], stdout, stderr, getenv)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "postroom: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "postroom %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// newLogger logs text lines to w at the given level ("debug", "info", "warn", "error").
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
