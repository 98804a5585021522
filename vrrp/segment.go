package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Segment is an in-memory network segment for tests: the Conns joined to it
// receive each other's multicast adverts, and unicast ones sent to their
// address.
type Segment struct {
	mu    sync.Mutex
	conns []*FakeConn
}

// NewSegment returns an empty segment.
func NewSegment() *Segment { return &Segment{} }

// Join returns a Conn on the segment whose address is addr.
func (s *Segment) Join(addr netip.Addr) *FakeConn {
	c := &FakeConn{seg: s, addr: addr, in: make(chan Packet, 1024), done: make(chan struct{})}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	return c
}

// Inject delivers p as if it had been sent on the segment: to every conn
// but its source if its destination is multicast, else to its destination.
func (s *Segment) Inject(p Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.addr == p.Src || (!p.Dst.IsMulticast() && c.addr != p.Dst) {
			continue
		}
		c.deliver(p)
	}
}

// FakeConn is a Conn on a Segment.
type FakeConn struct {
	seg  *Segment
	addr netip.Addr
	in   chan Packet
	done chan struct{}

	mu     sync.Mutex
	down   bool
	closed bool
	sent   []Packet
}

// Send puts the message on the segment (nowhere if the link is down).
func (c *FakeConn) Send(payload []byte, dst netip.Addr) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("send VRRP advert: %w", net.ErrClosed)
	}
	p := Packet{Payload: append([]byte(nil), payload...), Src: c.addr, Dst: dst, TTL: 255}
	c.sent = append(c.sent, p)
	down := c.down
	c.mu.Unlock()
	if !down {
		c.seg.Inject(p)
	}
	return nil
}

// Receive returns the next message delivered to this conn.
func (c *FakeConn) Receive() (Packet, error) {
	select {
	case p := <-c.in:
		return p, nil
	case <-c.done:
		return Packet{}, fmt.Errorf("receive VRRP advert: %w", net.ErrClosed)
	}
}

// poll returns a waiting message without blocking.
func (c *FakeConn) poll() (Packet, bool) {
	select {
	case p := <-c.in:
		return p, true
	default:
		return Packet{}, false
	}
}

// LocalAddr is the conn's address on the segment.
func (c *FakeConn) LocalAddr() netip.Addr { return c.addr }

// Close makes Receive return.
func (c *FakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	return nil
}

// SetDown cuts (or restores) the conn's link: while down it neither sends
// nor receives, as in a partition.
func (c *FakeConn) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// Sent returns every message the conn sent, link down or not.
func (c *FakeConn) Sent() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.sent...)
}

func (c *FakeConn) deliver(p Packet) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		return
	}
	select {
	case c.in <- p:
	default: // a full socket buffer drops, as the kernel does
	}
}
