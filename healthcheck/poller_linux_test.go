package healthcheck

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// waitTransition returns the next transition, failing the test if none
// comes in a long while (a bound against a hang, not a timing assertion).
func waitTransition(t *testing.T, ch <-chan Transition) Transition {
	t.Helper()
	select {
	case tr := <-ch:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no transition")
		return Transition{}
	}
}

func fastTarget(key Key, p *TCPProber) Target {
	return Target{Key: key, Prober: p, Interval: 50 * time.Millisecond, ConnectTimeout: time.Second,
		Retry: 0, DelayBeforeRetry: 0, Rise: 1, Initial: Unknown}
}

func TestFastPathTakesPlainAndMarkedTCPProbersOnly(t *testing.T) {
	tests := []struct {
		name string
		p    Prober
		fast bool
	}{
		{"plain", &TCPProber{Address: "127.0.0.1:5672"}, true},
		{"ipv6", &TCPProber{Address: "[::1]:5672"}, true},
		{"marked through the VIP", &TCPProber{Address: "10.0.0.100:5672", Dialer: MarkedDialer(7, netip.MustParseAddr("10.0.0.1"))}, true},
		{"a host name", &TCPProber{Address: "localhost:5672"}, false},
		{"a dialer with a timeout of its own", &TCPProber{Address: "127.0.0.1:5672", Dialer: &net.Dialer{Timeout: time.Second}}, false},
		{"a source of the other family", &TCPProber{Address: "127.0.0.1:5672", Dialer: MarkedDialer(0, netip.MustParseAddr("::1"))}, false},
		{"http", &HTTPProber{URL: "http://127.0.0.1/"}, false},
	}
	for _, tt := range tests {
		if got := prepareTCP(tt.p) != nil; got != tt.fast {
			t.Errorf("%s: fast path %v, want %v", tt.name, got, tt.fast)
		}
	}
}

// The fast path passes a listening port and closes with FIN: the server
// reads EOF, not a reset, even when it talks first.
func TestFastPathPassesAndClosesWithFIN(t *testing.T) {
	ln := listen(t)
	seen := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			seen <- err
			return
		}
		defer conn.Close()
		conn.Write([]byte("hello\r\n"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 16))
		seen <- err
	}()
	trs := make(chan Transition, 10)
	m := NewManager(clock.Real{}, func(tr Transition) { trs <- tr })
	defer m.Stop()
	key := Key{"amqp", "n1", "tcp"}
	m.Update([]Target{fastTarget(key, &TCPProber{Address: ln.Addr().String()})})
	if e := entryOf(m, key); e.fast == nil {
		t.Fatal("a plain TCP check is not on the fast path")
	}
	if tr := waitTransition(t, trs); tr.To != Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	if err := <-seen; !errors.Is(err, io.EOF) {
		t.Errorf("server read %v, want io.EOF (FIN); a reset shows as ECONNRESET", err)
	}
}

func TestFastPathFailsAClosedPort(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	trs := make(chan Transition, 10)
	m := NewManager(clock.Real{}, func(tr Transition) { trs <- tr })
	defer m.Stop()
	m.Update([]Target{fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: addr})})
	tr := waitTransition(t, trs)
	if tr.To != Down || !errors.Is(tr.Err, syscall.ECONNREFUSED) {
		t.Errorf("transition %+v, want down with connection refused", tr)
	}
}

// A check through the VIP leaves from the dialer's source with the
// dialer's Control hook applied (MarkedDialer's SO_MARK), as net would.
func TestFastPathBindsAndRunsTheDialersControl(t *testing.T) {
	ln := listen(t)
	from := make(chan netip.Addr, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		from <- conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		conn.Close()
	}()
	source := netip.MustParseAddr("127.0.0.7")
	var mark uint32
	if os.Geteuid() == 0 {
		mark = 0x4c560001 // SO_MARK needs CAP_NET_ADMIN
	}
	d := MarkedDialer(mark, source)
	marked := d.Control
	controlled := make(chan [2]int, 1)
	d.Control = func(network, address string, c syscall.RawConn) error {
		if marked != nil {
			if err := marked(network, address, c); err != nil {
				return err
			}
		}
		var got, gerr int
		c.Control(func(fd uintptr) {
			v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
			got = v
			if err != nil {
				gerr = 1
			}
		})
		select {
		case controlled <- [2]int{got, gerr}:
		default:
		}
		return nil
	}
	trs := make(chan Transition, 10)
	m := NewManager(clock.Real{}, func(tr Transition) { trs <- tr })
	defer m.Stop()
	key := Key{"amqp", "n1", "tcp"}
	m.Update([]Target{fastTarget(key, &TCPProber{Address: ln.Addr().String(), Dialer: d})})
	if e := entryOf(m, key); e.fast == nil {
		t.Fatal("a marked TCP check is not on the fast path")
	}
	if tr := waitTransition(t, trs); tr.To != Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	if got := <-from; got != source {
		t.Errorf("connection from %s, want %s", got, source)
	}
	if c := <-controlled; c[1] != 0 || uint32(c[0]) != mark {
		t.Errorf("SO_MARK on the probe socket = %#x (getsockopt failed: %v), want %#x", c[0], c[1] != 0, mark)
	}
}

// A connect the kernel completed passes even when the checker gets to it
// after connect_timeout: a starved checker must not fail a healthy server.
func TestFastPathPassesACompletedConnectSeenLate(t *testing.T) {
	ln := listen(t)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	tg.ConnectTimeout = time.Nanosecond // long past when wait runs
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	p.start(e)
	awaitTCPState(t, probeSocket(t, p, e), tcpEstablished)
	for len(m.done) == 0 {
		p.wait(false)
	}
	if r := m.done[0]; r.err != nil || r.local {
		t.Errorf("result %+v, want a pass", r)
	}
}

func TestFastPathTimesOutFromTheConnect(t *testing.T) {
	// A listener whose backlog is full answers no SYN: the connect hangs.
	addr := silentListener(t, 0)
	// Fill the backlog.
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		defer c.Close()
	}
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: addr})
	tg.ConnectTimeout = 50 * time.Millisecond
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	p.start(e)
	for len(m.done) == 0 {
		p.wait(false)
	}
	r := m.done[0]
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("result %+v, want a timeout", r)
	}
	if r.latency < tg.ConnectTimeout {
		t.Errorf("timed out after %v, before connect_timeout %v", r.latency, tg.ConnectTimeout)
	}
}

// A passing probe on the fast path allocates nothing.
func TestFastPathProbeAllocatesNothing(t *testing.T) {
	// A listener never accepting: the kernel completes the handshakes.
	addr := silentListener(t, 4096)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: addr})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	probe := func() {
		p.start(e)
		for len(m.done) == 0 {
			p.wait(false)
		}
		if m.done[0].err != nil {
			t.Fatal(m.done[0].err)
		}
		m.done = m.done[:0]
	}
	probe() // grow the slices once
	if n := testing.AllocsPerRun(200, probe); n != 0 {
		t.Errorf("%.1f allocations per probe, want 0", n)
	}
}

// The server's greeting is in the probe socket when the poller sees the
// connect: the probe reads it and sends FIN, never closing over unread data
// (which the kernel answers with RST). The server has the connection before
// the probe's FIN only when the checker is late: the kernel's delayed ACK
// (200 ms) then completes the handshake on its own.
func TestFastPathReadsAGreetingAndClosesWithFIN(t *testing.T) {
	ln := listen(t)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	p.start(e)
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// On loopback the greeting is in the probe's receive queue when Write
	// returns.
	if _, err := conn.Write([]byte("AMQP greeting\r\n")); err != nil {
		t.Fatal(err)
	}
	for len(m.done) == 0 {
		p.wait(false)
	}
	if r := m.done[0]; r.err != nil {
		t.Fatalf("probe: %v", r.err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
		t.Errorf("server read %v, want io.EOF (FIN); a reset shows as ECONNRESET", err)
	}
}

// answerFIN accepts n connections on ln, one at a time, reads each to the
// prober's FIN and closes it, and sends each read's error.
func answerFIN(ln *net.TCPListener, n int) <-chan error {
	seen := make(chan error, n)
	go func() {
		for range n {
			conn, err := ln.Accept()
			if err != nil {
				seen <- err
				return
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 16))
			conn.Close()
			seen <- err
		}
	}()
	return seen
}

// probeOnce runs one probe of e on p and returns its result.
func probeOnce(t *testing.T, m *Manager, p *epollPoller, e *entry) result {
	t.Helper()
	p.start(e)
	return finishProbe(t, m, p)
}

// The socket of a passed probe, once the server's FIN has closed it, serves
// the target's next probe: no socket, close or epoll registration a probe.
// Every connection still ends with FIN both ways.
func TestFastPathReusesTheSocketTheServerClosed(t *testing.T) {
	ln := listen(t)
	seen := answerFIN(ln, 3)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	var ino uint64
	for i := range 3 {
		if r := probeOnce(t, m, p, e); r.err != nil {
			t.Fatalf("probe %d: %v", i+1, r.err)
		}
		// On loopback the server's FIN reaches the probe socket within the
		// server's close.
		if err := <-seen; !errors.Is(err, io.EOF) {
			t.Fatalf("probe %d: server read %v, want io.EOF (FIN); a reset shows as ECONNRESET", i+1, err)
		}
		if e.fast.fd < 0 {
			t.Fatalf("probe %d kept no socket for the next", i+1)
		}
		// A socket's number comes back with the next socket; its inode
		// does not.
		var st unix.Stat_t
		if err := unix.Fstat(e.fast.fd, &st); err != nil {
			t.Fatal(err)
		}
		if i > 0 && st.Ino != ino {
			t.Errorf("probe %d on socket inode %d, want the first probe's %d", i+1, st.Ino, ino)
		}
		ino = st.Ino
	}
}

// A server that keeps its side open after the probe's FIN does not get its
// connection dissolved (that would send RST): the next probe takes a new
// socket, and the old one closes with nothing unread.
func TestFastPathClosesASocketTheServerKeptOpen(t *testing.T) {
	ln := listen(t)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	if r := probeOnce(t, m, p, e); r.err != nil {
		t.Fatal(r.err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server talks after the probe's FIN and stays open.
	if _, err := conn.Write([]byte("late greeting\r\n")); err != nil {
		t.Fatal(err)
	}
	if r := probeOnce(t, m, p, e); r.err != nil {
		t.Fatal(r.err)
	}
	second, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// A reset would have closed the server's side (loopback delivers it
	// within the probe's system call); the server must still be in
	// CLOSE_WAIT, its connection ended by the probe's FIN alone.
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	const closeWait = 8
	if info.State != closeWait {
		t.Errorf("first connection: server in TCP state %d, want CLOSE_WAIT (%d); 7 (CLOSE) is a reset", info.State, closeWait)
	}
}

// A removed target's socket is closed, at once when idle.
func TestFastPathForgetClosesTheKeptSocket(t *testing.T) {
	ln := listen(t)
	seen := answerFIN(ln, 1)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	if r := probeOnce(t, m, p, e); r.err != nil {
		t.Fatal(r.err)
	}
	<-seen
	fd := e.fast.fd
	p.forget(e)
	if e.fast.fd != -1 || p.slots[fd].phase != phaseFree {
		t.Fatalf("after forget: target socket %d, slot phase %d; want none and free", e.fast.fd, p.slots[fd].phase)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("socket %d after forget: fcntl %v, want EBADF (closed)", fd, err)
	}
}

// Under an open-file limit the kept sockets give way: a probe that finds no
// descriptor left closes them and runs.
func TestFastPathShedsKeptSocketsAtTheFileLimit(t *testing.T) {
	// A listener never accepting (the kernel completes the handshakes):
	// the server side takes no descriptor of this process.
	addr := silentListener(t, 64)
	m, p := testPoller(t)
	var entries []*entry
	for i := range 3 {
		tg := fastTarget(Key{"amqp", fmt.Sprint("n", i), "tcp"}, &TCPProber{Address: addr})
		entries = append(entries, &entry{target: tg, fast: prepareTCP(tg.Prober)})
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	// The limit bounds descriptor numbers: room for the two lowest free.
	next, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(next)
	low := lim
	low.Cur = uint64(next) + 2
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if r := probeOnce(t, m, p, e); r.err != nil {
			t.Fatalf("probe %d: %v", i+1, r.err)
		}
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	if entries[0].fast.fd != -1 || entries[1].fast.fd != -1 || entries[2].fast.fd < 0 {
		t.Errorf("kept sockets %d, %d, %d; want the first two shed and the last kept", entries[0].fast.fd, entries[1].fast.fd, entries[2].fast.fd)
	}
}

// testPoller returns an epoll poller on a manager of its own, closed when
// the test ends.
func testPoller(t *testing.T) (*Manager, *epollPoller) {
	t.Helper()
	m := &Manager{clock: clock.Real{}}
	p, err := newEpollPoller(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.close()
		p.release()
	})
	return m, p
}

// silentListener listens on 127.0.0.1 with a backlog and never accepts:
// the kernel completes handshakes until the backlog is full, and the
// server side takes no descriptor of this process. It returns the address.
func silentListener(t *testing.T, backlog int) string {
	t.Helper()
	_, addr := silentListenerFD(t, backlog)
	return addr
}

// silentListenerFD is silentListener, with the listening socket.
func silentListenerFD(t *testing.T, backlog int) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)).String()
}

// TCP states of struct tcp_info (include/net/tcp_states.h).
const tcpEstablished = 1

// probeSocket returns the socket of e's probe under way.
func probeSocket(t *testing.T, p *epollPoller, e *entry) int {
	t.Helper()
	for fd := range p.slots {
		if s := &p.slots[fd]; s.e == e && s.phase == phaseConnecting {
			return fd
		}
	}
	t.Fatal("no probe socket connecting")
	return -1
}

// awaitTCPState waits up to 5 s for fd to reach the TCP state want.
func awaitTCPState(t *testing.T, fd int, want uint8) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		if state, ok := tcpStateRaw(fd); ok && state == want {
			return
		}
	}
	t.Fatalf("socket %d never reached TCP state %d", fd, want)
}

// queued returns the connections a listening socket holds for accept.
func queued(t *testing.T, fd int) uint32 {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info.Unacked // a listener's accept queue (tcp_get_info)
}

// The handshake's last ACK waits for the probe's FIN and goes with it: the
// server has the connection only once the FIN came, one segment fewer a
// probe for both ends.
func TestFastPathSendsTheHandshakeACKWithTheFIN(t *testing.T) {
	lfd, addr := silentListenerFD(t, 16)
	m, p := testPoller(t)
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: addr})
	e := &entry{target: tg, fast: prepareTCP(tg.Prober)}
	// The kernel sends the ACK alone after 200 ms: a probe seen later than
	// that by this test (a loaded machine) proves nothing, and is tried
	// again.
	for attempt := 1; ; attempt++ {
		before := queued(t, lfd)
		started := time.Now()
		p.start(e)
		awaitTCPState(t, probeSocket(t, p, e), tcpEstablished)
		early := queued(t, lfd)
		if time.Since(started) > 100*time.Millisecond && attempt < 5 {
			finishProbe(t, m, p)
			continue
		}
		if early != before {
			t.Errorf("the server had the connection before the probe's FIN (%d queued, %d before): the handshake's ACK went alone", early, before)
		}
		if r := finishProbe(t, m, p); r.err != nil {
			t.Fatal(r.err)
		}
		for start := time.Now(); queued(t, lfd) == before; time.Sleep(time.Millisecond) {
			if time.Since(start) > 5*time.Second {
				t.Fatal("the probe's FIN did not complete the server's handshake")
			}
		}
		return
	}
}

// finishProbe waits for the probe p started and returns its result.
func finishProbe(t *testing.T, m *Manager, p *epollPoller) result {
	t.Helper()
	for len(m.done) == 0 {
		p.wait(false)
	}
	r := m.done[0]
	m.done = m.done[:0]
	return r
}

// The wait's timeout is in whole milliseconds, rounded up: a probe never
// starts before its due time for want of precision, and at most a
// millisecond after it.
func TestWaitMs(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		until time.Time
		want  int
	}{
		{time.Time{}, -1},
		{now.Add(-time.Second), 0},
		{now, 0},
		{now.Add(time.Microsecond), 1},
		{now.Add(time.Millisecond), 1},
		{now.Add(5*time.Millisecond + 1), 6},
		{now.Add(2 * time.Second), 2000},
		{now.Add(1000 * time.Hour), maxWaitMs},
	} {
		if got := waitMs(c.until, now); got != c.want {
			t.Errorf("waitMs(now+%v) = %d, want %d", c.until.Sub(now), got, c.want)
		}
	}
}

// A scheduler blocked in a long wait (its next probe an hour away) wakes
// for an Update, whose new target is probed at once, and for Stop.
func TestFastPathWakesFromALongWait(t *testing.T) {
	ln := listen(t)
	answerFIN(ln, 2)
	trs := make(chan Transition, 10)
	m := NewManager(clock.Real{}, func(tr Transition) { trs <- tr })
	first := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: ln.Addr().String()})
	first.Interval, first.ConnectTimeout = time.Hour, time.Hour
	m.Update([]Target{first})
	if tr := waitTransition(t, trs); tr.To != Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	time.Sleep(20 * time.Millisecond) // into the wait for the hour
	second := first
	second.Key = Key{"amqp", "n2", "tcp"}
	m.Update([]Target{first, second})
	if tr := waitTransition(t, trs); tr.To != Up || tr.Key != second.Key {
		t.Fatalf("transition %+v, want %v up", tr, second.Key)
	}
	stopped := make(chan struct{})
	go func() { m.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end a scheduler waiting for its next probe")
	}
}

// A scheduler waiting for probes due within rawWaitMs keeps its P without
// telling the runtime, but not the only one: on one P the rest of the
// program runs while the scheduler waits.
func TestFastPathWaitLeavesTheOnlyPToOthers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	addr := silentListener(t, 4096)
	m := NewManager(clock.Real{}, nil)
	defer m.Stop()
	tg := fastTarget(Key{"amqp", "n1", "tcp"}, &TCPProber{Address: addr})
	tg.Interval = 40 * time.Millisecond // every wait a raw one on more Ps
	m.Update([]Target{tg})
	ran := make(chan struct{})
	go func() {
		for range 20 {
			time.Sleep(time.Millisecond)
		}
		close(ran)
	}()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a goroutine beside the waiting scheduler did not get the P")
	}
}
