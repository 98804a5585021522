//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realserverSh is what a keepalived installation's realserver.sh does on
// a node, in ip(8) syntax: the VIP on lo as a /32 (scope global, as
// `ifconfig lo:0` makes it) and the ARP sysctls on "all".
var realserverSh = fmt.Sprintf(`ip addr add %s/32 dev lo label lo:0
echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce
`, vip)

// TestMigrateFromKeepalived runs docs/migration.md end to end: a keepalived
// pair (VRRPv2 at 1 s, lvs_sync_daemon, virtual_server blocks) in front of
// three nodes set up by realserver.sh; its keepalived.conf imported with
// `director import-keepalived`; `director apply --dry-run` on both
// directors finds nothing to do; `realserver start` takes over the nodes;
// lvsdr replaces the backup's keepalived, takes over when the master's
// keepalived stops, and replaces that one too, which takes the VIP back
// once warm. 20 long-lived connections through the VIP keep exchanging
// with no failure throughout, and new connections are served at each step.
func TestMigrateFromKeepalived(t *testing.T) {
	needIPVS(t)
	s := newSyncPair(t, nil)
	for _, node := range []string{"rs1", "rs2", "rs3"} {
		s.script(node, realserverSh)
		s.listen(node, 5672)
		s.listen(node, 15672)
	}
	sources := s.clientSources(100, 20)
	fresh := s.clientSources(150, 10)
	f := &syncFigures{title: "migration from a keepalived 2.2.7 pair (lvs_sync_daemon) to lvsdr, 20 connections exchanging every 200 ms", advert: kaAdvert}
	defer f.print()
	started := time.Now()
	step := func(format string, args ...any) {
		f.add("%5.0f s: %s", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	noFailures := func(stage string) {
		t.Helper()
		if c := s.conns("conns"); len(c.fails) > 0 || c.open != len(sources) {
			t.Fatalf("%s: %d of %d connections open, failures:\n%s\n%s", stage, c.open, len(sources), strings.Join(c.fails, "\n"), s.roleChanges())
		}
		if reached, failed := s.newConnections(fresh); failed > 0 {
			t.Errorf("%s: %d of %d new connections failed (reached %v)", stage, failed, len(fresh), count(reached))
		}
	}

	// The keepalived pair, as the operator runs it.
	confD1, _ := s.keepalivedSync("d1", 150, true)
	s.waitHolds("d1", syncSlow)
	s.keepalivedSync("d2", 100, false)
	s.waitTables(syncSlow)
	s.waitSoleMaster("d1", syncSlow, 3*time.Second)
	s.startConns("conns", sources, 200*time.Millisecond)
	step("keepalived pair up, d1 master; 20 connections open, by node %v", s.conns("conns").byNode())

	// Step 1: import d1's keepalived.conf, naming d2 and its priority.
	s.config = filepath.Join(s.dir, "topology.yaml")
	out, err := s.command("d1", binary(t, "director"), "import-keepalived", confD1, "--director-address", d1IP, "--peer", d2IP+"=100", "-o", s.config)
	t.Logf("director import-keepalived:\n%s", out)
	if err != nil {
		t.Fatalf("director import-keepalived: %v\n%s", err, out)
	}
	topo, _ := os.ReadFile(s.config)
	t.Logf("the imported topology:\n%s", topo)
	for _, want := range []string{"connection_sync: true", "vrid: 51", "version: 2", "priority: 150", "priority: 100", "persistence_timeout: 50s", "scheduler: wrr", "forwarding: dr"} {
		if !strings.Contains(string(topo), want) {
			t.Errorf("the imported topology lacks %q", want)
		}
	}
	s.exec("d1", binary(t, "director"), "validate", "--config", s.config)

	// Step 2: compare with the kernel keepalived programmed.
	for _, d := range []string{"d1", "d2"} {
		out, err := s.command(d, s.args(d, "apply", "--dry-run")...)
		t.Logf("%s: director apply --dry-run:\n%s", d, out)
		if err != nil || !strings.Contains(out, "# the kernel already matches the topology") {
			t.Errorf("%s: director apply --dry-run against keepalived's table: %v, want no operation:\n%s", d, err, out)
		}
	}
	step("imported; director apply --dry-run on both directors: no operation")
	noFailures("after the import")

	// Step 3: realserver start over realserver.sh's setup: it replaces
	// the VIP's global scope with the host scope DR needs, in place.
	for _, node := range []string{"rs1", "rs2", "rs3"} {
		rs := func(cmd string) (string, error) {
			return s.command(node, binary(t, "realserver"), cmd, "--config", s.config, "--state-dir", filepath.Join(s.dir, node))
		}
		out, err := rs("start")
		t.Logf("%s: realserver start: %v\n%s", node, err, out)
		if err != nil {
			t.Fatalf("%s: realserver start: %v\n%s", node, err, out)
		}
		if !strings.Contains(out, "replacing the VIP on lo") {
			t.Errorf("%s: realserver start did not move realserver.sh's VIP to scope host:\n%s", node, out)
		}
		if out, err := rs("status"); err != nil {
			t.Errorf("%s: realserver status after start: %v\n%s", node, err, out)
		}
	}
	time.Sleep(2 * time.Second)
	step("realserver start on the three nodes (the VIP moved to scope host)")
	noFailures("after realserver start")

	// Step 4: lvsdr replaces keepalived on the backup, d2.
	s.stop("keepalived-d2")
	s.waitExit("keepalived-d2")
	s.runDirectorOn("d2")
	s.waitTables(syncSlow)
	s.waitSoleMaster("d1", syncSlow, 3*time.Second)
	s.checkRoles(map[string]string{"d2": "backup"})
	held := s.backupHolds("d2", sources)
	step("lvsdr replaced keepalived on d2 (backup beside keepalived's master): %s", held)
	noFailures("with lvsdr as the backup")

	// Step 5: the keepalived master stops; lvsdr takes over.
	at := s.stop("keepalived-d1")
	e := s.observe("conns", at, "d2", true, 5*time.Second)
	s.waitExit("keepalived-d1")
	step("keepalived on d1 stopped (SIGTERM) → lvsdr on d2: %s", e)
	if e.failed > 0 {
		t.Errorf("the keepalived master stopped: %s", e)
	}
	noFailures("after lvsdr took over")

	// Step 6: lvsdr replaces keepalived on d1, the higher priority: it
	// waits until its table is warm, then takes the VIP back.
	back := time.Now()
	s.runDirectorOn("d1")
	var preempted time.Time
	for deadline := time.Now().Add(200 * time.Second); ; time.Sleep(time.Second) {
		var ok bool
		if preempted, ok = s.changedAt("d1", true, back); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lvsdr on d1 did not take the VIP back within 200 s\n%s", s.logs())
		}
	}
	e = s.observe("conns", preempted, "d1", true, 5*time.Second)
	e.moved = 0
	s.waitTables(syncSlow)
	s.checkRoles(map[string]string{"d1": "master", "d2": "backup"})
	step("lvsdr replaced keepalived on d1: held preemption %.0f s until warm, then took the VIP back: %s", preempted.Sub(back).Seconds(), e)
	noFailures("after the second director")

	c := s.conns("conns")
	step("in all: %d connections, %d exchanges, %d failed", len(c.node), c.exchanges, len(c.fails))
}

// newConnections opens one new connection to the VIP's amqp port from
// each source and returns the node each reached and how many failed.
func (s *syncLab) newConnections(sources []string) (map[string]string, int) {
	s.t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", s.ns["client"], self)
	cmd.Env = append(os.Environ(), "LVSDR_E2E_ROLE=connect", "LVSDR_E2E_TARGET="+vip+":5672", "LVSDR_E2E_SOURCES="+strings.Join(sources, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	reached := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			reached[f[0]] = f[1]
		}
	}
	if failed := len(sources) - len(reached); failed > 0 {
		s.t.Logf("new connections: %s", stderr.String())
		return reached, failed
	}
	return reached, 0
}
