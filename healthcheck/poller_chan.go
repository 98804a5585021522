package healthcheck

import (
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// chanPoller waits on the manager's clock and runs every prober on a
// goroutine: the scheduler of a fake clock, and of systems without the
// epoll fast path. Each scheduled entry holds a timer of the clock, as a
// loop per target did: a test that waits until the fake clock has one
// timer per check (clock.Fake.BlockUntil) knows every check is parked.
type chanPoller struct {
	clock clock.Clock
	woken chan struct{}
	// fresh are the entries scheduled since the last park, still without
	// their timer.
	fresh []*entry
	// timer is the earliest entry's: the scheduler waits on it.
	timer <-chan time.Time
	// early is the slack, none but in tests of it.
	early time.Duration
}

func newChanPoller(clk clock.Clock) *chanPoller {
	return &chanPoller{clock: clk, woken: make(chan struct{}, 1)}
}

func (p *chanPoller) prepare(Prober) *tcpFast { return nil }

func (p *chanPoller) start(*entry) { panic("healthcheck: a fast probe on the clock's scheduler") }

func (p *chanPoller) scheduled(e *entry) {
	e.timer = nil
	p.fresh = append(p.fresh, e)
}

func (p *chanPoller) forget(*entry) {}

// slack is none unless a test of it sets early: on a fake clock every
// probe starts when it is due, to the nanosecond a test expects.
func (p *chanPoller) slack() time.Duration { return p.early }

func (p *chanPoller) park(m *Manager) {
	now := p.clock.Now()
	for i, e := range p.fresh {
		if e.index >= 0 && e.timer == nil {
			e.timer = p.clock.After(e.due.Sub(now))
		}
		p.fresh[i] = nil
	}
	p.fresh = p.fresh[:0]
	p.timer = nil
	if len(m.heap) > 0 {
		p.timer = m.heap[0].timer
	}
}

func (p *chanPoller) wait(hurry bool) {
	if hurry {
		return
	}
	select {
	case <-p.timer:
	case <-p.woken:
	}
}

func (p *chanPoller) wake() {
	select {
	case p.woken <- struct{}{}:
	default:
	}
}

func (p *chanPoller) close() {}

func (p *chanPoller) release() {}
