package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/app"
	"github.com/postroom/postroom/internal/mstest"
	"github.com/postroom/postroom/internal/routing"
	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
	"github.com/postroom/postroom/internal/vault"
)

// startNode starts one node on the shared PostgreSQL database pgURL, in its own data
// folder (so with its own node name), serving on ln. publicURL is where Microsoft Graph
// sends notifications ("": the node's own address); noIngest runs no ingest loops on it.
func startNode(t *testing.T, pgURL string, ln net.Listener, publicURL string, noIngest bool) *harness {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	own := "http://" + ln.Addr().String()
	if publicURL == "" {
		publicURL = own
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{
		PublicURL:    publicURL,
		DataDir:      dir,
		DatabaseURL:  pgURL,
		Getenv:       func(k string) string { return map[string]string{vault.EnvKey: testKey}[k] },
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", own),
		IngestReload: 200 * time.Millisecond,
		NoIngest:     noIngest,
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("open node: %v", err)
	}
	wait := a.Start(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx, ln)
	}()
	h := &harness{t: t, app: a, cancel: cancel, url: own, dir: dir}
	h.wait = func() { wait(); <-served }
	t.Cleanup(h.stop)
	select {
	case <-a.Wakeups.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("the node does not listen for the other nodes' wake-ups")
	}
	return h
}

// TestGraphNotificationToOtherNode: two nodes on one PostgreSQL database behind one public
// URL that reaches node B; node A runs the Graph mailbox's loop, B none. Microsoft's
// notification of a new message goes to B, which checks it against the subscription A
// stored and hands it to A through LISTEN/NOTIFY: A reads the mailbox at once (its poll
// interval is an hour). Before, B answered 404, which tells Microsoft to stop.
func TestGraphNotificationToOtherNode(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	pg := testenv.Postgres(t)
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + lnB.Addr().String()
	b := startNode(t, pg, lnB, public, true)
	a := startNode(t, pg, nil, public, false)
	ctx := context.Background()
	in := graphInput(ms, sample, "contoso")
	in.PollInterval = time.Hour
	m, err := a.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a subscription made by node A and stored", func() (bool, string) {
		subs := ms.Subscriptions()
		rows, err := b.app.Store.GraphSubscriptionsOf(ctx, m.ID)
		return len(subs) == 1 && len(rows) == 1 && rows[0].ID == subs[0].ID, fmt.Sprintf("at Microsoft %+v, stored %+v %v", subs, rows, err)
	})
	if got := ms.Subscriptions()[0].NotificationURL; !strings.HasPrefix(got, b.url+"/graph/notify/") {
		t.Fatalf("notification URL %q does not reach node B (%s)", got, b.url)
	}
	for i := range 2 {
		start := time.Now()
		if _, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(300+i)); err != nil {
			t.Fatal(err)
		}
		for {
			c, _ := a.app.Store.CountMessages(ctx, m.ID)
			if c == i+1 {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("message %d: %d stored a second after delivery; the notification sent to node B did not reach node A's loop", i+1, c)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("message %d stored %s after delivery", i+1, time.Since(start).Round(time.Millisecond))
	}

	// A forged notification to node B is refused there.
	body := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"clientState":"not-the-secret","changeType":"created"}]}`, ms.Subscriptions()[0].ID)
	resp, err := http.Post(fmt.Sprintf("%s/graph/notify/%d", b.url, m.ID), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged notification: %d, want 403", resp.StatusCode)
	}
	// A mailbox that is not ours: 404, which tells Microsoft to stop.
	resp, err = http.Post(fmt.Sprintf("%s/graph/notify/%d", b.url, m.ID+100), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("notification for an unknown mailbox: %d, want 404", resp.StatusCode)
	}
}

// sseEvents reads a server-sent event stream and sends each event's name.
func sseEvents(t *testing.T, ctx context.Context, c *http.Client, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				out <- name
			}
		}
	}()
	return out
}

// TestLiveViewAcrossNodes: an agent's live work item list on node B is told of an item
// that node A ingested (through LISTEN/NOTIFY), long before its 15-second refresh, and
// the list it then loads from node B shows the item.
func TestLiveViewAcrossNodes(t *testing.T) {
	ms, sample := startMS(t, mstest.SampleOptions{Messages: -1})
	pg := testenv.Postgres(t)
	a := startNode(t, pg, nil, "", false)
	b := startNode(t, pg, nil, "", true)
	ctx := context.Background()
	in := graphInput(ms, sample, "contoso")
	in.PollInterval = time.Hour
	m, err := a.app.Mailboxes.Create(ctx, "admin", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.app.Mailboxes.Enable(ctx, "admin", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node A's subscription", func() (bool, string) {
		subs := ms.Subscriptions()
		return len(subs) == 1, fmt.Sprintf("%+v", subs)
	})
	if _, err := b.app.Auth.EnsureUser(ctx, "agent", "Alex Agent", store.RoleAgent, "agent-pw-for-tests"); err != nil {
		t.Fatal(err)
	}
	api := newAPIClient(t, b.url, "agent", "agent-pw-for-tests")
	jar := api.c.Jar.(*cookiejar.Jar)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := sseEvents(t, sctx, &http.Client{Jar: jar}, b.url+"/workitems/events")
	// Whatever the sign-in stirred up passes first.
	for quiet := time.After(700 * time.Millisecond); ; {
		select {
		case <-events:
			continue
		case <-quiet:
		}
		break
	}

	start := time.Now()
	if _, err := ms.Deliver(sample.Mailbox, "inbox", mstest.SampleMessage(400)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second) // the list's own refresh comes every 15 s
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if ev != "list" {
				continue
			}
			status, body := api.do("GET", "/api/v1/workitems", nil)
			var list struct {
				Items []struct {
					ID int64 `json:"id"`
				} `json:"items"`
			}
			_ = json.Unmarshal(body, &list)
			if status == http.StatusOK && len(list.Items) == 1 {
				t.Logf("node B's agent told of node A's item %s after delivery", time.Since(start).Round(time.Millisecond))
				return
			}
		case <-deadline:
			c, _ := a.app.Store.CountMessages(ctx, m.ID)
			t.Fatalf("no list event with the item on node B within 5 s (node A stored %d messages)", c)
		}
	}
}

// TestOfferExpiresAfterNodeDies: node A offers an item to an agent and is closed before
// the offer's 10 seconds are up; node B, started afterwards, takes the offer back when it
// expires (from the database, not from A's timer) and offers the item to the other agent.
func TestOfferExpiresAfterNodeDies(t *testing.T) {
	pg := testenv.Postgres(t)
	a := startNode(t, pg, nil, "", true)
	ctx := context.Background()
	st := a.app.Store
	q, err := st.EnsureDefaultQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(routing.QueueSettings{OfferTimeoutS: 10})
	if err := st.SetQueueSpec(ctx, q.ID, q.Name, spec); err != nil {
		t.Fatal(err)
	}
	agents := map[int64]string{}
	for _, name := range []string{"ana", "ben"} {
		u, err := a.app.Auth.EnsureUser(ctx, name, name, store.RoleAgent, "a long passphrase for "+name)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveAgent(ctx, store.Agent{UserID: u.ID, Capacity: 1}); err != nil {
			t.Fatal(err)
		}
		if err := a.app.Routing.SetStatus(ctx, u.ID, store.AgentAvailable); err != nil {
			t.Fatal(err)
		}
		agents[u.ID] = name
	}
	mb, err := st.CreateMailbox(ctx, store.Mailbox{Name: "support", Direction: store.Inbound, Protocol: "imap",
		Host: "127.0.0.1", Port: 143, Security: "none", Folder: "INBOX", MaxSizeMB: 5, PollInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res, err := st.IngestMessage(ctx, store.InboundMessage{MailboxID: mb.ID, Raw: []byte("Subject: help\r\n\r\nhelp\r\n"), ReceivedAt: now,
		Classification: &store.Classification{QueueID: q.ID},
		Message: store.Message{MailboxID: mb.ID, Direction: store.Inbound, SourceID: "test:1", MessageID: "m1@example.org",
			Subject: "help", FromAddr: "c@example.org", Date: now}})
	if err != nil {
		t.Fatal(err)
	}
	a.app.Routing.Wake()
	var first store.WorkItem
	waitFor(t, "node A's offer", func() (bool, string) {
		first, _ = st.WorkItem(ctx, res.WorkItemID)
		return first.State == store.StateOffered, first.State
	})
	t.Logf("node A offered the item to %s until %s", agents[first.OfferedTo], first.OfferExpiresAt.Format(time.RFC3339))
	a.stop()

	b := startNode(t, pg, nil, "", true)
	var again store.WorkItem
	waitFor(t, "node B's offer to the other agent", func() (bool, string) {
		again, _ = b.app.Store.WorkItem(ctx, res.WorkItemID)
		return again.State == store.StateOffered && again.OfferedTo != first.OfferedTo && again.OfferedTo != 0,
			fmt.Sprintf("%s to %s", again.State, agents[again.OfferedTo])
	})
	if time.Now().Before(first.OfferExpiresAt) {
		t.Errorf("offered again before node A's offer expired (%s)", first.OfferExpiresAt)
	}
	evs, err := b.app.Store.Events(ctx, res.WorkItemID)
	if err != nil {
		t.Fatal(err)
	}
	timeouts := 0
	for _, e := range evs {
		if e.Kind == "offer_timeout" {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("%d offer_timeout events, want 1: %+v", timeouts, evs)
	}
}
