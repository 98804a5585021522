package vrrp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// Transition is a role change, or (From == To == StateMaster, Reason
// ReasonSplitBrain) a master's request to re-announce itself: bind the VIPs
// if needed and send gratuitous ARP again.
type Transition struct {
	From, To State
	Reason   string
	At       time.Time
	// MasterAddr is the master's primary address as known after the
	// transition: ours on becoming master, the advertiser's when a
	// higher-priority master made us backup, invalid when unknown.
	MasterAddr netip.Addr
}

// Counters are a router's totals since New.
type Counters struct {
	Sent        uint64 // adverts sent (one per peer in unicast)
	SendErrors  uint64
	Received    uint64            // adverts accepted
	Rejected    map[string]uint64 // by RejectError.Reason
	Transitions uint64            // role changes, the start included; re-announcements excluded
}

// Status is a snapshot of a router, safe to keep.
type Status struct {
	State State
	// Priority is the effective priority: the configured one, 1 while
	// released, 0 in fault.
	Priority   int
	MasterAddr netip.Addr // invalid when no master is known
	Since      time.Time  // of the last transition
	Reason     string     // of the last transition
	// MasterAdverInterval is the interval the master down timer counts in:
	// learnt from the master in v3.
	MasterAdverInterval time.Duration
	Released            bool
	PreemptHeld         bool
	LastSendError       string
	Counters
}

// control is what the caller asked for; the loop applies it.
type control struct {
	fault       bool
	faultReason string
	released    bool
	// holdSeq counts HoldPreemption and Ready calls; the last one wins.
	holdSeq uint64
	holding bool
	holdMax time.Duration
}

// Router is one VRRP router. Its loop (Run) is the only goroutine that
// touches its state; the other methods are safe from any goroutine.
type Router struct {
	cfg   Config
	conn  Conn
	clk   clock.Clock
	local netip.Addr
	addrs map[netip.Addr]bool
	peers map[netip.Addr]bool

	// Owned by the loop.
	state               State
	masterAddr          netip.Addr
	since               time.Time
	reason              string
	deadline            time.Time // Master_Down_Timer (backup) or Adver_Timer (master)
	masterAdverInterval time.Duration
	holdUntil           time.Time
	holdSeq             uint64 // the last control.holdSeq applied
	released            bool
	masterLeft          bool      // a priority-0 advert cut the down timer to Skew_Time
	preempting          bool      // discarding a lower-priority master's adverts
	lowerSince          time.Time // first lower-priority advert, for PreemptDelay
	lastReannounce      time.Time
	lastSendError       string
	counters            Counters

	status  atomic.Pointer[Status]
	running atomic.Bool

	ctlMu sync.Mutex
	ctl   control
	wake  chan struct{}

	evMu     sync.Mutex
	evQueue  []Transition
	evWake   chan struct{}
	evClosed bool
	events   chan Transition
}

// New returns a router of cfg that speaks through conn (its LocalAddr is
// this router's primary address) on clk. It takes conn over: Run closes it.
func New(cfg Config, conn Conn, clk clock.Clock) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	local := conn.LocalAddr()
	if !local.Is4() {
		return nil, fmt.Errorf("vrrp: the connection's address %v is not IPv4", local)
	}
	r := &Router{
		cfg: cfg, conn: conn, clk: clk, local: local,
		addrs:               map[netip.Addr]bool{},
		peers:               map[netip.Addr]bool{},
		wake:                make(chan struct{}, 1),
		evWake:              make(chan struct{}, 1),
		events:              make(chan Transition),
		masterAdverInterval: cfg.Interval,
		counters:            Counters{Rejected: map[string]uint64{}},
	}
	for _, a := range cfg.Addresses {
		r.addrs[a] = true
	}
	for _, p := range cfg.Peers {
		r.peers[p] = true
	}
	r.publish()
	return r, nil
}

// Transitions delivers every role change in order. The loop never waits for
// the reader (they are queued), but a caller should read them promptly:
// becoming master means binding the VIPs. Closed once Run has returned and
// every transition was read.
func (r *Router) Transitions() <-chan Transition { return r.events }

// Status returns the latest snapshot.
func (r *Router) Status() Status {
	s := *r.status.Load()
	s.Rejected = maps.Clone(s.Rejected)
	return s
}

// SetFault puts the router in Fault (a master first sends priority 0 once)
// or, with fault false, takes it out to Backup. Fault is for what makes this
// director unfit to be master: its interface down, IPVS writes failing.
func (r *Router) SetFault(fault bool, reason string) {
	r.control(func(c *control) { c.fault, c.faultReason = fault, reason })
}

// Release makes a master step down for maintenance: it sends priority 0
// (a backup takes over after its Skew_Time) and becomes backup with
// effective priority 1 and no preemption, so that it does not take the VIPs
// back while any other router advertises. It still takes over, as any
// backup, if no master advertises at all: a released director is a standby
// of last resort, not a dead one. A released backup stays released. It
// lasts until Unrelease or a restart (it is not persisted).
func (r *Router) Release() { r.control(func(c *control) { c.released = true }) }

// Unrelease restores the configured priority and preemption: a
// higher-priority router with Preempt takes the VIPs back.
func (r *Router) Unrelease() { r.control(func(c *control) { c.released = false }) }

// Ready ends a preemption hold (Config.PreemptHold or HoldPreemption):
// from now on this router preempts as configured.
func (r *Router) Ready() {
	r.control(func(c *control) { c.holdSeq, c.holding = c.holdSeq+1, false })
}

// HoldPreemption holds preemption from now until Ready or at most max, as
// Config.PreemptHold does from the start: for a director that is master
// material again (a fault cleared, say) but not warm yet. It never delays a
// takeover from a master that is gone or leaving.
func (r *Router) HoldPreemption(max time.Duration) {
	r.control(func(c *control) { c.holdSeq, c.holding, c.holdMax = c.holdSeq+1, true, max })
}

func (r *Router) control(edit func(*control)) {
	r.ctlMu.Lock()
	edit(&r.ctl)
	r.ctlMu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Router) takeControl() control {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	return r.ctl
}

// Run is the router's loop: it starts as backup, runs until ctx is done,
// then leaves (a master sends priority 0), closes the Conn and the
// Transitions channel, and returns nil. It runs once per Router.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("vrrp: router already ran")
	}
	packets := make(chan Packet, 64)
	done := make(chan struct{})
	go r.read(packets, done)
	go r.forward()

	r.start(r.clk.Now())
	r.onControl(r.clk.Now()) // what the caller set before Run
	r.publish()
	var timer <-chan time.Time
	var armed time.Time
	for {
		if r.deadline != armed {
			armed, timer = r.deadline, nil
			if !armed.IsZero() {
				timer = r.clk.After(armed.Sub(r.clk.Now()))
			}
		}
		select {
		case <-timer:
			armed, timer = time.Time{}, nil
			r.onTimer(r.clk.Now())
		case p := <-packets:
			r.onPacket(r.clk.Now(), p)
		case <-r.wake:
			r.onControl(r.clk.Now())
		case <-ctx.Done():
			r.shutdown(r.clk.Now())
			r.publish()
			close(done)
			r.conn.Close()
			r.closeEvents()
			return nil
		}
		r.publish()
	}
}

// read feeds the loop with received messages until the conn is closed.
func (r *Router) read(packets chan<- Packet, done <-chan struct{}) {
	for {
		p, err := r.conn.Receive()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // a transient error (ENOBUFS...): do not spin on it
			case <-r.clk.After(10 * time.Millisecond):
				continue
			case <-done:
				return
			}
		}
		select {
		case packets <- p:
		case <-done:
			return
		}
	}
}

func (r *Router) publish() {
	r.status.Store(&Status{
		State: r.state, Priority: r.effectivePriority(), MasterAddr: r.masterAddr,
		Since: r.since, Reason: r.reason, MasterAdverInterval: r.masterAdverInterval,
		Released: r.released, PreemptHeld: r.preemptHeld(r.clk.Now()),
		LastSendError: r.lastSendError,
		Counters: Counters{
			Sent: r.counters.Sent, SendErrors: r.counters.SendErrors, Received: r.counters.Received,
			Rejected: maps.Clone(r.counters.Rejected), Transitions: r.counters.Transitions,
		},
	})
}

// emit queues a transition for the forwarder; it never blocks.
func (r *Router) emit(t Transition) {
	r.evMu.Lock()
	r.evQueue = append(r.evQueue, t)
	r.evMu.Unlock()
	select {
	case r.evWake <- struct{}{}:
	default:
	}
}

func (r *Router) closeEvents() {
	r.evMu.Lock()
	r.evClosed = true
	r.evMu.Unlock()
	select {
	case r.evWake <- struct{}{}:
	default:
	}
}

// forward hands queued transitions to the Transitions channel in order, and
// closes it once the loop has ended and the queue is empty. If nobody reads,
// it waits; the loop does not.
func (r *Router) forward() {
	for {
		r.evMu.Lock()
		q, closed := r.evQueue, r.evClosed
		r.evQueue = nil
		r.evMu.Unlock()
		for _, t := range q {
			r.events <- t
		}
		if len(q) == 0 {
			if closed {
				close(r.events)
				return
			}
			<-r.evWake
		}
	}
}

// takeEvents empties the queue without the forwarder (tests driving the
// loop's steps themselves).
func (r *Router) takeEvents() []Transition {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	q := r.evQueue
	r.evQueue = nil
	return q
}
