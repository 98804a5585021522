//go:build !linux

package vrrp

import (
	"errors"
	"net/netip"
)

// RawConn is only implemented on Linux.
type RawConn struct{ Conn }

// Listen fails: VRRP's raw socket is Linux only.
func Listen(ifname string, src netip.Addr) (*RawConn, error) {
	return nil, errors.New("open VRRP socket: only supported on Linux")
}
