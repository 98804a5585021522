package director

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

func opStrings(ops []ipvsctl.Op) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.String()
	}
	return out
}

func down(nodes ...string) Health {
	return func(_, rs string) bool { return !slices.Contains(nodes, rs) }
}

func TestDesired(t *testing.T) {
	topo := reference()
	topo.Services[1].OnFailure = topology.Drain
	topo.Services[1].RealServers = []string{"rmq_node1", "rmq_node3"}
	topo.RealServers[2].Weight = 3
	// management gives rmq_node3 a weight of its own; amqp keeps 3.
	topo.Services[1].Weights = map[string]uint16{"rmq_node3": 9}
	topo.Reindex()

	got := desiredTable(topo, down("rmq_node1"), nil)
	want := ipvsctl.Table{
		{Service: ipvsctl.Service{Key: ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: testVIP, Port: 5672}, Scheduler: "wrr", Persistence: 50},
			Destinations: []ipvsctl.Destination{
				{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672, Weight: 1, Forwarding: ipvsctl.DirectRouting, Rank: 1},
				{Address: netip.MustParseAddr("10.0.0.4"), Port: 5672, Weight: 3, Forwarding: ipvsctl.DirectRouting, Rank: 2},
			}},
		{Service: ipvsctl.Service{Key: ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: testVIP, Port: 15672}, Scheduler: "wrr", Persistence: 50},
			Destinations: []ipvsctl.Destination{
				{Address: netip.MustParseAddr("10.0.0.2"), Port: 15672, Weight: 0, Forwarding: ipvsctl.DirectRouting},
				{Address: netip.MustParseAddr("10.0.0.4"), Port: 15672, Weight: 9, Forwarding: ipvsctl.DirectRouting, Rank: 1},
			}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Desired:\n got %v\nwant %v", got, want)
	}
}

func TestDiff(t *testing.T) {
	mgmt := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: testVIP, Port: 15672}
	foreign := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}
	full := desiredTable(reference(), allHealthy, nil)

	// withForeign is the full table plus a service someone else made.
	withForeign := func() ipvsctl.Table {
		t := slices.Clone(full)
		t = append(t, ipvsctl.VirtualServer{Service: ipvsctl.Service{Key: foreign, Scheduler: "rr"},
			Destinations: []ipvsctl.Destination{{Address: netip.MustParseAddr("10.9.9.10"), Port: 80, Weight: 1}}})
		t.Sort()
		return t
	}

	tests := []struct {
		name    string
		topo    func(*topology.Topology)
		health  Health
		actual  ipvsctl.Table
		retired []ipvsctl.ServiceKey
		want    []string
	}{
		{
			name:   "from empty",
			health: allHealthy,
			want: []string{
				"-A -t 10.0.0.100:5672 -s wrr -p 50",
				"-a -t 10.0.0.100:5672 -r 10.0.0.2:5672 -g -w 1",
				"-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 1",
				"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 1",
				"-A -t 10.0.0.100:15672 -s wrr -p 50",
				"-a -t 10.0.0.100:15672 -r 10.0.0.2:15672 -g -w 1",
				"-a -t 10.0.0.100:15672 -r 10.0.0.3:15672 -g -w 1",
				"-a -t 10.0.0.100:15672 -r 10.0.0.4:15672 -g -w 1",
			},
		},
		{
			name:   "adopts a table that already matches",
			health: allHealthy,
			actual: withForeign(),
			want:   nil,
		},
		{
			name:   "weight change is one destination update",
			topo:   func(t *topology.Topology) { t.RealServers[1].Weight = 5 },
			health: allHealthy,
			actual: withForeign(),
			want: []string{
				"-e -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 5",
				"-e -t 10.0.0.100:15672 -r 10.0.0.3:15672 -g -w 5",
			},
		},
		{
			name:   "scheduler and persistence change is one service update",
			topo:   func(t *topology.Topology) { t.Services[0].Scheduler = "lc"; t.Services[0].PersistenceTimeout = 0 },
			health: allHealthy,
			actual: withForeign(),
			want:   []string{"-E -t 10.0.0.100:5672 -s lc"},
		},
		{
			name:   "forwarding change is one destination update",
			topo:   func(t *topology.Topology) { t.Services[1].Forwarding = topology.Tunnel },
			health: allHealthy,
			actual: full,
			want: []string{
				"-e -t 10.0.0.100:15672 -r 10.0.0.2:15672 -i -w 1",
				"-e -t 10.0.0.100:15672 -r 10.0.0.3:15672 -i -w 1",
				"-e -t 10.0.0.100:15672 -r 10.0.0.4:15672 -i -w 1",
			},
		},
		{
			name:   "failed server removed",
			health: down("rmq_node2"),
			actual: full,
			want: []string{
				"-d -t 10.0.0.100:5672 -r 10.0.0.3:5672",
				"-d -t 10.0.0.100:15672 -r 10.0.0.3:15672",
			},
		},
		{
			name:   "failed server drained to weight 0",
			topo:   func(t *topology.Topology) { t.Services[0].OnFailure = topology.Drain },
			health: down("rmq_node2"),
			actual: full,
			want: []string{
				"-e -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 0",
				"-d -t 10.0.0.100:15672 -r 10.0.0.3:15672",
			},
		},
		{
			name:    "retired service deleted, foreign one left alone",
			topo:    func(t *topology.Topology) { t.Services = t.Services[:1] },
			health:  allHealthy,
			actual:  withForeign(),
			retired: []ipvsctl.ServiceKey{mgmt},
			want:    []string{"-D -t 10.0.0.100:15672"},
		},
		{
			name:    "retired service already gone",
			topo:    func(t *topology.Topology) { t.Services = t.Services[:1] },
			health:  allHealthy,
			actual:  ipvsctl.Table{full[0]},
			retired: []ipvsctl.ServiceKey{mgmt},
			want:    nil,
		},
		{
			name: "replaced node: adds before deletes",
			topo: func(t *topology.Topology) {
				t.RealServers[0].Address = netip.MustParseAddr("10.0.0.9")
				t.Services = t.Services[:1]
			},
			health: allHealthy,
			actual: ipvsctl.Table{full[0]},
			want: []string{
				"-a -t 10.0.0.100:5672 -r 10.0.0.9:5672 -g -w 1",
				"-d -t 10.0.0.100:5672 -r 10.0.0.2:5672",
			},
		},
		{
			name:   "stray destination in a declared service is deleted",
			health: allHealthy,
			actual: func() ipvsctl.Table {
				t := slices.Clone(full)
				t[0].Destinations = append(slices.Clone(t[0].Destinations), ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.50"), Port: 5672, Weight: 1})
				return t
			}(),
			want: []string{"-d -t 10.0.0.100:5672 -r 10.0.0.50:5672"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := reference()
			if tt.topo != nil {
				tt.topo(topo)
			}
			got := opStrings(ipvsctl.Diff(desiredTable(topo, tt.health, nil), tt.actual, tt.retired))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

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
			for _, op := range ipvsctl.Diff(desiredTable(topo, down(tt.down...), tt.maintenance), nil, nil) {
				if op.Kind == ipvsctl.AddDestination {
					got = append(got, op.String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("destinations:\n got %q\nwant %q", got, tt.want)
			}
			lost := quorumLost(topo.Services[0], down(tt.down...), tt.maintenance)
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
	table := desiredTable(topo, down("rmq_node1"), nil)
	got := opStrings(ipvsctl.Diff(table, nil, nil))
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
	keys := declaredKeys(topo)
	if !slices.Contains(keys, ipvsctl.ServiceKey{FWMark: 1001}) || !slices.Contains(keys, ipvsctl.ServiceKey{FWMark: 1003}) || slices.Contains(keys, ipvsctl.ServiceKey{FWMark: 1002}) {
		t.Errorf("declared keys %v: want the check services of rmq_node1 and rmq_node3", keys)
	}

	// Without checks through the VIP the check services are retired.
	topo.Services[0].Checks[0].ThroughVIP = false
	k := ipvsctl.NewFakeKernel()
	if err := ipvsctl.Apply(k, ipvsctl.Diff(table, nil, nil)); err != nil {
		t.Fatal(err)
	}
	r := ipvsctl.NewReconciler(k)
	ops, err := r.Sync(desiredTable(topo, allHealthy, nil), []ipvsctl.ServiceKey{{FWMark: 1001}, {FWMark: 1003}})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, op := range ops {
		if op.Kind == ipvsctl.DeleteService {
			deleted = append(deleted, op.String())
		}
	}
	if !slices.Equal(deleted, []string{"-D -f 1001", "-D -f 1003"}) {
		t.Errorf("deleted %q, want both check services", deleted)
	}
}

// With the mh scheduler the kernel fills its lookup table in the order the
// destinations were added, so every director must add them in the same
// order: the file's, whatever their addresses.
func TestDestinationsAreAddedInTheFilesOrder(t *testing.T) {
	topo := reference()
	topo.Services = topo.Services[:1]
	topo.Services[0].Scheduler = "mh"
	topo.Services[0].SchedulerFlags = []string{"mh-port"}
	topo.Services[0].RealServers = []string{"rmq_node3", "rmq_node1", "rmq_node2"}
	got := opStrings(ipvsctl.Diff(desiredTable(topo, allHealthy, nil), nil, nil))
	want := []string{
		"-A -t 10.0.0.100:5672 -s mh -p 50 -b mh-port",
		"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 1",
		"-a -t 10.0.0.100:5672 -r 10.0.0.2:5672 -g -w 1",
		"-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

// With BGP a failed server stays in at weight 0, so that a director whose
// checks failed for a while (its link went down) keeps its destinations in
// the file's order, as every other director does.
func TestBGPKeepsFailedServersInTheirPlace(t *testing.T) {
	topo := reference()
	topo.Services = topo.Services[:1]
	topo.Services[0].Scheduler = "mh"
	topo.Director.BGP = &topology.BGP{ASN: 65001}
	got := opStrings(ipvsctl.Diff(desiredTable(topo, down("rmq_node1", "rmq_node2", "rmq_node3"), nil), nil, nil))
	want := []string{
		"-A -t 10.0.0.100:5672 -s mh -p 50",
		"-a -t 10.0.0.100:5672 -r 10.0.0.2:5672 -g -w 0",
		"-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 0",
		"-a -t 10.0.0.100:5672 -r 10.0.0.4:5672 -g -w 0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}
