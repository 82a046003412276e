package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/postroom/postroom/internal/store"
	"github.com/postroom/postroom/internal/testenv"
)

// waitLimit bounds waits for the demo to catch up; it is a deadline, not a goal.
const waitLimit = 30 * time.Second

func noEnv(string) string { return "" }

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "postroom "+version) {
		t.Errorf("version printed %q", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut, noEnv); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) || !strings.Contains(errOut.String(), "postroom demo") {
		t.Errorf("stderr %q does not name the command and show usage", errOut.String())
	}
}

func TestMailboxFromURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    store.Mailbox
		wantErr string
	}{
		{raw: "imaps://support%40example.com@mail.example.com/INBOX",
			want: store.Mailbox{Direction: store.Inbound, Protocol: "imap", Security: "tls", Host: "mail.example.com", Port: 993,
				Login: "support@example.com", Address: "support@example.com", Folder: "INBOX"}},
		{raw: "imap://bob@mail.example.com:1143/Support%20Queue?address=help@example.com&poll=30s",
			want: store.Mailbox{Direction: store.Inbound, Protocol: "imap", Security: "starttls", Host: "mail.example.com", Port: 1143,
				Login: "bob", Address: "help@example.com", Folder: "Support Queue", PollInterval: 30 * time.Second}},
		{raw: "smtp://support%40example.com@smtp.example.com",
			want: store.Mailbox{Direction: store.Outbound, Protocol: "smtp", Security: "starttls", Host: "smtp.example.com", Port: 587,
				Login: "support@example.com", Address: "support@example.com", IsDefault: true}},
		{raw: "smtp+insecure://127.0.0.1:2525?address=support@example.com",
			want: store.Mailbox{Direction: store.Outbound, Protocol: "smtp", Security: "none", Host: "127.0.0.1", Port: 2525,
				Address: "support@example.com", IsDefault: true}},
		{raw: "imaps://bob:secret@mail.example.com/", wantErr: "not in the URL"},
		{raw: "pop3://bob@mail.example.com/", wantErr: "use imaps, imap"},
		{raw: "imaps://bob@mail.example.com/", wantErr: "?address="},
		{raw: "imaps://bob@mail.example.com:99999/?address=a@b.c", wantErr: "port"},
		{raw: "imaps://bob@mail.example.com/?address=a@b.c&poll=fast", wantErr: "poll="},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := mailboxFromURL("x", tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name, tt.want.MaxSizeMB, tt.want.Enabled = "x", 5, true
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

type demoRun struct {
	web, smtp, imap string
	banner          string // what the demo printed at start
}

// startDemo runs `postroom demo` on free ports and returns the addresses it printed.
func startDemo(t *testing.T) demoRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testenv.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-listen", "127.0.0.1:0", "-imap-addr", "127.0.0.1:0", "-smtp-addr", "127.0.0.1:0"}, &out, &errOut, noEnv)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Error("demo did not stop")
		}
	})
	webRE := regexp.MustCompile(`Web UI:\s+http://(\S+)`)
	smtpRE := regexp.MustCompile(`Send mail:\s+SMTP (\S+),`)
	imapRE := regexp.MustCompile(`Demo IMAP:\s+(\S+)`)
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		s := out.String()
		if m := webRE.FindStringSubmatch(s); m != nil {
			return demoRun{web: "http://" + m[1], smtp: smtpRE.FindStringSubmatch(s)[1], imap: imapRE.FindStringSubmatch(s)[1], banner: s}
		}
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d: %s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("demo printed no URL: %s %s", out.String(), errOut.String())
	return demoRun{}
}

type workItemsJSON struct {
	Items []struct {
		ID       int64  `json:"id"`
		Subject  string `json:"subject"`
		FromAddr string `json:"from_addr"`
		State    string `json:"state"`
		Unparsed bool   `json:"unparsed"`
	} `json:"items"`
}

func apiSignIn(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: waitLimit}
	resp, err := c.Post(base+"/api/v1/session", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in as %s: %s", user, resp.Status)
	}
	return c
}

func listItems(t *testing.T, c *http.Client, base, q string) workItemsJSON {
	t.Helper()
	resp, err := c.Get(base + "/api/v1/workitems?limit=500&q=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out workItemsJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("work items are not JSON: %v", err)
	}
	return out
}

// TestDemo runs `postroom demo` as a newcomer would use it: the samples are work items
// (one flagged unparsed), a mail sent to the demo SMTP port becomes a work item, and a
// reply reaches the customer's demo mailbox.
func TestDemo(t *testing.T) {
	d := startDemo(t)
	// The probes answer without a sign-in.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(d.web + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
			t.Errorf("GET %s on the demo without a sign-in: %d %q; want 200 ok", p, resp.StatusCode, b)
		}
	}
	c := apiSignIn(t, d.web, "agent", "demo")
	items := listItems(t, c, d.web, "")
	if len(items.Items) < 20 {
		t.Fatalf("demo shows %d work items, want at least 20", len(items.Items))
	}
	unparsed := 0
	for _, it := range items.Items {
		if it.Unparsed {
			unparsed++
		}
	}
	if unparsed != 1 {
		t.Errorf("%d work items flagged unparsed, want the 1 malformed sample", unparsed)
	}

	subject := fmt.Sprintf("Where is my parcel %d", time.Now().UnixNano())
	msg := "From: Ana Customer <ana@example.org>\r\nTo: support@example.com\r\nSubject: " + subject + "\r\n\r\nHello, my parcel has not arrived.\r\n"
	sc, err := smtp.Dial(d.smtp)
	if err != nil {
		t.Fatalf("connect to the demo SMTP port: %v", err)
	}
	if err := sc.SendMail("ana@example.org", []string{"support@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send to the demo SMTP port: %v", err)
	}
	sc.Close()
	var id int64
	deadline := time.Now().Add(waitLimit)
	for id == 0 && time.Now().Before(deadline) {
		if got := listItems(t, c, d.web, subject); len(got.Items) == 1 {
			id = got.Items[0].ID
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if id == 0 {
		t.Fatalf("the mail sent to %s never became a work item", d.smtp)
	}

	// The supervisor's sample note mentions the agent.
	mentions, err := c.Get(d.web + "/api/v1/me/mentions")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mentions.Body)
	mentions.Body.Close()
	if !strings.Contains(string(mbody), "@agent this customer wrote twice") {
		t.Errorf("the demo's agent has no mention: %s", mbody)
	}

	// The demo's canned responses and signature are offered on the item.
	offered, err := c.Get(fmt.Sprintf("%s/api/v1/workitems/%d/responses", d.web, id))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(offered.Body)
	offered.Body.Close()
	if !strings.Contains(string(body), "Hello Ana Customer,") || !strings.Contains(string(body), `"signature":"Kind regards,`) {
		t.Errorf("the demo offers no template or signature: %s", body)
	}

	resp, err := c.Post(fmt.Sprintf("%s/api/v1/workitems/%d/reply", d.web, id), "application/json",
		strings.NewReader(`{"text":"It left our warehouse today."}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("reply: %s", resp.Status)
	}
	if !customerGot(t, d.imap, "Re: "+subject) {
		t.Fatalf("the reply never reached the customers' demo mailbox")
	}
}

// customerGot waits until the demo IMAP login "customers" holds a message with subject.
func customerGot(t *testing.T, addr, subject string) bool {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("customers", "demo").Wait(); err != nil {
			t.Fatalf("login customers: %v", err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		data, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subject}}}, nil).Wait()
		c.Close()
		if err == nil && len(data.AllSeqNums()) > 0 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "-listen", ln.Addr().String()}, &out, &errOut, noEnv)
	if code == 0 {
		t.Fatal("demo started on a taken port")
	}
	if msg := errOut.String(); !strings.Contains(msg, "is in use") || !strings.Contains(msg, "-listen") {
		t.Errorf("error %q does not say the port is taken and which flag to change", msg)
	}
}

func TestMigrateSQLite(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "-data", dir}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "schema up to date") {
		t.Errorf("migrate printed %q", out.String())
	}
	// Twice is fine.
	out.Reset()
	if code := run(context.Background(), []string{"migrate", "-data", dir}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("second migrate: exit %d: %s", code, errOut.String())
	}
}
