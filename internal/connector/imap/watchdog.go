package imap

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// activityConn is the TCP connection under the IMAP client. It notes when a byte last
// passed either way, so that a watchdog can tell a hung server from a slow one: a large
// FETCH on a slow link keeps bytes flowing, a hung server sends none.
//
// go-imap reads in its own goroutine and sets its own deadlines on the connection (30 s
// per response once it has begun, none between responses), so deadlines set here would
// fight with it; the watchdog closes the connection instead, which ends every pending
// command with an error.
type activityConn struct {
	net.Conn
	last atomic.Int64 // UnixNano of the last byte read or written
}

func (c *activityConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *activityConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *activityConn) touch() { c.last.Store(time.Now().UnixNano()) }

// watch starts a watchdog that calls abort once no byte has passed for silence, counted
// from now. stop ends it and reports whether it fired. silence 0 watches nothing.
func (c *activityConn) watch(silence time.Duration, abort func()) (stop func() (fired bool)) {
	if silence <= 0 {
		return func() bool { return false }
	}
	c.touch()
	var (
		mu      sync.Mutex
		stopped bool
		fired   bool
		timer   *time.Timer
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		quiet := time.Since(time.Unix(0, c.last.Load()))
		if quiet < silence {
			timer.Reset(silence - quiet)
			return
		}
		fired = true
		abort()
	}
	mu.Lock()
	timer = time.AfterFunc(silence, check)
	mu.Unlock()
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
		return fired
	}
}
