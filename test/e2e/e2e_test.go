//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/director"
)

// needIPVS skips a test on a kernel without IPVS: those run in the VM.
func needIPVS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Skip("this kernel has no IPVS: run the suite in the VM (test/e2e/run.sh)")
	}
}

// checkBound is the detection bound of the lab's checks: interval 1 s, two
// attempts of at most 1 s, one delay of 1 s.
const checkBound = 4 * time.Second

// slack covers the 100 ms polling and a process start under emulation.
const slack = 2 * time.Second

// up brings a lab to a running director with every node in.
func up(t *testing.T, weights [3]int) *lab {
	l := newLab(t)
	l.topology(weights, "")
	l.nodes()
	l.runDirector()
	l.waitFor("every node in both services", 30*time.Second, allIn(weights))
	return l
}

func TestDRTrafficFollowsWeightsAndBypassesTheDirector(t *testing.T) {
	needIPVS(t)
	weights := [3]int{1, 2, 3}
	l := up(t, weights)
	// Before any client traffic: the director's gratuitous ARP taught the
	// client where the VIP is.
	if neigh, dm := l.exec("client", "ip", "neigh", "show", vip), l.mac("director"); !strings.Contains(neigh, dm) {
		t.Errorf("no gratuitous ARP from the director: the client's neighbour entry for the VIP is %q, want %s", strings.TrimSpace(neigh), dm)
	}
	reached := l.connect(5672, sources(100, 196))
	n := count(reached)
	t.Logf("96 clients reached: %v", n)
	for i, w := range weights {
		node := fmt.Sprintf("rs%d", i+1)
		share := float64(n[node]) / float64(len(reached))
		want := float64(w) / 6
		if share < want-0.10 || share > want+0.10 {
			t.Errorf("%s got %.0f%% of the clients, want %.0f%% ± 10 (weights %v): %v", node, share*100, want*100, weights, n)
		}
	}

	// Only the director answers ARP for the VIP.
	neigh := l.exec("client", "ip", "neigh", "show", vip)
	if dm := l.mac("director"); !strings.Contains(neigh, dm) {
		t.Errorf("client resolves the VIP as %q, want the director's MAC %s", strings.TrimSpace(neigh), dm)
	}
	for _, node := range []string{"rs1", "rs2", "rs3"} {
		if strings.Contains(neigh, l.mac(node)) {
			t.Errorf("the VIP resolves to %s's MAC: its ARP suppression failed", node)
		}
	}

	// Replies go from the nodes straight to the clients.
	in, out := l.inOut(vip + ":5672")
	if in == 0 || out != 0 {
		t.Errorf("director stats: InPkts %d, OutPkts %d; want replies to bypass the director (OutPkts 0)", in, out)
	}
}

func TestFailedListenerLeavesWithinTheBoundAndReturnsAfterRise(t *testing.T) {
	needIPVS(t)
	weights := [3]int{1, 1, 1}
	l := up(t, weights)
	rs2amqp := subnet + ".12:5672"
	inAMQP := func(tab map[string]map[string]string) bool { _, ok := tab[vip+":5672"][rs2amqp]; return ok }

	l.stopProcess("listen-rs2-5672", syscall.SIGKILL)
	took := l.waitFor("rs2 out of amqp", checkBound+slack, func(tab map[string]map[string]string) bool { return !inAMQP(tab) })
	msg := fmt.Sprintf("detection of a dead listener: measured %s, bound %s (interval 1s + 2 × connect_timeout 1s + delay_before_retry 1s)", took.Round(10*time.Millisecond), checkBound)
	t.Log(msg)
	fmt.Println("E2E", msg)
	if _, ok := l.table()[vip+":15672"][subnet+".12:15672"]; !ok {
		t.Errorf("rs2 left the management service too; only its amqp listener died")
	}
	status := l.exec("director", l.directorArgs("status")...)
	t.Logf("director status:\n%s", status)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`rs2\s+` + regexp.QuoteMeta(rs2amqp) + `\s+-\s+absent.*down\s+check down\s+\S+ ago\s+\S+\s+tcp check: .*refused`),
		regexp.MustCompile(`rs1\s+` + regexp.QuoteMeta(subnet+".11:5672") + `\s+dr\s+1\s+\d+\s+\d+\s+\d+\s+\d+\s+up`),
		regexp.MustCompile(`rs2\s+` + regexp.QuoteMeta(subnet+".12:15672") + `\s+dr\s+1\s+\d+\s+\d+\s+\d+\s+\d+\s+up`),
	} {
		if !want.MatchString(status) {
			t.Errorf("director status does not match %s", want)
		}
	}
	var report director.Report
	if err := json.Unmarshal([]byte(l.stdout("director", append(l.directorArgs("status"), "-o", "json")...)), &report); err != nil {
		t.Fatalf("director status -o json: %v", err)
	}
	byName := map[string]director.ServerReport{}
	for _, rs := range report.Services[0].RealServers {
		byName[rs.Name] = rs
	}
	if !report.DirectorRunning || report.Services[0].Name != "amqp" || byName["rs2"].Health != "down" || byName["rs2"].InKernel ||
		!strings.Contains(byName["rs2"].LastError, "refused") || byName["rs1"].Health != "up" || byName["rs1"].Stats == nil || byName["rs1"].Weight != 1 {
		t.Errorf("director status -o json: %+v", report.Services[0])
	}
	if len(report.Services[0].Drift) != 0 {
		t.Errorf("drift on a table the director keeps: %v", report.Services[0].Drift)
	}
	if n := count(l.connect(5672, sources(100, 160))); n["rs2"] != 0 || n["rs1"]+n["rs3"] != 60 {
		t.Errorf("after rs2 left: clients reached %v, want all 60 on rs1 and rs3", n)
	}

	l.listen("rs2", 5672)
	back := l.waitFor("rs2 back in amqp", 10*time.Second, inAMQP)
	t.Logf("rs2 back after %s (rise 2, interval 1s)", back.Round(10*time.Millisecond))
	if back < time.Second {
		t.Errorf("rs2 came back after %s: rise 2 needs two passing checks an interval apart", back)
	}
}

func TestReload(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	director, _ := l.procs.Load("director")

	l.topology([3]int{4, 1, 1}, "")
	director.(*proc).cmd.Process.Signal(syscall.SIGHUP)
	l.waitFor("the new weight of rs1", 10*time.Second, allIn([3]int{4, 1, 1}))

	before := l.ipvs()
	l.topology([3]int{9, 9, 9}, "unknown_key: 1\n")
	director.(*proc).cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(3 * time.Second)
	if after := l.ipvs(); after != before {
		t.Errorf("an invalid file changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !director.(*proc).alive() {
		t.Fatalf("the director died on an invalid reload:\n%s", l.log("director"))
	}
	if log := l.log("director"); !strings.Contains(log, "reload rejected") || !strings.Contains(log, "unknown_key") {
		t.Errorf("the director's log does not say the reload was rejected and why:\n%s", log)
	}
}

func TestLongLivedConnectionSurvivesFailureReloadAndRestart(t *testing.T) {
	needIPVS(t)
	l := newLab(t)
	l.exec("director", "ipvsadm", "-A", "-t", foreignVIP+":80", "-s", "rr")
	l.exec("director", "ipvsadm", "-a", "-t", foreignVIP+":80", "-r", subnet+".13:80", "-g", "-w", "1")
	foreign := func() string {
		out := l.ipvs("-t", foreignVIP+":80")
		return out[strings.Index(out, "TCP"):]
	}
	foreignBefore := foreign()

	l.topology([3]int{1, 1, 1}, "")
	l.nodes()
	l.runDirector()
	l.waitFor("every node in", 30*time.Second, allIn([3]int{1, 1, 1}))

	held, progress := l.holdConnection(subnet + ".150")

	// Another node fails.
	other := map[string]string{"rs1": "rs2", "rs2": "rs3", "rs3": "rs1"}[held]
	otherAddr := subnet + ".1" + other[2:] + ":5672"
	l.stopProcess("listen-"+other+"-5672", syscall.SIGKILL)
	l.waitFor(other+" out", checkBound+slack, func(tab map[string]map[string]string) bool { _, ok := tab[vip+":5672"][otherAddr]; return !ok })
	progress("when " + other + " failed")

	// A reload.
	l.topology([3]int{2, 2, 2}, "")
	d, _ := l.procs.Load("director")
	d.(*proc).cmd.Process.Signal(syscall.SIGHUP)
	l.waitFor("weights 2", 10*time.Second, func(tab map[string]map[string]string) bool {
		return tab[vip+":15672"][subnet+".11:15672"] == "Route 2"
	})
	progress("during a reload")

	// A restart: SIGTERM leaves the table as it was, a new director adopts it.
	before := l.ipvs()
	l.stopProcess("director", syscall.SIGTERM)
	if after := l.ipvs(); after != before {
		t.Errorf("SIGTERM changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	progress("while no director ran")
	l.runDirector()
	time.Sleep(4 * time.Second) // several check intervals: nothing may flap
	if after := l.ipvs(); after != before {
		t.Errorf("a restart changed the table:\nbefore:\n%s\nafter:\n%s\nlog:\n%s", before, after, l.log("director"))
	}
	progress("after the restart")
	if got := foreign(); got != foreignBefore {
		t.Errorf("the foreign service changed:\nbefore:\n%s\nafter:\n%s", foreignBefore, got)
	}
}

func TestRealServerStartStopRestoresRecordedValues(t *testing.T) {
	needIPVS(t)
	l := newLab(t)
	l.topology([3]int{1, 1, 1}, "")
	get := func(key string) string {
		return strings.TrimSpace(l.exec("rs1", "cat", "/proc/sys/net/ipv4/conf/"+key))
	}
	l.exec("rs1", "sh", "-c", "echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_ignore")
	before := map[string]string{}
	keys := []string{"all/arp_ignore", "all/arp_announce", "eth0/arp_ignore", "eth0/arp_announce"}
	for _, k := range keys {
		before[k] = get(k)
	}
	rs := []string{binary(t, "realserver"), "--config", l.config, "--state-dir", filepath.Join(l.dir, "rs1")}
	start := append([]string{rs[0], "start"}, rs[1:]...)
	l.exec("rs1", start...)
	addrs := l.exec("rs1", "ip", "-4", "addr", "show", "dev", "lo")
	if !strings.Contains(addrs, "inet "+vip+"/32 scope host lo:0") {
		t.Errorf("VIP not on lo as /32 scope host lo:0:\n%s", addrs)
	}
	want := map[string]string{"all/arp_ignore": "1", "all/arp_announce": "2", "eth0/arp_ignore": "1", "eth0/arp_announce": "2"}
	for k, v := range want {
		if got := get(k); got != v {
			t.Errorf("after start %s = %s, want %s", k, got, v)
		}
	}
	l.exec("rs1", start...) // idempotent: exits 0
	if again := l.exec("rs1", "ip", "-4", "addr", "show", "dev", "lo"); again != addrs {
		t.Errorf("a second start changed lo:\n%s", again)
	}
	l.exec("rs1", append([]string{rs[0], "status"}, rs[1:]...)...)
	l.exec("rs1", append([]string{rs[0], "stop"}, rs[1:]...)...)
	if after := l.exec("rs1", "ip", "-4", "addr", "show", "dev", "lo"); strings.Contains(after, vip) {
		t.Errorf("VIP still on lo after stop:\n%s", after)
	}
	for _, k := range keys {
		if got := get(k); got != before[k] {
			t.Errorf("after stop %s = %s, want the recorded %s", k, got, before[k])
		}
	}
	if get("eth0/arp_ignore") != "2" {
		t.Errorf("eth0 arp_ignore was not restored to the recorded 2")
	}
}

// TestNoIPVSIsOneClearLine runs on a kernel without IPVS (this machine, not
// the VM), in a namespace of its own so that nothing could touch the host's
// network even if it had IPVS.
func TestNoIPVSIsOneClearLine(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	ns := fmt.Sprintf("e2e-noipvs-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	dir := t.TempDir()
	config := filepath.Join(dir, "topology.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`vip: %s
director: {interface: eth0}
services: [{name: amqp, port: 5672}]
real_servers: [{name: rs1, address: %s.11}]
realserver: {interface: eth0}
`, vip, subnet)), 0o644)
	cmd := exec.Command("ip", "netns", "exec", ns, binary(t, "director"), "run", "--config", config,
		"--state-dir", dir, "--control-socket", filepath.Join(dir, "sock"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("director run succeeded on a kernel without IPVS:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "CONFIG_IP_VS") || !strings.Contains(lines[0], "modprobe ip_vs") {
		t.Errorf("want one line naming CONFIG_IP_VS and modprobe ip_vs, got:\n%s", out)
	}
	if addrs := run(t, "ip", "-n", ns, "addr", "show", "eth0"); strings.Contains(addrs, vip) {
		t.Errorf("the VIP was bound although the director could not run")
	}
}

// holdConnection starts a long-lived client and returns the node it reached
// and a check that it still exchanges lines.
func (l *lab) holdConnection(source string) (node string, progress func(stage string)) {
	l.t.Helper()
	self, _ := os.Executable()
	name := "hold-" + source
	hold := l.start(name, "client", []string{"LVSDR_E2E_ROLE=hold", "LVSDR_E2E_SOURCE=" + source, "LVSDR_E2E_TARGET=" + vip + ":5672"}, self)
	for deadline := time.Now().Add(10 * time.Second); node == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if f := strings.Fields(l.log(name)); len(f) >= 2 && f[0] == "node" {
			node = f[1]
		}
	}
	if node == "" {
		l.t.Fatalf("the long-lived client did not connect:\n%s", l.log(name))
	}
	return node, func(stage string) {
		l.t.Helper()
		before := strings.Count(l.log(name), "ok ")
		time.Sleep(2500 * time.Millisecond)
		if !hold.alive() || strings.Contains(l.log(name), "BROKEN") || strings.Count(l.log(name), "ok ") <= before {
			l.t.Fatalf("the long-lived connection to %s broke %s:\n%s", node, stage, l.log(name))
		}
	}
}

func TestDrainKeepsEstablishedConnectionsAndSurvivesARestart(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	node, progress := l.holdConnection(subnet + ".150")
	addr := func(port string) string { return subnet + ".1" + node[2:] + ":" + port }
	weightOf := func(want string) func(map[string]map[string]string) bool {
		return func(tab map[string]map[string]string) bool {
			return tab[vip+":5672"][addr("5672")] == want && tab[vip+":15672"][addr("15672")] == want
		}
	}

	out := l.exec("director", append(l.directorArgs("drain"), node)...)
	if !strings.Contains(out, node+": drained") {
		t.Errorf("director drain said %q", out)
	}
	l.waitFor(node+" at weight 0", 2*time.Second, weightOf("Route 0"))
	progress("when its node was drained")
	if n := count(l.connect(5672, sources(160, 190))); n[node] != 0 {
		t.Errorf("new clients reached the drained %s: %v", node, n)
	}

	l.stopProcess("director", syscall.SIGTERM)
	l.runDirector()
	// "director running" comes after its first reconcile: a start that
	// undid the drain has done so by then. (A fixed wait of 4 s was too
	// short for a start in a loaded VM.)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(l.log("director"), `msg="director running"`); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted director was not running within 60s:\n%s", l.log("director"))
		}
	}
	if !weightOf("Route 0")(l.table()) {
		t.Errorf("a restart undid the drain:\n%s", l.ipvs())
	}
	progress("across a restart while drained")

	l.exec("director", append(l.directorArgs("undrain"), node)...)
	l.waitFor(node+" back at weight 1", 2*time.Second, weightOf("Route 1"))
	progress("after undrain")
	if _, err := exec.Command("ip", append([]string{"netns", "exec", l.ns["director"]}, append(l.directorArgs("drain"), "rs9")...)...).CombinedOutput(); err == nil {
		t.Errorf("director drain of an unknown node succeeded")
	}
}

func TestRemovedRealServerDrainsBeforeItIsDeleted(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	node, progress := l.holdConnection(subnet + ".150")
	addr := subnet + ".1" + node[2:] + ":5672"
	for _, rs := range []string{"rs1", "rs2", "rs3"} {
		if rs != node {
			l.members = append(l.members, rs)
		}
	}
	l.topology([3]int{1, 1, 1}, "")
	d, _ := l.procs.Load("director")
	reloaded := time.Now()
	d.(*proc).cmd.Process.Signal(syscall.SIGHUP)
	l.waitFor(node+" at weight 0", 5*time.Second, func(tab map[string]map[string]string) bool {
		return tab[vip+":5672"][addr] == "Route 0"
	})
	progress("after its node was removed from the file")
	if n := count(l.connect(5672, sources(160, 190))); n[node] != 0 {
		t.Errorf("new clients reached the removed %s: %v", node, n)
	}
	// The connection is still open, so the node goes at drain_timeout (8 s).
	gone := l.waitFor(node+" deleted", 20*time.Second, func(tab map[string]map[string]string) bool {
		_, in := tab[vip+":5672"][addr]
		return !in
	})
	if since := time.Since(reloaded); since < 8*time.Second {
		t.Errorf("%s deleted %s after the reload, before drain_timeout 8s, with a connection open", node, since)
	}
	t.Logf("%s deleted %s after it was drained", node, gone)
}

func TestRemovedServiceDrainsBeforeItIsDeleted(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	node, progress := l.holdConnection(subnet + ".150")
	l.withoutAMQP = true
	l.topology([3]int{1, 1, 1}, "")
	d, _ := l.procs.Load("director")
	reloaded := time.Now()
	d.(*proc).cmd.Process.Signal(syscall.SIGHUP)
	l.waitFor("amqp kept, every node at weight 0", 5*time.Second, func(tab map[string]map[string]string) bool {
		amqp, ok := tab[vip+":5672"]
		return ok && len(amqp) == 3 && amqp[subnet+".11:5672"] == "Route 0" && amqp[subnet+".12:5672"] == "Route 0" && amqp[subnet+".13:5672"] == "Route 0"
	})
	progress("after its service was removed from the file")
	// The connection is still open, so the service goes at drain_timeout (8 s).
	gone := l.waitFor("amqp deleted", 20*time.Second, func(tab map[string]map[string]string) bool {
		_, in := tab[vip+":5672"]
		return !in
	})
	if since := time.Since(reloaded); since < 8*time.Second {
		t.Errorf("amqp deleted %s after the reload, before drain_timeout 8s, with a connection to %s open", since, node)
	}
	if _, ok := l.table()[vip+":15672"]; !ok {
		t.Errorf("management went with amqp")
	}
	t.Logf("amqp deleted %s after its servers went to weight 0", gone)
}
