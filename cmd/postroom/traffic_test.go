package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "30/min": 2 * time.Second, "2/s": 500 * time.Millisecond, "100/h": 36 * time.Second} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"30", "0/min", "5/week", "x/s", "1000/s"} {
		if _, err := parseRate(in); err == nil || !strings.Contains(err.Error(), "30/min") {
			t.Errorf("parseRate(%q) = %v; want an error naming the form", in, err)
		}
	}
}
