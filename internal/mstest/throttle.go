package mstest

import (
	"net/http"
	"strings"
	"time"
)

// msgUploadLimit is the answer to a mailbox over its upload budget. Microsoft documents the
// limit (150 MB per 5 minutes per mailbox, reference §3.14) and a 429 with Retry-After, not
// the text (unverified).
const msgUploadLimit = "Application is over its upload limit for this mailbox."

// uploadWindow is what one mailbox uploaded in the current window.
type uploadWindow struct {
	start time.Time
	bytes int64
}

// uploadBytes is what a request uploads: the body of a PATCH, POST or PUT.
func uploadBytes(gr *graphReq) int {
	switch gr.method {
	case http.MethodPatch, http.MethodPost, http.MethodPut:
		return len(gr.body)
	}
	return 0
}

// acquire takes a concurrency slot, a request of the window for app+mailbox and upload
// bytes of the mailbox's budget, or answers 429.
func (s *Server) acquire(clientID, mailbox string, upload int) (release func(), throttled *graphResp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := throttleKey{clientID, mailbox}
	t := s.state.graph.throttle[key]
	if t == nil {
		t = &throttleState{}
		s.state.graph.throttle[key] = t
	}
	t.maxInFlight = max(t.maxInFlight, t.inFlight+1)
	if t.inFlight >= s.opts.MaxConcurrent {
		resp := gerr(http.StatusTooManyRequests, "ApplicationThrottled", msgConcurrency)
		resp.header = http.Header{"Retry-After": {"1"}}
		return nil, resp
	}
	now := s.nowLocked()
	if now.Sub(t.windowStart) >= s.opts.RateWindow {
		t.windowStart, t.count = now, 0
	}
	if t.count >= s.opts.RateLimit {
		resp := gerr(http.StatusTooManyRequests, "TooManyRequests", msgTooManyRequests)
		resp.header = http.Header{"Retry-After": {retryAfter(t.windowStart.Add(s.opts.RateWindow).Sub(now))}}
		return nil, resp
	}
	if resp := s.chargeUploadLocked(mailbox, upload); resp != nil {
		return nil, resp
	}
	t.count++
	t.inFlight++
	return func() {
		s.mu.Lock()
		t.inFlight--
		s.mu.Unlock()
	}, nil
}

// chargeUploadLocked counts n uploaded bytes against mailbox's budget of UploadLimit per
// UploadWindow, or answers 429 with Retry-After = seconds until the window ends. A request
// larger than the whole budget passes when nothing else was uploaded in the window (the
// 4 MB request limit keeps Microsoft's real budget from meeting that case).
func (s *Server) chargeUploadLocked(mailbox string, n int) *graphResp {
	if n <= 0 {
		return nil
	}
	now := s.nowLocked()
	w := s.state.graph.uploaded[mailbox]
	if w == nil || now.Sub(w.start) >= s.opts.UploadWindow {
		w = &uploadWindow{start: now}
		s.state.graph.uploaded[mailbox] = w
	}
	if w.bytes > 0 && w.bytes+int64(n) > s.opts.UploadLimit {
		resp := gerr(http.StatusTooManyRequests, "ApplicationThrottled", msgUploadLimit)
		resp.header = http.Header{"Retry-After": {retryAfter(w.start.Add(s.opts.UploadWindow).Sub(now))}}
		return resp
	}
	w.bytes += int64(n)
	return nil
}

// Uploaded returns how many bytes the mailbox uploaded (PATCH, POST, PUT bodies that were
// taken) in the current upload window.
func (s *Server) Uploaded(mailbox string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.state.graph.uploaded[strings.ToLower(mailbox)]
	if w == nil || s.nowLocked().Sub(w.start) >= s.opts.UploadWindow {
		return 0
	}
	return w.bytes
}
