package graph

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
)

// DefaultGraphURL is the Graph host of Microsoft's global cloud.
const DefaultGraphURL = "https://graph.microsoft.com"

// Limits of the request loop.
const (
	// MaxConcurrent is how many requests of one mailbox may be in flight at once: Outlook's
	// per app and mailbox limit (reference 3.14).
	MaxConcurrent = 4
	// maxAttempts is how often one request is sent when Graph answers 429, 503 or 504.
	maxAttempts = 5
	// maxRetryWait caps one wait for a Retry-After: a longer one is not waited out inside a
	// request but reported (KindServer), and the caller's backoff takes over.
	maxRetryWait = 2 * time.Minute
	// firstBackoff is the first wait after a 429/503/504 without Retry-After; it doubles.
	firstBackoff = time.Second
	// requestTimeout bounds one JSON request; transferTimeout one $value download or one
	// upload chunk.
	requestTimeout  = 2 * time.Minute
	transferTimeout = 15 * time.Minute
	// errorBodyLimit bounds how much of an error answer is read.
	errorBodyLimit = 64 << 10
)

// preferImmutableID makes Graph use ids that survive moves (reference 3.5). It goes on
// every request.
const preferImmutableID = `IdType="ImmutableId"`

// Limiter keeps the requests of one mailbox within Graph's limits: at most a number in
// flight, and nobody sending while one of them waits out a Retry-After. The number starts
// at Outlook's documented 4 but Microsoft refuses at times below it (MailboxConcurrency
// 429s, §8.9): each such refusal lowers it by one, down to 1, and every minute without one
// it rises by one again, up to the start. Share one Limiter between the Source, Sink and
// Subscriber of the same mailbox. The zero value is not usable; call NewLimiter.
type Limiter struct {
	mu        sync.Mutex
	max       int           // the most in flight
	limit     int           // in flight allowed now: 1..max
	inFlight  int           // requests holding a slot
	lowered   time.Time     // when limit was last lowered or raised back
	notBefore time.Time     // no request starts before (a Retry-After)
	changed   chan struct{} // closed (and replaced) when a slot frees or limit rises
}

// concurrencyProbe is how long the Limiter keeps a lowered limit before it tries one more.
const concurrencyProbe = time.Minute

// NewLimiter returns a Limiter for n requests in flight; n <= 0 means MaxConcurrent.
func NewLimiter(n int) *Limiter {
	if n <= 0 {
		n = MaxConcurrent
	}
	return &Limiter{max: n, limit: n, changed: make(chan struct{})}
}

// acquire waits for a free slot and for any pause to end.
func (l *Limiter) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		if l.limit < l.max && now.Sub(l.lowered) >= concurrencyProbe {
			l.limit++
			l.lowered = now
			l.wakeLocked()
		}
		wait := l.notBefore.Sub(now)
		if wait <= 0 && l.inFlight < l.limit {
			l.inFlight++
			l.mu.Unlock()
			return nil
		}
		changed := l.changed
		l.mu.Unlock()
		if wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	l.wakeLocked()
}

// wakeLocked lets the waiting acquires look again.
func (l *Limiter) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// pause stops new requests for d.
func (l *Limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := time.Now().Add(d); t.After(l.notBefore) {
		l.notBefore = t
	}
}

// tooMany lowers the number of requests in flight by one (not below 1) after Graph
// refused one as over the mailbox's concurrency limit.
func (l *Limiter) tooMany() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit > 1 {
		l.limit--
	}
	l.lowered = time.Now()
}

// sleep waits d (nothing when d <= 0) or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// client sends the REST requests of one mailbox.
type client struct {
	base    string   // GraphURL + "/v1.0"
	origin  *url.URL // scheme and host of GraphURL: the only place a token is sent
	mailbox string
	token   connector.TokenFunc
	http    *http.Client
	lim     *Limiter
	log     *slog.Logger

	// signedIn is the account of the last access token sent, for advice: "" for an
	// app-only token (or one that cannot be read).
	mu        sync.Mutex
	lastToken string
	signedIn  string
}

func newClient(cfg Config) (*client, error) {
	raw := cfg.GraphURL
	if raw == "" {
		raw = DefaultGraphURL
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph config", Err: fmt.Errorf("graph URL %q is not an http(s) URL", raw),
			Advice: "set the Graph URL to the Graph host of the mailbox's cloud, e.g. https://graph.microsoft.com"}
	}
	u.Path = strings.TrimSuffix(u.Path, "/v1.0")
	if cfg.Mailbox == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph config", Err: errors.New("no mailbox"),
			Advice: "set the mailbox's address (or its user id) in Microsoft 365"}
	}
	if cfg.Token == nil {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph config", Err: errors.New("no OAuth token source"),
			Advice: "set up the mailbox's Microsoft 365 sign-in (app or delegated) first"}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = NewLimiter(MaxConcurrent)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &client{
		base:    u.String() + "/v1.0",
		origin:  &url.URL{Scheme: u.Scheme, Host: u.Host},
		mailbox: cfg.Mailbox,
		token:   cfg.Token,
		http:    hc,
		lim:     lim,
		log:     log.With(slog.String("mailbox", cfg.Mailbox)),
	}, nil
}

// userURL is the URL of a path under the mailbox: "/messages/x" gives
// <base>/users/<mailbox>/messages/x. Each segment of path must be escaped already.
func (c *client) userURL(path string) string {
	return c.base + "/users/" + url.PathEscape(c.mailbox) + path
}

// onOrigin reports whether link points at the Graph host (so the token may go there).
func (c *client) onOrigin(link string) bool {
	u, err := url.Parse(link)
	return err == nil && strings.EqualFold(u.Scheme, c.origin.Scheme) && strings.EqualFold(u.Host, c.origin.Host)
}

// request is one REST call.
type request struct {
	method      string
	url         string // absolute
	body        []byte
	contentType string
	prefer      []string          // Prefer values besides IdType="ImmutableId"
	header      map[string]string // more headers
	// noAuth sends no Authorization header (pre-authenticated upload URLs) and lets the
	// URL be on another host.
	noAuth bool
	// idempotent requests are also resent after 502/504, whose effect is unknown.
	idempotent bool
	timeout    time.Duration // 0: requestTimeout
}

// apiError is an error answer of Graph (reference 3.12).
type apiError struct {
	Status     int
	Code       string
	Message    string
	RequestID  string
	retryAfter time.Duration
	hasRetry   bool
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// asAPIError returns err's *apiError, if it carries one.
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	ok := errors.As(err, &ae)
	return ae, ok
}

// hasStatus reports whether err is a Graph answer with that HTTP status (and, when codes
// are given, one of those error codes, compared case-insensitively).
func hasStatus(err error, status int, codes ...string) bool {
	ae, ok := asAPIError(err)
	if !ok || ae.Status != status {
		return false
	}
	if len(codes) == 0 {
		return true
	}
	for _, c := range codes {
		if strings.EqualFold(ae.Code, c) {
			return true
		}
	}
	return false
}

// ErrorBody is Graph's error envelope (ms365-protocol.md §3.12):
// {"error":{"code","message","innerError":{"request-id",...}}}.
type ErrorBody struct {
	Code, Message, RequestID string
}

// DecodeError reads Graph's error envelope from an answer's body; ok is false when the
// body is not one.
func DecodeError(body []byte) (e ErrorBody, ok bool) {
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error.Code == "" && env.Error.Message == "" {
		return ErrorBody{}, false
	}
	return ErrorBody{Code: env.Error.Code, Message: env.Error.Message, RequestID: env.Error.InnerError.RequestID}, true
}

// readAPIError reads an error answer.
func readAPIError(resp *http.Response) *apiError {
	ae := &apiError{Status: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	if e, ok := DecodeError(body); ok {
		ae.Code, ae.Message = e.Code, e.Message
		if ae.RequestID == "" {
			ae.RequestID = e.RequestID
		}
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 300 {
		ae.Message = s
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			ae.retryAfter, ae.hasRetry = time.Duration(max(n, 0))*time.Second, true
		} else if t, err := http.ParseTime(v); err == nil {
			ae.retryAfter, ae.hasRetry = max(time.Until(t), 0), true
		}
	}
	return ae
}

// concurrencyRefusal reports whether a 429 is Outlook's "Application is over its
// MailboxConcurrency limit." (code ApplicationThrottled; reference 3.13).
func concurrencyRefusal(ae *apiError) bool {
	return ae.Status == http.StatusTooManyRequests && strings.Contains(strings.ToLower(ae.Message), "concurrency")
}

// retryable reports whether a Graph answer with this status is sent again after a wait:
// throttling (429) and "unavailable" (503) mean the request was not carried out; a gateway
// timeout (502, 504) leaves it unknown, so only idempotent requests are resent.
func retryable(status int, idempotent bool) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return idempotent
	}
	return false
}

// do sends r, with the Limiter's slot held until handle has read the answer. handle gets
// only 2xx answers (nil handle: the body is discarded). Token refusal is retried once with
// a new token, throttling as described in the package doc. Graph's error answers come
// back as *apiError; the other errors are *connector.Error or the context's error.
func (c *client) do(ctx context.Context, op string, r request, handle func(*http.Response) error) error {
	if !r.noAuth && !c.onOrigin(r.url) {
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: fmt.Errorf("a link to another host (%s)", hostOf(r.url)),
			Advice: "postroom does not send the mailbox's token to another host; check the Graph URL setting"}
	}
	refreshed := false
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		var token string
		if !r.noAuth {
			var err error
			token, err = c.token(ctx, refreshed)
			if err != nil {
				return connector.TokenError("graph oauth token", err)
			}
			c.noteToken(token)
		}
		if err := c.lim.acquire(ctx); err != nil {
			return err
		}
		ae, err := c.once(ctx, op, r, token, handle)
		c.lim.release()
		if err != nil {
			return err
		}
		if ae == nil {
			return nil
		}
		// A refused token is renewed once per request, then the refusal is reported: an
		// expired or revoked token is cured by the renewal; an app-only token without roles
		// (NoPermissionsInAccessToken, admin consent missing) is not, but the one renewal
		// picks up a consent granted since the token was issued, and the caller's backoff
		// bounds how often it is tried.
		switch {
		case ae.Status == http.StatusUnauthorized && !r.noAuth && !refreshed:
			refreshed = true
			c.log.Info("graph: the access token was refused; fetching a new one and trying again",
				slog.String("op", op), slog.String("code", ae.Code), slog.String("request_id", ae.RequestID))
			attempt--
			continue
		case retryable(ae.Status, r.idempotent || r.method == http.MethodGet):
			wait := ae.retryAfter
			if !ae.hasRetry {
				wait = backoff
				backoff *= 2
			}
			if concurrencyRefusal(ae) {
				c.lim.tooMany()
			}
			if attempt >= maxAttempts || wait > maxRetryWait {
				return throttledError(op, ae, attempt, wait)
			}
			c.log.Info("graph: busy or throttled; waiting before trying again", slog.String("op", op),
				slog.Int("status", ae.Status), slog.String("code", ae.Code), slog.String("message", ae.Message),
				slog.Duration("wait", wait), slog.Int("attempt", attempt), slog.String("request_id", ae.RequestID))
			c.lim.pause(wait)
			continue
		}
		return ae
	}
}

// noteToken remembers who token signs in as, for advice (see tokenAccount).
func (c *client) noteToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if token == c.lastToken {
		return
	}
	c.lastToken, c.signedIn = token, tokenAccount(token)
}

// account is the person the mailbox's requests sign in as; "" for an app.
func (c *client) account() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signedIn
}

// tokenAccount is the account of a delegated access token (its upn or
// preferred_username, or a placeholder when it names none), "" for an app-only token or
// one that is not a readable JWT. The token is only read for advice, never trusted: Graph
// checks it.
func tokenAccount(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var c struct {
		Scope    string `json:"scp"`
		IDType   string `json:"idtyp"`
		UPN      string `json:"upn"`
		Username string `json:"preferred_username"`
	}
	if json.Unmarshal(payload, &c) != nil || (c.Scope == "" && c.IDType != "user") {
		return ""
	}
	if c.UPN != "" {
		return c.UPN
	}
	if c.Username != "" {
		return c.Username
	}
	return "<user who signs in>"
}

// once sends r one time. It returns Graph's error answer as ae, and transport failures as
// err.
func (c *client) once(ctx context.Context, op string, r request, token string, handle func(*http.Response) error) (ae *apiError, err error) {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = requestTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(rctx, r.method, r.url, body)
	if err != nil {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: op, Err: err, Advice: "the Graph URL or mailbox name makes an invalid URL: check both"}
	}
	if !r.noAuth {
		req.Header.Set("Authorization", "Bearer "+token)
		// One Prefer field with the preferences separated by commas (RFC 7240 §2).
		req.Header.Set("Prefer", strings.Join(append([]string{preferImmutableID}, r.prefer...), ", "))
		req.Header.Set("client-request-id", newGUID())
		req.Header.Set("Accept", "application/json")
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readAPIError(resp), nil
	}
	if handle != nil {
		if err := handle(resp); err != nil {
			var ce *connector.Error
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, c.transportError(ctx, op, err)
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit))
	return nil, nil
}

// transportError classifies a failure to talk to the Graph host.
func (c *client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: err,
			Advice: "Microsoft Graph sent an answer postroom cannot read; it tries again: if it persists, check the Graph URL setting"}
	}
	addr := c.origin.Host
	if !strings.Contains(addr, ":") {
		if c.origin.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return connector.ClassifyDial(op, addr, err)
}

// getJSON GETs url and decodes the answer into v.
func (c *client) getJSON(ctx context.Context, op, u string, v any, prefer ...string) error {
	return c.do(ctx, op, request{method: http.MethodGet, url: u, prefer: prefer}, decodeInto(v))
}

// sendJSON sends body as JSON and decodes the answer into v (nil: ignored).
func (c *client) sendJSON(ctx context.Context, op, method, u string, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	var handle func(*http.Response) error
	if v != nil {
		handle = decodeInto(v)
	}
	return c.do(ctx, op, request{method: method, url: u, body: b, contentType: "application/json"}, handle)
}

func decodeInto(v any) func(*http.Response) error {
	return func(resp *http.Response) error {
		return json.NewDecoder(resp.Body).Decode(v)
	}
}

// throttledError reports throttling or unavailability that outlasted the retries.
func throttledError(op string, ae *apiError, attempts int, wait time.Duration) error {
	what := "Microsoft Graph keeps throttling this mailbox (too many requests from this app to it; Outlook allows 4 at once and 10,000 per 10 minutes per app and mailbox)"
	if ae.Status != http.StatusTooManyRequests {
		what = fmt.Sprintf("Microsoft Graph is unavailable (HTTP %d)", ae.Status)
	}
	var advice string
	if wait > maxRetryWait {
		advice = fmt.Sprintf("%s and asks to wait %s: postroom waits and tries again by itself", what, wait.Round(time.Second))
	} else {
		advice = fmt.Sprintf("%s after %d tries: postroom waits and tries again by itself; if it goes on, look for other applications that use this mailbox heavily, or Microsoft 365 service health", what, attempts)
	}
	return &connector.Error{Kind: connector.KindServer, Op: op, Err: ae, Advice: advice}
}

// hostOf returns the host of a URL for messages (never its query, which may hold a token).
func hostOf(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return "(unreadable URL)"
	}
	return u.Host
}

// newGUID returns a random RFC 4122 version 4 GUID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
