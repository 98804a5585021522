package healthcheck

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

func TestDueHeapPopsByDueThenBySchedulingOrder(t *testing.T) {
	var h dueHeap
	dues := []int{5, 1, 3, 1, 9, 0, 3, 7, 1, 2}
	for i, d := range dues {
		h.push(&entry{due: epoch.Add(time.Duration(d) * time.Second), seq: uint64(i), target: Target{Key: Key{"s", fmt.Sprint(i), "c"}}})
	}
	// Take one out of the middle, as a reload dropping a target does.
	var dropped *entry
	for _, e := range h {
		if e.target.Key.RealServer == "6" {
			dropped = e
		}
	}
	h.remove(dropped.index)
	if dropped.index != -1 {
		t.Errorf("a removed entry keeps index %d", dropped.index)
	}
	var got []string
	for len(h) > 0 {
		e := h.pop()
		got = append(got, fmt.Sprintf("%s@%d", e.target.Key.RealServer, e.due.Sub(epoch)/time.Second))
	}
	want := []string{"5@0", "1@1", "3@1", "8@1", "9@2", "2@3", "0@5", "7@7", "4@9"}
	if !slices.Equal(got, want) {
		t.Errorf("pop order %v, want %v", got, want)
	}
}

// dues returns the due times of the entries waiting on the heap, by key,
// as offsets from epoch.
func dues(m *Manager) map[string]time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Duration{}
	for _, e := range m.heap {
		out[e.target.Key.RealServer] = e.due.Sub(epoch)
	}
	return out
}

func TestFirstChecksSpreadOverOneIntervalAndStaySpreadAcrossReloads(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewManager(clk, nil)
	defer m.Stop()
	build := func(n int) []Target {
		var ts []Target
		for i := range n {
			tg := target(Key{"svc", fmt.Sprint(i), "tcp"}, &scriptedProber{clock: clk, start: epoch})
			tg.Interval = 10 * time.Second
			tg.Settings = i // compared instead of the prober, which a probe may hold locked
			ts = append(ts, tg)
		}
		return ts
	}
	m.Update(build(10))
	clk.BlockUntil(9) // target 0 is probed at once; the nine others wait
	first := dues(m)
	for i := 1; i < 10; i++ {
		if got, want := first[fmt.Sprint(i)], time.Duration(i)*time.Second; got != want {
			t.Errorf("target %d first due at %v, want %v (one interval over ten targets)", i, got, want)
		}
	}
	// A reload that changes nothing and one that adds two targets leave the
	// schedule of the others as it was; the new ones spread among themselves.
	m.Update(build(10))
	m.Update(build(12))
	clk.BlockUntil(10)
	after := dues(m)
	for i := 1; i < 10; i++ {
		if after[fmt.Sprint(i)] != first[fmt.Sprint(i)] {
			t.Errorf("target %d moved from %v to %v by a reload", i, first[fmt.Sprint(i)], after[fmt.Sprint(i)])
		}
	}
	if got := after["11"]; got != 5*time.Second {
		t.Errorf("the second of two new targets due at %v, want 5s (half of one interval)", got)
	}
}

// A checker that runs late starts the probe late, counts it, and schedules
// the next check one interval after this one ended: intervals stretch, they
// do not bunch up, and nothing fails for it.
func TestLateProbesAreCountedAndStretchTheInterval(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := &scriptedProber{clock: clk, start: epoch}
	rec := &recorder{}
	m := NewManager(clk, rec.notify)
	var logs bytes.Buffer
	m.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	defer m.Stop()
	key := Key{"amqp", "n1", "tcp"}
	m.Update([]Target{target(key, p)})
	step(clk, 1, 0)
	if lag := m.Lag(); lag != 0 {
		t.Fatalf("lag %v before anything ran late", lag)
	}

	// The checker gets the CPU back 3 s after the probe due at 5 s.
	clk.BlockUntil(1)
	clk.Advance(8 * time.Second)
	step(clk, 1, 0)
	if st, _ := m.Status(key); st.Lateness != 3*time.Second {
		t.Errorf("Status.Lateness = %v, want 3s", st.Lateness)
	}
	if lag := m.Lag(); lag != 3*time.Second {
		t.Errorf("Lag = %v, want 3s", lag)
	}
	step(clk, 1, 5)
	if got, want := p.times(), []time.Duration{0, 8e9, 13e9}; !slices.Equal(got, want) {
		t.Errorf("probe times %v, want %v: the next check one interval after the late one", got, want)
	}
	if st, _ := m.Status(key); st.Lateness != 0 {
		t.Errorf("a probe on time left Status.Lateness = %v", st.Lateness)
	}
	if got := rec.list(); !slices.Equal(got, []string{"amqp/n1/tcp unknown→up"}) {
		t.Errorf("transitions %v: lateness must not take a server down", got)
	}

	// The period with the late probe is summed up once, when the next one
	// starts; after two periods on time the lag is gone.
	step(clk, 1, 10)
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings after one late period, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "max_lateness=3s") {
		t.Errorf("the warning does not say how late:\n%s", logs.String())
	}
	step(clk, 1, 20)
	if lag := m.Lag(); lag != 0 {
		t.Errorf("Lag = %v two periods after the last late probe, want 0", lag)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want still 1: periods on time say nothing", n)
	}
}

// A failed probe is retried DelayBeforeRetry after it ended; the check
// fails only when every retry failed; a passing retry ends the check.
func TestRetriesAreScheduledFromTheFailedProbe(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := &scriptedProber{clock: clk, start: epoch, failFirst: 2}
	rec := &recorder{}
	m := NewManager(clk, rec.notify)
	defer m.Stop()
	tg := target(Key{"amqp", "n1", "tcp"}, p)
	tg.Retry, tg.DelayBeforeRetry, tg.Interval = 2, 2*time.Second, 5*time.Second
	tg.Initial = Up
	m.Update([]Target{tg})
	step(clk, 1, 12)
	// Probes at 0 (fails), 2 (fails), 4 (passes: the check passes), then
	// the next check at 4+5 = 9.
	if got, want := p.times(), []time.Duration{0, 2e9, 4e9, 9e9}; !slices.Equal(got, want) {
		t.Errorf("probe times %v, want %v", got, want)
	}
	if got := rec.list(); len(got) != 0 {
		t.Errorf("transitions %v: a passing retry keeps an up server up", got)
	}
}

// A probe the checker could not start (no descriptor, no local port) is
// tried again soon and counts as lateness, not as a failed check, unless
// the shortage outlasts the probe's connect_timeout.
func TestALocalShortageDelaysTheProbeAndFailsItOnlyAfterConnectTimeout(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := NewManager(clk, nil)
	m.poll = newChanPoller(clk) // the scheduler itself is not running: finish is driven by hand
	tg := target(Key{"amqp", "n1", "tcp"}, &scriptedProber{clock: clk, start: epoch})
	tg.Initial, tg.ConnectTimeout, tg.Retry = Up, 200*time.Millisecond, 0
	st := &Status{State: Up}
	e := &entry{target: tg, status: st, index: -1, due: epoch}
	short := errors.New("connect: cannot assign requested address")

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, at := range []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond} {
		m.finish(result{e: e, err: short, at: epoch.Add(at), local: true})
		if e.index < 0 || e.due != epoch.Add(at+localRetryDelay) {
			t.Fatalf("shortage %d: due %v (on the heap: %v), want %v", i, e.due.Sub(epoch), e.index >= 0, at+localRetryDelay)
		}
		if st.State != Up || st.LastError != nil {
			t.Fatalf("shortage %d: status %+v: a shortage of the checker is not a failed check", i, st)
		}
		m.heap.remove(e.index)
	}
	// Lateness counts from when the probe was first due.
	m.schedule(e, epoch.Add(200*time.Millisecond))
	m.startDue(epoch.Add(300*time.Millisecond), nil)
	if st.Lateness != 300*time.Millisecond {
		t.Errorf("lateness %v, want 300ms (from the first due time)", st.Lateness)
	}
	// Still short a whole connect_timeout after the first try: the probe fails.
	m.finish(result{e: e, err: short, at: epoch.Add(250 * time.Millisecond), local: true})
	if st.State != Down || !errors.Is(st.LastError, short) {
		t.Errorf("status %+v after a shortage as long as connect_timeout, want down with the error", st)
	}
}
