// Package gmail reads and sends the mail of a Google Workspace mailbox through the Gmail
// API v1: a connector.Source (Source) and a connector.Sink (Sink). It is our own small REST
// code on net/http and encoding/json; no Google SDK.
//
// Every request carries the bearer token of Config.Token (a service account's token for the
// mailbox, or a person's "Sign in with Google", scope https://mail.google.com/) and names
// the mailbox as users/me. A token refused with 401 is renewed once (Token(ctx, true)) and
// the request sent again. 429 and 5xx answers are retried after their Retry-After (else
// with a growing pause) up to maxAttempts times, then reported as KindServer; a send is
// not repeated after a 5xx (it may have gone out): the outbox decides.
//
// How a mailbox is read (Source):
//
//   - The cursor is a historyId. Without one, users.getProfile gives the current historyId
//     (taken first), then users.messages.list lists the label Config.Label (default INBOX;
//     with mark_read, only the UNREAD ones: read mail was handled before postroom).
//     With one, users.history.list from it (historyTypes=messageAdded, labelId = the
//     label) lists what arrived since; every page is followed, and the last page's
//     historyId is the new cursor.
//   - A round's messages come out of Next in batches; the round's new cursor rides only on
//     the last message of the round, which the ingest pipeline stores in the same
//     transaction as that message. A crash before that restarts the round from the old
//     cursor and dedup (Incoming.SourceID "gmail:" + the message id, and Config.Skip)
//     keeps anything from being stored twice. A round without messages saves its cursor
//     with Config.SaveCursor.
//   - A historyId Gmail no longer keeps (404 on history.list; Gmail keeps about a week)
//     starts a full resync as without a cursor; Config.Skip and dedup keep what is stored.
//   - Raw is users.messages.get format=raw, decoded from base64url. A message over
//     Config.MaxSizeBytes keeps only its header and is OverSize; SetAside leaves it where
//     it is (the history does not bring it back).
//   - Wait (connector.Waiter) asks users.getProfile every Config.WatchInterval (default
//     a quarter of a second) and returns once the historyId moved: Gmail's push notifications go
//     through Google Cloud Pub/Sub, which postroom does not use.
//   - Ack, after the store committed: mark_read removes the label UNREAD, move adds the
//     label Config.MoveLabel and removes the read label and UNREAD, keep does nothing.
//     A message that is gone (404) counts as done.
//
// Sending (Sink): users.messages.send with the message as base64url raw; Gmail sends to
// the To, Cc and Bcc of the message itself (envelope recipients are not a separate
// parameter) and keeps a copy labelled SENT.
//
// Errors an administrator can act on are *connector.Error with advice: a refused token,
// 403 (delegation or scope), 400 failedPrecondition "Mail service not enabled" (a
// suspended user or Gmail turned off for the user), network failures.
package gmail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/connector"
)

// DefaultBaseURL is the Gmail API's host.
const DefaultBaseURL = "https://gmail.googleapis.com"

// opSend names messages.send, the one request not repeated after a 5xx.
const opSend = "gmail send"

const (
	maxAttempts  = 5
	maxRetryWait = 30 * time.Second
)

// Config configures a Source or Sink.
type Config struct {
	// BaseURL is the API's root (DefaultBaseURL, or a local stand-in).
	BaseURL string
	// Mailbox is the mailbox's address, for messages.
	Mailbox string
	// Label is the label read (default INBOX).
	Label string
	// Cursor is the saved historyId ("" the first time).
	Cursor      string
	AfterAction string // mark_read (default), move or keep
	// MoveLabel is the label id processed messages get with AfterAction move.
	MoveLabel    string
	MaxSizeBytes int64
	PageSize     int
	Token        connector.TokenFunc
	HTTPClient   *http.Client
	Logger       *slog.Logger
	// Skip reports whether a message is stored already (not downloaded again).
	Skip func(sourceID string) bool
	// SaveCursor saves the cursor of a round that had no message to carry it.
	SaveCursor func(ctx context.Context, cursor string) error
	// WatchInterval is how often Wait asks whether the mailbox changed (default
	// DefaultWatchInterval).
	WatchInterval time.Duration
}

// DefaultWatchInterval is how often a waiting Source asks users.getProfile whether the
// mailbox changed: four requests (four quota units of the 250 a user may spend) a second,
// so new mail is seen within about a quarter of a second, well inside the one-second goal
// for arrival even on a busy host.
const DefaultWatchInterval = 250 * time.Millisecond

type client struct {
	cfg Config
	log *slog.Logger
}

func newClient(cfg Config) (*client, error) {
	if cfg.Token == nil {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "gmail", Err: errors.New("no OAuth token source"),
			Advice: "a Gmail API mailbox signs in with OAuth 2.0 (provider google)"}
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Label == "" {
		cfg.Label = "INBOX"
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = DefaultWatchInterval
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &client{cfg: cfg, log: cfg.Logger}, nil
}

// APIError is an error answer of the Gmail API.
type APIError struct {
	Status  int
	Message string
	Reason  string // errors[0].reason, e.g. rateLimitExceeded
	State   string // status, e.g. NOT_FOUND
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gmail answered %d %s: %s", e.Status, e.Reason, e.Message)
}

// do sends one request and decodes a JSON answer into out (nil: discard).
func (c *client) do(ctx context.Context, op, method, path string, q url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		payload = b
	}
	u := c.cfg.BaseURL + "/gmail/v1/users/me" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		tok, err := c.cfg.Token(ctx, false)
		if refreshed {
			tok, err = c.cfg.Token(ctx, true)
		}
		if err != nil {
			return connector.TokenError("gmail oauth token", err)
		}
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err,
				Advice: "the connection to the Gmail API failed; postroom tries again"}
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return &connector.Error{Kind: connector.KindNetwork, Op: op, Err: err, Advice: "the Gmail API's answer broke off; postroom tries again"}
		}
		if resp.StatusCode/100 == 2 {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return &connector.Error{Kind: connector.KindServer, Op: op, Err: err, Advice: "the Gmail API answered something postroom cannot read"}
			}
			return nil
		}
		ae := parseError(resp.StatusCode, data)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			refreshed = true
			continue
		case (resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode >= 500 && op != opSend) ||
			(resp.StatusCode == http.StatusForbidden && (ae.Reason == "rateLimitExceeded" || ae.Reason == "userRateLimitExceeded"))) && attempt < maxAttempts:
			wait := retryAfter(resp.Header.Get("Retry-After"), attempt)
			c.log.Warn("gmail: throttled or busy; waiting", slog.String("op", op), slog.Int("status", resp.StatusCode), slog.Duration("wait", wait))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		return c.classify(op, ae)
	}
}

func retryAfter(h string, attempt int) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, maxRetryWait)
	}
	return min(time.Duration(1<<attempt)*250*time.Millisecond, maxRetryWait)
}

func parseError(status int, data []byte) *APIError {
	var b struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	ae := &APIError{Status: status}
	if json.Unmarshal(data, &b) == nil {
		ae.Message, ae.State = b.Error.Message, b.Error.Status
		if len(b.Error.Errors) > 0 {
			ae.Reason = b.Error.Errors[0].Reason
		}
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(status)
	}
	return ae
}

// classify names the fix of a Gmail API error.
func (c *client) classify(op string, ae *APIError) error {
	e := &connector.Error{Op: op, Err: ae}
	switch {
	case ae.Status == http.StatusUnauthorized:
		e.Kind = connector.KindAuth
		e.Advice = "the Gmail API refused the access token even after postroom fetched a new one: check the service account's key and domain-wide delegation (scope https://mail.google.com/), or sign in with Google again"
	case ae.Status == http.StatusBadRequest && strings.Contains(ae.Message, "Mail service not enabled"):
		e.Kind = connector.KindAuth
		e.Advice = fmt.Sprintf("Gmail is not available to %s: the user is suspended or Gmail is turned off for them; in the Google Admin console > Directory > Users, restore the user, or turn Gmail on for their organisational unit (Apps > Google Workspace > Gmail)", c.cfg.Mailbox)
	case ae.Status == http.StatusForbidden:
		e.Kind = connector.KindAuth
		e.Advice = "Google refused access to the mailbox: the token does not carry the scope https://mail.google.com/ or the Gmail API is not enabled in the service account's Google Cloud project (APIs & Services > Library > Gmail API)"
	case ae.Status == http.StatusTooManyRequests || ae.Status >= 500:
		e.Kind = connector.KindServer
		e.Advice = "the Gmail API is busy or throttling this mailbox; postroom tries again later"
	default:
		e.Kind = connector.KindConfig
		e.Advice = "the Gmail API refused the request: check the mailbox's settings"
	}
	return e
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
