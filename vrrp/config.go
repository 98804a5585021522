package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// Config is one VRRP router: this director's view of one virtual router.
type Config struct {
	VRID    int // 1-255, the same on every router of the group
	Version int // 2 (RFC 3768, keepalived's default) or 3 (RFC 5798)
	// Interval between adverts as master: v2 whole seconds 1-255 s, v3
	// 10 ms steps from 10 ms to 40.95 s.
	Interval time.Duration
	// Priority 1-254; 255 is the address owner's (accepted for keepalived
	// parity; it only makes this router win every election: every router
	// still starts as backup).
	Priority int
	// Preempt lets this backup take over from a live lower-priority master.
	Preempt bool
	// PreemptDelay (0-1000 s): a backup that sees a lower-priority master
	// keeps deferring to it for this long after the first such advert.
	PreemptDelay time.Duration
	// PreemptHold, if not zero, holds preemption from Run until the caller
	// calls Ready (for example once the connection-sync table is warm), or
	// at most this long. It never delays a takeover from a master that is
	// gone or leaving.
	PreemptHold time.Duration
	// Unicast sends each advert to every address of Peers instead of
	// 224.0.0.18, and accepts adverts only from Peers.
	Unicast bool
	Peers   []netip.Addr // the other routers' primary addresses (unicast only)
	// Addresses are the virtual addresses, the same list (in any order) as
	// every other router's, keepalived's virtual_ipaddress included: a
	// router discards adverts whose list differs.
	Addresses []netip.Addr
}

// ConfigError is one invalid field of a Config; Field is named as in the
// topology file's director.ha block.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks every range; the first error found is returned as a
// *ConfigError.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if c.VRID < 1 || c.VRID > 255 {
		return bad("vrid", "%d is not 1-255", c.VRID)
	}
	switch c.Version {
	case 2:
		if c.Interval%time.Second != 0 || c.Interval < time.Second || c.Interval > maxV2Secs*time.Second {
			return bad("advert_interval", "%v: VRRP v2 needs whole seconds from 1s to 255s", c.Interval)
		}
	case 3:
		if c.Interval%centisecond != 0 || c.Interval < centisecond || c.Interval > maxV3Cs*centisecond {
			return bad("advert_interval", "%v: VRRP v3 needs 10ms steps from 10ms to 40.95s", c.Interval)
		}
	default:
		return bad("version", "%d is not 2 or 3", c.Version)
	}
	if c.Priority < 1 || c.Priority > 255 {
		return bad("priority", "%d is not 1-255 (0 is reserved for a master that leaves)", c.Priority)
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > 1000*time.Second {
		return bad("preempt_delay", "%v is not 0s-1000s", c.PreemptDelay)
	}
	if c.PreemptHold < 0 {
		return bad("preempt_hold", "%v is negative", c.PreemptHold)
	}
	if len(c.Addresses) == 0 || len(c.Addresses) > 255 {
		return bad("addresses", "%d virtual addresses, want 1-255", len(c.Addresses))
	}
	seen := map[netip.Addr]bool{}
	for _, a := range c.Addresses {
		if !a.Is4() {
			return bad("addresses", "%v is not an IPv4 address", a)
		}
		if seen[a] {
			return bad("addresses", "%v listed twice", a)
		}
		seen[a] = true
	}
	if c.Unicast && len(c.Peers) == 0 {
		return bad("peers", "unicast needs at least one peer")
	}
	for _, p := range c.Peers {
		if !p.Is4() || p.IsMulticast() || p.IsUnspecified() {
			return bad("peers", "%v is not a unicast IPv4 address", p)
		}
	}
	return nil
}
