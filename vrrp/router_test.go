package vrrp

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// The real loop: two routers' goroutines on a Segment and a fake clock. The
// fake clock moves in 10 ms steps while the loops run, so this checks the
// wiring (timers, packets, controls, Transitions, shutdown), not timing.
func TestRunTwoRouters(t *testing.T) {
	clk := clock.NewFake(t0)
	seg := NewSegment()
	start := func(addr string, prio int) (*Router, context.CancelFunc, <-chan []Transition) {
		r, err := New(testConfig(3, 100*time.Millisecond, prio), seg.Join(netip.MustParseAddr(addr)), clk)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go r.Run(ctx)
		all := make(chan []Transition, 1)
		go func() {
			var ts []Transition
			for tr := range r.Transitions() {
				ts = append(ts, tr)
			}
			all <- ts
		}()
		return r, cancel, all
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		giveUp := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(giveUp) {
				t.Fatalf("never: %s", what)
			}
			clk.Advance(10 * time.Millisecond)
			for range 20 {
				runtime.Gosched()
			}
		}
	}
	a, stopA, eventsA := start("10.9.0.2", 150)
	b, stopB, eventsB := start("10.9.0.3", 100)
	until("a master, b its backup", func() bool {
		return a.Status().State == StateMaster && b.Status().State == StateBackup && b.Status().MasterAddr == a.local
	})
	b.SetFault(true, "test")
	until("b in fault", func() bool { return b.Status().State == StateFault })
	b.SetFault(false, "")
	until("b back to backup", func() bool { return b.Status().State == StateBackup && b.Status().MasterAddr == a.local })

	stopA()
	var ta []Transition
	select {
	case ta = <-eventsA:
	case <-time.After(20 * time.Second):
		t.Fatal("a's Transitions never closed")
	}
	if last := ta[len(ta)-1]; last.From != StateMaster || last.To != StateInit || last.Reason != ReasonShutdown {
		t.Fatalf("a's last transition %+v", last)
	}
	until("b master", func() bool { return b.Status().State == StateMaster })
	if st := a.Status(); st.State != StateInit {
		t.Fatalf("a after Run: %v", st.State)
	}
	stopB()
	tb := <-eventsB
	var reasons []string
	for _, tr := range tb {
		reasons = append(reasons, tr.Reason)
	}
	// In this order, with maybe a short mastership of b's at the start or
	// after the fault, before it hears a again (the clock runs ahead of
	// the goroutines): b becomes master when a leaves (priority 0), unless
	// it already was.
	want := []string{ReasonStart, reasonFaultPrefix + "test", ReasonFaultCleared}
	rest := reasons
	for _, w := range want {
		for len(rest) > 0 && rest[0] != w {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			t.Fatalf("b's transitions %q, want %q in order", reasons, want)
		}
	}
	last := tb[len(tb)-1]
	if last.Reason != ReasonShutdown || last.From != StateMaster {
		t.Fatalf("b's transitions %q: want b master until its shutdown", reasons)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("a router ran twice")
	}
}
