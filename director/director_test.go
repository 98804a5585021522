package director

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

var testVIP = netip.MustParseAddr("10.0.0.100")

// reference is the reference design on test addresses: amqp and management
// on three nodes; checks every 5 s, retry 1 after 1 s, rise 2.
func reference() *topology.Topology {
	t := &topology.Topology{
		VIP:      testVIP,
		Director: topology.Director{Interface: "eth0", ResyncInterval: 30 * time.Second},
	}
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("rmq_node%d", i+1)
		names = append(names, name)
		t.RealServers = append(t.RealServers, topology.RealServer{
			Name: name, Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), Weight: 1,
		})
	}
	for _, s := range []struct {
		name string
		port uint16
	}{{"amqp", 5672}, {"management", 15672}} {
		t.Services = append(t.Services, topology.Service{
			Name: s.name, Port: s.port, Protocol: topology.TCP, Scheduler: "wrr",
			Forwarding: topology.DirectRouting, PersistenceTimeout: 50 * time.Second, OnFailure: topology.Remove,
			RealServers: names,
			Checks: []topology.Check{{Name: "tcp", Type: topology.CheckTCP, Port: s.port, Interval: 5 * time.Second,
				ConnectTimeout: 3 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Rise: 2}},
		})
	}
	return t
}

// fakeNet is the probes' view of the network: which endpoints answer, and
// which real servers lack the VIP on their loopback (a probe through the
// VIP, sent with the real server's mark, then gets no answer).
type fakeNet struct {
	mu         sync.Mutex
	down       map[netip.AddrPort]bool
	vipMissing map[netip.Addr]bool
	// marks maps a check mark to its real server, as the kernel's
	// firewall-mark services do.
	marks map[uint32]netip.Addr
	// generation is stamped on every prober built; probed counts the
	// probes made by the probers of each generation.
	generation int
	built      map[*fakeProber]int
	probed     map[int]int
}

func (n *fakeNet) setDown(ep netip.AddrPort, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[ep] = down
}

// fakeProber answers from the fake network. Like the director's own
// probers, it holds the dialer it would dial with: for a check through the
// VIP, one with a Control func that sets the mark.
type fakeProber struct {
	net    *fakeNet
	target ProbeTarget
	dialer *net.Dialer
}

func (p *fakeProber) Probe(context.Context) error {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.probed[p.net.built[p]]++
	ep := p.target.Address
	if p.target.Mark != 0 {
		rs, ok := p.net.marks[p.target.Mark]
		if !ok || p.target.Source != probeSource {
			return fmt.Errorf("connect %s mark %#x: no route", ep, p.target.Mark)
		}
		if p.net.vipMissing[rs] {
			return fmt.Errorf("connect %s via %s: i/o timeout", ep, rs)
		}
		ep = netip.AddrPortFrom(rs, ep.Port())
	}
	if p.net.down[ep] {
		return fmt.Errorf("connect %s: connection refused", ep)
	}
	return nil
}

// probeSource is the director's own address in the fakes.
var probeSource = netip.MustParseAddr("10.0.0.1")

type fakeVIP struct {
	// noSource makes ProbeSource fail, as on an interface with the VIP alone.
	noSource  bool
	mu        sync.Mutex
	bound     map[string]netip.Addr
	announced int
	// own is the director's address on its interface; probeSource if
	// not set.
	own netip.Addr
}

func (f *fakeVIP) Announce(string, netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.announced++
	return nil
}

func (f *fakeVIP) Bind(iface string, vip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bound[iface] = vip
	return nil
}

func (f *fakeVIP) ProbeSource(string, netip.Addr) (netip.Addr, error) {
	if f.noSource {
		return netip.Addr{}, errors.New("eth0 has no IPv4 address but the VIP to send checks from")
	}
	return probeSource, nil
}

func (f *fakeVIP) Unbind(iface string, vip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bound, iface)
	return nil
}

func (f *fakeVIP) Addresses(iface string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []netip.Addr{probeSource}
	if f.own.IsValid() {
		out = []netip.Addr{f.own}
	}
	if a, ok := f.bound[iface]; ok {
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeVIP) Bound(iface string, vip netip.Addr) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound[iface] == vip, nil
}

type fakeSysctl struct {
	mu     sync.Mutex
	values map[string]string
}

func (f *fakeSysctl) Get(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.values[name]; ok {
		return v, nil
	}
	return "kernel default", nil
}

func (f *fakeSysctl) Set(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[name] = value
	return nil
}

// harness runs a director against fakes. The topology it loads is whatever
// load returns at the time.
type harness struct {
	t      testing.TB
	kernel *ipvsctl.FakeKernel
	clock  *clock.Fake
	net    *fakeNet
	vip    *fakeVIP
	sysctl *fakeSysctl
	state  StateFile
	topo   atomic.Pointer[topology.Topology]
	// loadErr, when set, makes the next loads fail as an invalid file would.
	loadErr atomic.Pointer[error]
	d       *Director
	// controlSocket, when set before start, is where the director answers.
	controlSocket string
	// configure, when set before start, edits the director's Config.
	configure func(*Config)
	// logs receives the director's log; io.Discard unless a test sets it.
	logs   io.Writer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, topo *topology.Topology) *harness {
	h := &harness{
		t:      t,
		kernel: ipvsctl.NewFakeKernel(),
		clock:  clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		net: &fakeNet{down: map[netip.AddrPort]bool{}, vipMissing: map[netip.Addr]bool{}, marks: map[uint32]netip.Addr{},
			built: map[*fakeProber]int{}, probed: map[int]int{}},
		vip:    &fakeVIP{bound: map[string]netip.Addr{}},
		sysctl: &fakeSysctl{values: map[string]string{}},
		state:  StateFile{Path: filepath.Join(t.TempDir(), "director.json")},
		done:   make(chan error, 1),
		logs:   io.Discard,
	}
	h.topo.Store(topo)
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	cfg := Config{
		Kernel: h.kernel,
		VIP:    h.vip,
		Sysctl: h.sysctl,
		Clock:  h.clock,
		Log:    slog.New(slog.NewTextHandler(h.logs, nil)),
		State:  h.state,
		Load: func() (*topology.Topology, error) {
			if err := h.loadErr.Load(); err != nil {
				return nil, *err
			}
			return h.topo.Load(), nil
		},
		NewProber: func(target ProbeTarget, _ topology.Check) healthcheck.Prober {
			p := &fakeProber{net: h.net, target: target, dialer: healthcheck.MarkedDialer(target.Mark, target.Source)}
			h.net.mu.Lock()
			defer h.net.mu.Unlock()
			h.net.built[p] = h.net.generation
			return p
		},
		ControlSocket: h.controlSocket,
	}
	if h.configure != nil {
		h.configure(&cfg)
	}
	h.d = New(cfg)
	go func() { h.done <- h.d.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

// table returns the kernel's table as ipvsadm-like lines, one per
// destination, foreign services included.
func (h *harness) table() []string {
	var lines []string
	services, _ := h.kernel.Services()
	for _, s := range services {
		lines = append(lines, strings.TrimPrefix(ipvsctl.Op{Kind: ipvsctl.AddService, Service: s}.String(), "-A "))
		dests, _ := h.kernel.Destinations(s.Key)
		for _, d := range dests {
			lines = append(lines, "  "+strings.TrimPrefix(ipvsctl.Op{Kind: ipvsctl.AddDestination, Service: s, Destination: d}.String(), "-a "+s.Key.String()+" "))
		}
	}
	return lines
}

// advanceUntil moves the fake clock one second at a time until the kernel
// table satisfies ok, and returns the fake time that took. Each step waits
// for the director's goroutines to settle: the checks park on the clock and
// the reconcile that follows a transition has run.
func (h *harness) advanceUntil(limit time.Duration, ok func([]string) bool) time.Duration {
	h.t.Helper()
	start := h.clock.Now()
	for {
		h.settle()
		if ok(h.table()) {
			return h.clock.Now().Sub(start)
		}
		if h.clock.Now().Sub(start) >= limit {
			h.t.Fatalf("after %s the table is still:\n%s", limit, strings.Join(h.table(), "\n"))
		}
		h.clock.Advance(time.Second)
	}
}

// settle waits until the director has no work in flight: every check loop
// and the resync timer are parked on the fake clock, and every transition
// and reload has been reconciled. Nothing can move after that until the
// clock does.
func (h *harness) settle() {
	topo := h.topo.Load()
	parked := 1 // the resync timer
	for _, s := range topo.Services {
		for _, name := range s.RealServers {
			parked += len(s.ChecksOf(name))
		}
	}
	h.settleWith(parked)
}

// settleWith is settle when parked timers are due to be waiting on the
// clock.
func (h *harness) settleWith(parked int) {
	for {
		h.clock.BlockUntil(parked)
		if h.d.pending.Load() == 0 {
			return
		}
		runtime.Gosched()
	}
}

func has(line string) func([]string) bool {
	return func(t []string) bool { return slices.Contains(t, line) }
}

func not(f func([]string) bool) func([]string) bool { return func(t []string) bool { return !f(t) } }

const (
	amqpNode2   = "  -r 10.0.0.3:5672 -g -w 1"
	amqpService = "-t 10.0.0.100:5672 -s wrr -p 50"
)

func TestStartFromEmptyChecksThenProgramsEveryHealthyServer(t *testing.T) {
	h := newHarness(t, reference())
	h.net.setDown(netip.MustParseAddrPort("10.0.0.4:15672"), true)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 7 })
	want := []string{
		amqpService,
		"  -r 10.0.0.2:5672 -g -w 1",
		amqpNode2,
		"  -r 10.0.0.4:5672 -g -w 1",
		"-t 10.0.0.100:15672 -s wrr -p 50",
		"  -r 10.0.0.2:15672 -g -w 1",
		"  -r 10.0.0.3:15672 -g -w 1",
	}
	if got := h.table(); !slices.Equal(got, want) {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if h.vip.bound["eth0"] != testVIP || h.vip.announced != 1 {
		t.Errorf("VIP not bound and announced on eth0: %v, %d announcements", h.vip.bound, h.vip.announced)
	}
	for _, kv := range DirectorSysctls {
		if h.sysctl.values[kv[0]] != kv[1] {
			t.Errorf("sysctl %s = %q, want %q", kv[0], h.sysctl.values[kv[0]], kv[1])
		}
	}
}

func TestRestartAdoptsTheTableWithoutAnOperation(t *testing.T) {
	h := newHarness(t, reference())
	foreign := ipvsctl.Service{Key: ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}, Scheduler: "rr"}
	h.kernel.AddService(foreign)
	if _, err := Apply(h.kernel, h.state, reference(), false); err != nil {
		t.Fatal(err)
	}
	before := h.table()
	writes := h.kernel.Writes
	h.start()
	h.advanceUntil(12*time.Second, func([]string) bool { return true })
	h.clock.Advance(12 * time.Second)
	h.settle()
	if h.kernel.Writes != writes {
		t.Errorf("a restart onto a matching table wrote %d operations", h.kernel.Writes-writes)
	}
	h.stop()
	if got := h.table(); !slices.Equal(got, before) {
		t.Errorf("table after stop:\n%s\nwant as before:\n%s", strings.Join(got, "\n"), strings.Join(before, "\n"))
	}
}

func TestFailedServerLeavesWithinTheBoundAndReturnsAfterRise(t *testing.T) {
	topo := reference()
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))

	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), true)
	bound := topo.Services[0].Checks[0].DetectionBound()
	took := h.advanceUntil(bound, not(has(amqpNode2)))
	t.Logf("detected after %s (bound %s)", took, bound)
	if !slices.Contains(h.table(), "  -r 10.0.0.3:15672 -g -w 1") {
		t.Errorf("node2 left the management service too")
	}

	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), false)
	took = h.advanceUntil(3*topo.Services[0].Checks[0].Interval, has(amqpNode2))
	if took <= topo.Services[0].Checks[0].Interval {
		t.Errorf("back after %s: rise 2 needs two passing checks, an interval apart", took)
	}
}

func TestDrainOnFailureKeepsTheServerAtWeightZero(t *testing.T) {
	topo := reference()
	topo.Services[0].OnFailure = topology.Drain
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), true)
	h.advanceUntil(topo.Services[0].Checks[0].DetectionBound(), has("  -r 10.0.0.3:5672 -g -w 0"))
}

func TestReload(t *testing.T) {
	h := newHarness(t, reference())
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	node3Down := netip.MustParseAddrPort("10.0.0.4:5672")
	h.net.setDown(node3Down, true)
	h.advanceUntil(10*time.Second, not(has("  -r 10.0.0.4:5672 -g -w 1")))

	// An invalid file changes nothing.
	invalid := fmt.Errorf("topology.yaml:3: unknown key: %w", topology.ErrInvalid)
	h.loadErr.Store(&invalid)
	before, writes := h.table(), h.kernel.Writes
	h.d.Reload()
	h.settle()
	if got := h.table(); !slices.Equal(got, before) || h.kernel.Writes != writes {
		t.Errorf("an invalid reload changed the table:\n%s", strings.Join(got, "\n"))
	}
	h.loadErr.Store(nil)

	// A weight change is one update per service; node3 stays down (its
	// check state survives) and the removed service goes.
	next := reference()
	next.RealServers[1].Weight = 5
	next.Services = next.Services[:1]
	h.topo.Store(next)
	writes = h.kernel.Writes
	h.d.Reload()
	h.settle()
	want := []string{amqpService, "  -r 10.0.0.2:5672 -g -w 1", "  -r 10.0.0.3:5672 -g -w 5"}
	if got := h.table(); !slices.Equal(got, want) {
		t.Errorf("after reload:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := h.kernel.Writes - writes; n != 2 {
		t.Errorf("reload took %d kernel writes, want 2 (one weight update, one service delete)", n)
	}
}

func TestStartDeletesServicesRetiredWhileStopped(t *testing.T) {
	h := newHarness(t, reference())
	if _, err := Apply(h.kernel, h.state, reference(), false); err != nil {
		t.Fatal(err)
	}
	next := reference()
	next.Services = next.Services[:1]
	h.topo.Store(next)
	h.start()
	h.advanceUntil(10*time.Second, not(has("-t 10.0.0.100:15672 -s wrr -p 50")))
}

func TestStartFailsWithoutTouchingTheKernelOnAnInvalidFile(t *testing.T) {
	h := newHarness(t, reference())
	invalid := fmt.Errorf("bad: %w", topology.ErrInvalid)
	h.loadErr.Store(&invalid)
	d := New(Config{Kernel: h.kernel, VIP: h.vip, Sysctl: h.sysctl, Clock: h.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), State: h.state,
		Load: func() (*topology.Topology, error) { return nil, invalid }})
	if err := d.Run(context.Background()); !errors.Is(err, topology.ErrInvalid) {
		t.Errorf("Run = %v, want the load error", err)
	}
	if h.kernel.Writes != 0 || len(h.vip.bound) != 0 {
		t.Errorf("an invalid file touched the kernel")
	}
}

func TestResyncRepairsDriftMadeByHand(t *testing.T) {
	h := newHarness(t, reference())
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	amqp := serviceKey(reference(), reference().Services[0])
	h.kernel.DeleteDestination(amqp, ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672})
	h.kernel.UpdateService(ipvsctl.Service{Key: amqp, Scheduler: "rr"})
	took := h.advanceUntil(time.Minute, func(tab []string) bool { return has(amqpNode2)(tab) && has(amqpService)(tab) })
	if took > 30*time.Second {
		t.Errorf("drift repaired after %s, want within the resync interval (30s)", took)
	}
}

func TestMaintenanceDrainsToWeightZeroAndSurvivesARestart(t *testing.T) {
	h := newHarness(t, reference())
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	if err := h.d.SetMaintenance("rmq_node2", true); err != nil {
		t.Fatal(err)
	}
	drained := []string{"  -r 10.0.0.3:5672 -g -w 0", "  -r 10.0.0.3:15672 -g -w 0"}
	for _, line := range drained {
		if !slices.Contains(h.table(), line) {
			t.Errorf("after drain the table lacks %q:\n%s", line, strings.Join(h.table(), "\n"))
		}
	}
	if err := h.d.SetMaintenance("rmq_node9", true); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("drain of an unknown node: %v, want ErrUnknownNode", err)
	}

	// A restart keeps the drain: weight 0 from the first reconcile on.
	h.stop()
	writes := h.kernel.Writes
	h.start()
	h.advanceUntil(12*time.Second, func([]string) bool { return true })
	if h.kernel.Writes != writes {
		t.Errorf("a restart with a node in maintenance wrote %d operations", h.kernel.Writes-writes)
	}
	for _, line := range drained {
		if !slices.Contains(h.table(), line) {
			t.Errorf("after restart the table lacks %q", line)
		}
	}

	if err := h.d.SetMaintenance("rmq_node2", false); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.table(), amqpNode2) {
		t.Errorf("after undrain:\n%s", strings.Join(h.table(), "\n"))
	}
	if st, _ := h.state.Load(); len(st.Maintenance) != 0 {
		t.Errorf("undrain left %v recorded", st.Maintenance)
	}
}

func TestRealServerRemovedByReloadDrainsBeforeItIsDeleted(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 2 * time.Minute
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	amqp := serviceKey(topo, topo.Services[0])
	mgmt := serviceKey(topo, topo.Services[1])
	node2amqp := ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672}
	node2mgmt := ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 15672}
	h.kernel.SetStats(amqp, node2amqp, ipvsctl.Stats{ActiveConns: 4})
	h.kernel.SetStats(mgmt, node2mgmt, ipvsctl.Stats{})

	next := reference()
	next.Director.DrainTimeout = 2 * time.Minute
	next.RealServers = slices.Delete(next.RealServers, 1, 2)
	for i := range next.Services {
		next.Services[i].RealServers = []string{"rmq_node1", "rmq_node3"}
	}
	h.topo.Store(next)
	h.d.Reload()
	h.settle()
	if !slices.Contains(h.table(), "  -r 10.0.0.3:5672 -g -w 0") {
		t.Fatalf("a removed server with connections was not kept at weight 0:\n%s", strings.Join(h.table(), "\n"))
	}
	// Without connections on management it goes at the next sweep; with 4
	// on amqp it stays until they end.
	h.advanceUntil(time.Minute, not(has("  -r 10.0.0.3:15672 -g -w 0")))
	if !slices.Contains(h.table(), "  -r 10.0.0.3:5672 -g -w 0") {
		t.Fatalf("the amqp destination went while it had connections")
	}
	h.kernel.SetStats(amqp, node2amqp, ipvsctl.Stats{})
	took := h.advanceUntil(time.Minute, not(has("  -r 10.0.0.3:5672 -g -w 0")))
	if took > 3*time.Second {
		t.Errorf("deleted %s after its connections ended, want within the 2s sweep", took)
	}
}

func TestLeavingServerIsDeletedAtTheDrainTimeout(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 20 * time.Second
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	amqp := serviceKey(topo, topo.Services[0])
	h.kernel.SetStats(amqp, ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672}, ipvsctl.Stats{ActiveConns: 1})
	next := reference()
	next.Director.DrainTimeout = 20 * time.Second
	next.Services[0].RealServers = []string{"rmq_node1", "rmq_node3"}
	h.topo.Store(next)
	h.d.Reload()
	h.settle()
	took := h.advanceUntil(2*time.Minute, not(has("  -r 10.0.0.3:5672 -g -w 0")))
	if took < 20*time.Second || took > 20*time.Second+sweepInterval+30*time.Second {
		t.Errorf("deleted %s after the reload, want soon after the 20s drain timeout", took)
	}
}
