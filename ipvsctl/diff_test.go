package ipvsctl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

var vip = netip.MustParseAddr("10.0.0.100")

// reference returns the reference design's shape on test addresses: amqp and
// management on three nodes, wrr, DR, persistence 50 s.
func reference() *topology.Topology {
	t := &topology.Topology{VIP: vip}
	for i, name := range []string{"rmq_node1", "rmq_node2", "rmq_node3"} {
		t.RealServers = append(t.RealServers, topology.RealServer{
			Name: name, Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), Weight: 1,
		})
	}
	for _, s := range []struct {
		name string
		port uint16
	}{{"amqp", 5672}, {"management", 15672}} {
		t.Services = append(t.Services, topology.Service{
			Name: s.name, Port: s.port, Protocol: topology.TCP, Scheduler: "wrr",
			Forwarding: topology.DirectRouting, PersistenceTimeout: 50 * time.Second,
			OnFailure: topology.Remove, RealServers: []string{"rmq_node1", "rmq_node2", "rmq_node3"},
		})
	}
	return t
}

func opStrings(ops []Op) []string {
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

	got := Desired(topo, down("rmq_node1"), nil)
	want := Table{
		{Service: Service{Key: ServiceKey{Protocol: topology.TCP, Address: vip, Port: 5672}, Scheduler: "wrr", Persistence: 50},
			Destinations: []Destination{
				{Address: netip.MustParseAddr("10.0.0.3"), Port: 5672, Weight: 1, Forwarding: topology.DirectRouting},
				{Address: netip.MustParseAddr("10.0.0.4"), Port: 5672, Weight: 3, Forwarding: topology.DirectRouting},
			}},
		{Service: Service{Key: ServiceKey{Protocol: topology.TCP, Address: vip, Port: 15672}, Scheduler: "wrr", Persistence: 50},
			Destinations: []Destination{
				{Address: netip.MustParseAddr("10.0.0.2"), Port: 15672, Weight: 0, Forwarding: topology.DirectRouting},
				{Address: netip.MustParseAddr("10.0.0.4"), Port: 15672, Weight: 3, Forwarding: topology.DirectRouting},
			}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Desired:\n got %v\nwant %v", got, want)
	}
}

func TestDiff(t *testing.T) {
	mgmt := ServiceKey{Protocol: topology.TCP, Address: vip, Port: 15672}
	foreign := ServiceKey{Protocol: topology.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}
	full := Desired(reference(), AllHealthy, nil)

	// withForeign is the full table plus a service someone else made.
	withForeign := func() Table {
		t := slices.Clone(full)
		t = append(t, VirtualServer{Service: Service{Key: foreign, Scheduler: "rr"},
			Destinations: []Destination{{Address: netip.MustParseAddr("10.9.9.10"), Port: 80, Weight: 1}}})
		t.sort()
		return t
	}

	tests := []struct {
		name    string
		topo    func(*topology.Topology)
		health  Health
		actual  Table
		retired []ServiceKey
		want    []string
	}{
		{
			name:   "from empty",
			health: AllHealthy,
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
			health: AllHealthy,
			actual: withForeign(),
			want:   nil,
		},
		{
			name:   "weight change is one destination update",
			topo:   func(t *topology.Topology) { t.RealServers[1].Weight = 5 },
			health: AllHealthy,
			actual: withForeign(),
			want: []string{
				"-e -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 5",
				"-e -t 10.0.0.100:15672 -r 10.0.0.3:15672 -g -w 5",
			},
		},
		{
			name:   "scheduler and persistence change is one service update",
			topo:   func(t *topology.Topology) { t.Services[0].Scheduler = "lc"; t.Services[0].PersistenceTimeout = 0 },
			health: AllHealthy,
			actual: withForeign(),
			want:   []string{"-E -t 10.0.0.100:5672 -s lc"},
		},
		{
			name:   "forwarding change is one destination update",
			topo:   func(t *topology.Topology) { t.Services[1].Forwarding = topology.Tunnel },
			health: AllHealthy,
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
			health:  AllHealthy,
			actual:  withForeign(),
			retired: []ServiceKey{mgmt},
			want:    []string{"-D -t 10.0.0.100:15672"},
		},
		{
			name:    "retired service already gone",
			topo:    func(t *topology.Topology) { t.Services = t.Services[:1] },
			health:  AllHealthy,
			actual:  Table{full[0]},
			retired: []ServiceKey{mgmt},
			want:    nil,
		},
		{
			name: "replaced node: adds before deletes",
			topo: func(t *topology.Topology) {
				t.RealServers[0].Address = netip.MustParseAddr("10.0.0.9")
				t.Services = t.Services[:1]
			},
			health: AllHealthy,
			actual: Table{full[0]},
			want: []string{
				"-a -t 10.0.0.100:5672 -r 10.0.0.9:5672 -g -w 1",
				"-d -t 10.0.0.100:5672 -r 10.0.0.2:5672",
			},
		},
		{
			name:   "stray destination in a declared service is deleted",
			health: AllHealthy,
			actual: func() Table {
				t := slices.Clone(full)
				t[0].Destinations = append(slices.Clone(t[0].Destinations), Destination{Address: netip.MustParseAddr("10.0.0.50"), Port: 5672, Weight: 1})
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
			got := opStrings(Diff(Desired(topo, tt.health, nil), tt.actual, tt.retired))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReconcileConverges(t *testing.T) {
	k := NewFakeKernel()
	foreign := Service{Key: ServiceKey{Protocol: topology.UDP, Address: netip.MustParseAddr("10.9.9.9"), Port: 53}, Scheduler: "rr"}
	if err := k.AddService(foreign); err != nil {
		t.Fatal(err)
	}
	desired := Desired(reference(), AllHealthy, nil)
	ops, err := Reconcile(k, desired, nil)
	if err != nil || len(ops) != 8 {
		t.Fatalf("first reconcile: %d ops, err %v; want 8 ops", len(ops), err)
	}
	ops, err = Reconcile(k, desired, nil)
	if err != nil || len(ops) != 0 {
		t.Fatalf("second reconcile: %q, err %v; want nothing to do", opStrings(ops), err)
	}
	got, _ := Read(k, desired.Keys())
	if fmt.Sprint(got) != fmt.Sprint(desired) {
		t.Errorf("kernel after reconcile:\n got %v\nwant %v", got, desired)
	}
	if _, err := k.Destinations(foreign.Key); err != nil {
		t.Errorf("foreign service disappeared: %v", err)
	}
}

func TestApplyReportsEveryFailureAndSkipsDestinationsOfMissingService(t *testing.T) {
	k := NewFakeKernel()
	broken := errors.New("boom")
	k.Fail = func(op OpKind, key ServiceKey, _ Destination) error {
		if op == AddService && key.Port == 5672 {
			return broken
		}
		return nil
	}
	err := Apply(k, Diff(Desired(reference(), AllHealthy, nil), nil, nil))
	if !errors.Is(err, broken) {
		t.Fatalf("Apply error = %v, want it to wrap %v", err, broken)
	}
	if !strings.Contains(err.Error(), "add service -t 10.0.0.100:5672") {
		t.Errorf("error %q does not name the operation", err)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("destinations of the missing service were tried: %q", err)
	}
	if dests, err := k.Destinations(ServiceKey{Protocol: topology.TCP, Address: vip, Port: 15672}); err != nil || len(dests) != 3 {
		t.Errorf("the other service was not applied: %v, %v", dests, err)
	}
}

func TestOpString(t *testing.T) {
	udp := ServiceKey{Protocol: topology.UDP, Address: vip, Port: 53}
	tests := []struct {
		op   Op
		want string
	}{
		{Op{Kind: AddService, Service: Service{Key: udp, Scheduler: "sh"}}, "-A -u 10.0.0.100:53 -s sh"},
		{Op{Kind: DeleteService, Service: Service{Key: udp}}, "-D -u 10.0.0.100:53"},
		{Op{Kind: AddDestination, Service: Service{Key: udp}, Destination: Destination{Address: vip, Port: 53, Weight: 2, Forwarding: topology.NAT}}, "-a -u 10.0.0.100:53 -r 10.0.0.100:53 -m -w 2"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
