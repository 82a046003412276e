package testenv

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// testMessage builds a small RFC 5322 message.
func testMessage(subject, messageID string) []byte {
	return []byte("From: carol@example.test\r\n" +
		"To: alice@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: " + messageID + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"\r\n" +
		"Hello " + subject + "\r\n")
}

// trustingTLS returns a client TLS config that trusts only Dovecot's certificate.
func trustingTLS(t *testing.T, d *Dovecot) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(d.CertPEM) {
		t.Fatal("CertPEM holds no certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// imapSubjects logs in on c, selects mailbox and returns the subjects in UID order.
func imapSubjects(t *testing.T, c *imapclient.Client, mailbox string) []string {
	t.Helper()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: sel.NumMessages}}, &imap.FetchOptions{Envelope: true, UID: true}).Collect()
	if err != nil {
		t.Fatalf("fetch %s: %v", mailbox, err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Envelope.Subject)
	}
	return subjects
}

func TestDovecotIMAPLoginSeesAppendedMessages(t *testing.T) {
	d := StartDovecot(t, nil)
	const user, password = "alice@example.test", `pw:with "colons" and \ quotes`
	d.AddUser(t, user, password)
	d.Append(t, user, "INBOX", testMessage("first", "<first@example.test>"))
	d.Append(t, user, "INBOX", testMessage("second", "<second@example.test>"))
	d.Append(t, user, "Projects", testMessage("in a new folder", "<folder@example.test>"))

	const many = 1500 // more than one MULTIAPPEND batch
	raws := make([][]byte, many)
	var wantMany []string
	for i := range raws {
		subject := fmt.Sprintf("bulk %04d", i)
		raws[i] = testMessage(subject, fmt.Sprintf("<bulk%d@example.test>", i))
		wantMany = append(wantMany, subject)
	}
	d.AppendMany(t, user, "Archive", raws)
	d.AppendMany(t, user, "Küche.Ablage", raws[:3]) // modified UTF-7 on the wire; "." is the separator

	c, err := imapclient.DialTLS(d.IMAPSAddr, &imapclient.Options{TLSConfig: trustingTLS(t, d)})
	if err != nil {
		t.Fatalf("dial IMAPS %s with the harness certificate trusted: %v", d.IMAPSAddr, err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if got, want := imapSubjects(t, c, "INBOX"), []string{"first", "second"}; !slices.Equal(got, want) {
		t.Errorf("INBOX subjects = %q, want %q", got, want)
	}
	if got, want := imapSubjects(t, c, "Projects"), []string{"in a new folder"}; !slices.Equal(got, want) {
		t.Errorf("Projects subjects = %q, want %q", got, want)
	}
	if got := imapSubjects(t, c, "Archive"); !slices.Equal(got, wantMany) {
		t.Errorf("Archive has %d messages (first %q), want %d in append order", len(got), got[:min(3, len(got))], many)
	}

	// doveadm speaks UTF-8 mailbox names.
	got := d.Messages(t, user, "Küche.Ablage")
	if len(got) != 3 || got[0].Subject != "bulk 0000" || got[2].UID != 3 {
		t.Errorf("Messages(Küche.Ablage) = %+v, want bulk 0000..0002 with UIDs 1..3", got)
	}

	// A user added while Dovecot runs can log in at once, and a wrong password is refused.
	d.AddUser(t, "bob@example.test", "bob-pw")
	c2, err := imapclient.DialInsecure(d.IMAPAddr, nil)
	if err != nil {
		t.Fatalf("dial IMAP %s: %v", d.IMAPAddr, err)
	}
	defer c2.Close()
	if err := c2.Login("bob@example.test", "wrong").Wait(); err == nil {
		t.Error("login with a wrong password succeeded")
	}
	if err := c2.Login("bob@example.test", "bob-pw").Wait(); err != nil {
		t.Errorf("login of a just-added user: %v", err)
	}
}

func TestDovecotMessagesShowSeenAfterClientStore(t *testing.T) {
	d := StartDovecot(t, nil)
	const user = "alice@example.test"
	d.AddUser(t, user, "alice-pw")
	d.Append(t, user, "INBOX", testMessage("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", "<one@example.test>"))
	d.Append(t, user, "INBOX", testMessage("untouched", "<two@example.test>"))

	before := d.Messages(t, user, "INBOX")
	if len(before) != 2 || len(before[0].Flags) != 0 {
		t.Fatalf("before STORE: %+v, want 2 messages without flags", before)
	}

	c, err := imapclient.DialInsecure(d.IMAPAddr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, "alice-pw").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "$Forwarded"}}
	if err := c.Store(imap.UIDSetNum(1), store, nil).Close(); err != nil {
		t.Fatalf("uid store: %v", err)
	}

	got := d.Messages(t, user, "INBOX")
	want := []DovecotMessage{
		{Mailbox: "INBOX", UID: 1, Flags: []string{`\Seen`, "$Forwarded"}, Subject: "Grüße", MessageID: "<one@example.test>"},
		{Mailbox: "INBOX", UID: 2, Subject: "untouched", MessageID: "<two@example.test>"},
	}
	if len(got) != len(want) {
		t.Fatalf("Messages = %+v, want %+v", got, want)
	}
	for i := range want {
		g := got[i]
		slices.Sort(g.Flags)
		slices.Sort(want[i].Flags)
		if g.Mailbox != want[i].Mailbox || g.UID != want[i].UID || !slices.Equal(g.Flags, want[i].Flags) ||
			g.Subject != want[i].Subject || g.MessageID != want[i].MessageID {
			t.Errorf("message %d = %+v, want %+v", i, g, want[i])
		}
	}
	if all := d.Messages(t, user, ""); len(all) != 2 {
		t.Errorf("Messages of all mailboxes = %+v, want the 2 INBOX messages", all)
	}
}

func TestDovecotPOP3SListsMessages(t *testing.T) {
	d := StartDovecot(t, nil)
	const user = "alice@example.test"
	d.AddUser(t, user, "alice-pw")
	d.AppendMany(t, user, "INBOX", [][]byte{testMessage("a", "<a@x>"), testMessage("b", "<b@x>")})

	conn, err := tls.Dial("tcp", d.POP3SAddr, trustingTLS(t, d))
	if err != nil {
		t.Fatalf("dial POP3S: %v", err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	// RFC 1939: greeting, USER, PASS, STAT answer "+OK".
	for _, cmd := range []string{"", "USER " + user, "PASS alice-pw", "STAT"} {
		if cmd != "" {
			fmt.Fprintf(conn, "%s\r\n", cmd)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", cmd, err)
		}
		if !strings.HasPrefix(line, "+OK") {
			t.Fatalf("after %q: %q", cmd, line)
		}
		if cmd == "STAT" && !strings.HasPrefix(line, "+OK 2 ") {
			t.Errorf("STAT = %q, want 2 messages", line)
		}
	}
}

// xoauth2Client is the client side of Google's and Microsoft's XOAUTH2 SASL mechanism.
type xoauth2Client struct{ user, token string }

func (c xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next is only called with the server's error challenge (a JSON status). Answering it with
// an empty response would be right, but go-imap v2 sends an empty response as "=", which
// Dovecot answers with BAD, so the client gives up with the challenge as its error, as
// go-sasl's OAUTHBEARER client does.
func (c xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return nil, fmt.Errorf("XOAUTH2 token rejected: %s", challenge)
}

func TestDovecotOAuthLogins(t *testing.T) {
	tokens := map[string]map[string]any{
		"good-alice":    {"active": true, "email": "alice@example.test", "scope": "mail"},
		"expired-alice": {"active": false},
	}
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/introspect" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		reply, ok := tokens[r.PostFormValue("token")]
		if !ok {
			reply = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	}))
	defer introspect.Close()

	d := StartDovecot(t, &DovecotOptions{IntrospectionURL: introspect.URL + "/introspect"})
	d.AddUser(t, "bob@example.test", "bob-pw")

	_, port, _ := net.SplitHostPort(d.IMAPAddr)
	var portNum int
	fmt.Sscan(port, &portNum)
	cases := []struct {
		name   string
		client sasl.Client
		ok     bool
	}{
		{"XOAUTH2 good token", xoauth2Client{"alice@example.test", "good-alice"}, true},
		{"XOAUTH2 expired token", xoauth2Client{"alice@example.test", "expired-alice"}, false},
		{"OAUTHBEARER good token", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice@example.test", Token: "good-alice", Host: "127.0.0.1", Port: portNum}), true},
		{"OAUTHBEARER token of another user", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "bob@example.test", Token: "good-alice", Host: "127.0.0.1", Port: portNum}), false},
		{"PLAIN password still works", sasl.NewPlainClient("", "bob@example.test", "bob-pw"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := imapclient.DialInsecure(d.IMAPAddr, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			err = c.Authenticate(tc.client)
			if tc.ok && err != nil {
				t.Errorf("authenticate: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("authenticate succeeded, want failure")
			}
			if !tc.ok && err != nil && !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "invalid_token") {
				t.Errorf("authenticate failed with %v, want the server's token error", err)
			}
		})
	}
	if log := d.Log(); !strings.Contains(log, "method=XOAUTH2") || !strings.Contains(log, "Provided token is not valid") {
		t.Errorf("dovecot log lacks the XOAUTH2 login and the rejected token:\n%s", log)
	}
}

func TestDovecotStopClosesListeners(t *testing.T) {
	d := StartDovecot(t, nil)
	d.Stop()
	if conn, err := net.Dial("tcp", d.IMAPAddr); err == nil {
		conn.Close()
		t.Errorf("IMAP port %s still accepts connections after Stop", d.IMAPAddr)
	}
	d.Stop() // idempotent
}

// TestDovecotSessions: a client logged in over IMAP is listed with its user and address; a
// doveadm session (AppendMany) is not.
func TestDovecotSessions(t *testing.T) {
	d := StartDovecot(t, nil)
	d.AddUser(t, "who@example.test", "who-pw")
	d.AppendMany(t, "who@example.test", "INBOX", [][]byte{testMessage("who", "<who@example.test>")})
	if s := d.Sessions(t); len(s) != 0 {
		t.Fatalf("sessions before any login: %+v, want none", s)
	}
	c, err := imapclient.DialInsecure(d.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("who@example.test", "who-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	s := d.Sessions(t)
	if len(s) != 1 || s[0].User != "who@example.test" || s[0].Service != "imap" || s[0].IP != "127.0.0.1" || s[0].PID == 0 {
		t.Fatalf("sessions after one login: %+v, want one imap session of who@example.test from 127.0.0.1", s)
	}
}
