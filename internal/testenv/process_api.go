package testenv

import "github.com/postroom/postroom/internal/localserver"

// StartDovecotProcess starts a Dovecot exactly as StartDovecot does, for a caller without a
// testing.TB. stop stops it and removes its directory; it is idempotent. Programs (postroom
// bench) use localserver.StartDovecot instead, which does not link the test harness.
func StartDovecotProcess(opts *DovecotOptions) (d *Dovecot, stop func() error, err error) {
	inner, err := localserver.StartDovecot(opts)
	if err != nil {
		return nil, nil, err
	}
	return &Dovecot{inner}, inner.Shutdown, nil
}
