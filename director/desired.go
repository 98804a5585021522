package director

import (
	"slices"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// The director's policy: what IPVS should hold, given the topology, the
// check states and maintenance. ipvsctl only diffs and applies it. Every
// function here runs per reconcile, so each is linear in services plus
// real servers (docs/architecture.md, "hot paths").

// serviceKey returns the kernel key of a topology service.
func serviceKey(t *topology.Topology, s topology.Service) ipvsctl.ServiceKey {
	return ipvsctl.ServiceKey{Protocol: protocol(s.Protocol), Address: t.VIP, Port: s.Port}
}

func protocol(p topology.Protocol) ipvsctl.Protocol {
	if p == topology.UDP {
		return ipvsctl.UDP
	}
	return ipvsctl.TCP
}

func forwarding(f topology.Forwarding) ipvsctl.Forwarding {
	switch f {
	case topology.NAT:
		return ipvsctl.NAT
	case topology.Tunnel:
		return ipvsctl.Tunnel
	}
	return ipvsctl.DirectRouting
}

// declaredKeys returns the kernel keys of every service a topology
// declares, the firewall-mark services of its checks through the VIP
// included.
func declaredKeys(t *topology.Topology) []ipvsctl.ServiceKey {
	keys := make([]ipvsctl.ServiceKey, 0, len(t.Services))
	for _, s := range t.Services {
		keys = append(keys, serviceKey(t, s))
	}
	for _, vs := range checkServices(t) {
		keys = append(keys, vs.Service.Key)
	}
	return keys
}

// checkServices returns one firewall-mark service per real server probed
// through the VIP: the probe's packets carry the mark, so IPVS sends them
// to that real server alone, by direct routing, whatever the port. The
// real server is always in at weight 1 there: its check must reach it to
// bring it back.
func checkServices(t *topology.Topology) []ipvsctl.VirtualServer {
	var out []ipvsctl.VirtualServer
	for _, rs := range t.RealServers {
		mark, ok := t.CheckMark(rs.Name)
		if !ok {
			continue
		}
		out = append(out, ipvsctl.VirtualServer{
			Service:      ipvsctl.Service{Key: ipvsctl.ServiceKey{FWMark: mark}, Scheduler: "rr"},
			Destinations: []ipvsctl.Destination{{Address: rs.Address, Weight: 1, Forwarding: ipvsctl.DirectRouting}},
		})
	}
	return out
}

// Health tells whether a real server passes the checks of a service.
type Health func(service, realServer string) bool

// allHealthy is the Health of a one-shot apply: every real server in.
func allHealthy(string, string) bool { return true }

// snapshotHealth reads health from one snapshot of the check states, taken
// once per reconcile: a real server passes when every check of it in the
// service is up or has no state (not checked); a service without checks
// passes them all.
func snapshotHealth(topo *topology.Topology, states map[healthcheck.Key]healthcheck.Status) Health {
	return func(service, realServer string) bool {
		s, _ := topo.ServiceByName(service)
		for _, c := range s.ChecksOf(realServer) {
			st, checked := states[healthcheck.Key{Service: service, RealServer: realServer, Check: c.Name}]
			if checked && st.State != healthcheck.Up {
				return false
			}
		}
		return true
	}
}

// serving counts the real servers of a service that take new clients:
// healthy and not in maintenance.
func serving(s topology.Service, healthy Health, maintenance map[string]bool) int {
	n := 0
	for _, name := range s.RealServers {
		if healthy(s.Name, name) && !maintenance[name] {
			n++
		}
	}
	return n
}

// quorumLost reports whether fewer real servers of s serve than its quorum.
func quorumLost(s topology.Service, healthy Health, maintenance map[string]bool) bool {
	return serving(s, healthy, maintenance) < s.Quorum
}

// desiredTable computes the table that t wants given the check results and
// the real servers in maintenance: a healthy real server has its configured
// weight; a failed one is left out, or kept with weight 0 when its service
// drains on failure; one in maintenance is kept with weight 0 in every
// service, so its established connections live on while it gets no new
// ones. A service below its quorum with a sorry server sends new clients
// there alone: its remaining real servers stay at weight 0 (keepalived
// deletes them, which would cut their clients). With director.bgp a failed
// or not yet checked server is always kept at weight 0: the directors'
// destination lists must stay in the file's order.
func desiredTable(t *topology.Topology, healthy Health, maintenance map[string]bool) ipvsctl.Table {
	table := make(ipvsctl.Table, 0, len(t.Services))
	for _, s := range t.Services {
		vs := ipvsctl.VirtualServer{Service: ipvsctl.Service{
			Key:         serviceKey(t, s),
			Scheduler:   s.Scheduler,
			Persistence: uint32(s.PersistenceTimeout.Seconds()),
			SchedFlags:  s.SchedulerFlagBits(),
		}}
		vs.Destinations = make([]ipvsctl.Destination, 0, len(s.RealServers)+1)
		sorry := s.SorryServer != nil && quorumLost(s, healthy, maintenance)
		fwd := forwarding(s.Forwarding)
		for rank, rs := range t.Members(s) {
			weight := rs.Weight
			if maintenance[rs.Name] || sorry {
				weight = 0
			}
			if !healthy(s.Name, rs.Name) {
				// With BGP every director must keep the same destinations
				// in the same order (mh fills its table in that order), so
				// a failed server stays at weight 0 rather than leaving
				// and coming back last.
				if s.OnFailure != topology.Drain && t.Director.BGP == nil {
					continue
				}
				weight = 0
			}
			vs.Destinations = append(vs.Destinations, ipvsctl.Destination{
				Address: rs.Address, Port: s.Port, Weight: weight, Forwarding: fwd, Rank: rank,
			})
		}
		if sorry {
			vs.Destinations = append(vs.Destinations, ipvsctl.Destination{
				Address: s.SorryServer.Address, Port: s.SorryServer.Port, Weight: 1, Forwarding: fwd, Rank: len(s.RealServers),
			})
		}
		table = append(table, vs)
	}
	table = append(table, checkServices(t)...)
	table.Sort()
	return table
}

// retiredKeys returns the keys among owned that topo no longer declares.
func retiredKeys(owned []ipvsctl.ServiceKey, topo *topology.Topology) []ipvsctl.ServiceKey {
	declared := make(map[ipvsctl.ServiceKey]bool, len(topo.Services))
	for _, k := range declaredKeys(topo) {
		declared[k] = true
	}
	return slices.DeleteFunc(slices.Clone(owned), func(k ipvsctl.ServiceKey) bool { return declared[k] })
}
