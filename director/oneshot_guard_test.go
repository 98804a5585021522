package director

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestGuardOneShotRefusesUnderARunningDirector(t *testing.T) {
	errDenied := errors.New("permission denied")
	for _, tc := range []struct {
		name    string
		cmd     OneShot
		running bool
		probe   error
		force   bool
		// wantRunning is whether the refusal is ErrDirectorRunning; say
		// lists what the one line must name, nil for no refusal.
		wantRunning bool
		say         []string
	}{
		{name: "apply, none running", cmd: OneShotApply},
		{name: "cleanup, none running", cmd: OneShotCleanup},
		{name: "apply under a director", cmd: OneShotApply, running: true, wantRunning: true,
			say: []string{"director reload", "director drain", "stop the director", "--force"}},
		{name: "cleanup under a director", cmd: OneShotCleanup, running: true, wantRunning: true,
			say: []string{"stop the director first", "--force"}},
		{name: "apply forced", cmd: OneShotApply, running: true, force: true},
		{name: "cleanup forced", cmd: OneShotCleanup, running: true, force: true},
		{name: "probe cannot tell", cmd: OneShotCleanup, probe: errDenied, say: []string{"permission denied", "--force"}},
		{name: "probe cannot tell, forced", cmd: OneShotApply, probe: errDenied, force: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probed := false
			err := GuardOneShot(tc.cmd, func() (bool, error) { probed = true; return tc.running, tc.probe }, tc.force)
			if tc.force && probed {
				t.Errorf("--force still asked the control socket")
			}
			if tc.say == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("not refused")
			}
			if errors.Is(err, ErrDirectorRunning) != tc.wantRunning {
				t.Errorf("errors.Is(%v, ErrDirectorRunning) = %v, want %v", err, !tc.wantRunning, tc.wantRunning)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, string(tc.cmd)+" refused") {
				t.Errorf("want one line starting %q, got %q", tc.cmd+" refused", msg)
			}
			for _, want := range tc.say {
				if !strings.Contains(msg, want) {
					t.Errorf("%q does not say %q", msg, want)
				}
			}
		})
	}
}

// Running is the probe the commands use: a director answering on the
// control socket is running; no socket, or a file left by a dead one, is
// not.
func TestRunningAsksTheControlSocket(t *testing.T) {
	dir := t.TempDir()
	if up, err := Running(filepath.Join(dir, "none.sock")); up || err != nil {
		t.Errorf("no socket: running %v, %v; want false, nil", up, err)
	}
	h := newHarness(t, reference())
	h.controlSocket = filepath.Join(dir, "director.sock")
	h.start()
	h.settle()
	if up, err := Running(h.controlSocket); !up || err != nil {
		t.Errorf("director running: running %v, %v; want true, nil", up, err)
	}
	h.stop()
	if up, err := Running(h.controlSocket); up || err != nil {
		t.Errorf("director stopped: running %v, %v; want false, nil", up, err)
	}
}

func TestPlanCleanupChangesNothing(t *testing.T) {
	topo := reference()
	k := ipvsctl.NewFakeKernel()
	state := StateFile{Path: filepath.Join(t.TempDir(), "director.json")}
	if _, err := Apply(k, state, topo, false); err != nil {
		t.Fatal(err)
	}
	before, _ := k.Services()
	binder := &fakeVIP{bound: map[string]netip.Addr{"eth0": topo.VIP}}

	ops, bound, err := PlanCleanup(k, binder, state, topo)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.String())
	}
	if want := []string{"-D -t 10.0.0.100:5672", "-D -t 10.0.0.100:15672"}; !slices.Equal(got, want) || !bound {
		t.Errorf("plan: %q, VIP bound %v; want %q and true", got, bound, want)
	}
	if after, _ := k.Services(); len(after) != len(before) {
		t.Errorf("a dry run deleted services: %d left of %d", len(after), len(before))
	}
	if binder.bound["eth0"] != topo.VIP {
		t.Errorf("a dry run unbound the VIP")
	}
	if st, _ := state.Load(); len(st.Owned) != 2 {
		t.Errorf("a dry run forgot the owned services: %v", st.Owned)
	}
	delete(binder.bound, "eth0")
	if _, bound, _ := PlanCleanup(k, binder, state, topo); bound {
		t.Errorf("plan says the VIP is bound when it is not")
	}
}
