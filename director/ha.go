package director

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vrrp"
)

// High availability: with director.ha, the director runs a VRRP router
// (package vrrp) on director.interface. The role decides one thing, where
// the VIP is: bound and announced on the master, unbound elsewhere. Every
// director keeps IPVS programmed and its checks running whatever its role,
// so a takeover writes nothing to IPVS. The router runs on its own
// goroutine; its role changes reach the loop on a channel, and the loop
// alone acts on them.

// role is the VRRP router of a director in a pair, as the loop sees it.
type role struct {
	router *vrrp.Router
	cfg    vrrp.Config
	iface  string
	self   topology.HADirector
	// state is the role as the loop last heard it.
	state  vrrp.State
	cancel context.CancelFunc
	done   chan error
	// ipvsFailing and linkDown are why the loop holds the router in
	// fault; faulted is whether it does.
	ipvsFailing, linkDown, faulted bool
}

// vrrpConfig maps director.ha onto this director's VRRP router.
func vrrpConfig(topo *topology.Topology, self topology.HADirector) vrrp.Config {
	ha := topo.Director.HA
	cfg := vrrp.Config{
		VRID: int(ha.VRID), Version: ha.Version, Interval: ha.AdvertInterval,
		Priority: int(self.Priority), Preempt: ha.Preempt, PreemptDelay: ha.PreemptDelay,
		Unicast: ha.Unicast, Addresses: []netip.Addr{topo.VIP},
	}
	if ha.ConnectionSync {
		// A returning director preempts only once its connection table
		// is warm (sync.go), or when the hold runs out.
		cfg.PreemptHold = syncWarmBound
	}
	if ha.Unicast {
		for _, p := range ha.Peers(self) {
			cfg.Peers = append(cfg.Peers, p.Address)
		}
	}
	return cfg
}

// startRole starts the VRRP router of topo, if it has director.ha, and
// makes it the loop's role. It is not started again when a reload leaves
// its settings as they were.
func (l *loop) startRole(topo *topology.Topology) error {
	ha := topo.Director.HA
	if ha == nil {
		l.stopRole()
		return nil
	}
	self, err := l.haSelf(topo)
	if err != nil {
		return err
	}
	cfg := vrrpConfig(topo, self)
	if l.role != nil && reflect.DeepEqual(l.role.cfg, cfg) && l.role.iface == topo.Director.Interface {
		return nil
	}
	open := l.VRRP
	if open == nil {
		open = func(iface string, self netip.Addr) (vrrp.Conn, error) { return vrrp.Listen(iface, self) }
	}
	conn, err := open(topo.Director.Interface, self.Address)
	if err != nil {
		return fmt.Errorf("director.ha: VRRP on %s: %w", topo.Director.Interface, err)
	}
	router, err := vrrp.New(cfg, conn, l.Clock)
	if err != nil {
		conn.Close()
		return fmt.Errorf("director.ha: %w", err)
	}
	// A changed router replaces the old one: the old master leaves with a
	// priority-0 advert, so the new election is quick.
	l.stopRole()
	ctx, cancel := context.WithCancel(context.Background())
	r := &role{router: router, cfg: cfg, iface: topo.Director.Interface, self: self, state: vrrp.StateInit, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- router.Run(ctx) }()
	l.role = r
	l.router.Store(router)
	// A router replaced on a running director has nothing to wait for.
	if l.sync.warm {
		router.Ready()
	}
	l.Log.Info("VRRP started", "name", self.Name, "address", self.Address, "priority", self.Priority, "vrid", ha.VRID,
		"version", ha.Version, "advert_interval", ha.AdvertInterval, "unicast", ha.Unicast, "interface", topo.Director.Interface)
	return nil
}

// haSelf finds this director among director.ha.directors: by --name, or by
// the addresses of its interface.
func (l *loop) haSelf(topo *topology.Topology) (topology.HADirector, error) {
	ha := topo.Director.HA
	if ha == nil {
		return topology.HADirector{}, nil
	}
	addrs, err := l.VIP.Addresses(topo.Director.Interface)
	if err != nil {
		return topology.HADirector{}, fmt.Errorf("director.ha: %w", err)
	}
	self, err := ha.Self(addrs, l.Name)
	if err != nil {
		return topology.HADirector{}, fmt.Errorf("director.ha: %w", err)
	}
	return self, nil
}

// stopRole stops the VRRP router, if any: a master sends priority 0 so that
// a backup takes over at once.
func (l *loop) stopRole() {
	if l.role == nil {
		return
	}
	l.role.cancel()
	if err := <-l.role.done; err != nil {
		l.Log.Warn("VRRP stopped", "error", err)
	}
	l.role = nil
	l.router.Store(nil)
}

// roleTransitions is the channel of the role's changes; nil (never ready)
// without a role.
func (l *loop) roleTransitions() <-chan vrrp.Transition {
	if l.role == nil {
		return nil
	}
	return l.role.router.Transitions()
}

// onRole acts on a role change: the master holds the VIP and tells the
// segment (gratuitous ARP at once and again later), the others give it up.
// A master that heard a lower master (a partition healed) announces again,
// or the segment's caches may stay with the other one (keepalived #166).
//
// Changes that queued while the loop was busy (a long reconcile) are
// reported in order but not replayed on the VIP one by one: the VIP goes
// where the router is now, once.
func (l *loop) onRole(t vrrp.Transition) {
	changed, reannounce := false, false
	for {
		if t.From == vrrp.StateMaster && t.To == vrrp.StateMaster {
			reannounce = true
		} else {
			changed = true
			l.Log.Info("VRRP role changed", "from", t.From, "to", t.To, "reason", t.Reason, "master", t.MasterAddr)
			l.hook.Load().Send(notify.Event{Kind: notify.KindRole, State: t.To.String(), Previous: t.From.String(), Error: t.Reason, At: t.At})
		}
		l.role.state = t.To
		next, more := l.pendingRole()
		if !more {
			break
		}
		t = next
	}
	wasMaster := l.vip.State().Held()
	if err := l.convergeVIP(); err != nil {
		l.Log.Error("VIP not where the role wants it; the next resync retries", "role", l.role.state, "error", err)
	}
	switch {
	case l.role.state != vrrp.StateMaster:
		l.garpAgain = nil
	case changed && !wasMaster:
		l.announceBurst(false)
	case changed || reannounce:
		l.announceBurst(true)
	}
	l.publish()
}

// pendingRole returns a role change already queued, without waiting.
func (l *loop) pendingRole() (vrrp.Transition, bool) {
	select {
	case t, ok := <-l.role.router.Transitions():
		return t, ok
	default:
		return vrrp.Transition{}, false
	}
}

// announceBurst sends the gratuitous ARPs of a new master: the first has
// gone with the VIP's binding unless this is a re-announcement; the rest of
// the burst now, and a second burst after director.ha.garp_delay, as
// keepalived does.
func (l *loop) announceBurst(all bool) {
	ha := l.topo.Director.HA
	n := ha.GARPRepeat
	if !all {
		n--
	}
	for range n {
		if err := l.vip.Announce(); err != nil {
			l.Log.Warn("gratuitous ARP not sent", "error", err)
			break
		}
	}
	l.garpAgain = nil
	if ha.GARPDelay > 0 {
		l.garpAgain = l.Clock.After(ha.GARPDelay)
	}
}

// onGARPTimer sends the delayed burst, then the periodic refresh if the
// topology asks for one, while this director is master.
func (l *loop) onGARPTimer() {
	l.garpAgain = nil
	if l.role == nil || l.role.state != vrrp.StateMaster {
		return
	}
	ha := l.topo.Director.HA
	for range ha.GARPRepeat {
		if err := l.vip.Announce(); err != nil {
			l.Log.Warn("gratuitous ARP not sent", "error", err)
			break
		}
	}
	if ha.GARPRefresh > 0 {
		l.garpAgain = l.Clock.After(ha.GARPRefresh)
	}
}

// holdFault records whether IPVS writes fail, so that a director that
// cannot program its table does not stay master.
func (l *loop) holdFault(err error) {
	if l.role == nil {
		return
	}
	if err != nil && !l.role.ipvsFailing {
		l.Log.Warn("IPVS writes fail", "error", err)
	}
	l.role.ipvsFailing = err != nil
	l.applyFault()
}

// checkLink records whether director.interface is down: a director whose
// link is down goes to fault (priority 0), as keepalived's does.
func (l *loop) checkLink() {
	if l.role == nil || l.LinkUp == nil {
		return
	}
	up, err := l.LinkUp(l.topo.Director.Interface)
	if err != nil {
		l.Log.Warn("look at director.interface", "error", err)
		return
	}
	l.role.linkDown = !up
	l.applyFault()
}

// applyFault puts the router in fault, or takes it out, by the reasons
// recorded.
func (l *loop) applyFault() {
	var reasons []string
	if l.role.ipvsFailing {
		reasons = append(reasons, "IPVS writes fail")
	}
	if l.role.linkDown {
		reasons = append(reasons, l.topo.Director.Interface+" is down")
	}
	fault := len(reasons) > 0
	if fault == l.role.faulted {
		return
	}
	l.role.faulted = fault
	if fault {
		why := strings.Join(reasons, ", ")
		l.Log.Warn("VRRP fault: priority 0 until it clears", "reason", why)
		l.role.router.SetFault(true, why)
		return
	}
	l.Log.Info("VRRP fault cleared")
	l.role.router.SetFault(false, "")
}

// leaveRole ends the role at shutdown: a master sends priority 0 and gives
// the VIP up; the IPVS table stays, so a restart drops nothing.
func (l *loop) leaveRole() {
	if l.role == nil {
		return
	}
	was := l.role.state
	l.stopRole()
	if _, err := l.vip.Converge(l.vipInterface(), l.topo.VIP, false); err != nil {
		l.Log.Error("VIP not unbound at shutdown", "error", err)
	} else if was == vrrp.StateMaster {
		l.Log.Info("VRRP master left: priority 0 sent, VIP unbound, the IPVS table stays")
	}
}

// ReleaseMaster makes a master step down for maintenance (priority 0, then
// a backup that does not preempt) until Unrelease or a restart.
func (d *Director) ReleaseMaster(on bool) error {
	r := d.router.Load()
	if r == nil {
		return ErrNoHA
	}
	if on {
		r.Release()
	} else {
		r.Unrelease()
	}
	return nil
}

// HAStatus returns the VRRP router's status, and false without director.ha.
func (d *Director) HAStatus() (vrrp.Status, bool) {
	r := d.router.Load()
	if r == nil {
		return vrrp.Status{}, false
	}
	return r.Status(), true
}
