package vip

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// State is where the VIP stands on this host.
type State int

// The VIP's states. Announced is Bound plus a gratuitous ARP sent since it
// was bound, so that the segment's caches point here.
const (
	Unbound State = iota
	Bound
	Announced
)

func (s State) String() string {
	switch s {
	case Bound:
		return "bound"
	case Announced:
		return "announced"
	}
	return "unbound"
}

// Held reports whether the address is on this host.
func (s State) Held() bool { return s != Unbound }

// Owner keeps the VIP where it is wanted. It is not safe for concurrent use:
// one loop (the director's) drives it, and publishes its State for others.
type Owner struct {
	binder Binder
	log    *slog.Logger
	// iface and addr are where the VIP was last wanted or held.
	iface string
	addr  netip.Addr
	state State
}

// NewOwner returns an owner that has not looked at the host yet.
func NewOwner(b Binder, log *slog.Logger) *Owner { return &Owner{binder: b, log: log} }

// State returns where the VIP stood after the last Converge.
func (o *Owner) State() State { return o.state }

// Converge makes the host hold addr on iface when want is set, and not hold
// it otherwise, from what the host has now: it is how the VIP is taken at
// start or at a role change, and how it is repaired when someone removed it
// (`ip addr del`, an ifdown/ifup) since the last look. A VIP that moves (a
// reload changed it or its interface) is bound at the new place before it
// leaves the old one. It returns whether it changed anything. A failed
// gratuitous ARP costs only the time until caches expire: it is logged and
// the state stays Bound, so the next Converge tries again.
func (o *Owner) Converge(iface string, addr netip.Addr, want bool) (changed bool, err error) {
	moved := o.addr.IsValid() && (o.iface != iface || o.addr != addr)
	if moved && o.state.Held() {
		if want {
			if changed, err = o.hold(iface, addr); err != nil {
				return changed, err
			}
		}
		if err := o.binder.Unbind(o.iface, o.addr); err != nil {
			return true, fmt.Errorf("unbind the old VIP %s from %s: %w", o.addr, o.iface, err)
		}
		o.log.Info("VIP moved", "from", o.addr, "from_interface", o.iface, "to", addr, "interface", iface)
		o.iface, o.addr = iface, addr
		if !want {
			o.state = Unbound
		}
		return true, nil
	}
	o.iface, o.addr = iface, addr
	if want {
		return o.hold(iface, addr)
	}
	return o.release(iface, addr)
}

func (o *Owner) hold(iface string, addr netip.Addr) (bool, error) {
	present, err := o.binder.Bound(iface, addr)
	if err != nil {
		return false, fmt.Errorf("look for the VIP %s on %s: %w", addr, iface, err)
	}
	changed := false
	if !present {
		if o.state.Held() {
			o.log.Warn("VIP lost: bound again", "vip", addr, "interface", iface)
		}
		if err := o.binder.Bind(iface, addr); err != nil {
			o.state = Unbound
			return false, fmt.Errorf("bind the VIP %s to %s: %w", addr, iface, err)
		}
		o.state, changed = Bound, true
	} else if o.state == Unbound {
		o.state = Bound
	}
	if o.state == Bound {
		if err := o.binder.Announce(iface, addr); err != nil {
			o.log.Warn("gratuitous ARP not sent; peers learn the VIP's MAC when their ARP cache expires", "vip", addr, "error", err)
			return changed, nil
		}
		o.state, changed = Announced, true
	}
	return changed, nil
}

func (o *Owner) release(iface string, addr netip.Addr) (bool, error) {
	present, err := o.binder.Bound(iface, addr)
	if err != nil {
		return false, fmt.Errorf("look for the VIP %s on %s: %w", addr, iface, err)
	}
	o.state = Unbound
	if !present {
		return false, nil
	}
	if err := o.binder.Unbind(iface, addr); err != nil {
		o.state = Bound
		return false, fmt.Errorf("unbind the VIP %s from %s: %w", addr, iface, err)
	}
	return true, nil
}

// Announce sends a gratuitous ARP again for a held VIP: a role that won a
// split brain tells the segment the VIP is here after all.
func (o *Owner) Announce() error {
	if !o.state.Held() {
		return nil
	}
	return o.binder.Announce(o.iface, o.addr)
}
