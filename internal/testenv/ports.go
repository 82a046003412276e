package testenv

import (
	"fmt"
	"net"
	"testing"
)

// loopbackHost is the only address the harness binds: test servers must never be reachable
// from the network.
const loopbackHost = "127.0.0.1"

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

// freePorts returns n distinct free TCP ports on 127.0.0.1. All n listeners are held open
// until every port is picked, so the kernel cannot hand out the same port twice.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(loopbackHost, "0"))
		if err != nil {
			return nil, fmt.Errorf("pick free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// hostPort formats a loopback address for port.
func hostPort(port int) string {
	return net.JoinHostPort(loopbackHost, fmt.Sprint(port))
}
