package ipvsctl

import (
	"errors"
	"fmt"
	"slices"
)

// ErrNoIPVS means the running kernel has no IPVS at all.
var ErrNoIPVS = errors.New("this kernel has no IPVS (the generic netlink family \"IPVS\" is missing): build it with CONFIG_IP_VS=m or run `modprobe ip_vs`")

// ErrNotFound means the service or destination does not exist in the kernel.
var ErrNotFound = errors.New("not found")

// ErrExists means the service or destination is already in the kernel.
var ErrExists = errors.New("already exists")

// ErrTimeout means the kernel did not answer a call in time.
var ErrTimeout = errors.New("no answer from the kernel in time")

// Kernel is the part of IPVS that lvsdr uses. Implementations serialize their
// calls; callers may share one.
type Kernel interface {
	// Services lists every virtual service in the kernel, ours or not.
	Services() ([]Service, error)
	// Destinations lists the destinations of one service.
	Destinations(ServiceKey) ([]Destination, error)
	AddService(Service) error
	UpdateService(Service) error
	DeleteService(ServiceKey) error
	AddDestination(ServiceKey, Destination) error
	UpdateDestination(ServiceKey, Destination) error
	DeleteDestination(ServiceKey, Destination) error
}

// Read returns what the kernel has for the given keys: one dump of the
// services, then one dump of destinations per key present. Keys that the
// kernel lacks are absent from the table.
func Read(k Kernel, keys []ServiceKey) (Table, error) {
	services, err := k.Services()
	if err != nil {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}
	wanted := make(map[ServiceKey]bool, len(keys))
	for _, key := range keys {
		wanted[key] = true
	}
	var table Table
	for _, s := range services {
		if !wanted[s.Key] {
			continue
		}
		dests, err := k.Destinations(s.Key)
		if err != nil {
			return nil, fmt.Errorf("list real servers of %s: %w", s.Key, err)
		}
		table = append(table, VirtualServer{Service: s, Destinations: dests})
	}
	table.Sort()
	return table, nil
}

// Apply runs the operations in order. An operation that fails does not stop
// the others (the next reconcile retries it), except that the destinations of
// a service that could not be added are skipped. The error joins every
// failure, each naming its operation.
func Apply(k Kernel, ops []Op) error {
	var errs []error
	var missing []ServiceKey
	for _, op := range ops {
		if op.Kind == AddDestination && slices.Contains(missing, op.Service.Key) {
			continue
		}
		if err := apply(k, op); err != nil {
			if op.Kind == AddService {
				missing = append(missing, op.Service.Key)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func apply(k Kernel, op Op) error {
	svc, dst := op.Service, op.Destination
	switch op.Kind {
	case AddService:
		if err := k.AddService(svc); err != nil {
			return fmt.Errorf("add service %s: %w", svc.Key, err)
		}
	case UpdateService:
		if err := k.UpdateService(svc); err != nil {
			return fmt.Errorf("update service %s: %w", svc.Key, err)
		}
	case DeleteService:
		if err := k.DeleteService(svc.Key); err != nil {
			return fmt.Errorf("delete service %s: %w", svc.Key, err)
		}
	case AddDestination:
		if err := k.AddDestination(svc.Key, dst); err != nil {
			return fmt.Errorf("add real server %s to %s: %w", dst.Endpoint(), svc.Key, err)
		}
	case UpdateDestination:
		if err := k.UpdateDestination(svc.Key, dst); err != nil {
			return fmt.Errorf("update real server %s of %s: %w", dst.Endpoint(), svc.Key, err)
		}
	case DeleteDestination:
		if err := k.DeleteDestination(svc.Key, dst); err != nil {
			return fmt.Errorf("delete real server %s from %s: %w", dst.Endpoint(), svc.Key, err)
		}
	default:
		return fmt.Errorf("unknown operation kind %d", op.Kind)
	}
	return nil
}

// Reconcile brings the kernel's copy of the desired services to desired and
// deletes the retired ones, reading the kernel first. It returns the
// operations it ran.
func Reconcile(k Kernel, desired Table, retired []ServiceKey) ([]Op, error) {
	actual, err := Read(k, append(desired.Keys(), retired...))
	if err != nil {
		return nil, err
	}
	ops := Diff(desired, actual, retired)
	return ops, Apply(k, ops)
}
