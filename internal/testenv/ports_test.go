package testenv

import (
	"net"
	"testing"
)

func TestFreePortCanBeBound(t *testing.T) {
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d picked twice in %v", p, ports)
		}
		seen[p] = true
	}
	p := FreePort(t)
	l, err := net.Listen("tcp", hostPort(p))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", p, err)
	}
	l.Close()
}
