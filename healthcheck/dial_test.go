package healthcheck

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/lvsdr/lvsdr/internal/testnet"
)

func TestMarkedDialerMarksAndBinds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	open, _ := testnet.LoopbackPorts(t)
	source := netip.MustParseAddr("127.0.0.7")
	conn, err := MarkedDialer(0x4c560001, source).DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", open))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != source {
		t.Errorf("local address %s, want %s", got, source)
	}
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var getErr error
	raw.Control(func(fd uintptr) { mark, getErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK) })
	if getErr != nil || mark != 0x4c560001 {
		t.Errorf("SO_MARK = %#x (%v), want 0x4c560001", mark, getErr)
	}
}

func TestPlainDialerWithoutMark(t *testing.T) {
	d := MarkedDialer(0, netip.Addr{})
	if d.Control != nil || d.LocalAddr != nil {
		t.Errorf("a zero mark and no source must leave the dialer plain: %+v", d)
	}
}
