package keepalived

import (
	"fmt"
	"strings"

	"github.com/lvsdr/lvsdr/topology"
)

// interfaces fills in what keepalived.conf's virtual_server blocks do not
// say: the NICs on the director and on the real servers. The director's
// is the dev of the VIP's virtual_ipaddress line, where keepalived puts the
// VIP, else the interface of its vrrp_instance, which keepalived uses then.
func (c *converter) interfaces() {
	var vip *vipEntry
	for i := range c.vips {
		if c.vips[i].prefix.Addr() == c.vip {
			vip = &c.vips[i]
			break
		}
	}
	switch {
	case vip != nil && vip.dev != "":
		c.directorIface = vip.dev
		c.directorIfaceFrom = fmt.Sprintf("the dev of the VIP in vrrp_instance %s", vip.instance.name)
	case vip != nil && vip.instance.iface != "":
		c.directorIface = vip.instance.iface
		c.directorIfaceFrom = fmt.Sprintf("vrrp_instance %s", vip.instance.name)
	case len(c.vips) > 0:
		var addrs []string
		for _, e := range c.vips {
			addrs = append(addrs, e.node.Keyword)
		}
		c.warnf(c.vips[0].instance.node, "the VIP %s of the virtual_server blocks is not among the vrrp virtual_ipaddress entries (%s): check which address the director should carry", c.vip, strings.Join(addrs, ", "))
	}
	if c.directorIface == "" {
		for _, in := range c.vrrpInstances {
			if in.iface != "" {
				c.directorIface, c.directorIfaceFrom = in.iface, fmt.Sprintf("vrrp_instance %s", in.name)
				break
			}
		}
	}
	if c.directorIface == "" {
		c.directorIface = placeholderInterface
		c.warnf(c.vipNode, "director.interface set to %s: keepalived.conf does not say which NIC carries the VIP %s on the director; check it", placeholderInterface, c.vip)
	}
	if vip != nil && vip.prefix.Bits() != c.vip.BitLen() {
		subnet := vip.prefix.Masked()
		c.warnf(vip.node, "virtual_ipaddress %s: lvsdr binds the VIP as %s/%d, which brings no route with it; keepalived's /%d made %s reachable through %s while this director held the VIP (a connected route, with the VIP as a source address into that subnet): if the director reaches %s (its real servers, their checks) only through it, give %s an address of its own in %s", vip.node.Keyword, c.vip, c.vip.BitLen(), vip.prefix.Bits(), subnet, c.directorIface, subnet, c.directorIface, subnet)
	}
	for _, s := range c.services {
		if s.forwarding == string(topology.DirectRouting) || s.forwarding == string(topology.Tunnel) {
			c.warnf(c.vipNode, "realserver.interface set to %s: with %s forwarding the real servers must not answer ARP for the VIP, and keepalived.conf does not say on which of their NICs; check it", placeholderInterface, s.forwarding)
			return
		}
	}
}
