package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBatch is the most requests one $batch carries (reference 3.15).
const maxBatch = 20

// batchMember is one request of a JSON batch.
type batchMember struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// batchAnswer is one member's answer.
type batchAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// memberRequest is what each message of an acknowledgement asks for.
type memberRequest struct {
	method string
	path   string // below the mailbox, escaped: "/messages/{id}"
	body   []byte // JSON, or nil
}

// eachBatched sends one request per message in JSON batches of up to maxBatch, chained
// with dependsOn so that Graph runs them one after the other (a batch then takes one of
// the mailbox's 4 concurrent requests, not 20). A message that is gone (404) counts as
// done; members throttled, unavailable or not run because an earlier one failed (424)
// go into the next batch after the Retry-After (also when members before them went
// through; without Retry-After the wait doubles from a second). When the Graph host does
// not take batches, the requests go one by one.
func (s *Source) eachBatched(ctx context.Context, ids []string, op string, req func(id string) memberRequest) error {
	pending := ids
	stalled := 0
	backoff := firstBackoff
	for len(pending) > 0 {
		chunk := pending[:min(maxBatch, len(pending))]
		answers, err := s.sendBatch(ctx, op, chunk, req)
		if err != nil {
			if ae, ok := asAPIError(err); ok && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed ||
				ae.Status == http.StatusNotImplemented || ae.Status == http.StatusBadRequest) {
				s.log.Info("graph: the Graph host does not take JSON batches; sending one request per message", slog.Any("error", err))
				return s.each(ctx, pending, op, func(id string) request {
					m := req(id)
					return request{method: m.method, url: s.c.userURL(m.path), body: m.body, contentType: "application/json", idempotent: true}
				})
			}
			return s.c.classify(op, err)
		}
		var again []string
		var wait time.Duration
		var last *apiError
		for i, id := range chunk {
			a, ok := answers[strconv.Itoa(i)]
			switch {
			case !ok:
				again = append(again, id)
			case a.Status < 300:
			case a.Status == http.StatusNotFound && strings.EqualFold(memberError(a).Code, "ErrorItemNotFound"):
				s.log.Info("graph: message gone already", slog.String("op", op), slog.String("source_id", SourceID(id)))
			case a.Status == http.StatusFailedDependency || retryable(a.Status, true):
				again = append(again, id)
				if a.Status != http.StatusFailedDependency {
					last = memberError(a)
					wait = max(wait, last.retryAfter)
				}
			default:
				return s.c.classify(op, memberError(a))
			}
		}
		done := len(chunk) - len(again)
		pending = append(again, pending[len(chunk):]...)
		if done > 0 {
			stalled, backoff = 0, firstBackoff
			if last == nil {
				continue // only members not run after a message that was gone: no wait
			}
		} else {
			stalled++
			if last == nil {
				last = &apiError{Status: http.StatusServiceUnavailable, Message: "no member of the batch was run"}
			}
		}
		// A member was throttled (or Graph was busy): the rest wait as it asked, even when
		// the members before it went through.
		if concurrencyRefusal(last) {
			s.c.lim.tooMany()
		}
		if wait == 0 {
			wait, backoff = backoff, backoff*2
		}
		if stalled >= maxAttempts || wait > maxRetryWait {
			return throttledError(op, last, max(stalled, 1), wait)
		}
		s.log.Info("graph: batch members throttled; waiting before trying again", slog.String("op", op),
			slog.Int("status", last.Status), slog.String("code", last.Code), slog.String("message", last.Message),
			slog.Duration("wait", wait), slog.Int("pending", len(pending)))
		s.c.lim.pause(wait)
	}
	return nil
}

// sendBatch POSTs one batch and returns the answers by member id.
func (s *Source) sendBatch(ctx context.Context, op string, ids []string, req func(id string) memberRequest) (map[string]batchAnswer, error) {
	members := make([]batchMember, len(ids))
	prefix := "/users/" + url.PathEscape(s.c.mailbox)
	for i, id := range ids {
		r := req(id)
		m := batchMember{ID: strconv.Itoa(i), Method: r.method, URL: prefix + r.path,
			Headers: map[string]string{"Prefer": preferImmutableID}}
		if r.body != nil {
			m.Body = r.body
			m.Headers["Content-Type"] = "application/json"
		}
		if i > 0 {
			m.DependsOn = []string{strconv.Itoa(i - 1)}
		}
		members[i] = m
	}
	body, err := json.Marshal(map[string]any{"requests": members})
	if err != nil {
		return nil, fmt.Errorf("%s: encode batch: %w", op, err)
	}
	var out struct {
		Responses []batchAnswer `json:"responses"`
	}
	err = s.c.do(ctx, op, request{method: http.MethodPost, url: s.c.base + "/$batch", body: body,
		contentType: "application/json", idempotent: true}, decodeInto(&out))
	if err != nil {
		return nil, err
	}
	answers := make(map[string]batchAnswer, len(out.Responses))
	for _, a := range out.Responses {
		answers[a.ID] = a
	}
	return answers, nil
}

// memberError reads a member's error answer.
func memberError(a batchAnswer) *apiError {
	ae := &apiError{Status: a.Status}
	if e, ok := DecodeError(a.Body); ok {
		ae.Code, ae.Message, ae.RequestID = e.Code, e.Message, e.RequestID
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(a.Status)
	}
	for k, v := range a.Headers {
		if strings.EqualFold(k, "Retry-After") {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				ae.retryAfter, ae.hasRetry = time.Duration(max(n, 0))*time.Second, true
			}
		}
	}
	return ae
}
