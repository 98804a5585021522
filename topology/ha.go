package topology

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of director.ha; docs/configuration.md lists them too.
const (
	// DefaultVRRPVersion is keepalived's: with the default advert interval,
	// an lvsdr director speaks exactly what a keepalived director with
	// default settings speaks, so one of a keepalived pair can be replaced
	// without a split brain. Version 3 is needed for sub-second adverts.
	DefaultVRRPVersion    = 2
	DefaultAdvertInterval = time.Second
	// DefaultGARPRepeat and DefaultGARPDelay are keepalived's: 5
	// gratuitous ARPs at the transition to master, 5 more 5 s later.
	DefaultGARPRepeat = 5
	DefaultGARPDelay  = 5 * time.Second
	// DefaultSyncPort and DefaultSyncGroup are the kernel's sync daemon's.
	DefaultSyncPort = 8848
)

// DefaultSyncGroup is the multicast group of the kernel's sync daemon.
var DefaultSyncGroup = netip.MustParseAddr("224.0.0.81")

// Limits of the VRRP advert interval: VRRPv3 carries it in centiseconds in
// 12 bits, VRRPv2 in whole seconds in 8 bits.
const (
	maxAdvertIntervalV3 = 4095 * 10 * time.Millisecond
	maxAdvertIntervalV2 = 255 * time.Second
	maxPreemptDelay     = 1000 * time.Second
)

// HA is VRRP between the directors: one master holds the VIP, the others
// are hot backups with the same IPVS table and checks.
type HA struct {
	// VRID is the virtual router id, the same on every director of the VIP.
	VRID uint8
	// Version is the VRRP version, 2 or 3.
	Version int
	// AdvertInterval is the time between two adverts of the master.
	AdvertInterval time.Duration
	// Unicast sends adverts to the other directors' addresses instead of
	// the VRRP multicast group.
	Unicast bool
	// Preempt lets a director of higher priority take the VIP back from a
	// master of lower priority.
	Preempt bool
	// PreemptDelay is how long a director waits after it starts before it
	// preempts.
	PreemptDelay time.Duration
	// Directors lists every VRRP router of this VRID, keepalived ones
	// included, in file order.
	Directors []HADirector
	// GARPRepeat is how many gratuitous ARPs a new master sends at once.
	GARPRepeat int
	// GARPDelay is when a new master sends the second burst; 0 for none.
	GARPDelay time.Duration
	// GARPRefresh is the period of gratuitous ARPs while master; 0 for none.
	GARPRefresh time.Duration
	// ConnectionSync runs the kernel's IPVS sync daemons on
	// director.interface, so that established connections survive a
	// failover.
	ConnectionSync bool
	// SyncID is the sync daemons' syncid; the VRID unless set.
	SyncID uint8
	// SyncGroup and SyncPort are where the sync daemons send and listen.
	SyncGroup netip.Addr
	SyncPort  uint16
}

// HADirector is one VRRP router of the VIP.
type HADirector struct {
	Name string
	// Address is the router's primary IPv4 address on director.interface:
	// how it is recognised, the source of its adverts, and where unicast
	// adverts go.
	Address netip.Addr
	// Priority is 1 to 255; the highest becomes master, and at equal
	// priority the higher address.
	Priority uint8
}

// ErrNoSelf is wrapped by Self's errors.
var ErrNoSelf = errors.New("this director is not in director.ha.directors")

// Self returns this director's entry: the one named name when name is
// given (a --name flag), else the one whose address is among addresses
// (those of director.interface).
func (h *HA) Self(addresses []netip.Addr, name string) (HADirector, error) {
	names := make([]string, len(h.Directors))
	for i, d := range h.Directors {
		names[i] = d.Name
	}
	if name != "" {
		for _, d := range h.Directors {
			if d.Name == name {
				return d, nil
			}
		}
		return HADirector{}, fmt.Errorf("%w: no director is named %q (known: %s)", ErrNoSelf, name, strings.Join(names, ", "))
	}
	var found []HADirector
	for _, d := range h.Directors {
		if slices.Contains(addresses, d.Address) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		have := make([]string, len(addresses))
		for i, a := range addresses {
			have[i] = a.String()
		}
		if len(have) == 0 {
			have = []string{"none"}
		}
		return HADirector{}, fmt.Errorf("%w: none of its addresses on director.interface (%s) is a director's address; give --name (known: %s)", ErrNoSelf, strings.Join(have, ", "), strings.Join(names, ", "))
	}
	return HADirector{}, fmt.Errorf("this host has the addresses of several directors (%s and %s): give --name", found[0].Name, found[1].Name)
}

// Peers returns the other directors, in file order: where unicast adverts
// go.
func (h *HA) Peers(self HADirector) []HADirector {
	var peers []HADirector
	for _, d := range h.Directors {
		if d.Name != self.Name {
			peers = append(peers, d)
		}
	}
	return peers
}

// ha decodes director.ha.
func (d *decoder) ha(n *yaml.Node, path string) *HA {
	h := &HA{
		Version:    DefaultVRRPVersion,
		Preempt:    true,
		GARPRepeat: DefaultGARPRepeat,
		GARPDelay:  DefaultGARPDelay,
		SyncGroup:  DefaultSyncGroup,
		SyncPort:   DefaultSyncPort,
	}
	var interval time.Duration
	var directorsNode *yaml.Node
	present := d.mapping(n, path, fields{
		"vrid": func(v *yaml.Node) {
			if id, ok := d.integer(v, path+".vrid", 1, 255); ok {
				h.VRID = uint8(id)
			}
		},
		"version": func(v *yaml.Node) {
			if ver, ok := d.integer(v, path+".version", 2, 3); ok {
				h.Version = int(ver)
			}
		},
		"advert_interval": func(v *yaml.Node) { d.positive(v, path+".advert_interval", &interval) },
		"unicast":         func(v *yaml.Node) { d.boolean(v, path+".unicast", &h.Unicast) },
		"preempt":         func(v *yaml.Node) { d.boolean(v, path+".preempt", &h.Preempt) },
		"preempt_delay": func(v *yaml.Node) {
			var delay time.Duration
			if !d.duration(v, path+".preempt_delay", &delay) {
				return
			}
			if delay > maxPreemptDelay {
				d.problemf(v, "%s.preempt_delay must be at most %s (as keepalived's), not %s", path, maxPreemptDelay, delay)
				return
			}
			h.PreemptDelay = delay
		},
		"directors": func(v *yaml.Node) {
			directorsNode = v
			for i, dn := range d.sequence(v, path+".directors") {
				h.Directors = append(h.Directors, d.haDirector(dn, fmt.Sprintf("%s.directors[%d]", path, i)))
			}
		},
		"garp_repeat": func(v *yaml.Node) {
			if r, ok := d.integer(v, path+".garp_repeat", 1, 100); ok {
				h.GARPRepeat = int(r)
			}
		},
		"garp_delay":      func(v *yaml.Node) { d.duration(v, path+".garp_delay", &h.GARPDelay) },
		"garp_refresh":    func(v *yaml.Node) { d.duration(v, path+".garp_refresh", &h.GARPRefresh) },
		"connection_sync": func(v *yaml.Node) { d.boolean(v, path+".connection_sync", &h.ConnectionSync) },
		"sync_id": func(v *yaml.Node) {
			if id, ok := d.integer(v, path+".sync_id", 0, 255); ok {
				h.SyncID = uint8(id)
			}
		},
		"sync_group": func(v *yaml.Node) { d.multicast(v, path+".sync_group", &h.SyncGroup) },
		"sync_port": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".sync_port", 1, 65535); ok {
				h.SyncPort = uint16(p)
			}
		},
	})
	if n.Kind != yaml.MappingNode {
		return h
	}
	for _, key := range []string{"vrid", "directors"} {
		if present[key] == nil {
			d.problemf(n, "%s.%s is required", path, key)
		}
	}
	if present["sync_id"] == nil {
		h.SyncID = h.VRID
	}
	for _, key := range []string{"sync_id", "sync_group", "sync_port"} {
		if k := present[key]; k != nil && !h.ConnectionSync {
			d.problemf(k, "%s.%s is a setting of the sync daemons: it needs connection_sync: true", path, key)
		}
	}
	if k := present["preempt_delay"]; k != nil && !h.Preempt && h.PreemptDelay > 0 {
		d.problemf(k, "%s.preempt_delay is a delay before preempting, and preempt is false", path)
	}
	h.AdvertInterval = DefaultAdvertInterval
	if at := mappingValue(n, "advert_interval"); at != nil && interval > 0 {
		switch {
		case h.Version == 2 && (interval%time.Second != 0 || interval > maxAdvertIntervalV2):
			d.problemf(at, "%s.advert_interval must be whole seconds from 1s to 255s with VRRP version 2 (it counts in seconds), not %s: set version: 3 for a shorter interval", path, interval)
		case h.Version == 3 && (interval%(10*time.Millisecond) != 0 || interval > maxAdvertIntervalV3):
			d.problemf(at, "%s.advert_interval must be a multiple of 10ms from 10ms to 40.95s with VRRP version 3 (it counts in centiseconds), not %s", path, interval)
		default:
			h.AdvertInterval = interval
		}
	}
	if directorsNode != nil {
		d.haDirectors(h, directorsNode, path)
	}
	return h
}

// haDirector decodes one entry of director.ha.directors.
func (d *decoder) haDirector(n *yaml.Node, path string) HADirector {
	var hd HADirector
	if name := mappingValue(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
		path += " (" + name.Value + ")"
	}
	present := d.mapping(n, path, fields{
		"name":    func(v *yaml.Node) { d.name(v, path+".name", &hd.Name) },
		"address": func(v *yaml.Node) { d.ipv4(v, path+".address", &hd.Address) },
		"priority": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".priority", 1, 255); ok {
				hd.Priority = uint8(p)
			}
		},
	})
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"name", "address", "priority"} {
			if present[key] == nil {
				d.problemf(n, "%s.%s is required", path, key)
			}
		}
	}
	return hd
}

// haDirectors checks the directors as a whole.
func (d *decoder) haDirectors(h *HA, n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode {
		return
	}
	if len(n.Content) < 2 {
		d.problemf(n, "%s.directors lists %d director: VRRP needs every director of the VIP, at least 2 (keepalived ones included)", path, len(n.Content))
	}
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, hd := range h.Directors {
		at := n.Content[i]
		if first, dup := names[hd.Name]; dup && hd.Name != "" {
			d.problemf(at, "%s.directors[%d]: name %q is already used by directors[%d]", path, i, hd.Name, first)
		} else {
			names[hd.Name] = i
		}
		if !hd.Address.IsValid() {
			continue
		}
		if first, dup := addrs[hd.Address]; dup {
			d.problemf(at, "%s.directors[%d] (%s): address %s is already used by directors[%d]", path, i, hd.Name, hd.Address, first)
		} else {
			addrs[hd.Address] = i
		}
	}
}

// multicast decodes an IPv4 multicast group.
func (d *decoder) multicast(n *yaml.Node, path string, dst *netip.Addr) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	addr, err := netip.ParseAddr(v)
	if err != nil || !addr.Is4() || !addr.IsMulticast() {
		d.problemf(n, "%s must be an IPv4 multicast group such as %s, not %q", path, DefaultSyncGroup, v)
		return
	}
	*dst = addr
}
