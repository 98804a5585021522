// Package director is the balancer daemon: it keeps kernel IPVS at the table
// that the topology and the health checks want. The flow is one way:
// topology → desired table → diff → kernel, and probe → check state →
// desired table. The table is left in place when the director stops, so a
// restart or an upgrade drops no connection.
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
)

// Sysctls sets kernel parameters.
type Sysctls interface {
	Set(name, value string) error
}

// DirectorSysctls are set at start: expire_nodest_conn drops the connections
// of a deleted real server at once instead of letting clients hang on it, and
// expire_quiescent_template lets persistence templates of a weight-0 server
// expire so returning clients are sent elsewhere.
var DirectorSysctls = [][2]string{
	{"net.ipv4.vs.expire_nodest_conn", "1"},
	{"net.ipv4.vs.expire_quiescent_template", "1"},
}

// Director runs the balancer. Every field but ControlSocket is required.
type Director struct {
	Kernel ipvsctl.Kernel
	VIP    VIPBinder
	Sysctl Sysctls
	Clock  clock.Clock
	Log    *slog.Logger
	State  StateFile
	// Load reads and validates the topology file; it is called at start and
	// on every reload.
	Load func() (*topology.Topology, error)
	// NewProber makes the probe of one check of one real server.
	NewProber func(target ProbeTarget, check topology.Check) healthcheck.Prober
	// ControlSocket is where `director status` asks for check states; none if
	// empty.
	ControlSocket string

	// pending counts check transitions and reloads not yet reconciled, so
	// tests on a fake clock know when the director is idle.
	pending atomic.Int64
	// reloads carries Reload requests to Run, maintenance requests those of
	// SetMaintenance.
	reloads     chan struct{}
	maintenance chan maintenanceRequest
	chansOnce   sync.Once
	// drained names the real servers in maintenance; only Run touches it.
	// drainedView is a copy for the control socket's status.
	drained     map[string]bool
	drainedView atomic.Pointer[map[string]bool]
	// leavingView is a copy of leaving for the control socket's status.
	leavingView atomic.Pointer[[]leaving]
	// leaving lists the destinations removed by a reload that wait for
	// their connections to end (graceful.go); only Run touches it.
	leaving []leaving
	// retiring holds the services a reload removed whose destinations are
	// leaving; each is deleted once they have all left. Only Run touches
	// it.
	retiring map[ipvsctl.ServiceKey]bool
	// hook runs the topology's notify command; quorum holds the last
	// quorum state of each service, to report its changes (quorum.go).
	hook   atomic.Pointer[notify.Hook]
	quorum map[string]bool
	// obs feeds /metrics and /healthz (metrics.go); Run makes it.
	obs *observer
}

// ProbeTarget is where a check connects, and how.
type ProbeTarget struct {
	Address netip.AddrPort
	// Mark is the SO_MARK of the probe's packets, 0 for none: a check
	// through the VIP is routed to its real server by a firewall-mark
	// service.
	Mark uint32
	// Source is the local address to bind, the zero Addr for any.
	Source netip.Addr
}

type maintenanceRequest struct {
	node  string
	on    bool
	reply chan error
}

// hookGrace bounds how long a stopping director waits for its notify hook.
const hookGrace = 5 * time.Second

// ErrUnknownNode means a maintenance request named no real server of the
// topology.
var ErrUnknownNode = errors.New("no real server of that name in the topology")

// Run starts the director and runs it until ctx is done.
func (d *Director) Run(ctx context.Context) error {
	topo, err := d.Load()
	if err != nil {
		return err
	}
	// Before the VIP goes on: a director that cannot check through the VIP
	// stops without having bound it.
	source, err := d.prepareVIPChecks(topo)
	if err != nil {
		return err
	}
	if err := d.VIP.Bind(topo.Director.Interface, topo.VIP); err != nil {
		return err
	}
	d.announce(topo)
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
	d.drained = state.maintenance()
	d.publishDrained()
	// Servers the kernel already has in stay in until a check says down, so
	// a restart does not flap them.
	adopted, err := ipvsctl.Read(d.Kernel, ipvsctl.DeclaredKeys(topo))
	if err != nil {
		return err
	}

	d.obs = newObserver(d.Kernel, d.Log)
	dirty := make(chan struct{}, 1)
	checks := healthcheck.NewManager(d.Clock, func(t healthcheck.Transition) {
		d.obs.transition(t)
		service, node, check := t.Key.Service, t.Key.RealServer, t.Key.Check
		d.Log.Info("check state changed", "service", service, "real_server", node, "check", check, "from", t.From, "to", t.To, "error", errString(t.Err))
		d.hook.Load().Send(notify.Event{Kind: "check", Service: service, Node: node, Check: check,
			Previous: t.From.String(), State: t.To.String(), Error: errString(t.Err), At: t.At})
		d.pending.Add(1)
		select {
		case dirty <- struct{}{}:
		default:
		}
	})
	defer checks.Stop()
	d.obs.watch(checks)
	checks.Update(d.targets(topo, adopted, source))

	if d.ControlSocket != "" {
		stop, err := serveControl(d.ControlSocket, checks, d.SetMaintenance, func() (Report, error) { return d.report(checks) }, d.Log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := d.obs.start(topo); err != nil {
		return err
	}
	defer d.obs.stop()

	r := ipvsctl.NewReconciler(d.Kernel)
	// Services retired while the director was down drain as on a reload.
	retired := retiredKeys(state.Owned, topo)
	if old, err := ipvsctl.Read(d.Kernel, retired); err == nil {
		d.startLeaving(topo, old, retired)
	} else {
		d.Log.Warn("read the kernel before start; retired services are deleted at once", "error", err)
	}
	d.reconcile(r.Sync, topo, checks, d.deletable(retired), "start")
	d.Log.Info("director running", "vip", topo.VIP, "interface", topo.Director.Interface, "services", len(topo.Services), "real_servers", len(topo.RealServers))

	resync := d.Clock.After(d.nextSweep(topo))
	for {
		select {
		case <-ctx.Done():
			d.Log.Info("director stopping; the IPVS table stays in place")
			return nil
		case <-dirty:
			n := d.pending.Load()
			d.reconcile(r.Update, topo, checks, nil, "check")
			d.pending.Add(-n)
		case <-resync:
			// Leaving servers whose connections ended drop out of the
			// desired table, so this resync deletes them.
			// Their deletions are scheduled, not drift: the metrics are
			// told which they are.
			before := slices.Clone(d.leaving)
			d.sweepLeaving()
			d.obs.swept = slices.DeleteFunc(before, func(l leaving) bool { return slices.Contains(d.leaving, l) })
			// Emptied retiring services are forgotten before the reconcile
			// that deletes them, so that the state it records no longer
			// owns them; a failure brings them back for the next resync.
			emptied := d.emptiedRetiring()
			for _, k := range emptied {
				delete(d.retiring, k)
			}
			if d.reconcile(r.Sync, topo, checks, emptied, "resync") != nil {
				for _, k := range emptied {
					d.retiring[k] = true
				}
			}
			resync = d.Clock.After(d.nextSweep(topo))
		case <-d.requests().reloads:
			topo = d.reload(topo, r, checks)
		case req := <-d.requests().maintenance:
			req.reply <- d.setMaintenance(req, topo, r, checks)
		case reply := <-d.obs.pings:
			// /healthz asks whether this loop still turns.
			close(reply)
		}
	}
}

// reload applies the topology file again and returns the topology in force:
// the new one, or the old one if the new file is invalid.
func (d *Director) reload(topo *topology.Topology, r *ipvsctl.Reconciler, checks *healthcheck.Manager) *topology.Topology {
	defer d.pending.Add(-1)
	next, err := d.Load()
	var source netip.Addr
	if err == nil {
		source, err = d.prepareVIPChecks(next)
	}
	if err == nil {
		err = d.rebindVIP(topo, next)
	}
	if err != nil {
		d.Log.Error("reload rejected, nothing changed", "error", err)
		return topo
	}
	retired := retiredKeys(ipvsctl.DeclaredKeys(topo), next)
	if kernel, err := ipvsctl.Read(d.Kernel, append(ipvsctl.DeclaredKeys(next), retired...)); err == nil {
		d.startLeaving(next, kernel, retired)
	} else {
		d.Log.Warn("read the kernel before reload; removed real servers are deleted at once", "error", err)
	}
	targets := d.targets(next, nil, source)
	checks.Update(targets)
	d.obs.reload(next, targets)
	d.setHook(topo, next)
	d.reconcile(r.Update, next, checks, d.deletable(retired), "reload")
	d.Log.Info("reloaded", "services", len(next.Services), "real_servers", len(next.RealServers))
	return next
}

// Reload makes a running director read its file again: an invalid file is
// logged and changes nothing, a valid one is applied as a diff. It returns
// once Run has taken the request.
func (d *Director) Reload() {
	d.pending.Add(1)
	d.requests().reloads <- struct{}{}
}

// SetMaintenance puts a real server in maintenance (weight 0 in every
// service: no new clients, established ones stay) or takes it out, and
// records it so that a restart keeps it. It returns once Run applied it.
func (d *Director) SetMaintenance(node string, on bool) error {
	req := maintenanceRequest{node: node, on: on, reply: make(chan error, 1)}
	d.requests().maintenance <- req
	return <-req.reply
}

func (d *Director) requests() *Director {
	d.chansOnce.Do(func() {
		d.reloads = make(chan struct{})
		d.maintenance = make(chan maintenanceRequest)
	})
	return d
}

func (d *Director) setMaintenance(req maintenanceRequest, topo *topology.Topology, r *ipvsctl.Reconciler, checks *healthcheck.Manager) error {
	if _, ok := topo.RealServerByName(req.node); !ok {
		return fmt.Errorf("%q: %w", req.node, ErrUnknownNode)
	}
	if d.drained[req.node] == req.on {
		return nil
	}
	if req.on {
		d.drained[req.node] = true
	} else {
		delete(d.drained, req.node)
	}
	d.publishDrained()
	d.Log.Info("maintenance", "real_server", req.node, "drained", req.on)
	state, previous := "drained", "undrained"
	if !req.on {
		state, previous = previous, state
	}
	d.hook.Load().Send(notify.Event{Kind: "maintenance", Node: req.node, State: state, Previous: previous, At: d.Clock.Now()})
	return d.reconcile(r.Update, topo, checks, nil, "maintenance")
}

// reconcile computes the desired table from the topology, the check states
// and the maintenance set, and hands it to the reconciler; a failure is
// logged (the next resync retries) and returned.
func (d *Director) reconcile(
	step func(ipvsctl.Table, []ipvsctl.ServiceKey) ([]ipvsctl.Op, error),
	topo *topology.Topology, checks *healthcheck.Manager, retired []ipvsctl.ServiceKey, reason string,
) error {
	health := healthy(topo, checks)
	d.publishLeaving()
	desired := d.withLeaving(ipvsctl.Desired(topo, health, d.drained))
	// The wall clock, not d.Clock: this times the kernel, which a fake
	// clock does not slow down.
	began := time.Now()
	ops, err := step(desired, retired)
	d.obs.reconciled(reason, time.Since(began), ops, err)
	if len(ops) > 0 {
		// Most resyncs run no operation: name them only when there are.
		names := opNames(topo)
		for _, op := range ops {
			d.Log.Info("ipvs", append(names(op), "op", op.String(), "reason", reason)...)
		}
	}
	if err != nil {
		d.Log.Error("reconcile failed; the next resync retries", "reason", reason, "error", err)
		return err
	}
	d.reportQuorum(topo, checks, health)
	// Retiring services stay owned: a restart still deletes them.
	state := State{Owned: append(ipvsctl.DeclaredKeys(topo), d.retiringKeys()...)}
	for name := range d.drained {
		state.Maintenance = append(state.Maintenance, name)
	}
	if err := d.State.Save(state); err != nil {
		d.Log.Error("record state", "error", err)
		d.obs.stateNotRecorded(reason, fmt.Errorf("record state: %w", err))
		return err
	}
	return nil
}

// rebindVIP moves the VIP when a reload changes it or its interface: the new
// one is bound before the old one goes.
func (d *Director) rebindVIP(from, to *topology.Topology) error {
	if from.VIP == to.VIP && from.Director.Interface == to.Director.Interface {
		return nil
	}
	if err := d.VIP.Bind(to.Director.Interface, to.VIP); err != nil {
		return err
	}
	d.announce(to)
	return d.VIP.Unbind(from.Director.Interface, from.VIP)
}

// announce sends a gratuitous ARP for the VIP; a failure costs only the time
// until caches expire, so it is logged, not fatal.
func (d *Director) announce(topo *topology.Topology) {
	if err := d.VIP.Announce(topo.Director.Interface, topo.VIP); err != nil {
		d.Log.Warn("gratuitous ARP not sent; peers learn the VIP's MAC when their ARP cache expires", "error", err)
	}
}

// CheckKey names one check of one real server in one service:
// "amqp/rmq_node1/tcp".
func CheckKey(service, realServer, check string) healthcheck.Key {
	return healthcheck.Key{Service: service, RealServer: realServer, Check: check}
}

// targets lists one health-check target per check of each real server of
// each service. A server the kernel already has with a weight starts Up,
// every check of it.
func (d *Director) targets(topo *topology.Topology, adopted ipvsctl.Table, source netip.Addr) []healthcheck.Target {
	var targets []healthcheck.Target
	for _, s := range topo.Services {
		vs, _ := adopted.Find(ipvsctl.Key(topo, s))
		for _, rs := range topo.Members(s) {
			initial := healthcheck.Unknown
			// A server in maintenance sits at weight 0 on purpose: it is
			// adopted like any other, or a restart would cut its clients.
			if slices.ContainsFunc(vs.Destinations, func(dst ipvsctl.Destination) bool {
				return dst.Address == rs.Address && (dst.Weight > 0 || d.drained[rs.Name])
			}) {
				initial = healthcheck.Up
			}
			for _, c := range s.ChecksOf(rs.Name) {
				target := ProbeTarget{Address: netip.AddrPortFrom(rs.Address, c.Port)}
				if c.ThroughVIP {
					mark, _ := topo.CheckMark(rs.Name)
					target = ProbeTarget{Address: netip.AddrPortFrom(topo.VIP, c.Port), Mark: mark, Source: source}
				}
				targets = append(targets, healthcheck.Target{
					Key:              CheckKey(s.Name, rs.Name, c.Name),
					Prober:           d.NewProber(target, c),
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

// healthy reads the check states: a real server passes when every check of
// it in the service is up; a service without checks passes them all.
func healthy(topo *topology.Topology, checks *healthcheck.Manager) ipvsctl.Health {
	services := make(map[string]topology.Service, len(topo.Services))
	for _, s := range topo.Services {
		services[s.Name] = s
	}
	return func(service, realServer string) bool {
		for _, c := range services[service].ChecksOf(realServer) {
			st, checked := checks.Status(CheckKey(service, realServer, c.Name))
			if checked && st.State != healthcheck.Up {
				return false
			}
		}
		return true
	}
}

// retiredKeys returns the keys among owned that topo no longer declares.
func retiredKeys(owned []ipvsctl.ServiceKey, topo *topology.Topology) []ipvsctl.ServiceKey {
	declared := ipvsctl.DeclaredKeys(topo)
	var retired []ipvsctl.ServiceKey
	for _, k := range owned {
		if !slices.Contains(declared, k) {
			retired = append(retired, k)
		}
	}
	return retired
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
