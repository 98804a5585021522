package director

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestApplyDryRunChangesNothingAndCleanupLeavesForeignServices(t *testing.T) {
	topo := reference()
	k := ipvsctl.NewFakeKernel()
	foreign := ipvsctl.Service{Key: ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}, Scheduler: "rr"}
	k.AddService(foreign)
	state := StateFile{Path: filepath.Join(t.TempDir(), "director.json")}

	ops, err := Apply(k, state, topo, true)
	if err != nil || len(ops) != 8 {
		t.Fatalf("dry run: %d ops, %v; want 8", len(ops), err)
	}
	if services, _ := k.Services(); len(services) != 1 {
		t.Fatalf("a dry run changed the kernel: %v", services)
	}
	if st, _ := state.Load(); st.Owned != nil {
		t.Fatalf("a dry run recorded services: %v", st.Owned)
	}

	if _, err := Apply(k, state, topo, false); err != nil {
		t.Fatal(err)
	}
	// The file drops management; cleanup must still remove it, as ours.
	smaller := reference()
	smaller.Services = smaller.Services[:1]
	vip := &fakeVIP{bound: map[string]netip.Addr{"eth0": topo.VIP}}
	ops, err = Cleanup(k, vip, state, smaller)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.String())
	}
	if want := []string{"-D -t 10.0.0.100:5672", "-D -t 10.0.0.100:15672"}; !slices.Equal(got, want) {
		t.Errorf("cleanup ran %q, want %q", got, want)
	}
	if services, _ := k.Services(); len(services) != 1 || services[0].Key != foreign.Key {
		t.Errorf("after cleanup the kernel has %v, want only the foreign service", services)
	}
	if len(vip.bound) != 0 {
		t.Errorf("VIP still bound after cleanup: %v", vip.bound)
	}
	if st, _ := state.Load(); len(st.Owned) != 0 {
		t.Errorf("cleanup left owned services recorded: %v", st.Owned)
	}
}
