package director

import (
	"fmt"

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
	st, err := state.Load()
	if err != nil {
		return nil, err
	}
	keys := append(declaredKeys(topo), retiredKeys(st.Owned, topo)...)
	ops, err := ipvsctl.NewReconciler(k).Sync(nil, keys)
	if err != nil {
		return ops, err
	}
	if err := state.Save(State{}); err != nil {
		return ops, err
	}
	if err := binder.Unbind(topo.Director.Interface, topo.VIP); err != nil {
		return ops, fmt.Errorf("services deleted, but: %w", err)
	}
	return ops, nil
}
