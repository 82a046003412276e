package mstest

import (
	"strings"
	"time"
)

// Fault is a misbehaviour of the Graph host for the next Count requests (FailNext).
type Fault struct {
	// Count is how many requests it hits (default 1).
	Count int
	// Status is the answer: 429 (TooManyRequests), 503 (ServiceNotAvailable) or 504
	// (GatewayTimeout); any other status answers with code UnknownError.
	Status int
	// Code, with Status, is the error code of the answer instead (e.g. 404
	// ErrorItemNotFound: a sent draft whose copy is not in Sent Items yet).
	Code string
	// RetryAfter is sent as Retry-After in whole seconds (rounded up); 0 sends none.
	RetryAfter time.Duration
	// Drop closes the connection without an answer instead (Status is ignored).
	Drop bool
	// DropAfterServing serves the request (a send is sent, a draft made) and then closes
	// the connection without the answer, as when the answer is lost on the way back: the
	// client cannot tell whether its request took effect (Status and Drop are ignored;
	// mailbox requests only, not upload-session PUTs). With Delay the answer is held that
	// long after the request took effect (or until the client goes away) before the
	// connection is closed: a client can die between the effect and the answer.
	DropAfterServing bool
	// Delay makes the request wait this long before it is answered (or dropped); with
	// Status 0 and Drop false the request is then served normally (a slow response). A
	// request whose client goes away during the delay is not served.
	Delay time.Duration
	// PathContains limits the fault to requests whose path contains it ("" = all; e.g.
	// "/delta", "/$value", "/sendMail").
	PathContains string
	// Mailbox limits the fault to requests for this mailbox ("" = all).
	Mailbox string
}

// faultState is the queue of pending faults and the fixed latency.
type faultState struct {
	pending []*Fault
	latency time.Duration
	// tokenFaults: the token endpoint answers the next n requests with 503
	// temporarily_unavailable.
	tokenFaults int
}

// FailNext queues f: the next f.Count matching Graph requests misbehave. Faults queued
// earlier are used up first.
func (s *Server) FailNext(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.graph.faults.pending = append(s.state.graph.faults.pending, &f)
}

// ClearFaults drops every queued fault and the latency.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.graph.faults = faultState{}
}

// SetLatency makes every Graph request wait d before it is served (0 = none).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.graph.faults.latency = d
}

// FailTokenRequests makes the token endpoint answer the next n requests with 503
// temporarily_unavailable (AADSTS90033-style service trouble).
func (s *Server) FailTokenRequests(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.graph.faults.tokenFaults = n
}

// takeFaultLocked returns the fault for a request on path for mailbox, if one is queued.
func (s *Server) takeFaultLocked(path, mailbox string) *Fault {
	fs := &s.state.graph.faults
	for i, f := range fs.pending {
		if f.PathContains != "" && !strings.Contains(path, f.PathContains) {
			continue
		}
		if f.Mailbox != "" && !strings.EqualFold(f.Mailbox, mailbox) {
			continue
		}
		hit := *f
		f.Count--
		if f.Count <= 0 {
			fs.pending = append(fs.pending[:i], fs.pending[i+1:]...)
		}
		return &hit
	}
	return nil
}

// ExpireDeltaTokens forgets every delta and skip token handed out so far: following one
// answers 410 SyncStateNotFound (or Options.DeltaExpiredStatus and DeltaExpiredCode), and
// the client must sync again from scratch. Options.DeltaTokenLifetime makes tokens expire
// by themselves.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state.graph.delta)
}

// Requests returns how many Graph HTTP requests the app with clientID made (a $batch is
// one request; upload-session PUTs count too). Token requests are not counted; see
// TokenRequests.
func (s *Server) Requests(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.graph.requests[strings.ToLower(clientID)]
}

// TokenRequests returns how many requests the token endpoint got for clientID, errors
// included.
func (s *Server) TokenRequests(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.graph.tokenRequests[strings.ToLower(clientID)]
}

// ResetRequests sets every request counter back to zero.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state.graph.requests)
	clear(s.state.graph.tokenRequests)
}

// MaxInFlight returns the most Graph requests the app with clientID ever had in flight
// at once for mailbox, counting a request that arrived while the others were in flight
// even when it was refused: a value over Options.MaxConcurrent means the client went over
// the concurrency limit.
func (s *Server) MaxInFlight(clientID, mailbox string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.state.graph.throttle[throttleKey{strings.ToLower(clientID), strings.ToLower(mailbox)}]
	if t == nil {
		return 0
	}
	return t.maxInFlight
}
