package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/cluster"
	"github.com/postroom/postroom/internal/testenv"
)

// TestServeClusterSettingsRefused: a bad -lease-seconds / POSTROOM_LEASE_SECONDS or
// -node-name / POSTROOM_NODE_NAME stops serve before it opens anything, saying what to give.
func TestServeClusterSettingsRefused(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"lease too short":    {args: []string{"serve", "-lease-seconds", "1"}, want: "whole number of seconds from 3 to 600"},
		"lease word (env)":   {env: map[string]string{envLeaseSeconds: "six"}, want: "whole number of seconds from 3 to 600"},
		"lease too long":     {env: map[string]string{envLeaseSeconds: "3600"}, want: envLeaseSeconds},
		"name with a slash":  {args: []string{"serve", "-node-name", "a/b"}, want: "without '/'"},
		"name control (env)": {env: map[string]string{envNodeName: "a\x01b"}, want: envNodeName},
		"name too long":      {env: map[string]string{envNodeName: strings.Repeat("n", 101)}, want: "at most 100 characters"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			getenv := func(k string) string { return c.env[k] }
			dir := t.TempDir()
			args := c.args
			if args == nil {
				args = []string{"serve"}
			}
			args = append(args, "-data", dir)
			if code := run(context.Background(), args, &out, &errOut, getenv); code == 0 {
				t.Fatalf("serve started: %s", out.String())
			}
			if !strings.Contains(errOut.String(), c.want) {
				t.Errorf("stderr %q does not say %q", errOut.String(), c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("serve wrote %d files to the data folder before refusing", len(entries))
			}
		})
	}
}

// TestServeTwoNodes: two `postroom serve` processes on one PostgreSQL database, named by
// POSTROOM_NODE_NAME, with POSTROOM_LEASE_SECONDS: both are listed live by
// GET /api/v1/nodes on either, and the one inbound mailbox is read by exactly one of them.
func TestServeTwoNodes(t *testing.T) {
	d := testenv.StartDovecot(t, nil)
	d.AddUser(t, "support@example.test", "support-pw")
	d.Append(t, "support@example.test", "INBOX", []byte("From: Ana <ana@example.org>\r\nTo: support@example.test\r\nSubject: Two nodes\r\nMessage-ID: <two-1@example.org>\r\n\r\nHello\r\n"))
	db := testenv.Postgres(t)
	env := func(name string) map[string]string {
		return map[string]string{
			envDatabaseURL:        db,
			"POSTROOM_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
			envAdminPassword:      "first-admin-pw",
			envInboundURL:         fmt.Sprintf("imap+insecure://support%%40example.test@%s/INBOX?poll=10s", d.IMAPAddr),
			envInboundPass:        "support-pw",
			envNodeName:           name,
			envLeaseSeconds:       "4",
		}
	}
	east, _, eastLog := startServe(t, env("east"))
	west, _, _ := startServe(t, env("west"))
	for _, base := range []string{east, west} {
		c := apiSignIn(t, base, "admin", "first-admin-pw")
		var st cluster.Status
		for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := c.Get(base + "/api/v1/nodes")
			if err != nil {
				t.Fatal(err)
			}
			st = cluster.Status{}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Nodes) == 2 && len(st.Leases) == 1 {
				break
			}
		}
		if st.LeaseSeconds != 4 || len(st.Nodes) != 2 || len(st.Leases) != 1 {
			t.Fatalf("%s: /api/v1/nodes = %+v, want two nodes, one lease, 4 s; log: %s", base, st, eastLog.String())
		}
		leases := 0
		for _, n := range st.Nodes {
			if n.State != cluster.StateLive || (n.Name != "east" && n.Name != "west") {
				t.Errorf("%s: node %+v, want east and west live", base, n)
			}
			leases += n.Leases
		}
		if leases != 1 || (st.Leases[0].NodeName != "east" && st.Leases[0].NodeName != "west") {
			t.Errorf("%s: the mailbox is held %d times (%+v), want once", base, leases, st.Leases)
		}
		found := false
		for deadline := time.Now().Add(waitLimit); !found && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			found = len(listItems(t, c, base, "Two nodes").Items) == 1
		}
		if !found {
			t.Errorf("%s: the message never became one work item", base)
		}
	}
}
