package healthcheck

import (
	"context"
	"fmt"
	"log/slog"
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
	// ConnectTimeout bounds each probe, from when its connect starts.
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

// ProbeObserver is told of each probe of a target, retries included: how
// long it took and its error, nil for a pass. It is called from the
// scheduler and must not block for long.
type ProbeObserver func(key Key, latency time.Duration, err error)

// lagPeriod is how often the checker's lateness is summed up: Lag reports
// the worst of the last one or two periods, and a warning is logged at most
// once a period.
const lagPeriod = 10 * time.Second

// localRetryDelay is how long a probe that could not start for want of a
// local resource (file descriptors, memory, ephemeral ports) waits before it
// tries again. It is the checker's shortage, not the server's: it shows as
// lateness, and fails the probe only if it lasts the probe's whole
// connect_timeout (a shortage that never ends must not hide a server's
// state for ever).
const localRetryDelay = 50 * time.Millisecond

// earlyShare bounds how early a probe may start with others: by its
// interval over earlyShare at most, whatever the poller's slack.
const earlyShare = 20

// startBatch bounds the probes the scheduler starts before it looks at its
// sockets again: a checker running late does not start thousands of
// connects before it reads the answers of the first.
const startBatch = 64

// Manager runs the checks of a set of targets on one scheduler goroutine
// over a heap of due times. TCP checks take a fast path on Linux: the
// scheduler connects non-blocking sockets itself and waits for them on
// epoll, so a check costs no goroutine, no timer and no allocation, and
// keeps its socket from one probe to the next (one open descriptor per TCP
// check, given up under the open-file limit). Other probers run on a
// goroutine per probe.
//
// The fast path needs the real clock (it waits on epoll); with a fake
// clock every prober runs on a goroutine, and the scheduler waits on the
// clock.
type Manager struct {
	clock  clock.Clock
	notify func(Transition)

	mu sync.Mutex
	// onProbe is copied into each target when Update starts it.
	onProbe ProbeObserver
	log     *slog.Logger
	entries map[Key]*entry
	status  map[Key]*Status
	heap    dueHeap
	seq     uint64
	// pending are results of goroutine probes, for the scheduler to apply.
	pending []result
	// inflight counts goroutine probes not yet applied.
	inflight int
	// stir counts the wake-ups asked of the scheduler; parked is true while
	// it waits having seen them all, with nothing to do but its timer
	// (tests wait for that before they move a fake clock).
	stir    uint64
	parked  bool
	stopped bool
	lag     lagMeter

	poll    poller
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	running bool

	// dropped are the removed entries of the fast path, for the scheduler
	// to tell the poller of.
	dropped []*entry
	// done are the results of fast probes; the scheduler's alone.
	done []result
	// emit holds what to tell notify and the observers once m.mu is let go;
	// the scheduler's alone.
	emit []event
}

// result is the outcome of one probe.
type result struct {
	e       *entry
	err     error
	latency time.Duration
	at      time.Time
	// local marks a probe that could not start for a reason of the
	// checker's own: not a check result.
	local bool
}

// event is a probe or a transition to report outside the lock.
type event struct {
	observe    ProbeObserver
	key        Key
	latency    time.Duration
	err        error
	transition *Transition
	tr         Transition
}

// poller waits for the scheduler: for its next due time, a wake-up, and on
// the fast path the sockets of its probes.
type poller interface {
	// prepare returns the fast path's form of p, or nil when p runs on a
	// goroutine.
	prepare(p Prober) *tcpFast
	// start begins a fast probe; its result comes back through
	// Manager.done.
	start(e *entry)
	// scheduled is told of every entry put on the heap. Manager.mu is held.
	scheduled(e *entry)
	// forget lets go of what a removed entry kept between its probes (the
	// fast path's socket). Called from the scheduler, Manager.mu not held.
	forget(e *entry)
	// slack is how early an entry may start with others due before it.
	slack() time.Duration
	// park readies the wait for the heap's earliest entry. Manager.mu is
	// held, and the scheduler's observers and notify have been told all
	// there was to tell: a test that counts the fake clock's timers sees
	// them only once the transitions are out.
	park(m *Manager)
	// wait blocks until the armed time, a wake-up or a socket's event, and
	// handles the sockets' events and timeouts.
	wait(hurry bool)
	// wake makes wait return; any goroutine may call it.
	wake()
	// close lets go of every socket; the scheduler calls it when it ends.
	close()
	// release lets go of the poller itself, once the scheduler and every
	// probe goroutine have ended.
	release()
}

// NewManager returns a manager with no targets. notify is called, from the
// scheduler goroutine, on every state change; it must not block for long.
func NewManager(clk clock.Clock, notify func(Transition)) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{clock: clk, notify: notify, entries: map[Key]*entry{}, status: map[Key]*Status{}, ctx: ctx, cancel: cancel}
}

// OnProbe makes f the observer of every probe. Call it before Update: a
// target takes the observer in force when it starts.
func (m *Manager) OnProbe(f ProbeObserver) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onProbe = f
}

// SetLogger makes the manager warn on log, at most once every ten seconds,
// when checks started late because the checker could not keep up.
func (m *Manager) SetLogger(log *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = log
}

// Lag returns the longest a probe waited past its due time over the last
// ten to twenty seconds: near zero while the checker keeps up. An
// overloaded checker does not fail checks, it stretches every interval
// evenly by about this much.
func (m *Manager) Lag() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.lag.cur, m.lag.prev)
}

// Update makes targets the set being checked. A target whose key was already
// checked keeps its state (a reload does not reset health), and keeps its
// schedule unless its settings changed; removed targets stop; new ones start
// with their Initial state, their first checks spread over one interval so
// that a thousand servers are not all probed at once.
func (m *Manager) Update(targets []Target) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.startLocked()
	now := m.clock.Now()
	wanted := make(map[Key]bool, len(targets))
	var starting []*entry
	for _, t := range targets {
		wanted[t.Key] = true
		old, ok := m.entries[t.Key]
		if ok && sameCheck(old.target, t) {
			continue
		}
		if ok {
			m.drop(old) // new settings: a new schedule, the same state
		} else {
			m.status[t.Key] = &Status{State: t.Initial, Since: now}
		}
		e := &entry{target: t, status: m.status[t.Key], onProbe: m.onProbe, fast: m.poll.prepare(t.Prober), index: -1}
		m.entries[t.Key] = e
		starting = append(starting, e)
	}
	for i, e := range starting {
		m.schedule(e, now.Add(time.Duration(i)*e.target.Interval/time.Duration(len(starting))))
	}
	for key, e := range m.entries {
		if !wanted[key] {
			m.drop(e)
			delete(m.entries, key)
			delete(m.status, key)
		}
	}
	m.stirLocked()
	m.mu.Unlock()
	m.poll.wake()
}

// startLocked starts the scheduler on the first Update. m.mu is held.
func (m *Manager) startLocked() {
	if m.running {
		return
	}
	m.running = true
	m.poll = newPoller(m)
	m.wg.Add(1)
	go m.run()
}

// drop takes e off the schedule; a probe of it still running is ignored.
func (m *Manager) drop(e *entry) {
	e.removed = true
	if e.index >= 0 {
		m.heap.remove(e.index)
	}
	if e.fast != nil {
		m.dropped = append(m.dropped, e)
	}
}

// schedule makes e due at due. m.mu is held.
func (m *Manager) schedule(e *entry, due time.Time) {
	m.seq++
	e.due, e.seq = due, m.seq
	m.heap.push(e)
	m.poll.scheduled(e)
}

// sameCheck reports whether b checks exactly as a does, so that a's
// schedule can go on.
func sameCheck(a, b Target) bool {
	if a.Interval != b.Interval || a.ConnectTimeout != b.ConnectTimeout || a.Retry != b.Retry ||
		a.DelayBeforeRetry != b.DelayBeforeRetry || a.Rise != b.Rise {
		return false
	}
	if a.Settings == nil && b.Settings == nil {
		return reflect.DeepEqual(a.Prober, b.Prober)
	}
	if e, ok := a.Settings.(SettingsEqualer); ok {
		return e.Equal(b.Settings)
	}
	return reflect.DeepEqual(a.Settings, b.Settings)
}

// SettingsEqualer is Target.Settings that compares itself with another
// target's Settings faster than reflect.DeepEqual, which a reload would
// otherwise run once per check (10,000 of them at the scale of
// docs/benchmarks.md). Equal must agree with reflect.DeepEqual.
type SettingsEqualer interface {
	Equal(other any) bool
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

// Stop stops every check and waits for the scheduler and the probes to end.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	for key, e := range m.entries {
		m.drop(e)
		delete(m.entries, key)
	}
	running := m.running
	m.mu.Unlock()
	m.cancel()
	if running {
		m.poll.wake()
	}
	m.wg.Wait()
	if running {
		m.poll.release()
	}
}

// run is the scheduler: it applies the results in, starts the probes that
// are due, and waits for the next due time or an event.
func (m *Manager) run() {
	defer m.wg.Done()
	var starts, dropped []*entry
	for {
		m.mu.Lock()
		if m.stopped {
			m.mu.Unlock()
			m.poll.close()
			return
		}
		seen := m.stir
		m.parked = false
		now := m.clock.Now()
		m.applyResults()
		starts = m.startDue(now, starts[:0])
		dropped, m.dropped = m.dropped, dropped[:0]
		m.mu.Unlock()

		for i, e := range dropped {
			m.poll.forget(e)
			dropped[i] = nil
		}
		m.emitEvents()
		for i, e := range starts {
			m.poll.start(e)
			starts[i] = nil
		}
		hurry := len(m.done) > 0 || len(starts) == startBatch
		m.mu.Lock()
		m.poll.park(m)
		m.parked = !hurry && m.stir == seen
		m.mu.Unlock()
		m.poll.wait(hurry)
	}
}

// stirLocked tells the scheduler there is something new for it. m.mu is
// held; call poll.wake after letting it go.
func (m *Manager) stirLocked() {
	m.stir++
	m.parked = false
}

// applyResults feeds the probes' results to their targets. m.mu is held.
func (m *Manager) applyResults() {
	for i, r := range m.pending {
		m.inflight--
		m.finish(r)
		m.pending[i] = result{}
	}
	m.pending = m.pending[:0]
	for i, r := range m.done {
		m.finish(r)
		m.done[i] = result{}
	}
	m.done = m.done[:0]
}

// finish applies one probe's result: a failed probe with retries left is
// retried DelayBeforeRetry later; otherwise the check's result goes to the
// state machine and the next check is due Interval after this one ended,
// as keepalived's TCP_CHECK does. m.mu is held.
func (m *Manager) finish(r result) {
	e := r.e
	e.running = false
	if e.removed {
		return // a probe cut short by a stopped or replaced target measured nothing
	}
	if r.local {
		if e.stalledDue.IsZero() {
			e.stalledDue, e.stalledAt = e.due, r.at
		}
		if r.at.Sub(e.stalledAt) < e.target.ConnectTimeout {
			m.schedule(e, r.at.Add(localRetryDelay))
			return
		}
		r.err = fmt.Errorf("tcp check: no probe could start within connect_timeout %v: %w", e.target.ConnectTimeout, r.err)
	}
	e.stalledDue, e.stalledAt = time.Time{}, time.Time{}
	if e.onProbe != nil {
		m.emit = append(m.emit, event{observe: e.onProbe, key: e.target.Key, latency: r.latency, err: r.err})
	}
	// A probe started early with others is timed as if it had started on
	// time: its target keeps its cadence, and runs no more probes than
	// its settings say.
	early := e.early
	e.early = 0
	if r.err != nil && e.attempt < e.target.Retry {
		e.attempt++
		m.schedule(e, r.at.Add(e.target.DelayBeforeRetry+early))
		return
	}
	e.attempt = 0
	st := e.status
	from := st.State
	st.Latency = r.latency
	if st.Observe(r.err, e.target.Rise, r.at) && m.notify != nil {
		m.emit = append(m.emit, event{transition: &Transition{}, tr: Transition{Key: e.target.Key, From: from, To: st.State, Err: r.err, At: r.at}})
	}
	m.schedule(e, r.at.Add(e.target.Interval+early))
}

// startDue takes the due entries off the heap, in order, and starts their
// probes: goroutine probes at once, fast ones returned for the caller to
// start once m.mu is let go; startBatch at most. Entries due within the
// poller's slack (at most a twentieth of their interval) start with them,
// early, so that a thousand checks a second wake the scheduler twenty
// times, not a thousand; finish adds the head start back to their next
// due time. m.mu is held.
func (m *Manager) startDue(now time.Time, starts []*entry) []*entry {
	slack := m.poll.slack()
	for n := 0; n < startBatch && len(m.heap) > 0; n++ {
		early := max(0, m.heap[0].due.Sub(now))
		if early > min(slack, m.heap[0].target.Interval/earlyShare) {
			break
		}
		e := m.heap.pop()
		e.early = early
		due := e.due
		if !e.stalledDue.IsZero() {
			due = e.stalledDue // lateness counts from when the probe was first due
		}
		late := max(0, now.Sub(due))
		e.status.Lateness = late
		m.lag.note(now, late, e.target.Interval, m.log)
		e.running = true
		if e.fast != nil {
			starts = append(starts, e)
			continue
		}
		m.inflight++
		m.wg.Add(1)
		go m.probe(e)
	}
	return starts
}

// probe runs a prober on a goroutine of its own. Its connect_timeout starts
// when the goroutine runs, not when the probe was due.
func (m *Manager) probe(e *entry) {
	defer m.wg.Done()
	ctx, cancel := context.WithTimeout(m.ctx, e.target.ConnectTimeout)
	start := time.Now()
	err := e.target.Prober.Probe(ctx)
	latency := time.Since(start)
	cancel()
	m.mu.Lock()
	m.pending = append(m.pending, result{e: e, err: err, latency: latency, at: m.clock.Now()})
	m.stirLocked()
	m.mu.Unlock()
	m.poll.wake()
}

// emitEvents tells the observers and notify what the last results said, in
// order, without m.mu held.
func (m *Manager) emitEvents() {
	for i, ev := range m.emit {
		if ev.transition != nil {
			m.notify(ev.tr)
		} else {
			ev.observe(ev.key, ev.latency, ev.err)
		}
		m.emit[i] = event{}
	}
	m.emit = m.emit[:0]
}

// lagMeter keeps the worst lateness of probe starts over the current and
// the previous period.
type lagMeter struct {
	periodStart time.Time
	cur, prev   time.Duration
	// late counts the probes of the period that started more than a tenth
	// of their interval after they were due; started counts them all.
	late, started int
}

func (l *lagMeter) note(now time.Time, late, interval time.Duration, log *slog.Logger) {
	if l.periodStart.IsZero() {
		l.periodStart = now
	}
	if now.Sub(l.periodStart) >= lagPeriod {
		if l.late > 0 && log != nil {
			log.Warn("health checks start late: the checker cannot keep up, so every interval is stretched (no check fails for it)",
				"late_probes", l.late, "probes", l.started, "max_lateness", l.cur.Round(time.Millisecond), "period", now.Sub(l.periodStart).Round(time.Second))
		}
		l.prev, l.cur = l.cur, 0
		l.late, l.started = 0, 0
		l.periodStart = now
	}
	l.started++
	if late > l.cur {
		l.cur = late
	}
	if late > interval/10 {
		l.late++
	}
}
