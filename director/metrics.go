package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/bgp"
	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/metrics"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vrrp"
)

// loopTimeout is how long /healthz waits for the Run loop to answer before
// it calls the director stuck. A reconcile is milliseconds; only a kernel
// that stopped answering netlink holds the loop this long.
const loopTimeout = 5 * time.Second

// observer is what the director tells Prometheus and /healthz. Run makes it
// before anything else runs; its metrics are kept even when the topology
// turns the endpoint off, so that turning it on by a reload shows the
// counts from the start.
type observer struct {
	log        *slog.Logger
	registry   *prometheus.Registry
	checks     *metrics.CheckEvents
	reconciles *metrics.Reconciles
	quorum     *metrics.Quorum
	vip        *metrics.VIPHeld
	reloads    *metrics.Reloads
	hookFails  prometheus.Counter
	// view reads the loop's published view (watchView); nil until
	// watched.
	view atomic.Pointer[func() *view]
	// reloadSeen is the last reload record counted; only the loop's
	// goroutine touches it (vipHeld).
	reloadSeen *reloadRecord
	// catalog names the services of the topology in force, for the IPVS
	// collector, which runs on the HTTP server's goroutines.
	catalog atomic.Pointer[metrics.Catalog]
	// vipLost is set when the VIP should be on this host and is not.
	vipLost atomic.Bool
	// last is how the last reconcile ended, for /healthz; nil before the
	// first.
	last atomic.Pointer[reconcileOutcome]
	// pings carries /healthz's questions to the Run loop, which answers
	// by closing the channel it gets: an answer proves the loop turns.
	pings chan chan struct{}
	// stopping closes when Run returns, so that a /healthz in flight does
	// not hold the server's shutdown waiting for a loop that is gone.
	stopping chan struct{}

	// server and address are the endpoint and the address it was asked
	// for; only Run touches them.
	server  *metrics.Server
	address netip.AddrPort
}

type reconcileOutcome struct {
	reason reason
	err    error
}

func newObserver(kernel ipvsctl.Kernel, log *slog.Logger) *observer {
	o := &observer{log: log, registry: metrics.NewRegistry(), pings: make(chan chan struct{}), stopping: make(chan struct{})}
	o.checks = metrics.NewCheckEvents(o.registry, o.catalog.Load)
	o.reconciles = metrics.NewReconciles(o.registry)
	o.quorum = metrics.NewQuorum(o.registry, o.catalog.Load)
	o.vip = metrics.NewVIPHeld(o.registry, o.catalog.Load)
	o.reloads = metrics.NewReloads(o.registry)
	o.hookFails = metrics.NewNotifyFailures(o.registry)
	metrics.RegisterMaintenance(o.registry, o.drained, o.catalog.Load)
	metrics.RegisterIPVS(o.registry, kernel, o.catalog.Load, log)
	return o
}

// watchView has the metrics read the loop's published views: maintenance
// at scrape time, each reload's outcome as it is published.
func (o *observer) watchView(load func() *view) {
	o.view.Store(&load)
}

// published returns the loop's last published view, nil before the first
// or while no one called watchView.
func (o *observer) published() *view {
	load := o.view.Load()
	if load == nil {
		return nil
	}
	return (*load)()
}

// drained names the real servers in maintenance, as last published; false
// before the first view.
func (o *observer) drained() (map[string]bool, bool) {
	if v := o.published(); v != nil {
		return v.drained, true
	}
	return nil, false
}

// notifyFailed counts a failed run of the notify hook; it is the hook's
// notify.OnFailure.
func (o *observer) notifyFailed(notify.Event, error) {
	o.hookFails.Inc()
}

// watch hooks the check manager up: probe latencies as they happen, states
// at scrape time. Call it before the manager's first Update.
func (o *observer) watch(checks *healthcheck.Manager) {
	checks.OnProbe(o.checks.Probe)
	metrics.RegisterCheckStates(o.registry, checks.Snapshot, o.catalog.Load)
	metrics.RegisterCheckLag(o.registry, checks.Lag)
}

// transition counts one check state change.
func (o *observer) transition(t healthcheck.Transition) {
	o.checks.Transition(t.Key, t.To)
}

// start serves the endpoint of the topology, if it has one.
func (o *observer) start(topo *topology.Topology) error {
	o.catalog.Store(catalogOf(topo))
	addr := topo.Director.MetricsAddress
	if !addr.IsValid() {
		return nil
	}
	srv, err := metrics.Serve(addr, o.registry, o.healthy, o.log)
	if err != nil {
		return err
	}
	o.server, o.address = srv, addr
	o.log.Info("serving metrics", "address", srv.Addr().String())
	return nil
}

// reload follows a new topology: the IPVS collector reads its services, the
// series of checks and services it removed go, and the endpoint moves if
// its address changed. The new listener is opened before the old one
// closes; if it cannot be, the old one stays and the error is logged, since
// the rest of the reload stands.
func (o *observer) reload(topo *topology.Topology, targets []healthcheck.Target) {
	o.catalog.Store(catalogOf(topo))
	keys := make([]healthcheck.Key, len(targets))
	for i, t := range targets {
		keys[i] = t.Key
	}
	o.checks.Retain(keys)
	names := make([]string, len(topo.Services))
	for i, s := range topo.Services {
		names[i] = s.Name
	}
	o.quorum.Retain(names)

	addr := topo.Director.MetricsAddress
	if addr == o.address {
		return
	}
	var next *metrics.Server
	if addr.IsValid() {
		srv, err := metrics.Serve(addr, o.registry, o.healthy, o.log)
		if err != nil {
			o.log.Error("metrics endpoint not moved; it stays where it was until a restart", "from", o.address, "to", addr, "error", err)
			return
		}
		next = srv
		o.log.Info("serving metrics", "address", srv.Addr().String())
	}
	if o.server != nil {
		o.server.Stop()
		if next == nil {
			o.log.Info("metrics endpoint stopped", "address", o.address)
		}
	}
	o.server, o.address = next, addr
}

// stop closes the endpoint.
func (o *observer) stop() {
	close(o.stopping)
	if o.server != nil {
		o.server.Stop()
		o.server = nil
	}
}

// reconciled records a reconcile's kernel step; a resync's operations,
// beyond the scheduled ones (the deletions of leaving servers and retired
// services it was due to make), are drift.
func (o *observer) reconciled(why reason, took time.Duration, ops []ipvsctl.Op, scheduled int, err error) {
	o.reconciles.Observe(string(why), took, ops, err)
	if why == reasonResync && (err == nil || ops != nil) {
		// ops is nil with an error when the kernel could not be read: then
		// nothing is known of the drift, and the last figure stands.
		o.reconciles.Drift(max(len(ops)-scheduled, 0))
	}
	o.last.Store(&reconcileOutcome{reason: why, err: err})
}

// vipHeld records whether this host holds the VIP, and whether it should.
// The loop calls it after every view it publishes, so it also counts the
// reload that view reports, if it is a new one: every reload publishes its
// outcome, and is counted once.
func (o *observer) vipHeld(held, wanted bool) {
	o.vip.Set(held)
	o.vipLost.Store(wanted && !held)
	if v := o.published(); v != nil && v.lastReload != nil && v.lastReload != o.reloadSeen {
		o.reloadSeen = v.lastReload
		r := v.lastReload
		o.reloads.Observe(r.Time, r.OK, r.Duration)
	}
}

// watchBGP reports the BGP controller's snapshot at scrape time.
func (o *observer) watchBGP(snapshot func() (bgp.Snapshot, bool)) {
	metrics.RegisterBGP(o.registry, snapshot)
}

// watchRole reports the VRRP router's status at scrape time.
func (o *observer) watchRole(status func() (vrrp.Status, bool)) {
	metrics.RegisterVRRP(o.registry, status)
}

// catalogOf names the services and real servers of a topology for the
// metrics, the firewall-mark services of its checks through the VIP
// included.
func catalogOf(topo *topology.Topology) *metrics.Catalog {
	c := &metrics.Catalog{VIP: topo.VIP, Nodes: make(map[netip.Addr]string, len(topo.RealServers))}
	for _, s := range topo.Services {
		cs := metrics.CatalogService{Name: s.Name, Key: serviceKey(topo, s)}
		if s.SorryServer != nil {
			cs.Sorry = netip.AddrPortFrom(s.SorryServer.Address, s.SorryServer.Port)
		}
		c.Services = append(c.Services, cs)
	}
	for _, rs := range topo.RealServers {
		c.Nodes[rs.Address] = rs.Name
		if mark, ok := topo.CheckMark(rs.Name); ok {
			c.Services = append(c.Services, metrics.CatalogService{Name: metrics.ThroughVIPService, Key: ipvsctl.ServiceKey{FWMark: mark}})
		}
	}
	return c
}

// stateNotRecorded records a reconcile whose kernel step succeeded but
// whose state file could not be written.
func (o *observer) stateNotRecorded(why reason, err error) {
	o.reconciles.Failed(string(why))
	o.last.Store(&reconcileOutcome{reason: why, err: err})
}

// errLoopStuck means the Run loop did not answer /healthz in time.
var errLoopStuck = errors.New("the director's loop did not answer")

// healthy is /healthz: nil when the Run loop answers and the last reconcile
// succeeded.
func (o *observer) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, loopTimeout)
	defer cancel()
	reply := make(chan struct{})
	select {
	case o.pings <- reply:
	case <-o.stopping:
		return errors.New("the director is stopping")
	case <-ctx.Done():
		return fmt.Errorf("%w within %s (a reconcile may be stuck on the kernel)", errLoopStuck, loopTimeout)
	}
	<-reply
	last := o.last.Load()
	switch {
	case last == nil:
		return errors.New("starting: no reconcile yet")
	case last.err != nil:
		return fmt.Errorf("last reconcile (%s) failed: %w", last.reason, last.err)
	case o.vipLost.Load():
		return errors.New("the VIP is not on this host (the next resync binds it again)")
	}
	return nil
}
