package healthcheck

import "time"

// entry is one target as the scheduler holds it. The fields below target
// and status are guarded by Manager.mu; fast is the loop's alone.
type entry struct {
	target  Target
	status  *Status
	onProbe ProbeObserver
	// fast is the prepared TCP connect of a TCPProber the poller can run
	// itself; nil runs the prober on a goroutine of its own per probe.
	fast *tcpFast

	// due is when the next probe should start; seq orders entries due at
	// the same instant by when they were scheduled.
	due   time.Time
	seq   uint64
	index int // in the heap; -1 when out of it
	// attempt counts the failed probes of the check under way, towards
	// Retry.
	attempt int
	running bool
	// removed is set when an Update dropped or replaced the target: the
	// result of a probe still running is then thrown away.
	removed bool
	// timer fires at due on the clock's scheduler (see chanPoller).
	timer <-chan time.Time
	// stalledDue is when the probe was due, and stalledAt when it first
	// could not start for a reason of the checker's own; zero otherwise.
	stalledDue, stalledAt time.Time
	// early is how long before its due time the probe under way started
	// (see Manager.startDue); its next due time adds it back.
	early time.Duration
}

// dueHeap orders entries by due time, then by seq: one timer for all the
// targets instead of one each.
type dueHeap []*entry

func (h dueHeap) less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}

func (h dueHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap) push(e *entry) {
	e.index = len(*h)
	*h = append(*h, e)
	h.up(e.index)
}

// pop removes and returns the earliest entry.
func (h *dueHeap) pop() *entry {
	return h.remove(0)
}

// remove takes out the entry at i.
func (h *dueHeap) remove(i int) *entry {
	old := *h
	last := len(old) - 1
	e := old[i]
	if i != last {
		h.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.index = -1
	return e
}

func (h dueHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sinks the entry at i and reports whether it moved.
func (h dueHeap) down(i int) bool {
	start := i
	for {
		child := 2*i + 1
		if child >= len(h) {
			break
		}
		if r := child + 1; r < len(h) && h.less(r, child) {
			child = r
		}
		if !h.less(child, i) {
			break
		}
		h.swap(i, child)
		i = child
	}
	return i > start
}
