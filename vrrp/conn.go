package vrrp

import "net/netip"

// Packet is one received VRRP message with the IPv4 header fields a router
// checks.
type Packet struct {
	Payload  []byte // the VRRP message, without the IP header
	Src, Dst netip.Addr
	TTL      uint8
}

// Conn carries adverts for one router. Implementations: NewConn (a raw
// socket on Linux) and Segment.Join (in memory).
type Conn interface {
	// Send sends one VRRP message to dst (224.0.0.18 or a peer) with IP TTL
	// 255.
	Send(payload []byte, dst netip.Addr) error
	// Receive blocks for the next VRRP message; after Close it returns an
	// error wrapping net.ErrClosed.
	Receive() (Packet, error)
	// LocalAddr is the source address of what Send sends: the router's
	// primary address, which breaks ties between equal priorities.
	LocalAddr() netip.Addr
	Close() error
}
