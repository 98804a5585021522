package director

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vip"
	"github.com/lvsdr/lvsdr/vrrp"
)

// reason says why a reconcile ran; the metrics and the log name it.
type reason string

// The reasons for a reconcile.
const (
	reasonStart       reason = "start"
	reasonCheck       reason = "check"
	reasonResync      reason = "resync"
	reasonReload      reason = "reload"
	reasonMaintenance reason = "maintenance"
)

// loop is the state of one Run. Only Run's goroutine touches it; what
// others need of it is published as a view after every reconcile.
type loop struct {
	*Director
	topo *topology.Topology
	// opNames names the services and real servers of topo's operations in
	// the log; built once per topology, not per reconcile.
	opNames     func(ipvsctl.Op) []any
	opNamesTopo *topology.Topology
	// source is the address the checks through the VIP leave from.
	source netip.Addr
	r      *ipvsctl.Reconciler
	checks *healthcheck.Manager
	// dirty is signalled by the check manager on every transition.
	dirty chan struct{}
	// drained names the real servers in maintenance.
	drained map[string]bool
	// leaving holds the destinations removed by a reload that wait for
	// their connections to end, and retiring the services a reload removed
	// that wait for their destinations to leave (graceful.go).
	leaving  leavingSet
	retiring map[ipvsctl.ServiceKey]bool
	// quorum holds the last quorum state of each service, to report its
	// changes (quorum.go).
	quorum map[string]bool
	vip    *vip.Owner
	// role is the VRRP router with director.ha, nil without (ha.go);
	// garpAgain fires for a master's delayed and periodic gratuitous ARPs.
	role      *role
	garpAgain <-chan time.Time
	// sync is the state of connection sync (sync.go).
	sync syncState
	// sysctlsFound holds the values that the sysctls of connection sync
	// and BGP had before the director set them (modesysctl.go).
	sysctlsFound map[string]string
	// bgp announces the VIP with director.bgp, nil without (bgp.go).
	bgp *announcer
	// lastReload is published in the view (onReload).
	lastReload *reloadRecord
}

// view is what the loop publishes for readers on other goroutines: it is
// never changed once stored.
type view struct {
	topo    *topology.Topology
	drained map[string]bool
	leaving leavingSet
	vip     vip.State
	// role is the VRRP role, empty without director.ha.
	role string
	// lastReload is the outcome of the last reload, nil before the first.
	lastReload *reloadRecord
}

// reloadRecord is how a reload went, for `director status` and the
// metrics: when it began, whether the new file is in force with the
// kernel agreeing (OK), why not (Error) and how long it took.
type reloadRecord struct {
	Time     time.Time
	OK       bool
	Error    string
	Duration time.Duration
}

// Run starts the director and runs it until ctx is done.
func (d *Director) Run(ctx context.Context) error {
	topo, err := d.Load()
	if err != nil {
		return err
	}
	l := &loop{Director: d, topo: topo, r: ipvsctl.NewReconciler(d.Kernel), dirty: make(chan struct{}, 1),
		leaving: leavingSet{}, retiring: map[ipvsctl.ServiceKey]bool{}, quorum: map[string]bool{}, vip: vip.NewOwner(d.VIP, d.Log)}
	l.warnAbout(topo)
	// Before the VIP goes on: a director that cannot check through the VIP
	// stops without having bound it.
	if l.source, err = d.prepareVIPChecks(topo); err != nil {
		return err
	}
	// With director.ha this director must find itself among the directors
	// before it touches anything; its router starts once the table is
	// programmed, as a backup, so the VIP is not bound until it is master.
	if _, err := l.haSelf(topo); err != nil {
		return err
	}
	defer l.leaveRole()
	if err := l.convergeVIP(); err != nil {
		return err
	}
	for _, kv := range DirectorSysctls {
		if err := d.Sysctl.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("set director sysctl: %w", err)
		}
	}
	d.setHook(nil, topo)
	// A slow hook gets a few seconds to report the last changes, not the
	// power to hold up the exit.
	defer func() { d.hook.Load().Stop(hookGrace) }()
	state, err := d.State.Load()
	if err != nil {
		return err
	}
	l.drained = state.maintenance()
	l.sysctlsFound = state.FoundSysctls
	if err := l.convergeModeSysctls(); err != nil {
		return err
	}
	if err := l.convergeSync(); err != nil {
		return err
	}
	// One read of the kernel serves the whole start: servers it already has
	// in stay in until a check says down, so a restart does not flap them;
	// services retired while the director was down drain as on a reload;
	// and the first reconcile diffs against it.
	retired := retiredKeys(state.Owned, topo)
	kernel, err := ipvsctl.Read(d.Kernel, append(declaredKeys(topo), retired...))
	if err != nil {
		return err
	}
	l.r.Assume(kernel)

	l.checks = healthcheck.NewManager(d.Clock, l.onTransition)
	// A checker that cannot keep up stretches its intervals and says so.
	l.checks.SetLogger(d.Log)
	defer l.checks.Stop()
	l.obs.watch(l.checks)
	l.checks.Update(l.targets(topo, kernel))

	if d.ControlSocket != "" {
		stop, err := serveControl(d.ControlSocket, controlHandlers{
			checks:   l.checks,
			maintain: d.SetMaintenance,
			report:   func() (Report, error) { return d.report(l.checks) },
			reload:   d.ReloadAndWait,
			release:  d.ReleaseMaster,
		}, d.Log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := l.obs.start(topo); err != nil {
		return err
	}
	defer l.obs.stop()

	l.startLeaving(topo, kernel, retired)
	started := l.reconcile(reasonStart, l.r.Update, l.deletable(retired), 0)
	if err := l.startRole(topo); err != nil {
		return err
	}
	// The roles start after the table is programmed, and hear how that
	// went: a director whose writes failed is neither master nor
	// announced until a reconcile succeeds.
	l.holdFault(started)
	l.checkLink()
	if err := l.startBGP(topo); err != nil {
		return err
	}
	defer l.stopBGP()
	l.reportBGP(started, snapshotHealth(topo, l.checks.Snapshot()))
	l.notify("READY=1")
	d.Log.Info("director running", "vip", topo.VIP, "interface", topo.Director.Interface, "services", len(topo.Services), "real_servers", len(topo.RealServers))

	resync := d.Clock.After(l.nextSweep())
	watchdog := l.watchdog()
	for {
		select {
		case <-ctx.Done():
			l.notify("STOPPING=1")
			// The routers and a VRRP backup are told first (a
			// withdrawal, priority 0), before the checks and the
			// endpoints wind down.
			l.stopBGP()
			l.leaveRole()
			d.Log.Info("director stopping; the IPVS table stays in place")
			return nil
		case <-l.dirty:
			n := d.pending.Load()
			l.reconcile(reasonCheck, l.r.Update, nil, 0)
			d.pending.Add(-n)
		case <-resync:
			l.onResync()
			resync = d.Clock.After(l.nextSweep())
		case <-watchdog:
			l.notify("WATCHDOG=1")
			watchdog = l.watchdog()
		case reply := <-d.reloads:
			l.notify("RELOADING=1")
			err := l.onReload()
			l.notify("READY=1")
			d.pending.Add(-1)
			if reply != nil {
				reply <- err
			}
		case req := <-d.maintenance:
			req.reply <- l.onMaintenance(req)
		case t, ok := <-l.roleTransitions():
			if ok {
				l.onRole(t)
			}
		case <-l.garpAgain:
			l.onGARPTimer()
		case reply := <-l.obs.pings:
			// /healthz asks whether this loop still turns.
			close(reply)
		}
	}
}

// onTransition is told of every check state change, on the checking
// goroutine: it records and reports it, and wakes the loop.
func (l *loop) onTransition(t healthcheck.Transition) {
	l.obs.transition(t)
	// A server going down is what an operator must see in the log; its
	// return is routine.
	level := slog.LevelInfo
	if t.To == healthcheck.Down {
		level = slog.LevelWarn
	}
	l.Log.Log(context.Background(), level, "check state changed", "service", t.Key.Service, "real_server", t.Key.RealServer, "check", t.Key.Check, "from", t.From, "to", t.To, "error", errString(t.Err))
	l.hook.Load().Send(notify.Event{Kind: notify.KindCheck, Service: t.Key.Service, Node: t.Key.RealServer, Check: t.Key.Check,
		Previous: t.From.String(), State: t.To.String(), Error: errString(t.Err), At: t.At})
	l.pending.Add(1)
	select {
	case l.dirty <- struct{}{}:
	default:
	}
}

// onResync repairs drift: the VIP if someone removed it, and the kernel's
// table, read afresh. Leaving servers whose connections ended drop out of
// the desired table first, so this resync deletes them; their deletions
// are scheduled, not drift.
func (l *loop) onResync() {
	if err := l.convergeVIP(); err != nil {
		l.Log.Error("VIP not repaired; the next resync retries", "error", err)
	}
	if err := l.convergeSync(); err != nil {
		l.Log.Error("sync daemons not repaired; the next resync retries", "error", err)
	}
	l.checkWarm()
	l.checkLink()
	swept := l.sweepLeaving()
	// Emptied retiring services are forgotten before the reconcile that
	// deletes them, so that the state it records no longer owns them; a
	// failure brings them back for the next resync.
	emptied := l.emptiedRetiring()
	for _, k := range emptied {
		delete(l.retiring, k)
	}
	if l.reconcile(reasonResync, l.r.Sync, emptied, swept) != nil {
		for _, k := range emptied {
			l.retiring[k] = true
		}
	}
}

// onReload applies the topology file again: the new one is in force after
// it, or the old one if the new file is refused, and the error says why.
// Its outcome is recorded and published either way.
func (l *loop) onReload() (err error) {
	// The wall clock times it, as reconcile does; l.Clock dates it.
	at, began := l.Clock.Now(), time.Now()
	defer func() {
		l.lastReload = &reloadRecord{Time: at, OK: err == nil, Error: errString(err), Duration: time.Since(began)}
		l.publish()
	}()
	next, err := l.Load()
	var source netip.Addr
	if err == nil {
		source, err = l.prepareVIPChecks(next)
	}
	if err != nil {
		l.Log.Error("reload rejected, nothing changed", "error", err)
		return err
	}
	prev := l.topo
	if err := l.startRole(next); err != nil {
		l.Log.Error("reload rejected, nothing changed", "error", err)
		return err
	}
	l.topo, l.source = next, source
	l.warnAbout(next)
	if err := l.convergeVIP(); err != nil {
		l.Log.Error("VIP not moved; the next resync retries", "error", err)
	}
	if err := l.convergeModeSysctls(); err != nil {
		l.Log.Error("sysctls not as the file says; the next resync retries", "error", err)
	}
	if err := l.convergeSync(); err != nil {
		l.Log.Error("sync daemons not as the file says; the next resync retries", "error", err)
	}
	if err := l.startBGP(next); err != nil {
		l.Log.Error("BGP not as the file says", "error", err)
	}
	retired := retiredKeys(declaredKeys(prev), next)
	// The table the kernel was last left in is what it holds for our
	// services, short of drift that the next resync repairs: a reload that
	// changes one weight costs one diff and one write, not a dump.
	kernel := l.r.Known()
	if kernel == nil {
		kernel, err = ipvsctl.Read(l.Kernel, append(declaredKeys(next), retired...))
		if err != nil {
			l.Log.Warn("read the kernel before reload; removed real servers are deleted at once", "error", err)
		}
	}
	l.startLeaving(next, kernel, retired)
	targets := l.targets(next, nil)
	l.checks.Update(targets)
	l.obs.reload(next, targets)
	l.setHook(prev, next)
	if err := l.reconcile(reasonReload, l.r.Update, l.deletable(retired), 0); err != nil {
		// The topology stays in force: the next resync retries the kernel.
		return fmt.Errorf("reloaded, but the kernel refused some operations (the next resync retries): %w", err)
	}
	l.Log.Info("reloaded", "services", len(next.Services), "real_servers", len(next.RealServers))
	return nil
}

func (l *loop) onMaintenance(req maintenanceRequest) error {
	if _, ok := l.topo.RealServerByName(req.node); !ok {
		return fmt.Errorf("%q: %w", req.node, ErrUnknownNode)
	}
	if l.drained[req.node] == req.on {
		return nil
	}
	if req.on {
		l.drained[req.node] = true
	} else {
		delete(l.drained, req.node)
	}
	l.Log.Info("maintenance", "real_server", req.node, "drained", req.on)
	state, previous := "drained", "undrained"
	if !req.on {
		state, previous = previous, state
	}
	l.hook.Load().Send(notify.Event{Kind: notify.KindMaintenance, Node: req.node, State: state, Previous: previous, At: l.Clock.Now()})
	return l.reconcile(reasonMaintenance, l.r.Update, nil, 0)
}

// convergeVIP puts the VIP where the director's role wants it, and puts
// it back if someone removed it.
func (l *loop) convergeVIP() error {
	_, err := l.vip.Converge(l.vipInterface(), l.topo.VIP, l.wantVIP())
	return err
}

// vipInterface is where the VIP goes: lo with BGP (the routers route it
// here; nothing must answer ARP for it), else director.interface.
func (l *loop) vipInterface() string {
	if l.topo.Director.BGP != nil {
		return bgpVIPInterface
	}
	return l.topo.Director.Interface
}

// wantVIP says whether this host should hold the VIP: a standalone
// director always does, one of a pair only as VRRP master.
func (l *loop) wantVIP() bool {
	if l.topo.Director.HA == nil {
		return true
	}
	return l.role != nil && l.role.state == vrrp.StateMaster
}

// reconcile computes the desired table from the topology, one snapshot of
// the check states and the maintenance set, and hands it to the reconciler
// step with the retired services it may delete; scheduled counts the
// deletions of leaving servers this resync was due to make, which are not
// drift. A failure is logged (the next resync retries) and returned.
func (l *loop) reconcile(why reason, step func(ipvsctl.Table, []ipvsctl.ServiceKey) ([]ipvsctl.Op, error), retired []ipvsctl.ServiceKey, scheduled int) error {
	states := l.checks.Snapshot()
	health := snapshotHealth(l.topo, states)
	desired := l.leaving.addTo(desiredTable(l.topo, health, l.drained))
	// The wall clock, not l.Clock: this times the kernel, which a fake
	// clock does not slow down.
	began := time.Now()
	ops, err := step(desired, retired)
	l.obs.reconciled(why, time.Since(began), ops, scheduled+deletedServices(ops), err)
	if len(ops) > 0 {
		// Most resyncs run no operation: name them only when there are.
		if l.opNamesTopo != l.topo {
			l.opNames, l.opNamesTopo = opNames(l.topo), l.topo
		}
		release := func() {}
		if l.HoldLog != nil {
			release = l.HoldLog()
		}
		for _, op := range ops {
			l.Log.Info("ipvs", append(l.opNames(op), "op", op.String(), "reason", string(why))...)
		}
		release()
	}
	l.publish()
	l.holdFault(err)
	l.reportBGP(err, health)
	if err != nil {
		l.Log.Error("reconcile failed; the next resync retries", "reason", string(why), "error", err)
		return err
	}
	l.reportQuorum(states, health)
	// Retiring services stay owned: a restart still deletes them.
	state := State{Owned: append(declaredKeys(l.topo), l.retiringKeys()...), FoundSysctls: l.sysctlsFound}
	for name := range l.drained {
		state.Maintenance = append(state.Maintenance, name)
	}
	if err := l.State.Save(state); err != nil {
		l.Log.Error("record state", "error", err)
		l.obs.stateNotRecorded(why, fmt.Errorf("record state: %w", err))
		return err
	}
	return nil
}

// warnAbout logs the settings of topo that are accepted but doubtful, as
// `director validate` prints them.
func (l *loop) warnAbout(topo *topology.Topology) {
	for _, w := range topo.Warnings {
		l.Log.Warn("topology: "+strings.TrimPrefix(w.Message, "warning: "), "file", w.File, "line", w.Line)
	}
}

// publish stores a view of the loop's state for the control socket and the
// metrics.
func (l *loop) publish() {
	v := &view{topo: l.topo, drained: maps.Clone(l.drained), leaving: maps.Clone(l.leaving), vip: l.vip.State()}
	if l.role != nil {
		v.role = l.role.state.String()
	}
	v.lastReload = l.lastReload
	l.view.Store(v)
	l.obs.vipHeld(l.vip.State().Held(), l.wantVIP())
}

// deletedServices counts the service deletions among ops: the diff deletes
// only the services it is handed as retired, so each is scheduled.
func deletedServices(ops []ipvsctl.Op) int {
	n := 0
	for _, op := range ops {
		if op.Kind == ipvsctl.DeleteService {
			n++
		}
	}
	return n
}

// targets lists one health-check target per check of each real server of
// each service. A server the kernel already has with a weight (or at
// weight 0 in maintenance) starts Up, every check of it.
func (l *loop) targets(topo *topology.Topology, adopted ipvsctl.Table) []healthcheck.Target {
	// Sized ahead: a Target is large, and growing the slice of 10,000 of
	// them was a tenth of a reload.
	n := 0
	for _, s := range topo.Services {
		n += len(s.RealServers) * len(s.Checks)
	}
	targets := make([]healthcheck.Target, 0, n)
	for _, s := range topo.Services {
		inKernel := map[netip.Addr]uint16{}
		if vs, ok := adopted.Find(serviceKey(topo, s)); ok {
			for _, dst := range vs.Destinations {
				if dst.Port == s.Port {
					inKernel[dst.Address] = dst.Weight
				}
			}
		}
		for _, rs := range topo.Members(s) {
			initial := healthcheck.Unknown
			// A server in maintenance sits at weight 0 on purpose: it is
			// adopted like any other, or a restart would cut its clients.
			if w, ok := inKernel[rs.Address]; ok && (w > 0 || l.drained[rs.Name]) {
				initial = healthcheck.Up
			}
			for _, c := range s.ChecksOf(rs.Name) {
				target := ProbeTarget{Address: netip.AddrPortFrom(rs.Address, c.Port)}
				if c.ThroughVIP {
					mark, _ := topo.CheckMark(rs.Name)
					target = ProbeTarget{Address: netip.AddrPortFrom(topo.VIP, c.Port), Mark: mark, Source: l.source}
				}
				targets = append(targets, healthcheck.Target{
					Key:              CheckKey(s.Name, rs.Name, c.Name),
					Prober:           l.NewProber(target, c),
					Settings:         probeSettings{target, c},
					Interval:         c.Interval,
					ConnectTimeout:   c.ConnectTimeout,
					Retry:            c.Retry,
					DelayBeforeRetry: c.DelayBeforeRetry,
					Rise:             c.Rise,
					Initial:          initial,
				})
			}
		}
	}
	return targets
}

// probeSettings is what a prober is built from: a reload that leaves it
// unchanged leaves the check's loop running.
type probeSettings struct {
	Target ProbeTarget
	Check  topology.Check
}

// Equal is reflect.DeepEqual's answer without reflection but for the
// settings of http and amqp checks, behind pointers that a new parse
// makes anew.
func (p probeSettings) Equal(other any) bool {
	o, ok := other.(probeSettings)
	if !ok || p.Target != o.Target {
		return false
	}
	a, b := p.Check, o.Check
	a.HTTP, a.AMQP, b.HTTP, b.AMQP = nil, nil, nil, nil
	return a == b && samePointee(p.Check.HTTP, o.Check.HTTP) && samePointee(p.Check.AMQP, o.Check.AMQP)
}

func samePointee[T any](a, b *T) bool {
	return a == b || (a != nil && b != nil && reflect.DeepEqual(*a, *b))
}

// notify tells Config.Notify, if set, the daemon's state.
func (l *loop) notify(state string) {
	if l.Notify != nil {
		l.Notify(state)
	}
}

// watchdog fires when the loop owes the service manager a WATCHDOG=1: a
// loop stuck on the kernel misses it. Nil (never) without Config.Watchdog.
func (l *loop) watchdog() <-chan time.Time {
	if l.Watchdog <= 0 {
		return nil
	}
	return l.Clock.After(l.Watchdog)
}
