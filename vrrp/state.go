package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP router's role.
type State int

// The states of RFC 5798, plus Fault (keepalived's): a router that must not
// be master, whatever the adverts say.
const (
	StateInit State = iota // not running (before Run, after it returns)
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Transition reasons: Transition.Reason and Status.Reason are one of these
// (Fault's carries the caller's reason after "fault: ").
const (
	ReasonStart        = "start"
	ReasonMasterDown   = "no advert from a master within the master down interval"
	ReasonPriorityZero = "the master left (priority 0)"
	ReasonPreempt      = "preempted a lower-priority master"
	ReasonHigherMaster = "advert from a higher-priority master"
	ReasonSplitBrain   = "advert from a lower-priority master: re-announcing"
	ReasonRelease      = "released by the operator"
	ReasonFaultCleared = "fault cleared"
	ReasonShutdown     = "shutdown"
	reasonFaultPrefix  = "fault: "
)

// releasedPriority is the effective priority of a released router: the
// lowest a backup can have, so that it never preempts and any other live
// router wins; it still takes over when no master advertises at all.
const releasedPriority = 1

// start enters Backup, as every router does at start (RFC 5798 lets only the
// address owner start as master; keepalived starts all in backup).
func (r *Router) start(now time.Time) {
	if r.cfg.PreemptHold > 0 {
		r.holdUntil = now.Add(r.cfg.PreemptHold)
	}
	r.enterBackup(now, ReasonStart, netip.Addr{})
}

// effectivePriority is what this router advertises and compares with.
func (r *Router) effectivePriority() int {
	switch {
	case r.state == StateFault:
		return 0
	case r.released:
		return releasedPriority
	}
	return r.cfg.Priority
}

// skew is RFC 5798's Skew_Time: lower priorities wait longer.
func (r *Router) skew() time.Duration {
	return time.Duration(256-r.effectivePriority()) * r.masterAdverInterval / 256
}

// masterDown is RFC 5798's Master_Down_Interval.
func (r *Router) masterDown() time.Duration { return 3*r.masterAdverInterval + r.skew() }

// onTimer runs when the deadline may have come: a backup's Master_Down_Timer
// or a master's Adver_Timer.
func (r *Router) onTimer(now time.Time) {
	if r.deadline.IsZero() || now.Before(r.deadline) {
		return
	}
	switch r.state {
	case StateBackup:
		reason := ReasonMasterDown
		switch {
		case r.masterLeft:
			reason = ReasonPriorityZero
		case r.preempting:
			reason = ReasonPreempt
		}
		r.enterMaster(now, reason)
	case StateMaster:
		r.advertise(r.effectivePriority())
		r.deadline = now.Add(r.cfg.Interval)
	}
}

// onPacket handles one received message.
func (r *Router) onPacket(now time.Time, p Packet) {
	if p.Src == r.local {
		return // our own multicast, looped back
	}
	adv, err := r.check(p)
	if err != nil {
		r.counters.Rejected[RejectReason(err)]++
		return
	}
	r.counters.Received++
	prio := int(adv.Priority)
	switch r.state {
	case StateBackup:
		if prio == 0 {
			// RFC 5798 6.4.2: the master leaves; take over after Skew_Time.
			r.masterLeft = true
			r.masterAddr = netip.Addr{}
			r.deadline = now.Add(r.skew())
			return
		}
		r.masterLeft = false
		r.masterAddr = p.Src
		lower := prio < r.effectivePriority()
		if !lower {
			r.lowerSince = time.Time{}
		} else if r.wantsPreempt() && r.lowerSince.IsZero() {
			r.lowerSince = now
		}
		if lower && r.mayPreempt(now) {
			// Discarded: the Master_Down_Timer runs out and this router
			// takes over.
			r.preempting = true
			return
		}
		r.preempting = false
		if r.cfg.Version == 3 {
			r.masterAdverInterval = adv.Interval
		}
		r.deadline = now.Add(r.masterDown())
	case StateMaster:
		if prio == 0 {
			// Another master left: advertise at once so that backups do not
			// take over after their skew.
			r.advertise(r.effectivePriority())
			r.deadline = now.Add(r.cfg.Interval)
			return
		}
		mine := r.effectivePriority()
		if prio > mine || (prio == mine && addrGreater(p.Src, r.local)) {
			if r.cfg.Version == 3 {
				r.masterAdverInterval = adv.Interval
			}
			r.enterBackup(now, ReasonHigherMaster, p.Src)
			return
		}
		// Split brain healing: the other master yields when it hears us;
		// advertise now and ask for gratuitous ARP again, since switches
		// may have learnt the VIP's MAC from the loser (keepalived #166).
		r.advertise(mine)
		r.deadline = now.Add(r.cfg.Interval)
		if r.lastReannounce.IsZero() || now.Sub(r.lastReannounce) >= 3*r.cfg.Interval {
			r.lastReannounce = now
			r.emit(Transition{From: StateMaster, To: StateMaster, Reason: ReasonSplitBrain, At: now, MasterAddr: r.local})
		}
	}
}

// check validates a received message against this router's configuration.
func (r *Router) check(p Packet) (Advert, error) {
	adv, err := Unmarshal(p.Payload, p.Src, p.Dst)
	if err != nil {
		return Advert{}, err
	}
	if int(adv.VRID) != r.cfg.VRID {
		return Advert{}, fmt.Errorf("%w: VRID %d", ErrVRIDMismatch, adv.VRID)
	}
	if adv.Version != r.cfg.Version {
		return Advert{}, fmt.Errorf("%w: v%d advert, v%d router", ErrBadVersion, adv.Version, r.cfg.Version)
	}
	// RFC 5798 5.1.1.3 asks for TTL 255 always; keepalived checks it on
	// multicast, and unicast peers may sit behind a router.
	if p.Dst.IsMulticast() && p.TTL != 255 {
		return Advert{}, fmt.Errorf("%w: TTL %d", ErrBadTTL, p.TTL)
	}
	if r.cfg.Unicast && !r.peers[p.Src] {
		return Advert{}, fmt.Errorf("%w: %v", ErrUnknownPeer, p.Src)
	}
	if len(adv.Addresses) != len(r.cfg.Addresses) {
		return Advert{}, fmt.Errorf("%w: %d addresses, ours %d", ErrAddressMismatch, len(adv.Addresses), len(r.cfg.Addresses))
	}
	for _, a := range adv.Addresses {
		if !r.addrs[a] {
			return Advert{}, fmt.Errorf("%w: %v is not ours", ErrAddressMismatch, a)
		}
	}
	if r.cfg.Version == 2 && adv.Interval != r.cfg.Interval {
		return Advert{}, fmt.Errorf("%w: %v, ours %v", ErrIntervalMismatch, adv.Interval, r.cfg.Interval)
	}
	return adv, nil
}

// wantsPreempt is whether this router would preempt at all.
func (r *Router) wantsPreempt() bool { return r.cfg.Preempt && !r.released }

// mayPreempt is whether, now, a lower-priority master's advert is discarded.
func (r *Router) mayPreempt(now time.Time) bool {
	if !r.wantsPreempt() || r.preemptHeld(now) {
		return false
	}
	return !now.Before(r.lowerSince.Add(r.cfg.PreemptDelay))
}

// preemptHeld is whether the caller still holds preemption.
func (r *Router) preemptHeld(now time.Time) bool {
	return !r.holdUntil.IsZero() && now.Before(r.holdUntil)
}

// onControl applies what the caller asked for since the last call.
func (r *Router) onControl(now time.Time) {
	want := r.takeControl()
	if want.holdSeq != r.holdSeq {
		r.holdSeq = want.holdSeq
		r.holdUntil = time.Time{}
		if want.holding && want.holdMax > 0 {
			r.holdUntil = now.Add(want.holdMax)
		}
	}
	if want.fault != (r.state == StateFault) {
		if want.fault {
			if r.state == StateMaster {
				r.advertise(0)
			}
			r.setState(now, StateFault, reasonFaultPrefix+want.faultReason, netip.Addr{})
			r.deadline = time.Time{}
		} else {
			r.enterBackup(now, ReasonFaultCleared, netip.Addr{})
		}
	}
	if want.released != r.released {
		r.released = want.released
		if r.released && r.state == StateMaster {
			r.advertise(0)
			r.enterBackup(now, ReasonRelease, netip.Addr{})
		}
	}
}

// shutdown leaves: a master tells the backups with priority 0, so that one
// takes over after its Skew_Time instead of its Master_Down_Interval.
func (r *Router) shutdown(now time.Time) {
	if r.state == StateMaster {
		r.advertise(0)
	}
	r.setState(now, StateInit, ReasonShutdown, netip.Addr{})
	r.deadline = time.Time{}
}

func (r *Router) enterBackup(now time.Time, reason string, master netip.Addr) {
	if r.cfg.Version == 2 || master == (netip.Addr{}) {
		r.masterAdverInterval = r.cfg.Interval
	}
	r.masterLeft, r.preempting, r.lowerSince = false, false, time.Time{}
	r.setState(now, StateBackup, reason, master)
	r.deadline = now.Add(r.masterDown())
}

func (r *Router) enterMaster(now time.Time, reason string) {
	r.masterLeft, r.preempting, r.lowerSince = false, false, time.Time{}
	r.setState(now, StateMaster, reason, r.local)
	r.advertise(r.effectivePriority())
	r.deadline = now.Add(r.cfg.Interval)
}

func (r *Router) setState(now time.Time, to State, reason string, master netip.Addr) {
	from := r.state
	r.state, r.masterAddr, r.since, r.reason = to, master, now, reason
	r.counters.Transitions++
	r.emit(Transition{From: from, To: to, Reason: reason, At: now, MasterAddr: master})
}

// advertise sends one advert with the given priority, to the group or to
// every peer.
func (r *Router) advertise(prio int) {
	adv := Advert{Version: r.cfg.Version, VRID: uint8(r.cfg.VRID), Priority: uint8(prio),
		Interval: r.cfg.Interval, Addresses: r.cfg.Addresses}
	dsts := []netip.Addr{MulticastGroup}
	if r.cfg.Unicast {
		dsts = r.cfg.Peers
	}
	for _, dst := range dsts {
		b, err := adv.Marshal(r.local, dst)
		if err == nil {
			err = r.conn.Send(b, dst)
		}
		if err != nil {
			r.counters.SendErrors++
			r.lastSendError = err.Error()
			continue
		}
		r.counters.Sent++
	}
}

func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }
