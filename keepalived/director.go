package keepalived

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/lvsdr/lvsdr/topology"
)

// vrrpInstance keeps the interface and addresses of a VRRP instance: they
// say which NIC carries the VIP on the director.
func (c *converter) vrrpInstance(n *Node) {
	name := strings.Join(n.Args, " ")
	var iface string
	var addrs []string
	for _, k := range n.Block {
		switch k.Keyword {
		case "interface":
			if len(k.Args) > 0 {
				iface = k.Args[0]
			}
		case "virtual_ipaddress":
			for _, a := range k.Block {
				addrs = append(addrs, a.Keyword)
			}
		}
	}
	msg := fmt.Sprintf("vrrp_instance %s skipped: lvsdr does not run VRRP, so the VIP fails over only if something else (keepalived in VRRP-only mode, pacemaker) moves it", name)
	if iface != "" {
		msg += fmt.Sprintf("; its interface %s", iface)
		if c.vrrpInterface == "" {
			msg += " is carried as director.interface"
		} else if c.vrrpInterface != iface {
			msg += fmt.Sprintf(" is not carried: director.interface is %s, from vrrp_instance %s on %s", c.vrrpInterface, c.vrrpName, c.where(c.vrrpNode))
		}
	}
	if len(addrs) > 0 {
		msg += fmt.Sprintf("; its virtual_ipaddress %s", strings.Join(addrs, ", "))
	}
	c.warnf(n, "%s", msg)
	if iface != "" && c.vrrpInterface == "" {
		c.vrrpInterface, c.vrrpNode, c.vrrpName = iface, n, name
	}
	c.vrrpAddresses = append(c.vrrpAddresses, addrs...)
}

// interfaces fills in what keepalived.conf's virtual_server blocks do not
// say: the NICs on the director and on the real servers.
func (c *converter) interfaces() {
	if c.vrrpInterface == "" {
		c.warnf(c.vipNode, "director.interface set to %s: keepalived.conf does not say which NIC carries the VIP %s on the director; check it", placeholderInterface, c.vip)
	}
	if len(c.vrrpAddresses) > 0 {
		found := false
		for _, a := range c.vrrpAddresses {
			// virtual_ipaddress entries read "192.168.0.100/24 dev eth0".
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr() == c.vip {
				found = true
			} else if addr, err := netip.ParseAddr(a); err == nil && addr == c.vip {
				found = true
			}
		}
		if !found {
			c.warnf(c.vrrpNode, "the VIP %s of the virtual_server blocks is not among the vrrp virtual_ipaddress entries (%s): check which address the director should carry", c.vip, strings.Join(c.vrrpAddresses, ", "))
		}
	}
	for _, s := range c.services {
		if s.forwarding == string(topology.DirectRouting) || s.forwarding == string(topology.Tunnel) {
			c.warnf(c.vipNode, "realserver.interface set to %s: with %s forwarding the real servers must not answer ARP for the VIP, and keepalived.conf does not say on which of their NICs; check it", placeholderInterface, s.forwarding)
			return
		}
	}
}
