package ipvsctl

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// mobyRequest builds the message moby/ipvs sends for an operation, with the
// netlink library's attribute encoder, the way its fillService and
// fillDestination do: the batched writes must say to the kernel exactly
// what the per-call path said.
func mobyRequest(op Op) []byte {
	cmd := opCommands[op.Kind]
	svc := op.Service
	switch op.Kind {
	case DeleteService, AddDestination, UpdateDestination, DeleteDestination:
		svc = Service{Key: svc.Key}
	}
	// What the per-call path handed moby/ipvs, laid out as its
	// fillService and fillDestination lay it out.
	ks := toKernelService(svc)
	s := nl.NewRtAttr(ipvsCmdAttrService, nil)
	nl.NewRtAttrChild(s, ipvsSvcAttrAF, nl.Uint16Attr(ks.AddressFamily))
	if ks.FWMark != 0 {
		nl.NewRtAttrChild(s, ipvsSvcAttrFWMark, nl.Uint32Attr(ks.FWMark))
	} else {
		nl.NewRtAttrChild(s, ipvsSvcAttrProtocol, nl.Uint16Attr(ks.Protocol))
		ip := ks.Address.To4()
		if ip == nil {
			ip = ks.Address
		}
		nl.NewRtAttrChild(s, ipvsSvcAttrAddr, ip)
		nl.NewRtAttrChild(s, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, ks.Port))
	}
	nl.NewRtAttrChild(s, ipvsSvcAttrSchedName, nl.ZeroTerminated(ks.SchedName))
	nl.NewRtAttrChild(s, ipvsSvcAttrFlags, append(nl.Uint32Attr(ks.Flags), nl.Uint32Attr(0xffffffff)...))
	nl.NewRtAttrChild(s, ipvsSvcAttrTimeout, nl.Uint32Attr(ks.Timeout))
	nl.NewRtAttrChild(s, ipvsSvcAttrNetmask, nl.Uint32Attr(ks.Netmask))
	msg := append([]byte{cmd, 1, 0, 0}, s.Serialize()...)
	switch op.Kind {
	case AddDestination, UpdateDestination, DeleteDestination:
		kd := toKernelDestination(op.Destination)
		ip := kd.Address.To4()
		if ip == nil {
			ip = kd.Address
		}
		a := nl.NewRtAttr(ipvsCmdAttrDest, nil)
		nl.NewRtAttrChild(a, ipvsDestAttrAddr, ip)
		nl.NewRtAttrChild(a, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, kd.Port))
		nl.NewRtAttrChild(a, ipvsDestAttrFwdMethod, nl.Uint32Attr(kd.ConnectionFlags&0x7))
		nl.NewRtAttrChild(a, ipvsDestAttrWeight, nl.Uint32Attr(uint32(kd.Weight)))
		nl.NewRtAttrChild(a, ipvsDestAttrUpperThres, nl.Uint32Attr(kd.UpperThreshold))
		nl.NewRtAttrChild(a, ipvsDestAttrLowerThres, nl.Uint32Attr(kd.LowerThreshold))
		msg = append(msg, a.Serialize()...)
	}
	return msg
}

func TestEncodeOpSaysWhatMobyIPVSSays(t *testing.T) {
	v4 := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("192.168.0.100"), Port: 5672}
	v6 := ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("2001:db8::100"), Port: 53}
	mark := ServiceKey{FWMark: 0x4c560001}
	dst := Destination{Address: netip.MustParseAddr("192.168.0.2"), Port: 5672, Weight: 7, Forwarding: DirectRouting}
	for _, tc := range []struct {
		name string
		op   Op
	}{
		{"add a persistent wrr service", Op{Kind: AddService, Service: Service{Key: v4, Scheduler: "wrr", Persistence: 50}}},
		{"add an mh service with mh-port", Op{Kind: AddService, Service: Service{Key: v4, Scheduler: "mh", SchedFlags: 0x10}}},
		{"add an IPv6 UDP service", Op{Kind: AddService, Service: Service{Key: v6, Scheduler: "rr"}}},
		{"add a firewall-mark service", Op{Kind: AddService, Service: Service{Key: mark, Scheduler: "rr"}}},
		{"update a service", Op{Kind: UpdateService, Service: Service{Key: v4, Scheduler: "wlc"}}},
		{"delete a service", Op{Kind: DeleteService, Service: Service{Key: v4, Scheduler: "wrr", Persistence: 50}}},
		{"add a direct-routing destination", Op{Kind: AddDestination, Service: Service{Key: v4, Scheduler: "wrr"}, Destination: dst}},
		{"add a NAT destination on another port", Op{Kind: AddDestination, Service: Service{Key: v4}, Destination: Destination{Address: dst.Address, Port: 15672, Weight: 1, Forwarding: NAT}}},
		{"update a tunnel destination", Op{Kind: UpdateDestination, Service: Service{Key: v6}, Destination: Destination{Address: netip.MustParseAddr("2001:db8::2"), Port: 53, Weight: 0, Forwarding: Tunnel}}},
		{"delete a destination of a mark", Op{Kind: DeleteDestination, Service: Service{Key: mark}, Destination: dst}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeOp(tc.op)
			if err != nil {
				t.Fatal(err)
			}
			if want := mobyRequest(tc.op); !bytes.Equal(got, want) {
				t.Errorf("encoded\n% x\nmoby/ipvs sends\n% x", got, want)
			}
		})
	}
}

func TestEncodeOpRefusesAnUnknownKind(t *testing.T) {
	if _, err := encodeOp(Op{Kind: OpKind(42)}); err == nil {
		t.Error("an unknown kind was encoded")
	}
}
