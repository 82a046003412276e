package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpNamesEveryBenchmark: `postroom help` lists every benchmark, and `postroom bench
// -h` prints the benchmarks' usage instead of calling -h an unknown benchmark.
func TestHelpNamesEveryBenchmark(t *testing.T) {
	kinds := []string{"ingest", "rss20mb", "idle", "graph", "routing"}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("postroom help: exit %d", code)
	}
	var benchLine string
	for line := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(line, "postroom bench") {
			benchLine = line
		}
	}
	for _, k := range kinds {
		if !strings.Contains(benchLine, k) {
			t.Errorf("postroom help's bench line %q does not name %s", benchLine, k)
		}
	}
	for _, flag := range []string{"-h", "--help", "help"} {
		out.Reset()
		errOut.Reset()
		code := run(context.Background(), []string{"bench", flag}, &out, &errOut, noEnv)
		text := out.String() + errOut.String()
		if code != 0 || strings.Contains(text, "unknown benchmark") || !strings.Contains(out.String(), "usage: postroom bench KIND") {
			t.Errorf("postroom bench %s: exit %d\n%s", flag, code, text)
		}
		for _, k := range kinds {
			if !strings.Contains(out.String(), "\n  "+k+" ") {
				t.Errorf("postroom bench %s does not describe %s:\n%s", flag, k, out.String())
			}
		}
	}
}
