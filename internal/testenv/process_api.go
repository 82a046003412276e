package testenv

import (
	"context"
	"sync"
)

// This file is the entry point for programs rather than tests (postroom bench): the same
// Dovecot as StartDovecot, with errors returned instead of t.Fatal and a stop function
// instead of t.Cleanup.

// StartDovecotProcess starts a Dovecot exactly as StartDovecot does (same configuration,
// loopback only, free ports, root needed to drop privileges to nobody). stop stops it and
// removes its directory; it is idempotent and must be called once the caller is done.
func StartDovecotProcess(opts *DovecotOptions) (d *Dovecot, stop func() error, err error) {
	if opts == nil {
		opts = &DovecotOptions{}
	}
	d, err = startDovecot(opts)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() { stopErr = d.shutdown() })
		return stopErr
	}
	return d, stop, nil
}

// AppendManyContext is AppendMany for a caller without a testing.TB: it stores raws in the
// user's mailbox in order with MULTIAPPEND, creating the mailbox if needed.
func (d *Dovecot) AppendManyContext(ctx context.Context, user, mailbox string, raws [][]byte) error {
	if len(raws) == 0 {
		return nil
	}
	return d.appendMany(ctx, user, mailbox, raws)
}

// MessagesContext is Messages for a caller without a testing.TB.
func (d *Dovecot) MessagesContext(ctx context.Context, user, mailbox string) ([]DovecotMessage, error) {
	return d.messages(ctx, user, mailbox)
}

// Doveadm runs doveadm against this instance with args (for example "search", "-u", USER,
// "mailbox", "INBOX", "SEEN") and returns its standard output; stdin may be nil.
func (d *Dovecot) Doveadm(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return d.runDoveadm(ctx, stdin, args...)
}

// LogPath is the file Dovecot logs to.
func (d *Dovecot) LogPath() string { return d.logPath }

// SessionsContext is Sessions for a caller without a testing.TB (or off the test's
// goroutine).
func (d *Dovecot) SessionsContext(ctx context.Context) ([]DovecotSession, error) {
	return d.sessions(ctx)
}
