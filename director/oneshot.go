package director

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vip"
)

// Apply programs the topology into the kernel once with every real server in,
// as `ipvsadm -R` would, and deletes the services this director declared
// before and the file no longer does. With dryRun it only returns the
// operations it would run.
func Apply(k ipvsctl.Kernel, state StateFile, topo *topology.Topology, dryRun bool) ([]ipvsctl.Op, error) {
	st, err := state.Load()
	if err != nil {
		return nil, err
	}
	retired := retiredKeys(st.Owned, topo)
	// Servers in maintenance stay at weight 0: a one-shot apply must not
	// undo an operator's drain.
	desired := desiredTable(topo, allHealthy, st.maintenance())
	if dryRun {
		actual, err := ipvsctl.Read(k, append(desired.Keys(), retired...))
		if err != nil {
			return nil, err
		}
		return ipvsctl.Diff(desired, actual, retired), nil
	}
	ops, err := ipvsctl.NewReconciler(k).Sync(desired, retired)
	if err != nil {
		return ops, err
	}
	st.Owned = declaredKeys(topo)
	return ops, state.Save(st)
}

// Cleanup deletes the services the topology declares (and those recorded as
// ours) and unbinds the VIP: what a director leaves behind when it is
// retired for good. Foreign services stay.
func Cleanup(k ipvsctl.Kernel, binder vip.Binder, state StateFile, topo *topology.Topology) ([]ipvsctl.Op, error) {
	keys, err := cleanupKeys(state, topo)
	if err != nil {
		return nil, err
	}
	ops, err := ipvsctl.NewReconciler(k).Sync(nil, keys)
	if err != nil {
		return ops, err
	}
	// The values found before the director set its sysctls stay recorded
	// until CleanupModes has put them back.
	st, err := state.Load()
	if err != nil {
		return ops, err
	}
	if err := state.Save(State{FoundSysctls: st.FoundSysctls}); err != nil {
		return ops, err
	}
	iface := topo.Director.Interface
	if topo.Director.BGP != nil {
		iface = bgpVIPInterface
	}
	if err := binder.Unbind(iface, topo.VIP); err != nil {
		return ops, fmt.Errorf("services deleted, but: %w", err)
	}
	return ops, nil
}

// PlanCleanup is Cleanup's dry run: the operations it would run and whether
// the VIP is on the director's interface for it to unbind. It changes
// nothing.
func PlanCleanup(k ipvsctl.Kernel, binder vip.Binder, state StateFile, topo *topology.Topology) (ops []ipvsctl.Op, vipBound bool, err error) {
	keys, err := cleanupKeys(state, topo)
	if err != nil {
		return nil, false, err
	}
	actual, err := ipvsctl.Read(k, keys)
	if err != nil {
		return nil, false, err
	}
	if vipBound, err = binder.Bound(topo.Director.Interface, topo.VIP); err != nil {
		return nil, false, fmt.Errorf("look for the VIP %s on %s: %w", topo.VIP, topo.Director.Interface, err)
	}
	return ipvsctl.Diff(nil, actual, keys), vipBound, nil
}

// CleanupModes undoes what connection sync and BGP changed beside the
// table: it stops the sync daemons a director of topo runs (an operator's
// own, on another syncid or interface, stay) and puts back the sysctls the
// director recorded before setting them, as the state file holds them.
// Without this a keepalived started after a rollback could not start its
// own lvs_sync_daemon. It returns what it did (or, with dryRun, would do)
// as the commands that do it by hand.
func CleanupModes(syncd ipvsctl.SyncDaemons, sys Sysctls, state StateFile, topo *topology.Topology, dryRun bool) ([]string, error) {
	var done []string
	if syncd != nil {
		have, err := syncd.Daemons()
		if err != nil {
			return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
		}
		for _, h := range have {
			if !slices.ContainsFunc(syncDaemons(topo), func(w ipvsctl.SyncDaemon) bool { return w.Satisfies(h) }) {
				continue
			}
			if !dryRun {
				if err := syncd.StopDaemon(h.Role); err != nil && !errors.Is(err, ipvsctl.ErrNotFound) {
					return done, fmt.Errorf("stop the %s sync daemon: %w", h.Role, err)
				}
			}
			done = append(done, "ipvsadm --stop-daemon "+h.Role.String())
		}
	}
	st, err := state.Load()
	if err != nil {
		return done, err
	}
	for _, name := range slices.Sorted(maps.Keys(st.FoundSysctls)) {
		value := st.FoundSysctls[name]
		if !dryRun {
			if err := sys.Set(name, value); err != nil {
				return done, fmt.Errorf("restore %s: %w", name, err)
			}
		}
		done = append(done, fmt.Sprintf("sysctl -w %s=%q", name, value))
	}
	if dryRun || st.FoundSysctls == nil {
		return done, nil
	}
	st.FoundSysctls = nil
	return done, state.Save(st)
}

// cleanupKeys lists the services cleanup deletes: those the topology
// declares and those recorded as ours that it no longer does.
func cleanupKeys(state StateFile, topo *topology.Topology) ([]ipvsctl.ServiceKey, error) {
	st, err := state.Load()
	if err != nil {
		return nil, err
	}
	return append(declaredKeys(topo), retiredKeys(st.Owned, topo)...), nil
}

// OneShot names a one-shot command that changes what a running director
// keeps: the kernel's table of its services, or its VIP.
type OneShot string

// The one-shot commands a running director would fight.
const (
	OneShotApply   OneShot = "apply"
	OneShotCleanup OneShot = "cleanup"
)

// ErrDirectorRunning means a one-shot command was refused because a
// director runs on this host: `apply` would put failed real servers back
// until its next resync, and `cleanup` would take its VIP and services away
// under it.
var ErrDirectorRunning = errors.New("a director is running on this host")

// insteadOf says what an operator means to do when a director is running.
var insteadOf = map[OneShot]string{
	OneShotApply:   "use `director reload` to apply the file, `director drain`/`undrain` for one real server, or stop the director first",
	OneShotCleanup: "stop the director first (systemctl stop lvsdr-director), then run `director cleanup`",
}

// GuardOneShot decides whether cmd may change the kernel: nil when force is
// set or when running says no director answers. Otherwise it returns
// ErrDirectorRunning with what to use instead; a probe that cannot tell
// refuses too, since going ahead would fight the director it missed.
func GuardOneShot(cmd OneShot, running func() (bool, error), force bool) error {
	if force {
		return nil
	}
	up, err := running()
	switch {
	case err != nil:
		return fmt.Errorf("%s refused: cannot tell whether a director is running (%v); --force to go ahead anyway", cmd, err)
	case up:
		return fmt.Errorf("%s refused: %w: %s (--force to override)", cmd, ErrDirectorRunning, insteadOf[cmd])
	}
	return nil
}

// Running reports whether a director answers on the control socket at
// path.
func Running(path string) (bool, error) {
	_, err := QueryChecks(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoDirector):
		return false, nil
	}
	return false, err
}
