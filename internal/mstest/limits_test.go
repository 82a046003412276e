package mstest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDeltaTokensExpireByThemselves: with DeltaTokenLifetime, a nextLink and a deltaLink
// stop working that long after they were handed out, by the server's clock, with Outlook's
// answer (410 SyncStateNotFound); younger ones still work; a new round starts afresh.
func TestDeltaTokensExpireByThemselves(t *testing.T) {
	f := newFixture(t, Options{DeltaTokenLifetime: time.Hour, AccessTokenLifetime: 24 * time.Hour})
	f.deliverN(t, 15)
	tok := f.appToken(t, GraphAudience+"/.default")
	hdr := []string{"Prefer", "odata.maxpagesize=10", "Prefer", immutable}
	first := "/v1.0/users/" + testShared + "/mailFolders/inbox/messages/delta"

	g := f.graph(t, "GET", first, tok, nil, hdr...)
	next, _ := g.json(t)["@odata.nextLink"].(string)
	if g.status != 200 || next == "" {
		t.Fatalf("first page: %d %s", g.status, g.body)
	}
	f.s.Advance(59 * time.Minute)
	g = f.graph(t, "GET", next, tok, nil, hdr...)
	delta, _ := g.json(t)["@odata.deltaLink"].(string)
	if g.status != 200 || delta == "" {
		t.Fatalf("nextLink within its lifetime: %d %s", g.status, g.body)
	}
	f.s.Advance(59 * time.Minute) // the nextLink is now 118 minutes old, the deltaLink 59
	msg := wantGraphError(t, f.graph(t, "GET", next, tok, nil, hdr...), http.StatusGone, "SyncStateNotFound")
	if !strings.Contains(msg, "synchronized again") {
		t.Errorf("message %q", msg)
	}
	g = f.graph(t, "GET", delta, tok, nil, hdr...)
	if g.status != 200 {
		t.Fatalf("deltaLink within its lifetime: %d %s", g.status, g.body)
	}
	delta = g.json(t)["@odata.deltaLink"].(string)
	f.s.Advance(61 * time.Minute)
	wantGraphError(t, f.graph(t, "GET", delta, tok, nil, hdr...), http.StatusGone, "SyncStateNotFound")
	if items, _, _ := f.collect(t, first, tok, hdr...); len(items) != 15 {
		t.Errorf("a new round after the expiry lists %d messages, want 15", len(items))
	}

	// ExpireDeltaTokens still works.
	_, last, _ := f.collect(t, first, tok, hdr...)
	f.s.ExpireDeltaTokens()
	wantGraphError(t, f.graph(t, "GET", last["@odata.deltaLink"].(string), tok, nil, hdr...), http.StatusGone, "SyncStateNotFound")
}

// TestDeltaExpiredAnswerConfigurable: a test can make an expired token answer 400
// syncStateNotFound, as directory resources do.
func TestDeltaExpiredAnswerConfigurable(t *testing.T) {
	f := newFixture(t, Options{DeltaExpiredStatus: http.StatusBadRequest, DeltaExpiredCode: "syncStateNotFound"})
	f.deliverN(t, 2)
	tok := f.appToken(t, GraphAudience+"/.default")
	_, last, _ := f.collect(t, "/v1.0/users/"+testShared+"/mailFolders/inbox/messages/delta", tok, "Prefer", immutable)
	f.s.ExpireDeltaTokens()
	wantGraphError(t, f.graph(t, "GET", last["@odata.deltaLink"].(string), tok, nil), http.StatusBadRequest, "syncStateNotFound")
}

// TestUSGovCloudHasNoUploadSessions: played as a US Government L4 or L5 cloud, the
// stand-in answers createUploadSession as Graph answers a path it does not know; attaching
// under 4 MB still works. The global cloud opens the session.
func TestUSGovCloudHasNoUploadSessions(t *testing.T) {
	for _, cloud := range []string{CloudUSGovL4, CloudUSGovL5, CloudGlobal} {
		t.Run("cloud="+cloud, func(t *testing.T) {
			f := newFixture(t, Options{Cloud: cloud})
			tok := f.appToken(t, GraphAudience+"/.default")
			raw := []byte("From: support@contoso.example\r\nTo: ana@example.net\r\nSubject: Scan\r\n\r\nAttached.\r\n")
			g := f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages", tok, []byte(base64.StdEncoding.EncodeToString(raw)), "Content-Type", "text/plain")
			if g.status != 201 {
				t.Fatalf("draft: %d %s", g.status, g.body)
			}
			base := "/v1.0/users/" + testShared + "/messages/" + g.json(t)["id"].(string) + "/attachments"
			g = f.graph(t, "POST", base+"/createUploadSession", tok,
				map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "scan.pdf", "size": 5 << 20}})
			if cloud == CloudGlobal {
				if g.status != 201 {
					t.Fatalf("global cloud: createUploadSession %d %s", g.status, g.body)
				}
				return
			}
			if msg := wantGraphError(t, g, http.StatusBadRequest, "BadRequest"); !strings.Contains(msg, "'createUploadSession'") {
				t.Errorf("message %q does not name the segment", msg)
			}
			small := map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "note.txt", "contentBytes": []byte("hello")}
			if g := f.graph(t, "POST", base, tok, small); g.status != 201 {
				t.Errorf("a small attachment: %d %s", g.status, g.body)
			}
		})
	}
	if _, err := Start(Options{Cloud: "mars"}); err == nil {
		t.Error("an unknown cloud was taken")
	}
}

// TestUploadBudgetPerMailbox: request bodies count against the mailbox's upload budget,
// upload-session ranges too; beyond it 429 ApplicationThrottled with Retry-After until the
// window ends; after the window uploads pass again; reads are not counted.
func TestUploadBudgetPerMailbox(t *testing.T) {
	f := newFixture(t, Options{UploadLimit: 1 << 20, UploadWindow: time.Minute})
	tok := f.appToken(t, GraphAudience+"/.default")
	send := "/v1.0/users/" + testShared + "/sendMail"
	mime := func(i, size int) []byte {
		raw := fmt.Appendf(nil, "From: support@contoso.example\r\nTo: ana@example.net\r\nSubject: %d\r\n\r\n%s\r\n", i, strings.Repeat("x", size))
		return []byte(base64.StdEncoding.EncodeToString(raw))
	}
	if g := f.graph(t, "POST", send, tok, mime(1, 500_000), "Content-Type", "text/plain"); g.status != 202 {
		t.Fatalf("first send: %d %s", g.status, g.body)
	}
	if n := f.s.Uploaded(testShared); n < 600_000 {
		t.Errorf("Uploaded %d after a send of 667 kB", n)
	}
	f.s.Advance(20 * time.Second)
	g := f.graph(t, "POST", send, tok, mime(2, 500_000), "Content-Type", "text/plain")
	wantGraphError(t, g, http.StatusTooManyRequests, "ApplicationThrottled")
	if ra, err := strconv.Atoi(g.header.Get("Retry-After")); err != nil || ra != 40 {
		t.Errorf("Retry-After %q, want 40 (seconds until the window ends)", g.header.Get("Retry-After"))
	}
	if len(f.s.Sent(testShared)) != 1 {
		t.Errorf("a throttled send was carried out")
	}
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Errorf("a read while the upload budget is used up: %d", g.status)
	}
	if g := f.graph(t, "GET", "/v1.0/users/"+testUser+"/mailFolders/inbox/messages", tok, nil); g.status != 200 {
		t.Errorf("another mailbox: %d", g.status)
	}
	f.s.Advance(40 * time.Second)
	if g := f.graph(t, "POST", send, tok, mime(2, 500_000), "Content-Type", "text/plain"); g.status != 202 {
		t.Fatalf("send after the window: %d %s", g.status, g.body)
	}

	// Upload-session ranges count too.
	f.s.Advance(time.Minute)
	raw := []byte("From: support@contoso.example\r\nTo: ana@example.net\r\nSubject: Scan\r\n\r\nAttached.\r\n")
	g = f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages", tok, []byte(base64.StdEncoding.EncodeToString(raw)), "Content-Type", "text/plain")
	base := "/v1.0/users/" + testShared + "/messages/" + g.json(t)["id"].(string) + "/attachments/createUploadSession"
	size := 3 << 20
	g = f.graph(t, "POST", base, tok, map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "scan.pdf", "size": size}})
	if g.status != 201 {
		t.Fatalf("createUploadSession: %d %s", g.status, g.body)
	}
	uploadURL := g.json(t)["uploadUrl"].(string)
	put := func(start, end int) *http.Response {
		req, _ := http.NewRequest(http.MethodPut, uploadURL, bytes.NewReader(make([]byte, end-start+1)))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	half := 512 << 10
	if resp := put(0, half-1); resp.StatusCode != 200 {
		t.Fatalf("first range: %d", resp.StatusCode)
	}
	if resp := put(half, 3*half-1); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a range over the budget: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	f.s.Advance(time.Minute)
	if resp := put(half, 3*half-1); resp.StatusCode != 200 {
		t.Fatalf("the range again after the window: %d", resp.StatusCode)
	}
}

// TestMailboxConcurrencyBelowFour: MaxConcurrent below 4 answers the third of three
// concurrent requests with Microsoft's MailboxConcurrency 429.
func TestMailboxConcurrencyBelowFour(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrent: 2})
	tok := f.appToken(t, GraphAudience+"/.default")
	f.s.SetLatency(300 * time.Millisecond)
	var wg sync.WaitGroup
	results := make(chan gcall, 3)
	for range 3 {
		wg.Go(func() { results <- f.graph(t, "GET", inboxPath, tok, nil) })
	}
	wg.Wait()
	close(results)
	var throttled []gcall
	for g := range results {
		if g.status == http.StatusTooManyRequests {
			throttled = append(throttled, g)
		}
	}
	if len(throttled) != 1 {
		t.Fatalf("%d of 3 concurrent requests throttled, want 1", len(throttled))
	}
	if msg := wantGraphError(t, throttled[0], 429, "ApplicationThrottled"); msg != "Application is over its MailboxConcurrency limit." {
		t.Errorf("message %q", msg)
	}
}
