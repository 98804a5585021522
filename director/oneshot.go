package director

import (
	"errors"
	"fmt"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// Apply programs the topology into the kernel once with every real server in,
// as `ipvsadm -R` would, and deletes the services this director declared
// before and the file no longer does. With dryRun it only returns the
// operations it would run.
func Apply(k ipvsctl.Kernel, state StateFile, topo *topology.Topology, dryRun bool) ([]ipvsctl.Op, error) {
	owned, err := state.Owned()
	if err != nil {
		return nil, err
	}
	retired := retiredKeys(owned, topo)
	desired := ipvsctl.Desired(topo, ipvsctl.AllHealthy)
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
	return ops, state.Record(ipvsctl.DeclaredKeys(topo))
}

// Cleanup deletes the services the topology declares (and those recorded as
// ours) and unbinds the VIP: what a director leaves behind when it is
// retired for good. Foreign services stay.
func Cleanup(k ipvsctl.Kernel, vip VIPBinder, state StateFile, topo *topology.Topology) ([]ipvsctl.Op, error) {
	owned, err := state.Owned()
	if err != nil {
		return nil, err
	}
	keys := append(ipvsctl.DeclaredKeys(topo), retiredKeys(owned, topo)...)
	ops, err := ipvsctl.NewReconciler(k).Sync(nil, keys)
	if err != nil {
		return ops, err
	}
	if err := state.Record(nil); err != nil {
		return ops, err
	}
	if err := vip.Unbind(topo.Director.Interface, topo.VIP); err != nil {
		return ops, fmt.Errorf("services deleted, but: %w", err)
	}
	return ops, nil
}

// ErrNotReady is returned by commands whose answer is "not as it should be",
// for a non-zero exit without a second message.
var ErrNotReady = errors.New("not ready")
