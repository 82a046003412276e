package ewstest

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser(User{Login: "svc@contoso.local", Password: "pw", Mailbox: "svc@contoso.local"})
	s.AddMailbox("support@contoso.local")
	return s
}

func post(t *testing.T, s *Server, user, pass, header, body string) (int, string) {
	t.Helper()
	env := `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + NSSoap + `" xmlns:t="` + NSTypes + `" xmlns:m="` + NSMessages + `"><soap:Header>` +
		header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(env))
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const syncInbox = `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>support@contoso.local</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:SyncFolderId><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>`

func TestSchemaShapesAndErrors(t *testing.T) {
	s := start(t)
	raw := "From: a@example.com\r\nTo: support@contoso.local\r\nSubject: hi\r\n\r\nbody\r\n"
	id, err := s.Deliver("support@contoso.local", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}

	// No delegate access yet: ErrorAccessDenied in the response message.
	code, body := post(t, s, "svc@contoso.local", "pw", "", syncInbox)
	if code != 200 || !strings.Contains(body, `ResponseClass="Error"`) || !strings.Contains(body, "<m:ResponseCode>ErrorAccessDenied</m:ResponseCode>") {
		t.Fatalf("want ErrorAccessDenied, got %d %s", code, body)
	}
	s.Grant("svc@contoso.local", "support@contoso.local")
	code, body = post(t, s, "svc@contoso.local", "pw", "", syncInbox)
	if code != 200 || !strings.Contains(body, `<t:Create><t:Message><t:ItemId Id="`+id+`"`) || !strings.Contains(body, "<m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>") ||
		!strings.Contains(body, `xmlns:m="`+NSMessages+`"`) {
		t.Fatalf("sync: %d %s", code, body)
	}
	// GetItem with MIME content.
	code, body = post(t, s, "svc@contoso.local", "pw", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id="`+id+`"/></m:ItemIds></m:GetItem>`)
	if code != 200 || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(raw))) {
		t.Fatalf("get item: %d %s", code, body)
	}
	// Wrong password: 401 naming the methods.
	code, _ = post(t, s, "svc@contoso.local", "nope", "", syncInbox)
	if code != 401 {
		t.Fatalf("bad password: %d", code)
	}
	// Impersonation without the role: a SOAP fault.
	imp := `<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>support@contoso.local</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`
	code, body = post(t, s, "svc@contoso.local", "pw", imp, syncInbox)
	if code != 500 || !strings.Contains(body, "ErrorImpersonateUserDenied") {
		t.Fatalf("impersonation: %d %s", code, body)
	}
	// Unknown mailbox.
	code, body = post(t, s, "svc@contoso.local", "pw", "", strings.ReplaceAll(syncInbox, "support@", "nobody@"))
	if !strings.Contains(body, "ErrorNonExistentMailbox") {
		t.Fatalf("unknown mailbox: %d %s", code, body)
	}
	// Throttling: a fault with BackOffMilliseconds.
	s.Throttle(1, 1500*time.Millisecond)
	code, body = post(t, s, "svc@contoso.local", "pw", "", syncInbox)
	if code != 500 || !strings.Contains(body, "ErrorServerBusy") || !strings.Contains(body, `<t:Value Name="BackOffMilliseconds">1500</t:Value>`) {
		t.Fatalf("throttle: %d %s", code, body)
	}
	// Invalidated sync states.
	_, body = post(t, s, "svc@contoso.local", "pw", "", syncInbox)
	st := body[strings.Index(body, "<m:SyncState>")+len("<m:SyncState>") : strings.Index(body, "</m:SyncState>")]
	s.InvalidateSyncStates()
	withState := strings.Replace(syncInbox, "<m:MaxChangesReturned>", "<m:SyncState>"+st+"</m:SyncState><m:MaxChangesReturned>", 1)
	_, body = post(t, s, "svc@contoso.local", "pw", "", withState)
	if !strings.Contains(body, "ErrorInvalidSyncStateData") {
		t.Fatalf("invalidated state: %s", body)
	}
	// A 500 on demand.
	s.FailNext(Fault{Kind: Fault500})
	if code, _ = post(t, s, "svc@contoso.local", "pw", "", syncInbox); code != 500 {
		t.Fatalf("fault 500: %d", code)
	}
}
