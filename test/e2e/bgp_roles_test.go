//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// The roles of the BGP scale-out test run from init: TestMain
// (roles_test.go) dispatches the suite's other roles, and init runs
// before it.
func init() {
	switch os.Getenv("LVSDR_E2E_ROLE") {
	case "bgproutes":
		os.Exit(bgpRoutesRole())
	case "bgpprobe":
		os.Exit(bgpProbeRole())
	case "bgpdests":
		os.Exit(bgpDestsRole())
	}
}

// bgpDestsRole prints every service of its namespace's IPVS table and its
// destinations in the kernel's list order (the netlink dump walks the
// service's list, newest first, as mh does when it fills its table;
// ipvsadm sorts them).
func bgpDestsRole() int {
	h, err := ipvs.New("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dests:", err)
		return 1
	}
	defer h.Close()
	services, err := h.GetServices()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dests:", err)
		return 1
	}
	for _, s := range services {
		dests, err := h.GetDestinations(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dests:", err)
			return 1
		}
		fmt.Printf("service %s:%d %s flags %#x\n", s.Address, s.Port, s.SchedName, s.Flags)
		for _, d := range dests {
			fmt.Printf("  dest %s:%d weight %d\n", d.Address, d.Port, d.Weight)
		}
	}
	return 0
}

// bgpRoutesRole watches the route to LVSDR_E2E_VIP in its namespace's main
// table (the router's, where bird puts what it learnt) and prints
// "hops UNIXNANO A,B" (the next hops, sorted; "-" for none) at every
// change: the moment a director's announcement or withdrawal reached the
// router's kernel, without a process started per look.
func bgpRoutesRole() int {
	vip, err := netip.ParseAddr(os.Getenv("LVSDR_E2E_VIP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "routes:", err)
		return 1
	}
	dst := &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}
	last := ""
	for ; ; time.Sleep(5 * time.Millisecond) {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
		if err != nil {
			fmt.Fprintln(os.Stderr, "routes:", err)
			return 1
		}
		var hops []string
		for _, r := range routes {
			if r.Gw != nil {
				hops = append(hops, r.Gw.String())
			}
			for _, nh := range r.MultiPath {
				hops = append(hops, nh.Gw.String())
			}
		}
		slices.Sort(hops)
		now := strings.Join(hops, ",")
		if now == "" {
			now = "-"
		}
		if now != last {
			fmt.Printf("hops %d %s\n", time.Now().UnixNano(), now)
			last = now
		}
	}
}

// bgpProbeTimeout bounds one probe: long enough for the emulated VM's
// stalls (every process of the VM pauses for a second or two when the
// host is loaded) and one retransmitted SYN (at 1 s), short enough that a
// probe into a dead director fails rather than waits.
const bgpProbeTimeout = 3 * time.Second

// bgpProbeRole opens a new connection to LVSDR_E2E_TARGET every
// LVSDR_E2E_EVERY, from each of LVSDR_E2E_SOURCES in turn (the router
// hashes flows by source address, so the probes go through every
// director), each on its own goroutine, and prints "probe START END OK
// SOURCE WHY" (Unix nanoseconds, OK 1 or 0, WHY the error: "-", timeout,
// refused, reset, another errno's text with _ for spaces, or other) for
// each.
func bgpProbeRole() int {
	target := os.Getenv("LVSDR_E2E_TARGET")
	sources := strings.Split(os.Getenv("LVSDR_E2E_SOURCES"), ",")
	every, err := time.ParseDuration(os.Getenv("LVSDR_E2E_EVERY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	var mu sync.Mutex
	i := 0
	for start := range time.Tick(every) {
		src := sources[i%len(sources)]
		i++
		go func() {
			d := net.Dialer{Timeout: bgpProbeTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			conn, err := d.Dial("tcp", target)
			end := time.Now()
			ok, why := 0, "-"
			switch {
			case err == nil:
				conn.Close()
				ok = 1
			case errors.Is(err, os.ErrDeadlineExceeded):
				why = "timeout"
			case errors.Is(err, syscall.ECONNREFUSED):
				why = "refused"
			case errors.Is(err, syscall.ECONNRESET):
				why = "reset"
			default:
				why = "other"
				var errno syscall.Errno
				if errors.As(err, &errno) {
					why = strings.ReplaceAll(errno.Error(), " ", "_")
				}
			}
			mu.Lock()
			fmt.Printf("probe %d %d %d %s %s\n", start.UnixNano(), end.UnixNano(), ok, src, why)
			mu.Unlock()
		}()
	}
	return 0
}

// bgpExchangeDeadline is how long one exchange of a long-lived connection
// may take: room for TCP's retransmissions while a dead director's route
// waits for the hold time.
const bgpExchangeDeadline = 30 * time.Second
