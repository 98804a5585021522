package ipvsctl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	// socket and writer carry the batched writes; nil until the first
	// one, and after a failed exchange.
	socket *netlinkSocket
	writer *batchWriter
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

// Open checks that the kernel has IPVS and opens a handle on it.
func Open(timeout time.Duration) (*Netlink, error) {
	f, err := family()
	if err != nil {
		return nil, err
	}
	h, err := ipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	return &Netlink{handle: h, timeout: timeout, family: f}, nil
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
		n.socket, n.writer = nil, nil
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
			return fmt.Errorf("reopen IPVS netlink socket: %w", err)
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

// Services lists every virtual service in the kernel.
func (n *Netlink) Services() ([]Service, error) {
	var raw []*ipvs.Service
	err := n.call(func(h *ipvs.Handle) (err error) {
		raw, err = h.GetServices()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(raw))
	for _, s := range raw {
		svc, err := fromKernelService(s)
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
}

// Destinations lists the destinations of one service.
func (n *Netlink) Destinations(key ServiceKey) ([]Destination, error) {
	var raw []*ipvs.Destination
	err := n.call(func(h *ipvs.Handle) (err error) {
		raw, err = h.GetDestinations(toKernelService(Service{Key: key}))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(raw))
	for _, d := range raw {
		addr, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			return nil, fmt.Errorf("real server of %s has an unreadable address %v", key, d.Address)
		}
		out = append(out, Destination{
			Address:    addr.Unmap(),
			Port:       d.Port,
			Weight:     uint16(d.Weight),
			Forwarding: fromConnFlags(d.ConnectionFlags),
			Stats:      fromKernelStats(ipvs.SvcStats(d.Stats), d.ActiveConnections, d.InactiveConnections),
		})
	}
	return out, nil
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

func fromKernelService(s *ipvs.Service) (Service, error) {
	svc := Service{
		Scheduler: s.SchedName,
		Stats:     fromKernelStats(s.Stats, 0, 0),
	}
	if s.FWMark != 0 {
		svc.Key = ServiceKey{FWMark: s.FWMark}
	} else {
		addr, ok := netip.AddrFromSlice(s.Address)
		if !ok {
			return Service{}, fmt.Errorf("IPVS service with an unreadable address %v", s.Address)
		}
		svc.Key = ServiceKey{Protocol: protocolName(s.Protocol), Address: addr.Unmap(), Port: s.Port}
	}
	// The kernel adds the HASHED bit to every service it holds; only the
	// persistent bit is ours to compare.
	if (s.Flags&^svcFlagHashed)&svcFlagPersistent != 0 {
		svc.Persistence = s.Timeout
	}
	svc.SchedFlags = s.Flags & SchedFlagsMask
	return svc, nil
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

func fromConnFlags(flags uint32) Forwarding {
	switch flags & connFwdMask {
	case ipvs.ConnectionFlagMasq:
		return NAT
	case ipvs.ConnectionFlagTunnel:
		return Tunnel
	case ipvs.ConnectionFlagDirectRoute:
		return DirectRouting
	}
	return Forwarding(fmt.Sprintf("0x%x", flags&connFwdMask))
}

func protocolNumber(p Protocol) uint16 {
	if p == UDP {
		return syscall.IPPROTO_UDP
	}
	return syscall.IPPROTO_TCP
}

func protocolName(n uint16) Protocol {
	switch n {
	case syscall.IPPROTO_TCP:
		return TCP
	case syscall.IPPROTO_UDP:
		return UDP
	}
	return Protocol(fmt.Sprintf("proto%d", n))
}

func fromKernelStats(s ipvs.SvcStats, active, inactive int) *Stats {
	return &Stats{
		ActiveConns:   active,
		InactiveConns: inactive,
		Connections:   uint64(s.Connections),
		PacketsIn:     uint64(s.PacketsIn),
		PacketsOut:    uint64(s.PacketsOut),
		BytesIn:       s.BytesIn,
		BytesOut:      s.BytesOut,
		CPS:           uint64(s.CPS),
		PPSIn:         uint64(s.PPSIn),
		PPSOut:        uint64(s.PPSOut),
		BPSIn:         uint64(s.BPSIn),
		BPSOut:        uint64(s.BPSOut),
	}
}
