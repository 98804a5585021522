package director

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestServiceRemovedByReloadStaysUntilItsServersHaveLeft(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 2 * time.Minute
	h := newHarness(t, topo)
	logs := &syncBuffer{}
	h.logs = logs
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	mgmt := serviceKey(topo, topo.Services[1])
	for i, addr := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		h.kernel.SetStats(mgmt, ipvsctl.Destination{Address: netip.MustParseAddr(addr), Port: 15672}, ipvsctl.Stats{ActiveConns: i})
	}

	next := reference()
	next.Director.DrainTimeout = 2 * time.Minute
	next.Services = next.Services[:1]
	h.topo.Store(next)
	h.d.Reload()
	h.settle()
	for _, line := range []string{"-t 10.0.0.100:15672 -s wrr -p 50", "  -r 10.0.0.3:15672 -g -w 0", "  -r 10.0.0.4:15672 -g -w 0"} {
		if !slices.Contains(h.table(), line) {
			t.Fatalf("the retired service with connections was not kept, its servers at weight 0 (%q):\n%s", line, strings.Join(h.table(), "\n"))
		}
	}
	// node1 had none: it leaves at the next sweep; the service stays.
	h.advanceUntil(time.Minute, not(has("  -r 10.0.0.2:15672 -g -w 0")))
	if !slices.Contains(h.table(), "-t 10.0.0.100:15672 -s wrr -p 50") {
		t.Fatal("the service went while two of its servers had connections")
	}
	// A restart meanwhile keeps draining it: the state file still owns it.
	h.stop()
	h.start()
	h.settle()
	if !slices.Contains(h.table(), "  -r 10.0.0.4:15672 -g -w 0") {
		t.Fatalf("a restart cut the retiring service:\n%s", strings.Join(h.table(), "\n"))
	}
	for _, addr := range []string{"10.0.0.3", "10.0.0.4"} {
		h.kernel.SetStats(mgmt, ipvsctl.Destination{Address: netip.MustParseAddr(addr), Port: 15672}, ipvsctl.Stats{})
	}
	took := h.advanceUntil(time.Minute, func(tab []string) bool {
		return !slices.ContainsFunc(tab, func(l string) bool { return strings.Contains(l, ":15672") })
	})
	if took > 30*time.Second {
		t.Errorf("the service was deleted %s after its last connection ended, want soon, not at the 2m drain timeout\n%s", took, logs.String())
	}
	// The kernel shows the deletion before the reconcile that made it has
	// recorded the state (the test reads both from another goroutine): the
	// record must follow within that reconcile or, at worst, the next.
	owned := func() bool {
		state, err := h.state.Load()
		return err != nil || slices.Contains(state.Owned, mgmt)
	}
	for i := 0; i < 30 && owned(); i++ {
		h.settle()
		h.clock.Advance(time.Second)
	}
	if owned() {
		state, err := h.state.Load()
		t.Errorf("the deleted service is still owned: %+v %v", state.Owned, err)
	}
}

func TestStatusTellsLeavingServersFromDrift(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 2 * time.Minute
	h := newHarness(t, topo)
	h.controlSocket = filepath.Join(t.TempDir(), "director.sock")
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	amqp := serviceKey(topo, topo.Services[0])
	h.kernel.SetStats(amqp, ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672}, ipvsctl.Stats{ActiveConns: 1})
	next := reference()
	next.Director.DrainTimeout = 2 * time.Minute
	next.Services[0].RealServers = []string{"rmq_node1", "rmq_node3"}
	h.topo.Store(next)
	h.d.Reload()
	h.settle()

	r, err := QueryStatus(h.controlSocket)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Services[0]
	if len(s.Foreign) != 1 || !s.Foreign[0].Leaving || s.Foreign[0].Address != "10.0.0.3:5672" || s.Foreign[0].Weight != 0 {
		t.Errorf("leaving server: %+v", s.Foreign)
	}
	if len(s.Drift) != 0 {
		t.Errorf("a scheduled removal reported as drift: %v", s.Drift)
	}
	var out strings.Builder
	WriteStatus(&out, r)
	if !strings.Contains(out.String(), "(leaving)    10.0.0.3:5672  dr   0") {
		t.Errorf("status:\n%s", out.String())
	}
}
