package main

import (
	"strings"
	"testing"
)

func TestParseSecureCookies(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "TRUE": true, " yes ": true} {
		got, err := parseSecureCookies(v)
		if err != nil || got != want {
			t.Errorf("parseSecureCookies(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := parseSecureCookies("https"); err == nil || !strings.Contains(err.Error(), "POSTROOM_SECURE_COOKIES") {
		t.Errorf("parseSecureCookies(https) = %v, want an error naming the variable", err)
	}
}
