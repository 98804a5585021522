package director

import (
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
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
	speaker := bgp.NewFake(h.clock.Now)
	h.configure = func(c *Config) { c.BGP = func() bgp.Speaker { return speaker } }
	h.start()
	vip32 := netip.PrefixFrom(testVIP, 32)
	bgpUntil(t, h, "the VIP announced once its real servers pass their checks", func() bool { return speaker.Routes()[vip32] == probeSource })

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
	if st, ok := h.d.BGPStatus(); !ok || !st.Announced || st.Reason != bgp.ReasonServing {
		t.Errorf("BGP status %+v, want announced while serving", st)
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
	bgpUntil(t, h, "the VIP withdrawn below quorum everywhere", func() bool { _, ok := speaker.Routes()[vip32]; return !ok })
	if st, _ := h.d.BGPStatus(); st.Reason != bgp.ReasonQuorumLost {
		t.Errorf("withdrawn for %q, want %q", st.Reason, bgp.ReasonQuorumLost)
	}
	for _, rs := range h.topo.Load().RealServers {
		for _, port := range []uint16{5672, 15672} {
			h.net.setDown(netip.AddrPortFrom(rs.Address, port), false)
		}
	}
	bgpUntil(t, h, "the VIP announced again", func() bool { return speaker.Routes()[vip32] == probeSource })

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
