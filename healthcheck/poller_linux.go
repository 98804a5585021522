package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
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
	remote rawSockaddr
	local  unix.Sockaddr
	// control and controlContext are the dialer's hooks (MarkedDialer sets
	// SO_MARK in one), called on the socket before it connects, as net does.
	control        func(network, address string, c syscall.RawConn) error
	controlContext func(ctx context.Context, network, address string, c syscall.RawConn) error
	network        string
	address        string
	addr           *net.TCPAddr
	raw            rawSocket
	// bindNoPort: the dialer binds an address without a port, so the port
	// is left to connect (IP_BIND_ADDRESS_NO_PORT) instead of a bind-time
	// search that every TIME_WAIT socket of the address makes longer.
	bindNoPort bool
	// fd is the target's probe socket between probes: open, its FIN sent,
	// for the next probe to reuse once the server's FIN has closed it; -1
	// when there is none.
	fd int
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
	f := &tcpFast{address: tp.Address, addr: net.TCPAddrFromAddrPort(ap), fd: -1}
	f.family, f.network, _ = sockaddr(ap.Addr(), ap.Port())
	f.remote = newRawSockaddr(ap.Addr(), ap.Port())
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
			f.bindNoPort = lap.Port() == 0
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
	// phaseIdle: the check passed and sent its FIN; the socket waits,
	// without a wake-up, for the target's next probe, which reuses it
	// (connect to AF_UNSPEC) if the server's FIN has closed it by then and
	// closes it otherwise.
	phaseIdle
)

// socketSlot is the poller's record of one open socket, indexed by its fd.
type socketSlot struct {
	e       *entry
	started time.Time
	// gen tells a deadline of this socket from one of an earlier socket
	// that had the same fd.
	gen   uint32
	phase uint8
	// forgotten: the target was removed while the socket connected; the
	// socket closes when the connect ends.
	forgotten bool
}

// ioDeadline is when a socket's phase times out.
type ioDeadline struct {
	at  time.Time
	fd  int32
	gen uint32
}

// epollPoller is the TCP fast path: the scheduler goroutine connects
// non-blocking sockets and waits for all of them, its next due time and its
// wake-ups on one epoll set, blocked in epoll_wait itself. Parked on the Go
// runtime's poller instead, with a deadline, every wait cost a runtime
// timer, a second thread woken and put back to sleep, and several clock
// reads (a system call each on a virtual machine whose clock is HPET): more
// than the probes' own system calls on an emulated CPU. A wait of up to
// rawWaitMs keeps its P (see poll); a longer one, the checks being few,
// lets the runtime hand it over, as any blocking system call does.
type epollPoller struct {
	m      *Manager
	epfd   int
	wakefd int
	// wakePending spares the eventfd write when a wake-up is already on
	// its way.
	wakePending atomic.Bool
	next        time.Time
	// clockNow is the time of the last epoll return, moved on every
	// clockEvery probe starts: one clock read serves several (reading the
	// clock is a system call on some virtual machines).
	clockNow  time.Time
	sinceRead int
	events    []unix.EpollEvent
	slots     []socketSlot
	deadlines deadlineHeap
	buf       []byte
}

// clockEvery is how many probe starts share one reading of the clock: a
// probe's connect_timeout may start up to this many connects early, a
// fraction of a millisecond.
const clockEvery = 8

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
	p := &epollPoller{m: m, epfd: epfd, wakefd: wakefd, events: make([]unix.EpollEvent, 256), buf: make([]byte, 512)}
	p.clockNow = time.Now()
	return p, nil
}

// poll collects the set's ready events into p.events, waiting for them up
// to timeoutMs (0: not at all, -1: without end), and returns how many. An
// interrupted wait returns none.
func (p *epollPoller) poll(timeoutMs int) (int, error) {
	var n int
	var errno unix.Errno
	switch {
	case timeoutMs == 0:
		n, errno = epollReadyRaw(p.epfd, p.events, 0)
	case timeoutMs > 0 && timeoutMs <= rawWaitMs && runtime.GOMAXPROCS(0) > 1:
		// Told of a wait in a system call, the runtime takes the P back
		// after 10 ms and wakes its monitor thread, which then polls every
		// 20 us for a millisecond: at a thousand checks a second, a
		// thousand naps a second, more than the probes' own calls on an
		// emulated CPU. Untold, the runtime preempts the goroutine after
		// 10 ms with a signal, which ends the wait early (EINTR): the
		// scheduler just waits again. Meanwhile the P it keeps runs
		// nothing else: on a single P the program's other goroutines
		// would wait up to those 10 ms each time, so there it is told.
		n, errno = epollReadyRaw(p.epfd, p.events, timeoutMs)
	default:
		n, errno = epollWaitBlocking(p.epfd, p.events, timeoutMs)
	}
	switch errno {
	case 0:
		return n, nil
	case unix.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("epoll_wait", errno)
	}
}

// now returns the time for the next probe start: a fresh reading every
// clockEvery starts, the last one otherwise.
func (p *epollPoller) now() time.Time {
	if p.sinceRead++; p.sinceRead >= clockEvery {
		p.clockNow, p.sinceRead = time.Now(), 0
	}
	return p.clockNow
}

// start connects the target's socket without blocking: the socket its
// last probe left, if the server has closed it, or a new one, opened,
// bound and marked as the prober's dialer would. connect_timeout runs from
// here: when the connect starts, not when the probe was due.
func (p *epollPoller) start(e *entry) {
	f := e.fast
	started := p.now()
	fd, fresh := -1, false
	if f.fd >= 0 {
		if p.recycle(f.fd) {
			fd = f.fd
			p.slots[fd].phase = phaseFree // nothing left to read
		} else {
			p.closeSocket(f.fd)
		}
		f.fd = -1
	}
	var err error
	if fd < 0 {
		var local bool
		fd, local, err = p.open(f)
		if local {
			// Out of descriptors or memory: the checker's shortage, not the
			// server's failure.
			p.m.done = append(p.m.done, result{e: e, err: err, at: started, local: true})
			return
		}
		fresh = true
	}
	if err == nil {
		switch errno := connectRaw(fd, &f.remote); errno {
		case 0, unix.EINPROGRESS:
		case unix.EADDRNOTAVAIL, unix.EAGAIN, unix.ENOBUFS, unix.ENOMEM:
			// No local port or buffer: the checker's shortage.
			p.closeSocket(fd)
			p.m.done = append(p.m.done, result{e: e, err: os.NewSyscallError("connect", errno), at: started, local: true})
			return
		default:
			err = os.NewSyscallError("connect", errno)
		}
	}
	if err == nil {
		// One event, edge-triggered, then nothing until the next probe
		// re-arms it: the connect's completion wakes the scheduler, the
		// server's FIN does not.
		ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET | unix.EPOLLONESHOT, Fd: int32(fd)}
		op := unix.EPOLL_CTL_MOD
		if fresh {
			op = unix.EPOLL_CTL_ADD
		}
		if errno := epollCtlRaw(p.epfd, op, fd, &ev); errno != 0 {
			p.closeSocket(fd)
			p.m.done = append(p.m.done, result{e: e, err: os.NewSyscallError("epoll_ctl", errno), at: started, local: true})
			return
		}
	}
	if err != nil {
		p.closeSocket(fd)
		p.fail(e, err, started, started)
		return
	}
	s := p.slot(fd)
	s.e, s.started, s.phase, s.forgotten = e, started, phaseConnecting, false
	s.gen++
	p.deadlines.push(ioDeadline{at: started.Add(e.target.ConnectTimeout), fd: int32(fd), gen: s.gen})
}

// open returns a new socket for f, its Control hooks run and bound as the
// dialer says. local reports a failure of the checker's own (no socket to
// be had); any other error is the dialer's, and fails the probe as a dial
// through net would.
func (p *epollPoller) open(f *tcpFast) (fd int, local bool, err error) {
	fd, err = unix.Socket(f.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err == unix.EMFILE || err == unix.ENFILE {
		// The kept sockets are a saving, not a need: under a low open-file
		// limit they give way to the probes.
		p.shedIdle()
		fd, err = unix.Socket(f.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	}
	if err != nil {
		return -1, true, os.NewSyscallError("socket", err)
	}
	p.slot(fd)
	// The handshake's last ACK waits (up to the kernel's 200 ms delayed
	// ACK) for the probe's FIN and goes with it: one segment fewer a probe
	// for the server and for the checker, the server's connection accepted
	// and ended by the same segment. A kernel without it sends the ACK.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
	f.raw.fd = fd
	switch {
	case f.controlContext != nil:
		err = f.controlContext(context.Background(), f.network, f.address, &f.raw)
	case f.control != nil:
		err = f.control(f.network, f.address, &f.raw)
	}
	if err == nil && f.local != nil {
		if f.bindNoPort {
			// Not supported before Linux 4.2: bind then searches a port, as
			// net does.
			unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		}
		if err = unix.Bind(fd, f.local); err != nil {
			err = os.NewSyscallError("bind", err)
		}
	}
	return fd, false, err
}

// shedIdle closes every socket kept for a target's next probe.
func (p *epollPoller) shedIdle() {
	for fd := range p.slots {
		if s := &p.slots[fd]; s.phase == phaseIdle && s.e != nil {
			s.e.fast.fd = -1
			p.closeSocket(fd)
		}
	}
}

// recycle readies an idle socket for another connect, and reports whether
// it could. Only a socket the server's FIN has closed is reused (its
// connection now a TIME_WAIT entry of the kernel's, with no socket):
// dissolving one still open would reset it.
func (p *epollPoller) recycle(fd int) bool {
	if state, ok := tcpStateRaw(fd); !ok || state != tcpClose {
		return false
	}
	return connectRaw(fd, &unspecSockaddr) == 0
}

// tcpClose is TCP_CLOSE of the kernel's TCP states (include/net/tcp_states.h).
const tcpClose = 7

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

// forget closes the socket a removed target kept for its next probe, or
// has it closed when its connect ends.
func (p *epollPoller) forget(e *entry) {
	f := e.fast
	if f == nil || f.fd < 0 {
		return
	}
	fd := f.fd
	f.fd = -1
	if s := &p.slots[fd]; s.phase == phaseConnecting {
		s.forgotten = true
		return
	}
	p.closeSocket(fd)
}

// epollSlack is how early the fast path starts a probe with others: at most
// 20 wake-ups a second to start probes, whatever their number. Each
// wake-up of the scheduler costs about as much as a probe's own system
// calls on an emulated CPU; a check started up to 50 ms early is not
// checked more often (see Manager.finish).
const epollSlack = 50 * time.Millisecond

func (p *epollPoller) slack() time.Duration { return epollSlack }

func (p *epollPoller) park(m *Manager) {
	p.next = time.Time{}
	if len(m.heap) > 0 {
		p.next = m.heap[0].due
	}
}

// wait waits until the earlier of the next due probe and the next socket
// deadline, an event of a socket or a wake-up. It handles every ready
// socket before any deadline: a connect the kernel completed in time
// passes even when the checker itself got the CPU late.
func (p *epollPoller) wait(hurry bool) {
	until := p.next
	if len(p.deadlines) > 0 && (until.IsZero() || p.deadlines[0].at.Before(until)) {
		until = p.deadlines[0].at
	}
	timeout := 0
	if !hurry {
		timeout = waitMs(until, time.Now())
	}
	n, err := p.poll(timeout)
	now := time.Now()
	p.clockNow, p.sinceRead = now, 0
	for err == nil && n > 0 {
		for i := range n {
			p.handle(p.events[i], now)
		}
		if n < len(p.events) {
			break
		}
		n, err = p.poll(0)
	}
	for len(p.deadlines) > 0 && !p.deadlines[0].at.After(now) {
		d := p.deadlines.pop()
		s := &p.slots[d.fd]
		if s.gen != d.gen || s.phase != phaseConnecting {
			continue
		}
		e, started, forgotten := s.e, s.started, s.forgotten
		p.closeSocket(int(d.fd))
		if !forgotten {
			p.fail(e, os.ErrDeadlineExceeded, started, now)
		}
	}
}

func (p *epollPoller) handle(ev unix.EpollEvent, now time.Time) {
	fd := int(ev.Fd)
	if fd == p.wakefd {
		var b [8]byte
		readRaw(fd, b[:])
		p.wakePending.Store(false)
		return
	}
	s := &p.slots[fd]
	if s.phase != phaseConnecting || ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	// Writable without an error or a hang-up is connected; only a failure
	// needs SO_ERROR to say why.
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
	e, started, forgotten := s.e, s.started, s.forgotten
	if err != nil || forgotten {
		p.closeSocket(fd)
		if !forgotten {
			p.fail(e, os.NewSyscallError("connect", err), started, now)
		}
		return
	}
	p.m.done = append(p.m.done, result{e: e, latency: now.Sub(started), at: now})
	// Close with FIN, never RST (see TCPProber.Probe): send ours and keep
	// the socket, so whatever the server sends before its own FIN is
	// received, not reset. The next probe finds it closed by that FIN and
	// reuses it.
	if shutdownWriteRaw(fd) != 0 {
		p.closeSocket(fd)
		return
	}
	s.phase = phaseIdle
	e.fast.fd = fd
}

// closeSocket closes a probe socket. One the server has not closed yet
// is read first, so that no unread data makes the kernel answer with RST.
func (p *epollPoller) closeSocket(fd int) {
	s := p.slot(fd)
	if s.phase == phaseIdle {
		p.drain(fd)
	}
	unix.Close(fd)
	s.e, s.phase, s.forgotten = nil, phaseFree, false
	s.gen++
}

// drain reads what the server sent until it would block or ends.
func (p *epollPoller) drain(fd int) {
	for {
		n, errno := readRaw(fd, p.buf)
		if n > 0 || errno == unix.EINTR {
			continue
		}
		return
	}
}

// wakeWord is what a wake-up writes to the eventfd: a counter of 1.
var wakeWord = [8]byte{1}

func (p *epollPoller) wake() {
	if p.wakePending.CompareAndSwap(false, true) {
		writeRaw(p.wakefd, wakeWord[:])
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

// waitMs is epoll_wait's timeout for a wait until until (zero: none) from
// now, in whole milliseconds rounded up: a probe starts up to a
// millisecond after its due time, never before it would have.
func waitMs(until, now time.Time) int {
	if until.IsZero() {
		return -1
	}
	d := until.Sub(now)
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return int(min(ms, time.Duration(maxWaitMs)))
}

// rawWaitMs is the longest wait made without telling the runtime: no
// longer than the slack, so only while the checks are dense (the wait
// until the next batch). Sparse checks wait told: their waits are longer
// than the runtime's 10 ms anyway, and the raw waits' preemption signals
// cost more there than the runtime's naps (VM, 10 checks: 9-12 % of a core
// raw against 8-9 % told; 1,000 checks: 386 against 406 us a probe).
const rawWaitMs = int(epollSlack / time.Millisecond)

// maxWaitMs bounds one wait; a longer one just waits again.
const maxWaitMs = 1 << 30

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
