package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// RawConn is the Linux Conn: a raw IPv4 socket of protocol 112 bound to one
// interface, joined to 224.0.0.18 there, sending with TTL 255 and TOS 0xC0
// (internetwork control, as keepalived) from the router's primary address.
type RawConn struct {
	ip      *net.IPConn
	raw     syscall.RawConn
	ifindex int
	src     netip.Addr
}

// Listen opens a RawConn on the interface named ifname. src is the source
// of every advert; if invalid, the interface's first IPv4 address (its
// primary one) is used. It needs CAP_NET_RAW.
func Listen(ifname string, src netip.Addr) (*RawConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("open VRRP socket: %w", err)
	}
	if !src.IsValid() {
		if src, err = primaryAddr(ifi); err != nil {
			return nil, err
		}
	}
	if !src.Is4() {
		return nil, fmt.Errorf("open VRRP socket on %s: source %v is not IPv4", ifname, src)
	}
	ip, err := net.ListenIP("ip4:112", &net.IPAddr{})
	if err != nil {
		return nil, fmt.Errorf("open VRRP socket on %s: %w", ifname, err)
	}
	c := &RawConn{ip: ip, ifindex: ifi.Index, src: src}
	if c.raw, err = ip.SyscallConn(); err != nil {
		ip.Close()
		return nil, fmt.Errorf("open VRRP socket on %s: %w", ifname, err)
	}
	var opErr error
	err = c.raw.Control(func(fd uintptr) {
		s := int(fd)
		set := func(what string, err error) {
			if err != nil && opErr == nil {
				opErr = fmt.Errorf("%s: %w", what, err)
			}
		}
		set("SO_BINDTODEVICE", unix.BindToDevice(s, ifname))
		set("IP_TTL", unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TTL, 255))
		set("IP_MULTICAST_TTL", unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255))
		set("IP_TOS", unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TOS, 0xc0))
		set("IP_MULTICAST_LOOP", unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0))
		set("IP_MULTICAST_IF", unix.SetsockoptIPMreqn(s, unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Address: src.As4(), Ifindex: int32(ifi.Index)}))
		// Joined even for unicast: a multicast advert of our VRID then shows
		// up as rejected (unknown peer) instead of unseen, the classic
		// half-unicast split brain (keepalived #2458).
		set("IP_ADD_MEMBERSHIP", unix.SetsockoptIPMreqn(s, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: MulticastGroup.As4(), Ifindex: int32(ifi.Index)}))
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		ip.Close()
		return nil, fmt.Errorf("open VRRP socket on %s: %w", ifname, err)
	}
	return c, nil
}

func primaryAddr(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address to send VRRP adverts from", ifi.Name)
}

// Send sends payload to dst from the conn's source address (IP_PKTINFO
// picks it for unicast too, where routing would choose otherwise).
func (c *RawConn) Send(payload []byte, dst netip.Addr) error {
	pktinfo := &unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: c.src.As4()}
	oob := unix.PktInfo4(pktinfo)
	var sendErr error
	err := c.raw.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), payload, oob, &unix.SockaddrInet4{Addr: dst.As4()}, 0)
		return !errors.Is(sendErr, unix.EAGAIN)
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return fmt.Errorf("send VRRP advert to %v: %w", dst, err)
	}
	return nil
}

// Receive returns the next VRRP message: a raw IPv4 socket reads the IP
// header too, which carries the TTL, source and destination.
func (c *RawConn) Receive() (Packet, error) {
	buf := make([]byte, 1500)
	for {
		var n int
		var recvErr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, _, recvErr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return !errors.Is(recvErr, unix.EAGAIN)
		})
		if err == nil {
			err = recvErr
		}
		if err != nil {
			return Packet{}, fmt.Errorf("receive VRRP advert: %w", err)
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue
		}
		ihl := int(buf[0]&0xf) * 4
		if ihl < 20 || n < ihl {
			continue
		}
		return Packet{
			Payload: append([]byte(nil), buf[ihl:n]...),
			Src:     netip.AddrFrom4([4]byte(buf[12:16])),
			Dst:     netip.AddrFrom4([4]byte(buf[16:20])),
			TTL:     buf[8],
		}, nil
	}
}

// LocalAddr is the source address of the adverts.
func (c *RawConn) LocalAddr() netip.Addr { return c.src }

// Close closes the socket; a blocked Receive returns net.ErrClosed.
func (c *RawConn) Close() error { return c.ip.Close() }
