package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestHarness: the shipped binary does not link the testing package, the
// test harness (internal/testenv) or the browser driver it brings (chromedp). postroom
// bench starts its Dovecot through internal/localserver instead.
func TestBinaryLinksNoTestHarness(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || strings.HasSuffix(dep, "/internal/testenv") || strings.Contains(dep, "chromedp") || strings.HasPrefix(dep, "testing/") {
			t.Errorf("cmd/postroom links %s; the shipped binary must not link the test harness", dep)
		}
	}
}
