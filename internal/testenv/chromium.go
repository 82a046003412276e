package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// chromiumPath is Debian's chromium package; the harness never downloads a browser build.
	chromiumPath = "/usr/bin/chromium"
	// chromiumStartTimeout bounds launching the browser and opening its first tab; a cold
	// start on a 2-core machine takes about a second.
	chromiumStartTimeout = 60 * time.Second
)

// chromiumInstallAdvice is the message for a missing browser.
const chromiumInstallAdvice = "run ./scripts/test, which installs Debian's chromium package (or apt-get install -y --no-install-recommends chromium)"

// Chromium starts Debian's /usr/bin/chromium headless through chromedp and returns a browser
// context for chromedp.Run and chromedp.Do. It runs with chromedp's default headless flags plus --no-sandbox
// (tests run as root), --disable-gpu, --disable-quic, --no-first-run,
// --disable-background-networking, --disable-component-update, --disable-sync and a fresh
// --user-data-dir, so it makes no connection of its own. The browser is closed at t.Cleanup.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	if _, err := findBinary(chromiumPath, chromiumInstallAdvice); err != nil {
		t.Fatalf("testenv: chromium not installed (%s missing): %s", chromiumPath, chromiumInstallAdvice)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), // removed after the cleanup below, which waits for exit
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)

	// chromedp reports protocol errors from its own goroutines, possibly after the test
	// ended, when t.Logf would panic; the log is closed before the browser is cancelled.
	logs := &testLog{t: t}
	ctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logs.logf("chromedp error: ")))
	t.Cleanup(func() {
		cancelBrowser() // closes the browser gracefully
		cancelAlloc()   // waits for the process to exit
		logs.close()
	})

	// Do with no actions starts the browser and opens the first tab, so a browser that
	// cannot start fails here and not in the middle of a test. Its context must have no
	// deadline (that would end the browser), so a timer bounds the start instead.
	timer := time.AfterFunc(chromiumStartTimeout, cancelBrowser)
	err := chromedp.Do(ctx)
	if !timer.Stop() {
		t.Fatalf("testenv: start chromium %s: no browser tab after %s: %v", chromiumPath, chromiumStartTimeout, err)
	}
	if err != nil {
		t.Fatalf("testenv: start chromium %s: %v", chromiumPath, err)
	}
	return ctx
}

// testLog forwards log lines to t.Logf until it is closed.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (l *testLog) logf(prefix string) func(string, ...any) {
	return func(format string, args ...any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed {
			l.t.Logf("testenv: %s%s", prefix, fmt.Sprintf(format, args...))
		}
	}
}

func (l *testLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}
