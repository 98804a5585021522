package ipvsctl

import (
	"fmt"
	"net/netip"
	"testing"
)

// The mechanism's cost at the scales operators run: 1,000, 10,000 and
// 40,000 real servers, ten per service, each service with real servers of
// its own, so that one weight is one destination. ns/real_server must stay
// flat as the size grows (docs/benchmarks.md); the director's benchmarks
// measure the policy in front of it.
var sizes = []int{1000, 10000, 40000}

// largeTable returns services × perService destinations on the VIP.
func largeTable(services, perService int) Table {
	t := make(Table, 0, services)
	for i := range services {
		vs := VirtualServer{Service: Service{Key: ServiceKey{Protocol: TCP, Address: vip, Port: uint16(10000 + i)}, Scheduler: "wrr", Persistence: 50}}
		for j := range perService {
			n := i*perService + j + 1
			vs.Destinations = append(vs.Destinations, Destination{
				Address: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), Port: vs.Service.Key.Port, Weight: 1, Forwarding: DirectRouting,
			})
		}
		t = append(t, vs)
	}
	t.Sort()
	return t
}

func perRealServer(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/real_server")
}

// BenchmarkReconcileFromEmpty programs the table into an empty fake
// kernel: read, diff and one operation per service and destination.
func BenchmarkReconcileFromEmpty(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			desired := largeTable(n/10, 10)
			b.ReportAllocs()
			for b.Loop() {
				k := NewFakeKernel()
				ops, err := Reconcile(k, desired, nil)
				if err != nil || len(ops) != n+n/10 {
					b.Fatalf("%d ops, %v", len(ops), err)
				}
			}
			perRealServer(b, n)
		})
	}
}

// BenchmarkWeightChange changes one weight on a programmed table, as a
// reload does once the new desired table is computed: a diff against the
// table the kernel was left in, and exactly one kernel write.
func BenchmarkWeightChange(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			k := NewFakeKernel()
			r := NewReconciler(k)
			if _, err := r.Sync(largeTable(n/10, 10), nil); err != nil {
				b.Fatal(err)
			}
			var desired [2]Table
			for i, w := range []uint16{7, 1} {
				desired[i] = largeTable(n/10, 10)
				desired[i][len(desired[i])/2].Destinations[3].Weight = w
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				before := k.Writes
				ops, err := r.Update(desired[i%2], nil)
				if err != nil || len(ops) != 1 || k.Writes-before != 1 {
					b.Fatalf("%q, %d kernel writes, %v; want one update", opStrings(ops), k.Writes-before, err)
				}
			}
			perRealServer(b, n)
		})
	}
}

// BenchmarkResync is the periodic drift check on a table that has not
// drifted: a dump of the kernel and a diff, no operation.
func BenchmarkResync(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			k := NewFakeKernel()
			r := NewReconciler(k)
			desired := largeTable(n/10, 10)
			if _, err := r.Sync(desired, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ops, err := r.Sync(desired, nil); err != nil || len(ops) != 0 {
					b.Fatalf("%d ops, %v", len(ops), err)
				}
			}
			perRealServer(b, n)
		})
	}
}
