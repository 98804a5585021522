package ipvsctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The read side of the IPVS generic netlink family: the dump requests and
// the decoding of their replies, as ip_vs_genl_fill_service and
// ip_vs_genl_fill_dest write them.
const (
	ipvsCmdGetService = 4
	ipvsCmdGetDest    = 8

	ipvsSvcAttrStats   = 10
	ipvsSvcAttrStats64 = 12

	ipvsDestAttrActiveConns = 7
	ipvsDestAttrInactConns  = 8
	ipvsDestAttrStats       = 10
	ipvsDestAttrAF          = 11
	ipvsDestAttrStats64     = 12

	ipvsStatsConns    = 1
	ipvsStatsInPkts   = 2
	ipvsStatsOutPkts  = 3
	ipvsStatsInBytes  = 4
	ipvsStatsOutBytes = 5
	ipvsStatsCPS      = 6
	ipvsStatsInPPS    = 7
	ipvsStatsOutPPS   = 8
	ipvsStatsInBPS    = 9
	ipvsStatsOutBPS   = 10

	// maxAttr bounds the attribute types read: every IPVS nest has fewer.
	maxAttr = 16
)

// attrs holds a nest's attributes by type; a type seen twice keeps the last.
type attrs [maxAttr][]byte

// split reads a run of attributes; types beyond maxAttr are skipped, as a
// newer kernel's additions should be.
func (a *attrs) split(b []byte) error {
	*a = attrs{}
	for len(b) > 0 {
		if len(b) < nlaHeaderLen {
			return fmt.Errorf("truncated netlink attribute (%d bytes)", len(b))
		}
		n := int(native.Uint16(b))
		if n < nlaHeaderLen || n > len(b) {
			return fmt.Errorf("netlink attribute of length %d in %d bytes", n, len(b))
		}
		if t := native.Uint16(b[2:]) & nlaTypeMask; t < maxAttr {
			a[t] = b[nlaHeaderLen:n]
		}
		b = b[min(nlmsgAlign(n), len(b)):]
	}
	return nil
}

func (a *attrs) u16(t int) uint16 {
	if len(a[t]) < 2 {
		return 0
	}
	return native.Uint16(a[t])
}

func (a *attrs) u32(t int) uint32 {
	if len(a[t]) < 4 {
		return 0
	}
	return native.Uint32(a[t])
}

func (a *attrs) port(t int) uint16 {
	if len(a[t]) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(a[t])
}

// addr reads the kernel's union nf_inet_addr as the family says.
func (a *attrs) addr(t int, af uint16) (netip.Addr, error) {
	b := a[t]
	switch {
	case af == afInet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case af == afInet6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("unreadable address (family %d, %d bytes)", af, len(b))
}

// encodeDumpServices asks for every service.
func encodeDumpServices() []byte {
	return appendAttr([]byte{ipvsCmdGetService, ipvsGenlVersion, 0, 0}, ipvsCmdAttrService, nil)
}

// encodeDumpDestinations asks for the destinations of one service.
func encodeDumpDestinations(key ServiceKey) []byte {
	return appendAttr([]byte{ipvsCmdGetDest, ipvsGenlVersion, 0, 0}, ipvsCmdAttrService, serviceAttrs(Service{Key: key}))
}

// nested returns the attributes of the reply's one nest of type t, after
// the generic netlink header.
func nested(payload []byte, t uint16, what string) (*attrs, error) {
	if len(payload) < 4 {
		return nil, fmt.Errorf("short %s reply", what)
	}
	var top attrs
	if err := top.split(payload[4:]); err != nil {
		return nil, fmt.Errorf("%s reply: %w", what, err)
	}
	if top[t] == nil {
		return nil, fmt.Errorf("%s reply without its attributes", what)
	}
	var a attrs
	if err := a.split(top[t]); err != nil {
		return nil, fmt.Errorf("%s reply: %w", what, err)
	}
	return &a, nil
}

// decodeService reads one reply of a service dump.
func decodeService(payload []byte) (Service, error) {
	a, err := nested(payload, ipvsCmdAttrService, "service")
	if err != nil {
		return Service{}, err
	}
	svc := Service{Scheduler: cString(a[ipvsSvcAttrSchedName])}
	if mark := a.u32(ipvsSvcAttrFWMark); mark != 0 {
		svc.Key = ServiceKey{FWMark: mark}
	} else {
		addr, err := a.addr(ipvsSvcAttrAddr, a.u16(ipvsSvcAttrAF))
		if err != nil {
			return Service{}, fmt.Errorf("IPVS service with an %w", err)
		}
		svc.Key = ServiceKey{Protocol: protocolName(a.u16(ipvsSvcAttrProtocol)), Address: addr, Port: a.port(ipvsSvcAttrPort)}
	}
	// The kernel adds the HASHED bit to every service it holds; only the
	// persistent bit and the scheduler's flags are ours to compare.
	flags := a.u32(ipvsSvcAttrFlags)
	if flags&svcFlagPersistent != 0 {
		svc.Persistence = a.u32(ipvsSvcAttrTimeout)
	}
	svc.SchedFlags = flags & SchedFlagsMask
	if svc.Stats, err = decodeStats(a, ipvsSvcAttrStats, ipvsSvcAttrStats64); err != nil {
		return Service{}, fmt.Errorf("IPVS service %s: %w", svc.Key, err)
	}
	return svc, nil
}

// decodeDestination reads one reply of a destination dump; af is the
// service's family, which kernels before 4.x do not repeat per destination.
func decodeDestination(payload []byte, af uint16) (Destination, error) {
	a, err := nested(payload, ipvsCmdAttrDest, "destination")
	if err != nil {
		return Destination{}, err
	}
	if f := a.u16(ipvsDestAttrAF); f != 0 {
		af = f
	}
	addr, err := a.addr(ipvsDestAttrAddr, af)
	if err != nil {
		return Destination{}, fmt.Errorf("real server with an %w", err)
	}
	d := Destination{
		Address:    addr,
		Port:       a.port(ipvsDestAttrPort),
		Weight:     uint16(a.u32(ipvsDestAttrWeight)),
		Forwarding: fromConnFlags(a.u32(ipvsDestAttrFwdMethod)),
	}
	if d.Stats, err = decodeStats(a, ipvsDestAttrStats, ipvsDestAttrStats64); err != nil {
		return Destination{}, fmt.Errorf("real server %s: %w", d.Endpoint(), err)
	}
	d.Stats.ActiveConns = int(a.u32(ipvsDestAttrActiveConns))
	d.Stats.InactiveConns = int(a.u32(ipvsDestAttrInactConns))
	return d, nil
}

// decodeStats reads the 64-bit counters where the kernel gives them (since
// 4.1), the 32-bit ones otherwise: a busy service wraps those in hours.
func decodeStats(a *attrs, stats32, stats64 int) (*Stats, error) {
	var s attrs
	wide := a[stats64] != nil
	nest := a[stats32]
	if wide {
		nest = a[stats64]
	}
	if err := s.split(nest); err != nil {
		return nil, fmt.Errorf("statistics: %w", err)
	}
	get := func(t int) uint64 {
		switch b := s[t]; {
		case wide && len(b) >= 8:
			return native.Uint64(b)
		case !wide && (t == ipvsStatsInBytes || t == ipvsStatsOutBytes) && len(b) >= 8:
			return native.Uint64(b)
		case !wide && len(b) >= 4:
			return uint64(native.Uint32(b))
		}
		return 0
	}
	return &Stats{
		Connections: get(ipvsStatsConns),
		PacketsIn:   get(ipvsStatsInPkts),
		PacketsOut:  get(ipvsStatsOutPkts),
		BytesIn:     get(ipvsStatsInBytes),
		BytesOut:    get(ipvsStatsOutBytes),
		CPS:         get(ipvsStatsCPS),
		PPSIn:       get(ipvsStatsInPPS),
		PPSOut:      get(ipvsStatsOutPPS),
		BPSIn:       get(ipvsStatsInBPS),
		BPSOut:      get(ipvsStatsOutBPS),
	}, nil
}

func fromConnFlags(flags uint32) Forwarding {
	switch flags & connFwdMask {
	case fwdMasq:
		return NAT
	case fwdTunnel:
		return Tunnel
	case fwdDirectRoute:
		return DirectRouting
	}
	return Forwarding(fmt.Sprintf("0x%x", flags&connFwdMask))
}

func protocolName(n uint16) Protocol {
	switch n {
	case protoTCP:
		return TCP
	case protoUDP:
		return UDP
	}
	return Protocol(fmt.Sprintf("proto%d", n))
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// errDumpInterrupted is the kernel's NLM_F_DUMP_INTR: the table changed
// during the dump, whose result may have missed or repeated entries.
var errDumpInterrupted = errors.New("the IPVS table changed during the read")
