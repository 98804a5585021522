package ipvsctl

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/lvsdr/lvsdr/topology"
)

func TestSorryServerBelowQuorum(t *testing.T) {
	sorry := netip.MustParseAddr("10.0.0.9")
	tests := []struct {
		name        string
		down        []string
		maintenance map[string]bool
		want        []string
	}{
		{"quorum met", []string{"rmq_node1"}, nil, []string{
			"-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 1",
			"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 1",
		}},
		{"quorum lost: the sorry server takes new clients, the survivor keeps its own", []string{"rmq_node1", "rmq_node2"}, nil, []string{
			"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 0",
			"-a -t 10.0.0.100:5672 -r 10.0.0.9:5672 -g -w 1",
		}},
		{"a node in maintenance does not count", []string{"rmq_node1"}, map[string]bool{"rmq_node2": true}, []string{
			"-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 0",
			"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 0",
			"-a -t 10.0.0.100:5672 -r 10.0.0.9:5672 -g -w 1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := reference()
			topo.Services = topo.Services[:1]
			topo.Services[0].Quorum = 2
			topo.Services[0].SorryServer = &topology.SorryServer{Address: sorry, Port: 5672}
			var got []string
			for _, op := range Diff(Desired(topo, down(tt.down...), tt.maintenance), nil, nil) {
				if op.Kind == AddDestination {
					got = append(got, op.String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("destinations:\n got %q\nwant %q", got, tt.want)
			}
			lost := QuorumLost(topo.Services[0], down(tt.down...), tt.maintenance)
			if lost != (len(tt.want) > 0 && tt.want[len(tt.want)-1] == "-a -t 10.0.0.100:5672 -r 10.0.0.9:5672 -g -w 1") {
				t.Errorf("QuorumLost = %v", lost)
			}
		})
	}
}

func TestCheckServicesThroughTheVIP(t *testing.T) {
	topo := reference()
	topo.Director.CheckMarkBase = 1000
	topo.Services[0].Checks = []topology.Check{{Name: "tcp", Type: topology.CheckTCP, ThroughVIP: true}}
	topo.Services[0].RealServers = []string{"rmq_node1", "rmq_node3"}

	// rmq_node1 is down: out of the amqp service, but its check service
	// still reaches it, or the check could never bring it back.
	table := Desired(topo, down("rmq_node1"), nil)
	got := opStrings(Diff(table, nil, nil))
	want := []string{
		"-A -t 10.0.0.100:5672 -s wrr -p 50",
		"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 1",
		"-A -t 10.0.0.100:15672 -s wrr -p 50",
		"-a -t 10.0.0.100:15672 -r 10.0.0.3:15672 -g -w 1",
		"-a -t 10.0.0.100:15672 -r 10.0.0.4:15672 -g -w 1",
		"-A -f 1001 -s rr",
		"-a -f 1001 -r 10.0.0.2:0 -g -w 1",
		"-A -f 1003 -s rr",
		"-a -f 1003 -r 10.0.0.4:0 -g -w 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
	keys := DeclaredKeys(topo)
	if !slices.Contains(keys, ServiceKey{FWMark: 1001}) || !slices.Contains(keys, ServiceKey{FWMark: 1003}) || slices.Contains(keys, ServiceKey{FWMark: 1002}) {
		t.Errorf("declared keys %v: want the check services of rmq_node1 and rmq_node3", keys)
	}

	// Without checks through the VIP the check services are retired.
	topo.Services[0].Checks[0].ThroughVIP = false
	k := NewFakeKernel()
	if err := Apply(k, Diff(table, nil, nil)); err != nil {
		t.Fatal(err)
	}
	r := NewReconciler(k)
	ops, err := r.Sync(Desired(topo, AllHealthy, nil), []ServiceKey{{FWMark: 1001}, {FWMark: 1003}})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, op := range ops {
		if op.Kind == DeleteService {
			deleted = append(deleted, op.String())
		}
	}
	if !slices.Equal(deleted, []string{"-D -f 1001", "-D -f 1003"}) {
		t.Errorf("deleted %q, want both check services", deleted)
	}
}
