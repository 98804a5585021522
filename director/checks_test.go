package director

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

func TestCheckThroughTheVIPTakesOutANodeWithoutItsLoopbackVIP(t *testing.T) {
	topo := reference()
	topo.Director.Interface = "eth0"
	topo.Director.CheckMarkBase = 100
	topo.Services[0].Checks[0].ThroughVIP = true
	h := newHarness(t, topo)
	for i, rs := range topo.RealServers {
		h.net.marks[101+uint32(i)] = rs.Address
	}
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	for _, line := range []string{"-f 101 -s rr", "  -r 10.0.0.3:0 -g -w 1", "-f 103 -s rr"} {
		if !slices.Contains(h.table(), line) {
			t.Errorf("table lacks %q:\n%s", line, strings.Join(h.table(), "\n"))
		}
	}
	if got := h.sysctl.values["net.ipv4.conf.eth0.accept_local"]; got != "1" {
		t.Errorf("accept_local on eth0 = %q, want 1: the answers come back from the VIP", got)
	}

	// node2 still answers on its own address, but not at the VIP.
	h.net.mu.Lock()
	h.net.vipMissing[netip.MustParseAddr("10.0.0.3")] = true
	h.net.mu.Unlock()
	took := h.advanceUntil(topo.Services[0].Checks[0].DetectionBound(), not(has(amqpNode2)))
	t.Logf("out after %s", took)
	if !slices.Contains(h.table(), "  -r 10.0.0.3:15672 -g -w 1") {
		t.Error("node2 left management, whose check does not go through the VIP")
	}
	if !slices.Contains(h.table(), "-f 102 -s rr") {
		t.Error("the check service of node2 went with it: its check could never bring it back")
	}
	h.net.mu.Lock()
	delete(h.net.vipMissing, netip.MustParseAddr("10.0.0.3"))
	h.net.mu.Unlock()
	h.advanceUntil(3*topo.Services[0].Checks[0].Interval, has(amqpNode2))
}

// A reload builds every prober afresh. A check through the VIP dials with a
// Control func (SO_MARK), never equal to its rebuilt self: if the director
// compared built probers, every reload would restart those checks (and
// re-spread their first probes). The probers built by a reload that
// changes nothing must never be used.
func TestReloadKeepsTheLoopsOfChecksThroughTheVIP(t *testing.T) {
	topo := reference()
	topo.Director.CheckMarkBase = 100
	topo.Services[0].Checks[0].ThroughVIP = true
	h := newHarness(t, topo)
	for i, rs := range topo.RealServers {
		h.net.marks[101+uint32(i)] = rs.Address
	}
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	h.net.mu.Lock()
	h.net.generation = 1
	h.net.mu.Unlock()
	h.d.Reload()
	h.settle()
	for range 2 * topo.Services[0].Checks[0].Interval / time.Second {
		h.clock.Advance(time.Second)
		h.settle()
	}
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	if h.net.probed[0] == 0 {
		t.Fatal("no probe after the reload: the test proves nothing")
	}
	if n := h.net.probed[1]; n != 0 {
		t.Errorf("%d probes by the probers of a reload that changed nothing: its checks were restarted", n)
	}
}

func TestEveryCheckMustPass(t *testing.T) {
	topo := reference()
	amqp := &topo.Services[0]
	amqp.Checks = append(amqp.Checks, topology.Check{Name: "management", Type: topology.CheckTCP, Port: 15672,
		Interval: 5 * time.Second, ConnectTimeout: 3 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Rise: 2})
	h := newHarness(t, topo)
	h.controlSocket = filepath.Join(t.TempDir(), "director.sock")
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))

	// The management listener of node2 fails: amqp's second check fails,
	// so node2 leaves amqp although its port 5672 answers.
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:15672"), true)
	h.advanceUntil(10*time.Second, func(tab []string) bool {
		return !slices.Contains(tab, amqpNode2) && !slices.Contains(tab, "  -r 10.0.0.3:15672 -g -w 1")
	})
	var out strings.Builder
	kernel, err := ipvsctl.Read(h.kernel, declaredKeys(topo))
	if err != nil {
		t.Fatal(err)
	}
	checks, err := QueryChecks(h.controlSocket)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(&out, BuildReport(topo, kernel, checks, nil, h.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "down (management)") || !strings.Contains(out.String(), "management: connect 10.0.0.3:15672: connection refused") {
		t.Errorf("status does not name the failing check:\n%s", out.String())
	}
}

func TestQuorumPutsTheSorryServerInAndTheHookHearsOfIt(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$LVSDR_EVENT $LVSDR_SERVICE $LVSDR_NODE $LVSDR_CHECK $LVSDR_STATE\" >>"+events+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	topo := reference()
	topo.Director.Notify = &topology.Notify{Command: []string{hook}, Timeout: 5 * time.Second}
	amqp := &topo.Services[0]
	amqp.Quorum = 2
	amqp.SorryServer = &topology.SorryServer{Address: netip.MustParseAddr("10.0.0.9"), Port: 5672}
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	sorry := "  -r 10.0.0.9:5672 -g -w 1"
	if slices.Contains(h.table(), sorry) {
		t.Fatal("the sorry server is in while the quorum is met")
	}
	h.net.setDown(netip.MustParseAddrPort("10.0.0.2:5672"), true)
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), true)
	h.advanceUntil(10*time.Second, has(sorry))
	if !slices.Contains(h.table(), "  -r 10.0.0.4:5672 -g -w 0") {
		t.Errorf("the last healthy node must stay at weight 0 for its clients:\n%s", strings.Join(h.table(), "\n"))
	}
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), false)
	h.advanceUntil(20*time.Second, func(tab []string) bool {
		return !slices.Contains(tab, sorry) && slices.Contains(tab, amqpNode2) && slices.Contains(tab, "  -r 10.0.0.4:5672 -g -w 1")
	})
	h.stop() // closes the hook after its queue ran

	got, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"check amqp rmq_node1 tcp down", "check amqp rmq_node2 tcp down",
		"quorum amqp   lost", "check amqp rmq_node2 tcp up", "quorum amqp   regained",
	} {
		if !strings.Contains(string(got), want+"\n") {
			t.Errorf("the hook did not hear %q; it heard:\n%s", want, got)
		}
	}
	if strings.Index(string(got), "quorum amqp   lost") > strings.Index(string(got), "quorum amqp   regained") {
		t.Errorf("events out of order:\n%s", got)
	}
}

func TestMaintenanceIsNotified(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$LVSDR_EVENT $LVSDR_NODE $LVSDR_PREVIOUS_STATE>$LVSDR_STATE\" >>"+events+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	topo := reference()
	topo.Director.Notify = &topology.Notify{Command: []string{hook}, Timeout: 5 * time.Second}
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	for _, on := range []bool{true, false} {
		if err := h.d.SetMaintenance("rmq_node2", on); err != nil {
			t.Fatal(err)
		}
	}
	h.stop()
	got, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "maintenance rmq_node2 undrained>drained\nmaintenance rmq_node2 drained>undrained\n") {
		t.Errorf("the hook heard:\n%s", got)
	}
}

func TestStatusComesFromTheRunningDirector(t *testing.T) {
	h := newHarness(t, reference())
	h.controlSocket = filepath.Join(t.TempDir(), "director.sock")
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	if err := h.d.SetMaintenance("rmq_node3", true); err != nil {
		t.Fatal(err)
	}
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), true)
	h.advanceUntil(10*time.Second, not(has(amqpNode2)))
	// The file changes on disk but is not reloaded: the report is of the
	// topology in force.
	edited := reference()
	edited.Services = edited.Services[:1]
	h.topo.Store(edited)

	r, err := QueryStatus(h.controlSocket)
	if err != nil {
		t.Fatal(err)
	}
	if !r.DirectorRunning || len(r.Services) != 2 {
		t.Fatalf("report of the running director: %+v", r)
	}
	amqp := r.Services[0].RealServers
	if amqp[1].Health != "down" || amqp[1].InKernel || !strings.Contains(amqp[1].LastError, "refused") {
		t.Errorf("rmq_node2: %+v", amqp[1])
	}
	if !amqp[2].Maintenance || amqp[2].Weight != 0 || amqp[2].Health != "up" {
		t.Errorf("rmq_node3: %+v", amqp[2])
	}
	for _, s := range r.Services {
		if len(s.Drift) != 0 {
			t.Errorf("drift on the table the director keeps: %s %v", s.Name, s.Drift)
		}
	}
}

func TestNoAddressToCheckThroughTheVIPFromStopsBeforeAnythingIsTouched(t *testing.T) {
	topo := reference()
	topo.Services[0].Checks[0].ThroughVIP = true
	h := newHarness(t, topo)
	h.vip.noSource = true
	h.start()
	err := <-h.done
	h.cancel = nil
	if err == nil || !strings.Contains(err.Error(), "checks through the VIP: eth0 has no IPv4 address but the VIP") {
		t.Fatalf("Run: %v", err)
	}
	if len(h.vip.bound) != 0 || len(h.sysctl.values) != 0 || h.kernel.Writes != 0 {
		t.Errorf("a director that could not start left the VIP %v, sysctls %v, %d kernel writes", h.vip.bound, h.sysctl.values, h.kernel.Writes)
	}
}

// A reload compares every check's settings with the running one's; Equal
// does it without reflection and must answer as reflect.DeepEqual does,
// http and amqp settings included, which a new parse puts behind new
// pointers.
func TestProbeSettingsEqualAnswersAsDeepEqual(t *testing.T) {
	base := func() probeSettings {
		return probeSettings{
			Target: ProbeTarget{Address: netip.MustParseAddrPort("10.0.0.100:15672"), Mark: 7, Source: netip.MustParseAddr("10.0.0.1")},
			Check: topology.Check{Name: "api", Type: topology.CheckHTTP, Port: 15672, Interval: time.Second,
				HTTP: &topology.HTTPCheck{Scheme: "http", Path: "/api/health", ExpectStatus: []int{200}, Headers: map[string]string{"X": "y"}},
				AMQP: nil},
		}
	}
	cases := map[string]func(p *probeSettings){
		"the same, parsed again":  func(p *probeSettings) {},
		"another mark":            func(p *probeSettings) { p.Target.Mark = 8 },
		"another source":          func(p *probeSettings) { p.Target.Source = netip.MustParseAddr("10.0.0.2") },
		"another interval":        func(p *probeSettings) { p.Check.Interval = 2 * time.Second },
		"another path":            func(p *probeSettings) { p.Check.HTTP.Path = "/other" },
		"another expected status": func(p *probeSettings) { p.Check.HTTP.ExpectStatus = []int{200, 204} },
		"another header":          func(p *probeSettings) { p.Check.HTTP.Headers = map[string]string{"X": "z"} },
		"http settings gone":      func(p *probeSettings) { p.Check.HTTP = nil },
		"amqp settings added":     func(p *probeSettings) { p.Check.AMQP = &topology.AMQPCheck{VHost: "/"} },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := base(), base()
			change(&b)
			want := reflect.DeepEqual(any(a), any(b))
			if got := a.Equal(b); got != want {
				t.Errorf("Equal = %v, reflect.DeepEqual = %v", got, want)
			}
			if got := b.Equal(a); got != want {
				t.Errorf("reversed: Equal = %v, reflect.DeepEqual = %v", got, want)
			}
			if (name == "the same, parsed again") != want {
				t.Errorf("reflect.DeepEqual = %v: the case does not test what it says", want)
			}
		})
	}
	if base().Equal("not settings") {
		t.Error("Equal took another type for equal settings")
	}
}
