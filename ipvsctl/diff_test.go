package ipvsctl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var vip = netip.MustParseAddr("10.0.0.100")

// reference is the reference design's table on test addresses: amqp and
// management on three nodes, wrr, DR, persistence 50 s.
func reference() Table {
	var t Table
	for _, port := range []uint16{5672, 15672} {
		vs := VirtualServer{Service: Service{Key: ServiceKey{Protocol: TCP, Address: vip, Port: port}, Scheduler: "wrr", Persistence: 50}}
		for i := range 3 {
			vs.Destinations = append(vs.Destinations, Destination{Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), Port: port, Weight: 1, Forwarding: DirectRouting})
		}
		t = append(t, vs)
	}
	t.Sort()
	return t
}

func opStrings(ops []Op) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.String()
	}
	return out
}

func TestReconcileConverges(t *testing.T) {
	k := NewFakeKernel()
	foreign := Service{Key: ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("10.9.9.9"), Port: 53}, Scheduler: "rr"}
	if err := k.AddService(foreign); err != nil {
		t.Fatal(err)
	}
	desired := reference()
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
	err := Apply(k, Diff(reference(), nil, nil))
	if !errors.Is(err, broken) {
		t.Fatalf("Apply error = %v, want it to wrap %v", err, broken)
	}
	if !strings.Contains(err.Error(), "add service -t 10.0.0.100:5672") {
		t.Errorf("error %q does not name the operation", err)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("destinations of the missing service were tried: %q", err)
	}
	if dests, err := k.Destinations(ServiceKey{Protocol: TCP, Address: vip, Port: 15672}); err != nil || len(dests) != 3 {
		t.Errorf("the other service was not applied: %v, %v", dests, err)
	}
}

func TestOpString(t *testing.T) {
	udp := ServiceKey{Protocol: UDP, Address: vip, Port: 53}
	tests := []struct {
		op   Op
		want string
	}{
		{Op{Kind: AddService, Service: Service{Key: udp, Scheduler: "sh"}}, "-A -u 10.0.0.100:53 -s sh"},
		{Op{Kind: DeleteService, Service: Service{Key: udp}}, "-D -u 10.0.0.100:53"},
		{Op{Kind: AddService, Service: Service{Key: udp, Scheduler: "mh", SchedFlags: 0x18}}, "-A -u 10.0.0.100:53 -s mh -b mh-fallback,mh-port"},
		{Op{Kind: AddDestination, Service: Service{Key: udp}, Destination: Destination{Address: vip, Port: 53, Weight: 2, Forwarding: NAT}}, "-a -u 10.0.0.100:53 -r 10.0.0.100:53 -m -w 2"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
