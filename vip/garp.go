package vip

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// announce broadcasts a gratuitous ARP for vip from iface, so that switches
// and hosts that cached another MAC for the VIP (a director it moved from)
// learn this one at once instead of when their cache expires, as keepalived
// does when it takes a VIP.
func announce(iface string, vip netip.Addr) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("announce VIP %s: %w", vip, err)
	}
	if len(ifi.HardwareAddr) != 6 || !vip.Is4() {
		return nil // not Ethernet, or not ARP: nothing to announce
	}
	proto := htons(unix.ETH_P_ARP)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		return fmt.Errorf("announce VIP %s on %s: %w", vip, iface, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], broadcast)
	if err := unix.Sendto(fd, garpFrame(ifi.HardwareAddr, vip), 0, to); err != nil {
		return fmt.Errorf("announce VIP %s on %s: %w", vip, iface, err)
	}
	return nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpFrame is an Ethernet broadcast ARP request whose sender and target
// address are both the VIP: the form that every stack takes as an update.
func garpFrame(mac net.HardwareAddr, vip netip.Addr) []byte {
	ip := vip.As4()
	f := make([]byte, 0, 42)
	f = append(f, broadcast...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = binary.BigEndian.AppendUint16(f, 1)      // hardware: Ethernet
	f = binary.BigEndian.AppendUint16(f, 0x0800) // protocol: IPv4
	f = append(f, 6, 4)
	f = binary.BigEndian.AppendUint16(f, 1) // request
	f = append(f, mac...)
	f = append(f, ip[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, ip[:]...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
