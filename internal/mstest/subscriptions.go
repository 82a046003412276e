package mstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Subscription is a change-notification subscription as a test sees it.
type Subscription struct {
	ID, ClientID, Resource, ChangeType                     string
	NotificationURL, LifecycleNotificationURL, ClientState string
	Expires                                                time.Time
	// Mailbox is the subscribed mailbox's UPN, Folder the folder's display path ("" when
	// the resource is all messages of the mailbox).
	Mailbox, Folder string
}

// subscription is the server's record.
type subscription struct {
	Subscription
	mbox      *mailbox
	folderID  string // "" = every folder
	tenantID  string
	immutable bool   // created with Prefer: IdType="ImmutableId": notifications carry immutable ids
	creatorID string // oid of the token that created it
}

// notification is one POST the server makes to a client.
type notification struct {
	url  string
	body any
}

// Subscriptions returns the active (unexpired) subscriptions.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	var out []Subscription
	for _, sub := range s.state.graph.subs {
		if sub.Expires.After(now) {
			out = append(out, sub.Subscription)
		}
	}
	return out
}

// SendLifecycle POSTs a lifecycle notification (LifecycleReauthorizationRequired,
// LifecycleSubscriptionRemoved, LifecycleMissed) for subscription id to its
// lifecycleNotificationUrl and returns the HTTP status the client answered.
// subscriptionRemoved also deletes the subscription, as Graph does.
func (s *Server) SendLifecycle(ctx context.Context, id, event string) (int, error) {
	s.mu.Lock()
	sub, ok := s.state.graph.subs[id]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("mstest: no subscription %s", id)
	}
	if sub.LifecycleNotificationURL == "" {
		s.mu.Unlock()
		return 0, fmt.Errorf("mstest: subscription %s has no lifecycleNotificationUrl", id)
	}
	body := map[string]any{"value": []any{map[string]any{
		"lifecycleEvent":                 event,
		"subscriptionId":                 sub.ID,
		"subscriptionExpirationDateTime": formatTimeOffset(sub.Expires),
		"clientState":                    sub.ClientState,
		"tenantId":                       sub.tenantID,
	}}}
	url := sub.LifecycleNotificationURL
	if event == LifecycleSubscriptionRemoved {
		delete(s.state.graph.subs, id)
	}
	s.mu.Unlock()
	return s.post(ctx, url, body)
}

// subscriptionResource matches the resources the stand-in takes (reference §4.1).
var subscriptionResource = regexp.MustCompile(`(?i)^/?(users/([^/]+)|me)/(mailFolders(\('([^')]+)'\)|/([^/]+))/)?messages$`)

// serveSubscriptions serves /subscriptions[/{id}[/reauthorize]].
func (s *Server) serveSubscriptions(gr *graphReq, rest []string) *graphResp {
	switch {
	case len(rest) == 0 && gr.method == http.MethodPost:
		return s.createSubscription(gr)
	case len(rest) == 0 && gr.method == http.MethodGet:
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []any{}
		now := s.nowLocked()
		var subs []*subscription
		for _, sub := range s.state.graph.subs {
			if sub.ClientID == gr.tok.app.cfg.ClientID && sub.Expires.After(now) {
				subs = append(subs, sub)
			}
		}
		slices.SortFunc(subs, func(a, b *subscription) int { return strings.Compare(a.ID, b.ID) })
		for _, sub := range subs {
			out = append(out, sub.json(s))
		}
		return gjson(http.StatusOK, map[string]any{"@odata.context": s.graphURL + "/v1.0/$metadata#subscriptions", "value": out})
	case len(rest) == 1 || (len(rest) == 2 && rest[1] == "reauthorize" && gr.method == http.MethodPost):
	default:
		return gerr(http.StatusBadRequest, "BadRequest", fmt.Sprintf(msgResourceNotFound, strings.Join(rest, "/")))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.state.graph.subs[rest[0]]
	now := s.nowLocked()
	if sub == nil || sub.ClientID != gr.tok.app.cfg.ClientID || !sub.Expires.After(now) {
		if sub != nil && !sub.Expires.After(now) {
			delete(s.state.graph.subs, rest[0])
		}
		return gerr(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The object was not found. Subscription '%s' does not exist or has expired.", rest[0]))
	}
	if len(rest) == 2 {
		return &graphResp{status: http.StatusOK}
	}
	switch gr.method {
	case http.MethodGet:
		return gjson(http.StatusOK, sub.json(s))
	case http.MethodDelete:
		delete(s.state.graph.subs, sub.ID)
		return &graphResp{status: http.StatusNoContent}
	case http.MethodPatch:
		var in struct {
			ExpirationDateTime string `json:"expirationDateTime"`
		}
		if err := json.Unmarshal(gr.body, &in); err != nil {
			return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
		}
		exp, e := s.checkExpiry(in.ExpirationDateTime, now)
		if e != nil {
			return e
		}
		sub.Expires = exp
		return gjson(http.StatusOK, sub.json(s))
	}
	return gerr(http.StatusMethodNotAllowed, "BadRequest", "Method not allowed.")
}

// checkExpiry parses expirationDateTime and applies the cap.
func (s *Server) checkExpiry(v string, now time.Time) (time.Time, *graphResp) {
	exp, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, gerr(http.StatusBadRequest, "InvalidRequest", "expirationDateTime must be an ISO 8601 date and time, e.g. 2026-11-30T18:00:00.0000000Z.")
	}
	if !exp.After(now) {
		return time.Time{}, gerr(http.StatusBadRequest, "ExtensionError",
			"Operation: Create; Exception: [Status Code: BadRequest; Reason: Subscription expiration must be in the future.]")
	}
	if exp.Sub(now) > s.opts.MaxSubscriptionLifetime {
		// Graph's answer, as reported in microsoftgraph/microsoft-graph-docs issue #2988
		// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/2988):
		// {"error":{"code":"ExtensionError","message":"Subscription expiration can only be
		// 4230 minutes in the future.",...}}.
		return time.Time{}, gerr(http.StatusBadRequest, "ExtensionError", fmt.Sprintf(
			"Subscription expiration can only be %d minutes in the future.", int(s.opts.MaxSubscriptionLifetime/time.Minute)))
	}
	return exp.UTC(), nil
}

func (sub *subscription) json(s *Server) map[string]any {
	var lifecycle any
	if sub.LifecycleNotificationURL != "" {
		lifecycle = sub.LifecycleNotificationURL
	}
	var state any
	if sub.ClientState != "" {
		state = sub.ClientState
	}
	return map[string]any{
		"@odata.context": s.graphURL + "/v1.0/$metadata#subscriptions/$entity",
		"id":             sub.ID, "resource": sub.Resource, "applicationId": sub.ClientID, "changeType": sub.ChangeType,
		"clientState": state, "notificationUrl": sub.NotificationURL, "notificationQueryOptions": nil,
		"lifecycleNotificationUrl": lifecycle, "expirationDateTime": sub.Expires.Format("2006-01-02T15:04:05Z"),
		"creatorId": sub.creatorID, "includeResourceData": false, "latestSupportedTlsVersion": "v1_2",
		"encryptionCertificate": nil, "encryptionCertificateId": nil, "notificationUrlAppId": nil,
	}
}

// loopbackURL checks a notification URL is http(s) on a loopback address.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost"
}

func (s *Server) createSubscription(gr *graphReq) *graphResp {
	var in struct {
		ChangeType               string `json:"changeType"`
		NotificationURL          string `json:"notificationUrl"`
		LifecycleNotificationURL string `json:"lifecycleNotificationUrl"`
		Resource                 string `json:"resource"`
		ExpirationDateTime       string `json:"expirationDateTime"`
		ClientState              string `json:"clientState"`
		IncludeResourceData      bool   `json:"includeResourceData"`
	}
	if err := json.Unmarshal(gr.body, &in); err != nil {
		return gerr(http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body.")
	}
	for _, ct := range strings.Split(in.ChangeType, ",") {
		switch strings.TrimSpace(ct) {
		case "created", "updated", "deleted":
		default:
			return gerr(http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("changeType '%s' is not valid: use created, updated, deleted or a comma-separated list.", in.ChangeType))
		}
	}
	if in.IncludeResourceData {
		return gerr(http.StatusBadRequest, "InvalidRequest", "The stand-in does not encrypt resource data: set includeResourceData false.")
	}
	if len(in.ClientState) > 128 {
		return gerr(http.StatusBadRequest, "InvalidRequest", "clientState may be at most 128 characters.")
	}
	for _, u := range []string{in.NotificationURL, in.LifecycleNotificationURL} {
		if u != "" && !loopbackURL(u) {
			return gerr(http.StatusBadRequest, "InvalidRequest", fmt.Sprintf(
				"The notification URL '%s' is not allowed: the stand-in posts to http(s) URLs on 127.0.0.1 or ::1 only.", u))
		}
	}
	if in.NotificationURL == "" {
		return gerr(http.StatusBadRequest, "InvalidRequest", "notificationUrl is required.")
	}
	m := subscriptionResource.FindStringSubmatch(in.Resource)
	if m == nil {
		return gerr(http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Resource '%s' is not supported: use users/{id}/mailFolders('inbox')/messages or users/{id}/messages.", in.Resource))
	}
	userSeg := m[2]
	if m[1] == "me" {
		if gr.tok.user == nil {
			return gerr(http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
		}
		userSeg = gr.tok.user.cfg.ObjectID
	}
	folderRef := m[5]
	if folderRef == "" {
		folderRef = m[6]
	}
	s.mu.Lock()
	u := gr.tok.app.tenant.users[strings.ToLower(userSeg)]
	s.mu.Unlock()
	if u == nil {
		return gerr(http.StatusNotFound, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", userSeg))
	}
	if u.cfg.NoMailbox {
		return gerr(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", msgNotEnabled)
	}
	if gr.tok.user != nil && u != gr.tok.user {
		return errDelegatedSubscription()
	}
	if denied := s.checkAccess(gr.tok, u, accessRead); denied != nil {
		return denied
	}
	s.mu.Lock()
	now := s.nowLocked()
	exp, e := s.checkExpiry(in.ExpirationDateTime, now)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	sub := &subscription{mbox: u.mbox, tenantID: gr.tok.app.tenant.id, immutable: preferImmutable(gr.header), creatorID: gr.tok.claims.ObjectID}
	if folderRef != "" {
		c := &mailboxCall{mb: u.mbox}
		f, e := c.folderLocked(folderRef)
		if e != nil {
			s.mu.Unlock()
			return e
		}
		sub.folderID, sub.Folder = f.id, u.mbox.folderPath(f)
	}
	s.mu.Unlock()
	sub.ID, sub.ClientID, sub.Resource, sub.ChangeType = NewGUID(), gr.tok.app.cfg.ClientID, in.Resource, in.ChangeType
	sub.NotificationURL, sub.LifecycleNotificationURL, sub.ClientState = in.NotificationURL, in.LifecycleNotificationURL, in.ClientState
	sub.Expires, sub.Mailbox = exp, u.cfg.UPN
	for _, target := range []string{in.NotificationURL, in.LifecycleNotificationURL} {
		if target == "" {
			continue
		}
		if err := s.validate(gr.ctx, target); err != nil {
			s.log.Info("mstest: subscription validation failed", "url", target, "err", err)
			return gerr(http.StatusBadRequest, "ValidationError",
				"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ("+err.Error()+")")
		}
	}
	s.mu.Lock()
	s.state.graph.subs[sub.ID] = sub
	s.mu.Unlock()
	return gjson(http.StatusCreated, sub.json(s))
}

// errDelegatedSubscription refuses a delegated subscription on another user's or a shared
// mailbox, whatever the user's rights on it: "These two permissions [Mail.Read.Shared,
// Mail.ReadWrite.Shared] don't support subscribing to change notifications on items in
// shared or delegated folders" (https://learn.microsoft.com/graph/outlook-share-messages-folders,
// ms365-protocol.md §8.2); only an app-only token (application permission Mail.Read) may
// subscribe there. The answer's shape is the one Graph gives to a subscription the
// mailbox's owner refuses: 403 ExtensionError with the Exchange status inside the message,
// as reported for a delegated subscription to a calendar the user holds full delegated
// rights on (microsoftgraph/microsoft-graph-docs#3510, answered by Microsoft: app-only
// works, delegated does not) and in microsoftgraph/msgraph-sdk-dotnet#365.
func errDelegatedSubscription() *graphResp {
	return gerr(http.StatusForbidden, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]")
}

// validate runs the validation handshake with target (reference §4.2).
func (s *Server) validate(ctx context.Context, target string) error {
	token := "Validation: Testing client application reachability for subscription Request-Id: " + NewGUID()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ValidationTimeout)
	defer cancel()
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+sep+"validationToken="+url.QueryEscape(token), nil)
	if err != nil {
		return fmt.Errorf("validation request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.opts.NotificationClient.Do(req)
	if err != nil {
		return fmt.Errorf("validation request to %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("validation answer from %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the endpoint answered %d, want 200", resp.StatusCode)
	}
	if string(body) != token {
		return fmt.Errorf("the endpoint answered %q, want the validationToken verbatim", body)
	}
	return nil
}

// changeNotificationsLocked returns the notifications a change of m in f causes
// (changeType created, updated or deleted).
func (s *Server) changeNotificationsLocked(mb *mailbox, f *folder, m *message, changeType string) []notification {
	if f == nil {
		return nil
	}
	now := s.nowLocked()
	var out []notification
	for _, sub := range s.state.graph.subs {
		if sub.mbox != mb || (sub.folderID != "" && sub.folderID != f.id) || !sub.Expires.After(now) {
			continue
		}
		if !slices.Contains(strings.Split(strings.ReplaceAll(sub.ChangeType, " ", ""), ","), changeType) {
			continue
		}
		id := m.restID
		if sub.immutable {
			id = m.immutableID
		}
		res := "Users/" + mb.owner.cfg.ObjectID + "/Messages/" + id
		var state any
		if sub.ClientState != "" {
			state = sub.ClientState
		}
		out = append(out, notification{url: sub.NotificationURL, body: map[string]any{"value": []any{map[string]any{
			"subscriptionId":                 sub.ID,
			"subscriptionExpirationDateTime": formatTimeOffset(sub.Expires),
			"changeType":                     changeType,
			"resource":                       res,
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Message", "@odata.id": res,
				"@odata.etag": etag(m.changeKey), "id": id},
			"clientState": state,
			"tenantId":    sub.tenantID,
		}}}})
	}
	return out
}
