package bench

import (
	"context"
	"regexp"
	"testing"
)

// TestGmailBench: a small `postroom bench gmail` run stores everything once, reaches the
// arrival goal, and ends with the machine-readable line.
func TestGmailBench(t *testing.T) {
	res, err := Gmail(context.Background(), GmailOptions{Messages: 50, Arrivals: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.P99.Milliseconds() > 1000 {
		t.Errorf("lost=%d duplicated=%d p99=%s", res.Lost, res.Duplicated, res.P99)
	}
	if !regexp.MustCompile(`^gmail_msgs_per_s=\d+ requests_per_msg=\d+\.\d\d p99_arrival_ms=\d+ lost=0 duplicated=0$`).MatchString(res.Line()) {
		t.Errorf("line %q", res.Line())
	}
}
