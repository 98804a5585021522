package healthcheck

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fast path's system calls on a probe socket, made raw: none of them
// blocks (the sockets are non-blocking; epoll_wait waits only as long as
// epollPoller.poll allows it raw), so the scheduler need not tell the Go
// runtime it is in a system call. Told, the runtime wakes its monitor
// thread from its sleep at every call after the checker idled (a futex,
// then the monitor's naps and clock reads), which on an emulated CPU cost
// as much again as the probes' own calls.

// rawSockaddr is a socket address in the kernel's form, made once per
// target rather than converted at every connect.
type rawSockaddr struct {
	buf [unsafe.Sizeof(unix.RawSockaddrInet6{})]byte
	len uintptr
}

// unspecSockaddr is a socket address of family AF_UNSPEC: connecting a TCP
// socket to it dissolves the socket's last connection, so it can connect
// again.
var unspecSockaddr = rawSockaddr{len: unsafe.Sizeof(unix.RawSockaddrInet6{})}

func newRawSockaddr(a netip.Addr, port uint16) rawSockaddr {
	var sa rawSockaddr
	// sin_port and sin6_port are in network byte order.
	netPort := [2]byte{byte(port >> 8), byte(port)}
	if a.Is4() {
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.buf[0]))
		in.Family = unix.AF_INET
		in.Port = *(*uint16)(unsafe.Pointer(&netPort[0]))
		in.Addr = a.As4()
		sa.len = unsafe.Sizeof(unix.RawSockaddrInet4{})
		return sa
	}
	in6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.buf[0]))
	in6.Family = unix.AF_INET6
	in6.Port = *(*uint16)(unsafe.Pointer(&netPort[0]))
	in6.Addr = a.As16()
	sa.len = unsafe.Sizeof(unix.RawSockaddrInet6{})
	return sa
}

// connectRaw starts a connect of the non-blocking socket fd to sa.
func connectRaw(fd int, sa *rawSockaddr) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.buf[0])), sa.len)
	return errno
}

// shutdownWriteRaw sends fd's FIN.
func shutdownWriteRaw(fd int) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
	return errno
}

// tcpStateRaw returns the TCP state of fd: the first byte of its
// struct tcp_info, asked for alone (x/sys/unix's helper allocates the
// whole struct on the heap).
func tcpStateRaw(fd int) (uint8, bool) {
	var state [1]byte
	size := uint32(len(state))
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&state[0])), uintptr(unsafe.Pointer(&size)), 0)
	return state[0], errno == 0 && size == 1
}

// epollCtlRaw adds or changes fd's event in the set epfd.
func epollCtlRaw(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errno
}

// epollReadyRaw collects the ready events of epfd, waiting for them up to
// timeoutMs without telling the runtime (see epollPoller.poll).
func epollReadyRaw(epfd int, events []unix.EpollEvent, timeoutMs int) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(timeoutMs), 0, 0)
	return int(n), errno
}

// epollWaitBlocking waits up to timeoutMs (-1: without end) for events of
// epfd. Not raw: it blocks, so the runtime is told, and hands the P over
// if the wait goes on.
func epollWaitBlocking(epfd int, events []unix.EpollEvent, timeoutMs int) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(timeoutMs), 0, 0)
	return int(n), errno
}

// readRaw reads from the non-blocking descriptor fd into b.
func readRaw(fd int, b []byte) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}

// writeRaw writes b to the non-blocking descriptor fd.
func writeRaw(fd int, b []byte) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return errno
}
