package mstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// post POSTs body as JSON to url and returns the status.
func (s *Server) post(ctx context.Context, url string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("notification body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("notification to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opts.NotificationClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("notification to %s: %w", url, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// send POSTs notifications in the background.
func (s *Server) send(notes []notification) {
	for _, n := range notes {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			ctx, cancel := context.WithTimeout(s.bgCtx, 10*time.Second)
			defer cancel()
			status, err := s.post(ctx, n.url, n.body)
			if err != nil || status/100 != 2 {
				s.log.Info("mstest: change notification not accepted", "url", n.url, "status", status, "err", err)
			}
		}()
	}
}

// formatTimeOffset formats t the way notifications carry subscriptionExpirationDateTime.
func formatTimeOffset(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000+00:00") }

// mimeWord encodes a display name for a header when it is not ASCII.
func mimeWord(s string) string { return mime.QEncoding.Encode("utf-8", s) }

// hostOf is the domain of an address.
func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
