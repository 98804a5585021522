package ipvsctl

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// FakeKernel is an in-memory IPVS for tests and previews. It counts the
// operations that change it, and can be told to fail.
type FakeKernel struct {
	mu       sync.Mutex
	services map[ServiceKey]*fakeService
	// Writes counts the operations that changed or tried to change the table.
	Writes int
	// Fail, when set, is called before every operation; a non-nil result is
	// returned instead of running the operation.
	Fail func(op OpKind, key ServiceKey, d Destination) error
}

type fakeService struct {
	svc   Service
	dests map[netip.AddrPort]Destination
}

// NewFakeKernel returns an empty fake kernel.
func NewFakeKernel() *FakeKernel {
	return &FakeKernel{services: make(map[ServiceKey]*fakeService)}
}

// WriteCount returns Writes, safely while another goroutine writes.
func (f *FakeKernel) WriteCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Writes
}

// SetFail sets Fail, safely while another goroutine writes.
func (f *FakeKernel) SetFail(fail func(op OpKind, key ServiceKey, d Destination) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Fail = fail
}

func (f *FakeKernel) fail(op OpKind, key ServiceKey, d Destination) error {
	f.Writes++
	if f.Fail != nil {
		return f.Fail(op, key, d)
	}
	return nil
}

// Services lists the services.
func (f *FakeKernel) Services() ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.Key.Compare(b.Key) })
	return out, nil
}

// Destinations lists the destinations of a service.
func (f *FakeKernel) Destinations(key ServiceKey) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[key]
	if !ok {
		return nil, fmt.Errorf("service %s: %w", key, ErrNotFound)
	}
	out := make([]Destination, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, d)
	}
	sortDestinations(out)
	return out, nil
}

// AddService adds a service.
func (f *FakeKernel) AddService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(AddService, s.Key, Destination{}); err != nil {
		return err
	}
	if _, ok := f.services[s.Key]; ok {
		return ErrExists
	}
	f.services[s.Key] = &fakeService{svc: s, dests: make(map[netip.AddrPort]Destination)}
	return nil
}

// UpdateService changes a service's scheduler and persistence.
func (f *FakeKernel) UpdateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(UpdateService, s.Key, Destination{}); err != nil {
		return err
	}
	fs, ok := f.services[s.Key]
	if !ok {
		return ErrNotFound
	}
	fs.svc = s
	return nil
}

// DeleteService deletes a service and its destinations.
func (f *FakeKernel) DeleteService(key ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(DeleteService, key, Destination{}); err != nil {
		return err
	}
	if _, ok := f.services[key]; !ok {
		return ErrNotFound
	}
	delete(f.services, key)
	return nil
}

// AddDestination adds a destination.
func (f *FakeKernel) AddDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(AddDestination, key, d)
}

// UpdateDestination changes a destination's weight and forwarding method.
func (f *FakeKernel) UpdateDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(UpdateDestination, key, d)
}

// DeleteDestination deletes a destination.
func (f *FakeKernel) DeleteDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(DeleteDestination, key, d)
}

func (f *FakeKernel) changeDestination(op OpKind, key ServiceKey, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(op, key, d); err != nil {
		return err
	}
	s, ok := f.services[key]
	if !ok {
		return fmt.Errorf("service %s: %w", key, ErrNotFound)
	}
	id := d.Endpoint()
	old, exists := s.dests[id]
	switch {
	case op == AddDestination && exists:
		return ErrExists
	case op != AddDestination && !exists:
		return ErrNotFound
	case op == DeleteDestination:
		delete(s.dests, id)
	default:
		d.Stats = old.Stats
		s.dests[id] = d
	}
	return nil
}

// SetStats sets the counters of a destination, as traffic would.
func (f *FakeKernel) SetStats(key ServiceKey, d Destination, st Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.services[key]; ok {
		id := d.Endpoint()
		if old, ok := s.dests[id]; ok {
			old.Stats = &st
			s.dests[id] = old
		}
	}
}
