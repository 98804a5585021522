// Package testnet gives tests loopback addresses to probe: a port that
// accepts and one that refuses. It is for tests only, which must not reach
// the addresses of the files they load.
package testnet

import (
	"net"
	"testing"
)

// LoopbackPorts returns the port of a listener on 127.0.0.1 that accepts
// and closes every connection, and one that was just closed (a connect to
// it is refused). The listener closes when the test ends.
func LoopbackPorts(t testing.TB) (open, closed uint16) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port), uint16(gone.Addr().(*net.TCPAddr).Port)
}
