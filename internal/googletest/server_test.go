package googletest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/postroom/postroom/internal/testenv"
)

const testUser = "support@example.test"

func start(t *testing.T, opts Options) (*Server, *ServiceAccount) {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddUser(testUser, UserConfig{})
	sa, err := s.AddServiceAccount("acme-mail", "postroom")
	if err != nil {
		t.Fatal(err)
	}
	return s, sa
}

// jwtConfig reads a key file as golang.org/x/oauth2/google's JWTConfigFromJSON does.
func jwtConfig(t *testing.T, key []byte, subject string) *jwt.Config {
	t.Helper()
	var f struct {
		Type, ClientEmail, PrivateKey, PrivateKeyID, TokenURI string
	}
	var raw map[string]string
	if err := json.Unmarshal(key, &raw); err != nil {
		t.Fatal(err)
	}
	f.Type, f.ClientEmail, f.PrivateKey, f.PrivateKeyID, f.TokenURI = raw["type"], raw["client_email"], raw["private_key"], raw["private_key_id"], raw["token_uri"]
	if f.Type != "service_account" || f.ClientEmail == "" || raw["client_id"] == "" || raw["project_id"] == "" {
		t.Fatalf("key file lacks fields: %s", key)
	}
	return &jwt.Config{Email: f.ClientEmail, PrivateKey: []byte(f.PrivateKey), PrivateKeyID: f.PrivateKeyID,
		Subject: subject, Scopes: []string{ScopeMail}, TokenURL: f.TokenURI}
}

func tokenErr(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want a token endpoint error, got %v", err)
	}
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(re.Body, &b) // x/oauth2/jwt leaves the fields empty
	re.ErrorCode, re.ErrorDescription = b.Error, b.Description
	return re
}

// TestJWTBearer: a delegated service account gets a token for a user of the domain;
// without delegation, for another subject, with another key, or with a skewed clock the
// endpoint answers Google's errors.
func TestJWTBearer(t *testing.T) {
	s, sa := start(t, Options{})
	ctx := context.Background()
	cfg := jwtConfig(t, sa.KeyJSON(), testUser)

	_, err := cfg.TokenSource(ctx).Token()
	re := tokenErr(t, err)
	if re.ErrorCode != "unauthorized_client" || re.ErrorDescription != DescUnauthorizedClient || re.Response.StatusCode != 401 {
		t.Errorf("no delegation: %v", re)
	}

	sa.Delegate(ScopeMail)
	tok, err := cfg.TokenSource(ctx).Token()
	if err != nil || !strings.HasPrefix(tok.AccessToken, "ya29.") || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("delegated token: %v %v", tok, err)
	}

	bad := jwtConfig(t, sa.KeyJSON(), "nobody@example.test")
	re = tokenErr(t, func() error { _, err := bad.TokenSource(ctx).Token(); return err }())
	if re.ErrorCode != "invalid_grant" || re.ErrorDescription != DescBadSubject {
		t.Errorf("wrong subject: %v", re)
	}

	other, err := s.AddServiceAccount("acme-mail", "other")
	if err != nil {
		t.Fatal(err)
	}
	forged := jwtConfig(t, other.KeyJSON(), testUser)
	forged.Email = sa.Email // signed by another key
	re = tokenErr(t, func() error { _, err := forged.TokenSource(ctx).Token(); return err }())
	if re.ErrorCode != "invalid_grant" || re.ErrorDescription != DescBadSignature {
		t.Errorf("wrong key: %v", re)
	}

	s.Advance(-20 * time.Minute) // our clock runs 20 minutes ahead of Google's
	re = tokenErr(t, func() error { _, err := cfg.TokenSource(ctx).Token(); return err }())
	if re.ErrorCode != "invalid_grant" || re.ErrorDescription != DescClockSkew {
		t.Errorf("clock skew: %v", re)
	}

	// The key file's private key is PKCS#8 PEM.
	var raw map[string]string
	_ = json.Unmarshal(sa.KeyJSON(), &raw)
	blk, _ := pem.Decode([]byte(raw["private_key"]))
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("private_key is not a PEM PRIVATE KEY")
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshGrant: "Sign in with Google": a refresh token gets access tokens and is
// rotated when the server rotates; a revoked one answers invalid_grant.
func TestRefreshGrant(t *testing.T) {
	s, _ := start(t, Options{RotateRefreshTokens: true})
	s.AddClient("web-client", "web-secret")
	rt := s.GrantRefresh("web-client", testUser)
	cfg := &oauth2.Config{ClientID: "web-client", ClientSecret: "web-secret", Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil || tok.RefreshToken == rt || tok.RefreshToken == "" {
		t.Fatalf("refresh: %+v %v", tok, err)
	}
	_, err = cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	if re := tokenErr(t, err); re.ErrorCode != "invalid_grant" || re.ErrorDescription != DescRevoked {
		t.Errorf("old refresh token: %v", re)
	}
}

func gmail(t *testing.T, s *Server, tok, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.GmailURL()+"/gmail/v1/users/me"+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func delegatedToken(t *testing.T, sa *ServiceAccount) string {
	t.Helper()
	sa.Delegate(ScopeMail)
	tok, err := jwtConfig(t, sa.KeyJSON(), testUser).TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// TestGmailAPI: history from a profile's historyId lists new messages, raw comes back
// byte for byte, modify removes UNREAD, send keeps the message, a too-old historyId is
// 404 and a rate limit 429, in Google's error shape.
func TestGmailAPI(t *testing.T) {
	s, sa := start(t, Options{PageSize: 2})
	tok := delegatedToken(t, sa)
	code, prof := gmail(t, s, tok, "GET", "/profile", nil)
	if code != 200 || prof["emailAddress"] != testUser {
		t.Fatalf("profile: %d %v", code, prof)
	}
	start := prof["historyId"].(string)
	raws := []string{"Subject: one\r\n\r\nfirst\r\n", "Subject: two\r\n\r\nsecond\r\n", "Subject: three\r\n\r\nthird\r\n"}
	var ids []string
	for _, r := range raws {
		id, err := s.Deliver(testUser, []byte(r))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var seen []string
	page := ""
	for {
		code, h := gmail(t, s, tok, "GET", "/history?historyTypes=messageAdded&labelId=INBOX&startHistoryId="+start+"&pageToken="+page, nil)
		if code != 200 {
			t.Fatalf("history: %d %v", code, h)
		}
		for _, rec := range h["history"].([]any) {
			for _, a := range rec.(map[string]any)["messagesAdded"].([]any) {
				seen = append(seen, a.(map[string]any)["message"].(map[string]any)["id"].(string))
			}
		}
		p, _ := h["nextPageToken"].(string)
		if p == "" {
			break
		}
		page = p
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("history saw %v, want %v", seen, ids)
	}
	code, m := gmail(t, s, tok, "GET", "/messages/"+ids[1]+"?format=raw", nil)
	raw, _ := base64.URLEncoding.DecodeString(m["raw"].(string))
	if code != 200 || string(raw) != raws[1] {
		t.Fatalf("get raw: %d %q", code, raw)
	}
	code, _ = gmail(t, s, tok, "POST", "/messages/"+ids[1]+"/modify", map[string]any{"removeLabelIds": []string{"UNREAD"}})
	if code != 200 || strings.Contains(strings.Join(s.Messages(testUser)[1].Labels, ","), "UNREAD") {
		t.Errorf("modify: %d %v", code, s.Messages(testUser)[1].Labels)
	}
	code, l := gmail(t, s, tok, "GET", "/messages?labelIds=INBOX&labelIds=UNREAD&maxResults=10", nil)
	if code != 200 || len(l["messages"].([]any)) != 2 {
		t.Errorf("list unread: %d %v", code, l)
	}
	code, _ = gmail(t, s, tok, "POST", "/messages/send", map[string]any{"raw": base64.RawURLEncoding.EncodeToString([]byte("Subject: re\r\n\r\nhi\r\n"))})
	if code != 200 || len(s.Sent(testUser)) != 1 {
		t.Errorf("send: %d", code)
	}

	s.ExpireHistory(testUser)
	code, e := gmail(t, s, tok, "GET", "/history?startHistoryId="+start, nil)
	if code != 404 || e["error"].(map[string]any)["status"] != "NOT_FOUND" {
		t.Errorf("too-old history: %d %v", code, e)
	}
	s.RateLimitNext(1)
	code, e = gmail(t, s, tok, "GET", "/profile", nil)
	errs := e["error"].(map[string]any)["errors"].([]any)
	if code != 429 || errs[0].(map[string]any)["reason"] != "rateLimitExceeded" {
		t.Errorf("rate limit: %d %v", code, e)
	}
	if code, _ = gmail(t, s, "ya29.bogus", "GET", "/profile", nil); code != 401 {
		t.Errorf("bad token: %d", code)
	}
	s.SetUser(testUser, UserConfig{Suspended: true})
	if code, e = gmail(t, s, tok, "GET", "/profile", nil); code != 400 || e["error"].(map[string]any)["message"] != "Mail service not enabled" {
		t.Errorf("suspended: %d %v", code, e)
	}
}

func imapXOAUTH2(t *testing.T, addr, user, token string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	_, _ = conn.Write([]byte("a AUTHENTICATE XOAUTH2 " + ir + "\r\n"))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "+") {
			_, _ = conn.Write([]byte("\r\n"))
			continue
		}
		if strings.HasPrefix(line, "a ") {
			return strings.TrimSpace(line)
		}
	}
}

// TestDovecotAcceptsGoogleTokens: real Dovecot checking tokens at the stand-in's
// introspection endpoint lets a delegated service account's token in, and refuses it once
// the user is suspended or IMAP is turned off, and once it expired.
func TestDovecotAcceptsGoogleTokens(t *testing.T) {
	s, sa := start(t, Options{})
	d := testenv.StartDovecot(t, &testenv.DovecotOptions{IntrospectionURL: s.IntrospectURL()})
	tok := delegatedToken(t, sa)
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, tok); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("delegated token: %q\n%s", got, d.Log())
	}
	s.SetUser(testUser, UserConfig{IMAPDisabled: true})
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, tok); !strings.HasPrefix(got, "a NO") {
		t.Errorf("IMAP disabled: %q", got)
	}
	s.SetUser(testUser, UserConfig{Suspended: true})
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, tok); !strings.HasPrefix(got, "a NO") {
		t.Errorf("suspended: %q", got)
	}
	s.SetUser(testUser, UserConfig{})
	s.Advance(DefaultAccessTokenLifetime + time.Second)
	if got := imapXOAUTH2(t, d.IMAPAddr, testUser, tok); !strings.HasPrefix(got, "a NO") {
		t.Errorf("expired: %q", got)
	}
}
