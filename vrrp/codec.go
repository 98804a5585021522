package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is VRRP's IPv4 protocol number.
const Protocol = 112

// MulticastGroup is where VRRP adverts go unless unicast is configured.
var MulticastGroup = netip.AddrFrom4([4]byte{224, 0, 0, 18})

const (
	headerLen   = 8
	authLen     = 8 // v2's authentication data, present even without authentication
	typeAdvert  = 1
	maxV3Cs     = 0xfff // 12 bits of centiseconds: 40.95 s
	maxV2Secs   = 0xff
	centisecond = 10 * time.Millisecond
)

// Advert is one VRRP advertisement, either version.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the sender's advert interval: whole seconds in v2,
	// centiseconds in v3.
	Interval  time.Duration
	Addresses []netip.Addr // IPv4
}

// Marshal encodes a as sent from src to dst: v3's checksum covers an IPv4
// pseudo-header with both (RFC 5798; keepalived 2.2.x checks it), so a
// unicast advert is marshalled once per peer.
func (a Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	if len(a.Addresses) == 0 || len(a.Addresses) > 255 {
		return nil, fmt.Errorf("marshal VRRP advert: %d addresses, want 1-255", len(a.Addresses))
	}
	n := headerLen + 4*len(a.Addresses)
	if a.Version == 2 {
		n += authLen
	}
	b := make([]byte, n)
	b[1], b[2], b[3] = a.VRID, a.Priority, byte(len(a.Addresses))
	switch a.Version {
	case 2:
		secs := a.Interval / time.Second
		if a.Interval%time.Second != 0 || secs < 1 || secs > maxV2Secs {
			return nil, fmt.Errorf("marshal VRRP v2 advert: interval %v is not 1-255 whole seconds", a.Interval)
		}
		b[0] = 2<<4 | typeAdvert
		b[4] = 0 // authentication type: none
		b[5] = byte(secs)
	case 3:
		cs := a.Interval / centisecond
		if a.Interval%centisecond != 0 || cs < 1 || cs > maxV3Cs {
			return nil, fmt.Errorf("marshal VRRP v3 advert: interval %v is not 10 ms to 40.95 s in 10 ms steps", a.Interval)
		}
		b[0] = 3<<4 | typeAdvert
		binary.BigEndian.PutUint16(b[4:], uint16(cs))
	default:
		return nil, fmt.Errorf("marshal VRRP advert: version %d, want 2 or 3", a.Version)
	}
	for i, addr := range a.Addresses {
		if !addr.Is4() {
			return nil, fmt.Errorf("marshal VRRP advert: %v is not an IPv4 address", addr)
		}
		a4 := addr.As4()
		copy(b[headerLen+4*i:], a4[:])
	}
	var sum uint16
	if a.Version == 3 {
		sum = checksum(b, pseudoHeader(src, dst, len(b)))
	} else {
		sum = checksum(b, nil)
	}
	binary.BigEndian.PutUint16(b[6:], sum)
	return b, nil
}

// Unmarshal decodes a VRRP message (the IPv4 payload) received from src at
// dst, checking what the message alone can prove: length, version, type,
// checksum and, in v2, that no authentication is asked for. A v3 checksum is
// accepted with the IPv4 pseudo-header (RFC 5798, keepalived) or without it
// (RFC 9568). Errors wrap the sentinel Err* values.
func Unmarshal(b []byte, src, dst netip.Addr) (Advert, error) {
	if len(b) < headerLen {
		return Advert{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	a := Advert{Version: int(b[0] >> 4), VRID: b[1], Priority: b[2]}
	if a.Version != 2 && a.Version != 3 {
		return Advert{}, fmt.Errorf("%w: version %d", ErrBadVersion, a.Version)
	}
	if b[0]&0xf != typeAdvert {
		return Advert{}, fmt.Errorf("%w: type %d", ErrBadType, b[0]&0xf)
	}
	count := int(b[3])
	want := headerLen + 4*count
	if a.Version == 2 {
		want += authLen
	}
	if count == 0 || len(b) < want {
		return Advert{}, fmt.Errorf("%w: %d bytes for %d addresses (v%d)", ErrMalformed, len(b), count, a.Version)
	}
	switch a.Version {
	case 2:
		if checksum(b, nil) != 0 {
			return Advert{}, fmt.Errorf("%w: v2 message sum %#04x", ErrBadChecksum, binary.BigEndian.Uint16(b[6:]))
		}
		if b[4] != 0 {
			return Advert{}, fmt.Errorf("%w: authentication type %d, lvsdr sends none", ErrAuthMismatch, b[4])
		}
		a.Interval = time.Duration(b[5]) * time.Second
	case 3:
		if checksum(b, pseudoHeader(src, dst, len(b))) != 0 && checksum(b, nil) != 0 {
			return Advert{}, fmt.Errorf("%w: v3 checksum %#04x from %v to %v", ErrBadChecksum, binary.BigEndian.Uint16(b[6:]), src, dst)
		}
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&maxV3Cs) * centisecond
	}
	a.Addresses = make([]netip.Addr, count)
	for i := range a.Addresses {
		a.Addresses[i] = netip.AddrFrom4([4]byte(b[headerLen+4*i : headerLen+4*i+4]))
	}
	return a, nil
}

// pseudoHeader is the IPv4 pseudo-header v3's checksum covers.
func pseudoHeader(src, dst netip.Addr, length int) []byte {
	p := make([]byte, 12)
	s, d := src.As4(), dst.As4()
	copy(p[0:], s[:])
	copy(p[4:], d[:])
	p[9] = Protocol
	binary.BigEndian.PutUint16(p[10:], uint16(length))
	return p
}

// checksum is the Internet checksum (RFC 1071) of prefix followed by b. Over
// a message carrying its checksum it is 0 when the checksum is right.
func checksum(b, prefix []byte) uint16 {
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	add(prefix) // always 12 bytes: no odd byte to carry over
	add(b)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
