//go:build e2e

// Package e2e proves lvsdr on a real kernel: the real director and
// realserver binaries, a client and three stand-in RabbitMQ nodes, each in a
// network namespace on one bridge, inside the VM of test/vm. Run it with
// test/e2e/run.sh.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The lab's addresses: a private /24 inside the namespaces, never the
// example's 192.168.0.x.
const (
	subnet     = "10.77.0"
	vip        = subnet + ".250"
	directorIP = subnet + ".2"
	clientIP   = subnet + ".10"
	foreignVIP = subnet + ".251"
)

var labCount atomic.Int32

// lab is one client, one director and three real servers on a bridge.
type lab struct {
	t      *testing.T
	id     string
	dir    string // config, state and logs
	ns     map[string]string
	procs  sync.Map // name → *proc of long-running processes
	config string
	// members, when set, lists the real servers of both services.
	members []string
	// checkExtra is added to the check settings of both services,
	// serviceExtra to the services, directorExtra to the director's.
	checkExtra, serviceExtra, directorExtra string
	// withoutAMQP leaves the amqp service out of the file.
	withoutAMQP bool
}

// binary returns the path of a built lvsdr binary.
func binary(t *testing.T, name string) string {
	dir := os.Getenv("LVSDR_E2E_BIN")
	if dir == "" {
		t.Fatalf("LVSDR_E2E_BIN is not set: run the suite with test/e2e/run.sh")
	}
	return filepath.Join(dir, name)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newLab builds the namespaces and links; rsIPs are 10.77.0.11–13.
func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{t: t, id: fmt.Sprintf("e2e%d", labCount.Add(1)), dir: t.TempDir(), ns: map[string]string{}}
	for _, host := range []string{"sw", "client", "director", "rs1", "rs2", "rs3"} {
		l.ns[host] = l.id + "-" + host
		run(t, "ip", "netns", "add", l.ns[host])
	}
	t.Cleanup(l.teardown)
	sw := l.ns["sw"]
	run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	addrs := map[string]string{"client": clientIP, "director": directorIP, "rs1": subnet + ".11", "rs2": subnet + ".12", "rs3": subnet + ".13"}
	for host, addr := range addrs {
		port := "p-" + host
		run(t, "ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", l.ns[host])
		run(t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", l.ns[host], "addr", "add", addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", l.ns[host], "link", "set", "eth0", "up")
		run(t, "ip", "-n", l.ns[host], "link", "set", "lo", "up")
	}
	// The client learns neighbours from gratuitous ARP, so the director's
	// announcement of the VIP shows in its neighbour table.
	run(t, "ip", "netns", "exec", l.ns["client"], "sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1")
	// Many source addresses on the client, so that persistence (per source
	// address) still spreads clients over every node.
	var batch strings.Builder
	for i := 100; i < 200; i++ {
		fmt.Fprintf(&batch, "addr add %s.%d/24 dev eth0\n", subnet, i)
	}
	cmd := exec.Command("ip", "-n", l.ns["client"], "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("client addresses: %v\n%s", err, out)
	}
	return l
}

// proc is a process started in a namespace; done closes when it exits.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (l *lab) teardown() {
	l.procs.Range(func(_, v any) bool {
		p := v.(*proc)
		p.cmd.Process.Kill()
		<-p.done
		return true
	})
	for _, ns := range l.ns {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// exec runs a command in a host's namespace and returns its output.
func (l *lab) exec(host string, args ...string) string {
	l.t.Helper()
	return run(l.t, "ip", append([]string{"netns", "exec", l.ns[host]}, args...)...)
}

// stdout runs a command in a host's namespace and returns its standard
// output alone, for output a test parses.
func (l *lab) stdout(host string, args ...string) string {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns[host]}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// start runs a long-lived process in a host's namespace, its output going
// to a log file of the lab.
func (l *lab) start(name, host string, env []string, args ...string) *proc {
	l.t.Helper()
	logf, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns[host]}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	l.procs.Store(name, p)
	return p
}

func (l *lab) log(name string) string {
	data, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
	return string(data)
}

// listen starts a stand-in RabbitMQ listener of a node on one port.
func (l *lab) listen(node string, port int) *proc {
	self, _ := os.Executable()
	return l.start(fmt.Sprintf("listen-%s-%d", node, port), node,
		[]string{"LVSDR_E2E_ROLE=listen", "LVSDR_E2E_NODE=" + node, fmt.Sprintf("LVSDR_E2E_PORT=%d", port)}, self)
}

// stopProcess kills a process started by start and waits for it.
func (l *lab) stopProcess(name string, sig syscall.Signal) {
	l.t.Helper()
	v, ok := l.procs.Load(name)
	if !ok {
		l.t.Fatalf("no process %s", name)
	}
	p := v.(*proc)
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		l.t.Fatalf("%s did not exit within 30s of %s", name, sig)
	}
	l.procs.Delete(name)
}

// topology writes the lab's YAML: amqp and management on every node.
func (l *lab) topology(weights [3]int, extra string) {
	l.t.Helper()
	check := "check: {type: tcp, interval: 1s, connect_timeout: 1s, retry: 1, delay_before_retry: 1s, rise: 2" + l.checkExtra + "}"
	if l.members != nil {
		check += ", real_servers: [" + strings.Join(l.members, ", ") + "]"
	}
	check += l.serviceExtra
	// A commented-out item leaves the amqp service out of the file.
	amqpItem := "- "
	if l.withoutAMQP {
		amqpItem = "# "
	}
	doc := fmt.Sprintf(`vip: %s
director: {interface: eth0, resync_interval: 5s, drain_timeout: 8s`+l.directorExtra+`}
services:
  %s{name: amqp, port: 5672, scheduler: wrr, forwarding: dr, persistence_timeout: 50, %s}
  - {name: management, port: 15672, scheduler: wrr, forwarding: dr, persistence_timeout: 50, %s}
real_servers:
  - {name: rs1, address: %s.11, weight: %d}
  - {name: rs2, address: %s.12, weight: %d}
  - {name: rs3, address: %s.13, weight: %d}
realserver: {interface: eth0}
%s`, vip, amqpItem, check, check, subnet, weights[0], subnet, weights[1], subnet, weights[2], extra)
	l.config = filepath.Join(l.dir, "topology.yaml")
	if err := os.WriteFile(l.config, []byte(doc), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// nodes starts the real-server agent and both listeners on every node.
func (l *lab) nodes() {
	l.t.Helper()
	for _, node := range []string{"rs1", "rs2", "rs3"} {
		l.exec(node, binary(l.t, "realserver"), "start", "--config", l.config, "--state-dir", filepath.Join(l.dir, node))
		l.listen(node, 5672)
		l.listen(node, 15672)
	}
}

func (l *lab) directorArgs(cmd string) []string {
	return []string{binary(l.t, "director"), cmd, "--config", l.config,
		"--state-dir", filepath.Join(l.dir, "director-state"), "--control-socket", filepath.Join(l.dir, "director.sock")}
}

// runDirector starts `director run` in the director's namespace.
func (l *lab) runDirector() *proc {
	return l.start("director", "director", nil, l.directorArgs("run")...)
}

// ipvs returns `ipvsadm -Ln` of the director's namespace.
func (l *lab) ipvs(args ...string) string {
	l.t.Helper()
	return l.exec("director", append([]string{"ipvsadm", "-Ln"}, args...)...)
}

var destLine = regexp.MustCompile(`->\s+(\S+):(\d+)\s+(\S+)\s+(\d+)`)

// table parses `ipvsadm -Ln` into service → destination → "Route 1" lines.
func (l *lab) table() map[string]map[string]string {
	out := map[string]map[string]string{}
	var svc string
	for _, line := range strings.Split(l.ipvs(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP"):
			svc = f[1]
			out[svc] = map[string]string{}
		case len(f) >= 3 && f[0] == "FWM":
			svc = "fwmark " + f[1]
			out[svc] = map[string]string{}
		case svc != "" && destLine.MatchString(line):
			m := destLine.FindStringSubmatch(line)
			out[svc][m[1]+":"+m[2]] = m[3] + " " + m[4]
		}
	}
	return out
}

// waitFor polls the director's table until ok, and returns how long that
// took; it fails the test after limit.
func (l *lab) waitFor(what string, limit time.Duration, ok func(map[string]map[string]string) bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		if ok(l.table()) {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			l.t.Fatalf("%s: not within %s; the table is:\n%s\ndirector log:\n%s", what, limit, l.ipvs(), l.log("director"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allIn says every node is in both services with the given weights.
func allIn(weights [3]int) func(map[string]map[string]string) bool {
	return func(tab map[string]map[string]string) bool {
		for _, port := range []string{"5672", "15672"} {
			svc := tab[vip+":"+port]
			for i, w := range weights {
				if svc[fmt.Sprintf("%s.%d:%s", subnet, 11+i, port)] != fmt.Sprintf("Route %d", w) {
					return false
				}
			}
		}
		return true
	}
}

// connect opens one connection to VIP:port from each source address in the
// client namespace and returns the node each reached.
func (l *lab) connect(port int, sources []string) map[string]string {
	l.t.Helper()
	return l.connectTo(fmt.Sprintf("%s:%d", vip, port), sources)
}

// connectTo opens one connection to target from each source address in the
// client namespace and returns the node each reached.
func (l *lab) connectTo(target string, sources []string) map[string]string {
	l.t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", l.ns["client"], self)
	cmd.Env = append(os.Environ(), "LVSDR_E2E_ROLE=connect", "LVSDR_E2E_TARGET="+target,
		"LVSDR_E2E_SOURCES="+strings.Join(sources, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("clients: %v\n%s", err, stderr.String())
	}
	reached := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			reached[f[0]] = f[1]
		}
	}
	return reached
}

func sources(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s.%d", subnet, i))
	}
	return out
}

func count(reached map[string]string) map[string]int {
	n := map[string]int{}
	for _, node := range reached {
		n[node]++
	}
	return n
}

// mac returns the MAC address of a host's eth0.
func (l *lab) mac(host string) string {
	l.t.Helper()
	f := strings.Fields(l.exec(host, "cat", "/sys/class/net/eth0/address"))
	return f[0]
}

// stat reads a column of `ipvsadm -Ln --stats` for a service. The kernel
// folds its per-CPU counters into these totals every 2 s, so the caller
// waits for the traffic it counts to show.
func (l *lab) stat(service string, column int) int {
	l.t.Helper()
	for _, line := range strings.Split(l.ipvs("--stats", "-t", service), "\n") {
		f := strings.Fields(line)
		if len(f) > column && f[0] == "TCP" && f[1] == service {
			n, err := strconv.Atoi(strings.TrimRight(f[column], "KMG"))
			if err != nil {
				l.t.Fatalf("stats column %d of %q: %v", column, line, err)
			}
			return n
		}
	}
	l.t.Fatalf("no stats for %s", service)
	return 0
}

// inOut waits until the director's counters show the service's incoming
// packets, and returns its InPkts and OutPkts.
func (l *lab) inOut(service string) (in, out int) {
	l.t.Helper()
	for deadline := time.Now().Add(6 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		in, out = l.stat(service, 3), l.stat(service, 4)
		if in > 0 || time.Now().After(deadline) {
			return in, out
		}
	}
}
