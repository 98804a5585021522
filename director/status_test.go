package director

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestWriteStatusJoinsKernelHealthAndDrift(t *testing.T) {
	topo := reference()
	k := ipvsctl.NewFakeKernel()
	if _, err := Apply(k, StateFile{}, topo, false); err != nil {
		t.Fatal(err)
	}
	amqp := serviceKey(topo, topo.Services[0])
	node2 := ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672}
	k.DeleteDestination(amqp, node2)
	node1 := ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.2"), Port: 5672, Weight: 3, Forwarding: "dr"}
	k.UpdateDestination(amqp, node1)
	k.SetStats(amqp, node1, ipvsctl.Stats{ActiveConns: 12, InactiveConns: 2})
	k.DeleteService(serviceKey(topo, topo.Services[1]))
	table, err := ipvsctl.Read(k, declaredKeys(topo))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	checks := []CheckStatus{
		{Key: healthcheck.Key{Service: "amqp", RealServer: "rmq_node1", Check: "tcp"}, State: "up", Since: now.Add(-time.Hour)},
		{Key: healthcheck.Key{Service: "amqp", RealServer: "rmq_node2", Check: "tcp"}, State: "down", Since: now.Add(-90 * time.Second), LastError: "connect 10.0.0.3:5672: connection refused", Latency: 1234567},
	}
	var out bytes.Buffer
	report := BuildReport(topo, table, checks, map[string]bool{"rmq_node3": true}, now)
	if err := WriteStatus(&out, report); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"amqp  tcp 10.0.0.100:5672  wrr persistent 50s",
		"rmq_node1    10.0.0.2:5672  dr   3 (file 1)  12      2         0      0       up       -                      1h0m0s ago",
		"rmq_node2    10.0.0.3:5672  -    absent      -       -         -      -       down     check down             1m30s ago   1.2ms       connect 10.0.0.3:5672: connection refused",
		"rmq_node3    10.0.0.4:5672  dr   1 drained   -       -         -      -       unknown  maintenance (drained)  -           -",
		// node1's weight and node3's maintenance are drift; node2 is
		// rightly out.
		"drift: -e -t 10.0.0.100:5672 -r 10.0.0.2:5672 -g -w 1; -e -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 0",
		"management  tcp 10.0.0.100:15672  MISSING from the kernel",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	var js bytes.Buffer
	if err := WriteStatusJSON(&js, report); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("the JSON does not read back: %v\n%s", err, js.String())
	}
	rs := back.Services[0].RealServers
	if !back.DirectorRunning || rs[0].Stats == nil || rs[0].Stats.ActiveConns != 12 || rs[0].Weight != 3 || rs[0].FileWeight != 1 ||
		rs[1].Health != "down" || rs[1].LastError == "" || !rs[2].Maintenance || back.Services[1].InKernel || len(back.Services[1].Drift) == 0 {
		t.Errorf("JSON report:\n%s", js.String())
	}
	for _, key := range []string{`"active_conns": 12`, `"conns_per_s"`, `"in_kernel": false`, `"since": "2026-01-01T11:58:30Z"`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, js.String())
		}
	}

	out.Reset()
	WriteStatus(&out, BuildReport(topo, table, nil, nil, now))
	if !strings.Contains(out.String(), "health: unknown (no director is running)") {
		t.Errorf("status without a director:\n%s", out.String())
	}
}
