package topology

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of director.bgp; docs/configuration.md lists them too.
const (
	// DefaultBGPHoldTime is GoBGP's and bird's.
	DefaultBGPHoldTime = 90 * time.Second
	DefaultBGPPort     = 179
)

// BGP announces the VIP from every director to routers that spread flows
// across the directors (ECMP).
type BGP struct {
	// ASN is the directors' autonomous system number.
	ASN uint32
	// RouterID is the BGP identifier; invalid (the zero Addr) for the
	// address on director.interface, found at run time.
	RouterID netip.Addr
	// HoldTime is proposed to every peer that does not set its own; 0 for
	// no keepalives at all.
	HoldTime time.Duration
	Peers    []BGPPeer
}

// BGPPeer is one router the director announces the VIP to.
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16
	// PasswordFile holds the TCP MD5 password (RFC 2385); "" for none. The
	// password is never in the YAML, which every real server also has.
	PasswordFile string
	HoldTime     time.Duration
}

// Scheduler flags (ipvsadm -b) and their kernel bits (IP_VS_SVC_F_SCHED1,
// IP_VS_SVC_F_SCHED2 in linux/ip_vs.h).
var schedulerFlags = map[string]map[string]uint32{
	"sh": {"sh-fallback": 0x08, "sh-port": 0x10},
	"mh": {"mh-fallback": 0x08, "mh-port": 0x10},
}

// SchedulerFlagBits returns the kernel's flag bits of a service's
// scheduler_flags, for the IPVS service's flags.
func (s Service) SchedulerFlagBits() uint32 {
	var bits uint32
	for _, f := range s.SchedulerFlags {
		bits |= schedulerFlags[s.Scheduler][f]
	}
	return bits
}

// bgp decodes director.bgp.
func (d *decoder) bgp(n *yaml.Node, path string) *BGP {
	b := &BGP{HoldTime: DefaultBGPHoldTime}
	var peerNodes []*yaml.Node
	present := d.mapping(n, path, fields{
		"asn":       func(v *yaml.Node) { d.asn(v, path+".asn", &b.ASN) },
		"router_id": func(v *yaml.Node) { d.ipv4(v, path+".router_id", &b.RouterID) },
		"hold_time": func(v *yaml.Node) { d.holdTime(v, path+".hold_time", &b.HoldTime) },
		"peers": func(v *yaml.Node) {
			peerNodes = d.sequence(v, path+".peers")
			if v.Kind == yaml.SequenceNode && len(peerNodes) == 0 {
				d.problemf(v, "%s.peers lists no peer: the VIP would be announced to no router", path)
			}
		},
	})
	if n.Kind != yaml.MappingNode {
		return b
	}
	for _, key := range []string{"asn", "peers"} {
		if present[key] == nil {
			d.problemf(n, "%s.%s is required", path, key)
		}
	}
	addrs := map[netip.Addr]int{}
	for i, pn := range peerNodes {
		p := d.bgpPeer(pn, fmt.Sprintf("%s.peers[%d]", path, i), b.HoldTime)
		if first, dup := addrs[p.Address]; dup && p.Address.IsValid() {
			d.problemf(pn, "%s.peers[%d]: address %s is already used by peers[%d]", path, i, p.Address, first)
		} else {
			addrs[p.Address] = i
		}
		b.Peers = append(b.Peers, p)
	}
	return b
}

// bgpPeer decodes one entry of director.bgp.peers.
func (d *decoder) bgpPeer(n *yaml.Node, path string, holdTime time.Duration) BGPPeer {
	p := BGPPeer{Port: DefaultBGPPort, HoldTime: holdTime}
	present := d.mapping(n, path, fields{
		"address": func(v *yaml.Node) { d.ipv4(v, path+".address", &p.Address) },
		"asn":     func(v *yaml.Node) { d.asn(v, path+".asn", &p.ASN) },
		"port": func(v *yaml.Node) {
			if port, ok := d.integer(v, path+".port", 1, 65535); ok {
				p.Port = uint16(port)
			}
		},
		"password_file": func(v *yaml.Node) {
			d.str(v, path+".password_file", &p.PasswordFile)
			d.readable(v, path+".password_file", p.PasswordFile)
		},
		"hold_time": func(v *yaml.Node) { d.holdTime(v, path+".hold_time", &p.HoldTime) },
	})
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"address", "asn"} {
			if present[key] == nil {
				d.problemf(n, "%s.%s is required", path, key)
			}
		}
	}
	return p
}

// asn decodes an autonomous system number (4 bytes, RFC 6793).
func (d *decoder) asn(n *yaml.Node, path string, dst *uint32) {
	if v, ok := d.integer(n, path, 1, math.MaxUint32); ok {
		*dst = uint32(v)
	}
}

// holdTime decodes a BGP hold time: 0 or 3 to 65535 whole seconds (RFC
// 4271).
func (d *decoder) holdTime(n *yaml.Node, path string, dst *time.Duration) {
	var v time.Duration
	if !d.duration(n, path, &v) {
		return
	}
	if v != 0 && (v%time.Second != 0 || v < 3*time.Second || v > 65535*time.Second) {
		d.problemf(n, "%s must be 0 (no keepalives) or whole seconds from 3s to 65535s (RFC 4271), not %s", path, v)
		return
	}
	*dst = v
}

// schedulerFlagsOf decodes a service's scheduler_flags, once its scheduler
// is known.
func (d *decoder) schedulerFlagsOf(n *yaml.Node, path string, s *Service) {
	items := d.sequence(n, path)
	allowed := schedulerFlags[s.Scheduler]
	if len(items) > 0 && allowed == nil {
		d.problemf(n, "%s: the %s scheduler has no flags (sh and mh have)", path, s.Scheduler)
		return
	}
	known := make([]string, 0, len(allowed))
	for f := range allowed {
		known = append(known, f)
	}
	slices.Sort(known)
	for _, item := range items {
		var f string
		d.str(item, path+"[]", &f)
		switch {
		case f == "":
		case allowed[f] == 0:
			d.problemf(item, "%s: unknown flag %q of the %s scheduler (one of %s)", path, f, s.Scheduler, strings.Join(known, " "))
		case slices.Contains(s.SchedulerFlags, f):
			d.problemf(item, "%s lists %q twice", path, f)
		default:
			s.SchedulerFlags = append(s.SchedulerFlags, f)
		}
	}
}
