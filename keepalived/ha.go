package keepalived

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options are what keepalived.conf cannot say about the host it came from
// or about the other directors.
type Options struct {
	// DirectorAddress is this director's own address on
	// director.interface, for a vrrp_instance without unicast_src_ip.
	DirectorAddress netip.Addr
	// Peers are the priorities of the other VRRP routers of the VIP by
	// address, which only their own keepalived.conf holds; a peer that
	// unicast_peer does not list (multicast VRRP) is added.
	Peers map[netip.Addr]int
}

// ParseOptions reads the options as the command line gives them: this
// director's address, and the peers as ADDRESS=PRIORITY.
func ParseOptions(directorAddress string, peers []string) (Options, error) {
	var o Options
	if directorAddress != "" {
		addr, err := netip.ParseAddr(directorAddress)
		if err != nil || !addr.Is4() {
			return o, fmt.Errorf("--director-address %q is not an IPv4 address", directorAddress)
		}
		o.DirectorAddress = addr
	}
	for _, p := range peers {
		a, prio, ok := strings.Cut(p, "=")
		addr, err := netip.ParseAddr(a)
		priority, perr := strconv.Atoi(prio)
		if !ok || err != nil || !addr.Is4() || perr != nil || priority < 1 || priority > 255 {
			return o, fmt.Errorf("--peer %q: want ADDRESS=PRIORITY, an IPv4 address and a priority from 1 to 255", p)
		}
		if o.Peers == nil {
			o.Peers = map[netip.Addr]int{}
		}
		if _, dup := o.Peers[addr]; dup {
			return o, fmt.Errorf("--peer %s given twice", addr)
		}
		o.Peers[addr] = priority
	}
	return o, nil
}

// keepalivedPriority is keepalived's priority when a vrrp_instance gives
// none.
const keepalivedPriority = 100

// haConfig is director.ha, converted from the VIP's vrrp_instance.
type haConfig struct {
	vrid         int
	version      int
	advert       opt[time.Duration]
	unicast      bool
	preempt      bool
	preemptDelay opt[time.Duration]
	garpRepeat   opt[int]
	garpDelay    opt[time.Duration]
	garpRefresh  opt[time.Duration]
	sync         bool
	syncID       opt[int]
	syncGroup    string
	syncPort     opt[int]
	directors    []haDirector
}

// haDirector is one entry of director.ha.directors; an invalid addr is
// one keepalived.conf does not give.
type haDirector struct {
	name     string
	addr     netip.Addr
	priority int
	// comment is written beside the entry: where it comes from, or that
	// it is a placeholder to check.
	comment string
}

// vrrpNotCarried says why a vrrp_instance keyword has no place in
// director.ha.
var vrrpNotCarried = map[string]string{
	"track_interface":            "lvsdr watches director.interface only",
	"track_script":               "lvsdr runs no tracking scripts: a director's priority is fixed",
	"track_file":                 "lvsdr tracks no files: a director's priority is fixed",
	"track_process":              "lvsdr tracks no processes: a director's priority is fixed",
	"track_bfd":                  "lvsdr runs no BFD",
	"notify_stop":                "director.notify has no event for a director that stops",
	"notify_deleted":             "director.notify has no event for an instance deleted by a reload",
	"notify_master_rx_lower_pri": "director.notify has no event for an advert of lower priority received as master",
	"smtp_alert":                 "lvsdr sends no mail",
	"virtual_ipaddress_excluded": "lvsdr binds the VIP only",
	"virtual_routes":             "lvsdr adds no routes",
	"virtual_rules":              "lvsdr adds no routing rules",
	"use_vmac":                   "lvsdr binds the VIP on director.interface itself, with no VRRP MAC address",
}

// ha converts the vrrp_instance that holds the VIP into director.ha; the
// others are skipped, as lvsdr runs VRRP for its one VIP.
func (c *converter) ha() {
	var chosen *vrrpInstance
	for _, e := range c.vips {
		if e.prefix.Addr() == c.vip {
			chosen = e.instance
			break
		}
	}
	for _, in := range c.vrrpInstances {
		if in != chosen {
			c.warnf(in.node, "vrrp_instance %s skipped: its virtual_ipaddress does not hold the VIP %s, and lvsdr runs VRRP for the VIP only", in.name, c.vip)
		}
	}
	if chosen != nil {
		c.haConf = c.haFrom(chosen)
	}
	if c.haConf != nil {
		return
	}
	g := c.globals
	for _, k := range []*Node{g.routerID, g.vrrpVersion, g.syncDaemon, g.garpDelay, g.garpRepeat, g.garpRefresh} {
		if k != nil {
			c.warnf(k, "%s not carried: no vrrp_instance becomes director.ha", k.Keyword)
		}
	}
}

// haFrom converts vrrp_instance in; nil when keepalived would refuse it.
func (c *converter) haFrom(in *vrrpInstance) *haConfig {
	h := &haConfig{version: 2, preempt: true}
	g := c.globals
	if g.vrrpVersion != nil {
		if v, ok := c.integer(g.vrrpVersion, 2, 3); ok {
			h.version = v
		}
	}
	c.garp(g.garpDelay, g.garpRepeat, g.garpRefresh, h)
	var garpDelay, garpRepeat, garpRefresh, preemptDelay, nopreempt, srcIP, syncIface, auth, advert *Node
	var peers []netip.Addr
	priority, master := 0, false
	for _, k := range in.node.Block {
		switch k.Keyword {
		case "interface", "virtual_ipaddress", "preempt":
			// Read with the instance; preempt is keepalived's default.
		case "state":
			// It matters only through keepalived's rules below: lvsdr
			// starts every director as backup and lets the priorities
			// decide.
			master = strings.EqualFold(firstArg(k), "MASTER")
		case "virtual_router_id":
			if v, ok := c.integer(k, 1, 255); ok {
				h.vrid = v
			}
		case "priority":
			if v, ok := c.integer(k, 1, 255); ok {
				priority = v
			}
		case "advert_int":
			if d, ok := c.seconds(k); ok {
				h.advert, advert = some(d), k
			}
		case "version":
			if v, ok := c.integer(k, 2, 3); ok {
				h.version = v
			}
		case "nopreempt":
			h.preempt, nopreempt = false, k
		case "preempt_delay":
			if d, ok := c.seconds(k); ok {
				h.preemptDelay, preemptDelay = some(d), k
			}
		case "unicast_src_ip":
			srcIP = k
		case "mcast_src_ip":
			if srcIP == nil {
				srcIP = k
			}
		case "unicast_peer":
			h.unicast = true
			for _, p := range k.Block {
				addr, err := netip.ParseAddr(p.Keyword)
				if err != nil {
					c.warnf(p, "unicast_peer %s is not an address: not carried", p.Keyword)
					continue
				}
				if len(p.Args) > 0 {
					c.warnf(p, "unicast_peer %s: %s not carried", p.Keyword, strings.Join(p.Args, " "))
				}
				peers = append(peers, addr.Unmap())
			}
		case "authentication":
			auth = k
		case "garp_master_delay":
			garpDelay = k
		case "garp_master_repeat":
			garpRepeat = k
		case "garp_master_refresh":
			garpRefresh = k
		case "lvs_sync_daemon_interface":
			syncIface = k
		case "notify", "notify_master", "notify_backup", "notify_fault":
			when, filter := roleNotify(k.Keyword, in.name)
			c.notifyScript(k, when, filter)
		default:
			if why, ok := vrrpNotCarried[k.Keyword]; ok {
				c.warnf(k, "%s not carried: %s", k.Keyword, why)
			} else {
				c.notCarried(k, "vrrp_instance")
			}
		}
	}
	if h.vrid == 0 {
		c.warnf(in.node, "vrrp_instance %s has no virtual_router_id, which keepalived requires: not carried as director.ha", in.name)
		return nil
	}
	c.garp(garpDelay, garpRepeat, garpRefresh, h)
	switch {
	case auth != nil && h.version == 3:
		c.warnf(auth, "authentication not carried: VRRPv3 has none, and keepalived ignores it with version 3 too")
	case auth != nil:
		c.warnf(auth, "authentication not carried: VRRPv2's authentication is gone from the protocol (RFC 3768) and lvsdr sends none; a keepalived director of this VRID with authentication discards lvsdr's adverts and both become master: remove it there before mixing them")
	}
	if in.iface != "" && in.iface != c.directorIface {
		c.warnf(in.node, "vrrp_instance %s runs on %s, and lvsdr sends and receives VRRP on director.interface, %s, the VIP's NIC: the keepalived directors of VRID %d must hear it there", in.name, in.iface, c.directorIface, h.vrid)
	}
	priority = c.keepalivedVRRPRules(h, instanceSettings{priority, master, nopreempt, preemptDelay, advert})
	c.advertisedAddresses(in, h)
	c.syncDaemon(in, h, syncIface)
	c.haDirectors(in, h, srcIP, priority, peers)
	return h
}

// keepalivedVRRPRules applies what keepalived 2.2 makes of an instance's
// settings (vrrp.c, vrrp_complete_instance), so that director.ha behaves as
// the instance did: without a priority, state MASTER means 255, the
// address owner's, else 100; nopreempt means nothing at 255 or with state
// MASTER; preempt_delay nothing with state MASTER or nopreempt; a VRRPv2
// advert interval is whole seconds, rounded.
// It returns the priority.
func (c *converter) keepalivedVRRPRules(h *haConfig, in instanceSettings) int {
	priority, master, nopreempt, preemptDelay := in.priority, in.master, in.nopreempt, in.preemptDelay
	if priority == 0 {
		priority = keepalivedPriority
		if master {
			priority = 255
		}
	}
	if nopreempt != nil && (priority == 255 || master) {
		why := "priority 255"
		if master {
			why = "state MASTER"
		}
		c.warnf(nopreempt, "nopreempt not carried: keepalived ignores it with %s, so it preempted", why)
		h.preempt = true
	}
	if preemptDelay != nil && h.preemptDelay.set {
		switch {
		case master:
			c.warnf(preemptDelay, "preempt_delay not carried: keepalived ignores it with state MASTER")
			h.preemptDelay = opt[time.Duration]{}
		case !h.preempt:
			c.warnf(preemptDelay, "preempt_delay not carried: with nopreempt there is no preemption to delay, in keepalived as in lvsdr")
			h.preemptDelay = opt[time.Duration]{}
		}
	}
	if h.version == 2 && h.advert.set && h.advert.v%time.Second != 0 {
		rounded := max(h.advert.v.Round(time.Second), time.Second)
		c.warnf(in.advert, "advert_int %s carried as %s: VRRPv2 counts whole seconds, and keepalived rounds it too", formatDuration(h.advert.v), formatDuration(rounded))
		h.advert = some(rounded)
	}
	return priority
}

// instanceSettings are what keepalived's rules for an instance look at:
// its priority (0: not given), its state, and where nopreempt,
// preempt_delay and advert_int are given.
type instanceSettings struct {
	priority                        int
	master                          bool
	nopreempt, preemptDelay, advert *Node
}

// garp reads keepalived's gratuitous ARP settings, global or of the
// instance, into h.
func (c *converter) garp(delay, repeat, refresh *Node, h *haConfig) {
	if delay != nil {
		if d, ok := c.seconds(delay); ok {
			h.garpDelay = some(d)
		}
	}
	if repeat != nil {
		if r, ok := c.integer(repeat, 1, 100); ok {
			h.garpRepeat = some(r)
		}
	}
	if refresh != nil {
		if d, ok := c.seconds(refresh); ok {
			h.garpRefresh = some(d)
		}
	}
}

// advertisedAddresses warns when keepalived's adverts would list other
// addresses than lvsdr's, which list the VIP only: VRRP routers whose
// lists differ discard each other's adverts.
func (c *converter) advertisedAddresses(in *vrrpInstance, h *haConfig) {
	var others []string
	for _, a := range in.addresses {
		if p, err := netip.ParsePrefix(a.Keyword); err == nil && p.Addr() == c.vip {
			continue
		}
		if addr, err := netip.ParseAddr(a.Keyword); err == nil && addr == c.vip {
			continue
		}
		others = append(others, a.Keyword)
	}
	if len(others) > 0 {
		c.warnf(in.node, "vrrp_instance %s: its virtual_ipaddress lists %s besides the VIP, and lvsdr's adverts list the VIP only: a keepalived director of VRID %d with these addresses and an lvsdr one discard each other's adverts and both become master; before mixing them, leave only the VIP in virtual_ipaddress on the keepalived side (virtual_ipaddress_excluded is not advertised)", in.name, strings.Join(others, ", "), h.vrid)
	}
}

// syncDaemon reads keepalived's sync daemon, `lvs_sync_daemon IF INSTANCE
// [id N] [port P] [group G] ...` in global_defs or the older
// lvs_sync_daemon_interface of the instance, into connection_sync.
func (c *converter) syncDaemon(in *vrrpInstance, h *haConfig, instanceIface *Node) {
	k := c.globals.syncDaemon
	if k == nil && instanceIface == nil {
		return
	}
	switch {
	case k == nil:
		k = instanceIface
	case instanceIface != nil:
		c.warnf(instanceIface, "lvs_sync_daemon_interface ignored: global_defs' lvs_sync_daemon wins, as in keepalived")
	}
	if len(k.Args) == 0 {
		c.warnf(k, "%s has no interface: not carried", k.Keyword)
		return
	}
	args := k.Args[1:]
	if k == c.globals.syncDaemon && len(args) > 0 {
		if _, isID := strconv.Atoi(args[0]); isID != nil || c.instanceNamed(args[0]) {
			if args[0] != in.name {
				c.warnf(k, "lvs_sync_daemon of vrrp_instance %s not carried: lvsdr syncs connections along the VIP's instance, %s", args[0], in.name)
				return
			}
			args = args[1:]
		} else {
			// An older form: lvs_sync_daemon IF ID.
			args = append([]string{"id"}, args...)
		}
	}
	h.sync = true
	if iface := k.Args[0]; iface != c.directorIface {
		c.warnf(k, "%s %s: lvsdr runs the sync daemons on director.interface, %s, not %s", k.Keyword, iface, c.directorIface, iface)
	}
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.warnf(k, "%s: %s has no value: not carried", k.Keyword, args[i])
			break
		}
		key, value := args[i], args[i+1]
		switch key {
		case "id":
			if id, err := strconv.Atoi(value); err == nil && id >= 0 && id <= 255 {
				h.syncID = some(id)
			} else {
				c.warnf(k, "%s: id %s is not a whole number from 0 to 255: not carried", k.Keyword, value)
			}
		case "port":
			if p, err := strconv.Atoi(value); err == nil && p >= 1 && p <= 65535 {
				h.syncPort = some(p)
			} else {
				c.warnf(k, "%s: port %s is not a port: not carried", k.Keyword, value)
			}
		case "group":
			// Carried as written: validation says when it is no IPv4
			// multicast group.
			h.syncGroup = value
		default:
			c.warnf(k, "%s: %s %s not carried: lvsdr's sync daemons use the kernel's defaults for it", k.Keyword, key, value)
		}
	}
}

func (c *converter) instanceNamed(name string) bool {
	return slices.ContainsFunc(c.vrrpInstances, func(in *vrrpInstance) bool { return in.name == name })
}

// directorName is what topology accepts as a name.
var directorName = regexp.MustCompile(`^[^\s/]+$`)

// haDirectors lists this director and its peers. keepalived.conf gives this
// director's priority, and its address when unicast_src_ip (or
// mcast_src_ip) is set; of the peers only their addresses, with unicast.
// What it lacks comes from the options, else is a placeholder, warned.
func (c *converter) haDirectors(in *vrrpInstance, h *haConfig, srcIP *Node, priority int, peers []netip.Addr) {
	self := haDirector{priority: priority, comment: "this director"}
	if srcIP != nil {
		if addr, err := netip.ParseAddr(firstArg(srcIP)); err == nil {
			self.addr = addr.Unmap()
		} else {
			c.warnf(srcIP, "%s %s is not an address: not carried", srcIP.Keyword, firstArg(srcIP))
		}
	}
	if a := c.options.DirectorAddress; a.IsValid() {
		if self.addr.IsValid() && self.addr != a {
			c.warnf(srcIP, "%s %s differs from the director address given, %s, which is carried", srcIP.Keyword, self.addr, a)
		}
		self.addr = a
	}
	if !self.addr.IsValid() {
		self.comment = "CHECK: add this director's address on director.interface"
		c.warnf(in.node, "vrrp_instance %s does not say this director's own address (no unicast_src_ip): add it to director.ha.directors, or import with --director-address", in.name)
	}
	self.name = c.selfName(self.addr)

	var extra []netip.Addr
	for addr := range c.options.Peers {
		if !slices.Contains(peers, addr) && addr != self.addr {
			extra = append(extra, addr)
		}
	}
	slices.SortFunc(extra, netip.Addr.Compare)
	for _, addr := range extra {
		if h.unicast {
			c.warnf(in.node, "the peer %s given is not a unicast_peer of vrrp_instance %s: added to director.ha.directors; the keepalived directors need it among their unicast_peer too", addr, in.name)
		}
	}
	peers = append(peers, extra...)
	h.directors = append(h.directors, self)
	for _, addr := range peers {
		peer := haDirector{name: "lb_" + underscored(addr), addr: addr}
		if p, ok := c.options.Peers[addr]; ok {
			peer.priority = p
		} else {
			peer.priority = keepalivedPriority
			peer.comment = "PLACEHOLDER priority: set the peer's own, from its keepalived.conf"
			c.warnf(in.node, "director.ha.directors: the priority of the peer %s is in its own keepalived.conf, not this one: %d is written as a PLACEHOLDER; set the real one (or import with --peer %s=PRIORITY), or the wrong director may become master", addr, keepalivedPriority, addr)
		}
		h.directors = append(h.directors, peer)
	}
	if len(peers) == 0 {
		c.warnf(in.node, "vrrp_instance %s does not name the other directors (VRRP by multicast): add each to director.ha.directors with its address and priority, or import with --peer ADDRESS=PRIORITY", in.name)
	}
}

// selfName names this director after global_defs' router_id, which names
// it in keepalived too, else after its address.
func (c *converter) selfName(addr netip.Addr) string {
	if id := firstArg(c.globals.routerID); directorName.MatchString(id) {
		return id
	}
	if addr.IsValid() {
		return "lb_" + underscored(addr)
	}
	return "this_director"
}

func firstArg(n *Node) string {
	if n == nil || len(n.Args) == 0 {
		return ""
	}
	return n.Args[0]
}

// underscored writes an address with underscores, for names.
func underscored(addr netip.Addr) string {
	return strings.NewReplacer(".", "_", ":", "_").Replace(addr.String())
}
