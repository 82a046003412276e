package mstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const immutable = `IdType="ImmutableId"`

// gcall is one Graph call of a test.
type gcall struct {
	status int
	header http.Header
	body   []byte
}

func (g gcall) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(g.body, &m); err != nil {
		t.Fatalf("not JSON (%d): %s", g.status, g.body)
	}
	return m
}

// graph calls the Graph host; path is below GraphURL() or a full URL (nextLink).
func (f *fixture) graph(t testing.TB, method, path, token string, body any, header ...string) gcall {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = f.s.GraphURL() + path
	}
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	status, h, out := graphRequest(t, method, u, token, raw, header...)
	return gcall{status, h, out}
}

// wantGraphError checks Graph's error envelope and request-id header.
func wantGraphError(t *testing.T, g gcall, status int, code string) string {
	t.Helper()
	if g.status != status {
		t.Errorf("status %d, want %d: %s", g.status, status, g.body)
	}
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Date            string `json:"date"`
				RequestID       string `json:"request-id"`
				ClientRequestID string `json:"client-request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if err := json.Unmarshal(g.body, &env); err != nil {
		t.Fatalf("not Graph's error envelope: %s", g.body)
	}
	e := env.Error
	if e.Code != code {
		t.Errorf("code %q, want %q (%s)", e.Code, code, e.Message)
	}
	if e.Message == "" || e.InnerError.Date == "" || e.InnerError.ClientRequestID == "" {
		t.Errorf("envelope incomplete: %s", g.body)
	}
	if rid := g.header.Get("request-id"); rid == "" || rid != e.InnerError.RequestID {
		t.Errorf("request-id header %q, innerError %q", rid, e.InnerError.RequestID)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", e.InnerError.Date); err != nil {
		t.Errorf("innerError.date %q", e.InnerError.Date)
	}
	return e.Message
}

func msgRaw(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@example.net>\r\nTo: support@contoso.example\r\nSubject: Question %d\r\n"+
		"Date: Fri, 20 Nov 2026 09:%02d:00 +0000\r\nMessage-ID: <q%d@example.net>\r\n\r\nHello %d\r\n", i, i, i, i%60, i, i)
}

func (f *fixture) deliverN(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id, err := f.s.Deliver(testShared, "inbox", msgRaw(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		f.s.Advance(time.Second) // distinct receivedDateTime, newest last
	}
	return ids
}

const inboxPath = "/v1.0/users/" + testShared + "/mailFolders/inbox/messages"

func TestGraphErrors(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	ids := f.deliverN(t, 1)

	wantGraphError(t, f.graph(t, "GET", inboxPath, "", nil), 401, "InvalidAuthenticationToken")
	g := f.graph(t, "GET", inboxPath, "garbage", nil, "client-request-id", "7c1d3f5a-0b1e-4a52-9d3c-1f2e3d4c5b6a")
	wantGraphError(t, g, 401, "InvalidAuthenticationToken")
	if g.header.Get("client-request-id") != "7c1d3f5a-0b1e-4a52-9d3c-1f2e3d4c5b6a" {
		t.Errorf("client-request-id not echoed")
	}
	if msg := wantGraphError(t, f.graph(t, "GET", inboxPath, f.appToken(t, ExchangeAudience+"/.default"), nil), 401, "InvalidAuthenticationToken"); !strings.Contains(msg, "Invalid audience") {
		t.Errorf("Exchange token at Graph: %q", msg)
	}

	// Roles, but none for mail: 403.
	f.app.SetRoles(RoleUserReadAll)
	noMail := f.appToken(t, GraphAudience+"/.default")
	f.app.SetRoles(RoleMailReadWrite, RoleMailSend)
	if msg := wantGraphError(t, f.graph(t, "GET", inboxPath, noMail, nil), 403, "ErrorAccessDenied"); msg != msgAccessDenied {
		t.Errorf("no mail role: %q", msg)
	}
	// Read-only app cannot send.
	f.app.SetRoles(RoleMailRead)
	readOnly := f.appToken(t, GraphAudience+"/.default")
	f.app.SetRoles(RoleMailReadWrite, RoleMailSend)
	if g := f.graph(t, "GET", inboxPath, readOnly, nil); g.status != 200 {
		t.Errorf("Mail.Read listing: %d", g.status)
	}
	wantGraphError(t, f.graph(t, "PATCH", "/v1.0/users/"+testShared+"/messages/"+ids[0], readOnly, map[string]any{"isRead": true}), 403, "ErrorAccessDenied")

	// Application access policy: only the mailboxes in scope.
	f.app.SetAccessPolicy(&AccessPolicy{Mailboxes: []string{testUser}})
	if msg := wantGraphError(t, f.graph(t, "GET", inboxPath, tok, nil), 403, "ErrorAccessDenied"); msg != msgRAOP {
		t.Errorf("RAOP message %q", msg)
	}
	if g := f.graph(t, "GET", "/v1.0/users/"+testUser+"/mailFolders/inbox/messages", tok, nil); g.status != 200 {
		t.Errorf("mailbox inside the policy: %d %s", g.status, g.body)
	}
	f.app.SetAccessPolicy(&AccessPolicy{Deny: true, Mailboxes: []string{testUser}})
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Errorf("DenyAccess policy, other mailbox: %d", g.status)
	}
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testUser+"/mailFolders/inbox/messages", tok, nil), 403, "ErrorAccessDenied")
	f.app.SetAccessPolicy(nil)

	// Unlicensed, unknown user, stale and malformed ids, /me with an app token.
	if _, err := f.tenant.AddUser(UserConfig{UPN: "onprem@contoso.example", NoMailbox: true}); err != nil {
		t.Fatal(err)
	}
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/onprem@contoso.example/mailFolders/inbox/messages", tok, nil), 404, "MailboxNotEnabledForRESTAPI")
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/nobody@contoso.example/messages", tok, nil), 404, "ErrorInvalidUser")
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/AAMkAGI2TG93AAAxxxxxxxxxxxxxxxxxxxxxxxx=", tok, nil), 404, "ErrorItemNotFound")
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/123", tok, nil), 400, "ErrorInvalidIdMalformed")
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testShared+"/mailFolders/Handled/messages", tok, nil), 400, "ErrorInvalidIdMalformed")
	wantGraphError(t, f.graph(t, "GET", "/v1.0/me/messages", tok, nil), 400, "BadRequest")

	// Token expiry by the server's clock.
	f.s.Advance(DefaultAccessTokenLifetime)
	if msg := wantGraphError(t, f.graph(t, "GET", inboxPath, tok, nil), 401, "InvalidAuthenticationToken"); msg != msgTokenExpired {
		t.Errorf("expired: %q", msg)
	}
	if f.s.Requests(f.app.ClientID()) < 10 {
		t.Errorf("Requests = %d", f.s.Requests(f.app.ClientID()))
	}

	// Directory read: needs User.Read.All.
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testShared, f.appToken(t, GraphAudience+"/.default"), nil), 403, "Authorization_RequestDenied")
	f.app.SetRoles(RoleMailReadWrite, RoleUserReadAll)
	tok = f.appToken(t, GraphAudience+"/.default")
	if m := f.graph(t, "GET", "/v1.0/users/"+testShared, tok, nil).json(t); m["userPrincipalName"] != testShared || m["id"] != f.shared.ObjectID() {
		t.Errorf("user %v", m)
	}
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/nobody@contoso.example", tok, nil), 404, "Request_ResourceNotFound")
}

// collect follows nextLinks verbatim and returns every item.
func (f *fixture) collect(t testing.TB, first, tok string, header ...string) (items []map[string]any, last map[string]any, pages int) {
	t.Helper()
	link := first
	for link != "" {
		g := f.graph(t, "GET", link, tok, nil, header...)
		if g.status != 200 {
			t.Fatalf("GET %s: %d %s", link, g.status, g.body)
		}
		page := g.json(t)
		pages++
		for _, v := range page["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		next, _ := page["@odata.nextLink"].(string)
		if _, both := page["@odata.deltaLink"]; both && next != "" {
			t.Fatalf("a page with both nextLink and deltaLink")
		}
		link, last = next, page
	}
	return items, last, pages
}

func TestListMessagesPaging(t *testing.T) {
	f := newFixture(t, Options{})
	ids := f.deliverN(t, 25)
	tok := f.appToken(t, GraphAudience+"/.default")
	items, _, pages := f.collect(t, inboxPath+"?$select=subject,receivedDateTime,isRead", tok, "Prefer", immutable)
	if pages != 3 || len(items) != 25 {
		t.Fatalf("%d items in %d pages, want 25 in 3 (default page size 10)", len(items), pages)
	}
	for i, it := range items {
		if it["id"] != ids[24-i] {
			t.Fatalf("item %d is %v, want newest first", i, it["id"])
		}
		if _, ok := it["body"]; ok || it["subject"] != "Question "+strconv.Itoa(24-i) || len(it) != 5 {
			t.Fatalf("$select not applied: %v", it)
		}
	}
	items, _, pages = f.collect(t, inboxPath+"?$top=7&$filter="+url.QueryEscape("receivedDateTime ge 2000-01-01T00:00:00Z"), tok)
	if pages != 4 || len(items) != 25 {
		t.Errorf("$top=7: %d items in %d pages", len(items), pages)
	}
	wantGraphError(t, f.graph(t, "GET", inboxPath+"?$select=nonsense", tok, nil), 400, "RequestBroker--ParseUri")
	// Finding the sent copy by internetMessageId, as the reference suggests.
	items, _, _ = f.collect(t, inboxPath+"?$filter="+url.QueryEscape("internetMessageId eq '<q3@example.net>'"), tok, "Prefer", immutable)
	if len(items) != 1 || items[0]["id"] != ids[3] {
		t.Errorf("filter by internetMessageId: %v", items)
	}
	// Full message JSON.
	m := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+ids[0], tok, nil, "Prefer", `outlook.body-content-type="text"`).json(t)
	from := m["from"].(map[string]any)["emailAddress"].(map[string]any)
	if from["address"] != "c0@example.net" || m["internetMessageId"] != "<q0@example.net>" || m["isRead"] != false ||
		m["body"].(map[string]any)["content"] != "Hello 0\r\n" || m["conversationId"] == "" {
		t.Errorf("message JSON %v", m)
	}
	m = f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+ids[0]+"?$select=internetMessageHeaders", tok, nil).json(t)
	hs, _ := m["internetMessageHeaders"].([]any)
	if len(hs) != 5 || hs[2].(map[string]any)["name"] != "Subject" {
		t.Errorf("internetMessageHeaders %v", hs)
	}
}

func TestDeltaSync(t *testing.T) {
	f := newFixture(t, Options{})
	ids := f.deliverN(t, 25)
	tok := f.appToken(t, GraphAudience+"/.default")
	hdr := []string{"Prefer", "odata.maxpagesize=10", "Prefer", immutable}
	first := "/v1.0/users/" + testShared + "/mailFolders/inbox/messages/delta?$select=subject,isRead"
	items, last, pages := f.collect(t, first, tok, hdr...)
	if pages != 3 || len(items) != 25 {
		t.Fatalf("%d items in %d pages", len(items), pages)
	}
	var got []string
	for _, it := range items {
		got = append(got, it["id"].(string))
	}
	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delta ids differ from delivered ids")
	}
	delta, _ := last["@odata.deltaLink"].(string)
	if !strings.Contains(delta, "$deltatoken=") {
		t.Fatalf("last page has no deltaLink: %v", last)
	}
	// Nothing changed: an empty round with a new deltaLink.
	items, last, _ = f.collect(t, delta, tok, hdr...)
	if len(items) != 0 || last["@odata.deltaLink"] == nil {
		t.Fatalf("empty round: %v", items)
	}
	delta = last["@odata.deltaLink"].(string)

	// Two arrive, one is marked read, one is moved out, one deleted.
	newIDs := f.deliverN(t, 2)
	if g := f.graph(t, "PATCH", "/v1.0/users/"+testShared+"/messages/"+ids[0], tok, map[string]any{"isRead": true}, "Prefer", immutable); g.status != 200 {
		t.Fatalf("PATCH: %d %s", g.status, g.body)
	}
	if g := f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages/"+ids[1]+"/move", tok, map[string]any{"destinationId": "archive"}); g.status != 201 {
		t.Fatalf("move: %d %s", g.status, g.body)
	}
	if err := f.s.DeleteMessage(testShared, ids[2]); err != nil {
		t.Fatal(err)
	}
	items, last, _ = f.collect(t, delta, tok, hdr...)
	seen := map[string]string{}
	for _, it := range items {
		kind := "changed"
		if _, ok := it["@removed"]; ok {
			kind = "removed"
		} else if _, ok := it["body"]; ok || it["subject"] == nil {
			t.Errorf("the deltaLink round forgot $select: %v", it)
		}
		seen[it["id"].(string)] = kind
	}
	wantSeen := map[string]string{newIDs[0]: "changed", newIDs[1]: "changed", ids[0]: "changed", ids[1]: "removed", ids[2]: "removed"}
	if len(seen) != len(wantSeen) {
		t.Errorf("round after changes: %v, want %v", seen, wantSeen)
	}
	for id, kind := range wantSeen {
		if seen[id] != kind {
			t.Errorf("%s: %q, want %q", id, seen[id], kind)
		}
	}
	delta = last["@odata.deltaLink"].(string)

	// A skip token in the middle of a round and the delta token expire on demand: 410.
	f.deliverN(t, 12)
	g := f.graph(t, "GET", delta, tok, nil, hdr...)
	next := g.json(t)["@odata.nextLink"].(string)
	f.s.ExpireDeltaTokens()
	wantGraphError(t, f.graph(t, "GET", next, tok, nil, hdr...), 410, "SyncStateNotFound")
	wantGraphError(t, f.graph(t, "GET", delta, tok, nil, hdr...), 410, "SyncStateNotFound")
	// Starting over lists the folder as it is now.
	items, _, _ = f.collect(t, first, tok, hdr...)
	if len(items) != 25+2+12-2 {
		t.Errorf("resync: %d items, want 37", len(items))
	}
}

func TestValueRoundTripAndMoveIDs(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	raw := []byte("Received: from mx.example.net by contoso\r\n\tfolded; Fri, 20 Nov 2026 09:00:00 +0000\r\n" +
		"From: =?utf-8?q?Bj=C3=B6rn?= <bjorn@example.org>\r\nTo: support@contoso.example\r\nSubject: 8bit body\r\n" +
		"Message-ID: <x1@example.org>\r\nIn-Reply-To: <y@contoso.example>\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, trailing spaces   \r\nlone LF\nend\r\n")
	id, err := f.s.Deliver(testShared, "", raw)
	if err != nil {
		t.Fatal(err)
	}
	g := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+id+"/$value", tok, nil)
	if g.status != 200 || !bytes.Equal(g.body, raw) {
		t.Fatalf("$value: %d, bytes equal %v", g.status, bytes.Equal(g.body, raw))
	}

	// childFolders: create, duplicate, find by name.
	folders := "/v1.0/users/" + testShared + "/mailFolders/inbox/childFolders"
	g = f.graph(t, "POST", folders, tok, map[string]any{"displayName": "Postroom-Handled"})
	if g.status != 201 {
		t.Fatalf("create folder: %d %s", g.status, g.body)
	}
	handled := g.json(t)["id"].(string)
	wantGraphError(t, f.graph(t, "POST", folders, tok, map[string]any{"displayName": "postroom-handled"}), 409, "ErrorFolderExists")
	items, _, _ := f.collect(t, folders+"?$filter="+url.QueryEscape("displayName eq 'Postroom-Handled'"), tok)
	if len(items) != 1 || items[0]["id"] != handled {
		t.Errorf("find folder: %v", items)
	}

	// Move with immutable ids: the id stays.
	g = f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages/"+id+"/move", tok, map[string]any{"destinationId": handled}, "Prefer", immutable)
	if m := g.json(t); g.status != 201 || m["id"] != id || m["parentFolderId"] != handled {
		t.Fatalf("move (immutable): %d %v", g.status, m)
	}
	// Default ids change on move; the old one is then stale.
	restID := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+id+"?$select=subject", tok, nil).json(t)["id"].(string)
	if restID == id {
		t.Fatalf("default id equals the immutable id")
	}
	g = f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages/"+restID+"/move", tok, map[string]any{"destinationId": "inbox"})
	moved := g.json(t)["id"].(string)
	if g.status != 201 || moved == restID {
		t.Fatalf("move (default ids): %d, id %s -> %s", g.status, restID, moved)
	}
	wantGraphError(t, f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+restID, tok, nil), 404, "ErrorItemNotFound")
	if g := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+id+"/$value", tok, nil); !bytes.Equal(g.body, raw) {
		t.Errorf("$value after two moves differs")
	}
	m, _ := f.s.Message(testShared, id)
	if m.Folder != "Inbox" || m.RestID != moved {
		t.Errorf("mailbox sees %+v", m)
	}
}

func TestSendMail(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	send := "/v1.0/users/" + testShared + "/sendMail"
	raw := []byte("From: Contoso Support <support@contoso.example>\r\nTo: Ana <ana@example.net>\r\nBcc: audit@contoso.example\r\n" +
		"Subject: Re: Order 1234\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@contoso.example>\r\n" +
		"In-Reply-To: <abc@example.net>\r\nReferences: <abc@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe are on it.\r\n")
	body := []byte(base64.StdEncoding.EncodeToString(raw))
	g := f.graph(t, "POST", send, tok, body, "Content-Type", "text/plain")
	if g.status != 202 || len(g.body) != 0 {
		t.Fatalf("sendMail MIME: %d %q", g.status, g.body)
	}
	sent := f.s.Sent(testShared)
	if len(sent) != 1 || !slices.Equal(sent[0].Recipients, []string{"ana@example.net", "audit@contoso.example"}) {
		t.Fatalf("sent %+v", sent)
	}
	if bytes.Contains(sent[0].Raw, []byte("Bcc:")) || !bytes.Equal(sent[0].Raw, bytes.Replace(raw, []byte("Bcc: audit@contoso.example\r\n"), nil, 1)) {
		t.Errorf("sent raw differs from the MIME sent (Bcc removed):\n%s", sent[0].Raw)
	}
	copies, _ := f.s.Messages(testShared, "sentitems")
	if len(copies) != 1 || !bytes.Equal(copies[0].Raw, raw) || copies[0].InternetMessageID != "<reply-1@contoso.example>" {
		t.Fatalf("Sent Items copy %+v", copies)
	}
	if g := f.graph(t, "GET", "/v1.0/users/"+testShared+"/messages/"+copies[0].ID+"/$value", tok, nil); !bytes.Equal(g.body, raw) {
		t.Errorf("$value of the sent copy differs")
	}

	// JSON with internetMessageHeaders; no copy when saveToSentItems is false.
	g = f.graph(t, "POST", send, tok, map[string]any{"message": map[string]any{
		"subject": "Hello", "body": map[string]any{"contentType": "HTML", "content": "<p>Hi</p>"},
		"toRecipients":           []any{map[string]any{"emailAddress": map[string]any{"address": "ana@example.net", "name": "Ana"}}},
		"internetMessageHeaders": []any{map[string]any{"name": "X-Postroom-Ticket", "value": "T-1234"}},
		"attachments": []any{map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "label.pdf",
			"contentType": "application/pdf", "contentBytes": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 label"))}},
	}, "saveToSentItems": false})
	if g.status != 202 {
		t.Fatalf("sendMail JSON: %d %s", g.status, g.body)
	}
	sent = f.s.Sent(testShared)
	last := sent[len(sent)-1]
	v := parseView(last.Raw)
	if !bytes.Contains(last.Raw, []byte("X-Postroom-Ticket: T-1234")) || v.subject != "Hello" || v.htmlBody != "<p>Hi</p>" ||
		len(v.attachments) != 1 || string(v.attachments[0].content) != "%PDF-1.4 label" || last.SavedToSentItems {
		t.Errorf("JSON send produced:\n%s", last.Raw)
	}
	if copies, _ := f.s.Messages(testShared, "sentitems"); len(copies) != 1 {
		t.Errorf("saveToSentItems false still saved a copy")
	}

	wantGraphError(t, f.graph(t, "POST", send, tok, []byte("!!not base64!!"), "Content-Type", "text/plain"), 400, "ErrorMimeContentInvalidBase64String")
	wantGraphError(t, f.graph(t, "POST", send, tok, map[string]any{"message": map[string]any{"subject": "x",
		"toRecipients":           []any{map[string]any{"emailAddress": map[string]any{"address": "a@example.net"}}},
		"internetMessageHeaders": []any{map[string]any{"name": "Reply-To", "value": "x"}}}}), 400, "InvalidInternetMessageHeader")
	other := bytes.Replace(raw, []byte("support@contoso.example"), []byte("ceo@contoso.example"), 1)
	wantGraphError(t, f.graph(t, "POST", send, tok, []byte(base64.StdEncoding.EncodeToString(other)), "Content-Type", "text/plain"), 403, "ErrorSendAsDenied")
	noRcpt := []byte("From: support@contoso.example\r\nSubject: none\r\n\r\nx\r\n")
	wantGraphError(t, f.graph(t, "POST", send, tok, []byte(base64.StdEncoding.EncodeToString(noRcpt)), "Content-Type", "text/plain"), 400, "ErrorInvalidRecipients")
}

func TestDraftUploadSessionSend(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	raw := []byte("From: support@contoso.example\r\nTo: ana@example.net\r\nSubject: Your scan\r\nMessage-ID: <scan@contoso.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nAttached.\r\n")
	g := f.graph(t, "POST", "/v1.0/users/"+testShared+"/messages", tok, []byte(base64.StdEncoding.EncodeToString(raw)), "Content-Type", "text/plain", "Prefer", immutable)
	if g.status != 201 || g.json(t)["isDraft"] != true {
		t.Fatalf("draft from MIME: %d %s", g.status, g.body)
	}
	draft := g.json(t)["id"].(string)
	base := "/v1.0/users/" + testShared + "/messages/" + draft

	wantGraphError(t, f.graph(t, "POST", base+"/attachments/createUploadSession", tok,
		map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "huge.bin", "size": MaxUploadSessionBytes + 1}}), 400, "ErrorMessageSizeExceeded")

	content := make([]byte, 5<<20+123)
	for i := range content {
		content[i] = byte(i * 7)
	}
	g = f.graph(t, "POST", base+"/attachments/createUploadSession", tok,
		map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "scan.pdf", "size": len(content), "contentType": "application/pdf"}})
	if g.status != 201 {
		t.Fatalf("createUploadSession: %d %s", g.status, g.body)
	}
	sess := g.json(t)
	uploadURL := sess["uploadUrl"].(string)
	if r := sess["nextExpectedRanges"].([]any); len(r) != 1 || r[0] != "0-" {
		t.Errorf("nextExpectedRanges %v", r)
	}
	put := func(start, end int) gcall {
		req, _ := http.NewRequest(http.MethodPut, uploadURL, bytes.NewReader(content[start:end+1]))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(content)))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return gcall{resp.StatusCode, resp.Header, b.Bytes()}
	}
	chunk := 3932160 // 12 x 320 KiB
	wantGraphError(t, put(100, chunk), 416, "InvalidContentRange")
	g = put(0, chunk-1)
	if g.status != 200 || g.json(t)["nextExpectedRanges"].([]any)[0] != strconv.Itoa(chunk)+"-" {
		t.Fatalf("first range: %d %s", g.status, g.body)
	}
	g = put(chunk, len(content)-1)
	if g.status != 201 || !strings.Contains(g.header.Get("Location"), "/attachments('") {
		t.Fatalf("last range: %d %s %v", g.status, g.body, g.header)
	}
	if g := put(0, 10); g.status != 404 {
		t.Errorf("PUT after completion: %d", g.status)
	}
	if g := f.graph(t, "POST", base+"/send", tok, nil); g.status != 202 {
		t.Fatalf("send draft: %d %s", g.status, g.body)
	}
	sent := f.s.Sent(testShared)
	if len(sent) != 1 {
		t.Fatalf("sent %d", len(sent))
	}
	v := parseView(sent[0].Raw)
	if len(v.attachments) != 1 || !bytes.Equal(v.attachments[0].content, content) || v.messageID != "<scan@contoso.example>" || v.text != "Attached.\r\n" {
		t.Errorf("sent message: %d attachments, id %s, text %q", len(v.attachments), v.messageID, v.text)
	}
	m, _ := f.s.Message(testShared, draft)
	if m.Folder != "Sent Items" || m.IsDraft {
		t.Errorf("draft after send: %+v", m.Folder)
	}
}

func TestThrottlingAndFaults(t *testing.T) {
	f := newFixture(t, Options{RateLimit: 5, RateWindow: 10 * time.Second})
	tok := f.appToken(t, GraphAudience+"/.default")
	f.deliverN(t, 1)

	// Concurrency: six requests at once for one mailbox while each takes a while.
	f.s.SetLatency(300 * time.Millisecond)
	var wg sync.WaitGroup
	results := make(chan gcall, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- f.graph(t, "GET", inboxPath, tok, nil)
		}()
	}
	wg.Wait()
	close(results)
	f.s.SetLatency(0)
	throttled := 0
	for g := range results {
		if g.status == 429 {
			throttled++
			wantGraphError(t, g, 429, "ApplicationThrottled")
			if _, err := strconv.Atoi(g.header.Get("Retry-After")); err != nil {
				t.Errorf("Retry-After %q is not an integer", g.header.Get("Retry-After"))
			}
		}
	}
	if throttled != 2 || f.s.MaxInFlight(f.app.ClientID(), testShared) <= DefaultMaxConcurrent {
		t.Errorf("%d throttled, max in flight %d; want 2 and over %d", throttled, f.s.MaxInFlight(f.app.ClientID(), testShared), DefaultMaxConcurrent)
	}
	// Rate: 4 requests went through above, so the 2nd from now is over the limit of 5.
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Fatalf("5th request: %d", g.status)
	}
	g := f.graph(t, "GET", inboxPath, tok, nil)
	wantGraphError(t, g, 429, "TooManyRequests")
	if ra, _ := strconv.Atoi(g.header.Get("Retry-After")); ra < 1 || ra > 10 {
		t.Errorf("Retry-After %q", g.header.Get("Retry-After"))
	}
	// Other mailboxes are not affected.
	if g := f.graph(t, "GET", "/v1.0/users/"+testUser+"/mailFolders/inbox/messages", tok, nil); g.status != 200 {
		t.Errorf("other mailbox: %d", g.status)
	}
	f.s.Advance(10 * time.Second)
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Fatalf("after the window: %d", g.status)
	}

	// Injected faults.
	f.s.FailNext(Fault{Count: 2, Status: 429, RetryAfter: 1500 * time.Millisecond, PathContains: "/messages"})
	f.s.FailNext(Fault{Status: 503, RetryAfter: time.Second})
	f.s.FailNext(Fault{Status: 504})
	for _, want := range []struct {
		status int
		code   string
		retry  string
	}{{429, "TooManyRequests", "2"}, {429, "TooManyRequests", "2"}, {503, "ServiceNotAvailable", "1"}, {504, "UnknownError", ""}} {
		g := f.graph(t, "GET", inboxPath, tok, nil)
		wantGraphError(t, g, want.status, want.code)
		if g.header.Get("Retry-After") != want.retry {
			t.Errorf("Retry-After %q, want %q", g.header.Get("Retry-After"), want.retry)
		}
	}
	f.s.FailNext(Fault{Drop: true})
	req, _ := http.NewRequest(http.MethodGet, f.s.GraphURL()+inboxPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	// A fresh connection: Go's client retries a GET whose reused connection dies.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped connection answered %d", resp.StatusCode)
	}
	if g := f.graph(t, "GET", inboxPath, tok, nil); g.status != 200 {
		t.Errorf("after the faults: %d", g.status)
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	ids := f.deliverN(t, 1)
	msg := "/users/" + testShared + "/messages/" + ids[0]
	g := f.graph(t, "POST", "/v1.0/$batch", tok, map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": msg + "?$select=subject"},
		map[string]any{"id": "2", "dependsOn": []string{"1"}, "method": "PATCH", "url": msg,
			"headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"isRead": true}},
		map[string]any{"id": "3", "method": "GET", "url": "/users/" + testShared + "/messages/AAMkAGI2TG93AAAstalestalestalestalestale="},
		map[string]any{"id": "4", "dependsOn": []string{"3"}, "method": "GET", "url": msg},
		map[string]any{"id": "5", "method": "GET", "url": msg + "/$value"},
	}}, "Prefer", immutable)
	if g.status != 200 {
		t.Fatalf("batch: %d %s", g.status, g.body)
	}
	var out struct {
		Responses []struct {
			ID     string            `json:"id"`
			Status int               `json:"status"`
			Body   json.RawMessage   `json:"body"`
			Header map[string]string `json:"headers"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(g.body, &out); err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for _, r := range out.Responses {
		status[r.ID] = r.Status
		if r.ID == "1" && !strings.Contains(string(r.Body), `"subject":"Question 0"`) {
			t.Errorf("member 1 body %s", r.Body)
		}
		if r.ID == "3" && !strings.Contains(string(r.Body), "ErrorItemNotFound") {
			t.Errorf("member 3 body %s", r.Body)
		}
		if r.ID == "5" {
			var raw []byte
			if err := json.Unmarshal(r.Body, &raw); err != nil || !bytes.Equal(raw, msgRaw(0)) {
				t.Errorf("member 5 ($value) body %s", r.Body)
			}
		}
	}
	if !maps(status, map[string]int{"1": 200, "2": 200, "3": 404, "4": 424, "5": 200}) {
		t.Errorf("member statuses %v", status)
	}
	if m, _ := f.s.Message(testShared, ids[0]); !m.IsRead {
		t.Errorf("PATCH in the batch did not mark the message read")
	}
	var many []any
	for i := range 21 {
		many = append(many, map[string]any{"id": strconv.Itoa(i), "method": "GET", "url": msg})
	}
	wantGraphError(t, f.graph(t, "POST", "/v1.0/$batch", tok, map[string]any{"requests": many}), 400, "BadRequest")
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRepliesAndInlineAttachments(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.appToken(t, GraphAudience+"/.default")
	raw := []byte("From: Ana <ana@example.net>\r\nTo: support@contoso.example, bob@example.net\r\nCc: carol@example.net\r\n" +
		"Subject: Order 1234\r\nMessage-ID: <abc@example.net>\r\nReferences: <root@example.net>\r\n\r\nWhere is it?\r\n")
	id, _ := f.s.Deliver(testShared, "inbox", raw)
	base := "/v1.0/users/" + testShared + "/messages/"

	// createReplyAll: a draft with threading headers and everyone but ourselves.
	g := f.graph(t, "POST", base+id+"/createReplyAll", tok, map[string]any{"comment": "We are looking into it."}, "Prefer", immutable)
	if g.status != 201 {
		t.Fatalf("createReplyAll: %d %s", g.status, g.body)
	}
	draft := g.json(t)["id"].(string)
	g = f.graph(t, "POST", base+draft+"/attachments", tok, map[string]any{"@odata.type": "#microsoft.graph.fileAttachment",
		"name": "note.txt", "contentType": "text/plain", "contentBytes": base64.StdEncoding.EncodeToString([]byte("small file"))})
	if g.status != 201 {
		t.Fatalf("inline attachment: %d %s", g.status, g.body)
	}
	if g := f.graph(t, "PATCH", base+draft, tok, map[string]any{"subject": "RE: Order 1234 (ticket T-1)"}); g.status != 200 {
		t.Fatalf("PATCH draft: %d %s", g.status, g.body)
	}
	if g := f.graph(t, "POST", base+draft+"/send", tok, nil); g.status != 202 || len(g.body) != 0 {
		t.Fatalf("send: %d %s", g.status, g.body)
	}
	sent := f.s.Sent(testShared)
	v := parseView(sent[0].Raw)
	if v.subject != "RE: Order 1234 (ticket T-1)" || !strings.Contains(v.text, "We are looking into it.") ||
		!slices.Equal(sent[0].Recipients, []string{"ana@example.net", "bob@example.net", "carol@example.net"}) ||
		len(v.attachments) != 1 || string(v.attachments[0].content) != "small file" {
		t.Errorf("reply-all sent: %+v\n%s", sent[0].Recipients, sent[0].Raw)
	}
	h := parseHeader(sent[0].Raw)
	if h.Get("In-Reply-To") != "<abc@example.net>" || h.Get("References") != "<root@example.net> <abc@example.net>" {
		t.Errorf("threading headers %q / %q", h.Get("In-Reply-To"), h.Get("References"))
	}
	// One-step forward.
	g = f.graph(t, "POST", base+id+"/forward", tok, map[string]any{"comment": "FYI",
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "billing@contoso.example"}}}})
	if g.status != 202 {
		t.Fatalf("forward: %d %s", g.status, g.body)
	}
	sent = f.s.Sent(testShared)
	if fw := sent[len(sent)-1]; !slices.Equal(fw.Recipients, []string{"billing@contoso.example"}) || parseView(fw.Raw).subject != "FW: Order 1234" {
		t.Errorf("forward: %+v", fw.Recipients)
	}
	// Attachments cannot be added to received mail.
	wantGraphError(t, f.graph(t, "POST", base+id+"/attachments", tok, map[string]any{"@odata.type": "#microsoft.graph.fileAttachment",
		"name": "x", "contentBytes": ""}), 400, "ErrorInvalidOperation")
}

// TestAppTokenWithoutRoles: an app-only token without roles (admin consent not granted)
// is answered 401 NoPermissionsInAccessToken with Microsoft's message and innerError
// (ms365-protocol.md §8.4), on every Graph call, not 403; a token issued after consent
// works.
func TestAppTokenWithoutRoles(t *testing.T) {
	f := newFixture(t, Options{})
	f.app.SetAdminConsent(false)
	noRoles := f.appToken(t, GraphAudience+"/.default")
	for _, c := range []struct{ method, path string }{
		{"GET", inboxPath},
		{"POST", "/v1.0/users/" + testShared + "/sendMail"},
		{"GET", "/v1.0/subscriptions"},
		{"POST", "/v1.0/$batch"},
	} {
		g := f.graph(t, c.method, c.path, noRoles, map[string]any{})
		if g.status != 401 {
			t.Errorf("%s %s: %d, want 401", c.method, c.path, g.status)
		}
		var env struct {
			Error struct {
				Code       string         `json:"code"`
				Message    string         `json:"message"`
				InnerError map[string]any `json:"innerError"`
			} `json:"error"`
		}
		if err := json.Unmarshal(g.body, &env); err != nil {
			t.Fatalf("%s %s: not Graph's error envelope: %s", c.method, c.path, g.body)
		}
		e := env.Error
		if e.Code != "NoPermissionsInAccessToken" || e.Message != "The token contains no permissions, or permissions can not be understood." {
			t.Errorf("%s %s: %q %q", c.method, c.path, e.Code, e.Message)
		}
		if e.InnerError["requestId"] != g.header.Get("request-id") || e.InnerError["errorUrl"] != "https://aka.ms/autherrors#error-InvalidGrant" ||
			e.InnerError["oAuthEventOperationId"] == nil || e.InnerError["date"] == nil {
			t.Errorf("%s %s: innerError %v, request-id %q", c.method, c.path, e.InnerError, g.header.Get("request-id"))
		}
		if !strings.HasPrefix(g.header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s %s: WWW-Authenticate %q", c.method, c.path, g.header.Get("WWW-Authenticate"))
		}
	}
	f.app.SetAdminConsent(true)
	if g := f.graph(t, "GET", inboxPath, f.appToken(t, GraphAudience+"/.default"), nil); g.status != 200 {
		t.Errorf("after admin consent: %d %s", g.status, g.body)
	}
}

// TestDelegatedGraph: a person's token opens their own mailbox with Mail.ReadWrite and
// Mail.Send; another user's or a shared mailbox needs Mail.ReadWrite.Shared (reading,
// marking, moving) and Mail.Send.Shared (sending) in the token, FullAccess to read and
// SendAs to send, as Graph does (ms365-protocol.md §8.1).
func TestDelegatedGraph(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.userToken(t, ScopeGraphMailReadWrite+" "+ScopeGraphMailSend).AccessToken
	ids := f.deliverN(t, 1)
	if _, err := f.s.Deliver(testUser, "inbox", msgRaw(1)); err != nil {
		t.Fatal(err)
	}
	items, _, _ := f.collect(t, "/v1.0/me/mailFolders/inbox/messages", tok)
	if len(items) != 1 {
		t.Errorf("/me: %d items", len(items))
	}
	if g := f.graph(t, "GET", "/v1.0/users/"+testUser+"/mailFolders/inbox/messages", tok, nil); g.status != 200 {
		t.Errorf("own mailbox by address: %d %s", g.status, g.body)
	}
	send := map[string]any{"message": map[string]any{"subject": "x",
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "c1@example.net"}}}}}
	if g := f.graph(t, "POST", "/v1.0/me/sendMail", tok, send); g.status != 202 {
		t.Errorf("own mailbox sends with Mail.Send: %d %s", g.status, g.body)
	}

	// The shared mailbox, with FullAccess and SendAs but the plain scopes: refused.
	f.user.GrantFullAccess(testShared)
	f.user.GrantSendAs(testShared)
	patch := map[string]any{"isRead": true}
	msgPath := "/v1.0/users/" + testShared + "/messages/" + ids[0]
	wantGraphError(t, f.graph(t, "GET", inboxPath, tok, nil), 403, "ErrorAccessDenied")
	wantGraphError(t, f.graph(t, "PATCH", msgPath, tok, patch), 403, "ErrorAccessDenied")
	wantGraphError(t, f.graph(t, "POST", "/v1.0/users/"+testShared+"/sendMail", tok, send), 403, "ErrorAccessDenied")

	// With the .Shared scopes (consented by the admin): read, mark and send.
	f.app.SetScopes(ScopeGraphMailReadWriteShared, ScopeGraphMailSendShared)
	shared := f.userToken(t, ScopeGraphMailReadWriteShared+" "+ScopeGraphMailSendShared).AccessToken
	if g := f.graph(t, "GET", inboxPath, shared, nil); g.status != 200 {
		t.Errorf("shared mailbox with Mail.ReadWrite.Shared and FullAccess: %d %s", g.status, g.body)
	}
	if g := f.graph(t, "PATCH", msgPath, shared, patch); g.status != 200 {
		t.Errorf("mark read with Mail.ReadWrite.Shared: %d %s", g.status, g.body)
	}
	if g := f.graph(t, "POST", "/v1.0/users/"+testShared+"/sendMail", shared, send); g.status != 202 {
		t.Errorf("send with Mail.Send.Shared and SendAs: %d %s", g.status, g.body)
	}
	// The .Shared scopes cover the user's own mailbox too.
	if g := f.graph(t, "POST", "/v1.0/me/sendMail", shared, send); g.status != 202 {
		t.Errorf("own mailbox sends with Mail.Send.Shared: %d %s", g.status, g.body)
	}

	// Read-only shared scope: reads, but neither marks nor sends.
	f.app.SetScopes(ScopeGraphMailReadShared)
	readOnly := f.userToken(t, ScopeGraphMailReadShared).AccessToken
	if g := f.graph(t, "GET", inboxPath, readOnly, nil); g.status != 200 {
		t.Errorf("shared mailbox with Mail.Read.Shared: %d %s", g.status, g.body)
	}
	wantGraphError(t, f.graph(t, "PATCH", msgPath, readOnly, patch), 403, "ErrorAccessDenied")
	wantGraphError(t, f.graph(t, "POST", "/v1.0/me/sendMail", readOnly, send), 403, "ErrorAccessDenied")

	// The rights on the mailbox: without FullAccess no reading, without SendAs no sending.
	f.app.SetScopes(ScopeGraphMailReadWriteShared, ScopeGraphMailSendShared)
	other, err := f.tenant.AddUser(UserConfig{UPN: "bo@contoso.example", Password: "bo-pw"})
	if err != nil {
		t.Fatal(err)
	}
	bo := f.token(t, testTenantID, url.Values{"grant_type": {"password"}, "client_id": {f.app.ClientID()}, "client_secret": {f.secret},
		"username": {"bo@contoso.example"}, "password": {"bo-pw"}, "scope": {ScopeGraphMailReadWriteShared}}).AccessToken
	wantGraphError(t, f.graph(t, "GET", inboxPath, bo, nil), 403, "ErrorAccessDenied")
	wantGraphError(t, f.graph(t, "POST", "/v1.0/users/"+testShared+"/sendMail", bo, send), 403, "ErrorSendAsDenied")
	other.GrantFullAccess(testShared)
	if g := f.graph(t, "GET", inboxPath, bo, nil); g.status != 200 {
		t.Errorf("FullAccess granted: %d %s", g.status, g.body)
	}
	wantGraphError(t, f.graph(t, "POST", "/v1.0/users/"+testShared+"/sendMail", bo, send), 403, "ErrorSendAsDenied")
}

func TestSampleTenant(t *testing.T) {
	s := start(t, Options{})
	sample, err := s.SampleTenant(SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status, body := post(t, s.TokenURL(sample.TenantID), url.Values{"grant_type": {"client_credentials"}, "client_id": {sample.ClientID},
		"client_secret": {sample.ClientSecret}, "scope": {GraphAudience + "/.default"}})
	if status != 200 {
		t.Fatalf("sample token: %d %s", status, body)
	}
	var tr TokenResponse
	_ = json.Unmarshal(body, &tr)
	status, _, out := graphRequest(t, "GET", s.GraphURL()+"/v1.0/users/"+sample.Mailbox+"/mailFolders/inbox/messages", tr.AccessToken, nil)
	var page struct {
		Value []map[string]any `json:"value"`
	}
	_ = json.Unmarshal(out, &page)
	if status != 200 || len(page.Value) != 3 || len(sample.MessageIDs) != 3 {
		t.Errorf("sample inbox: %d, %d messages", status, len(page.Value))
	}
	// The agent opens the shared mailbox with the .Shared scopes, and sends from it.
	status, body = post(t, s.TokenURL(sample.TenantID), url.Values{"grant_type": {"password"}, "client_id": {sample.ClientID},
		"client_secret": {sample.ClientSecret}, "username": {sample.Agent}, "password": {sample.AgentPassword},
		"scope": {ScopeGraphMailReadWriteShared + " " + ScopeGraphMailSendShared}})
	if status != 200 {
		t.Fatalf("agent token: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &tr)
	if status, _, out := graphRequest(t, "GET", s.GraphURL()+"/v1.0/users/"+sample.Mailbox+"/mailFolders/inbox/messages", tr.AccessToken, nil); status != 200 {
		t.Errorf("agent reads the shared mailbox: %d %s", status, out)
	}
	mail, _ := json.Marshal(map[string]any{"message": map[string]any{"subject": "Re: Order 1234",
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "ana@example.net"}}}}})
	if status, _, out := graphRequest(t, "POST", s.GraphURL()+"/v1.0/users/"+sample.Mailbox+"/sendMail", tr.AccessToken, mail); status != 202 {
		t.Errorf("agent sends as the shared mailbox: %d %s", status, out)
	}
	if _, err := s.SampleTenant(SampleOptions{}); err == nil {
		t.Errorf("a second sample tenant in the same server was accepted")
	}
}

// TestDeltaChangeTypeCreated: a delta query with changeType=created reports, in later
// rounds, only messages that arrived in the folder (delivered or moved in), not updates
// such as being marked read, nor deletions; the filter rides on the deltaLink.
func TestDeltaChangeTypeCreated(t *testing.T) {
	f := newFixture(t, Options{})
	ids := f.deliverN(t, 3)
	tok := f.appToken(t, GraphAudience+"/.default")
	hdr := []string{"Prefer", immutable}
	items, last, _ := f.collect(t, "/v1.0/users/"+testShared+"/mailFolders/inbox/messages/delta?changeType=created", tok, hdr...)
	if len(items) != 3 {
		t.Fatalf("first round: %d items, want 3", len(items))
	}
	delta := last["@odata.deltaLink"].(string)
	if g := f.graph(t, "PATCH", "/v1.0/users/"+testShared+"/messages/"+ids[0], tok, map[string]any{"isRead": true}, "Prefer", immutable); g.status != 200 {
		t.Fatalf("PATCH: %d %s", g.status, g.body)
	}
	if err := f.s.DeleteMessage(testShared, ids[1]); err != nil {
		t.Fatal(err)
	}
	fresh := f.deliverN(t, 1)
	items, _, _ = f.collect(t, delta, tok, hdr...)
	if len(items) != 1 || items[0]["id"] != fresh[0] {
		t.Errorf("created-only round: %v, want only the new message %s", items, fresh[0])
	}
	if g := f.graph(t, "GET", "/v1.0/users/"+testShared+"/mailFolders/inbox/messages/delta?changeType=moved", tok, nil); g.status != 400 {
		t.Errorf("changeType=moved: %d, want 400", g.status)
	}
}
