package director

import (
	"fmt"
	"net/netip"

	"github.com/lvsdr/lvsdr/sysctl"
	"github.com/lvsdr/lvsdr/topology"
)

// prepareVIPChecks readies the director for checks through the VIP, if the
// topology has any, and returns the address they are sent from.
//
// Measured on Debian's 6.1 kernel: a marked probe sent from the VIP itself
// never gets an answer (the real server answers the VIP, which is its own
// address), and the answer to a probe sent from the director's own address
// comes back with the VIP as its source, which the kernel drops as a
// martian unless accept_local is set on the interface.
func (d *Director) prepareVIPChecks(topo *topology.Topology) (netip.Addr, error) {
	if !hasVIPChecks(topo) {
		return netip.Addr{}, nil
	}
	source, err := d.VIP.ProbeSource(topo.Director.Interface, topo.VIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("checks through the VIP: %w", err)
	}
	name := sysctl.Name("net", "ipv4", "conf", topo.Director.Interface, "accept_local")
	if err := d.Sysctl.Set(name, "1"); err != nil {
		return netip.Addr{}, fmt.Errorf("checks through the VIP: %w", err)
	}
	return source, nil
}

func hasVIPChecks(topo *topology.Topology) bool {
	for _, rs := range topo.RealServers {
		if _, ok := topo.CheckMark(rs.Name); ok {
			return true
		}
	}
	return false
}
