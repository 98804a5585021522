package director

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// VIPBinder puts the VIP on, and takes it off, the director's interface.
type VIPBinder interface {
	// Bind adds vip/32 to the interface; an address already there is fine.
	Bind(iface string, vip netip.Addr) error
	// Unbind removes vip/32 from the interface; an absent address is fine.
	Unbind(iface string, vip netip.Addr) error
}

// NetlinkVIP is the VIPBinder of the running host.
type NetlinkVIP struct{}

func vipAddr(vip netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(vip.AsSlice()), Mask: net.CIDRMask(vip.BitLen(), vip.BitLen())}}
}

// Bind adds the VIP as a /32 so that it brings no subnet route with it.
func (NetlinkVIP) Bind(iface string, vip netip.Addr) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("bind VIP %s: interface %s: %w", vip, iface, err)
	}
	if err := netlink.AddrAdd(link, vipAddr(vip)); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("bind VIP %s/32 on %s: %w", vip, iface, err)
	}
	return nil
}

// Unbind removes the VIP.
func (NetlinkVIP) Unbind(iface string, vip netip.Addr) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("unbind VIP %s: interface %s: %w", vip, iface, err)
	}
	if err := netlink.AddrDel(link, vipAddr(vip)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("unbind VIP %s/32 from %s: %w", vip, iface, err)
	}
	return nil
}
