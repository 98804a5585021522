// Package netif adds, removes and lists the IPv4 addresses of network
// interfaces through netlink. Both agents use it: the director for the VIP
// on its NIC, the real-server agent for the VIP on lo.
package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Addr is an address on an interface.
type Addr struct {
	Link   string
	Prefix netip.Prefix
	// HostScope marks an address that is valid only inside the host; the VIP
	// on lo is one, so the kernel never uses it as a source towards others.
	HostScope bool
	// Label is the address label ("lo:0"), as ifconfig shows aliases.
	Label string
}

// String formats the address as ip(8) does.
func (a Addr) String() string {
	s := fmt.Sprintf("%s dev %s", a.Prefix, a.Link)
	if a.HostScope {
		s += " scope host"
	}
	if a.Label != "" && a.Label != a.Link {
		s += " label " + a.Label
	}
	return s
}

// Netlink manages the addresses of the running host's current network
// namespace.
type Netlink struct{}

// LinkExists returns an error naming the interface if it is absent.
func (Netlink) LinkExists(name string) error {
	if _, err := netlink.LinkByName(name); err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	return nil
}

// LinkUp reports whether the interface is administratively up with a
// carrier: a director whose link is down must not stay VRRP master.
func (Netlink) LinkUp(name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", name, err)
	}
	a := link.Attrs()
	return a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown && a.OperState != netlink.OperLowerLayerDown, nil
}

// Add puts the address on its interface; an address already there is fine.
func (Netlink) Add(a Addr) error {
	link, err := netlink.LinkByName(a.Link)
	if err != nil {
		return fmt.Errorf("add %s: interface %s: %w", a, a.Link, err)
	}
	if err := netlink.AddrAdd(link, toNetlink(a)); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add %s: %w", a, err)
	}
	return nil
}

// Delete removes the address; an absent address is fine.
func (Netlink) Delete(a Addr) error {
	link, err := netlink.LinkByName(a.Link)
	if err != nil {
		return fmt.Errorf("delete %s: interface %s: %w", a, a.Link, err)
	}
	if err := netlink.AddrDel(link, toNetlink(a)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("delete %s: %w", a, err)
	}
	return nil
}

// List returns every IPv4 address of every interface.
func (Netlink) List() ([]Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []Addr
	for _, link := range links {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			out = append(out, Addr{
				Link:      link.Attrs().Name,
				Prefix:    netip.PrefixFrom(ip.Unmap(), ones),
				HostScope: a.Scope == int(netlink.SCOPE_HOST),
				Label:     a.Label,
			})
		}
	}
	return out, nil
}

func toNetlink(a Addr) *netlink.Addr {
	p := a.Prefix
	na := &netlink.Addr{
		IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: a.Label,
	}
	if a.HostScope {
		na.Scope = int(netlink.SCOPE_HOST)
	}
	return na
}
