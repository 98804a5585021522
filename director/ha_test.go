package director

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vrrp"
)

var (
	lb1 = netip.MustParseAddr("10.0.0.11")
	lb2 = netip.MustParseAddr("10.0.0.12")
)

// pairTopology is the reference design run by two directors, VRRP v3 at
// 100 ms, without checks (the VRRP timers are what these tests step).
func pairTopology() *topology.Topology {
	topo := reference()
	topo.Director.ResyncInterval = 2 * time.Second
	for i := range topo.Services {
		topo.Services[i].Checks = nil
	}
	topo.Director.HA = &topology.HA{
		VRID: 51, Version: 3, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		GARPRepeat: 5, GARPDelay: 5 * time.Second,
		Directors: []topology.HADirector{{Name: "lb1", Address: lb1, Priority: 150}, {Name: "lb2", Address: lb2, Priority: 100}},
	}
	return topo
}

// pair is two directors whose VRRP routers share one segment and one
// clock.
type pair struct {
	t     *testing.T
	seg   *vrrp.Segment
	clock *clock.Fake
	h     [2]*harness
}

func newPair(t *testing.T) *pair {
	p := &pair{t: t, seg: vrrp.NewSegment(), clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	for i, own := range []netip.Addr{lb1, lb2} {
		h := newHarness(t, pairTopology())
		h.clock = p.clock
		h.vip.own = own
		h.configure = func(c *Config) {
			c.VRRP = func(_ string, self netip.Addr) (vrrp.Conn, error) { return p.seg.Join(self), nil }
		}
		if testing.Verbose() {
			h.logs = os.Stderr
		}
		p.h[i] = h
	}
	return p
}

// step moves the clock by d, 10 ms at a time, letting the directors act
// between steps.
func (p *pair) step(d time.Duration) {
	for range d / (10 * time.Millisecond) {
		p.clock.Advance(10 * time.Millisecond)
		p.settle()
	}
}

// settle waits until the running directors have their timers on the clock
// and nothing to reconcile. The VRRP routers run on goroutines of their
// own, so the tests wait for outcomes with until, never for exact times
// (package vrrp tests those).
func (p *pair) settle() {
	running := 0
	for _, h := range p.h {
		if h.cancel != nil {
			running++
		}
	}
	// Only the resync timers are certain to be on the clock: a router in
	// fault waits for nothing. A director that is starting has its router
	// running before the clock moves on: else the clock would run ahead of
	// its start, and its first master-down timer would expire unheard.
	for _, h := range p.h {
		if h.cancel != nil {
			h.settleWith(running)
			for h.d.router.Load() == nil && h.cancel != nil {
				runtime.Gosched()
			}
		}
	}
	for range 20 {
		runtime.Gosched()
	}
}

// until steps the clock until ok holds; false if it did not within 20 s of
// real time. The routers' goroutines lag behind the fake clock by an
// amount the scheduler decides, so an outcome is awaited, not timed: the
// vrrp package's own tests pin the protocol's timings.
func (p *pair) until(ok func() bool) bool {
	giveUp := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(giveUp) {
			return false
		}
		p.step(10 * time.Millisecond)
	}
	return true
}

func (p *pair) holds(want ...int) func() bool {
	return func() bool { return slices.Equal(p.holders(), want) }
}

func (p *pair) holders() []int {
	var out []int
	for i, h := range p.h {
		h.vip.mu.Lock()
		if h.vip.bound["eth0"] == testVIP {
			out = append(out, i+1)
		}
		h.vip.mu.Unlock()
	}
	return out
}

func TestPairElectsOneMasterThatHoldsTheVIPAndBothProgramIPVS(t *testing.T) {
	p := newPair(t)
	p.h[0].start()
	p.h[1].start()
	// Both start as backups; lb1's master-down interval (3 × 100 ms + its
	// skew) ends first, and lb2 follows it.
	lb2Backup := func() bool {
		st, ok := p.h[1].d.HAStatus()
		return ok && st.State == vrrp.StateBackup && st.MasterAddr == lb1
	}
	if !p.until(func() bool { return p.holds(1)() && lb2Backup() }) {
		t.Fatalf("VIP held by directors %v, want only lb1 (priority 150) with lb2 its backup", p.holders())
	}
	sameTables := func() bool {
		one, two := p.h[0].table(), p.h[1].table()
		return len(two) > 0 && slices.Equal(one, two)
	}
	if !p.until(sameTables) {
		t.Errorf("the backup's IPVS table differs from the master's:\n%s\nvs\n%s", strings.Join(p.h[0].table(), "\n"), strings.Join(p.h[1].table(), "\n"))
	}
	p.h[0].vip.mu.Lock()
	first := p.h[0].vip.announced
	p.h[0].vip.mu.Unlock()
	if first < 5 {
		t.Errorf("the new master sent %d gratuitous ARPs, want a burst of 5", first)
	}
	secondBurst := func() bool {
		p.h[0].vip.mu.Lock()
		defer p.h[0].vip.mu.Unlock()
		return p.h[0].vip.announced >= first+5
	}
	if !p.until(secondBurst) {
		t.Errorf("no second burst of gratuitous ARPs 5 s after the transition")
	}
}

func TestStoppingMasterHandsOverAtOnceAndKeepsItsTable(t *testing.T) {
	p := newPair(t)
	p.h[0].start()
	p.h[1].start()
	if !p.until(p.holds(1)) {
		t.Fatalf("VIP held by %v, want lb1", p.holders())
	}
	p.until(func() bool { return slices.Equal(p.h[0].table(), p.h[1].table()) })
	table := p.h[0].table()
	writes := p.h[1].kernel.WriteCount()
	p.h[0].stop() // SIGTERM: priority 0, VIP unbound, table kept
	if got := p.holders(); len(got) != 0 {
		t.Fatalf("VIP still held by %v right after the master stopped", got)
	}
	if !p.until(p.holds(2)) {
		t.Fatalf("VIP held by %v after the master left, want lb2", p.holders())
	}
	if !slices.Equal(p.h[0].table(), table) {
		t.Error("the stopped master's IPVS table changed: a restart would drop connections")
	}
	if n := p.h[1].kernel.WriteCount() - writes; n != 0 {
		t.Errorf("the takeover wrote %d times to IPVS, want none", n)
	}

	// lb1 returns with the higher priority and takes the VIP back.
	p.h[0].start()
	if !p.until(p.holds(1)) {
		t.Errorf("VIP held by %v after lb1 returned, want lb1 again (preempt)", p.holders())
	}
}

func TestReleasedMasterStepsDown(t *testing.T) {
	p := newPair(t)
	p.h[0].start()
	p.h[1].start()
	if !p.until(p.holds(1)) {
		t.Fatalf("VIP held by %v, want lb1", p.holders())
	}
	if err := p.h[0].d.ReleaseMaster(true); err != nil {
		t.Fatal(err)
	}
	if !p.until(p.holds(2)) {
		t.Errorf("VIP held by %v after lb1's release, want lb2", p.holders())
	}
	if err := p.h[0].d.ReleaseMaster(false); err != nil {
		t.Fatal(err)
	}
	if !p.until(p.holds(1)) {
		t.Errorf("VIP held by %v after unrelease, want lb1 back", p.holders())
	}
}

func TestFailingIPVSWritesPutTheMasterInFault(t *testing.T) {
	p := newPair(t)
	p.h[0].start()
	p.h[1].start()
	if !p.until(p.holds(1)) {
		t.Fatalf("VIP held by %v, want lb1", p.holders())
	}
	topo := pairTopology()
	if err := p.h[0].kernel.DeleteService(serviceKey(topo, topo.Services[0])); err != nil {
		t.Fatal(err)
	}
	p.h[0].kernel.SetFail(func(ipvsctl.OpKind, ipvsctl.ServiceKey, ipvsctl.Destination) error { return errors.New("no memory") })
	// The next resync finds the drift and fails to repair it.
	if !p.until(p.holds(2)) {
		t.Errorf("VIP held by %v while lb1 cannot write IPVS, want lb2", p.holders())
	}
	p.h[0].kernel.SetFail(nil)
	if !p.until(p.holds(1)) {
		t.Errorf("VIP held by %v once lb1 writes again, want lb1 back", p.holders())
	}
}

// startSyncingDirector starts lb1 of pairTopology with connection sync
// (syncid 51) on fake sync daemons, alone on its VRRP segment, and waits
// for its first reconcile.
func startSyncingDirector(t *testing.T) (*harness, *ipvsctl.FakeSyncDaemons) {
	t.Helper()
	topo := pairTopology()
	topo.Director.HA.ConnectionSync = true
	topo.Director.HA.SyncID = 51
	h := newHarness(t, topo)
	h.vip.own = lb1
	syncd := ipvsctl.NewFakeSyncDaemons()
	seg := vrrp.NewSegment()
	h.configure = func(c *Config) {
		c.Syncd = syncd
		c.VRRP = func(_ string, self netip.Addr) (vrrp.Conn, error) { return seg.Join(self), nil }
	}
	h.start()
	h.settleWith(1)
	return h, syncd
}

func TestConnectionSyncRunsBothDaemonsAndRestoresItsSysctls(t *testing.T) {
	h, syncd := startSyncingDirector(t)
	daemons, _ := syncd.Daemons()
	var got []string
	for _, d := range daemons {
		got = append(got, d.String())
	}
	if len(daemons) != 2 || daemons[0].Role != ipvsctl.SyncMaster || daemons[1].Role != ipvsctl.SyncBackup ||
		daemons[0].SyncID != 51 || daemons[1].SyncID != 51 || daemons[0].Interface != "eth0" {
		t.Fatalf("sync daemons %q, want a master and a backup on eth0 with syncid 51", got)
	}
	h.sysctl.mu.Lock()
	threshold := h.sysctl.values["net.ipv4.vs.sync_threshold"]
	h.sysctl.mu.Unlock()
	if threshold != "3 0" {
		t.Errorf("sync_threshold = %q, want \"3 0\" (an idle connection must be re-synced)", threshold)
	}

	// A reload that turns connection sync off stops the daemons and puts
	// back the values found.
	off := pairTopology()
	h.topo.Store(off)
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	if daemons, _ := syncd.Daemons(); len(daemons) != 0 {
		t.Errorf("sync daemons still running after connection sync was turned off: %v", daemons)
	}
	h.sysctl.mu.Lock()
	threshold = h.sysctl.values["net.ipv4.vs.sync_threshold"]
	h.sysctl.mu.Unlock()
	if threshold != "kernel default" {
		t.Errorf("sync_threshold = %q after connection sync was turned off, want the value found", threshold)
	}
}

func TestReturningDirectorPreemptsOnlyOnceItsConnectionTableIsWarm(t *testing.T) {
	p := newPair(t)
	var conns atomic.Int64
	for _, h := range p.h {
		topo := pairTopology()
		topo.Director.HA.ConnectionSync = true
		h.topo.Store(topo)
		syncd := ipvsctl.NewFakeSyncDaemons()
		vrrpConn := h.configure
		h.configure = func(c *Config) {
			vrrpConn(c)
			c.Syncd = syncd
			c.Connections = func() (int, error) { return int(conns.Load()), nil }
		}
	}
	p.h[1].start()
	if !p.until(p.holds(2)) {
		t.Fatalf("VIP held by %v, want lb2 alone", p.holders())
	}
	// lb1, of higher priority, comes back while connections still arrive
	// through its backup daemon: its router holds preemption (package vrrp
	// tests what a hold does) for a sync refresh period at least, and as
	// long as the table grows.
	p.h[0].start()
	conns.Store(10)
	held := func() bool { st, _ := p.h[0].d.HAStatus(); return st.PreemptHeld }
	if !p.until(held) {
		t.Fatal("lb1 came back without holding preemption")
	}
	for range 90 {
		conns.Add(5)
		p.step(time.Second)
		if !held() {
			t.Fatalf("lb1 let go of its hold on preemption while its connection table was still filling (%d connections)", conns.Load())
		}
	}
	// The table stops growing: the hold ends, and lb1 takes the VIP back.
	if !p.until(func() bool { return !held() }) {
		t.Fatal("lb1 still holds preemption with a table that stopped growing")
	}
	if !p.until(p.holds(1)) {
		t.Errorf("VIP held by %v once lb1's table was warm, want lb1", p.holders())
	}
}

func TestDirectorWhoseLinkIsDownGivesTheVIPUp(t *testing.T) {
	p := newPair(t)
	var down atomic.Bool
	one := p.h[0].configure
	p.h[0].configure = func(c *Config) {
		one(c)
		c.LinkUp = func(string) (bool, error) { return !down.Load(), nil }
	}
	p.h[0].start()
	p.h[1].start()
	if !p.until(p.holds(1)) {
		t.Fatalf("VIP held by %v, want lb1", p.holders())
	}
	down.Store(true) // seen at the next resync
	if !p.until(p.holds(2)) {
		t.Errorf("VIP held by %v while lb1's link is down, want lb2", p.holders())
	}
	if st, _ := p.h[0].d.HAStatus(); st.State != vrrp.StateFault {
		t.Errorf("lb1 is %s with its link down, want fault", st.State)
	}
	down.Store(false)
	if !p.until(p.holds(1)) {
		t.Errorf("VIP held by %v once lb1's link is back, want lb1", p.holders())
	}
}
