package vrrp

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestStartsAsBackup(t *testing.T) {
	s := newSim(t)
	r := s.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 255))
	if r.state != StateBackup {
		t.Fatalf("state %v, want backup even as owner", r.state)
	}
	want := Transition{From: StateInit, To: StateBackup, Reason: ReasonStart, At: t0}
	if len(r.events) != 1 || r.events[0] != want {
		t.Fatalf("events %+v, want %+v", r.events, want)
	}
	if n := len(r.conn.Sent()); n != 0 {
		t.Fatalf("a backup sent %d adverts", n)
	}
}

// Alone, a backup becomes master exactly Master_Down_Interval after start.
func TestMasterDownInterval(t *testing.T) {
	for _, tc := range []struct {
		version  int
		interval time.Duration
		prio     int
		want     time.Duration
	}{
		{2, time.Second, 100, 3609375 * time.Microsecond},     // keepalived's defaults
		{3, 100 * time.Millisecond, 100, 360937500},           // 0.36 s
		{3, 100 * time.Millisecond, 254, 300781250},           // skew shrinks as priority grows
		{2, 3 * time.Second, 1, 3*3*time.Second + 2988281250}, // and grows as it falls
	} {
		s := newSim(t)
		r := s.add("10.9.0.2", testConfig(tc.version, tc.interval, tc.prio))
		if got := masterDownFor(tc.prio, tc.interval); got != tc.want {
			t.Fatalf("formula: %v, want %v", got, tc.want)
		}
		s.runUntil(t0.Add(tc.want - 1))
		if r.state != StateBackup {
			t.Fatalf("v%d %v prio %d: %v at %v, before the master down interval", tc.version, tc.interval, tc.prio, r.state, tc.want-1)
		}
		s.runUntil(t0.Add(tc.want))
		if r.state != StateMaster || r.since != t0.Add(tc.want) || r.reason != ReasonMasterDown {
			t.Fatalf("v%d %v prio %d: %v since +%v (%s), want master at +%v", tc.version, tc.interval, tc.prio, r.state, r.since.Sub(t0), r.reason, tc.want)
		}
		if a := r.lastSent(t); a.Priority != uint8(tc.prio) || len(r.conn.Sent()) != 1 {
			t.Fatalf("on becoming master: %d adverts, last priority %d", len(r.conn.Sent()), a.Priority)
		}
		s.runFor(10 * tc.interval)
		if n := len(r.conn.Sent()); n != 11 {
			t.Fatalf("a master sent %d adverts in 10 intervals, want 1+10", n)
		}
	}
}

// Death of the master: the backup takes over Master_Down_Interval after the
// last advert it heard, counted in the master's interval in v3.
func TestTakeoverOnDeath(t *testing.T) {
	for _, tc := range []struct {
		name           string
		version        int
		masterInterval time.Duration
		backupInterval time.Duration
	}{
		{"v2", 2, time.Second, time.Second},
		{"v3", 3, 100 * time.Millisecond, 100 * time.Millisecond},
		{"v3 learns the master's interval", 3, time.Second, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			a := s.add("10.9.0.2", testConfig(tc.version, tc.masterInterval, 150))
			s.runFor(masterDownFor(150, tc.masterInterval))
			b := s.add("10.9.0.3", testConfig(tc.version, tc.backupInterval, 100))
			s.runFor(10 * tc.masterInterval)
			s.onlyMaster(a)
			if st := b.Status(); st.MasterAddr != a.local || st.MasterAdverInterval != tc.masterInterval {
				t.Fatalf("backup status %+v", st)
			}
			s.runUntil(a.deadline) // a's next advert
			lastAdvert := s.clk.Now()
			s.kill(a)
			s.runUntil(lastAdvert.Add(masterDownFor(100, tc.masterInterval) - 1))
			if b.state != StateBackup {
				t.Fatalf("took over before the master down interval")
			}
			s.runUntil(lastAdvert.Add(masterDownFor(100, tc.masterInterval)))
			s.onlyMaster(b)
			if got := b.lastTransition(t); got.Reason != ReasonMasterDown || got.At != lastAdvert.Add(masterDownFor(100, tc.masterInterval)) {
				t.Fatalf("transition %+v", got)
			}
		})
	}
}

// Priority 0: the backup takes over after Skew_Time.
func TestTakeoverOnPriorityZero(t *testing.T) {
	s := newSim(t)
	a := s.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 150))
	b := s.add("10.9.0.3", testConfig(3, 100*time.Millisecond, 100))
	s.runFor(2 * time.Second)
	s.onlyMaster(a)
	s.runFor(33 * time.Millisecond) // between adverts
	left := s.clk.Now()
	s.stop(a)
	if adv := a.lastSent(t); adv.Priority != 0 {
		t.Fatalf("shutdown sent priority %d", adv.Priority)
	}
	skew := time.Duration(156) * 100 * time.Millisecond / 256 // 60.9375 ms
	s.runUntil(left.Add(skew - 1))
	if b.state != StateBackup {
		t.Fatal("took over before Skew_Time")
	}
	s.runUntil(left.Add(skew))
	s.onlyMaster(b)
	if got := b.lastTransition(t); got.Reason != ReasonPriorityZero || got.At != left.Add(skew) {
		t.Fatalf("transition %+v", got)
	}
	if got := a.lastTransition(t); got.To != StateInit || got.Reason != ReasonShutdown {
		t.Fatalf("leaving master: %+v", got)
	}
}

func TestPreemption(t *testing.T) {
	const interval = time.Second
	for _, tc := range []struct {
		name     string
		preempt  bool
		delay    time.Duration
		wantAt   time.Duration // after the low one became master; 0: never
		wantKeep bool
	}{
		// b is master at M = +3.609375 s and advertises at M+k s; a starts
		// at M+0.5 s and hears b first at M+1 s.
		{"preempt", true, 0, time.Second + masterDownFor(150, interval) - 500*time.Millisecond, false},
		{"no preempt", false, 0, 0, true},
		// with a 10 s delay, b's adverts up to M+10 s reset a's timer
		{"preempt delay", true, 10 * time.Second, 10*time.Second + masterDownFor(150, interval), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			b := s.add("10.9.0.3", testConfig(2, interval, 100))
			s.runFor(masterDownFor(100, interval))
			m := s.clk.Now()
			s.onlyMaster(b)
			s.runFor(500 * time.Millisecond)
			cfg := testConfig(2, interval, 150)
			cfg.Preempt, cfg.PreemptDelay = tc.preempt, tc.delay
			a := s.add("10.9.0.2", cfg)
			if tc.name == "preempt" {
				// preempting: a's own master down timer, from its start
				tc.wantAt = 500*time.Millisecond + masterDownFor(150, interval)
			}
			if tc.wantKeep {
				s.runFor(100 * time.Second)
				s.onlyMaster(b)
				return
			}
			s.runUntil(m.Add(tc.wantAt - 1))
			s.onlyMaster(b)
			s.runUntil(m.Add(tc.wantAt))
			s.onlyMaster(a)
			if got := a.lastTransition(t); got.Reason != ReasonPreempt {
				t.Fatalf("a: %+v", got)
			}
			if got := b.lastTransition(t); got.To != StateBackup || got.Reason != ReasonHigherMaster || got.MasterAddr != a.local {
				t.Fatalf("b: %+v", got)
			}
			s.runFor(time.Minute)
			s.onlyMaster(a)
		})
	}
}

// Equal priorities whose timers expire together: both become master, and
// the higher primary address wins.
func TestEqualPrioritiesHigherAddressWins(t *testing.T) {
	for _, order := range [][]string{{"10.9.0.2", "10.9.0.3"}, {"10.9.0.3", "10.9.0.2"}} {
		s := newSim(t)
		first := s.add(order[0], testConfig(3, 100*time.Millisecond, 100))
		second := s.add(order[1], testConfig(3, 100*time.Millisecond, 100))
		s.runFor(5 * time.Second)
		high := first
		if second.local.Compare(first.local) > 0 {
			high = second
		}
		s.onlyMaster(high)
	}
}

// A partition heals with two masters: the lower one yields, the winner
// re-announces (a Master→Master transition) so the director re-sends
// gratuitous ARP.
func TestSplitBrainHeals(t *testing.T) {
	s := newSim(t)
	a := s.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 150))
	b := s.add("10.9.0.3", testConfig(3, 100*time.Millisecond, 100))
	s.runFor(time.Second)
	s.onlyMaster(a)
	a.conn.SetDown(true)
	s.runFor(time.Second)
	if len(s.masters()) != 2 {
		t.Fatal("the partition did not make two masters")
	}
	a.events, b.events = nil, nil
	a.conn.SetDown(false)
	s.runFor(time.Second)
	s.onlyMaster(a)
	var reannounced int
	for _, e := range a.events {
		if e.From == StateMaster && e.To == StateMaster && e.Reason == ReasonSplitBrain && e.MasterAddr == a.local {
			reannounced++
		}
	}
	if reannounced != 1 || len(a.events) != 1 {
		t.Fatalf("winner's events %+v, want one re-announcement", a.events)
	}
	if got := b.lastTransition(t); got.From != StateMaster || got.To != StateBackup || got.MasterAddr != a.local {
		t.Fatalf("loser: %+v", got)
	}
}

func TestRelease(t *testing.T) {
	s := newSim(t)
	a := s.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 150))
	b := s.add("10.9.0.3", testConfig(3, 100*time.Millisecond, 100))
	s.runFor(time.Second)
	s.onlyMaster(a)
	a.Release()
	s.settle()
	if adv := a.lastSent(t); adv.Priority != 0 {
		t.Fatalf("release sent priority %d", adv.Priority)
	}
	if got := a.lastTransition(t); got.To != StateBackup || got.Reason != ReasonRelease {
		t.Fatalf("release: %+v", got)
	}
	released := s.clk.Now()
	s.runUntil(released.Add(time.Duration(156) * 100 * time.Millisecond / 256))
	s.onlyMaster(b)
	s.runFor(time.Minute)
	s.onlyMaster(b)
	if st := a.Status(); !st.Released || st.Priority != 1 {
		t.Fatalf("released status %+v", st)
	}
	// A standby of last resort: with nobody else, it takes over.
	s.kill(b)
	s.runFor(time.Second)
	s.onlyMaster(a)
	if a.lastSent(t).Priority != 1 {
		t.Fatal("a released master advertises its configured priority")
	}

	s2 := newSim(t)
	a2 := s2.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 150))
	b2 := s2.add("10.9.0.3", testConfig(3, 100*time.Millisecond, 100))
	s2.runFor(time.Second)
	a2.Release()
	s2.runFor(time.Minute)
	s2.onlyMaster(b2)
	a2.Unrelease()
	s2.runFor(time.Second)
	s2.onlyMaster(a2)
}

func TestFault(t *testing.T) {
	s := newSim(t)
	a := s.add("10.9.0.2", testConfig(3, 100*time.Millisecond, 150))
	b := s.add("10.9.0.3", testConfig(3, 100*time.Millisecond, 100))
	s.runFor(time.Second)
	s.onlyMaster(a)
	sent := len(a.conn.Sent())
	a.SetFault(true, "eth0 down")
	s.runFor(time.Minute)
	s.onlyMaster(b)
	if len(a.conn.Sent()) != sent+1 || a.lastSent(t).Priority != 0 {
		t.Fatalf("in fault: %d adverts sent after the fault, last priority %d; want one priority 0", len(a.conn.Sent())-sent, a.lastSent(t).Priority)
	}
	if got := a.lastTransition(t); got.To != StateFault || got.Reason != "fault: eth0 down" {
		t.Fatalf("fault: %+v", got)
	}
	// A router in fault does not take over, even from nobody.
	s.kill(b)
	s.runFor(time.Minute)
	if a.state != StateFault || len(s.masters()) != 0 {
		t.Fatalf("a router in fault became %v", a.state)
	}
	a.SetFault(false, "")
	s.runFor(time.Second)
	s.onlyMaster(a)
	if st := a.Status(); st.Reason != ReasonMasterDown {
		t.Fatalf("after the fault: %+v", st)
	}
}

// PreemptHold: a returning higher-priority router defers to the live master
// until Ready or the hold's bound, but never delays a takeover from a dead
// master.
func TestPreemptHold(t *testing.T) {
	const interval = 100 * time.Millisecond
	setup := func(t *testing.T) (*sim, *simRouter, *simRouter) {
		s := newSim(t)
		b := s.add("10.9.0.3", testConfig(3, interval, 100))
		s.runFor(time.Second)
		s.onlyMaster(b)
		s.runFor(50 * time.Millisecond) // b advertises at +x.x60937500: a starts between
		cfg := testConfig(3, interval, 150)
		cfg.PreemptHold = 30 * time.Second
		a := s.add("10.9.0.2", cfg)
		return s, a, b
	}
	t.Run("bound", func(t *testing.T) {
		s, a, b := setup(t)
		start := s.clk.Now()
		if !a.Status().PreemptHeld {
			t.Fatal("status does not show the hold")
		}
		s.runUntil(start.Add(30 * time.Second))
		s.onlyMaster(b)
		s.runUntil(start.Add(30*time.Second + masterDownFor(150, interval)))
		s.onlyMaster(a)
		if a.Status().PreemptHeld {
			t.Fatal("status shows the hold after its bound")
		}
	})
	t.Run("ready", func(t *testing.T) {
		s, a, b := setup(t)
		s.runFor(5 * time.Second)
		s.onlyMaster(b)
		a.Ready()
		s.runFor(masterDownFor(150, interval) + interval)
		s.onlyMaster(a)
	})
	t.Run("ready before run", func(t *testing.T) {
		s := newSim(t)
		b := s.add("10.9.0.3", testConfig(3, interval, 100))
		s.runFor(time.Second)
		s.onlyMaster(b)
		cfg := testConfig(3, interval, 150)
		cfg.PreemptHold = 30 * time.Second
		conn := s.seg.Join(netip.MustParseAddr("10.9.0.2"))
		r, err := New(cfg, conn, s.clk)
		if err != nil {
			t.Fatal(err)
		}
		r.Ready()
		a := &simRouter{Router: r, conn: conn, running: true}
		s.routers = append(s.routers, a)
		r.start(s.clk.Now())
		s.runFor(time.Second)
		s.onlyMaster(a)
	})
	t.Run("held at run time", func(t *testing.T) {
		s := newSim(t)
		a := s.add("10.9.0.2", testConfig(3, interval, 150))
		b := s.add("10.9.0.3", testConfig(3, interval, 100))
		s.runFor(time.Second)
		a.Release()
		s.runFor(time.Second)
		s.onlyMaster(b)
		a.HoldPreemption(10 * time.Second)
		a.Unrelease()
		s.runFor(9 * time.Second)
		s.onlyMaster(b)
		s.runFor(time.Second + masterDownFor(150, interval) + interval)
		s.onlyMaster(a)
		// and Ready ends a hold early
		a.Release()
		s.runFor(time.Second)
		a.HoldPreemption(time.Minute)
		a.Unrelease()
		s.runFor(time.Second)
		s.onlyMaster(b)
		a.Ready()
		s.runFor(masterDownFor(150, interval) + interval)
		s.onlyMaster(a)
	})
	t.Run("master dies", func(t *testing.T) {
		s, a, b := setup(t)
		s.runFor(time.Second)
		s.kill(b)
		s.runFor(masterDownFor(150, interval) + interval)
		s.onlyMaster(a)
	})
}

func TestRejectedAdvertsCountedByReason(t *testing.T) {
	s := newSim(t)
	cfg := testConfig(2, time.Second, 100)
	r := s.add("10.9.0.2", cfg)
	other := netip.MustParseAddr("10.9.0.3")
	good := Advert{Version: 2, VRID: 51, Priority: 200, Interval: time.Second, Addresses: cfg.Addresses}
	send := func(a Advert, ttl uint8, edit func([]byte)) {
		b, err := a.Marshal(other, MulticastGroup)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(b)
		}
		s.seg.Inject(Packet{Payload: b, Src: other, Dst: MulticastGroup, TTL: ttl})
		s.settle()
	}
	with := func(edit func(*Advert)) Advert {
		a := good
		a.Addresses = append([]netip.Addr(nil), good.Addresses...)
		edit(&a)
		return a
	}
	send(good, 255, nil)
	send(good, 254, nil)
	send(with(func(a *Advert) { a.VRID = 52 }), 255, nil)
	send(with(func(a *Advert) { a.Addresses = a.Addresses[:1] }), 255, nil)
	send(with(func(a *Advert) { a.Addresses[1] = netip.MustParseAddr("10.9.0.102") }), 255, nil)
	send(with(func(a *Advert) { a.Interval = 2 * time.Second }), 255, nil)
	send(with(func(a *Advert) { a.Version, a.Interval = 3, 100*time.Millisecond }), 255, nil)
	send(good, 255, func(b []byte) { b[2]++ })
	send(good, 255, func(b []byte) { b[0] = 0x22 })
	want := map[string]uint64{"bad_ttl": 1, "vrid_mismatch": 1, "address_mismatch": 2, "interval_mismatch": 1, "bad_version": 1, "bad_checksum": 1, "bad_type": 1}
	st := r.Status()
	if st.Received != 1 || len(st.Rejected) != len(want) {
		t.Fatalf("received %d, rejected %v; want 1 and %v", st.Received, st.Rejected, want)
	}
	for reason, n := range want {
		if st.Rejected[reason] != n {
			t.Errorf("rejected[%s] = %d, want %d", reason, st.Rejected[reason], n)
		}
	}
	// The same list in another order is the same list (keepalived compares
	// them as sets).
	send(with(func(a *Advert) { a.Addresses[0], a.Addresses[1] = a.Addresses[1], a.Addresses[0] }), 255, nil)
	if st := r.Status(); st.Received != 2 {
		t.Fatalf("reordered addresses rejected: %v", st.Rejected)
	}

	// Unicast: only the peers are heard.
	cfg.Unicast, cfg.Peers = true, []netip.Addr{netip.MustParseAddr("10.9.0.4")}
	u := s.add("10.9.0.5", cfg)
	b, _ := good.Marshal(other, netip.MustParseAddr("10.9.0.5"))
	s.seg.Inject(Packet{Payload: b, Src: other, Dst: netip.MustParseAddr("10.9.0.5"), TTL: 64})
	s.settle()
	if got := u.Status().Rejected; got["unknown_peer"] != 1 {
		t.Fatalf("unicast rejected %v", got)
	}
	if !errors.Is(ErrUnknownPeer, ErrUnknownPeer) || RejectReason(errors.New("x")) != "other" {
		t.Fatal("RejectReason")
	}
}

// Three routers on a segment elect one master, the highest priority; when it
// dies the next one takes over; when it returns it takes the VIPs back.
func TestThreeRoutersElectOneMaster(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		s := newSim(t)
		addrs := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4"}
		prios := []int{100, 200, 150}
		var rs []*simRouter
		for i, addr := range addrs {
			cfg := testConfig(3, 100*time.Millisecond, prios[i])
			if unicast {
				cfg.Unicast = true
				for _, p := range addrs {
					if p != addr {
						cfg.Peers = append(cfg.Peers, netip.MustParseAddr(p))
					}
				}
			}
			rs = append(rs, s.add(addr, cfg))
		}
		for range 100 {
			s.runFor(50 * time.Millisecond)
			if len(s.masters()) > 1 {
				t.Fatalf("unicast %v: two masters", unicast)
			}
		}
		s.onlyMaster(rs[1])
		s.kill(rs[1])
		s.runFor(time.Second)
		s.onlyMaster(rs[2])
		rs[1].running = true
		rs[1].conn.SetDown(false)
		rs[1].start(s.clk.Now())
		s.runFor(time.Second)
		s.onlyMaster(rs[1])
		for _, r := range rs {
			if n := r.Status().Rejected; len(n) != 0 {
				t.Fatalf("unicast %v: %v rejected %v", unicast, r.local, n)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(3, 100*time.Millisecond, 100)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"vrid", func(c *Config) { c.VRID = 0 }},
		{"vrid", func(c *Config) { c.VRID = 256 }},
		{"version", func(c *Config) { c.Version = 1 }},
		{"advert_interval", func(c *Config) { c.Version, c.Interval = 2, 1500*time.Millisecond }},
		{"advert_interval", func(c *Config) { c.Version, c.Interval = 2, 256*time.Second }},
		{"advert_interval", func(c *Config) { c.Interval = 5 * time.Millisecond }},
		{"advert_interval", func(c *Config) { c.Interval = 105 * time.Millisecond }},
		{"advert_interval", func(c *Config) { c.Interval = 40960 * time.Millisecond }},
		{"priority", func(c *Config) { c.Priority = 0 }},
		{"priority", func(c *Config) { c.Priority = 256 }},
		{"preempt_delay", func(c *Config) { c.PreemptDelay = 1001 * time.Second }},
		{"preempt_delay", func(c *Config) { c.PreemptDelay = -time.Second }},
		{"preempt_hold", func(c *Config) { c.PreemptHold = -time.Second }},
		{"addresses", func(c *Config) { c.Addresses = nil }},
		{"addresses", func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("fe80::1")} }},
		{"addresses", func(c *Config) { c.Addresses = append(c.Addresses, c.Addresses[0]) }},
		{"peers", func(c *Config) { c.Unicast = true }},
		{"peers", func(c *Config) { c.Peers = []netip.Addr{MulticastGroup} }},
	} {
		c := ok
		tc.edit(&c)
		var ce *ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one on %s", c, err, tc.field)
		}
	}
	for _, c := range []Config{
		func() Config { c := ok; c.Version, c.Interval = 2, 255*time.Second; return c }(),
		func() Config { c := ok; c.Interval = 40950 * time.Millisecond; return c }(),
		func() Config { c := ok; c.Priority, c.PreemptDelay = 255, 1000*time.Second; return c }(),
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
