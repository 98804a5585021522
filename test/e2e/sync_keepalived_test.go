//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 12, item 4, and keepalived's own pair beside lvsdr's: Debian's
// keepalived 2.2.7 with lvs_sync_daemon, managing the table itself
// (virtual_server blocks with TCP_CHECK), as an operator's keepalived pair
// runs. keepalived runs one sync daemon at a time (the backup daemon in
// BACKUP, the master daemon in MASTER), syncid = the VRID unless `id` says
// otherwise, on the kernel's default group and port, and leaves the sync
// sysctls at the kernel's defaults.

// kaAdvert is the advert interval of every pair with keepalived in it:
// keepalived's default, VRRPv2 at 1 s.
const kaAdvert = "VRRPv2, advert 1s"

// kaSyncHA is director.ha for an lvsdr director beside keepalived:
// keepalived's defaults (VRRPv2, 1 s), VRID 51, connection sync on.
func kaSyncHA(prio1, prio2 int) string {
	return fmt.Sprintf(", ha: {vrid: 51, version: 2, advert_interval: 1s, connection_sync: true, directors: [{name: d1, address: %s, priority: %d}, {name: d2, address: %s, priority: %d}]}",
		d1IP, prio1, d2IP, prio2)
}

// keepalivedSyncConf is the keepalived.conf of a director host of the lab:
// lvs_sync_daemon along VI_1 (VRID 51, VRRPv2 at 1 s, the VIP alone), and
// the lab's two services as virtual_server blocks: wrr, DR, persistence
// 50 s, the three nodes at weight 1 with keepalived's TCP_CHECK at the
// lab's settings.
func keepalivedSyncConf(host string, priority int, master bool) string {
	state := "BACKUP"
	if master {
		state = "MASTER"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global_defs {
    router_id %s
    lvs_sync_daemon eth0 VI_1
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/32 dev eth0
    }
}
`, host, state, priority, vip)
	for _, port := range []int{5672, 15672} {
		fmt.Fprintf(&b, `virtual_server %s %d {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    protocol TCP
`, vip, port)
		for i := 11; i <= 13; i++ {
			fmt.Fprintf(&b, `    real_server %s.%d %d {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
`, subnet, i, port)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// keepalivedSync writes a director host's keepalived.conf and starts
// keepalived (VRRP and checkers) with it, as "keepalived-HOST".
func (h *haLab) keepalivedSync(host string, priority int, master bool) (conf string, p *proc) {
	h.t.Helper()
	conf = filepath.Join(h.dir, "keepalived-"+host+".conf")
	if err := os.WriteFile(conf, []byte(keepalivedSyncConf(host, priority, master)), 0o644); err != nil {
		h.t.Fatal(err)
	}
	pid := func(kind string) string { return filepath.Join(h.dir, "keepalived-"+kind+host+".pid") }
	return conf, h.start("keepalived-"+host, host, nil, "keepalived", "--dont-fork", "--log-console", "-f", conf,
		"-p", pid(""), "-r", pid("vrrp-"), "-c", pid("checkers-"))
}

// daemons returns a host's `ipvsadm -L --daemon`, on one line.
func (h *haLab) daemons(host string) string {
	h.t.Helper()
	out := strings.TrimSpace(h.exec(host, "ipvsadm", "-L", "--daemon"))
	if out == "" {
		return "none"
	}
	return strings.Join(strings.Split(out, "\n"), "; ")
}

// backupHolds waits until host's ipvsadm -Lnc holds every source's
// connection ESTABLISHED (it fails the test if not) and returns the line
// that says so.
func (s *syncLab) backupHolds(host string, sources []string) string {
	s.t.Helper()
	n, shortest := s.waitEstablished(host, sources, len(sources), syncSlow)
	line := fmt.Sprintf("%s's ipvsadm -Lnc: %d of %d ESTABLISHED for %s:5672 (shortest expiry %s); its daemons: %s", host, n, len(sources), vip, shortest, s.daemons(host))
	s.t.Log(line)
	if n < len(sources) {
		s.t.Errorf("before the failover, %s\n%s", line, s.exec(host, "ipvsadm", "-Lnc"))
	}
	return line
}

// TestSyncKeepalivedInterop: an lvsdr director with connection_sync and a
// keepalived director with lvs_sync_daemon as one VRRP pair (keepalived's
// defaults, VRRPv2 at 1 s). 20 connections exchanging every 200 ms through
// the VIP live through the lvsdr master's death (keepalived takes over),
// the keepalived master's death (lvsdr takes over) and the lvsdr master's
// SIGTERM (keepalived takes over), with no failure: each side's sync
// daemons feed the other's.
func TestSyncKeepalivedInterop(t *testing.T) {
	needIPVS(t)
	s := newSyncPair(t, nil)
	s.directorExtra = kaSyncHA(150, 100)
	s.topology([3]int{1, 1, 1}, "")
	s.nodes()
	sources := s.clientSources(100, 20)
	s.runDirectorOn("d1")
	s.waitHolds("d1", syncSlow)
	s.keepalivedSync("d2", 100, false)
	s.waitTables(syncSlow)
	s.waitSoleMaster("d1", syncSlow, 3*time.Second)
	f := &syncFigures{title: "lvsdr (connection_sync) and keepalived 2.2.7 (lvs_sync_daemon), 20 connections exchanging every 200 ms", advert: kaAdvert}
	defer f.print()
	f.add("sync settings: d1 (lvsdr) %s; d2 (keepalived) %s", s.sysctls("d1"), s.sysctls("d2"))
	s.startConns("conns", sources, 200*time.Millisecond)
	check := func(what string, e syncEvent) {
		t.Helper()
		if e.failed > 0 {
			t.Errorf("%s: %s\n%s\n%s", what, e, strings.Join(s.conns("conns").fails, "\n"), s.roleChanges())
		}
	}

	// 1. The lvsdr master dies with its machine: keepalived's backup
	// daemon has received what lvsdr's master daemon sent.
	held := s.backupHolds("d2", sources)
	at := s.die("d1")
	e := s.observe("conns", at, "d2", false, 5*time.Second)
	f.add("lvsdr master (150) killed (kill -9, link down) → keepalived (100): %s; before it, %s; after it, d2's daemons: %s", e, held, s.daemons("d2"))
	check("lvsdr master killed", e)

	// 2. lvsdr comes back below keepalived and stays backup; its backup
	// daemon receives keepalived's master daemon. Then keepalived dies.
	s.directorExtra = kaSyncHA(50, 100)
	s.topology([3]int{1, 1, 1}, "")
	s.linkUp("d1")
	s.runDirectorOn("d1")
	s.waitTables(syncSlow)
	s.waitSoleMaster("d2", syncSlow, 3*time.Second)
	held = s.backupHolds("d1", sources)
	at = s.die("d2")
	e = s.observe("conns", at, "d1", false, 5*time.Second)
	f.add("keepalived master (100) killed (kill -9, link down) → lvsdr (50): %s; before it, %s", e, held)
	check("keepalived master killed", e)

	// 3. keepalived comes back below lvsdr and stays backup; then lvsdr
	// leaves with SIGTERM (priority 0).
	s.linkUp("d2")
	s.keepalivedSync("d2", 30, false)
	s.waitTables(syncSlow)
	s.waitSoleMaster("d1", syncSlow, 3*time.Second)
	held = s.backupHolds("d2", sources)
	at = s.stop("director-d1")
	e = s.observe("conns", at, "d2", true, 5*time.Second)
	s.waitExit("director-d1")
	f.add("lvsdr master (50) stopped (SIGTERM) → keepalived (30): %s; before it, %s", e, held)
	check("lvsdr master stopped", e)

	c := s.conns("conns")
	f.add("in all: %d connections, %d exchanges, %d failed", len(c.node), c.exchanges, len(c.fails))
	if len(c.fails) > 0 || c.open != len(sources) {
		t.Errorf("%d of %d connections open at the end, failures:\n%s\n%s", c.open, len(sources), strings.Join(c.fails, "\n"), s.roleChanges())
	}
	if lines := s.keepalivedComplaints("d2"); len(lines) > 0 {
		t.Logf("keepalived's complaints (not asserted: its checkers log too):\n%s", strings.Join(lines, "\n"))
	}
}

// newKeepalivedPair starts keepalived on d1 (MASTER, 150) and d2 (BACKUP,
// 100), both with lvs_sync_daemon, in front of the lab's nodes.
func newKeepalivedPair(t *testing.T) *syncLab {
	s := newSyncPair(t, nil)
	s.topology([3]int{1, 1, 1}, "") // for the nodes' realserver
	s.nodes()
	s.keepalivedSync("d1", 150, true)
	s.waitHolds("d1", syncSlow)
	s.keepalivedSync("d2", 100, false)
	s.waitTables(syncSlow)
	s.waitSoleMaster("d1", syncSlow, 3*time.Second)
	for _, d := range []string{"d1", "d2"} {
		t.Logf("%s: keepalived's sync daemons: %s", d, s.daemons(d))
	}
	return s
}

// TestSyncKeepalivedPair runs TestSyncFailoverLongLived's events on
// keepalived's own pair with lvs_sync_daemon, for docs/benchmarks.md: the
// master's death, its return (keepalived preempts as soon as it hears the
// backup, warm or not) and SIGTERM. Only the takeovers are asserted; the
// failures are the figures.
func TestSyncKeepalivedPair(t *testing.T) {
	needIPVS(t)
	s := newKeepalivedPair(t)
	sources := s.clientSources(100, 20)
	f := &syncFigures{title: "keepalived 2.2.7 pair, lvs_sync_daemon, 20 connections exchanging every 200 ms", advert: kaAdvert}
	defer f.print()
	f.add("sync settings (keepalived leaves the kernel's): d1 %s; d2 %s", s.sysctls("d1"), s.sysctls("d2"))
	s.startConns("conns", sources, 200*time.Millisecond)

	held := s.backupHolds("d2", sources)
	at := s.die("d1")
	e := s.observe("conns", at, "d2", false, 5*time.Second)
	f.add("master killed (kill -9, link down) → d2: %s; before it, %s", e, held)

	s.linkUp("d1")
	started := time.Now()
	s.keepalivedSync("d1", 150, true)
	n, shortest := s.established("d1", sources)
	var preempted time.Time
	for deadline := time.Now().Add(syncSlow); ; time.Sleep(200 * time.Millisecond) {
		var ok bool
		if preempted, ok = s.changedAt("d1", true, started); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived on d1 did not take the VIP back within %s\n%s", syncSlow, s.logs())
		}
	}
	e = s.observe("conns", preempted, "d1", true, 5*time.Second)
	e.moved = 0
	f.add("master back (link up, keepalived started): took the VIP %.1f s after its start: %s; when it started, d1's ipvsadm -Lnc: %d of %d ESTABLISHED (shortest expiry %s); %d connections failed from its start on",
		preempted.Sub(started).Seconds(), e, n, len(sources), shortest, s.conns("conns").failedSince(started))

	held = s.backupHolds("d2", sources)
	at = s.stop("keepalived-d1")
	e = s.observe("conns", at, "d2", true, 5*time.Second)
	s.waitExit("keepalived-d1")
	f.add("master stopped (SIGTERM) → d2: %s; before it, %s", e, held)

	c := s.conns("conns")
	f.add("in all: %d connections, %d exchanges, %d failed", len(c.node), c.exchanges, len(c.fails))
	if len(c.fails) > 0 {
		t.Logf("failed connections:\n%s", strings.Join(c.fails, "\n"))
	}
}

// TestSyncKeepalivedPairIdle runs TestSyncFailoverIdle's phase on
// keepalived's pair, at the sync settings keepalived leaves (the kernel's):
// 20 connections exchanging every 8 s, IPVS TCP timeout 20 s, the master
// killed after 50 s. The failures are the figure.
func TestSyncKeepalivedPairIdle(t *testing.T) {
	needIPVS(t)
	s := newKeepalivedPair(t)
	sources := s.clientSources(100, 20)
	for _, d := range []string{"d1", "d2"} {
		s.exec(d, "ipvsadm", "--set", fmt.Sprint(int(idleSyncTCPTimeout.Seconds())), "10", "10")
	}
	f := &syncFigures{title: fmt.Sprintf("keepalived 2.2.7 pair, lvs_sync_daemon, 20 connections exchanging every %s, IPVS TCP timeout %s, failover after %s", idleSyncEvery, idleSyncTCPTimeout, idleSyncWatch), advert: kaAdvert}
	defer f.print()
	settings := fmt.Sprintf("d1: %s; d2: %s", s.sysctls("d1"), s.sysctls("d2"))
	s.startConns("idle", sources, idleSyncEvery)
	start := time.Now()
	minHeld := len(sources)
	var seen []string
	for time.Since(start) < idleSyncWatch {
		time.Sleep(5 * time.Second)
		n, shortest := s.established("d2", sources)
		seen = append(seen, fmt.Sprintf("%.0fs:%d(%s)", time.Since(start).Seconds(), n, shortest))
		if time.Since(start) > 10*time.Second {
			minHeld = min(minHeld, n)
		}
	}
	t.Logf("d2's ESTABLISHED entries for the clients every 5 s (shortest expiry): %s", strings.Join(seen, " "))
	if c := s.conns("idle"); len(c.fails) > 0 {
		t.Fatalf("connections failed before the failover:\n%s", strings.Join(c.fails, "\n"))
	}
	at := s.die("d1")
	e := s.observe("idle", at, "d2", false, idleSyncAfter)
	f.add("keepalived's settings (%s): backup held at least %d of 20 after 10 s; master killed at %s: %s", settings, minHeld, idleSyncWatch, e)
	t.Logf("the connections:\n%s", strings.Join(s.conns("idle").fails, "\n"))
}
