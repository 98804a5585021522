// Command listen is the real server of make bench-kernel's RabbitMQ shape:
// it listens on a range of TCP ports on every address of its network
// namespace (the VIP on lo among them), so that the director's checks
// through the VIP pass. Each connection is read until the prober's FIN and
// then closed, so it ends with FIN both ways, as a RabbitMQ node's would.
// It prints "ready" once every port is open and runs until it is killed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// answerTimeout bounds how long a connection is held waiting for the
// prober's FIN, so that a prober that never closes costs one goroutine for
// a while, not for ever.
const answerTimeout = 30 * time.Second

func main() {
	first := flag.Int("first-port", 20000, "first port to listen on")
	count := flag.Int("ports", 1000, "number of consecutive ports")
	flag.Parse()
	if err := listen(*first, *count); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	select {}
}

// listen opens count listeners from port first on and serves each.
func listen(first, count int) error {
	if first < 1 || count < 1 || first+count-1 > 65535 {
		return fmt.Errorf("ports %d to %d: out of 1-65535", first, first+count-1)
	}
	for port := first; port < first+count; port++ {
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{Port: port})
		if err != nil {
			return fmt.Errorf("listen on port %d: %w", port, err)
		}
		go serve(ln)
	}
	fmt.Println("ready")
	return nil
}

// serve accepts one listener's connections; each is answered on its own
// goroutine so that a slow prober holds up no other.
func serve(ln *net.TCPListener) {
	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go answer(conn)
	}
}

// answer waits for the prober to close its side, then closes ours.
func answer(conn *net.TCPConn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(answerTimeout))
	io.Copy(io.Discard, conn)
}
