// Package realserver prepares a node to be an LVS-DR real server: the VIP on
// lo as a /32 with host scope, so that the node accepts packets for it, and
// arp_ignore/arp_announce, so that it never answers ARP for it (only the
// director may). Start records the values it changes and Stop puts back
// exactly those.
package realserver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lvsdr/lvsdr/internal/netif"
	"github.com/lvsdr/lvsdr/sysctl"
)

// Addresses is the part of the network stack the agent changes.
type Addresses interface {
	LinkExists(name string) error
	Add(netif.Addr) error
	Delete(netif.Addr) error
	List() ([]netif.Addr, error)
}

// Config is what the agent needs from the topology.
type Config struct {
	VIP netip.Addr
	// Interface is the NIC whose ARP replies for the VIP are suppressed.
	Interface string
}

// Agent starts, stops and inspects the real-server setup.
type Agent struct {
	Addrs    Addresses
	Sysctl   sysctl.FS
	StateDir string
	Out      io.Writer
}

// ErrNotReady is returned by Status when something is not as DR needs it.
var ErrNotReady = errors.New("this node is not ready to be a DR real server")

// Loopback is the interface that carries the VIP on a real server.
const Loopback = "lo"

// vipAddr is the VIP as it goes on lo.
func vipAddr(vip netip.Addr) netif.Addr {
	return netif.Addr{Link: Loopback, Prefix: netip.PrefixFrom(vip, vip.BitLen()), HostScope: true, Label: Loopback + ":0"}
}

// wanted lists the ARP settings DR needs: arp_ignore=1 answers ARP only for
// addresses of the interface asked on (never for the VIP on lo);
// arp_announce=2 never uses the VIP as the source of the node's own ARP
// requests. The kernel takes the larger of "all" and the interface, so both
// are set; on lo alone they do nothing.
func wanted(iface string) [][2]string {
	var out [][2]string
	for _, dev := range []string{"all", iface} {
		out = append(out,
			[2]string{sysctl.Name("net", "ipv4", "conf", dev, "arp_ignore"), "1"},
			[2]string{sysctl.Name("net", "ipv4", "conf", dev, "arp_announce"), "2"})
	}
	return out
}

func (a *Agent) recordPath() string { return filepath.Join(a.StateDir, "realserver-sysctl.json") }

// Start records the ARP settings (unless a record exists: a second start
// must not take our own values for the originals), sets them, then binds the
// VIP, so that ARP is suppressed before the VIP appears. A second start
// changes nothing.
func (a *Agent) Start(c Config) error {
	for _, link := range []string{c.Interface, Loopback} {
		if err := a.Addrs.LinkExists(link); err != nil {
			return fmt.Errorf("start: %w", err)
		}
	}
	settings := wanted(c.Interface)
	if _, err := os.Stat(a.recordPath()); errors.Is(err, fs.ErrNotExist) {
		names := make([]string, len(settings))
		for i, kv := range settings {
			names[i] = kv[0]
		}
		snap, err := a.Sysctl.Record(names)
		if err != nil {
			return fmt.Errorf("start: record ARP settings: %w", err)
		}
		if err := snap.Save(a.recordPath()); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		fmt.Fprintf(a.Out, "recorded the current ARP settings in %s\n", a.recordPath())
	} else if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for _, kv := range settings {
		if err := a.Sysctl.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		fmt.Fprintf(a.Out, "%s = %s\n", kv[0], kv[1])
	}
	vip := vipAddr(c.VIP)
	// A VIP that realserver.sh put on lo without "scope host" (ifconfig
	// lo:0 does) stays as it is under an add, which the kernel answers
	// with "exists": it is replaced, back to back, so that the node never
	// takes the VIP as the source of its own traffic.
	addrs, err := a.Addrs.List()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	var replaced []netif.Addr
	for _, old := range addrs {
		if old.Link != Loopback || old.Prefix.Addr() != c.VIP || (old.HostScope && old.Prefix.Bits() == c.VIP.BitLen()) {
			continue
		}
		if err := a.Addrs.Delete(old); err != nil {
			return fmt.Errorf("start: replace %s: %w", old, err)
		}
		replaced = append(replaced, old)
		fmt.Fprintf(a.Out, "replacing the VIP on lo as %s: DR needs %s\n", old, vip)
	}
	if err := a.Addrs.Add(vip); err != nil {
		// A node without its VIP drops its clients' traffic: what was
		// there goes back.
		for _, old := range replaced {
			if rerr := a.Addrs.Add(old); rerr != nil {
				err = errors.Join(err, fmt.Errorf("put back %s: %w", old, rerr))
			}
		}
		return fmt.Errorf("start: %w", err)
	}
	fmt.Fprintf(a.Out, "VIP %s\n", vip)
	return nil
}

// Stop removes the VIP first, so the node stops taking VIP traffic before it
// may answer ARP again, then restores the recorded ARP settings.
func (a *Agent) Stop(c Config) error {
	vip := vipAddr(c.VIP)
	if err := a.Addrs.Delete(vip); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Fprintf(a.Out, "removed VIP %s\n", vip)
	snap, err := sysctl.LoadSnapshot(a.recordPath())
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(a.Out, "warning: no recorded ARP settings in %s: nothing to restore\n", a.recordPath())
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := a.Sysctl.Restore(snap); err != nil {
		return fmt.Errorf("stop: restore ARP settings: %w", err)
	}
	for _, kv := range wanted(c.Interface) {
		if v, ok := snap[kv[0]]; ok {
			fmt.Fprintf(a.Out, "%s = %s (restored)\n", kv[0], v)
		}
	}
	if err := os.Remove(a.recordPath()); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// Status prints each item DR needs with what the node has, and warnings for
// settings known to break DR. It returns ErrNotReady if an item is missing.
func (a *Agent) Status(c Config) error {
	ready := true
	item := func(what, want, have string) {
		mark := "ok"
		if want != have {
			mark, ready = "NOT READY", false
		}
		fmt.Fprintf(a.Out, "%-44s want %-8s have %-8s %s\n", what, want, have, mark)
	}
	addrs, err := a.Addrs.List()
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	vip := vipAddr(c.VIP)
	have := "absent"
	var elsewhere []netif.Addr
	for _, addr := range addrs {
		switch {
		case addr.Prefix.Addr() != c.VIP:
		case addr.Link == Loopback && addr.Prefix.Bits() == c.VIP.BitLen() && addr.HostScope:
			have = "present"
		case addr.Link == Loopback:
			have = "wrong"
			fmt.Fprintf(a.Out, "warning: the VIP is on lo as %s; DR needs %s\n", addr, vip)
		default:
			elsewhere = append(elsewhere, addr)
		}
	}
	item("VIP "+vip.String(), "present", have)
	// The kernel takes the larger of "all" and the interface: that value is
	// what must be right, whichever of the two carries it.
	for _, key := range []struct{ name, want string }{{"arp_ignore", "1"}, {"arp_announce", "2"}} {
		values := map[string]string{}
		effective := -1
		for _, dev := range []string{"all", c.Interface} {
			v, err := a.Sysctl.Get(sysctl.Name("net", "ipv4", "conf", dev, key.name))
			if err != nil {
				v = "missing"
			}
			values[dev] = v
			if n, err := strconv.Atoi(v); err == nil && n > effective {
				effective = n
			}
		}
		have := "missing"
		if effective >= 0 {
			have = strconv.Itoa(effective)
		}
		if key.name == "arp_ignore" && have == "2" {
			have = "1" // 2 suppresses too, more strictly
		}
		item(fmt.Sprintf("%s on %s (all=%s, %s=%s)", key.name, c.Interface, values["all"], c.Interface, values[c.Interface]), key.want, have)
	}
	for _, addr := range elsewhere {
		ready = false
		fmt.Fprintf(a.Out, "NOT READY: the VIP is also on %s (%s): that interface answers ARP for it and steals the director's traffic\n", addr.Link, addr)
	}
	a.warnings(c.Interface)
	if snap, err := sysctl.LoadSnapshot(a.recordPath()); err == nil {
		fmt.Fprintf(a.Out, "recorded values to restore on stop (%s):\n", a.recordPath())
		for _, kv := range wanted(c.Interface) {
			fmt.Fprintf(a.Out, "  %s = %s\n", kv[0], snap[kv[0]])
		}
	}
	if !ready {
		return ErrNotReady
	}
	return nil
}

// warnings prints settings that are not wrong for every node but break DR on
// many.
func (a *Agent) warnings(iface string) {
	num := func(dev, key string) int {
		v, err := a.Sysctl.Get(sysctl.Name("net", "ipv4", "conf", dev, key))
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(v)
		return n
	}
	// The kernel uses the larger of "all" and the interface.
	if rp := max(num("all", "rp_filter"), num(iface, "rp_filter")); rp == 1 {
		fmt.Fprintf(a.Out, "warning: rp_filter is 1 (strict) on %s: VIP traffic that arrives on an interface other than the route back to the client (a multi-homed node, tunnel forwarding) is dropped; 2 (loose) is safe for DR\n", iface)
	}
	if num("all", "proxy_arp") == 1 || num(iface, "proxy_arp") == 1 {
		fmt.Fprintf(a.Out, "warning: proxy_arp is on for %s: the node may answer ARP for addresses it routes, the VIP among them\n", iface)
	}
}
