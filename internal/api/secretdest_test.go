package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestMailboxSecretNotSentToNewHost: POST /api/v1/mailboxes/{id}/test and PUT with a new
// host or port and no password are refused with fields.password; a listener on the new
// loopback port receives no byte of the stored password (nor any connection).
func TestMailboxSecretNotSentToNewHost(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn(t, "admin")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got []byte
	conns := 0
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			go func() {
				defer conn.Close()
				_, _ = io.WriteString(conn, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
				b, _ := io.ReadAll(io.LimitReader(conn, 1<<16))
				mu.Lock()
				got = append(got, b...)
				mu.Unlock()
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	v := mailboxView(t, c.postJSON("/api/v1/mailboxes", inboundBody(t, "sales", map[string]any{"host": "127.0.0.1", "port": 1, "security": "none"})))
	path := fmt.Sprintf("/api/v1/mailboxes/%d", v.ID)
	for _, tc := range []struct{ name, method, path, body string }{
		{"test, new port", "POST", path + "/test", fmt.Sprintf(`{"port": %d}`, port)},
		{"test, new host", "POST", path + "/test", fmt.Sprintf(`{"host": "localhost", "port": %d}`, port)},
		{"save, new port", "PUT", path, fmt.Sprintf(`{"port": %d}`, port)},
	} {
		resp := c.do(tc.method, tc.path, "application/json", tc.body)
		fields, _ := want(t, tc.name, resp, http.StatusBadRequest)["fields"].(map[string]any)
		if msg := fmt.Sprint(fields["password"]); !strings.Contains(msg, "enter the password again; the stored one is only sent to 127.0.0.1:1") {
			t.Errorf("%s: %s, want fields.password asking for it again", tc.name, resp.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 0 || strings.Contains(string(got), secretPassword) {
		t.Errorf("the new destination got %d connections and %q", conns, got)
	}
}
