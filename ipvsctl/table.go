// Package ipvsctl computes the IPVS table an lvsdr topology wants, compares it
// with what the kernel has, and applies the difference with the fewest
// netlink operations. The kernel sits behind the Kernel interface: Netlink
// talks to the real one through moby/ipvs, FakeKernel stands in for tests.
package ipvsctl

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/lvsdr/lvsdr/topology"
)

// ServiceKey identifies a virtual service in the kernel: by protocol,
// address and port, or by firewall mark alone.
type ServiceKey struct {
	Protocol topology.Protocol
	Address  netip.Addr
	Port     uint16
	// FWMark, when set, is the whole key (ipvsadm -f).
	FWMark uint32
}

// String formats the key as ipvsadm does: "-t 192.168.0.100:5672".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	flag := "-t"
	if k.Protocol == topology.UDP {
		flag = "-u"
	}
	return fmt.Sprintf("%s %s", flag, netip.AddrPortFrom(k.Address, k.Port))
}

// Compare orders keys by firewall mark (none first), address, port, then
// protocol.
func (k ServiceKey) Compare(o ServiceKey) int {
	if c := cmp.Compare(k.FWMark, o.FWMark); c != 0 {
		return c
	}
	if c := k.Address.Compare(o.Address); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Port, o.Port); c != 0 {
		return c
	}
	return cmp.Compare(k.Protocol, o.Protocol)
}

// Service is the configuration of one virtual service.
type Service struct {
	Key       ServiceKey
	Scheduler string
	// Persistence is the persistence timeout in seconds; 0 is none.
	Persistence uint32
	// Stats is set when read from the kernel and ignored by comparisons.
	Stats *Stats
}

// sameConfig reports whether the kernel would need a service update to turn
// s into o.
func (s Service) sameConfig(o Service) bool {
	return s.Scheduler == o.Scheduler && s.Persistence == o.Persistence
}

// Destination is one real server of a virtual service.
type Destination struct {
	Address    netip.Addr
	Port       uint16
	Weight     uint16
	Forwarding topology.Forwarding
	// Stats is set when read from the kernel and ignored by comparisons.
	Stats *Stats
}

// Endpoint returns the destination's address and port.
func (d Destination) Endpoint() netip.AddrPort { return netip.AddrPortFrom(d.Address, d.Port) }

// Stats are the kernel's counters for a service or destination.
type Stats struct {
	ActiveConns   int    `json:"active_conns"`
	InactiveConns int    `json:"inactive_conns"`
	Connections   uint64 `json:"connections"`
	PacketsIn     uint64 `json:"packets_in"`
	PacketsOut    uint64 `json:"packets_out"`
	BytesIn       uint64 `json:"bytes_in"`
	BytesOut      uint64 `json:"bytes_out"`
	// The rates are the kernel's estimates, per second.
	CPS    uint64 `json:"conns_per_s"`
	PPSIn  uint64 `json:"packets_in_per_s"`
	PPSOut uint64 `json:"packets_out_per_s"`
	BPSIn  uint64 `json:"bytes_in_per_s"`
	BPSOut uint64 `json:"bytes_out_per_s"`
}

// VirtualServer is a service with its destinations, sorted by endpoint.
type VirtualServer struct {
	Service      Service
	Destinations []Destination
}

// Table is a set of virtual servers sorted by key.
type Table []VirtualServer

// Find returns the virtual server with key k.
func (t Table) Find(k ServiceKey) (VirtualServer, bool) {
	// Indexing rather than slices.BinarySearchFunc avoids copying a
	// VirtualServer per comparison, which dominated the diff of large tables.
	i := sort.Search(len(t), func(i int) bool { return t[i].Service.Key.Compare(k) >= 0 })
	if i == len(t) || t[i].Service.Key != k {
		return VirtualServer{}, false
	}
	return t[i], true
}

// Keys returns the keys of the table, in order.
func (t Table) Keys() []ServiceKey {
	keys := make([]ServiceKey, len(t))
	for i, vs := range t {
		keys[i] = vs.Service.Key
	}
	return keys
}

func (t Table) sort() {
	slices.SortFunc(t, func(a, b VirtualServer) int { return a.Service.Key.Compare(b.Service.Key) })
	for _, vs := range t {
		sortDestinations(vs.Destinations)
	}
}

func sortDestinations(ds []Destination) {
	slices.SortFunc(ds, func(a, b Destination) int { return a.Endpoint().Compare(b.Endpoint()) })
}

// Key returns the kernel key of a topology service.
func Key(t *topology.Topology, s topology.Service) ServiceKey {
	return ServiceKey{Protocol: s.Protocol, Address: t.VIP, Port: s.Port}
}

// DeclaredKeys returns the kernel keys of every service a topology declares,
// the firewall-mark services of its checks through the VIP included.
func DeclaredKeys(t *topology.Topology) []ServiceKey {
	keys := make([]ServiceKey, 0, len(t.Services))
	for _, s := range t.Services {
		keys = append(keys, Key(t, s))
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
func checkServices(t *topology.Topology) []VirtualServer {
	var out []VirtualServer
	for _, rs := range t.RealServers {
		mark, ok := t.CheckMark(rs.Name)
		if !ok {
			continue
		}
		out = append(out, VirtualServer{
			Service:      Service{Key: ServiceKey{FWMark: mark}, Scheduler: "rr"},
			Destinations: []Destination{{Address: rs.Address, Weight: 1, Forwarding: topology.DirectRouting}},
		})
	}
	return out
}

// Health tells whether a real server passes the checks of a service.
type Health func(service, realServer string) bool

// AllHealthy is the Health of a one-shot apply: every real server in.
func AllHealthy(string, string) bool { return true }

// Serving counts the real servers of a service that take new clients:
// healthy and not in maintenance.
func Serving(s topology.Service, healthy Health, maintenance map[string]bool) int {
	n := 0
	for _, name := range s.RealServers {
		if healthy(s.Name, name) && !maintenance[name] {
			n++
		}
	}
	return n
}

// QuorumLost reports whether fewer real servers of s serve than its quorum.
func QuorumLost(s topology.Service, healthy Health, maintenance map[string]bool) bool {
	return Serving(s, healthy, maintenance) < s.Quorum
}

// Desired computes the table that t wants given the check results and the
// real servers in maintenance: a healthy real server has its configured
// weight; a failed one is left out, or kept with weight 0 when its service
// drains on failure; one in maintenance is kept with weight 0 in every
// service, so its established connections live on while it gets no new
// ones. A service below its quorum with a sorry server sends new clients
// there alone: its remaining real servers stay at weight 0 (keepalived
// deletes them, which would cut their clients).
func Desired(t *topology.Topology, healthy Health, maintenance map[string]bool) Table {
	byName := make(map[string]topology.RealServer, len(t.RealServers))
	for _, rs := range t.RealServers {
		byName[rs.Name] = rs
	}
	table := make(Table, 0, len(t.Services))
	for _, s := range t.Services {
		vs := VirtualServer{Service: Service{
			Key:         Key(t, s),
			Scheduler:   s.Scheduler,
			Persistence: uint32(s.PersistenceTimeout.Seconds()),
		}}
		vs.Destinations = make([]Destination, 0, len(s.RealServers)+1)
		sorry := s.SorryServer != nil && QuorumLost(s, healthy, maintenance)
		for _, name := range s.RealServers {
			rs := byName[name]
			weight := rs.Weight
			if maintenance[rs.Name] || sorry {
				weight = 0
			}
			if !healthy(s.Name, rs.Name) {
				if s.OnFailure != topology.Drain {
					continue
				}
				weight = 0
			}
			vs.Destinations = append(vs.Destinations, Destination{
				Address:    rs.Address,
				Port:       s.Port,
				Weight:     weight,
				Forwarding: s.Forwarding,
			})
		}
		if sorry {
			vs.Destinations = append(vs.Destinations, Destination{
				Address: s.SorryServer.Address, Port: s.SorryServer.Port, Weight: 1, Forwarding: s.Forwarding,
			})
		}
		table = append(table, vs)
	}
	table = append(table, checkServices(t)...)
	table.sort()
	return table
}

// WithDestination adds d to the service svc of t, and the service too when
// t lacks it, unless the service already has d's endpoint. It may change t
// in place, and returns it.
func (t Table) WithDestination(svc Service, d Destination) Table {
	i := sort.Search(len(t), func(i int) bool { return t[i].Service.Key.Compare(svc.Key) >= 0 })
	if i == len(t) || t[i].Service.Key != svc.Key {
		return slices.Insert(t, i, VirtualServer{Service: svc, Destinations: []Destination{d}})
	}
	vs := &t[i]
	if slices.ContainsFunc(vs.Destinations, func(x Destination) bool { return x.Endpoint() == d.Endpoint() }) {
		return t
	}
	vs.Destinations = append(vs.Destinations, d)
	sortDestinations(vs.Destinations)
	return t
}
