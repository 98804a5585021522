package director

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// The policy's cost at the scales operators run, in the two shapes that
// matter: each service with real servers of its own (one VIP, many ports,
// ten servers each: one weight is one destination), and the RabbitMQ shape
// (ten nodes behind many ports, every node checked through the VIP). Every
// benchmark reports ns per real server of a service (destinations): it
// must stay flat from 1,000 to 40,000, or something is quadratic
// (docs/architecture.md, "Hot paths"; docs/benchmarks.md has the figures).

var benchSizes = []int{1000, 10000, 40000}

// benchShape builds a topology of n destinations in one of the two shapes.
func benchShape(shape string, n int) *topology.Topology {
	t := &topology.Topology{VIP: testVIP, Director: topology.Director{Interface: "eth0", ResyncInterval: 30 * time.Second, CheckMarkBase: 0x4c560000}}
	nodes, perService := n, 10
	if shape == "rabbitmq" {
		nodes = 10
	}
	for i := range nodes {
		t.RealServers = append(t.RealServers, topology.RealServer{
			Name: fmt.Sprintf("n%d", i), Address: netip.AddrFrom4([4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)}), Weight: 1,
		})
	}
	for s := range n / perService {
		svc := topology.Service{Name: fmt.Sprintf("s%d", s), Port: uint16(10000 + s), Protocol: topology.TCP, Scheduler: "wrr",
			Forwarding: topology.DirectRouting, PersistenceTimeout: 50 * time.Second, OnFailure: topology.Remove, Quorum: 1}
		for r := range perService {
			if shape == "rabbitmq" {
				svc.RealServers = append(svc.RealServers, fmt.Sprintf("n%d", r))
			} else {
				svc.RealServers = append(svc.RealServers, fmt.Sprintf("n%d", s*perService+r))
			}
		}
		if shape == "rabbitmq" {
			svc.Checks = []topology.Check{{Name: "tcp", Type: topology.CheckTCP, ThroughVIP: true, Port: svc.Port, Interval: 5 * time.Second,
				ConnectTimeout: 3 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Rise: 2}}
		}
		t.Services = append(t.Services, svc)
	}
	t.Reindex()
	return t
}

// upStates is every check of topo up.
func upStates(topo *topology.Topology) map[healthcheck.Key]healthcheck.Status {
	states := map[healthcheck.Key]healthcheck.Status{}
	for _, s := range topo.Services {
		for _, name := range s.RealServers {
			for _, c := range s.ChecksOf(name) {
				states[CheckKey(s.Name, name, c.Name)] = healthcheck.Status{State: healthcheck.Up}
			}
		}
	}
	return states
}

func benchEach(b *testing.B, run func(b *testing.B, topo *topology.Topology)) {
	for _, shape := range []string{"own", "rabbitmq"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", shape, n), func(b *testing.B) {
				topo := benchShape(shape, n)
				b.ReportAllocs()
				run(b, topo)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/real_server")
			})
		}
	}
}

// BenchmarkDesiredTable is what every reconcile computes: the table from
// the topology and one snapshot of the check states.
func BenchmarkDesiredTable(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		health := snapshotHealth(topo, upStates(topo))
		for b.Loop() {
			desiredTable(topo, health, nil)
		}
	})
}

// BenchmarkReloadOneWeight is a reload that changes one weight, past the
// parse: the desired table, the diff against the table the kernel was
// left in, and exactly one kernel write.
func BenchmarkReloadOneWeight(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		k := ipvsctl.NewFakeKernel()
		r := ipvsctl.NewReconciler(k)
		health := snapshotHealth(topo, upStates(topo))
		if _, err := r.Sync(desiredTable(topo, health, nil), nil); err != nil {
			b.Fatal(err)
		}
		rs := &topo.RealServers[len(topo.RealServers)/2]
		for i := 0; b.Loop(); i++ {
			rs.Weight = uint16(2 + i%2)
			before := k.WriteCount()
			if _, err := r.Update(desiredTable(topo, health, nil), nil); err != nil {
				b.Fatal(err)
			}
			// In the RabbitMQ shape a node's weight is in every service.
			if w := k.WriteCount() - before; w == 0 || (len(topo.RealServers) > 10 && w != 1) {
				b.Fatalf("%d kernel writes for one weight", w)
			}
		}
	})
}

// BenchmarkStatusReport is `director status` past the kernel's dump: the
// report of every service and real server, with health and drift, drawn
// as the table the director sends to `director status`.
func BenchmarkStatusReport(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		k := ipvsctl.NewFakeKernel()
		if _, err := ipvsctl.Reconcile(k, desiredTable(topo, allHealthy, nil), nil); err != nil {
			b.Fatal(err)
		}
		table, err := ipvsctl.Read(k, declaredKeys(topo))
		if err != nil {
			b.Fatal(err)
		}
		var checks []CheckStatus
		for key := range upStates(topo) {
			checks = append(checks, CheckStatus{Key: key, State: "up"})
		}
		for b.Loop() {
			r := buildReport(topo, table, checks, nil, nil, time.Time{})
			if err := WriteStatus(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTargets builds the check targets, as a start and every reload
// do.
func BenchmarkTargets(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		l := &loop{Director: New(Config{NewProber: func(ProbeTarget, topology.Check) healthcheck.Prober { return nil }})}
		for b.Loop() {
			l.targets(topo, nil)
		}
	})
}

// BenchmarkStartFromEmpty is a director's first reconcile of an empty
// kernel: the desired table, the diff and every add, against the fake.
func BenchmarkStartFromEmpty(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		health := snapshotHealth(topo, upStates(topo))
		for b.Loop() {
			r := ipvsctl.NewReconciler(ipvsctl.NewFakeKernel())
			if _, err := r.Update(desiredTable(topo, health, nil), declaredKeys(topo)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReloadThroughTheLoop is a whole reload past the parse, as the
// director's loop runs it on a SIGHUP that changes one weight: the check
// targets and the checker's update, the desired table, the diff, one write,
// the published view. The fake probers never probe: the clock stands still.
func BenchmarkReloadThroughTheLoop(b *testing.B) {
	benchEach(b, func(b *testing.B, topo *topology.Topology) {
		h := newHarness(b, topo)
		h.start()
		h.settle()
		// One topology per weight, built before the clock starts.
		weighted := [2]*topology.Topology{}
		for i := range weighted {
			next := *topo
			next.RealServers = slices.Clone(topo.RealServers)
			next.RealServers[len(next.RealServers)/2].Weight = uint16(2 + i)
			next.Reindex()
			weighted[i] = &next
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			h.topo.Store(weighted[i%2])
			if err := h.d.ReloadAndWait(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
