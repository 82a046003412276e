package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on 127.0.0.1 between a client under test and a real server,
// with network faults switched on and off while connections are open: connection resets
// (RST), stalls, responses cut short, and a slow link. It speaks no protocol itself, so
// it works for IMAP, POP3 and SMTP alike, with or without TLS (TLS passes through it end
// to end; a truncated or slowed TLS record is what a client would meet on a bad network).
//
// One fault is in force at a time; setting another (or Pass) replaces it. Faults apply to
// the connections open when they are set and to every later one, until Pass.
//
// Apart from the faults, RewriteLines makes the proxy put other words in the server's
// mouth, line by line: a test puts it in front of Dovecot to have a client meet the answers
// of another server (Exchange Online's "535 5.7.139 ..." or "NO AUTHENTICATE failed."), with
// Dovecot still doing the real work behind it. Rewriting needs plain text: the proxy cannot
// see into TLS, so such a test connects with security none on loopback (and drops the
// server's STARTTLS offer, where a client would take it up, with a rule).
type FaultProxy struct {
	// Addr is "127.0.0.1:port": give it to the client instead of the server's address.
	Addr string

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	fault fault
	// changed is closed and replaced at every fault change, waking the forwarders that
	// wait in a stall or between slow writes.
	changed chan struct{}
	conns   map[*proxyConn]struct{}
	stats   FaultProxyStats
	closed  bool
	// trigger, when set, runs once BytesToClient reaches triggerAt (OnBytesToClient).
	trigger   func()
	triggerAt int64
	// rules rewrite the server's lines (RewriteLines); nil passes them unchanged.
	rules []LineRule
}

// Direction is which way data flows through the proxy.
type Direction int

// Directions of a fault.
const (
	ToServer Direction = 1 << iota // client to server: commands, message data sent
	ToClient                       // server to client: greetings, responses, fetched messages
	Both     = ToServer | ToClient
)

func (d Direction) String() string {
	switch d {
	case ToServer:
		return "to server"
	case ToClient:
		return "to client"
	case Both:
		return "both ways"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// FaultProxyStats are the proxy's counters since it started.
type FaultProxyStats struct {
	Accepted int // connections accepted from clients
	Open     int // connections open now
	// Reset counts connections ended with a TCP RST (ResetAll, Reject).
	Reset int
	// Truncated counts connections closed by Truncate after their byte budget.
	Truncated int
	// BytesToServer and BytesToClient count bytes forwarded each way: under RewriteLines,
	// the bytes sent after rewriting (answers sent in the client's place included).
	BytesToServer, BytesToClient int64
}

type faultKind int

const (
	faultPass faultKind = iota
	faultStall
	faultSlow
	faultTruncate
	faultReject
)

type fault struct {
	kind faultKind
	dir  Direction // stall, slow
	rate int       // slow: bytes per second
	n    int64     // truncate: bytes each connection may still send to the client
}

// proxyConn is one client connection and its connection to the server.
type proxyConn struct {
	client, server *net.TCPConn
	// budget is, under Truncate, how many more bytes go to the client before the
	// connection is closed; guarded by FaultProxy.mu.
	budget   int64
	closeOne sync.Once
	// partial is the start of a server line not complete yet, held back while lines are
	// rewritten; only the to-client forwarder touches it.
	partial []byte
	// toServer serialises writes to the server: the client's data and the answers a
	// LineRule sends in its place come from two forwarders.
	toServer sync.Mutex
}

// Forwarding limits.
const (
	// proxyBufSize is the largest chunk read at once; small enough that a fault set in the
	// middle of a large response (a fetched message) applies to the rest of it.
	proxyBufSize = 4096
	// proxyDialTimeout bounds connecting to the target, which is on this machine.
	proxyDialTimeout = 5 * time.Second
	// slowTick is the pacing step of Slow: at rates above 1/slowTick bytes per second, data
	// goes out in bursts of rate*slowTick bytes each slowTick.
	slowTick = 100 * time.Millisecond
	// maxHeldLine bounds how much of an unfinished line RewriteLines holds back: a longer
	// one (a message body without line breaks) passes unchanged.
	maxHeldLine = 64 << 10
)

// StartFaultProxy listens on a free port of 127.0.0.1 and forwards every connection to
// target ("host:port"), passing data through unchanged until a fault is set. It is closed
// at t.Cleanup, with every connection.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(loopbackHost, "0"))
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{
		Addr:    ln.Addr().String(),
		target:  target,
		ln:      ln,
		changed: make(chan struct{}),
		conns:   map[*proxyConn]struct{}{},
	}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Pass ends the fault in force: data flows normally again, including what a stall or a
// slow link held back.
func (p *FaultProxy) Pass() { p.setFault(fault{kind: faultPass}) }

// Stall stops forwarding in dir (ToServer, ToClient or Both) until Pass or another fault:
// the connections stay open and silent, like a hung server or a dead link that TCP has
// not noticed yet. New connections are accepted and stalled too.
func (p *FaultProxy) Stall(dir Direction) { p.setFault(fault{kind: faultStall, dir: dir}) }

// Slow forwards data in dir at bytesPerSecond (at least 1) until Pass or another fault.
func (p *FaultProxy) Slow(dir Direction, bytesPerSecond int) {
	p.setFault(fault{kind: faultSlow, dir: dir, rate: max(bytesPerSecond, 1)})
}

// Truncate lets each connection, open now or opened later, forward n more bytes of the
// server's data to the client and then closes it (FIN both ways), as a server or middlebox
// that dies in the middle of a response would. It lasts until Pass or another fault.
func (p *FaultProxy) Truncate(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.budget = n
	}
	p.setFaultLocked(fault{kind: faultTruncate, n: n})
}

// ResetAll ends every open connection now with a TCP RST, to the client and to the server,
// and returns how many it reset. Connections opened later pass normally.
func (p *FaultProxy) ResetAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resetAllLocked()
}

// Reject resets every open connection now and every new one as soon as it is accepted,
// before anything reaches the server, until Pass or another fault: a peer that keeps
// resetting connections.
func (p *FaultProxy) Reject() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetAllLocked()
	p.setFaultLocked(fault{kind: faultReject})
}

// OnBytesToClient runs fault once, when n more bytes (counted over all connections) have
// gone from the server to the client, before any byte past them goes out. fault is
// typically a closure calling one of the fault methods (ResetAll, Stall, Truncate, ...),
// so that the fault lands at a known place in the server's data, in the middle of a
// response, whatever the timing. It replaces a trigger that has not run yet. fault runs on
// the proxy's forwarding goroutine: it must not block.
func (p *FaultProxy) OnBytesToClient(n int64, fault func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger, p.triggerAt = fault, p.stats.BytesToClient+n
}

// LineRule is one rule of RewriteLines.
type LineRule struct {
	// Match is looked for in each line the server sends, without its line end.
	Match *regexp.Regexp
	// Replace is the whole line the client gets instead, with the original line end;
	// $1 and ${name} expand to the match's groups (Regexp.Expand). An empty Replace drops
	// the line: the client never sees it.
	Replace string
	// Answer, when not empty, is written to the server in the client's place once the line
	// is handled, exactly as given (line end included: "\r\n" is an empty SASL response).
	// With Replace "" it swallows a line that waits for the client's answer, such as
	// Dovecot's SASL error challenge, so that the server goes on to its final answer.
	Answer string
}

// RewriteLines rewrites what the server sends to the client, line by line (a line ends in
// LF, usually CRLF), with the first rule whose Match is found in the line; a line no rule
// matches passes unchanged. It applies to the connections open now and to later ones, from
// the next data the server sends, and lasts until RewriteLines is called again; calling it
// with no rules ends the rewriting. The faults act on the rewritten data.
//
// While rules are set, the proxy holds back the unfinished last line of what it has read
// until its end arrives (at most maxHeldLine bytes), so use it for plain-text protocols
// only: TLS records would be held back and garbled.
func (p *FaultProxy) RewriteLines(rules ...LineRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
}

// rewrite applies the rules in force to data the server sent on c: it returns what goes
// to the client and what goes to the server in the client's place.
func (p *FaultProxy) rewrite(c *proxyConn, data []byte) (toClient, toServer []byte) {
	p.mu.Lock()
	rules := p.rules
	p.mu.Unlock()
	if len(rules) == 0 {
		if len(c.partial) == 0 {
			return data, nil
		}
		out := append(c.partial, data...)
		c.partial = nil
		return out, nil
	}
	in := append(c.partial, data...)
	c.partial = nil
	var out []byte
	for len(in) > 0 {
		end := bytes.IndexByte(in, '\n')
		if end < 0 {
			if len(in) > maxHeldLine {
				out = append(out, in...)
			} else {
				c.partial = append([]byte(nil), in...)
			}
			break
		}
		line, eol := in[:end], in[end:end+1]
		if bytes.HasSuffix(line, []byte{'\r'}) {
			line, eol = line[:len(line)-1], in[end-1:end+1]
		}
		in = in[end+1:]
		var rule *LineRule
		var match []int
		for i := range rules {
			if match = rules[i].Match.FindSubmatchIndex(line); match != nil {
				rule = &rules[i]
				break
			}
		}
		if rule == nil {
			out = append(append(out, line...), eol...)
			continue
		}
		if rule.Replace != "" {
			out = append(rule.Match.Expand(out, []byte(rule.Replace), line, match), eol...)
		}
		toServer = append(toServer, rule.Answer...)
	}
	return out, toServer
}

// Stats returns the counters.
func (p *FaultProxy) Stats() FaultProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = len(p.conns)
	return s
}

// Accepted returns how many connections the proxy has accepted.
func (p *FaultProxy) Accepted() int { return p.Stats().Accepted }

func (p *FaultProxy) setFault(f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setFaultLocked(f)
}

func (p *FaultProxy) setFaultLocked(f fault) {
	p.fault = f
	p.wakeLocked()
}

// wakeLocked wakes the forwarders waiting in a stall or a slow pause, so that they look at
// the fault and their connection again.
func (p *FaultProxy) wakeLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *FaultProxy) resetAllLocked() int {
	n := 0
	for c := range p.conns {
		c.reset()
		delete(p.conns, c)
		n++
	}
	p.stats.Reset += n
	p.wakeLocked() // a stalled forwarder of a reset connection ends now
	return n
}

// reset closes both sides with SO_LINGER 0, so the kernel sends RST instead of FIN.
func (c *proxyConn) reset() {
	c.closeOne.Do(func() {
		for _, conn := range []*net.TCPConn{c.client, c.server} {
			if conn != nil {
				_ = conn.SetLinger(0)
				_ = conn.Close()
			}
		}
	})
}

// close ends both sides with FIN. The client side is half-closed first and what the client
// still sends is read and dropped for a moment: closing a socket with unread data makes the
// kernel send RST instead of FIN, and a truncated response must end in a clean EOF.
func (c *proxyConn) close() {
	c.closeOne.Do(func() {
		if c.server != nil {
			_ = c.server.Close()
		}
		_ = c.client.CloseWrite()
		go func() {
			_ = c.client.SetReadDeadline(time.Now().Add(closeDrain))
			_, _ = io.Copy(io.Discard, c.client)
			_ = c.client.Close()
		}()
	})
}

// closeDrain bounds how long close reads what a client still sends after the FIN.
const closeDrain = 2 * time.Second

func (p *FaultProxy) accept() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return // closed at cleanup
		}
		p.wg.Go(func() { p.serve(conn.(*net.TCPConn)) })
	}
}

// serve connects one client to the target and forwards both ways until either side ends.
func (p *FaultProxy) serve(client *net.TCPConn) {
	c := &proxyConn{client: client}
	p.mu.Lock()
	p.stats.Accepted++
	if p.closed || p.fault.kind == faultReject {
		if !p.closed {
			p.stats.Reset++
		}
		p.mu.Unlock()
		c.reset()
		return
	}
	p.mu.Unlock()

	d := net.Dialer{Timeout: proxyDialTimeout}
	conn, err := d.Dial("tcp", p.target)
	if err != nil {
		c.reset() // the client sees what it would see from a server that is down
		return
	}
	c.server = conn.(*net.TCPConn)

	p.mu.Lock()
	if p.closed || p.fault.kind == faultReject {
		if !p.closed {
			p.stats.Reset++
		}
		p.mu.Unlock()
		c.reset()
		return
	}
	c.budget = p.fault.n
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { p.forward(c, c.client, c.server, ToServer) })
	wg.Go(func() { p.forward(c, c.server, c.client, ToClient) })
	wg.Wait()

	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// forward copies src to dst in dir, applying the fault in force to each chunk. When src
// ends, dst's write side is shut down (a half-close passes through); when a write fails,
// the whole connection is closed.
func (p *FaultProxy) forward(c *proxyConn, src, dst *net.TCPConn, dir Direction) {
	buf := make([]byte, proxyBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data, answer := buf[:n], []byte(nil)
			if dir == ToClient {
				data, answer = p.rewrite(c, data)
			}
			if !p.deliver(c, dst, data, dir) || !p.deliver(c, c.server, answer, ToServer) {
				c.close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if dir == ToClient && len(c.partial) > 0 {
					// The server's last words had no line end: they go as they are.
					_ = p.deliver(c, dst, c.partial, dir)
					c.partial = nil
				}
				_ = dst.CloseWrite()
			} else {
				c.close()
			}
			return
		}
	}
}

// deliver sends data to dst in dir, one writer at a time towards the server.
func (p *FaultProxy) deliver(c *proxyConn, dst *net.TCPConn, data []byte, dir Direction) bool {
	if len(data) == 0 {
		return true
	}
	if dir == ToServer {
		c.toServer.Lock()
		defer c.toServer.Unlock()
	}
	return p.send(c, dst, data, dir)
}

// send writes data to dst under the faults in force, reading the fault again after every
// wait so that a change applies to the rest of the data. It returns false when the
// connection must end.
func (p *FaultProxy) send(c *proxyConn, dst *net.TCPConn, data []byte, dir Direction) bool {
	for len(data) > 0 {
		p.mu.Lock()
		if dir == ToClient && p.trigger != nil && p.stats.BytesToClient >= p.triggerAt {
			fire := p.trigger
			p.trigger = nil
			p.mu.Unlock()
			fire()
			continue // under the fault it set
		}
		f, changed := p.fault, p.changed
		_, open := p.conns[c]
		chunk := data
		truncate := false
		switch {
		case !open:
			p.mu.Unlock()
			return false // reset or closed meanwhile
		case f.kind == faultStall && f.dir&dir != 0:
			p.mu.Unlock()
			<-changed
			continue
		case f.kind == faultTruncate && dir == ToClient:
			if int64(len(chunk)) >= c.budget {
				chunk, truncate = chunk[:c.budget], true
			}
		case f.kind == faultSlow && f.dir&dir != 0:
			chunk = chunk[:min(len(chunk), max(1, int(float64(f.rate)*slowTick.Seconds())))]
		}
		if dir == ToClient && p.trigger != nil && int64(len(chunk)) > p.triggerAt-p.stats.BytesToClient {
			chunk, truncate = chunk[:p.triggerAt-p.stats.BytesToClient], false
		}
		if f.kind == faultTruncate && dir == ToClient {
			c.budget -= int64(len(chunk))
		}
		// Counted before the write: once the peer has read the bytes, the counters (and
		// a trigger set from them) must already include them.
		p.countLocked(dir, len(chunk))
		p.mu.Unlock()

		if len(chunk) > 0 {
			if _, err := dst.Write(chunk); err != nil {
				return false
			}
			data = data[len(chunk):]
		}
		if truncate {
			p.mu.Lock()
			p.stats.Truncated++
			p.mu.Unlock()
			return false
		}
		if f.kind == faultSlow && f.dir&dir != 0 {
			// The pause follows every chunk, the last one of this read too, so that the
			// next read does not go out at once.
			pause := time.Duration(float64(len(chunk)) / float64(f.rate) * float64(time.Second))
			timer := time.NewTimer(pause)
			select {
			case <-timer.C:
			case <-changed:
				timer.Stop()
			}
		}
	}
	return true
}

func (p *FaultProxy) countLocked(dir Direction, n int) {
	if dir == ToServer {
		p.stats.BytesToServer += int64(n)
	} else {
		p.stats.BytesToClient += int64(n)
	}
}

// close stops accepting, resets every connection and waits for the forwarders.
func (p *FaultProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.setFaultLocked(fault{kind: faultPass}) // wake stalled forwarders
	for c := range p.conns {
		c.reset()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}
