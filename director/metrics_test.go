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
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
)

// metricValue returns the value of the series of name whose labels include
// labels, and whether there is one.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
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
	// rmq_node3's failed probe was retried once (retry 1): both are timed,
	// in its own histogram.
	if n, _ := h.metric("lvsdr_check_duration_seconds", check("amqp", "rmq_node3")); n < 2 {
		t.Errorf("%v probes of amqp/rmq_node3 timed, want at least 2 (a first probe and its retry)", n)
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
		`lvsdr_ipvs_real_server_weight{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="rmq_node1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 1`,
		`lvsdr_check_up{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="rmq_node3",remote_address="10.0.0.4",remote_port="5672",service="amqp"} 0`,
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

// allChecked tells when every check has a result: the 6 of the
// reference topology report lvsdr_check_up.
func (h *harness) allChecked([]string) bool {
	mfs, err := h.d.obs.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lvsdr_check_up" {
			return len(mf.GetMetric()) == 6
		}
	}
	return false
}

// joined is the reference topology with what every lvsdr series can show:
// amqp checked through the VIP (marks 101-103), with a quorum of 2 and a
// sorry server, and the endpoint on.
func joined() *topology.Topology {
	topo := withMetrics("127.0.0.1:0")
	topo.Director.CheckMarkBase = 100
	amqp := &topo.Services[0]
	amqp.Checks[0].ThroughVIP = true
	amqp.Quorum = 2
	amqp.SorryServer = &topology.SorryServer{Address: netip.MustParseAddr("10.0.0.9"), Port: 5672}
	return topo
}

func TestMetricsCarryAddressesMaintenanceReloadsAndCheckServices(t *testing.T) {
	topo := joined()
	h := newHarness(t, topo)
	for i, rs := range topo.RealServers {
		h.net.marks[101+uint32(i)] = rs.Address
	}
	h.start()
	h.advanceUntil(10*time.Second, h.allChecked)

	// The names of the topology and node_exporter's address labels.
	h.wantMetric("lvsdr_ipvs_real_server_weight", map[string]string{"service": "amqp", "real_server": "rmq_node2", "check_service": "false",
		"local_address": "10.0.0.100", "local_port": "5672", "proto": "TCP", "remote_address": "10.0.0.3", "remote_port": "5672"}, 1)
	h.wantMetric("lvsdr_ipvs_real_server_weight", map[string]string{"service": "through_vip", "real_server": "rmq_node2", "check_service": "true",
		"proto": "FWM", "local_mark": "00000066", "remote_address": "10.0.0.3", "remote_port": "0"}, 1)
	h.wantMetric("lvsdr_check_up", map[string]string{"service": "amqp", "real_server": "rmq_node2", "check": "tcp",
		"local_address": "10.0.0.100", "local_port": "5672", "proto": "TCP", "remote_address": "10.0.0.3", "remote_port": "5672"}, 1)
	h.wantMetric("lvsdr_quorum_lost", map[string]string{"service": "amqp", "local_address": "10.0.0.100", "local_port": "5672", "proto": "TCP"}, 0)
	h.wantMetric("lvsdr_vip_held", map[string]string{"local_address": "10.0.0.100"}, 1)
	h.wantMetric("lvsdr_sorry_server_active", map[string]string{"service": "amqp"}, 0)
	if _, ok := h.metric("lvsdr_sorry_server_active", map[string]string{"service": "management"}); ok {
		t.Error("lvsdr_sorry_server_active of management, which has no sorry server")
	}

	if err := h.d.SetMaintenance("rmq_node2", true); err != nil {
		t.Fatal(err)
	}
	h.wantMetric("lvsdr_real_server_maintenance", map[string]string{"real_server": "rmq_node2", "remote_address": "10.0.0.3"}, 1)
	h.wantMetric("lvsdr_real_server_maintenance", map[string]string{"real_server": "rmq_node1", "remote_address": "10.0.0.2"}, 0)

	// Below its quorum of 2 (rmq_node2 drained, rmq_node1 down), amqp
	// sends new clients to its sorry server.
	h.net.setDown(netip.MustParseAddrPort("10.0.0.2:5672"), true)
	h.advanceUntil(20*time.Second, has("  -r 10.0.0.9:5672 -g -w 1"))
	h.wantMetric("lvsdr_sorry_server_active", map[string]string{"service": "amqp"}, 1)
	h.wantMetric("lvsdr_quorum_lost", map[string]string{"service": "amqp"}, 1)

	h.wantMetric("lvsdr_reloads_total", map[string]string{"result": "success"}, 0)
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("topology.yaml:3: unknown key")
	h.loadErr.Store(&refused)
	if err := h.d.ReloadAndWait(); err == nil {
		t.Fatal("the refused file was accepted")
	}
	h.loadErr.Store(nil)
	h.wantMetric("lvsdr_reloads_total", map[string]string{"result": "success"}, 1)
	h.wantMetric("lvsdr_reloads_total", map[string]string{"result": "failure"}, 1)
	h.wantMetric("lvsdr_last_reload_success", nil, 0)
	// The fake clock dates reloads.
	h.wantMetric("lvsdr_last_reload_timestamp_seconds", nil, float64(h.clock.Now().Unix()))
	if _, ok := h.metric("lvsdr_last_reload_duration_seconds", nil); !ok {
		t.Error("no lvsdr_last_reload_duration_seconds after two reloads")
	}

	// A failed run of the notify hook is counted, whichever hook ran it.
	hook := notify.Start([]string{"/bin/false"}, 5*time.Second, h.d.Log, notify.OnFailure(h.d.obs.notifyFailed))
	hook.Send(notify.Event{Kind: notify.KindCheck})
	hook.Close()
	h.wantMetric("lvsdr_notify_hook_failures_total", nil, 1)
}

// promtool's linter (client_golang's promlint) passes every family the
// endpoint serves: names, units, counters' _total, help texts.
func TestMetricsPassPromtoolsLinter(t *testing.T) {
	topo := joined()
	h := newHarness(t, topo)
	for i, rs := range topo.RealServers {
		h.net.marks[101+uint32(i)] = rs.Address
	}
	h.start()
	h.advanceUntil(10*time.Second, h.allChecked)
	if err := h.d.SetMaintenance("rmq_node2", true); err != nil {
		t.Fatal(err)
	}
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	h.d.obs.notifyFailed(notify.Event{}, nil)

	code, body := httpGet(t, "http://"+h.d.obs.server.Addr().String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	// The families linted must be lvsdr's whole set, not an empty page.
	for _, name := range []string{"lvsdr_check_state_since_timestamp_seconds", "lvsdr_real_server_maintenance", "lvsdr_reloads_total",
		"lvsdr_notify_hook_failures_total", "lvsdr_sorry_server_active", "lvsdr_ipvs_real_server_weight", "lvsdr_check_duration_seconds"} {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
