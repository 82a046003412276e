package localserver

import (
	"fmt"
	"net"
)

// LoopbackHost is the only address the harness binds: test servers must never be reachable
// from the network.
const LoopbackHost = "127.0.0.1"

// FreePorts returns n distinct free TCP ports on 127.0.0.1. All n listeners are held open
// until every port is picked, so the kernel cannot hand out the same port twice.
func FreePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(LoopbackHost, "0"))
		if err != nil {
			return nil, fmt.Errorf("pick free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// HostPort formats a loopback address for port.
func HostPort(port int) string {
	return net.JoinHostPort(LoopbackHost, fmt.Sprint(port))
}
