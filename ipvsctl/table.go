// Package ipvsctl is the mechanism between a desired IPVS table and the
// kernel: the table's types, a pure diff against what the kernel has that
// needs the fewest netlink operations, and the code that applies it. What
// the table should hold is the director's policy, not this package's.
//
// The kernel sits behind the Kernel interface: Netlink talks to the real one
// through moby/ipvs, FakeKernel stands in for tests.
package ipvsctl

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"
	"strconv"
)

// Protocol is the transport protocol of a virtual service.
type Protocol string

// The protocols a virtual service can carry, named as ipvsadm's -t and -u.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Forwarding is how IPVS sends packets to a destination.
type Forwarding string

// The forwarding methods: ipvsadm's -g, -m and -i.
const (
	DirectRouting Forwarding = "dr"
	NAT           Forwarding = "nat"
	Tunnel        Forwarding = "tunnel"
)

// ServiceKey identifies a virtual service in the kernel: by protocol,
// address and port, or by firewall mark alone.
type ServiceKey struct {
	Protocol Protocol
	Address  netip.Addr
	Port     uint16
	// FWMark, when set, is the whole key (ipvsadm -f).
	FWMark uint32
}

// String formats the key as ipvsadm does: "-t 192.168.0.100:5672".
func (k ServiceKey) String() string { return string(k.appendTo(nil)) }

func (k ServiceKey) appendTo(b []byte) []byte {
	if k.FWMark != 0 {
		return strconv.AppendUint(append(b, "-f "...), uint64(k.FWMark), 10)
	}
	if k.Protocol == UDP {
		b = append(b, "-u "...)
	} else {
		b = append(b, "-t "...)
	}
	return netip.AddrPortFrom(k.Address, k.Port).AppendTo(b)
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
	// SchedFlags are the scheduler's flags (IP_VS_SVC_F_SCHED1..3: for sh
	// and mh, 0x08 fallback and 0x10 port), ipvsadm's -b.
	SchedFlags uint32
	// Stats is set when read from the kernel and ignored by comparisons.
	Stats *Stats
}

// sameConfig reports whether the kernel would need a service update to turn
// s into o.
func (s Service) sameConfig(o Service) bool {
	return s.Scheduler == o.Scheduler && s.Persistence == o.Persistence && s.SchedFlags == o.SchedFlags
}

// Destination is one real server of a virtual service.
type Destination struct {
	Address    netip.Addr
	Port       uint16
	Weight     uint16
	Forwarding Forwarding
	// Stats is set when read from the kernel and ignored by comparisons.
	Stats *Stats
	// Rank orders the additions of a service's destinations (lowest
	// first); ignored by comparisons. The mh scheduler fills its lookup
	// table in the order destinations were added, so directors that must
	// agree on it add them in the same order: the file's.
	Rank int
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

// Sort orders the table by key and each service's destinations by endpoint,
// the order Diff walks.
func (t Table) Sort() {
	slices.SortFunc(t, func(a, b VirtualServer) int { return a.Service.Key.Compare(b.Service.Key) })
	for _, vs := range t {
		sortDestinations(vs.Destinations)
	}
}

func sortDestinations(ds []Destination) {
	slices.SortFunc(ds, func(a, b Destination) int { return a.Endpoint().Compare(b.Endpoint()) })
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
