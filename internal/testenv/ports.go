package testenv

import (
	"testing"

	"github.com/postroom/postroom/internal/localserver"
)

// loopbackHost is the only address the harness binds: test servers must never be reachable
// from the network.
const loopbackHost = localserver.LoopbackHost

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process can
// still take it before the caller binds it, so callers that start servers retry on a clash.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ports[0]
}

// freePorts returns n distinct free TCP ports on 127.0.0.1 (localserver.FreePorts).
func freePorts(n int) ([]int, error) { return localserver.FreePorts(n) }

// hostPort formats a loopback address for port.
func hostPort(port int) string { return localserver.HostPort(port) }
