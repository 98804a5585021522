package healthcheck

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// MarkedDialer returns a dialer whose connections carry the firewall mark
// (SO_MARK, which needs CAP_NET_ADMIN) and leave from source: a check
// through the VIP is steered to one real server by an IPVS firewall-mark
// service. A zero mark and an invalid source leave the dialer plain.
func MarkedDialer(mark uint32, source netip.Addr) *net.Dialer {
	d := &net.Dialer{}
	if source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	if mark == 0 {
		return d
	}
	d.Control = func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(mark))
		})
		if err == nil {
			err = sockErr
		}
		if err != nil {
			return fmt.Errorf("set SO_MARK %d: %w", mark, err)
		}
		return nil
	}
	return d
}
