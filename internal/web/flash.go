package web

import (
	"sync"
	"time"
)

// flashes keep what a POST leaves for the page it redirects to (POST-redirect-GET), so
// that reloading that page neither repeats the action nor loses or repeats its outcome:
// a connection test's report, the "Reply sent" banner. They live in memory, per session
// and object, for flashLifetime at most (one postroom node per database: see README).
type flashes struct {
	mu      sync.Mutex
	entries map[flashKey]flashEntry
	now     func() time.Time
}

// flashKey names one flash: the session's token hash, what it is, and its object's id.
type flashKey struct {
	session string
	kind    string
	id      int64
}

type flashEntry struct {
	value   any
	expires time.Time
}

// Kinds of flashes.
const (
	flashTestReport = "test-report" // a *diag.Report of a stored mailbox's connection test
	flashReplySent  = "reply-sent"  // the outbox id of a reply just queued
)

const (
	// flashLifetime is how long a flash waits for its page: a redirect follows at once,
	// a reload of the test report comes within minutes.
	flashLifetime = 10 * time.Minute
	// maxFlashes bounds the memory flashes take whatever the traffic.
	maxFlashes = 10000
)

func newFlashes(now func() time.Time) *flashes {
	return &flashes{entries: map[flashKey]flashEntry{}, now: now}
}

// put keeps value under k, replacing an older one.
func (f *flashes) put(k flashKey, value any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if len(f.entries) >= maxFlashes {
		for key, e := range f.entries {
			if !now.Before(e.expires) {
				delete(f.entries, key)
			}
		}
		for key := range f.entries {
			if len(f.entries) < maxFlashes {
				break
			}
			delete(f.entries, key)
		}
	}
	f.entries[k] = flashEntry{value: value, expires: now.Add(flashLifetime)}
}

// peek returns the value under k and keeps it (a reload shows it again).
func (f *flashes) peek(k flashKey) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[k]
	if !ok || !f.now().Before(e.expires) {
		delete(f.entries, k)
		return nil, false
	}
	return e.value, true
}

// take returns the value under k once.
func (f *flashes) take(k flashKey) (any, bool) {
	v, ok := f.peek(k)
	if ok {
		f.mu.Lock()
		delete(f.entries, k)
		f.mu.Unlock()
	}
	return v, ok
}
