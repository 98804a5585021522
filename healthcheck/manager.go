package healthcheck

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// Target is one thing to check: a real server of a service.
type Target struct {
	// Key identifies the target across reloads.
	Key    Key
	Prober Prober
	// Settings is what Prober was built from, as plain data (no funcs):
	// Update compares it, not the built Prober, whose dialer may hold a
	// Control func that is never equal to its rebuilt self. A target
	// without Settings is compared by its Prober.
	Settings any
	// Interval is the time between the end of a check and the next one.
	Interval time.Duration
	// ConnectTimeout bounds each probe.
	ConnectTimeout time.Duration
	// Retry is how many times a failed probe is retried, DelayBeforeRetry
	// apart, before the check fails.
	Retry            int
	DelayBeforeRetry time.Duration
	// Rise is how many passing checks in a row bring a down target back.
	Rise int
	// Initial is the state of a new target before its first check.
	Initial State
}

// Transition is a change of a target's state.
type Transition struct {
	Key      Key
	From, To State
	// Err is the error of the check that failed, nil for a pass.
	Err error
	At  time.Time
}

// Manager runs the checks of a set of targets, one goroutine each.
type Manager struct {
	clock  clock.Clock
	notify func(Transition)
	// onProbe, when set, is told of every probe; loops copy it when they
	// start.
	onProbe ProbeObserver

	mu     sync.Mutex
	loops  map[Key]*loop
	status map[Key]*Status
	wg     sync.WaitGroup
}

type loop struct {
	target  Target
	onProbe ProbeObserver
	ctx     context.Context
	cancel  context.CancelFunc
}

// ProbeObserver is told of each probe of a target, retries included: how
// long it took and its error, nil for a pass. It is called from the
// checking goroutine and must not block for long.
type ProbeObserver func(key Key, latency time.Duration, err error)

// NewManager returns a manager with no targets. notify is called, from the
// checking goroutine, on every state change; it must not block for long.
func NewManager(clk clock.Clock, notify func(Transition)) *Manager {
	return &Manager{clock: clk, notify: notify, loops: map[Key]*loop{}, status: map[Key]*Status{}}
}

// OnProbe makes f the observer of every probe. Call it before Update: a loop
// takes the observer in force when it starts.
func (m *Manager) OnProbe(f ProbeObserver) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onProbe = f
}

// Update makes targets the set being checked. A target whose key was already
// checked keeps its state (a reload does not reset health), and keeps its
// loop unless its settings changed; removed targets stop; new ones start
// with their Initial state, their first checks spread over one interval so
// that a thousand servers are not all probed at once.
func (m *Manager) Update(targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted := make(map[Key]bool, len(targets))
	var starting []Target
	for _, t := range targets {
		wanted[t.Key] = true
		if l, ok := m.loops[t.Key]; ok {
			if sameCheck(l.target, t) {
				continue
			}
			l.cancel() // new settings: a new loop, the same state
		} else {
			m.status[t.Key] = &Status{State: t.Initial, Since: m.clock.Now()}
		}
		starting = append(starting, t)
	}
	for i, t := range starting {
		m.start(t, time.Duration(i)*t.Interval/time.Duration(len(starting)))
	}
	for key, l := range m.loops {
		if !wanted[key] {
			l.cancel()
			delete(m.loops, key)
			delete(m.status, key)
		}
	}
}

// sameCheck reports whether b checks exactly as a does, so that a's loop
// can go on.
func sameCheck(a, b Target) bool {
	if a.Interval != b.Interval || a.ConnectTimeout != b.ConnectTimeout || a.Retry != b.Retry ||
		a.DelayBeforeRetry != b.DelayBeforeRetry || a.Rise != b.Rise {
		return false
	}
	if a.Settings == nil && b.Settings == nil {
		return reflect.DeepEqual(a.Prober, b.Prober)
	}
	return reflect.DeepEqual(a.Settings, b.Settings)
}

// start runs a loop for t whose first check comes after delay. m.mu is held.
func (m *Manager) start(t Target, delay time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{target: t, onProbe: m.onProbe, ctx: ctx, cancel: cancel}
	m.loops[t.Key] = l
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(l, delay)
	}()
}

// Status returns the state of one target.
func (m *Manager) Status(key Key) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.status[key]
	if !ok {
		return Status{}, false
	}
	return *st, true
}

// Snapshot returns the state of every target.
func (m *Manager) Snapshot() map[Key]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]Status, len(m.status))
	for k, st := range m.status {
		out[k] = *st
	}
	return out
}

// Stop stops every check and waits for the loops to end.
func (m *Manager) Stop() {
	m.mu.Lock()
	for key, l := range m.loops {
		l.cancel()
		delete(m.loops, key)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Manager) run(l *loop, delay time.Duration) {
	for m.sleep(l.ctx, delay) {
		err, latency := m.check(l)
		if l.ctx.Err() != nil {
			return
		}
		m.record(l, err, latency)
		delay = l.target.Interval
	}
}

// check probes, and retries a failed probe, as keepalived's TCP_CHECK does.
func (m *Manager) check(l *loop) (err error, latency time.Duration) {
	t := l.target
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(l.ctx, t.ConnectTimeout)
		start := time.Now()
		err = t.Prober.Probe(ctx)
		latency = time.Since(start)
		cancel()
		// A probe cut short by a stopped or replaced loop measured nothing.
		if l.onProbe != nil && l.ctx.Err() == nil {
			l.onProbe(t.Key, latency, err)
		}
		if err == nil || attempt >= t.Retry || !m.sleep(l.ctx, t.DelayBeforeRetry) {
			return err, latency
		}
	}
}

// record feeds a check result to the target's state machine, unless the loop
// was replaced or stopped meanwhile.
func (m *Manager) record(l *loop, err error, latency time.Duration) {
	m.mu.Lock()
	if m.loops[l.target.Key] != l {
		m.mu.Unlock()
		return
	}
	st := m.status[l.target.Key]
	from := st.State
	now := m.clock.Now()
	st.Latency = latency
	changed := st.Observe(err, l.target.Rise, now)
	to := st.State
	m.mu.Unlock()
	if changed && m.notify != nil {
		m.notify(Transition{Key: l.target.Key, From: from, To: to, Err: err, At: now})
	}
}

// sleep waits d on the clock; false if the loop was stopped meanwhile.
func (m *Manager) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-m.clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
