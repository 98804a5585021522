package keepalived

import (
	"net/netip"
	"slices"
	"strings"
)

// vipEntry is one line of a virtual_ipaddress block:
// "ADDRESS[/BITS] [dev IF] [label L] ...".
type vipEntry struct {
	node     *Node
	prefix   netip.Prefix
	dev      string
	instance *vrrpInstance
}

// vrrpInstance is a vrrp_instance block, read before the VIP is known:
// the one that holds the VIP becomes director.ha.
type vrrpInstance struct {
	node  *Node
	name  string
	iface string
	// addresses are its virtual_ipaddress lines, which its adverts list.
	addresses []*Node
}

// vrrpInstance reads the interface and addresses of a VRRP instance: they
// say which NIC carries the VIP on the director, and which instance is
// the VIP's.
func (c *converter) vrrpInstance(n *Node) {
	in := &vrrpInstance{node: n, name: strings.Join(n.Args, " ")}
	for _, k := range n.Block {
		switch k.Keyword {
		case "interface":
			if len(k.Args) > 0 {
				in.iface = k.Args[0]
			}
		case "virtual_ipaddress":
			for _, a := range k.Block {
				in.addresses = append(in.addresses, a)
				c.vipEntry(a, in)
			}
		}
	}
	c.vrrpInstances = append(c.vrrpInstances, in)
}

// vipEntry reads one virtual_ipaddress line of instance in.
func (c *converter) vipEntry(n *Node, in *vrrpInstance) {
	e := vipEntry{node: n, instance: in}
	if p, err := netip.ParsePrefix(n.Keyword); err == nil {
		e.prefix = p
	} else if a, err := netip.ParseAddr(n.Keyword); err == nil {
		e.prefix = netip.PrefixFrom(a, a.BitLen())
	} else {
		c.warnf(n, "virtual_ipaddress %s is not an address: not carried", n.Keyword)
		return
	}
	if i := slices.Index(n.Args, "dev"); i >= 0 && i+1 < len(n.Args) {
		e.dev = n.Args[i+1]
	}
	c.vips = append(c.vips, e)
}

// globals are the global_defs settings the conversion uses.
type globals struct {
	routerID    *Node
	vrrpVersion *Node
	syncDaemon  *Node
	garpDelay   *Node
	garpRepeat  *Node
	garpRefresh *Node
}

// globalDefs reads global_defs: the VRRP defaults of every instance, the
// router id that names this director, the sync daemon; the rest is listed
// in one warning.
func (c *converter) globalDefs(n *Node) {
	g := &c.globals
	used := map[string]**Node{
		"router_id":                &g.routerID,
		"vrrp_version":             &g.vrrpVersion,
		"lvs_sync_daemon":          &g.syncDaemon,
		"vrrp_garp_master_delay":   &g.garpDelay,
		"vrrp_garp_master_repeat":  &g.garpRepeat,
		"vrrp_garp_master_refresh": &g.garpRefresh,
	}
	var notCarried []string
	for _, k := range n.Block {
		if dst, ok := used[k.Keyword]; ok {
			*dst = k
		} else {
			notCarried = append(notCarried, k.Keyword)
		}
	}
	if len(notCarried) > 0 {
		c.warnf(n, "global_defs: %s not carried: lvsdr has no equivalent", strings.Join(notCarried, ", "))
	}
}
