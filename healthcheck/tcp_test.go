package healthcheck

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestTCPProbePassesAndClosesWithFIN(t *testing.T) {
	ln := listen(t)
	seen := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			seen <- err
			return
		}
		defer conn.Close()
		// A server that talks first, as many do: the probe must read it
		// rather than leave it unread and reset the connection.
		conn.Write([]byte("hello\r\n"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 16))
		seen <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := (&TCPProber{Address: ln.Addr().String()}).Probe(ctx); err != nil {
		t.Fatalf("probe of a listening port: %v", err)
	}
	if err := <-seen; !errors.Is(err, io.EOF) {
		t.Errorf("server read %v, want io.EOF (FIN); a reset shows as ECONNRESET", err)
	}
}

func TestTCPProbeFailsOnAClosedPort(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	err := (&TCPProber{Address: addr}).Probe(context.Background())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("probe of a closed port: %v, want connection refused", err)
	}
}

func TestTCPProbeHonoursTheDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := (&TCPProber{Address: listen(t).Addr().String()}).Probe(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("probe with a done context: %v, want it to give up", err)
	}
}
