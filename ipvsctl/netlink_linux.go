package ipvsctl

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// DefaultCallTimeout bounds one netlink call. A lost reply would otherwise
// block moby/ipvs forever.
const DefaultCallTimeout = 10 * time.Second

// Netlink is the Kernel of the running host, through moby/ipvs. It
// serializes calls (moby/ipvs matches replies by sequence number, and
// concurrent callers steal each other's) and bounds each one.
type Netlink struct {
	mu      sync.Mutex
	handle  *ipvs.Handle
	timeout time.Duration
	// family is the IPVS generic netlink family, for the batched writes.
	family uint16
	// socket and conn carry the batched writes and the dumps; nil until
	// the first, and after a failed exchange.
	socket *netlinkSocket
	conn   *ipvsConn
}

// Probe reports whether the kernel has IPVS. On a kernel without it moby/ipvs
// returns nil from every call and does nothing, so this must run first.
func Probe() error {
	_, err := family()
	return err
}

// family looks up the IPVS generic netlink family.
func family() (uint16, error) {
	f, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return 0, ErrNoIPVS
		}
		return 0, fmt.Errorf("look up the IPVS netlink family: %w", err)
	}
	return f.ID, nil
}

// Open checks that the kernel has IPVS. The sockets open on first use:
// moby/ipvs's handle, for the single operations, runs `modprobe ip_vs` the
// first time one is made, a process a director that only batches and
// dumps never needs to start.
func Open(timeout time.Duration) (*Netlink, error) {
	f, err := family()
	if err != nil {
		return nil, err
	}
	return &Netlink{timeout: timeout, family: f}, nil
}

// Close releases the handle.
func (n *Netlink) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle != nil {
		n.handle.Close()
		n.handle = nil
	}
	if n.socket != nil {
		n.socket.close()
		n.socket, n.conn = nil, nil
	}
}

// call runs fn on the handle, one call at a time, and gives up after the
// timeout. A call that timed out leaves its socket in an unknown state, so the
// handle is dropped and the next call opens a fresh one; closing the old
// socket makes moby/ipvs's receive loop return at its next socket timeout.
func (n *Netlink) call(fn func(h *ipvs.Handle) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == nil {
		h, err := ipvs.New("")
		if err != nil {
			return fmt.Errorf("open IPVS netlink socket: %w", err)
		}
		n.handle = h
	}
	h := n.handle
	done := make(chan error, 1)
	go func() { done <- fn(h) }()
	timer := time.NewTimer(n.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return translate(err)
	case <-timer.C:
		h.Close()
		n.handle = nil
		return fmt.Errorf("%w (%s)", ErrTimeout, n.timeout)
	}
}

func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// AddService adds a service.
func (n *Netlink) AddService(s Service) error {
	return schedulerError(s, n.call(func(h *ipvs.Handle) error { return h.NewService(toKernelService(s)) }))
}

// UpdateService changes the scheduler and persistence of a service.
func (n *Netlink) UpdateService(s Service) error {
	return schedulerError(s, n.call(func(h *ipvs.Handle) error { return h.UpdateService(toKernelService(s)) }))
}

// DeleteService deletes a service and its destinations.
func (n *Netlink) DeleteService(key ServiceKey) error {
	return n.call(func(h *ipvs.Handle) error { return h.DelService(toKernelService(Service{Key: key})) })
}

// AddDestination adds a destination.
func (n *Netlink) AddDestination(key ServiceKey, d Destination) error {
	return n.call(func(h *ipvs.Handle) error {
		return h.NewDestination(toKernelService(Service{Key: key}), toKernelDestination(d))
	})
}

// UpdateDestination changes the weight and forwarding method of a destination.
func (n *Netlink) UpdateDestination(key ServiceKey, d Destination) error {
	return destinationError(n.call(func(h *ipvs.Handle) error {
		return h.UpdateDestination(toKernelService(Service{Key: key}), toKernelDestination(d))
	}))
}

// DeleteDestination deletes a destination.
func (n *Netlink) DeleteDestination(key ServiceKey, d Destination) error {
	return destinationError(n.call(func(h *ipvs.Handle) error {
		return h.DelDestination(toKernelService(Service{Key: key}), toKernelDestination(d))
	}))
}

// destinationError names the kernel's ENOENT for a missing destination (a
// missing service is ESRCH).
func destinationError(err error) error {
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// schedulerError explains the kernel's ENOENT for a scheduler whose module is
// missing, which otherwise reads "no such file or directory".
func schedulerError(s Service, err error) error {
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("scheduler %s is not available in this kernel (modprobe ip_vs_%s): %w", s.Scheduler, s.Scheduler, err)
	}
	return err
}

func toKernelService(s Service) *ipvs.Service {
	if s.Key.FWMark != 0 {
		return &ipvs.Service{
			FWMark:        s.Key.FWMark,
			SchedName:     s.Scheduler,
			Netmask:       fullNetmask,
			AddressFamily: syscall.AF_INET,
		}
	}
	ks := &ipvs.Service{
		Address:       net.IP(s.Key.Address.AsSlice()),
		Protocol:      protocolNumber(s.Key.Protocol),
		Port:          s.Key.Port,
		SchedName:     s.Scheduler,
		Netmask:       fullNetmask,
		AddressFamily: syscall.AF_INET,
	}
	if s.Key.Address.Is6() {
		ks.AddressFamily = syscall.AF_INET6
		ks.Netmask = 128
	}
	if s.Persistence > 0 {
		ks.Flags = svcFlagPersistent
		ks.Timeout = s.Persistence
	}
	ks.Flags |= s.SchedFlags & SchedFlagsMask
	return ks
}

func toKernelDestination(d Destination) *ipvs.Destination {
	kd := &ipvs.Destination{
		Address:         net.IP(d.Address.AsSlice()),
		Port:            d.Port,
		Weight:          int(d.Weight),
		ConnectionFlags: toConnFlags(d.Forwarding),
		AddressFamily:   syscall.AF_INET,
	}
	if d.Address.Is6() {
		kd.AddressFamily = syscall.AF_INET6
	}
	return kd
}

func toConnFlags(f Forwarding) uint32 {
	switch f {
	case NAT:
		return ipvs.ConnectionFlagMasq
	case Tunnel:
		return ipvs.ConnectionFlagTunnel
	default:
		return ipvs.ConnectionFlagDirectRoute
	}
}

func protocolNumber(p Protocol) uint16 {
	if p == UDP {
		return syscall.IPPROTO_UDP
	}
	return syscall.IPPROTO_TCP
}
