// Command checks measures what the health checks cost: a healthcheck.Manager
// runs -checks TCP checks every -interval against listeners on loopback, and
// the program reports the checker's CPU share, resident memory and
// goroutines over a window of -duration, with the checks actually completed
// and any that failed.
//
// The listeners run in a second process (this program re-executed with the
// argument "listen") so that the cost of answering the checks is not
// charged to the checker: a director pays only for the probing side. Every
// connection goes to 127.0.0.0/8 and nowhere else. test/bench/checks.sh runs
// it in a network namespace of its own, so that its TIME_WAIT sockets and any
// sysctl stay out of the host's.
//
// Usage:
//
//	checks [-checks 10000] [-interval 1s] [-duration 30s] [-warmup 0] [-cpuprofile file]
//
// It prints one block of key=value figures; test/bench/checks.sh collects
// them for two sizes in one run.
package main

import (
	"fmt"
	"net/netip"
	"os"
)

// portsPerAddress listeners share one address; addresses follow one another
// from 127.0.1.1. Spreading the targets over addresses and ports keeps each
// destination's share of the ephemeral ports (and of TIME_WAIT sockets)
// small.
const (
	portsPerAddress = 100
	firstPort       = 20000
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "listen" {
		err = listenMain(os.Args[2:])
	} else {
		err = checksMain(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "checks: %v\n", err)
		os.Exit(1)
	}
}

// address returns the loopback address of target i: 127.0.1.1 upwards,
// portsPerAddress ports each. Both processes compute it, so the listener
// needs only the number of targets.
func address(i int) (netip.AddrPort, error) {
	a := i / portsPerAddress
	if i < 0 || a >= 254*254 {
		return netip.AddrPort{}, fmt.Errorf("target %d: beyond 127.0.254.254 with %d ports an address", i, portsPerAddress)
	}
	ip := netip.AddrFrom4([4]byte{127, 0, byte(1 + a/254), byte(1 + a%254)})
	if !ip.IsLoopback() {
		// The network rule of the project: benchmark traffic stays on
		// loopback. Unreachable, but cheap to keep true.
		return netip.AddrPort{}, fmt.Errorf("target %d: %v is not loopback", i, ip)
	}
	return netip.AddrPortFrom(ip, uint16(firstPort+i%portsPerAddress)), nil
}
