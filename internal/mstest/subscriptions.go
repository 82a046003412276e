package mstest

import (
	"context"
	"fmt"
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
	mbox     *mailbox
	folderID string // "" = every folder
	tenantID string
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
