// Package vip puts the director's virtual address on its interface and
// takes it off, announces it by gratuitous ARP, and keeps it where the
// director's role says it belongs: the Owner is driven by the director's
// loop (standalone: always bound) and, with high availability or BGP, by
// the role that decides who holds it.
package vip

import (
	"fmt"
	"net/netip"

	"github.com/lvsdr/lvsdr/internal/netif"
)

// Binder puts the VIP on, and takes it off, the director's interface.
type Binder interface {
	// Bind adds vip/32 to the interface; an address already there is fine.
	Bind(iface string, vip netip.Addr) error
	// Unbind removes vip/32 from the interface; an absent address is fine.
	Unbind(iface string, vip netip.Addr) error
	// Bound reports whether vip/32 is on the interface now.
	Bound(iface string, vip netip.Addr) (bool, error)
	// Announce tells the segment, by gratuitous ARP, that the VIP is here.
	Announce(iface string, vip netip.Addr) error
	// ProbeSource returns the director's own IPv4 address on the interface,
	// the VIP excepted: checks through the VIP are sent from it.
	ProbeSource(iface string, vip netip.Addr) (netip.Addr, error)
	// Addresses returns the IPv4 addresses on the interface: a director
	// finds its own entry in director.ha by them.
	Addresses(iface string) ([]netip.Addr, error)
}

// Netlink is the Binder of the running host. The VIP goes on as a /32
// so that it brings no subnet route with it.
type Netlink struct{}

func vipOn(iface string, vip netip.Addr) netif.Addr {
	return netif.Addr{Link: iface, Prefix: netip.PrefixFrom(vip, vip.BitLen())}
}

// Bind adds the VIP.
func (Netlink) Bind(iface string, vip netip.Addr) error {
	return netif.Netlink{}.Add(vipOn(iface, vip))
}

// Announce sends a gratuitous ARP for the VIP.
func (Netlink) Announce(iface string, vip netip.Addr) error { return announce(iface, vip) }

// Unbind removes the VIP.
func (Netlink) Unbind(iface string, vip netip.Addr) error {
	return netif.Netlink{}.Delete(vipOn(iface, vip))
}

// Bound reports whether the VIP is on the interface as a /32.
func (Netlink) Bound(iface string, vip netip.Addr) (bool, error) {
	addrs, err := netif.Netlink{}.List()
	if err != nil {
		return false, fmt.Errorf("list addresses: %w", err)
	}
	want := vipOn(iface, vip)
	for _, a := range addrs {
		if a.Link == want.Link && a.Prefix == want.Prefix {
			return true, nil
		}
	}
	return false, nil
}

// Addresses returns the IPv4 addresses of the interface.
func (Netlink) Addresses(iface string) ([]netip.Addr, error) {
	addrs, err := netif.Netlink{}.List()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if a.Link == iface && a.Prefix.Addr().Is4() {
			out = append(out, a.Prefix.Addr())
		}
	}
	return out, nil
}

// ProbeSource returns the first IPv4 address of the interface that is not
// the VIP.
func (Netlink) ProbeSource(iface string, vip netip.Addr) (netip.Addr, error) {
	addrs, err := netif.Netlink{}.List()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Link == iface && a.Prefix.Addr().Is4() && a.Prefix.Addr() != vip {
			return a.Prefix.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address but the VIP to send checks from", iface)
}
