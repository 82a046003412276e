package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPLimits bound the web server's connections so that held connections cannot exhaust
// the process's file descriptors or starve other users. A zero field takes its default.
type HTTPLimits struct {
	// ReadHeaderTimeout is how long a client may take to send a request's header
	// (default 10 s): a connection sending it byte by byte is closed then.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a client may take to send a whole request, body included
	// (default 2 min: a 28 MB reply with attachments at 2 Mbit/s).
	ReadTimeout time.Duration
	// WriteTimeout is how long sending a response may take (default 2 min). Server-sent
	// event streams extend it before each write, so they stay open.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next request
	// (default 1 min).
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once (default 1000, well below the usual
	// descriptor limit; the rest serves the store and the mail servers). A connection over
	// the cap makes room by closing the longest-waiting idle kept-alive connection, else one
	// that sent no request yet, else the longest still sending its request's header; when
	// every connection is serving a request, the new one is closed at once.
	MaxConns int
}

// Defaults of HTTPLimits.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 2 * time.Minute
	defaultWriteTimeout      = 2 * time.Minute
	defaultIdleTimeout       = time.Minute
	defaultMaxConns          = 1000
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = defaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = defaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	if l.MaxConns <= 0 {
		l.MaxConns = defaultMaxConns
	}
	return l
}

// newHTTPServer returns the server of h with the limits, and ln wrapped in the connection
// cap (serve the server on the returned listener).
func newHTTPServer(ctx context.Context, h http.Handler, lim HTTPLimits, log *slog.Logger, ln net.Listener) (*http.Server, net.Listener) {
	lim = lim.withDefaults()
	cl := &connLimiter{Listener: ln, max: lim.MaxConns, log: log, conns: map[*limitedConn]struct{}{}}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := r.Context().Value(connKey{}).(*limitedConn); ok {
				c.serving.Add(1)
				defer c.serving.Add(-1)
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			if c, ok := nc.(*limitedConn); ok {
				return context.WithValue(ctx, connKey{}, c)
			}
			return ctx
		},
		ConnState: cl.track,
	}
	return srv, cl
}

// connKey is the request context key of the request's *limitedConn.
type connKey struct{}

// connLimiter is a listener that keeps at most max connections open (HTTPLimits.MaxConns).
type connLimiter struct {
	net.Listener
	max int
	log *slog.Logger

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	refused  int
	lastWarn time.Time
}

// limitedConn is a connection counted by its connLimiter.
type limitedConn struct {
	net.Conn
	l *connLimiter
	// state and since are the last http.ConnState and when it began (under l.mu).
	state http.ConnState
	since time.Time
	// serving counts the requests of the connection in its handler.
	serving atomic.Int32
}

// Accept returns the next connection, making room for it when the cap is reached.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &limitedConn{Conn: nc, l: l, state: http.StateNew, since: time.Now()}
		victim, ok := l.admit(c)
		if victim != nil {
			_ = victim.Conn.Close() // the server sees the error and lets it go
		}
		if ok {
			return c, nil
		}
		_ = nc.Close()
	}
}

// admit counts c, dropping another connection to make room when the cap is reached;
// false when every connection is serving a request.
func (l *connLimiter) admit(c *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) < l.max {
		l.conns[c] = struct{}{}
		return nil, true
	}
	victim = l.evictable()
	if victim == nil {
		l.refused++
		if time.Since(l.lastWarn) >= time.Minute {
			l.log.Warn("http: connection refused: every connection is serving a request",
				slog.Int("max_connections", l.max), slog.Int("refused_since_last_warning", l.refused))
			l.lastWarn, l.refused = time.Now(), 0
		}
		return nil, false
	}
	delete(l.conns, victim)
	l.conns[c] = struct{}{}
	return victim, true
}

// evictable is the connection to close for a new one: the longest idle kept-alive one,
// else the oldest that sent nothing yet, else the oldest still sending a request's header
// (active, but not in a handler); nil when all are serving requests.
func (l *connLimiter) evictable() *limitedConn {
	var best *limitedConn
	rank := func(c *limitedConn) int {
		switch {
		case c.state == http.StateIdle:
			return 0
		case c.state == http.StateNew:
			return 1
		case c.state == http.StateActive && c.serving.Load() == 0:
			return 2
		}
		return -1
	}
	for c := range l.conns {
		r := rank(c)
		if r < 0 {
			continue
		}
		if best == nil || r < rank(best) || (r == rank(best) && c.since.Before(best.since)) {
			best = c
		}
	}
	return best
}

// track follows the connections' states (http.Server.ConnState).
func (l *connLimiter) track(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		c.state, c.since = s, time.Now()
	}
}

// Close closes the connection and stops counting it.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return err
}
