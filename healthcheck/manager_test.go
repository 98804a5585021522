package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

var errRefused = errors.New("connection refused")

// scriptedProber answers from a switch the test flips, and records the fake
// time of every probe.
type scriptedProber struct {
	clock *clock.Fake
	mu    sync.Mutex
	fail  bool
	// failFirst fails this many probes after a flip to passing, then passes.
	failFirst int
	probes    []time.Duration
	start     time.Time
}

func (p *scriptedProber) set(fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

func (p *scriptedProber) Probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes = append(p.probes, p.clock.Now().Sub(p.start))
	if p.failFirst > 0 {
		p.failFirst--
		return errRefused
	}
	if p.fail {
		return errRefused
	}
	return nil
}

func (p *scriptedProber) times() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.probes)
}

type recorder struct {
	mu          sync.Mutex
	transitions []Transition
}

func (r *recorder) notify(t Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitions = append(r.transitions, t)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.transitions {
		out = append(out, fmt.Sprintf("%s %s→%s", t.Key, t.From, t.To))
	}
	return out
}

func (r *recorder) at(i int) Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.transitions[i]
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func target(key Key, p Prober) Target {
	return Target{Key: key, Prober: p, Interval: 5 * time.Second, ConnectTimeout: 3 * time.Second,
		Retry: 3, DelayBeforeRetry: 3 * time.Second, Rise: 2, Initial: Unknown}
}

// step advances the fake clock one second at a time, each time after every
// loop is parked on the clock, n seconds in all.
func step(clk *clock.Fake, parked, n int) {
	for range n {
		clk.BlockUntil(parked)
		clk.Advance(time.Second)
	}
	clk.BlockUntil(parked)
}

func TestFailureIsRetriedThenDownThenRise(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := &scriptedProber{clock: clk, start: epoch}
	rec := &recorder{}
	m := NewManager(clk, rec.notify)
	defer m.Stop()
	m.Update([]Target{target(Key{"amqp", "n1", "tcp"}, p)})

	step(clk, 1, 0)
	if got := rec.list(); !slices.Equal(got, []string{"amqp/n1/tcp unknown→up"}) {
		t.Fatalf("first check: %v", got)
	}

	// The server dies at 2 s: the check at 5 s fails, then three retries 3 s
	// apart; down at 14 s = interval + retry × delay_before_retry (the
	// probes fail instantly here).
	step(clk, 1, 2)
	p.set(true)
	step(clk, 1, 12)
	if st, _ := m.Status(Key{"amqp", "n1", "tcp"}); st.State != Down || !errors.Is(st.LastError, errRefused) {
		t.Fatalf("at 14 s: %+v, want down with the probe's error", st)
	}
	if got, want := p.times(), []time.Duration{0, 5e9, 8e9, 11e9, 14e9}; !slices.Equal(got, want) {
		t.Errorf("probe times %v, want %v", got, want)
	}
	if tr := rec.at(1); tr.At != epoch.Add(14*time.Second) || !errors.Is(tr.Err, errRefused) {
		t.Errorf("down transition %+v", tr)
	}

	// Back at 16 s: rise 2 needs the checks at 19 s and 24 s.
	step(clk, 1, 2)
	p.set(false)
	step(clk, 1, 5)
	if st, _ := m.Status(Key{"amqp", "n1", "tcp"}); st.State != Down || st.Passes != 1 {
		t.Fatalf("after one pass: %+v, want still down with 1 pass", st)
	}
	step(clk, 1, 5)
	if st, _ := m.Status(Key{"amqp", "n1", "tcp"}); st.State != Up || st.Since != epoch.Add(24*time.Second) {
		t.Fatalf("after two passes: %+v, want up since 24 s", st)
	}
}

func TestPassingRetryKeepsTheServerUp(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := &scriptedProber{clock: clk, start: epoch}
	rec := &recorder{}
	m := NewManager(clk, rec.notify)
	defer m.Stop()
	m.Update([]Target{target(Key{"amqp", "n1", "tcp"}, p)})
	step(clk, 1, 0)
	p.mu.Lock()
	p.failFirst = 2
	p.mu.Unlock()
	step(clk, 1, 5+3+3+5)
	if got := rec.list(); !slices.Equal(got, []string{"amqp/n1/tcp unknown→up"}) {
		t.Errorf("transitions %v: two failed probes and a passing retry must not take it down", got)
	}
}

func TestFirstChecksAreStaggered(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewManager(clk, nil)
	defer m.Stop()
	var probers []*scriptedProber
	var targets []Target
	for i := range 5 {
		p := &scriptedProber{clock: clk, start: epoch}
		probers = append(probers, p)
		targets = append(targets, target(Key{"svc", fmt.Sprintf("n%d", i), "tcp"}, p))
	}
	m.Update(targets)
	step(clk, 5, 5)
	for i, p := range probers {
		if got := p.times(); len(got) == 0 || got[0] != time.Duration(i)*time.Second {
			t.Errorf("target %d first probed at %v, want %s", i, got, time.Duration(i)*time.Second)
		}
	}
}

func TestUpdateKeepsStateOfPersistingTargetsAndStopsRemovedOnes(t *testing.T) {
	clk := clock.NewFake(epoch)
	down := &scriptedProber{clock: clk, start: epoch, fail: true}
	gone := &scriptedProber{clock: clk, start: epoch}
	m := NewManager(clk, nil)
	defer m.Stop()
	a := target(Key{"svc", "a", "tcp"}, down)
	a.Retry = 0
	m.Update([]Target{a, target(Key{"svc", "b", "tcp"}, gone)})
	step(clk, 2, 5)
	if st, _ := m.Status(Key{"svc", "a", "tcp"}); st.State != Down {
		t.Fatalf("svc/a = %s, want down", st.State)
	}

	// A reload changes a's interval and removes b.
	a.Interval = 7 * time.Second
	m.Update([]Target{a})
	if st, _ := m.Status(Key{"svc", "a", "tcp"}); st.State != Down {
		t.Errorf("svc/a after reload = %s, want its state kept (down)", st.State)
	}
	if _, ok := m.Status(Key{"svc", "b", "tcp"}); ok {
		t.Errorf("svc/b still reported after its removal")
	}
	before := len(gone.times())
	step(clk, 1, 20)
	if after := len(gone.times()); after != before {
		t.Errorf("svc/b probed %d more times after its removal", after-before)
	}
}

func TestStatusIsUnknownUntilFirstCheckUnlessSeeded(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewManager(clk, nil)
	defer m.Stop()
	seeded := target(Key{"svc", "adopted", "tcp"}, &scriptedProber{clock: clk, start: epoch, fail: true})
	seeded.Initial = Up
	later := target(Key{"svc", "new", "tcp"}, &scriptedProber{clock: clk, start: epoch})
	m.Update([]Target{seeded, later, target(Key{"svc", "third", "tcp"}, &scriptedProber{clock: clk, start: epoch})})
	if st, _ := m.Status(Key{"svc", "adopted", "tcp"}); st.State != Up {
		t.Errorf("seeded target = %s, want up until a check says otherwise", st.State)
	}
	if st, _ := m.Status(Key{"svc", "new", "tcp"}); st.State != Unknown {
		t.Errorf("new target = %s before its first check, want unknown", st.State)
	}
}

// A reload builds every prober afresh. A check through the VIP dials with a
// Control func (SO_MARK), and a func is never equal to its rebuilt self: the
// manager must compare the check's settings, not the built probers, or
// every reload restarts those loops and re-spreads their first checks.
func TestUpdateKeepsLoopsOfRebuiltMarkedProbers(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewManager(clk, nil)
	defer m.Stop()
	build := func() []Target {
		p := &TCPProber{Address: "127.0.0.1:5672", Dialer: MarkedDialer(0x4c560001, netip.MustParseAddr("127.0.0.1"))}
		tg := target(Key{"amqp", "rs1", "tcp"}, p)
		tg.Settings = struct {
			Address string
			Mark    uint32
		}{"127.0.0.1:5672", 0x4c560001}
		return []Target{tg}
	}
	m.Update(build())
	before := entryOf(m, Key{"amqp", "rs1", "tcp"})
	m.Update(build())
	if after := entryOf(m, Key{"amqp", "rs1", "tcp"}); after != before {
		t.Error("an unchanged check through the VIP was restarted by a reload")
	}
	changed := build()
	changed[0].Interval = 7 * time.Second
	m.Update(changed)
	if after := entryOf(m, Key{"amqp", "rs1", "tcp"}); after == before {
		t.Error("a check whose interval changed kept its old loop")
	}
}

// entryOf returns the scheduler's entry of a key.
func entryOf(m *Manager, key Key) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[key]
}

// Probes due within the slack start with the earliest, up to a twentieth of
// their interval early, and each target's next probe is due as if its own
// had started on time: batching the starts changes no target's cadence.
func TestProbesStartEarlyWithinTheSlackAndKeepTheirCadence(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := &Manager{clock: clk, poll: &chanPoller{clock: clk, early: 50 * time.Millisecond}}
	mk := func(name string, interval, due time.Duration) *entry {
		e := &entry{target: Target{Key: Key{"amqp", name, "tcp"}, Interval: interval, Rise: 1},
			status: &Status{}, fast: &tcpFast{}, index: -1}
		m.schedule(e, epoch.Add(due))
		return e
	}
	first := mk("first", time.Second, 0)
	within := mk("within", time.Second, 30*time.Millisecond)
	// A 200 ms interval lets it start 10 ms early at most.
	short := mk("short", 200*time.Millisecond, 30*time.Millisecond)
	beyond := mk("beyond", time.Second, 60*time.Millisecond)

	started := m.startDue(epoch, nil)
	if !slices.Equal(started, []*entry{first, within}) {
		t.Fatalf("started %d entries, want first and within", len(started))
	}
	if first.early != 0 || within.early != 30*time.Millisecond {
		t.Errorf("head starts %v and %v, want 0 and 30ms", first.early, within.early)
	}
	// Both pass 5 ms later: each is next due an interval after it would
	// have ended had it started on time.
	end := epoch.Add(5 * time.Millisecond)
	m.finish(result{e: first, at: end})
	m.finish(result{e: within, at: end})
	if want := end.Add(time.Second); !first.due.Equal(want) {
		t.Errorf("first next due %v, want %v", first.due.Sub(epoch), want.Sub(epoch))
	}
	if want := end.Add(time.Second + 30*time.Millisecond); !within.due.Equal(want) {
		t.Errorf("within next due %v, want %v", within.due.Sub(epoch), want.Sub(epoch))
	}
	if short.index < 0 || beyond.index < 0 {
		t.Error("an entry beyond its slack left the heap")
	}
	// A failed probe retried: delay_before_retry from when it would have
	// ended.
	retried := mk("retried", time.Second, 1040*time.Millisecond)
	retried.target.Retry, retried.target.DelayBeforeRetry = 1, time.Second
	m.heap.remove(short.index)
	m.heap.remove(beyond.index)
	now := epoch.Add(time.Second + 5*time.Millisecond)
	m.startDue(now, nil)
	m.finish(result{e: retried, at: now, err: errRefused})
	if want := now.Add(time.Second + 35*time.Millisecond); !retried.due.Equal(want) {
		t.Errorf("retry due %v, want %v", retried.due.Sub(epoch), want.Sub(epoch))
	}
}
