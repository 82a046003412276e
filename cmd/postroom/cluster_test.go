package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
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
