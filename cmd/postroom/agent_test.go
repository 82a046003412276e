package main

import (
	"context"
	"strings"
	"testing"

	"github.com/postroom/postroom/internal/store"
)

// TestAgentCLI: postroom agent set changes the flags given and keeps the others, refuses a
// capacity out of range naming the flag, and postroom agent list shows the profile.
func TestAgentCLI(t *testing.T) {
	c, _ := newRoutingCLI(t)
	c.withStore(func(st store.Store) {
		if _, err := st.CreateUser(context.Background(), store.User{Username: "zoe", Role: store.RoleAgent}); err != nil {
			t.Fatal(err)
		}
	})
	c.ok("agent", "set", "zoe", "-skills", "billing:7, returns:5", "-languages", "en,de", "-teams", "Tier 2")
	c.ok("agent", "set", "zoe", "-capacity", "3")
	out := c.ok("agent", "list")
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "zoe ") {
			line = l
		}
	}
	for _, want := range []string{"billing:7", "returns:5", "en,de", " 3 ", "Tier 2", "offline"} {
		if !strings.Contains(line, want) {
			t.Errorf("agent list line %q lacks %q\n%s", line, want, out)
		}
	}
	if msg := c.fails("agent", "set", "zoe", "-capacity", "1000"); !strings.Contains(msg, "-capacity") {
		t.Errorf("capacity 1000: %s", msg)
	}
	if msg := c.fails("agent", "set", "nobody", "-capacity", "2"); !strings.Contains(msg, "no user") {
		t.Errorf("unknown user: %s", msg)
	}
}
