package director

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
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

func TestCleanupStopsTheSyncDaemonsAndPutsBackTheSysctlsFound(t *testing.T) {
	h, syncd := startSyncingDirector(t)
	topo := h.topo.Load()
	// A stopped director leaves its daemons and sysctls: a restart keeps
	// syncing. Cleanup is what retires it for good.
	h.stop()
	if daemons, _ := syncd.Daemons(); len(daemons) != 2 {
		t.Fatalf("%d sync daemons after the director stopped, want its 2", len(daemons))
	}
	if _, err := Cleanup(h.kernel, h.vip, h.state, topo); err != nil {
		t.Fatal(err)
	}

	plan, err := CleanupModes(syncd, h.sysctl, h.state, topo, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ipvsadm --stop-daemon master",
		"ipvsadm --stop-daemon backup",
		`sysctl -w net.ipv4.vs.sync_refresh_period="kernel default"`,
		`sysctl -w net.ipv4.vs.sync_threshold="kernel default"`,
		`sysctl -w net.ipv4.vs.sync_version="kernel default"`,
	}
	if !slices.Equal(plan, want) {
		t.Errorf("dry run\n%s\nwant\n%s", strings.Join(plan, "\n"), strings.Join(want, "\n"))
	}
	if daemons, _ := syncd.Daemons(); len(daemons) != 2 {
		t.Errorf("a dry run stopped daemons: %d left", len(daemons))
	}

	done, err := CleanupModes(syncd, h.sysctl, h.state, topo, false)
	if err != nil || !slices.Equal(done, want) {
		t.Fatalf("cleanup did %q, %v; want %q", done, err, want)
	}
	if daemons, _ := syncd.Daemons(); len(daemons) != 0 {
		t.Errorf("sync daemons left after cleanup: %v", daemons)
	}
	if v, _ := h.sysctl.Get("net.ipv4.vs.sync_threshold"); v != "kernel default" {
		t.Errorf("sync_threshold %q after cleanup, want the value found", v)
	}
	if st, _ := h.state.Load(); st.FoundSysctls != nil {
		t.Errorf("the state still records %v", st.FoundSysctls)
	}
	if again, err := CleanupModes(syncd, h.sysctl, h.state, topo, false); err != nil || len(again) != 0 {
		t.Errorf("a second cleanup did %q, %v; want nothing", again, err)
	}
}

func TestCleanupLeavesAnOperatorsOwnSyncDaemon(t *testing.T) {
	topo := pairTopology()
	topo.Director.HA.ConnectionSync = true
	topo.Director.HA.SyncID = 51
	syncd := ipvsctl.NewFakeSyncDaemons()
	own := ipvsctl.SyncDaemon{Role: ipvsctl.SyncBackup, Interface: "eth0", SyncID: 99}
	if err := syncd.StartDaemon(own); err != nil {
		t.Fatal(err)
	}
	state := StateFile{Path: filepath.Join(t.TempDir(), "director.json")}
	done, err := CleanupModes(syncd, &fakeSysctl{values: map[string]string{}}, state, topo, false)
	if err != nil || len(done) != 0 {
		t.Errorf("cleanup did %q, %v; want nothing", done, err)
	}
	if daemons, _ := syncd.Daemons(); len(daemons) != 1 {
		t.Errorf("the operator's daemon on syncid 99 was stopped")
	}
}
