package director

import (
	"fmt"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// opNames returns a function that names the service and the real server an
// operation touches, as log attributes, so that an operator can grep the log
// for "real_server=rmq_node2" rather than for its address.
func opNames(topo *topology.Topology) func(ipvsctl.Op) []any {
	services := make(map[ipvsctl.ServiceKey]string, len(topo.Services))
	for _, s := range topo.Services {
		services[serviceKey(topo, s)] = s.Name
	}
	servers := make(map[string]string, len(topo.RealServers))
	for _, rs := range topo.RealServers {
		servers[rs.Address.String()] = rs.Name
		if mark, ok := topo.CheckMark(rs.Name); ok {
			services[ipvsctl.ServiceKey{FWMark: mark}] = fmt.Sprintf("check-fwmark-%d", mark)
		}
	}
	return func(op ipvsctl.Op) []any {
		service, ok := services[op.Service.Key]
		if !ok {
			// Retired by a reload: no longer in the topology.
			service = op.Service.Key.String()
		}
		attrs := []any{"service", service}
		switch op.Kind {
		case ipvsctl.AddDestination, ipvsctl.UpdateDestination, ipvsctl.DeleteDestination:
			name, ok := servers[op.Destination.Address.String()]
			if !ok {
				name = op.Destination.Endpoint().String()
			}
			attrs = append(attrs, "real_server", name)
		}
		return attrs
	}
}
