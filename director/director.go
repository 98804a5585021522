// Package director is the balancer daemon: it keeps kernel IPVS at the table
// that the topology and the health checks want. The flow is one way:
// topology → desired table → diff → kernel, and probe → check state →
// desired table. One goroutine, Run's loop, owns that state; everyone else
// (the control socket, /metrics) reads the snapshots it publishes. The
// table is left in place when the director stops, so a restart or an
// upgrade drops no connection.
package director

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vip"
	"github.com/lvsdr/lvsdr/vrrp"
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

// Config is what a director is made of. Every field but ControlSocket is
// required.
type Config struct {
	Kernel ipvsctl.Kernel
	VIP    vip.Binder
	Sysctl Sysctls
	Clock  clock.Clock
	Log    *slog.Logger
	State  StateFile
	// Load reads and validates the topology file; it is called at start and
	// on every reload.
	Load func() (*topology.Topology, error)
	// NewProber makes the probe of one check of one real server.
	NewProber func(target ProbeTarget, check topology.Check) healthcheck.Prober
	// Notify, if set, is told the daemon's state in sd_notify(3)'s words, on
	// Run's goroutine (it must not block): READY=1 after the first
	// reconcile, RELOADING=1 and READY=1 around a reload, WATCHDOG=1 every
	// Watchdog (0 for never), STOPPING=1.
	Notify   func(state string)
	Watchdog time.Duration
	// ControlSocket is where `director status` asks for check states; none if
	// empty.
	ControlSocket string
	// Name picks this director's entry in director.ha.directors; empty
	// finds it by the addresses of director.interface.
	Name string
	// VRRP opens the VRRP connection on the interface from this director's
	// address; nil opens a raw socket (vrrp.Listen).
	VRRP func(iface string, self netip.Addr) (vrrp.Conn, error)
	// Syncd runs the kernel's IPVS connection sync daemons; nil refuses
	// director.ha.connection_sync.
	Syncd ipvsctl.SyncDaemons
	// LinkUp tells whether an interface is up, so that a director of a
	// pair whose link is down goes to VRRP fault; nil never looks.
	LinkUp func(iface string) (bool, error)
	// BGP makes the BGP speaker of director.bgp; nil embeds GoBGP.
	BGP func() bgp.Speaker
	// HoldLog, if set, gathers the log's lines until release: the loop
	// holds it while it logs a reconcile's operations, 11,000 lines at a
	// start from empty, so that they go out in a few writes.
	HoldLog func() (release func())
	// Connections counts the kernel's connection entries, to tell when a
	// returning director's synced table is warm; nil reads
	// /proc/net/ip_vs_conn.
	Connections func() (int, error)
}

// Director runs the balancer. Make one with New.
type Director struct {
	Config

	// reloads and maintenance carry requests from other goroutines to
	// Run's loop, which alone acts on them.
	reloads     chan chan error
	maintenance chan maintenanceRequest
	// pending counts check transitions and reloads not yet reconciled, so
	// tests on a fake clock know when the director is idle.
	pending atomic.Int64
	// view is the loop's last published snapshot, for readers on other
	// goroutines; nil before the first reconcile.
	view atomic.Pointer[view]
	// hook runs the topology's notify command.
	hook atomic.Pointer[notify.Hook]
	// obs feeds /metrics and /healthz (metrics.go).
	obs *observer
	// router is the VRRP router while director.ha is set, for the control
	// socket and the metrics (it is safe for concurrent use).
	router atomic.Pointer[vrrp.Router]
	// announcer is the BGP controller while director.bgp is set.
	announcer atomic.Pointer[bgp.Controller]
}

// New returns a director that is not running yet.
func New(cfg Config) *Director {
	d := &Director{
		Config:      cfg,
		reloads:     make(chan chan error),
		maintenance: make(chan maintenanceRequest),
		obs:         newObserver(cfg.Kernel, cfg.Log),
	}
	d.obs.watchRole(d.HAStatus)
	d.obs.watchBGP(d.BGPStatus)
	d.obs.watchView(d.view.Load)
	return d
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

// ErrNoHA means the topology in force has no director.ha.
var ErrNoHA = errors.New("this director runs without director.ha (no VRRP)")

// Reload makes a running director read its file again: an invalid file is
// logged and changes nothing, a valid one is applied as a diff. It returns
// once Run has taken the request; ReloadAndWait waits for the outcome.
func (d *Director) Reload() {
	d.pending.Add(1)
	d.reloads <- nil
}

// ReloadAndWait is Reload that returns the outcome: nil when the new file
// is in force, the reason otherwise (the old topology then stays).
func (d *Director) ReloadAndWait() error {
	reply := make(chan error, 1)
	d.pending.Add(1)
	d.reloads <- reply
	return <-reply
}

// SetMaintenance puts a real server in maintenance (weight 0 in every
// service: no new clients, established ones stay) or takes it out, and
// records it so that a restart keeps it. It returns once Run applied it.
func (d *Director) SetMaintenance(node string, on bool) error {
	req := maintenanceRequest{node: node, on: on, reply: make(chan error, 1)}
	d.maintenance <- req
	return <-req.reply
}

// CheckKey names one check of one real server in one service.
func CheckKey(service, realServer, check string) healthcheck.Key {
	return healthcheck.Key{Service: service, RealServer: realServer, Check: check}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
