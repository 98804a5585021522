package ipvsctl

import (
	"errors"
	"fmt"
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
	if b, ok := k.(batchApplier); ok {
		results, err := b.applyBatch(ops)
		return joinOpErrors(ops, results, err)
	}
	results := make([]error, len(ops))
	failed := map[ServiceKey]bool{}
	for i, op := range ops {
		if op.Kind == AddDestination && failed[op.Service.Key] {
			continue
		}
		if results[i] = apply(k, op); results[i] != nil && op.Kind == AddService {
			failed[op.Service.Key] = true
		}
	}
	return joinOpErrors(ops, results, nil)
}

// batchApplier is a kernel that takes many operations in one exchange.
type batchApplier interface {
	// applyBatch runs ops in order; results[i] is the kernel's answer
	// to ops[i]. err is set when the exchange failed, after which the
	// results of the operations not yet answered are nil and unknown.
	applyBatch(ops []Op) (results []error, err error)
}

// joinOpErrors names each failed operation. The destinations of a service
// whose addition failed fail with it: only the service's error is kept.
func joinOpErrors(ops []Op, results []error, exchange error) error {
	var errs []error
	failed := map[ServiceKey]bool{}
	for i, err := range results {
		if err == nil {
			continue
		}
		op := ops[i]
		switch {
		case op.Kind == AddService:
			failed[op.Service.Key] = true
		case op.Kind == AddDestination && failed[op.Service.Key]:
			continue
		}
		errs = append(errs, opError(op, err))
	}
	if exchange != nil {
		errs = append(errs, exchange)
	}
	return errors.Join(errs...)
}

func apply(k Kernel, op Op) error {
	svc, dst := op.Service, op.Destination
	switch op.Kind {
	case AddService:
		return k.AddService(svc)
	case UpdateService:
		return k.UpdateService(svc)
	case DeleteService:
		return k.DeleteService(svc.Key)
	case AddDestination:
		return k.AddDestination(svc.Key, dst)
	case UpdateDestination:
		return k.UpdateDestination(svc.Key, dst)
	case DeleteDestination:
		return k.DeleteDestination(svc.Key, dst)
	}
	return fmt.Errorf("unknown operation kind %d", op.Kind)
}

// opError says which operation failed, in the words of the log.
func opError(op Op, err error) error {
	svc, dst := op.Service, op.Destination
	switch op.Kind {
	case AddService:
		return fmt.Errorf("add service %s: %w", svc.Key, err)
	case UpdateService:
		return fmt.Errorf("update service %s: %w", svc.Key, err)
	case DeleteService:
		return fmt.Errorf("delete service %s: %w", svc.Key, err)
	case AddDestination:
		return fmt.Errorf("add real server %s to %s: %w", dst.Endpoint(), svc.Key, err)
	case UpdateDestination:
		return fmt.Errorf("update real server %s of %s: %w", dst.Endpoint(), svc.Key, err)
	case DeleteDestination:
		return fmt.Errorf("delete real server %s from %s: %w", dst.Endpoint(), svc.Key, err)
	}
	return err
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
