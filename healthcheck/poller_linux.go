package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// newPoller returns the epoll fast path on the real clock, and the clock's
// scheduler otherwise (a fake clock cannot drive epoll_wait) or when epoll
// is not to be had.
func newPoller(m *Manager) poller {
	if _, real := m.clock.(clock.Real); real {
		if p, err := newEpollPoller(m); err == nil {
			return p
		}
	}
	return newChanPoller(m.clock)
}

// tcpFast is a TCPProber prepared for the fast path: its address and its
// dialer's settings in the form of the syscalls that use them.
type tcpFast struct {
	family int
	remote unix.Sockaddr
	local  unix.Sockaddr
	// control and controlContext are the dialer's hooks (MarkedDialer sets
	// SO_MARK in one), called on the socket before it connects, as net does.
	control        func(network, address string, c syscall.RawConn) error
	controlContext func(ctx context.Context, network, address string, c syscall.RawConn) error
	network        string
	address        string
	addr           *net.TCPAddr
	raw            rawSocket
}

// rawSocket hands the probe's socket to a dialer's Control hook.
type rawSocket struct{ fd int }

var errRawIO = errors.New("healthcheck: no I/O on a probe socket from a Control hook")

func (r *rawSocket) Control(f func(fd uintptr)) error  { f(uintptr(r.fd)); return nil }
func (r *rawSocket) Read(func(fd uintptr) bool) error  { return errRawIO }
func (r *rawSocket) Write(func(fd uintptr) bool) error { return errRawIO }

func (p *epollPoller) prepare(pr Prober) *tcpFast {
	return prepareTCP(pr)
}

// prepareTCP returns the fast path's form of a TCPProber to a literal
// address whose dialer sets nothing but a local address and Control hooks,
// and nil for anything else (which then runs on a goroutine, as it always
// did).
func prepareTCP(pr Prober) *tcpFast {
	tp, ok := pr.(*TCPProber)
	if !ok {
		return nil
	}
	ap, err := netip.ParseAddrPort(tp.Address)
	if err != nil || ap.Addr().Zone() != "" || ap.Addr().Is4In6() {
		return nil
	}
	f := &tcpFast{address: tp.Address, addr: net.TCPAddrFromAddrPort(ap)}
	f.family, f.network, f.remote = sockaddr(ap.Addr(), ap.Port())
	if d := tp.Dialer; d != nil {
		if d.Timeout != 0 || !d.Deadline.IsZero() || d.Resolver != nil || d.Cancel != nil || d.MultipathTCP() {
			return nil
		}
		if d.LocalAddr != nil {
			la, ok := d.LocalAddr.(*net.TCPAddr)
			if !ok {
				return nil
			}
			lap := la.AddrPort()
			family, _, local := sockaddr(lap.Addr().Unmap(), lap.Port())
			if family != f.family {
				return nil
			}
			f.local = local
		}
		f.control, f.controlContext = d.Control, d.ControlContext
	}
	return f
}

func sockaddr(a netip.Addr, port uint16) (family int, network string, sa unix.Sockaddr) {
	if a.Is4() {
		return unix.AF_INET, "tcp4", &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}
	}
	return unix.AF_INET6, "tcp6", &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}
}

// Socket phases on the fast path.
const (
	phaseFree uint8 = iota
	phaseConnecting
	// phaseClosing: the check passed and sent its FIN; the socket waits
	// for the server's, at most finWait.
	phaseClosing
)

// socketSlot is the poller's record of one open socket, indexed by its fd.
type socketSlot struct {
	e       *entry
	started time.Time
	// gen tells a deadline of this socket from one of an earlier socket
	// that had the same fd.
	gen   uint32
	phase uint8
}

// ioDeadline is when a socket's phase times out.
type ioDeadline struct {
	at  time.Time
	fd  int32
	gen uint32
}

// epollPoller is the TCP fast path: the scheduler goroutine connects
// non-blocking sockets and waits for all of them, its next due time and its
// wake-ups in one epoll_wait.
type epollPoller struct {
	m      *Manager
	epfd   int
	wakefd int
	// wakePending spares the eventfd write when a wake-up is already on
	// its way.
	wakePending atomic.Bool
	next        time.Time
	events      []unix.EpollEvent
	slots       []socketSlot
	deadlines   deadlineHeap
	buf         []byte
}

func newEpollPoller(m *Manager) (*epollPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	return &epollPoller{m: m, epfd: epfd, wakefd: wakefd, events: make([]unix.EpollEvent, 256), buf: make([]byte, 512)}, nil
}

// start opens, binds and marks as the prober's dialer would, and connects
// without blocking. connect_timeout runs from here: when the connect
// starts, not when the probe was due.
func (p *epollPoller) start(e *entry) {
	f := e.fast
	fd, err := unix.Socket(f.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		// Out of descriptors or memory: the checker's shortage, not the
		// server's failure.
		p.m.done = append(p.m.done, result{e: e, err: err, at: time.Now(), local: true})
		return
	}
	started := time.Now()
	f.raw.fd = fd
	switch {
	case f.controlContext != nil:
		err = f.controlContext(context.Background(), f.network, f.address, &f.raw)
	case f.control != nil:
		err = f.control(f.network, f.address, &f.raw)
	}
	if err == nil && f.local != nil {
		if err = unix.Bind(fd, f.local); err != nil {
			err = os.NewSyscallError("bind", err)
		}
	}
	if err == nil {
		err = unix.Connect(fd, f.remote)
		switch err {
		case nil, unix.EINPROGRESS:
			err = nil
		case unix.EADDRNOTAVAIL, unix.EAGAIN, unix.ENOBUFS, unix.ENOMEM:
			// No local port or buffer: the checker's shortage.
			unix.Close(fd)
			p.m.done = append(p.m.done, result{e: e, err: os.NewSyscallError("connect", err), at: time.Now(), local: true})
			return
		default:
			err = os.NewSyscallError("connect", err)
		}
	}
	if err == nil {
		// Edge-triggered, every event at once: the connect's completion and
		// later the server's FIN come without another epoll_ctl. Closing
		// the socket takes it out of the set.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		if err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			p.m.done = append(p.m.done, result{e: e, err: err, at: time.Now(), local: true})
			return
		}
	}
	if err != nil {
		unix.Close(fd)
		p.fail(e, err, started, time.Now())
		return
	}
	s := p.slot(fd)
	s.e, s.started, s.phase = e, started, phaseConnecting
	s.gen++
	p.deadlines.push(ioDeadline{at: started.Add(e.target.ConnectTimeout), fd: int32(fd), gen: s.gen})
}

func (p *epollPoller) slot(fd int) *socketSlot {
	for fd >= len(p.slots) {
		p.slots = append(p.slots, socketSlot{})
	}
	return &p.slots[fd]
}

func (p *epollPoller) fail(e *entry, err error, started, now time.Time) {
	p.m.done = append(p.m.done, result{e: e, err: fmt.Errorf("tcp check: %w", &net.OpError{Op: "dial", Net: "tcp", Addr: e.fast.addr, Err: err}), latency: now.Sub(started), at: now})
}

func (p *epollPoller) scheduled(*entry) {}

// epollSlack is how early the fast path starts a probe with others: at most
// 200 wake-ups a second to start probes, whatever their number.
const epollSlack = 5 * time.Millisecond

func (p *epollPoller) slack() time.Duration { return epollSlack }

func (p *epollPoller) park(m *Manager) {
	p.next = time.Time{}
	if len(m.heap) > 0 {
		p.next = m.heap[0].due
	}
}

// wait blocks in epoll_wait until the earlier of the next due probe and
// the next socket deadline. It handles every ready socket before any
// deadline: a connect the kernel completed in time passes even when the
// checker itself got the CPU late.
func (p *epollPoller) wait(hurry bool) {
	timeout := -1
	if hurry {
		timeout = 0
	} else {
		until := p.next
		if len(p.deadlines) > 0 && (until.IsZero() || p.deadlines[0].at.Before(until)) {
			until = p.deadlines[0].at
		}
		if !until.IsZero() {
			// Round up to the millisecond: epoll_wait counts in them, and
			// waking early would only spin.
			d := time.Until(until)
			timeout = 0
			if d > 0 {
				timeout = int((d + time.Millisecond - 1) / time.Millisecond)
			}
		}
	}
	n, err := unix.EpollWait(p.epfd, p.events, timeout)
	now := time.Now()
	for err == nil && n > 0 {
		for i := range n {
			p.handle(p.events[i], now)
		}
		if n < len(p.events) {
			break
		}
		n, err = unix.EpollWait(p.epfd, p.events, 0)
	}
	for len(p.deadlines) > 0 && !p.deadlines[0].at.After(now) {
		d := p.deadlines.pop()
		s := &p.slots[d.fd]
		if s.gen != d.gen {
			continue
		}
		switch s.phase {
		case phaseConnecting:
			e, started := s.e, s.started
			p.closeSocket(int(d.fd))
			p.fail(e, os.ErrDeadlineExceeded, started, now)
		case phaseClosing:
			// The server kept its side open past finWait: let go, as the
			// goroutine prober does.
			p.closeSocket(int(d.fd))
		}
	}
}

func (p *epollPoller) handle(ev unix.EpollEvent, now time.Time) {
	fd := int(ev.Fd)
	if fd == p.wakefd {
		var b [8]byte
		unix.Read(fd, b[:])
		p.wakePending.Store(false)
		return
	}
	s := &p.slots[fd]
	switch s.phase {
	case phaseConnecting:
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		// Writable without an error or a hang-up is connected; only a
		// failure needs SO_ERROR to say why.
		var err error
		if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || ev.Events&unix.EPOLLOUT == 0 {
			soErr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case gerr != nil:
				err = gerr
			case soErr != 0:
				err = syscall.Errno(soErr)
			default:
				err = syscall.ECONNRESET
			}
		}
		e, started := s.e, s.started
		if err != nil {
			p.closeSocket(fd)
			p.fail(e, os.NewSyscallError("connect", err), started, now)
			return
		}
		p.m.done = append(p.m.done, result{e: e, latency: now.Sub(started), at: now})
		// Close with FIN, never RST (see TCPProber.Probe): send ours, then
		// read to the server's before closing.
		if unix.Shutdown(fd, unix.SHUT_WR) != nil {
			p.closeSocket(fd)
			return
		}
		s.phase = phaseClosing
		s.e = nil
		p.deadlines.push(ioDeadline{at: now.Add(finWait), fd: int32(fd), gen: s.gen})
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			p.drain(fd)
		}
	case phaseClosing:
		p.drain(fd)
	}
}

// drain reads what the server sent until it would block, and closes the
// socket at the server's FIN (or an error).
func (p *epollPoller) drain(fd int) {
	for {
		n, err := unix.Read(fd, p.buf)
		switch {
		case n > 0:
			continue
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		}
		p.closeSocket(fd)
		return
	}
}

func (p *epollPoller) closeSocket(fd int) {
	unix.Close(fd)
	s := &p.slots[fd]
	s.e, s.phase = nil, phaseFree
	s.gen++
}

// wakeWord is what a wake-up writes to the eventfd: a counter of 1.
var wakeWord = [8]byte{1}

func (p *epollPoller) wake() {
	if p.wakePending.CompareAndSwap(false, true) {
		unix.Write(p.wakefd, wakeWord[:])
	}
}

// close closes every probe socket still open; the scheduler calls it as it
// ends.
func (p *epollPoller) close() {
	for fd := range p.slots {
		if p.slots[fd].phase != phaseFree {
			p.closeSocket(fd)
		}
	}
}

// release closes the poller's own descriptors, once nothing can wake it.
func (p *epollPoller) release() {
	unix.Close(p.epfd)
	unix.Close(p.wakefd)
}

// deadlineHeap orders socket deadlines; a deadline of a socket that moved
// on is skipped when it comes up rather than searched for.
type deadlineHeap []ioDeadline

func (h *deadlineHeap) push(d ioDeadline) {
	*h = append(*h, d)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].at.Before(s[parent].at) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *deadlineHeap) pop() ioDeadline {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		child := 2*i + 1
		if child >= len(s) {
			break
		}
		if r := child + 1; r < len(s) && s[r].at.Before(s[child].at) {
			child = r
		}
		if !s[child].at.Before(s[i].at) {
			break
		}
		s[i], s[child] = s[child], s[i]
		i = child
	}
	*h = s
	return top
}
