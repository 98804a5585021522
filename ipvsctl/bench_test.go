package ipvsctl

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/lvsdr/lvsdr/topology"
)

// large returns a topology of services × servers, each service on real
// servers of its own, so one weight is one destination.
func large(services, servers int) *topology.Topology {
	t := &topology.Topology{VIP: vip}
	for i := range services {
		var names []string
		for j := range servers {
			n := i*servers + j
			name := fmt.Sprintf("node%d", n)
			names = append(names, name)
			t.RealServers = append(t.RealServers, topology.RealServer{
				Name: name, Address: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), Weight: 1,
			})
		}
		t.Services = append(t.Services, topology.Service{
			Name: fmt.Sprintf("svc%d", i), Port: uint16(10000 + i), Protocol: topology.TCP,
			Scheduler: "wrr", Forwarding: topology.DirectRouting, OnFailure: topology.Remove,
			RealServers: names,
		})
	}
	return t
}

// BenchmarkReconcileFromEmpty programs 1,000 services × 10 real servers into
// an empty fake kernel: read, diff and 11,000 operations.
func BenchmarkReconcileFromEmpty(b *testing.B) {
	topo := large(1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		k := NewFakeKernel()
		ops, err := Reconcile(k, Desired(topo, AllHealthy, nil), nil)
		if err != nil || len(ops) != 11000 {
			b.Fatalf("%d ops, %v", len(ops), err)
		}
	}
}

// BenchmarkWeightChange changes one weight on a programmed 1,000 × 10 table,
// as a reload does once the new file is parsed: diff the new desired table
// against the table the kernel was left in, and apply. It must come down to
// one kernel operation.
func BenchmarkWeightChange(b *testing.B) {
	topo := large(1000, 10)
	k := NewFakeKernel()
	r := NewReconciler(k)
	if _, err := r.Sync(Desired(topo, AllHealthy, nil), nil); err != nil {
		b.Fatal(err)
	}
	var desired [2]Table
	for i, w := range []uint16{7, 1} {
		topo.RealServers[4321].Weight = w
		desired[i] = Desired(topo, AllHealthy, nil)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		before := k.Writes
		ops, err := r.Update(desired[i%2], nil)
		if err != nil || len(ops) != 1 || k.Writes-before != 1 {
			b.Fatalf("%q, %d kernel writes, %v; want one update", opStrings(ops), k.Writes-before, err)
		}
	}
}

// BenchmarkDesired computes the desired 1,000 × 10 table from a topology, as
// every reload and check transition does before its diff.
func BenchmarkDesired(b *testing.B) {
	topo := large(1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		Desired(topo, AllHealthy, nil)
	}
}

// BenchmarkResync is the periodic drift check on a 1,000 × 10 table that has
// not drifted: a dump of the kernel and a diff, no operation.
func BenchmarkResync(b *testing.B) {
	topo := large(1000, 10)
	k := NewFakeKernel()
	r := NewReconciler(k)
	desired := Desired(topo, AllHealthy, nil)
	if _, err := r.Sync(desired, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ops, err := r.Sync(desired, nil); err != nil || len(ops) != 0 {
			b.Fatalf("%d ops, %v", len(ops), err)
		}
	}
}
