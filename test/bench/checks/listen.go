package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
)

// answerTimeout bounds how long a listener waits for a prober's FIN, so that
// a prober that never closes cannot stall the listener it came to.
const answerTimeout = 5 * time.Second

// listenMain is the listener process: -checks listeners, each answering its
// connections by reading until the prober's FIN and then closing, so every
// connection ends with FIN both ways and none with RST. It prints "ready"
// once every listener is open and exits when its stdin closes (the checker
// ended).
func listenMain(args []string) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	n := fs.Int("checks", 10000, "listeners to open")
	on := fs.String("address", "", "listen on this one address, ports 20000 upwards, instead of the loopback addresses of -checks targets (the real server of a node namespace in the VM run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var node netip.Addr
	if *on != "" {
		var err error
		if node, err = netip.ParseAddr(*on); err != nil {
			return fmt.Errorf("-address: %w", err)
		}
	}
	for i := 0; i < *n; i++ {
		ap, err := address(i)
		if node.IsValid() {
			ap, err = netip.AddrPortFrom(node, uint16(firstPort+i)), nil
		}
		if err != nil {
			return err
		}
		ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("listen %d of %d: %w", i+1, *n, err)
		}
		go serve(ln)
	}
	fmt.Println("ready")
	// The parent holds our stdin; EOF means it is gone and so is the reason
	// to listen.
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// serve answers one listener's connections one after the other: a target
// gets one connection per interval, so one goroutine per listener keeps up
// without a goroutine per connection.
func serve(ln *net.TCPListener) {
	buf := make([]byte, 512)
	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fmt.Fprintf(os.Stderr, "checks listen: accept on %v: %v\n", ln.Addr(), err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		conn.SetReadDeadline(time.Now().Add(answerTimeout))
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()
	}
}
