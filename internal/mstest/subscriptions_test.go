package mstest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// receiver is a client's webhook on 127.0.0.1: it answers the validation handshake (or
// not) and collects notifications.
type receiver struct {
	*httptest.Server
	got       chan map[string]any
	validated chan string
	badEcho   bool
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan map[string]any, 100), validated: make(chan string, 10)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tok := req.URL.Query().Get("validationToken"); tok != "" {
			r.validated <- tok
			w.Header().Set("Content-Type", "text/plain")
			if r.badEcho {
				_, _ = io.WriteString(w, "nope")
				return
			}
			_, _ = io.WriteString(w, tok)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Errorf("notification is not JSON: %v", err)
		}
		r.got <- body
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next notification (the stand-in posts them in the background).
func (r *receiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-r.got:
		return b["value"].([]any)[0].(map[string]any)
	case <-time.After(10 * time.Second):
		t.Fatal("no notification arrived")
		return nil
	}
}

func TestSubscriptions(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	hook := newReceiver(t)
	life := newReceiver(t)
	exp := time.Now().Add(70 * time.Hour).UTC()
	create := map[string]any{
		"changeType": "created", "notificationUrl": hook.URL + "/graph/notify", "lifecycleNotificationUrl": life.URL + "/graph/lifecycle",
		"resource": "users/" + testShared + "/mailFolders('inbox')/messages", "expirationDateTime": exp.Format("2006-01-02T15:04:05.0000000Z"),
		"clientState": "9fd2f4c2d6c54a3f8b1c",
	}
	g := f.graph(t, "POST", "/v1.0/subscriptions", tok, create, "Prefer", immutable)
	if g.status != 201 {
		t.Fatalf("create: %d %s", g.status, g.body)
	}
	sub := g.json(t)
	id := sub["id"].(string)
	if sub["clientState"] != "9fd2f4c2d6c54a3f8b1c" || sub["applicationId"] != f.app.ClientID() || sub["changeType"] != "created" {
		t.Errorf("subscription %v", sub)
	}
	for _, r := range []*receiver{hook, life} {
		select {
		case tok := <-r.validated:
			if !strings.HasPrefix(tok, "Validation: Testing client application reachability for subscription Request-Id: ") {
				t.Errorf("validation token %q", tok)
			}
		default:
			t.Errorf("no validation request to %s", r.URL)
		}
	}

	// A message in the inbox: one notification with clientState and the immutable id.
	msgID, err := f.s.Deliver(testShared, "inbox", msgRaw(1))
	if err != nil {
		t.Fatal(err)
	}
	n := hook.next(t)
	if n["subscriptionId"] != id || n["changeType"] != "created" || n["clientState"] != "9fd2f4c2d6c54a3f8b1c" ||
		n["tenantId"] != testTenantID || n["resourceData"].(map[string]any)["id"] != msgID {
		t.Errorf("notification %v", n)
	}
	// Other folders do not notify an inbox subscription.
	if _, err := f.s.Deliver(testShared, "junkemail", msgRaw(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Deliver(testShared, "inbox", msgRaw(3)); err != nil {
		t.Fatal(err)
	}
	if n := hook.next(t); n["resourceData"].(map[string]any)["id"] == "" || strings.Contains(n["resource"].(string), "junk") {
		t.Errorf("second notification %v", n)
	}

	// Lifecycle events on demand.
	status, err := f.s.SendLifecycle(context.Background(), id, LifecycleMissed)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("lifecycle: %d %v", status, err)
	}
	if n := life.next(t); n["lifecycleEvent"] != "missed" || n["subscriptionId"] != id || n["clientState"] != "9fd2f4c2d6c54a3f8b1c" {
		t.Errorf("lifecycle notification %v", n)
	}

	// Renewal within the cap of 4,230 minutes, refused beyond it with Graph's words.
	renew := time.Now().Add(4229 * time.Minute).UTC().Format(time.RFC3339)
	if g := f.graph(t, "PATCH", "/v1.0/subscriptions/"+id, tok, map[string]any{"expirationDateTime": renew}); g.status != 200 ||
		!strings.HasPrefix(g.json(t)["expirationDateTime"].(string), renew[:19]) {
		t.Errorf("renew: %d %s", g.status, g.body)
	}
	const capWords = "Subscription expiration can only be 4230 minutes in the future."
	tooFar := time.Now().Add(4231 * time.Minute).UTC().Format(time.RFC3339)
	if msg := wantGraphError(t, f.graph(t, "PATCH", "/v1.0/subscriptions/"+id, tok, map[string]any{"expirationDateTime": tooFar}), 400, "ExtensionError"); msg != capWords {
		t.Errorf("renewal beyond the cap: %q, want %q", msg, capWords)
	}
	create["expirationDateTime"] = tooFar
	if msg := wantGraphError(t, f.graph(t, "POST", "/v1.0/subscriptions", tok, create), 400, "ExtensionError"); msg != capWords {
		t.Errorf("creation beyond the cap: %q, want %q", msg, capWords)
	}
	// The 10,080 minutes of Microsoft's newer notes (§8.8) are refused too.
	create["expirationDateTime"] = time.Now().Add(10080 * time.Minute).UTC().Format(time.RFC3339)
	wantGraphError(t, f.graph(t, "POST", "/v1.0/subscriptions", tok, create), 400, "ExtensionError")

	// A listener that does not echo the token: the create fails.
	bad := newReceiver(t)
	bad.badEcho = true
	create["expirationDateTime"] = exp.Format(time.RFC3339)
	create["notificationUrl"] = bad.URL
	wantGraphError(t, f.graph(t, "POST", "/v1.0/subscriptions", tok, create), 400, "ValidationError")
	create["notificationUrl"] = "https://postroom.example.org/graph/notify"
	wantGraphError(t, f.graph(t, "POST", "/v1.0/subscriptions", tok, create), 400, "InvalidRequest")

	if subs := f.s.Subscriptions(); len(subs) != 1 || subs[0].Mailbox != testShared || subs[0].Folder != "Inbox" {
		t.Errorf("Subscriptions() %+v", subs)
	}
	// After expiry: no notifications, 404 on renewal.
	f.s.Advance(4230 * time.Minute)
	if _, err := f.s.Deliver(testShared, "inbox", msgRaw(4)); err != nil {
		t.Fatal(err)
	}
	tok = f.appToken(t, GraphAudience+"/.default")
	later := time.Now().Add(4230*time.Minute + 70*time.Hour).UTC().Format(time.RFC3339)
	wantGraphError(t, f.graph(t, "PATCH", "/v1.0/subscriptions/"+id, tok, map[string]any{"expirationDateTime": later}), 404, "ResourceNotFound")
	select {
	case n := <-hook.got:
		t.Errorf("notification after expiry: %v", n)
	default:
	}

	// Create again, delete: 204, then 404.
	create["notificationUrl"] = hook.URL
	create["expirationDateTime"] = later
	g = f.graph(t, "POST", "/v1.0/subscriptions", tok, create)
	if g.status != 201 {
		t.Fatalf("re-create: %d %s", g.status, g.body)
	}
	id = g.json(t)["id"].(string)
	if g := f.graph(t, "DELETE", "/v1.0/subscriptions/"+id, tok, nil); g.status != 204 {
		t.Errorf("delete: %d", g.status)
	}
	wantGraphError(t, f.graph(t, "GET", "/v1.0/subscriptions/"+id, tok, nil), 404, "ResourceNotFound")
}

// TestDelegatedSubscriptions: a person's token subscribes to their own mailbox, but not to
// another user's or a shared mailbox, even with Mail.ReadWrite.Shared and FullAccess:
// 403 ExtensionError, before any validation request (ms365-protocol.md §8.2). The app's
// token subscribes to the shared mailbox.
func TestDelegatedSubscriptions(t *testing.T) {
	f := newFixture(t, Options{})
	f.app.SetScopes(ScopeGraphMailReadWriteShared, ScopeGraphMailSendShared)
	f.user.GrantFullAccess(testShared)
	tok := f.userToken(t, ScopeGraphMailReadWriteShared).AccessToken
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Fatalf("the user may read the shared mailbox: %d %s", g.status, g.body)
	}
	hook := newReceiver(t)
	create := func(resource string) map[string]any {
		return map[string]any{"changeType": "created", "notificationUrl": hook.URL, "resource": resource,
			"expirationDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}
	}
	for _, res := range []string{
		"users/" + testShared + "/mailFolders('inbox')/messages",
		"users/" + testShared + "/messages",
		"users/" + f.shared.ObjectID() + "/mailFolders/inbox/messages",
	} {
		g := f.graph(t, "POST", "/v1.0/subscriptions", tok, create(res))
		if msg := wantGraphError(t, g, 403, "ExtensionError"); msg != "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]" {
			t.Errorf("%s: message %q", res, msg)
		}
	}
	select {
	case v := <-hook.validated:
		t.Errorf("a refused subscription was validated: %s", v)
	default:
	}
	if subs := f.s.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions %+v", subs)
	}
	for _, res := range []string{"me/mailFolders('inbox')/messages", "users/" + testUser + "/messages"} {
		if g := f.graph(t, "POST", "/v1.0/subscriptions", tok, create(res)); g.status != 201 {
			t.Errorf("own mailbox %s: %d %s", res, g.status, g.body)
		}
	}
	app := f.appToken(t, GraphAudience+"/.default")
	if g := f.graph(t, "POST", "/v1.0/subscriptions", app, create("users/"+testShared+"/mailFolders('inbox')/messages")); g.status != 201 {
		t.Errorf("app-only on the shared mailbox: %d %s", g.status, g.body)
	}
}
