package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// benchIngestLine is the machine-readable last line of `postroom bench ingest`, as the
// acceptance check and scripts parse it.
var benchIngestLine = regexp.MustCompile(`^postroom_msgs_per_s=(\d+\.\d) mbsync_msgs_per_s=(\d+\.\d) ratio=(\d+\.\d\d) lost=(\d+) duplicated=(\d+) peak_rss_mb=(\d+\.\d)$`)

// runBenchCommand runs `postroom bench ARGS...` and returns its output lines.
func runBenchCommand(t *testing.T, args ...string) []string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"bench"}, args...), &out, &errOut, noEnv)
	if code != 0 {
		t.Fatalf("postroom bench %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	t.Logf("postroom bench %s:\n%s", strings.Join(args, " "), out.String())
	return lines
}

func TestBenchIngest(t *testing.T) {
	lines := runBenchCommand(t, "ingest", "-n", "50", "-size", "4096")
	last := lines[len(lines)-1]
	m := benchIngestLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not %s", last, benchIngestLine)
	}
	if m[4] != "0" || m[5] != "0" {
		t.Errorf("lost=%s duplicated=%s, want 0 and 0", m[4], m[5])
	}
	for i, name := range []string{"postroom_msgs_per_s", "mbsync_msgs_per_s", "ratio", "", "", "peak_rss_mb"} {
		if name == "" {
			continue
		}
		if v, _ := strconv.ParseFloat(m[i+1], 64); v <= 0 {
			t.Errorf("%s=%s, want a positive figure", name, m[i+1])
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), `marked \Seen: 50)`) {
		t.Errorf("the report does not say that all 50 messages were marked \\Seen at the server")
	}
}

func TestBenchLargeMessage(t *testing.T) {
	// 2 MB instead of 20 keeps the test quick; the figure is not asserted, only that the
	// message was stored whole, once, and acknowledged, and that the line parses.
	lines := runBenchCommand(t, "rss20mb", "-size", "2000000")
	last := lines[len(lines)-1]
	re := regexp.MustCompile(`^message_mb=\d+\.\d peak_rss_mb=\d+\.\d baseline_rss_mb=\d+\.\d peak_over_size=\d+\.\d\d stored=(true|false)$`)
	m := re.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not %s", last, re)
	}
	if m[1] != "true" {
		t.Errorf("the message was not stored whole and once and marked \\Seen: %s", last)
	}
}

// TestBenchGraph: the Graph benchmark against the stand-in ends with its machine-readable
// line (the acceptance check parses it), every message stored once.
func TestBenchGraph(t *testing.T) {
	lines := runBenchCommand(t, "graph", "-n", "60", "-arrivals", "5")
	last := lines[len(lines)-1]
	re := regexp.MustCompile(`^graph_msgs_per_s=(\d+) requests_per_msg=(\d+\.\d\d) p99_arrival_ms=(\d+) lost=(\d+) duplicated=(\d+)$`)
	m := re.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not %s", last, re)
	}
	if m[4] != "0" || m[5] != "0" {
		t.Errorf("lost=%s duplicated=%s, want 0 and 0", m[4], m[5])
	}
	if v, _ := strconv.ParseFloat(m[2], 64); v < 1 {
		t.Errorf("requests_per_msg=%s: each message needs at least its $value", m[2])
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "frobnicate"}, {"bench", "ingest", "-n", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut, noEnv); code != 2 {
			t.Errorf("postroom %s: exit %d, want 2 (usage)", strings.Join(args, " "), code)
		}
		if !strings.Contains(errOut.String(), "ingest") && !strings.Contains(errOut.String(), "-n") {
			t.Errorf("postroom %s: stderr %q does not show the usage", strings.Join(args, " "), errOut.String())
		}
	}
}

// benchSignInLine is the last line of `postroom bench signin`, as the issue names it.
var benchSignInLine = regexp.MustCompile(`^attacker_per_account_per_s=(\d+\.\d\d) attacker_server_per_s=(\d+\.\d) user_signin_ms_p50=(\d+) user_signin_ms_p99=(\d+)$`)

// TestBenchSignIn: a short flood; one account gets only its few free guesses (the rest is
// refused before bcrypt), and the real user signed in throughout (else the bench fails).
func TestBenchSignIn(t *testing.T) {
	lines := runBenchCommand(t, "signin", "-seconds", "2", "-attackers", "8")
	last := lines[len(lines)-1]
	m := benchSignInLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not %s", last, benchSignInLine)
	}
	// 5 free failures, then 1 s, 2 s, ...: in 2 s at most about 8 guesses, 4 per second.
	if perAccount, _ := strconv.ParseFloat(m[1], 64); perAccount > 4 {
		t.Errorf("the attacker got %.2f guesses per second against one account", perAccount)
	}
}

// benchFailoverLine is the last line of `postroom bench failover`, as the issue names it.
var benchFailoverLine = regexp.MustCompile(`^nodes=(\d+) mailboxes=(\d+) messages=(\d+) lost=(\d+) duplicated=(\d+) takeover_s=(-1|\d+\.\d\d)$`)

// TestBenchFailover: a small failover run (the nodes run the binary built from this
// package) ends with its line, nothing lost or stored twice, and a takeover seen.
func TestBenchFailover(t *testing.T) {
	bin := buildPostroom(t)
	lines := runBenchCommand(t, "failover", "-binary", bin, "-mailboxes", "4", "-messages", "40", "-rounds", "2", "-lease-seconds", "3")
	last := lines[len(lines)-1]
	m := benchFailoverLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not %s", last, benchFailoverLine)
	}
	if m[1] != "3" || m[2] != "4" || m[3] != "40" {
		t.Errorf("nodes=%s mailboxes=%s messages=%s, want 3, 4 and 40", m[1], m[2], m[3])
	}
	if m[4] != "0" || m[5] != "0" {
		t.Errorf("lost=%s duplicated=%s, want 0 and 0", m[4], m[5])
	}
	if m[6] == "-1" {
		t.Errorf("no takeover was seen: %s", last)
	}
}
