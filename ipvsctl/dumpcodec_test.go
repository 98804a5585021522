package ipvsctl

import (
	"errors"
	"net/netip"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
)

// kernelStats is a statistics nest as ip_vs_genl_fill_stats (32-bit
// counters, 64-bit bytes) or ip_vs_genl_fill_stats64 writes it.
func kernelStats(typ int, wide bool, v uint64) *nl.RtAttr {
	a := nl.NewRtAttr(typ, nil)
	for t := ipvsStatsConns; t <= ipvsStatsOutBPS; t++ {
		n := v + uint64(t)
		if wide || t == ipvsStatsInBytes || t == ipvsStatsOutBytes {
			a.AddRtAttr(t, nl.Uint64Attr(n))
		} else {
			a.AddRtAttr(t, nl.Uint32Attr(uint32(n)))
		}
	}
	return a
}

// kernelService is a reply of a service dump, in ip_vs_genl_fill_service's
// order: the address is the whole 16-byte union, flags carry HASHED.
func kernelService(addr netip.Addr, port uint16, sched string, flags, timeout uint32, stats64 bool) []byte {
	s := nl.NewRtAttr(ipvsCmdAttrService, nil)
	af := uint16(afInet)
	if addr.Is6() {
		af = afInet6
	}
	s.AddRtAttr(ipvsSvcAttrAF, nl.Uint16Attr(af))
	s.AddRtAttr(ipvsSvcAttrProtocol, nl.Uint16Attr(protoTCP))
	union := make([]byte, 16)
	copy(union, addr.AsSlice())
	s.AddRtAttr(ipvsSvcAttrAddr, union)
	s.AddRtAttr(ipvsSvcAttrPort, []byte{byte(port >> 8), byte(port)})
	s.AddRtAttr(ipvsSvcAttrSchedName, nl.ZeroTerminated(sched))
	s.AddRtAttr(ipvsSvcAttrFlags, append(nl.Uint32Attr(flags|0x2), nl.Uint32Attr(0xffffffff)...))
	s.AddRtAttr(ipvsSvcAttrTimeout, nl.Uint32Attr(timeout))
	s.AddRtAttr(ipvsSvcAttrNetmask, nl.Uint32Attr(0xffffffff))
	s.AddChild(kernelStats(ipvsSvcAttrStats, false, 100))
	if stats64 {
		s.AddChild(kernelStats(ipvsSvcAttrStats64, true, 1<<40))
	}
	return append([]byte{ipvsCmdNewService, 1, 0, 0}, s.Serialize()...)
}

func kernelDestination(addr netip.Addr, port uint16, fwd, weight, active, inactive uint32, withAF bool) []byte {
	d := nl.NewRtAttr(ipvsCmdAttrDest, nil)
	union := make([]byte, 16)
	copy(union, addr.AsSlice())
	d.AddRtAttr(ipvsDestAttrAddr, union)
	d.AddRtAttr(ipvsDestAttrPort, []byte{byte(port >> 8), byte(port)})
	d.AddRtAttr(ipvsDestAttrFwdMethod, nl.Uint32Attr(fwd))
	d.AddRtAttr(ipvsDestAttrWeight, nl.Uint32Attr(weight))
	d.AddRtAttr(ipvsDestAttrTunType, []byte{0})
	d.AddRtAttr(ipvsDestAttrUpperThres, nl.Uint32Attr(0))
	d.AddRtAttr(ipvsDestAttrLowerThres, nl.Uint32Attr(0))
	d.AddRtAttr(ipvsDestAttrActiveConns, nl.Uint32Attr(active))
	d.AddRtAttr(ipvsDestAttrInactConns, nl.Uint32Attr(inactive))
	d.AddRtAttr(9, nl.Uint32Attr(0)) // persistent connections
	if withAF {
		d.AddRtAttr(ipvsDestAttrAF, nl.Uint16Attr(afInet))
	}
	d.AddChild(kernelStats(ipvsDestAttrStats, false, 7))
	d.AddChild(kernelStats(ipvsDestAttrStats64, true, 7))
	return append([]byte{ipvsCmdNewDest, 1, 0, 0}, d.Serialize()...)
}

const ipvsDestAttrTunType = 13

func TestDecodeService(t *testing.T) {
	vip := netip.MustParseAddr("192.168.0.100")
	for _, tc := range []struct {
		name  string
		reply []byte
		want  Service
	}{
		{"persistent wrr, 64-bit counters", kernelService(vip, 5672, "wrr", svcFlagPersistent, 50, true),
			Service{Key: ServiceKey{Protocol: TCP, Address: vip, Port: 5672}, Scheduler: "wrr", Persistence: 50,
				Stats: &Stats{Connections: 1<<40 + 1, PacketsIn: 1<<40 + 2, PacketsOut: 1<<40 + 3, BytesIn: 1<<40 + 4, BytesOut: 1<<40 + 5,
					CPS: 1<<40 + 6, PPSIn: 1<<40 + 7, PPSOut: 1<<40 + 8, BPSIn: 1<<40 + 9, BPSOut: 1<<40 + 10}}},
		{"mh with mh-port, timeout kept by the kernel but not persistent, 32-bit counters only", kernelService(vip, 15672, "mh", 0x10, 300, false),
			Service{Key: ServiceKey{Protocol: TCP, Address: vip, Port: 15672}, Scheduler: "mh", SchedFlags: 0x10,
				Stats: &Stats{Connections: 101, PacketsIn: 102, PacketsOut: 103, BytesIn: 104, BytesOut: 105, CPS: 106, PPSIn: 107, PPSOut: 108, BPSIn: 109, BPSOut: 110}}},
		{"IPv6", kernelService(netip.MustParseAddr("2001:db8::1"), 53, "rr", 0, 0, false),
			Service{Key: ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("2001:db8::1"), Port: 53}, Scheduler: "rr",
				Stats: &Stats{Connections: 101, PacketsIn: 102, PacketsOut: 103, BytesIn: 104, BytesOut: 105, CPS: 106, PPSIn: 107, PPSOut: 108, BPSIn: 109, BPSOut: 110}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeService(tc.reply)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded %+v %+v\nwant    %+v %+v", got, got.Stats, tc.want, tc.want.Stats)
			}
		})
	}
}

func TestDecodeFirewallMarkService(t *testing.T) {
	s := nl.NewRtAttr(ipvsCmdAttrService, nil)
	s.AddRtAttr(ipvsSvcAttrAF, nl.Uint16Attr(afInet))
	s.AddRtAttr(ipvsSvcAttrFWMark, nl.Uint32Attr(0x4c560001))
	s.AddRtAttr(ipvsSvcAttrSchedName, nl.ZeroTerminated("rr"))
	s.AddRtAttr(ipvsSvcAttrFlags, append(nl.Uint32Attr(0x2), nl.Uint32Attr(0xffffffff)...))
	got, err := decodeService(append([]byte{ipvsCmdNewService, 1, 0, 0}, s.Serialize()...))
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != (ServiceKey{FWMark: 0x4c560001}) || got.Scheduler != "rr" || got.Persistence != 0 {
		t.Errorf("decoded %+v", got)
	}
}

func TestDecodeDestination(t *testing.T) {
	rs := netip.MustParseAddr("192.168.0.2")
	for _, withAF := range []bool{true, false} {
		got, err := decodeDestination(kernelDestination(rs, 5672, fwdDirectRoute, 7, 12, 3, withAF), afInet)
		if err != nil {
			t.Fatal(err)
		}
		want := Destination{Address: rs, Port: 5672, Weight: 7, Forwarding: DirectRouting, Stats: &Stats{ActiveConns: 12, InactiveConns: 3,
			Connections: 8, PacketsIn: 9, PacketsOut: 10, BytesIn: 11, BytesOut: 12, CPS: 13, PPSIn: 14, PPSOut: 15, BPSIn: 16, BPSOut: 17}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("family attribute %v: decoded %+v %+v\nwant %+v %+v", withAF, got, got.Stats, want, want.Stats)
		}
	}
}

func TestDecodeRefusesTruncatedReplies(t *testing.T) {
	full := kernelService(netip.MustParseAddr("192.168.0.100"), 5672, "wrr", 0, 0, false)
	for _, n := range []int{2, 6, 30} {
		if _, err := decodeService(full[:n]); err == nil {
			t.Errorf("a reply cut at %d bytes was decoded", n)
		}
	}
}

// dumpReplies is a fake kernel for one dump: it answers with the given
// messages, spread over datagrams of perDatagram, then the end.
type dumpReplies struct {
	msgs        [][]byte
	perDatagram int
	end         []byte
	seq         uint32
	out         [][]byte
}

func (d *dumpReplies) send(b []byte, _ time.Time) error {
	d.seq = native.Uint32(b[8:])
	if native.Uint16(b[6:])&nlmFDump != nlmFDump {
		return errors.New("not a dump request")
	}
	var cur []byte
	for i, m := range d.msgs {
		cur = appendNlmsg(cur, 42, 0x2, d.seq, m) // NLM_F_MULTI
		if (i+1)%d.perDatagram == 0 {
			d.out, cur = append(d.out, cur), nil
		}
	}
	d.out = append(d.out, appendNlmsg(cur, nlmsgDoneType(d.end), nlmsgDoneFlags(d.end), d.seq, d.end[4:]))
	return nil
}

// The end message: its first 4 bytes are type and flags, then its body.
func nlmsgDoneType(end []byte) uint16  { return native.Uint16(end) }
func nlmsgDoneFlags(end []byte) uint16 { return native.Uint16(end[2:]) }
func endMessage(typ, flags uint16, errno int32) []byte {
	b := native.AppendUint16(nil, typ)
	b = native.AppendUint16(b, flags)
	return native.AppendUint32(b, uint32(errno))
}

func (d *dumpReplies) receive(buf []byte, _ time.Time) (int, error) {
	n := copy(buf, d.out[0])
	d.out = d.out[1:]
	return n, nil
}

func TestDumpReadsEveryDatagramUntilTheEnd(t *testing.T) {
	var msgs [][]byte
	for i := range 25 {
		msgs = append(msgs, kernelDestination(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80, fwdDirectRoute, 1, 0, 0, true))
	}
	for _, tc := range []struct {
		name string
		end  []byte
		want error
	}{
		{"done", endMessage(nlmsgDone, 0x2, 0), nil},
		{"interrupted by a change", endMessage(nlmsgDone, 0x2|nlmFDumpIntr, 0), errDumpInterrupted},
		{"refused", endMessage(nlmsgError, 0, -int32(syscall.ESRCH)), syscall.ESRCH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &dumpReplies{msgs: msgs, perDatagram: 10, end: tc.end}
			c := &ipvsConn{t: k, family: 42, timeout: time.Second, seq: 7}
			var got []Destination
			err := c.dump(encodeDumpDestinations(ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}), func(reply []byte) error {
				d, err := decodeDestination(reply, afInet)
				got = append(got, d)
				return err
			})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("dump: %v, want %v", err, tc.want)
			}
			if len(got) != len(msgs) {
				t.Errorf("read %d destinations, want %d", len(got), len(msgs))
			}
			if c.seq != 8 {
				t.Errorf("sequence %d after the dump, want 8", c.seq)
			}
		})
	}
}
