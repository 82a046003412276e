package ingest

import (
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// TestNotificationsPossible: change notifications are asked for where Graph gives them:
// to an app, and to a person's sign-in on the person's own mailbox only.
func TestNotificationsPossible(t *testing.T) {
	for _, c := range []struct {
		name string
		m    store.Mailbox
		want bool
	}{
		{"app", store.Mailbox{Auth: store.AuthOAuthApp, Address: "support@contoso.example"}, true},
		{"person on a shared mailbox", store.Mailbox{Auth: store.AuthOAuthDelegated, Address: "support@contoso.example",
			OAuth: store.OAuth{Account: "agent@contoso.example"}}, false},
		{"person on their own mailbox", store.Mailbox{Auth: store.AuthOAuthDelegated, Address: "Agent@contoso.example",
			OAuth: store.OAuth{Account: "agent@contoso.example"}}, true},
		{"person not known yet: tried", store.Mailbox{Auth: store.AuthOAuthDelegated, Address: "support@contoso.example"}, true},
		{"password grant on a shared mailbox", store.Mailbox{Auth: store.AuthOAuthROPC, Address: "support@contoso.example",
			Login: "agent@contoso.example"}, false},
		{"password grant on the own mailbox", store.Mailbox{Auth: store.AuthOAuthROPC, Address: "agent@contoso.example",
			Login: "agent@contoso.example"}, true},
	} {
		if got := notificationsPossible(c.m); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := pollingNote(90 * time.Second); got != "notifications need app-only access; polling every 90 s" {
		t.Errorf("note %q", got)
	}
}
