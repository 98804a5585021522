package director

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

var router = netip.MustParseAddr("10.0.0.254")

// scaleOutTopology is the reference design announced over BGP, with mh.
func scaleOutTopology() *topology.Topology {
	topo := reference()
	topo.Director.BGP = &topology.BGP{ASN: 65001, HoldTime: 9 * time.Second, Peers: []topology.BGPPeer{{Address: router, ASN: 65000}}}
	for i := range topo.Services {
		topo.Services[i].Scheduler = "mh"
		topo.Services[i].SchedulerFlags = []string{"mh-port"}
		topo.Services[i].Quorum = 1 // the file's default
	}
	return topo
}

// bgpUntil steps the harness's clock until ok holds; the BGP controller
// runs on a goroutine of its own, so its outcome is awaited, not timed.
func bgpUntil(t *testing.T, h *harness, what string, ok func() bool) {
	t.Helper()
	giveUp := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(giveUp) {
			t.Fatalf("never: %s", what)
		}
		h.clock.Advance(100 * time.Millisecond)
		h.settle()
		for range 20 {
			runtime.Gosched()
		}
	}
}

func TestScaleOutAnnouncesWhileServingAndWithdrawsFirstOnStop(t *testing.T) {
	h := newHarness(t, scaleOutTopology())
	if testing.Verbose() {
		h.logs = os.Stderr
	}
	speaker := bgp.NewFake(h.clock.Now)
	h.configure = func(c *Config) { c.BGP = func() bgp.Speaker { return speaker } }
	h.start()
	vip32 := netip.PrefixFrom(testVIP, 32)
	announced := func() bool {
		st, _ := h.d.BGPStatus()
		return st.Announced && speaker.Routes()[vip32] == probeSource
	}
	bgpUntil(t, h, "the VIP announced once its real servers pass their checks", announced)

	h.vip.mu.Lock()
	onLo, onEth0 := h.vip.bound["lo"], h.vip.bound["eth0"]
	h.vip.mu.Unlock()
	if onLo != testVIP || onEth0.IsValid() {
		t.Errorf("VIP bound on lo %v and eth0 %v; want lo alone (the routers route it here, nothing answers ARP for it)", onLo, onEth0)
	}
	h.sysctl.mu.Lock()
	sloppy, arpIgnore := h.sysctl.values["net.ipv4.vs.sloppy_tcp"], h.sysctl.values["net.ipv4.conf.eth0.arp_ignore"]
	h.sysctl.mu.Unlock()
	if sloppy != "1" || arpIgnore != "1" {
		t.Errorf("sloppy_tcp %q, arp_ignore on eth0 %q; want 1 and 1", sloppy, arpIgnore)
	}
	if !slices.Contains(h.table(), "-t 10.0.0.100:5672 -s mh -p 50 -b mh-port") {
		t.Errorf("table lacks the mh service with mh-port:\n%s", strings.Join(h.table(), "\n"))
	}
	if v, ok := h.metric("lvsdr_bgp_announced", map[string]string{"prefix": "10.0.0.100/32", "reason": "serving"}); !ok || v != 1 {
		t.Errorf("lvsdr_bgp_announced = %v (%v), want 1", v, ok)
	}

	// Every real server fails: no service can be served, the VIP is
	// withdrawn rather than drawing flows into a black hole.
	for _, rs := range h.topo.Load().RealServers {
		for _, port := range []uint16{5672, 15672} {
			h.net.setDown(netip.AddrPortFrom(rs.Address, port), true)
		}
	}
	bgpUntil(t, h, "the VIP withdrawn below quorum everywhere", func() bool {
		st, _ := h.d.BGPStatus()
		_, routed := speaker.Routes()[vip32]
		return !st.Announced && !routed && st.Reason == bgp.ReasonQuorumLost
	})
	for _, rs := range h.topo.Load().RealServers {
		for _, port := range []uint16{5672, 15672} {
			h.net.setDown(netip.AddrPortFrom(rs.Address, port), false)
		}
	}
	bgpUntil(t, h, "the VIP announced again", announced)

	// SIGTERM: withdrawn before the speaker stops; the table stays.
	table := h.table()
	h.stop()
	calls := speaker.Calls()
	withdraw, stop := slices.Index(calls, "withdraw "+vip32.String()), slices.Index(calls, "stop")
	if withdraw < 0 || stop < 0 || withdraw > stop {
		t.Errorf("speaker calls %q: want the withdrawal before the stop", calls)
	}
	if !slices.Equal(h.table(), table) {
		t.Error("the IPVS table changed at stop")
	}
}

// A director whose start could not program IPVS does not draw the routers'
// flows to itself.
func TestFailedStartIsNotAnnounced(t *testing.T) {
	topo := scaleOutTopology()
	for i := range topo.Services {
		topo.Services[i].Checks = nil
	}
	h := newHarness(t, topo)
	h.kernel.SetFail(func(ipvsctl.OpKind, ipvsctl.ServiceKey, ipvsctl.Destination) error { return errors.New("no memory") })
	speaker := bgp.NewFake(h.clock.Now)
	h.configure = func(c *Config) { c.BGP = func() bgp.Speaker { return speaker } }
	h.start()
	bgpUntil(t, h, "the withdrawal's reason known", func() bool {
		st, ok := h.d.BGPStatus()
		return ok && st.Reason == bgp.ReasonIPVSFailed
	})
	if routes := speaker.Routes(); len(routes) != 0 {
		t.Errorf("announced %v while the table could not be written", routes)
	}
}

// Sync daemons this director did not start are not its business.
func TestForeignSyncDaemonIsLeftAlone(t *testing.T) {
	h := newHarness(t, reference())
	syncd := ipvsctl.NewFakeSyncDaemons()
	if err := syncd.StartDaemon(ipvsctl.SyncDaemon{Role: ipvsctl.SyncMaster, Interface: "eth9", SyncID: 7}); err != nil {
		t.Fatal(err)
	}
	h.configure = func(c *Config) { c.Syncd = syncd }
	h.start()
	h.settle()
	h.clock.Advance(time.Minute) // a resync or two
	h.settle()
	if daemons, _ := syncd.Daemons(); len(daemons) != 1 {
		t.Errorf("daemons %v: the operator's sync daemon was stopped", daemons)
	}
}
