package graph

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postroom/postroom/internal/connector"
)

// Subscription lifetimes (reference 4.1, §8.8).
const (
	// maxSubscriptionLifetime is the stricter of Graph's two published caps for Outlook
	// messages (4,230 minutes; newer notes say 10,080), less 30 minutes for clock skew
	// between postroom and Microsoft: 4,200 minutes, 70 hours.
	maxSubscriptionLifetime = 4230*time.Minute - 30*time.Minute
	// DefaultSubscriptionLifetime is how long a subscription is asked to live.
	DefaultSubscriptionLifetime = maxSubscriptionLifetime
	// skewMargin is taken off a cap Graph states in a refusal before asking again.
	skewMargin = 30 * time.Minute
	// minRetry and maxRetry bound the wait after a failed create or renew.
	minRetry = 30 * time.Second
	maxRetry = 15 * time.Minute
	// notificationBodyLimit bounds a notification POST's body (413 above): Graph's batches
	// are a few entries of under 1 KB each (reference 4.3; postroom asks for no resource
	// data), so 256 KB leaves ample room and stops a flood of forged entries early.
	notificationBodyLimit = 256 << 10
	// notificationEntryLimit bounds the entries of one POST (400 above).
	notificationEntryLimit = 1000
	// validationTokenLimit bounds the validation token echoed back.
	validationTokenLimit = 4 << 10
	// deleteTimeout bounds deleting the subscription when Run ends.
	deleteTimeout = 10 * time.Second
)

// Lifecycle events (reference 4.4).
const (
	lifecycleReauthorize = "reauthorizationRequired"
	lifecycleRemoved     = "subscriptionRemoved"
	lifecycleMissed      = "missed"
)

// ErrNotificationsNeedApp is in the error of a subscription Graph refused to a person's
// sign-in on another user's or a shared mailbox: change notifications there need
// app-only access, and the mailbox is polled.
var ErrNotificationsNeedApp = errors.New("change notifications on this mailbox need app-only access")

// SubscribeOptions say where Graph sends change notifications for a folder.
type SubscribeOptions struct {
	// NotificationURL is the public HTTPS URL at which the Subscriber (an http.Handler) is
	// served; Graph POSTs notifications there.
	NotificationURL string
	// LifecycleURL receives lifecycle notifications; "" means NotificationURL (the handler
	// takes both).
	LifecycleURL string
	// Lifetime is how long a subscription is asked to live (DefaultSubscriptionLifetime,
	// 70 hours, when 0; at most that, under Graph's 4,230 minutes). It is renewed when two
	// thirds of the lifetime Graph granted have passed: after about 47 hours, 23 hours
	// before it would expire, which leaves time for a day of failed renewals.
	Lifetime time.Duration
	// Notify is called when the folder may have new mail: a notification came, Graph
	// missed some, or the subscription was made anew. Source.Notify fits. It must not
	// block.
	Notify func()
	// Now is the clock for expiry dates (time.Now when nil).
	Now func() time.Time
	// Subscribed, when set, is told of the subscription each time it is made or renewed
	// (its id, its expiry, ClientStateHash), so that other nodes can check notifications;
	// Ended is told of an id that is no longer in use (deleted, or replaced by a new one).
	// Neither may block for long.
	Subscribed func(id string, expires time.Time, clientStateHash [32]byte)
	Ended      func(id string)
}

// Subscriber keeps a change-notification subscription for the new messages of one folder
// and answers Graph's calls to the notification URL: mount it there (ServeHTTP) before
// calling Subscribe or Run, since Graph validates the URL while the subscription is made.
//
// Each Subscriber makes its own random clientState secret; a notification that does not
// carry it is refused (403) and ignored.
type Subscriber struct {
	c          *client
	folderPath string
	opts       SubscribeOptions
	state      string // clientState: random, never logged
	events     chan string

	mu       sync.Mutex
	id       string
	resource string
	expires  time.Time
	granted  time.Duration // expires less the time it was asked for: the lifetime Graph gave
	lifetime time.Duration // what is asked for: opts.Lifetime, or less when Graph stated a lower cap
}

var _ http.Handler = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber for cfg.Folder of cfg.Mailbox; it uses GraphURL,
// Mailbox, Folder, Token, HTTPClient, Limiter and Logger of cfg and makes no request.
func NewSubscriber(cfg Config, opts SubscribeOptions) (*Subscriber, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(opts.NotificationURL)
	if opts.NotificationURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &connector.Error{Kind: connector.KindConfig, Op: "graph subscribe", Err: fmt.Errorf("notification URL %q", opts.NotificationURL),
			Advice: "set postroom's public URL (https://...) so that Microsoft Graph can send change notifications; without it the mailbox is polled"}
	}
	if opts.LifecycleURL == "" {
		opts.LifecycleURL = opts.NotificationURL
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultSubscriptionLifetime
	}
	opts.Lifetime = min(opts.Lifetime, maxSubscriptionLifetime)
	if opts.Notify == nil {
		opts.Notify = func() {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Subscribed == nil {
		opts.Subscribed = func(string, time.Time, [32]byte) {}
	}
	if opts.Ended == nil {
		opts.Ended = func(string) {}
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("graph subscribe: make clientState: %w", err)
	}
	folder := cfg.Folder
	if folder == "" {
		folder = "inbox"
	}
	return &Subscriber{c: c, folderPath: folder, opts: opts, state: hex.EncodeToString(b[:]), events: make(chan string, 16),
		lifetime: opts.Lifetime}, nil
}

// subscription is Graph's subscription resource, as far as we use it.
type subscription struct {
	ID                       string `json:"id,omitempty"`
	ChangeType               string `json:"changeType,omitempty"`
	NotificationURL          string `json:"notificationUrl,omitempty"`
	LifecycleNotificationURL string `json:"lifecycleNotificationUrl,omitempty"`
	Resource                 string `json:"resource,omitempty"`
	ExpirationDateTime       string `json:"expirationDateTime,omitempty"`
	ClientState              string `json:"clientState,omitempty"`
	LatestSupportedTLS       string `json:"latestSupportedTlsVersion,omitempty"`
}

// ID is the current subscription's id ("" before Subscribe).
func (s *Subscriber) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Expires is when the current subscription ends.
func (s *Subscriber) Expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires
}

// RenewAt is when Run renews the current subscription: when two thirds of the lifetime
// Graph granted have passed (a third of it before Expires).
func (s *Subscriber) RenewAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires.Add(-s.granted / 3)
}

// setExpiresLocked records the expirationDateTime Graph answered for a request made at
// asked (the request's own when Graph's cannot be read).
func (s *Subscriber) setExpiresLocked(graphTime string, asked time.Time) {
	s.expires = parseGraphTime(graphTime, asked.Add(s.lifetime))
	s.granted = max(s.expires.Sub(asked), 0)
}

// lifetimeCapRe reads the cap Graph states when it refuses an expirationDateTime:
// 400 ExtensionError "Subscription expiration can only be 4230 minutes in the future."
var lifetimeCapRe = regexp.MustCompile(`(?i)expiration can only be (\d+) minutes in the future`)

// withLifetime runs send with the expirationDateTime to ask for, and returns when it was
// asked. When Graph refuses it naming a lower cap than asked for (its published caps
// differ, §8.8), it asks once more within that cap, which later requests keep.
func (s *Subscriber) withLifetime(send func(expires time.Time) error) (time.Time, error) {
	s.mu.Lock()
	lifetime := s.lifetime
	s.mu.Unlock()
	asked := s.opts.Now()
	err := send(asked.Add(lifetime))
	ae, ok := asAPIError(err)
	if !ok || ae.Status != http.StatusBadRequest {
		return asked, err
	}
	m := lifetimeCapRe.FindStringSubmatch(ae.Message)
	if m == nil {
		return asked, err
	}
	minutes, convErr := strconv.Atoi(m[1])
	capped := time.Duration(minutes)*time.Minute - skewMargin
	if convErr != nil || capped <= skewMargin || capped >= lifetime {
		return asked, err
	}
	s.c.log.Warn("graph: Microsoft Graph takes a shorter subscription lifetime than postroom asked for; asking for less",
		slog.Duration("asked", lifetime), slog.Int("cap_minutes", minutes))
	s.mu.Lock()
	s.lifetime = capped
	s.mu.Unlock()
	asked = s.opts.Now()
	return asked, send(asked.Add(capped))
}

// Subscribe makes a new subscription for the folder's new messages (changeType created),
// after deleting the ones an earlier run left for the same URL and folder.
func (s *Subscriber) Subscribe(ctx context.Context) error {
	const op = "graph subscribe"
	s.mu.Lock()
	resource := s.resource
	s.mu.Unlock()
	if resource == "" {
		f, err := s.c.resolveFolder(ctx, s.folderPath)
		if err != nil {
			return s.c.folderError(s.folderPath, err)
		}
		resource = "users/" + s.c.mailbox + "/mailFolders('" + f.ID + "')/messages"
	}
	s.removeStale(ctx, resource)
	var got subscription
	asked, err := s.withLifetime(func(expires time.Time) error {
		req := subscription{
			ChangeType:               "created",
			NotificationURL:          s.opts.NotificationURL,
			LifecycleNotificationURL: s.opts.LifecycleURL,
			Resource:                 resource,
			ExpirationDateTime:       formatGraphTime(expires),
			ClientState:              s.state,
			LatestSupportedTLS:       "v1_2",
		}
		return s.c.sendJSON(ctx, op, http.MethodPost, s.c.base+"/subscriptions", req, &got)
	})
	if err != nil {
		if ae, ok := asAPIError(err); ok && ae.Status == http.StatusForbidden && s.c.account() != "" {
			// Graph takes no delegated subscription on another user's or a shared mailbox
			// (reference §8.2): final, not worth a retry.
			return &connector.Error{Kind: connector.KindConfig, Op: op, Err: fmt.Errorf("%w: %w", ErrNotificationsNeedApp, err),
				Advice: fmt.Sprintf("Microsoft Graph sends change notifications for %s only to an app signed in as itself (application "+
					"permission Mail.Read), not to %s's sign-in: postroom polls the mailbox with delta queries instead; for notifications, "+
					"switch the mailbox to the app (client credentials)", s.c.mailbox, s.c.account())}
		}
		if ae, ok := asAPIError(err); ok && ae.Status == http.StatusBadRequest {
			return &connector.Error{Kind: connector.KindConfig, Op: op, Err: err,
				Advice: fmt.Sprintf("Microsoft Graph refused the subscription: it must reach %s from the internet (HTTPS, a public certificate) and get an answer within 10 seconds: check postroom's public URL and any firewall or proxy in front of it", s.opts.NotificationURL)}
		}
		return s.c.classify(op, err)
	}
	if got.ID == "" {
		return &connector.Error{Kind: connector.KindServer, Op: op, Err: errors.New("the subscription has no id"),
			Advice: "Microsoft Graph did not say which subscription it made; postroom tries again"}
	}
	s.mu.Lock()
	s.id, s.resource = got.ID, resource
	s.setExpiresLocked(got.ExpirationDateTime, asked)
	expires := s.expires
	s.mu.Unlock()
	s.opts.Subscribed(got.ID, expires, s.ClientStateHash())
	s.c.log.Info("graph: change notifications subscribed", slog.String("subscription", got.ID),
		slog.String("folder", s.folderPath), slog.Time("expires", s.Expires()))
	return nil
}

// removeStale deletes subscriptions of this app for the same notification URL and
// resource (left by an earlier run, which had another clientState). Failures only log:
// such a subscription ends by itself.
func (s *Subscriber) removeStale(ctx context.Context, resource string) {
	var list struct {
		Value []subscription `json:"value"`
	}
	if err := s.c.getJSON(ctx, "graph list subscriptions", s.c.base+"/subscriptions", &list); err != nil {
		s.c.log.Debug("graph: cannot list subscriptions", slog.Any("error", err))
		return
	}
	for _, sub := range list.Value {
		if sub.NotificationURL != s.opts.NotificationURL || !strings.EqualFold(sub.Resource, resource) || sub.ID == s.ID() {
			continue
		}
		err := s.c.do(ctx, "graph delete subscription", request{method: http.MethodDelete, url: s.c.base + "/subscriptions/" + url.PathEscape(sub.ID), idempotent: true}, nil)
		if err != nil && !hasStatus(err, http.StatusNotFound) {
			s.c.log.Debug("graph: cannot delete an old subscription", slog.String("subscription", sub.ID), slog.Any("error", err))
		}
	}
}

// Renew extends the subscription by Lifetime (PATCH). A subscription Graph no longer
// knows (404: it expired or was removed) is made anew, and Notify is called because
// notifications may have been missed meanwhile.
func (s *Subscriber) Renew(ctx context.Context) error {
	const op = "graph renew subscription"
	id := s.ID()
	if id == "" {
		return s.recreate(ctx)
	}
	var got subscription
	asked, err := s.withLifetime(func(expires time.Time) error {
		return s.c.sendJSON(ctx, op, http.MethodPatch, s.c.base+"/subscriptions/"+url.PathEscape(id),
			subscription{ExpirationDateTime: formatGraphTime(expires)}, &got)
	})
	if hasStatus(err, http.StatusNotFound) {
		s.c.log.Info("graph: the subscription is gone; making a new one", slog.String("subscription", id))
		return s.recreate(ctx)
	}
	if err != nil {
		return s.c.classify(op, err)
	}
	s.mu.Lock()
	s.setExpiresLocked(got.ExpirationDateTime, asked)
	expires := s.expires
	s.mu.Unlock()
	s.opts.Subscribed(id, expires, s.ClientStateHash())
	s.c.log.Info("graph: subscription renewed", slog.String("subscription", id), slog.Time("expires", s.Expires()))
	return nil
}

// recreate makes a new subscription and runs a delta sync (Notify) for what came
// meanwhile.
func (s *Subscriber) recreate(ctx context.Context) error {
	s.mu.Lock()
	old := s.id
	s.id = ""
	s.mu.Unlock()
	if old != "" {
		s.opts.Ended(old)
	}
	if err := s.Subscribe(ctx); err != nil {
		return err
	}
	s.opts.Notify()
	return nil
}

// Run subscribes, renews before expiry, handles lifecycle events and retries failures
// with a growing wait, until ctx is done; then it deletes the subscription. It returns
// at once with the error when the first Subscribe fails with a permanent error (a setting
// to fix), else nil when ctx ends.
func (s *Subscriber) Run(ctx context.Context) error {
	if s.ID() == "" {
		if err := s.Subscribe(ctx); err != nil {
			if connector.IsPermanent(err) || ctx.Err() != nil {
				return err
			}
			s.c.log.Warn("graph: cannot subscribe to change notifications yet; trying again", slog.Any("error", err))
		}
	}
	defer s.unsubscribe(ctx)
	retry := minRetry
	for {
		var wait time.Duration
		if s.ID() == "" {
			wait = retry
		} else {
			wait = s.RenewAt().Sub(s.opts.Now())
		}
		t := time.NewTimer(max(wait, 0))
		var err error
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case ev := <-s.events:
			t.Stop()
			err = s.lifecycle(ctx, ev)
		case <-t.C:
			err = s.Renew(ctx)
		}
		if err != nil && ctx.Err() == nil {
			s.c.log.Warn("graph: change notification subscription failed; the folder is polled meanwhile and postroom tries again",
				slog.Any("error", err), slog.Duration("retry_in", retry))
			if s.ID() != "" {
				// Keep the old one until it expires, and try again sooner than planned.
				if err := sleep(ctx, retry); err != nil {
					return nil
				}
			}
			retry = min(retry*2, maxRetry)
			continue
		}
		retry = minRetry
	}
}

// lifecycle handles one lifecycle event (reference 4.4).
func (s *Subscriber) lifecycle(ctx context.Context, event string) error {
	switch event {
	case lifecycleReauthorize:
		return s.Renew(ctx)
	case lifecycleRemoved:
		return s.recreate(ctx)
	}
	return nil
}

// unsubscribe deletes the subscription when Run ends (best effort).
func (s *Subscriber) unsubscribe(ctx context.Context) {
	id := s.ID()
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	err := s.c.do(ctx, "graph delete subscription", request{method: http.MethodDelete, url: s.c.base + "/subscriptions/" + url.PathEscape(id), idempotent: true}, nil)
	if err != nil && !hasStatus(err, http.StatusNotFound) {
		s.c.log.Info("graph: cannot delete the subscription; it ends by itself", slog.String("subscription", id), slog.Any("error", err))
	}
	s.mu.Lock()
	s.id = ""
	s.mu.Unlock()
	s.opts.Ended(id)
}

// notificationBatch is the body of a change or lifecycle notification (reference 4.3,
// 4.4).
type notificationBatch struct {
	Value []struct {
		SubscriptionID string `json:"subscriptionId"`
		ClientState    string `json:"clientState"`
		ChangeType     string `json:"changeType"`
		LifecycleEvent string `json:"lifecycleEvent"`
	} `json:"value"`
}

// ServeHTTP answers Graph at the notification (and lifecycle) URL with
// HandleNotifications, checking each entry's clientState against this Subscriber's:
// change notifications call Notify; lifecycle events renew or make the subscription anew.
func (s *Subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	HandleNotifications(w, r, s.c.log, func(_, clientState string) bool {
		return subtle.ConstantTimeCompare([]byte(clientState), []byte(s.state)) == 1
	}, func(n Notifications) {
		if n.Reauthorize {
			s.RequestRenew()
		}
		if n.Removed {
			s.RequestRecreate()
		}
		if n.Change {
			s.opts.Notify()
		}
	})
}

// RequestRenew asks Run to renew the subscription now (Graph's reauthorizationRequired,
// received here or by another node). It does not block.
func (s *Subscriber) RequestRenew() { s.queueEvent(lifecycleReauthorize) }

// RequestRecreate asks Run to make the subscription anew (Graph's subscriptionRemoved,
// received here or by another node). It does not block.
func (s *Subscriber) RequestRecreate() { s.queueEvent(lifecycleRemoved) }

func (s *Subscriber) queueEvent(ev string) {
	select {
	case s.events <- ev:
	default: // already plenty queued; one is enough
	}
}

// ClientStateHash is the SHA-256 of the subscription's clientState: what may be stored
// for other nodes to check notifications with (the clientState itself never leaves the
// Subscriber).
func (s *Subscriber) ClientStateHash() [32]byte { return sha256.Sum256([]byte(s.state)) }

// Notifications is what the valid entries of one notification request asked for.
type Notifications struct {
	// Change: new mail, or Graph missed notifications: read the folder.
	Change bool
	// Reauthorize: renew the subscription now. Removed: make it anew.
	Reauthorize, Removed bool
}

// HandleNotifications answers Graph at a notification (and lifecycle) URL: the validation
// handshake (?validationToken=...: 200, text/plain, the token as it is), change and
// lifecycle notifications (act is called with what the valid entries ask for, then 202).
// valid says whether an entry's subscription id and clientState are one of ours; entries
// that are not are ignored, and when none of a request's is, it is refused with 403. A
// body over 256 KB is refused with 413 and one of more than 1,000 entries with 400;
// whatever a request carries, it writes at most one log line per kind (refused entries are
// counted, not listed).
func HandleNotifications(w http.ResponseWriter, r *http.Request, log *slog.Logger, valid func(subscriptionID, clientState string) bool, act func(Notifications)) {
	if r.URL.Query().Has("validationToken") {
		token := r.URL.Query().Get("validationToken")
		if len(token) > validationTokenLimit {
			http.Error(w, "validation token too long", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, token)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "notifications are POSTed", http.StatusMethodNotAllowed)
		return
	}
	var batch notificationBatch
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, notificationBodyLimit)).Decode(&batch); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("graph: notification refused: the body is too large (not from Microsoft Graph)",
				slog.Int64("limit_bytes", tooBig.Limit), slog.String("remote", r.RemoteAddr))
			http.Error(w, fmt.Sprintf("a notification body has at most %d bytes", notificationBodyLimit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "the body is not a Graph notification", http.StatusBadRequest)
		return
	}
	if len(batch.Value) > notificationEntryLimit {
		log.Warn("graph: notification refused: too many entries (not from Microsoft Graph)",
			slog.Int("entries", len(batch.Value)), slog.Int("limit", notificationEntryLimit), slog.String("remote", r.RemoteAddr))
		http.Error(w, fmt.Sprintf("a notification batch has at most %d entries", notificationEntryLimit), http.StatusBadRequest)
		return
	}
	// One request logs one line per kind of thing it carried, however many entries.
	valids, forged := 0, 0
	var n Notifications
	events := map[string]int{}
	for _, e := range batch.Value {
		if !valid(e.SubscriptionID, e.ClientState) {
			forged++
			continue
		}
		valids++
		switch e.LifecycleEvent {
		case "":
			n.Change = true
		case lifecycleMissed:
			n.Change = true
		case lifecycleReauthorize:
			n.Reauthorize = true
		case lifecycleRemoved:
			n.Removed = true
		}
		if e.LifecycleEvent != "" {
			events[e.LifecycleEvent]++
		}
	}
	if forged > 0 {
		log.Warn("graph: notifications refused: their clientState is not ours (forged, or from an old subscription)",
			slog.Int("refused", forged), slog.Int("accepted", valids), slog.String("remote", r.RemoteAddr))
	}
	for _, ev := range slices.Sorted(maps.Keys(events)) {
		switch ev {
		case lifecycleMissed:
			log.Info("graph: Microsoft Graph missed notifications; reading the folder", slog.Int("count", events[ev]))
		case lifecycleReauthorize, lifecycleRemoved:
			log.Info("graph: subscription lifecycle event", slog.String("event", ev), slog.Int("count", events[ev]))
		default:
			log.Info("graph: unknown lifecycle event ignored", slog.String("event", ev), slog.Int("count", events[ev]))
		}
	}
	if valids == 0 {
		http.Error(w, "clientState does not match", http.StatusForbidden)
		return
	}
	act(n)
	w.WriteHeader(http.StatusAccepted)
}

// formatGraphTime formats t as Graph's expirationDateTime.
func formatGraphTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// parseGraphTime parses a Graph date-time; def when it cannot.
func parseGraphTime(s string, def time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return def
}
