package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// sim drives routers step by step on a fake clock and a Segment, without
// their goroutines: every timer due at an instant fires before the packets
// sent at that instant are delivered (as two routers whose timers expire
// together both send before hearing each other), and delivery is instant.
type sim struct {
	t       *testing.T
	clk     *clock.Fake
	seg     *Segment
	routers []*simRouter
}

type simRouter struct {
	*Router
	conn    *FakeConn
	running bool
	events  []Transition
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSim(t *testing.T) *sim {
	return &sim{t: t, clk: clock.NewFake(t0), seg: NewSegment()}
}

// add makes a router at addr and starts it now.
func (s *sim) add(addr string, cfg Config) *simRouter {
	s.t.Helper()
	conn := s.seg.Join(netip.MustParseAddr(addr))
	r, err := New(cfg, conn, s.clk)
	if err != nil {
		s.t.Fatal(err)
	}
	sr := &simRouter{Router: r, conn: conn, running: true}
	s.routers = append(s.routers, sr)
	r.start(s.clk.Now())
	r.onControl(s.clk.Now())
	s.settle()
	return sr
}

// settle delivers every packet in flight and applies controls, until quiet.
func (s *sim) settle() {
	for busy := true; busy; {
		busy = false
		for _, r := range s.routers {
			if !r.running {
				for _, ok := r.conn.poll(); ok; _, ok = r.conn.poll() {
				}
				continue
			}
			select {
			case <-r.wake:
				r.onControl(s.clk.Now())
				busy = true
			default:
			}
			for p, ok := r.conn.poll(); ok; p, ok = r.conn.poll() {
				r.onPacket(s.clk.Now(), p)
				busy = true
			}
		}
	}
	for _, r := range s.routers {
		r.events = append(r.events, r.takeEvents()...)
		r.publish()
	}
}

// runUntil moves the clock to at, firing timers in order.
func (s *sim) runUntil(at time.Time) {
	s.settle()
	for {
		var next time.Time
		for _, r := range s.routers {
			if r.running && !r.deadline.IsZero() && (next.IsZero() || r.deadline.Before(next)) {
				next = r.deadline
			}
		}
		if next.IsZero() || next.After(at) {
			s.clk.Advance(at.Sub(s.clk.Now()))
			s.settle()
			return
		}
		s.clk.Advance(next.Sub(s.clk.Now()))
		for _, r := range s.routers {
			if r.running {
				r.onTimer(s.clk.Now())
			}
		}
		s.settle()
	}
}

func (s *sim) runFor(d time.Duration) { s.runUntil(s.clk.Now().Add(d)) }

// kill stops a router dead: no priority 0, nothing more sent or received.
func (s *sim) kill(r *simRouter) {
	r.running = false
	r.conn.SetDown(true)
}

// stop shuts a router down as Run does when its context ends.
func (s *sim) stop(r *simRouter) {
	r.shutdown(s.clk.Now())
	r.running = false
	s.settle()
}

func (s *sim) masters() []*simRouter {
	var m []*simRouter
	for _, r := range s.routers {
		if r.running && r.state == StateMaster {
			m = append(m, r)
		}
	}
	return m
}

// onlyMaster fails unless want is the one master.
func (s *sim) onlyMaster(want *simRouter) {
	s.t.Helper()
	m := s.masters()
	if len(m) != 1 || m[0] != want {
		var addrs []netip.Addr
		for _, r := range m {
			addrs = append(addrs, r.local)
		}
		s.t.Fatalf("at +%v masters %v, want only %v", s.clk.Now().Sub(t0), addrs, want.local)
	}
}

// lastTransition is the router's last transition to another state.
func (r *simRouter) lastTransition(t *testing.T) Transition {
	t.Helper()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].From != r.events[i].To {
			return r.events[i]
		}
	}
	t.Fatalf("%v: no transition", r.local)
	return Transition{}
}

// lastSent decodes the last advert the router sent.
func (r *simRouter) lastSent(t *testing.T) Advert {
	t.Helper()
	sent := r.conn.Sent()
	if len(sent) == 0 {
		t.Fatalf("%v sent nothing", r.local)
	}
	p := sent[len(sent)-1]
	a, err := Unmarshal(p.Payload, p.Src, p.Dst)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testConfig(version int, interval time.Duration, prio int) Config {
	return Config{VRID: 51, Version: version, Interval: interval, Priority: prio, Preempt: true,
		Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.0.101")}}
}

// masterDownFor is Master_Down_Interval written out from RFC 5798.
func masterDownFor(prio int, interval time.Duration) time.Duration {
	return 3*interval + time.Duration(256-prio)*interval/256
}
