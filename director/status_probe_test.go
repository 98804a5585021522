package director

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/testnet"
	"github.com/lvsdr/lvsdr/topology"
)

// probeTopology has one real server on loopback in four services: one
// listening, one closed, one unchecked and one checked through the VIP;
// and a second real server in the first service alone.
func probeTopology(open, closed uint16) *topology.Topology {
	check := func(name string, port uint16) topology.Check {
		return topology.Check{Name: name, Type: topology.CheckTCP, Port: port, Interval: 5 * time.Second, ConnectTimeout: 2 * time.Second, Rise: 1}
	}
	vipCheck := check("tcp", open)
	vipCheck.ThroughVIP = true
	t := &topology.Topology{
		VIP:      netip.MustParseAddr("127.0.0.100"),
		Director: topology.Director{Interface: "lo", CheckMarkBase: 0x100},
		RealServers: []topology.RealServer{
			{Name: "local", Address: netip.MustParseAddr("127.0.0.1"), Weight: 1},
			{Name: "other", Address: netip.MustParseAddr("127.0.0.2"), Weight: 1},
		},
		Services: []topology.Service{
			{Name: "amqp", Port: open, Checks: []topology.Check{check("tcp", open)}, RealServers: []string{"local", "other"}},
			{Name: "management", Port: closed, Checks: []topology.Check{check("tcp", closed)}, RealServers: []string{"local"}},
			{Name: "stream", Port: 5552, Checks: []topology.Check{{Name: "none", Type: topology.CheckNone}}, RealServers: []string{"local"}},
			{Name: "via-vip", Port: open, Checks: []topology.Check{vipCheck}, RealServers: []string{"local"}},
		},
	}
	t.Reindex()
	return t
}

func TestProbeNodeAgainstLoopback(t *testing.T) {
	open, closed := testnet.LoopbackPorts(t)
	topo := probeTopology(open, closed)
	results, err := ProbeNode(context.Background(), topo, "local", ProbeOptions{NewProber: NewProber})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ service, result string }{{"amqp", ProbeOK}, {"management", ProbeFailed}, {"stream", ProbeNotChecked}, {"via-vip", ProbeSkipped}}
	if len(results) != len(want) {
		t.Fatalf("results %+v", results)
	}
	for i, w := range want {
		r := results[i]
		if r.Service != w.service || r.Result != w.result {
			t.Errorf("result %d: %+v, want %s %s", i, r, w.service, w.result)
		}
	}
	if r := results[0]; r.Latency <= 0 || r.Error != "" || r.Target != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), open).String() {
		t.Errorf("the open port: %+v", r)
	}
	if r := results[1]; !strings.Contains(r.Error, "refused") || r.Latency <= 0 {
		t.Errorf("the closed port: %+v", r)
	}
	if ProbesFailed(results) != 1 {
		t.Errorf("%d failed, want 1", ProbesFailed(results))
	}
	var out bytes.Buffer
	WriteProbes(&out, "local", results)
	for _, line := range []string{"amqp        tcp    127.0.0.1:", "  ok  ", "management  tcp", "  failed  ", "local: 1 of 4 checks failed"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the output lacks %q:\n%s", line, out.String())
		}
	}

	// --service picks; the node's other services are not probed.
	results, err = ProbeNode(context.Background(), topo, "local", ProbeOptions{Services: []string{"amqp"}, NewProber: NewProber})
	if err != nil || len(results) != 1 || results[0].Result != ProbeOK {
		t.Errorf("--service amqp: %+v, %v", results, err)
	}
}

type probeFunc func(context.Context) error

func (f probeFunc) Probe(ctx context.Context) error { return f(ctx) }

// With a running director, a check through the VIP is probed as the
// director probes it: at the VIP, with the real server's mark, from the
// source given.
func TestProbeNodeThroughTheVIP(t *testing.T) {
	topo := probeTopology(5672, 5673)
	source := netip.MustParseAddr("127.0.0.9")
	var got []ProbeTarget
	results, err := ProbeNode(context.Background(), topo, "local", ProbeOptions{Services: []string{"via-vip"}, ThroughVIP: true, Source: source,
		NewProber: func(target ProbeTarget, _ topology.Check) healthcheck.Prober {
			got = append(got, target)
			return probeFunc(func(context.Context) error { return nil })
		}})
	mark, _ := topo.CheckMark("local")
	want := ProbeTarget{Address: netip.MustParseAddrPort("127.0.0.100:5672"), Mark: mark, Source: source}
	if err != nil || len(got) != 1 || got[0] != want || results[0].Result != ProbeOK || !strings.Contains(results[0].Target, "through the VIP") {
		t.Errorf("probed %+v (%+v, %v), want %+v", got, results, err, want)
	}
}

func TestProbeNodeRefusesNamesNotInTheFile(t *testing.T) {
	topo := probeTopology(1, 2)
	for _, tc := range []struct {
		node     string
		services []string
		err      string
	}{
		{node: "locl", err: `real server "locl": not in the topology: did you mean "local"?`},
		{node: "local", services: []string{"amqq"}, err: `service "amqq": not in the topology: did you mean "amqp"?`},
		{node: "other", services: []string{"management"}, err: `real server "other" is in none of the services named`},
	} {
		_, err := ProbeNode(context.Background(), topo, tc.node, ProbeOptions{Services: tc.services, NewProber: func(ProbeTarget, topology.Check) healthcheck.Prober {
			t.Fatal("probed a name that is not in the file")
			return nil
		}})
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s %v: %v, want %s", tc.node, tc.services, err, tc.err)
		}
	}
}
