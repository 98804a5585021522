//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

// The roles of this file run from init: TestMain (roles_test.go) dispatches
// the suite's other roles, and init runs before it.
func init() {
	switch os.Getenv("LVSDR_E2E_ROLE") {
	case "syncd":
		os.Exit(syncdRole())
	case "idle":
		os.Exit(idleRole())
	}
}

// syncdRole runs one ipvsctl sync daemon call in its namespace, the way a
// director would: LVSDR_E2E_SYNC_OP is list, start, stop or reconcile, and
// LVSDR_E2E_SYNC_DAEMONS the daemons as JSON. It prints the daemons the
// call returned as JSON, or "ERROR exists|notfound|other: message".
func syncdRole() int {
	k, err := ipvsctl.OpenSyncDaemons(5 * time.Second)
	if err != nil {
		return syncdFail(err)
	}
	var daemons []ipvsctl.SyncDaemon
	if raw := os.Getenv("LVSDR_E2E_SYNC_DAEMONS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &daemons); err != nil {
			return syncdFail(err)
		}
	}
	var out any
	switch op := os.Getenv("LVSDR_E2E_SYNC_OP"); op {
	case "list":
		out, err = k.Daemons()
	case "start":
		err = k.StartDaemon(daemons[0])
	case "stop":
		err = k.StopDaemon(daemons[0].Role)
	case "reconcile":
		var started, stopped []ipvsctl.SyncDaemon
		started, stopped, err = ipvsctl.ReconcileDaemons(k, daemons)
		out = map[string][]ipvsctl.SyncDaemon{"started": started, "stopped": stopped}
	default:
		err = fmt.Errorf("unknown LVSDR_E2E_SYNC_OP %q", op)
	}
	if err != nil {
		return syncdFail(err)
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func syncdFail(err error) int {
	kind := "other"
	switch {
	case errors.Is(err, ipvsctl.ErrExists):
		kind = "exists"
	case errors.Is(err, ipvsctl.ErrNotFound):
		kind = "notfound"
	case errors.Is(err, ipvsctl.ErrNoIPVS):
		kind = "noipvs"
	}
	fmt.Printf("ERROR %s: %v\n", kind, err)
	return 1
}

// idleRole keeps one connection and exchanges a line every
// LVSDR_E2E_EVERY, like an AMQP connection that only sends heartbeats. It
// prints the node once, "ok N" after each exchange and "BROKEN" on failure.
func idleRole() int {
	every, err := time.ParseDuration(os.Getenv("LVSDR_E2E_EVERY"))
	if err != nil {
		fmt.Println("BROKEN", err)
		return 1
	}
	conn, node, err := dialFrom(os.Getenv("LVSDR_E2E_SOURCE"), os.Getenv("LVSDR_E2E_TARGET"))
	if err != nil {
		fmt.Println("BROKEN", err)
		return 1
	}
	fmt.Println("node", node)
	r := bufio.NewReader(conn)
	for i := 1; ; i++ {
		time.Sleep(every)
		// Room for a few retransmissions while the VIP moves.
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(conn, "beat %d\n", i); err != nil {
			fmt.Println("BROKEN", err)
			return 1
		}
		if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != fmt.Sprintf("beat %d", i) {
			fmt.Println("BROKEN", err, line)
			return 1
		}
		fmt.Println("ok", i)
	}
}

// syncd runs the syncd role in a host's namespace.
func (l *lab) syncd(host, op string, daemons ...ipvsctl.SyncDaemon) (string, error) {
	l.t.Helper()
	self, _ := os.Executable()
	raw, _ := json.Marshal(daemons)
	cmd := exec.Command("ip", "netns", "exec", l.ns[host], self)
	cmd.Env = append(os.Environ(), "LVSDR_E2E_ROLE=syncd", "LVSDR_E2E_SYNC_OP="+op, "LVSDR_E2E_SYNC_DAEMONS="+string(raw))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// syncdOK runs the syncd role and fails the test on an error.
func (l *lab) syncdOK(host, op string, daemons ...ipvsctl.SyncDaemon) string {
	l.t.Helper()
	out, err := l.syncd(host, op, daemons...)
	if err != nil {
		l.t.Fatalf("sync daemons %s in %s: %v\n%s", op, host, err, out)
	}
	return out
}

// listDaemons returns the daemons ipvsctl reads in a host's namespace.
func (l *lab) listDaemons(host string) []ipvsctl.SyncDaemon {
	l.t.Helper()
	var daemons []ipvsctl.SyncDaemon
	if err := json.Unmarshal([]byte(l.syncdOK(host, "list")), &daemons); err != nil {
		l.t.Fatalf("list sync daemons: %v", err)
	}
	return daemons
}

// newSyncLab makes namespaces for the given hosts, each with eth0 on one
// bridge at subnet.N, where N is the host's value in hosts. It builds them
// with one ip -batch per namespace: every process start counts in the
// emulated VM.
func newSyncLab(t *testing.T, subnet string, hosts map[string]int) *lab {
	t.Helper()
	l := &lab{t: t, id: fmt.Sprintf("e2e%d", labCount.Add(1)), dir: t.TempDir(), ns: map[string]string{}}
	t.Cleanup(l.teardown)
	l.ns["sw"] = l.id + "-sw"
	for host := range hosts {
		l.ns[host] = l.id + "-" + host
	}
	var root, sw strings.Builder
	for _, ns := range l.ns {
		fmt.Fprintf(&root, "netns add %s\n", ns)
	}
	// Runs before l.teardown (cleanups run last first): one process deletes
	// every namespace, and teardown is left the processes to kill.
	t.Cleanup(func() {
		var del strings.Builder
		for _, ns := range l.ns {
			fmt.Fprintf(&del, "netns del %s\n", ns)
		}
		ipBatch(t, "", del.String())
		l.ns = map[string]string{}
	})
	ipBatch(t, "", root.String())
	sw.WriteString("link add br0 type bridge\nlink set br0 up\n")
	for host := range hosts {
		fmt.Fprintf(&sw, "link add p-%s type veth peer name eth0 netns %s\nlink set p-%s master br0 up\n", host, l.ns[host], host)
	}
	ipBatch(t, l.ns["sw"], sw.String())
	for host, n := range hosts {
		ipBatch(t, l.ns[host], fmt.Sprintf("addr add %s.%d/24 dev eth0\nlink set eth0 up\nlink set lo up\n", subnet, n))
	}
	return l
}

// ipBatch runs ip -batch in a namespace ("" for the test's own).
func ipBatch(t *testing.T, ns, batch string) {
	t.Helper()
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %s:\n%s%v\n%s", strings.Join(args, " "), batch, err, out)
	}
}

// script runs a shell script in a host's namespace, stopping at the first
// failing command.
func (l *lab) script(host, script string) string {
	l.t.Helper()
	return l.exec(host, "sh", "-ec", script)
}

var daemonLine = regexp.MustCompile(`(?m)^\s*(master|backup) sync daemon .*$`)

// TestSyncDaemonsStartAdoptStop drives the kernel's sync daemons through
// ipvsctl and checks each step with ipvsadm, the reference.
func TestSyncDaemonsStartAdoptStop(t *testing.T) {
	needIPVS(t)
	l := newSyncLab(t, "10.79.0", map[string]int{"director": 2})
	daemonsOf := func() []string {
		return daemonLine.FindAllString(l.exec("director", "ipvsadm", "-L", "--daemon"), -1)
	}
	// Crossed as the notes say: this director's master id is its peer's
	// backup id.
	master := ipvsctl.SyncDaemon{Role: ipvsctl.SyncMaster, Interface: "eth0", SyncID: 1,
		Group: netip.MustParseAddr("239.7.7.7"), Port: 8850, MaxLen: 1400, TTL: 2}
	backup := ipvsctl.SyncDaemon{Role: ipvsctl.SyncBackup, Interface: "eth0", SyncID: 2}
	if out, err := l.syncd("director", "start", ipvsctl.SyncDaemon{Role: ipvsctl.SyncMaster, Interface: "eth9", SyncID: 1}); err == nil || !strings.Contains(out, "no interface eth9") {
		t.Errorf("start on a missing interface: %v %s; want an error naming eth9", err, out)
	}
	l.syncdOK("director", "start", master)
	l.syncdOK("director", "start", backup)
	lines := daemonsOf()
	t.Logf("ipvsadm -L --daemon after start:\n%s", strings.Join(lines, "\n"))
	want := []string{
		"master sync daemon (mcast=eth0, syncid=1, maxlen=1400, group=239.7.7.7, port=8850, ttl=2)",
		"backup sync daemon (mcast=eth0, syncid=2, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ipvsadm -L --daemon:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	got := l.listDaemons("director")
	wantRead := []ipvsctl.SyncDaemon{master, backup}
	wantRead[1].Group, wantRead[1].Port, wantRead[1].TTL, wantRead[1].MaxLen = ipvsctl.DefaultSyncGroup, ipvsctl.DefaultSyncPort, ipvsctl.DefaultSyncTTL, 1472
	if fmt.Sprint(got) != fmt.Sprint(wantRead) {
		t.Errorf("ipvsctl reads %v\nwant %v", got, wantRead)
	}

	// A second start of a running role is the kernel's EEXIST.
	if out, err := l.syncd("director", "start", backup); err == nil || !strings.HasPrefix(out, "ERROR exists") {
		t.Errorf("second backup start: %v %s; want ErrExists", err, out)
	}
	// A new director process with the same wish adopts both.
	if out := l.syncdOK("director", "reconcile", master, backup); out != `{"started":null,"stopped":null}` {
		t.Errorf("reconcile of running daemons changed them: %s", out)
	}
	// A daemon started by another tool with the same settings (keepalived's
	// lvs_sync_daemon, or ipvsadm by hand) is adopted too.
	l.syncdOK("director", "stop", backup)
	l.exec("director", "ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "2")
	if out := l.syncdOK("director", "reconcile", master, backup); out != `{"started":null,"stopped":null}` {
		t.Errorf("reconcile of ipvsadm's identical backup changed it: %s", out)
	}
	if after := daemonsOf(); strings.Join(after, "\n") != strings.Join(want, "\n") {
		t.Errorf("after adoption ipvsadm -L --daemon:\n%s", strings.Join(after, "\n"))
	}
	// Another sync id: replaced, the master untouched.
	backup.SyncID = 3
	out := l.syncdOK("director", "reconcile", master, backup)
	if !strings.Contains(out, `"started":[{"Role":2`) || !strings.Contains(out, `"stopped":[{"Role":2`) {
		t.Errorf("reconcile of a changed backup: %s", out)
	}
	if after := daemonsOf(); len(after) != 2 || after[0] != want[0] || !strings.Contains(after[1], "syncid=3,") {
		t.Errorf("after the change ipvsadm -L --daemon:\n%s", strings.Join(after, "\n"))
	}

	// Stop removes them.
	l.syncdOK("director", "reconcile")
	if after := daemonsOf(); len(after) != 0 {
		t.Errorf("after stopping everything ipvsadm -L --daemon:\n%s", strings.Join(after, "\n"))
	}
	if out, err := l.syncd("director", "stop", master); err == nil || !strings.HasPrefix(out, "ERROR notfound") {
		t.Errorf("stop of a daemon that does not run: %v %s; want ErrNotFound", err, out)
	}
}

// TestNoIPVSSyncDaemons runs on a kernel without IPVS (this machine, not the
// VM): opening the sync daemons says so in the project's words.
func TestNoIPVSSyncDaemons(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	if _, err := ipvsctl.OpenSyncDaemons(time.Second); !errors.Is(err, ipvsctl.ErrNoIPVS) {
		t.Errorf("OpenSyncDaemons on a kernel without IPVS: %v, want ErrNoIPVS", err)
	}
}

// syncCase is one setting of the sync sysctls for an idle connection.
type syncCase struct {
	name      string
	threshold string // net.ipv4.vs.sync_threshold; "" keeps the kernel's
	refresh   string // net.ipv4.vs.sync_refresh_period; "" keeps the kernel's
	fresh     bool   // whether the backup's copy must stay
}

// The IPVS TCP timeout of the test (ipvsadm --set), the interval of the idle
// connection's exchanges, how long the backup's table is watched before the
// VIP moves to it, and how long the connection is watched after. With the
// kernel's defaults the backup's copy expires one timeout after the 3rd
// packet and comes back at the 53rd (about 80 s): the failover falls between.
const (
	idleTCPTimeout = 30 * time.Second
	idleEvery      = 3 * time.Second
	idleWatch      = 60 * time.Second
	idleAfter      = 12 * time.Second
)

// idlePair is one case's two directors, client and real server, with the
// idle connection's entry as /proc/net/ip_vs_conn writes it.
type idlePair struct {
	c         syncCase
	l         *lab
	subnet    string
	settings  string
	anchors   map[string]int // director → a PID in its namespace
	backupMAC string
	idle      *proc
	// exchanges before the failover, and whether the connection lived on
	before       int
	brokenBefore bool
	survived     bool
	entry        *regexp.Regexp
	samples      []expiry
	lost         bool // the master lost the entry
}

// expiry is one sample of the backup's copy: absent, or its expire column.
type expiry struct {
	at      time.Duration
	present bool
	left    time.Duration
}

// TestSyncKeepsAnIdleConnectionOnTheBackup measures issue 12 item 3: an
// idle connection through the master, the backup's synced copy watched in
// its connection table (what ipvsadm -Lnc shows), then the VIP moved to the
// backup. The kernel's defaults let the copy expire and the connection is
// reset at the failover; the tuned settings must keep the copy and the
// connection. Every setting runs at once, each in its own pair of
// directors, client and real server.
func TestSyncKeepsAnIdleConnectionOnTheBackup(t *testing.T) {
	needIPVS(t)
	cases := []syncCase{
		{"defaults", "", "", false},
		{"threshold 3 0 alone", "3 0", "", false},
		{"refresh 10 alone", "", "10", false},
		{"threshold 3 0, refresh 10", "3 0", "10", true},
		{"threshold 3 0, refresh 60", "3 0", "60", true},
	}
	var pairs []*idlePair
	for i, c := range cases {
		pairs = append(pairs, newIdlePair(t, i+1, c))
	}
	self, _ := os.Executable()
	for _, p := range pairs {
		p.idle = p.l.start("idle", "client", []string{"LVSDR_E2E_ROLE=idle", "LVSDR_E2E_SOURCE=" + p.subnet + ".10",
			"LVSDR_E2E_TARGET=" + p.subnet + ".250:5672", "LVSDR_E2E_EVERY=" + idleEvery.String()}, self)
	}
	start := time.Now()
	for time.Since(start) < idleWatch {
		time.Sleep(time.Second)
		for _, p := range pairs {
			at := time.Since(start)
			if m := p.sample(t, "master", at); !m.present && at > 5*time.Second {
				p.lost = true
			}
			p.samples = append(p.samples, p.sample(t, "backup", at))
		}
	}
	// The failover: the backup takes the VIP and the client's neighbour
	// entry (a gratuitous ARP's effect), then the master lets it go.
	for _, p := range pairs {
		log := p.l.log("idle")
		p.before, p.brokenBefore = strings.Count(log, "ok "), !p.idle.alive() || strings.Contains(log, "BROKEN")
		vip := p.subnet + ".250"
		run(t, "sh", "-ec", fmt.Sprintf("ip -n %s addr add %s/32 dev eth0\nip -n %s neigh replace %s lladdr %s dev eth0 nud permanent\nip -n %s addr del %s/32 dev eth0",
			p.l.ns["backup"], vip, p.l.ns["client"], vip, p.backupMAC, p.l.ns["master"], vip))
	}
	time.Sleep(idleAfter)
	for _, p := range pairs {
		log := p.l.log("idle")
		p.survived = p.idle.alive() && !strings.Contains(log, "BROKEN") && strings.Count(log, "ok ") >= p.before+2
	}
	for _, p := range pairs {
		t.Run(p.c.name, func(t *testing.T) { p.judge(t) })
	}
}

// newIdlePair builds one case: the same service on both directors, the
// sysctls of the case on both, crossed sync daemons started through
// ipvsctl, the VIP on the master only.
func newIdlePair(t *testing.T, n int, c syncCase) *idlePair {
	t.Helper()
	p := &idlePair{c: c, subnet: fmt.Sprintf("10.78.%d", n), anchors: map[string]int{}}
	vip := p.subnet + ".250"
	p.l = newSyncLab(t, p.subnet, map[string]int{"client": 10, "master": 2, "backup": 3, "rs": 11})
	l := p.l
	var tune strings.Builder
	if c.threshold != "" {
		fmt.Fprintf(&tune, "echo %s > /proc/sys/net/ipv4/vs/sync_threshold\n", c.threshold)
	}
	if c.refresh != "" {
		fmt.Fprintf(&tune, "echo %s > /proc/sys/net/ipv4/vs/sync_refresh_period\n", c.refresh)
	}
	for _, dir := range []string{"master", "backup"} {
		l.script(dir, fmt.Sprintf("ipvsadm -A -t %[1]s:5672 -s rr\nipvsadm -a -t %[1]s:5672 -r %[2]s.11:5672 -g -w 1\nipvsadm --set %[3]d 10 10\n%[4]s",
			vip, p.subnet, int(idleTCPTimeout.Seconds()), tune.String()))
		// A process that stays in the namespace, to read its tables.
		p.anchors[dir] = l.start("anchor-"+dir, dir, nil, "sleep", "3600").cmd.Process.Pid
	}
	p.settings = strings.Join(strings.Fields(l.script("master", `cd /proc/sys/net/ipv4/vs
for k in sync_threshold sync_refresh_period sync_version sync_retries; do printf '%s=%s ' $k "$(cat $k)"; done`)), " ")
	l.syncdOK("master", "reconcile",
		ipvsctl.SyncDaemon{Role: ipvsctl.SyncMaster, Interface: "eth0", SyncID: 1},
		ipvsctl.SyncDaemon{Role: ipvsctl.SyncBackup, Interface: "eth0", SyncID: 2})
	l.syncdOK("backup", "reconcile",
		ipvsctl.SyncDaemon{Role: ipvsctl.SyncMaster, Interface: "eth0", SyncID: 2},
		ipvsctl.SyncDaemon{Role: ipvsctl.SyncBackup, Interface: "eth0", SyncID: 1})
	// Only the master has the VIP: the connection goes through it alone.
	ipBatch(t, l.ns["master"], "addr add "+vip+"/32 dev eth0\n")
	l.script("rs", fmt.Sprintf(`ip addr add %s/32 dev lo
for k in all eth0; do echo 1 > /proc/sys/net/ipv4/conf/$k/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/$k/arp_announce; done`, vip))
	l.listen("rs", 5672)
	p.backupMAC = l.mac("backup")
	// /proc/net/ip_vs_conn: addresses and ports in hex, the expiry in
	// seconds.
	hex := func(a string) string {
		b := netip.MustParseAddr(a).As4()
		return fmt.Sprintf("%02X%02X%02X%02X", b[0], b[1], b[2], b[3])
	}
	p.entry = regexp.MustCompile(`(?m)^TCP\s+` + hex(p.subnet+".10") + `\s+\S+\s+` + hex(vip) + `\s+1628\s+\S+\s+\S+\s+ESTABLISHED\s+(\d+)`)
	return p
}

// sample reads a director's entry for the idle connection.
func (p *idlePair) sample(t *testing.T, dir string, at time.Duration) expiry {
	e := expiry{at: at}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/ip_vs_conn", p.anchors[dir]))
	if err != nil {
		t.Fatalf("the %s's connection table: %v", dir, err)
	}
	if m := p.entry.FindSubmatch(data); m != nil {
		secs, _ := strconv.Atoi(string(m[1]))
		e.present, e.left = true, time.Duration(secs)*time.Second
	}
	return e
}

// judge summarises a case (when the backup's copy first showed, its longest
// absence after that, the lowest expiry seen, when it was refreshed), logs
// it, and fails a case that must stay fresh and did not.
func (p *idlePair) judge(t *testing.T) {
	if p.brokenBefore {
		t.Fatalf("the idle connection broke through the master, before the failover:\n%s", p.l.log("idle"))
	}
	if p.lost {
		t.Errorf("the master lost the idle connection's entry")
	}
	var first, gapFrom, gapLongest time.Duration
	seen, absent := false, false
	lowest := time.Hour
	var refreshes []string
	var prev expiry
	for _, e := range p.samples {
		switch {
		case e.present && !seen:
			seen, first = true, e.at
		case e.present && absent:
			absent = false
			gapLongest = max(gapLongest, e.at-gapFrom)
			refreshes = append(refreshes, fmt.Sprintf("%.0fs(back)", e.at.Seconds()))
		case e.present && prev.present && e.left > prev.left:
			refreshes = append(refreshes, fmt.Sprintf("%.0fs", e.at.Seconds()))
		case !e.present && seen && !absent:
			absent, gapFrom = true, e.at
		}
		if e.present && seen {
			lowest = min(lowest, e.left)
		}
		prev = e
	}
	if absent {
		gapLongest = max(gapLongest, p.samples[len(p.samples)-1].at-gapFrom)
	}
	line := fmt.Sprintf("idle sync, %s [%s; tcp timeout %s, one exchange every %s, %d exchanges in %s]: ",
		p.c.name, p.settings, idleTCPTimeout, idleEvery, p.before, idleWatch)
	switch {
	case !seen:
		line += "the backup never held the connection"
	case gapLongest > 0:
		line += fmt.Sprintf("backup copy from %.0fs, EXPIRED for %.0fs from %.0fs, refreshed at %v", first.Seconds(), gapLongest.Seconds(), gapFrom.Seconds(), refreshes)
	default:
		line += fmt.Sprintf("backup copy from %.0fs, never expired, lowest expiry %s, refreshed at %v", first.Seconds(), lowest, refreshes)
	}
	if p.survived {
		line += fmt.Sprintf("; failover at %s: SURVIVED, %d exchanges through the new master", idleWatch, strings.Count(p.l.log("idle"), "ok ")-p.before)
	} else {
		line += fmt.Sprintf("; failover at %s: LOST (%s)", idleWatch, lastLine(p.l.log("idle")))
	}
	t.Log(line)
	fmt.Println("E2E", line)
	// The same table through ipvsadm, the reference the issue names.
	t.Logf("backup's ipvsadm -Lnc at the end:\n%s", p.l.exec("backup", "ipvsadm", "-Lnc"))
	if p.c.fresh && (!seen || gapLongest > 0) {
		t.Errorf("with %s the backup's copy of an idle connection expired:\n%s", p.settings, line)
	}
	if p.c.fresh && !p.survived {
		t.Errorf("with %s the idle connection did not survive the failover:\n%s", p.settings, p.l.log("idle"))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
