package vip

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
)

// fakeBinder is a host's addresses, and the operations done to them.
type fakeBinder struct {
	bound   map[string]bool
	ops     []string
	failARP bool
}

func (f *fakeBinder) key(iface string, a netip.Addr) string { return iface + " " + a.String() }

func (f *fakeBinder) Bind(iface string, a netip.Addr) error {
	f.bound[f.key(iface, a)] = true
	f.ops = append(f.ops, "bind "+f.key(iface, a))
	return nil
}

func (f *fakeBinder) Unbind(iface string, a netip.Addr) error {
	delete(f.bound, f.key(iface, a))
	f.ops = append(f.ops, "unbind "+f.key(iface, a))
	return nil
}

func (f *fakeBinder) Bound(iface string, a netip.Addr) (bool, error) {
	return f.bound[f.key(iface, a)], nil
}

func (f *fakeBinder) Announce(iface string, a netip.Addr) error {
	if f.failARP {
		return errors.New("no raw socket")
	}
	f.ops = append(f.ops, "garp "+f.key(iface, a))
	return nil
}

func (f *fakeBinder) ProbeSource(string, netip.Addr) (netip.Addr, error) { return netip.Addr{}, nil }

func (f *fakeBinder) Addresses(string) ([]netip.Addr, error) { return nil, nil }

var (
	vip1 = netip.MustParseAddr("10.0.0.100")
	vip2 = netip.MustParseAddr("10.0.0.101")
)

func TestOwnerConverges(t *testing.T) {
	type step struct {
		iface   string
		addr    netip.Addr
		want    bool
		removed bool // the address is deleted by hand before this step
		ops     []string
		state   State
	}
	tests := []struct {
		name    string
		initial []string
		steps   []step
	}{
		{"start binds and announces, then nothing to do", nil, []step{
			{"eth0", vip1, true, false, []string{"bind eth0 10.0.0.100", "garp eth0 10.0.0.100"}, Announced},
			{"eth0", vip1, true, false, nil, Announced},
		}},
		{"a VIP already there is adopted and announced", []string{"eth0 10.0.0.100"}, []step{
			{"eth0", vip1, true, false, []string{"garp eth0 10.0.0.100"}, Announced},
		}},
		{"a VIP removed by hand is bound again with a gratuitous ARP", nil, []step{
			{"eth0", vip1, true, false, []string{"bind eth0 10.0.0.100", "garp eth0 10.0.0.100"}, Announced},
			{"eth0", vip1, true, true, []string{"bind eth0 10.0.0.100", "garp eth0 10.0.0.100"}, Announced},
		}},
		{"a moved VIP is bound at the new place before the old one goes", nil, []step{
			{"eth0", vip1, true, false, []string{"bind eth0 10.0.0.100", "garp eth0 10.0.0.100"}, Announced},
			{"eth1", vip2, true, false, []string{"bind eth1 10.0.0.101", "garp eth1 10.0.0.101", "unbind eth0 10.0.0.100"}, Announced},
		}},
		{"a backup gives the VIP up", nil, []step{
			{"eth0", vip1, true, false, []string{"bind eth0 10.0.0.100", "garp eth0 10.0.0.100"}, Announced},
			{"eth0", vip1, false, false, []string{"unbind eth0 10.0.0.100"}, Unbound},
			{"eth0", vip1, false, false, nil, Unbound},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBinder{bound: map[string]bool{}}
			for _, k := range tt.initial {
				b.bound[k] = true
			}
			o := NewOwner(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
			for i, s := range tt.steps {
				if s.removed {
					delete(b.bound, b.key(s.iface, s.addr))
				}
				b.ops = nil
				if _, err := o.Converge(s.iface, s.addr, s.want); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if !slices.Equal(b.ops, s.ops) || o.State() != s.state {
					t.Errorf("step %d: ops %q state %s; want %q %s", i, b.ops, o.State(), s.ops, s.state)
				}
			}
		})
	}
}

func TestFailedAnnouncementIsRetriedAtTheNextConverge(t *testing.T) {
	b := &fakeBinder{bound: map[string]bool{}, failARP: true}
	o := NewOwner(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := o.Converge("eth0", vip1, true); err != nil || o.State() != Bound {
		t.Fatalf("state %s, %v; want bound without an announcement", o.State(), err)
	}
	b.failARP, b.ops = false, nil
	if _, err := o.Converge("eth0", vip1, true); err != nil || o.State() != Announced || !slices.Equal(b.ops, []string{"garp eth0 10.0.0.100"}) {
		t.Errorf("state %s ops %q, %v; want the announcement sent", o.State(), b.ops, err)
	}
}
