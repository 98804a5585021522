package director

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// Connection sync: with director.ha.connection_sync, every director runs a
// master and a backup IPVS sync daemon at all times, whatever its VRRP
// role. The master daemon sends only the connections this director
// schedules (none on a backup, which has no VIP), and the backup daemon
// keeps the other directors' (the kernel does not loop its own multicast
// back), so a director that comes back holds the connections before it
// could take over. Every director uses the same syncid, so keepalived's
// lvs_sync_daemon (syncid = VRID by default) interoperates with it.
//
// A returning director of higher priority would preempt the master at
// once, and every connection it has not received yet would be reset
// (keepalived #237, #1966). So its VRRP router holds preemption until the
// table is warm: the backup daemon has run for one sync_refresh_period (by
// then the master has re-synced every connection that sent a packet), and
// the count of synced connections has stopped growing. The hold is
// bounded; a master that dies or leaves is taken over at once regardless.

// syncRefreshPeriod is sync_refresh_period as the director sets it.
const syncRefreshPeriod = 60 * time.Second

// syncWarmBound bounds the hold on preemption of a returning director.
const syncWarmBound = 2*syncRefreshPeriod + 30*time.Second

// syncSysctls are set under net.ipv4.vs while connection sync is on.
func syncSysctls(topo *topology.Topology) [][2]string {
	if ha := topo.Director.HA; ha == nil || !ha.ConnectionSync {
		return nil
	}
	return [][2]string{
		// "3 0" with a refresh period: a connection is synced again on its
		// first packet once the period has passed since its last sync,
		// whatever its packet count, so an AMQP connection with 60 s
		// heartbeats stays fresh on the backup (measured: docs/benchmarks.md,
		// "Connection sync"). The kernel's "3 50" re-syncs every 50th packet
		// and lets an idle connection expire on the backup.
		{"net.ipv4.vs.sync_threshold", "3 0"},
		{"net.ipv4.vs.sync_refresh_period", strconv.Itoa(int(syncRefreshPeriod.Seconds()))},
		// Version 1 carries each connection's timeout to the backup.
		{"net.ipv4.vs.sync_version", "1"},
	}
}

// syncDaemons are the daemons a director of topo runs: none without
// connection sync.
func syncDaemons(topo *topology.Topology) []ipvsctl.SyncDaemon {
	ha := topo.Director.HA
	if ha == nil || !ha.ConnectionSync {
		return nil
	}
	var out []ipvsctl.SyncDaemon
	for _, role := range []ipvsctl.SyncRole{ipvsctl.SyncMaster, ipvsctl.SyncBackup} {
		out = append(out, ipvsctl.SyncDaemon{Role: role, Interface: topo.Director.Interface, SyncID: ha.SyncID, Group: ha.SyncGroup, Port: ha.SyncPort})
	}
	return out
}

// syncState is the loop's view of connection sync.
type syncState struct {
	// since is when this director's daemons were started or adopted; zero
	// while it runs none.
	since time.Time
	// warm is set once the table is warm (or the hold ran out), and
	// lastCount is the count of connections at the last look.
	warm      bool
	lastCount int
}

// convergeSync starts, adopts or stops the sync daemons the topology in
// force wants, and sets the sync sysctls when they run.
func (l *loop) convergeSync() error {
	want := syncDaemons(l.topo)
	if len(want) == 0 && l.sync.since.IsZero() {
		// Daemons this director did not start (an operator's ipvsadm
		// --start-daemon) are not its business.
		return nil
	}
	if l.Syncd == nil {
		if len(want) > 0 {
			return errors.New("director.ha.connection_sync: this director cannot reach the kernel's sync daemons")
		}
		return nil
	}
	started, stopped, err := ipvsctl.ReconcileDaemons(l.Syncd, want)
	for _, d := range stopped {
		l.Log.Info("IPVS sync daemon stopped", "daemon", d.String())
	}
	for _, d := range started {
		l.Log.Info("IPVS sync daemon started", "daemon", d.String())
	}
	if err != nil {
		return fmt.Errorf("connection sync: %w", err)
	}
	switch {
	case len(want) == 0:
		l.sync = syncState{}
	case l.sync.since.IsZero():
		l.sync = syncState{since: l.Clock.Now()}
	}
	return nil
}

// checkWarm tells the VRRP router it may preempt once the connection table
// is warm; it runs at every sweep while the hold lasts.
func (l *loop) checkWarm() {
	if l.role == nil || l.sync.since.IsZero() || l.sync.warm {
		return
	}
	elapsed := l.Clock.Now().Sub(l.sync.since)
	count, err := l.countConnections()
	if err != nil {
		l.Log.Warn("count synced connections; preemption waits for its bound", "error", err)
	}
	stable := err == nil && count == l.sync.lastCount
	l.sync.lastCount = count
	if elapsed >= syncRefreshPeriod && stable || elapsed >= syncWarmBound {
		l.sync.warm = true
		l.role.router.Ready()
		l.Log.Info("connection table warm: preemption allowed", "connections", count, "after", elapsed.Round(time.Second))
	}
}

// countConnections counts the kernel's connection entries.
func (l *loop) countConnections() (int, error) {
	if l.Connections == nil {
		return countProcConnections()
	}
	return l.Connections()
}

// countProcConnections counts the lines of /proc/net/ip_vs_conn, the
// kernel's connection table (synced entries included), less its header.
func countProcConnections() (int, error) {
	f, err := os.Open("/proc/net/ip_vs_conn")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	n := -1
	for {
		line, err := r.ReadString('\n')
		if strings.TrimSpace(line) != "" {
			n++
		}
		if errors.Is(err, io.EOF) {
			return max(n, 0), nil
		}
		if err != nil {
			return 0, err
		}
	}
}
