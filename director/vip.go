package director

import (
	"net/netip"

	"github.com/lvsdr/lvsdr/internal/netif"
)

// VIPBinder puts the VIP on, and takes it off, the director's interface.
type VIPBinder interface {
	// Bind adds vip/32 to the interface; an address already there is fine.
	Bind(iface string, vip netip.Addr) error
	// Unbind removes vip/32 from the interface; an absent address is fine.
	Unbind(iface string, vip netip.Addr) error
	// Announce tells the segment, by gratuitous ARP, that the VIP is here.
	Announce(iface string, vip netip.Addr) error
}

// NetlinkVIP is the VIPBinder of the running host. The VIP goes on as a /32
// so that it brings no subnet route with it.
type NetlinkVIP struct{}

func vipOn(iface string, vip netip.Addr) netif.Addr {
	return netif.Addr{Link: iface, Prefix: netip.PrefixFrom(vip, vip.BitLen())}
}

// Bind adds the VIP.
func (NetlinkVIP) Bind(iface string, vip netip.Addr) error {
	return netif.Netlink{}.Add(vipOn(iface, vip))
}

// Announce sends a gratuitous ARP for the VIP.
func (NetlinkVIP) Announce(iface string, vip netip.Addr) error { return announce(iface, vip) }

// Unbind removes the VIP.
func (NetlinkVIP) Unbind(iface string, vip netip.Addr) error {
	return netif.Netlink{}.Delete(vipOn(iface, vip))
}
