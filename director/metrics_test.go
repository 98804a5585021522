package director

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// metricValue returns the value of the series of name whose labels include
// labels, and whether there is one.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func (h *harness) metric(name string, labels map[string]string) (float64, bool) {
	h.t.Helper()
	return metricValue(h.t, h.d.obs.registry, name, labels)
}

func (h *harness) wantMetric(name string, labels map[string]string, want float64) {
	h.t.Helper()
	got, ok := h.metric(name, labels)
	if !ok || got != want {
		h.t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func check(service, node string) map[string]string {
	return map[string]string{"service": service, "real_server": node, "check": "tcp"}
}

func withMetrics(addr string) *topology.Topology {
	topo := reference()
	topo.Director.MetricsAddress = netip.MustParseAddrPort(addr)
	topo.Services[0].Quorum = 3
	return topo
}

func TestMetricsFollowChecksAndReconciles(t *testing.T) {
	h := newHarness(t, withMetrics("127.0.0.1:0"))
	h.net.setDown(netip.MustParseAddrPort("10.0.0.4:5672"), true)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 7 })

	for _, s := range []string{"amqp", "management"} {
		for _, n := range []string{"rmq_node1", "rmq_node2", "rmq_node3"} {
			want := 1.0
			if s == "amqp" && n == "rmq_node3" {
				want = 0
			}
			h.wantMetric("lvsdr_check_up", check(s, n), want)
		}
	}
	down := check("amqp", "rmq_node3")
	down["to"] = "down"
	h.wantMetric("lvsdr_check_transitions_total", down, 1)
	// rmq_node3's failed probe was retried once (retry 1): both are timed.
	if n, _ := h.metric("lvsdr_check_duration_seconds", map[string]string{"service": "amqp", "check": "tcp"}); n < 4 {
		t.Errorf("%v amqp probes timed, want at least 4 (a first probe of each node, and rmq_node3's retry)", n)
	}
	// At start every check is unknown: the services go in empty, then
	// each node as its first check passes.
	h.wantMetric("lvsdr_ipvs_operations_total", map[string]string{"op": "add_service"}, 2)
	h.wantMetric("lvsdr_ipvs_operations_total", map[string]string{"op": "add_destination"}, 5)
	h.wantMetric("lvsdr_reconcile_duration_seconds", map[string]string{"reason": "start"}, 1)
	h.wantMetric("lvsdr_quorum_lost", map[string]string{"service": "amqp"}, 1)
	h.wantMetric("lvsdr_quorum_lost", map[string]string{"service": "management"}, 0)

	base := "http://" + h.d.obs.server.Addr().String()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`lvsdr_ipvs_real_server_weight{real_server="rmq_node1",service="amqp"} 1`,
		`lvsdr_check_up{check="tcp",real_server="rmq_node3",service="amqp"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q, want 200 ok", code, body)
	}

	// The kernel refuses operations: the reconcile after rmq_node1 fails
	// its check fails, and /healthz says so until a resync succeeds.
	h.kernel.Fail = func(ipvsctl.OpKind, ipvsctl.ServiceKey, ipvsctl.Destination) error {
		return errors.New("no answer from the kernel in time")
	}
	h.net.setDown(netip.MustParseAddrPort("10.0.0.2:15672"), true)
	h.advanceUntil(10*time.Second, func([]string) bool {
		n, _ := h.metric("lvsdr_reconcile_errors_total", map[string]string{"reason": "check"})
		return n > 0
	})
	code, body = httpGet(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "last reconcile (check) failed") || !strings.Contains(body, "no answer from the kernel") {
		t.Errorf("GET /healthz after a failed reconcile: %d %q, want 503 naming it", code, body)
	}
	h.kernel.Fail = nil
	h.advanceUntil(time.Minute, not(has("  -r 10.0.0.2:15672 -g -w 1")))
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz after the resync repaired it: %d %q, want 200", code, body)
	}
}

func TestDriftIsWhatAResyncRepaired(t *testing.T) {
	h := newHarness(t, reference())
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	if _, ok := h.metric("lvsdr_drift_operations", nil); !ok {
		t.Fatal("no lvsdr_drift_operations")
	}
	amqp := serviceKey(reference(), reference().Services[0])
	h.kernel.DeleteDestination(amqp, ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672})
	h.kernel.UpdateService(ipvsctl.Service{Key: amqp, Scheduler: "rr"})
	h.advanceUntil(time.Minute, func(tab []string) bool { return has(amqpNode2)(tab) && has(amqpService)(tab) })
	h.wantMetric("lvsdr_drift_operations", nil, 2)
	h.wantMetric("lvsdr_ipvs_operations_total", map[string]string{"op": "update_service"}, 1)

	resyncs, _ := h.metric("lvsdr_reconcile_duration_seconds", map[string]string{"reason": "resync"})
	h.advanceUntil(time.Minute, func([]string) bool {
		n, _ := h.metric("lvsdr_reconcile_duration_seconds", map[string]string{"reason": "resync"})
		return n > resyncs
	})
	h.wantMetric("lvsdr_drift_operations", nil, 0)
}

func TestReloadMovesTheEndpointAndDropsRemovedSeries(t *testing.T) {
	h := newHarness(t, withMetrics("127.0.0.1:0"))
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	old := h.d.obs.server.Addr().String()
	h.wantMetric("lvsdr_check_up", check("management", "rmq_node1"), 1)

	next := withMetrics("127.0.0.2:0")
	next.Services = next.Services[:1]
	h.topo.Store(next)
	h.d.Reload()
	h.settle()

	moved := h.d.obs.server.Addr().String()
	if !strings.HasPrefix(moved, "127.0.0.2:") {
		t.Fatalf("endpoint at %s after a reload to 127.0.0.2:0", moved)
	}
	if code, _ := httpGet(t, "http://"+moved+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz on the new address: %d", code)
	}
	if _, err := http.Get("http://" + old + "/healthz"); err == nil {
		t.Errorf("the old address %s still answers", old)
	}
	if _, ok := h.metric("lvsdr_check_up", check("management", "rmq_node1")); ok {
		t.Error("lvsdr_check_up of the removed management service is still reported")
	}
	up := check("management", "rmq_node1")
	up["to"] = "up"
	if _, ok := h.metric("lvsdr_check_transitions_total", up); ok {
		t.Error("transitions of the removed management service are still reported")
	}
	if _, ok := h.metric("lvsdr_quorum_lost", map[string]string{"service": "management"}); ok {
		t.Error("lvsdr_quorum_lost of the removed management service is still reported")
	}

	off := withMetrics("127.0.0.2:0")
	off.Director.MetricsAddress = netip.AddrPort{}
	h.topo.Store(off)
	h.d.Reload()
	h.settle()
	if h.d.obs.server != nil {
		t.Error("the endpoint still runs after a reload turned it off")
	}
}

func TestMetricsListenFailureStopsTheStart(t *testing.T) {
	first := newHarness(t, withMetrics("127.0.0.1:0"))
	first.start()
	first.settle()
	taken := first.d.obs.server.Addr().String()

	h := newHarness(t, withMetrics(taken))
	d := New(Config{Kernel: h.kernel, VIP: h.vip, Sysctl: h.sysctl, Clock: h.clock, Log: first.d.Log, State: h.state,
		Load:      func() (*topology.Topology, error) { return h.topo.Load(), nil },
		NewProber: first.d.NewProber})
	err := d.Run(t.Context())
	if want := "metrics on " + taken + ": address already in use"; err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %q", err, want)
	}
}

func TestLeavingServerDeletedByAResyncIsNotDrift(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 2 * time.Minute
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	amqp := serviceKey(topo, topo.Services[0])
	h.kernel.SetStats(amqp, ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672}, ipvsctl.Stats{})
	next := reference()
	next.Director.DrainTimeout = 2 * time.Minute
	next.Services[0].RealServers = []string{"rmq_node1", "rmq_node3"}
	h.topo.Store(next)
	h.d.Reload()
	h.settle()
	h.advanceUntil(time.Minute, not(has("  -r 10.0.0.3:5672 -g -w 0")))
	h.wantMetric("lvsdr_ipvs_operations_total", map[string]string{"op": "delete_destination"}, 1)
	h.wantMetric("lvsdr_drift_operations", nil, 0)
}

func TestRetiredServiceDeletedByAResyncIsNotDrift(t *testing.T) {
	topo := reference()
	topo.Director.DrainTimeout = 2 * time.Minute
	h := newHarness(t, topo)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	next := reference()
	next.Director.DrainTimeout = 2 * time.Minute
	next.Services = next.Services[:1]
	mgmt := serviceKey(topo, topo.Services[1])
	for _, addr := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		h.kernel.SetStats(mgmt, ipvsctl.Destination{Address: netip.MustParseAddr(addr), Port: 15672}, ipvsctl.Stats{})
	}
	h.topo.Store(next)
	h.d.Reload()
	h.settle()
	h.advanceUntil(time.Minute, not(has("-t 10.0.0.100:15672 -s wrr -p 50")))
	h.wantMetric("lvsdr_ipvs_operations_total", map[string]string{"op": "delete_service"}, 1)
	h.wantMetric("lvsdr_drift_operations", nil, 0)
}
