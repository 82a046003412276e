package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitPath is the systemd unit shipped in the repository.
const unitPath = "../../packaging/postroom.service"

// TestSystemdUnit: the unit runs `postroom serve` on its state directory with the
// hardening the README promises, gives the graceful stop more time than its bound, and
// passes `systemd-analyze verify` (pointed at a built binary) without a warning, with an
// exposure of at most 2.0 in `systemd-analyze security`, where systemd-analyze exists.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/postroom serve -data /var/lib/postroom\n",
		"DynamicUser=yes\n", "StateDirectory=postroom\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
		"ProtectHome=yes\n", "PrivateTmp=yes\n", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=", "KillSignal=SIGTERM\n",
	} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("the unit has no %q", strings.TrimSpace(want))
		}
	}
	bound := regexp.MustCompile(`\nEnvironment=POSTROOM_SHUTDOWN_TIMEOUT=(\S+)\n`).FindStringSubmatch(unit)
	stop := regexp.MustCompile(`\nTimeoutStopSec=(\d+)s\n`).FindStringSubmatch(unit)
	if bound == nil || stop == nil {
		t.Fatalf("the unit sets no POSTROOM_SHUTDOWN_TIMEOUT or TimeoutStopSec in seconds")
	}
	b, err := parseShutdownTimeout(bound[1])
	if err != nil {
		t.Fatal(err)
	}
	s, _ := strconv.Atoi(stop[1])
	if time.Duration(s)*time.Second < b+5*time.Second {
		t.Errorf("TimeoutStopSec=%ds leaves less than 5 s over the shutdown bound %v: systemd would kill a stop in progress", s, b)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	bin := buildPostroom(t)
	copyPath := filepath.Join(t.TempDir(), "postroom.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/postroom", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(analyze, "verify", "--man=no", copyPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out.String())
	}
	sec, err := exec.Command(analyze, "security", "--offline=yes", copyPath).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline=yes is not available: %v\n%s", err, sec)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d)`).FindSubmatch(sec)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security:\n%s", sec)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("exposure level %s; want at most 2.0:\n%s", m[1], sec)
	}
}
