//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The hardened units under a real systemd: systemd as PID 1 of containers
// (systemd-nspawn --boot) whose root is the Debian tree test/deb/run.sh
// installed the package and systemd into, one in the lab director's
// network namespace running lvsdr-director.service, one in rs1's running
// lvsdr-realserver.service. The repository's units and the binaries just
// built are bound over the packaged ones, the lab's topology is
// /etc/lvsdr/topology.yaml, and each unit is enabled, so systemd starts it
// at boot with its sandbox. The test proves what the sandbox must not take
// away: IPVS programmed, the VIP bound and announced, the sysctls written,
// the control socket answering (systemctl reload), the state written,
// clients served (rs1 too); the real server's VIP on lo and its ARP
// settings, put back by systemctl stop; and that the sandbox is applied,
// from systemd's view and from the director's own /proc status.
//
// LVSDR_E2E_SYSTEMD_ROOT names the tree (default
// /var/cache/lvsdr-deb/bookworm-systemd-root). LVSDR_E2E_SYSTEMD_MEASURE=1
// also boots the director with one setting changed (a capability out of
// its bounding set, ProtectKernelTunables on) and logs what breaks
// (docs/operations.md, "The units' sandbox").

// systemdRoot is the tree to boot, or a reason to skip.
func systemdRoot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Skip("systemd-nspawn is missing: apt-get install systemd-container on the host (the VM uses the host's root)")
	}
	root := os.Getenv("LVSDR_E2E_SYSTEMD_ROOT")
	if root == "" {
		root = "/var/cache/lvsdr-deb/bookworm-systemd-root"
	}
	for _, f := range []string{"lib/systemd/systemd", "usr/sbin/director", "lib/systemd/system/lvsdr-director.service"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Skipf("%s has no %s: run test/deb/run.sh first (it leaves the installed tree with systemd there)", root, f)
		}
	}
	return root
}

// repoUnit returns the repository's copy of a unit: the suite runs from
// the repository's root (test/e2e/run.sh), or from test/e2e.
func repoUnit(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"deploy/systemd", "../../deploy/systemd"} {
		if p, err := filepath.Abs(filepath.Join(dir, name)); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	wd, _ := os.Getwd()
	t.Fatalf("no deploy/systemd/%s from %s", name, wd)
	return ""
}

// container is one systemd-nspawn --boot, running one lvsdr unit.
type container struct {
	l    *lab
	name string
	unit string
	proc *proc
}

// cgroup2 mounts the unified cgroup hierarchy in the VM, whose busybox init
// does not: systemd in the container needs it.
func cgroup2(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return
	}
	run(t, "mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup")
}

// boot starts systemd in a container on root, in the network namespace of
// the lab's host, with unit (lvsdr-director or lvsdr-realserver) enabled
// and its binary the one just built; dropIn, if not empty, is a drop-in of
// the unit.
func (l *lab) boot(root, host, unit, dropIn string) *container {
	l.t.Helper()
	cgroup2(l.t)
	c := &container{l: l, name: l.ns[host] + "-systemd", unit: unit + ".service"}
	// /etc/systemd/system of the container: the unit enabled, and nothing
	// else (the tree's other enablements only slow the boot).
	etc := filepath.Join(l.dir, c.name+"-etc-systemd")
	wants := filepath.Join(etc, "multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Symlink("/lib/systemd/system/"+c.unit, filepath.Join(wants, c.unit)); err != nil {
		l.t.Fatal(err)
	}
	if dropIn != "" {
		d := filepath.Join(etc, c.unit+".d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			l.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "e2e.conf"), []byte("[Service]\n"+dropIn+"\n"), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	// /etc/lvsdr of the container: the lab's topology (a bind mount needs
	// its target in the read-only tree, and the package made /etc/lvsdr).
	etcLvsdr := filepath.Join(l.dir, c.name+"-etc-lvsdr")
	if err := os.MkdirAll(etcLvsdr, 0o755); err != nil {
		l.t.Fatal(err)
	}
	topo, err := os.ReadFile(l.config)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etcLvsdr, "topology.yaml"), topo, 0o644); err != nil {
		l.t.Fatal(err)
	}
	// Each container under a cgroup of its own: with --keep-unit, nspawn
	// makes its payload and supervisor cgroups under the one it starts in.
	cg := filepath.Join("/sys/fs/cgroup", c.name)
	if err := os.Mkdir(cg, 0o755); err != nil && !os.IsExist(err) {
		l.t.Fatal(err)
	}
	command := strings.TrimPrefix(unit, "lvsdr-")
	nspawn := []string{
		"systemd-nspawn", "--boot", "--directory", root, "--machine", c.name,
		// The tree stays as test/deb left it: read-only, /var on a tmpfs
		// (StateDirectory= makes /var/lib/lvsdr there). The VM runs no
		// systemd and no D-Bus: no machined registration, no scope unit
		// (--keep-unit: the container's cgroups go under nspawn's own).
		"--read-only", "--volatile=state",
		"--register=no", "--keep-unit", "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=pipe",
		"--network-namespace-path=/run/netns/" + l.ns[host], "--capability=CAP_NET_ADMIN",
		"--bind-ro=" + binary(l.t, command) + ":/usr/sbin/" + command,
		"--bind-ro=" + repoUnit(l.t, c.unit) + ":/lib/systemd/system/" + c.unit,
		"--bind-ro=" + etc + ":/etc/systemd/system",
		"--bind-ro=" + etcLvsdr + ":/etc/lvsdr",
	}
	logf, err := os.Create(filepath.Join(l.dir, c.name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ >"$0/cgroup.procs" && shift && exec "$@"`, cg, "--"}, nspawn...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("systemd-nspawn: %v", err)
	}
	c.proc = &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(c.proc.done)
	}()
	l.procs.Store(c.name, c.proc)
	return c
}

// log returns the container's console output.
func (c *container) log() string { return c.l.log(c.name) }

// pid1 returns the PID, in the VM, of the container's systemd.
func (c *container) pid1() (int, bool) {
	parent := map[int]int{}
	comm := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		s := string(stat)
		lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if lp < 0 || rp < lp {
			continue
		}
		fields := strings.Fields(s[rp+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parent[pid], comm[pid] = ppid, s[lp+1:rp]
	}
	nspawn := c.proc.cmd.Process.Pid
	for pid, name := range comm {
		if name != "systemd" {
			continue
		}
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == nspawn {
				return pid, true
			}
		}
	}
	return 0, false
}

// in runs a command inside the container (its mount, PID, IPC, UTS and
// network namespaces, its root and working directory) and returns its
// output and error.
func (c *container) in(args ...string) (string, error) {
	pid, ok := c.pid1()
	if !ok {
		return "", fmt.Errorf("no systemd in the container (yet)")
	}
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustIn is in, failing the test on an error.
func (c *container) mustIn(args ...string) string {
	c.l.t.Helper()
	out, err := c.in(args...)
	if err != nil {
		c.l.t.Fatalf("in the container, %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// waitActive waits until systemd reports the unit active (the director's
// after its READY=1, which follows the first reconcile; the realserver's
// after its start ran).
func (c *container) waitActive(limit time.Duration) time.Duration {
	c.l.t.Helper()
	start := time.Now()
	var state string
	for time.Since(start) < limit {
		if !c.proc.alive() {
			c.l.t.Fatalf("systemd-nspawn exited:\n%s", c.log())
		}
		out, _ := c.in("systemctl", "is-active", c.unit)
		state = strings.TrimSpace(out)
		switch state {
		case "active":
			return time.Since(start)
		case "failed":
			c.l.t.Fatalf("%s failed under systemd:\n%s", c.unit, c.journal())
		}
		time.Sleep(time.Second)
	}
	c.l.t.Fatalf("%s not active within %s (last %q); journal:\n%s\nconsole:\n%s", c.unit, limit, state, c.journal(), c.log())
	return 0
}

// journal returns the unit's journal, for a failure's message.
func (c *container) journal() string {
	out, _ := c.in("journalctl", "--no-pager", "-o", "short-monotonic", "-u", c.unit)
	return out
}

// stop powers the container off and waits for it.
func (c *container) stop() {
	c.l.t.Helper()
	c.in("systemctl", "poweroff", "--no-block")
	select {
	case <-c.proc.done:
	case <-time.After(60 * time.Second):
		c.proc.cmd.Process.Kill()
		<-c.proc.done
	}
	c.l.procs.Delete(c.name)
}

// show returns systemctl show's value of each property of the unit.
func (c *container) show(props ...string) map[string]string {
	c.l.t.Helper()
	out := c.mustIn(append([]string{"systemctl", "show", c.unit}, prefixEach("-p", props)...)...)
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			values[k] = v
		}
	}
	return values
}

func prefixEach(flag string, values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, flag, v)
	}
	return out
}

// processStatus returns the lines of /proc/PID/status of the unit's main
// process, as the kernel applies its sandbox.
func (c *container) processStatus() map[string]string {
	c.l.t.Helper()
	pid := c.show("MainPID")["MainPID"]
	out := c.mustIn("cat", "/proc/"+pid+"/status")
	status := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			status[k] = strings.TrimSpace(v)
		}
	}
	return status
}

func TestSystemdUnitsSandboxKeepsDirectorAndRealServerWorking(t *testing.T) {
	needIPVS(t)
	root := systemdRoot(t)
	weights := [3]int{1, 1, 1}
	l := newLab(t)
	l.topology(weights, "")
	// rs2 and rs3 as the other tests have them; rs1's VIP and ARP settings
	// come from lvsdr-realserver.service under systemd.
	for _, node := range []string{"rs1", "rs2", "rs3"} {
		if node != "rs1" {
			l.exec(node, binary(t, "realserver"), "start", "--config", l.config, "--state-dir", filepath.Join(l.dir, node))
		}
		l.listen(node, 5672)
		l.listen(node, 15672)
	}
	rs := l.boot(root, "rs1", "lvsdr-realserver", "")
	c := l.boot(root, "director", "lvsdr-director", "")
	took := rs.waitActive(150 * time.Second)
	t.Logf("lvsdr-realserver.service active %s after its container started", took.Round(100*time.Millisecond))
	took = c.waitActive(150 * time.Second)
	t.Logf("lvsdr-director.service active %s after its container started", took.Round(100*time.Millisecond))

	// The real server: the VIP on lo, ARP suppressed, through its sysctls.
	if addrs := l.exec("rs1", "ip", "-o", "addr", "show", "dev", "lo"); !strings.Contains(addrs, " "+vip+"/32 ") {
		t.Errorf("the VIP %s is not on rs1's lo:\n%s", vip, addrs)
	}
	for name, want := range map[string]string{"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"} {
		if v := strings.TrimSpace(l.exec("rs1", "sysctl", "-n", name)); v != want {
			t.Errorf("rs1: %s = %s, want %s (written by lvsdr-realserver under its sandbox)", name, v, want)
		}
	}

	// IPVS programmed, every node in.
	l.waitFor("every node in both services, programmed from the sandbox", 30*time.Second, allIn(weights))
	// The VIP bound, and announced (gratuitous ARP: a packet socket).
	if addrs := l.exec("director", "ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(addrs, " "+vip+"/32 ") {
		t.Errorf("the VIP %s is not on the director's eth0:\n%s", vip, addrs)
	}
	if neigh, dm := l.exec("client", "ip", "neigh", "show", vip), l.mac("director"); !strings.Contains(neigh, dm) {
		t.Errorf("no gratuitous ARP from the sandboxed director: the client's neighbour entry for the VIP is %q, want %s", strings.TrimSpace(neigh), dm)
	}
	// Its sysctls written through /proc/sys/net.
	for _, name := range []string{"net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.expire_quiescent_template"} {
		if v := strings.TrimSpace(l.exec("director", "sysctl", "-n", name)); v != "1" {
			t.Errorf("%s = %s, want 1 (written by the director under its sandbox)", name, v)
		}
	}
	// Clients served through the VIP, rs1 among them: a packet for the
	// VIP reaches rs1's listener only with the VIP on its lo.
	n := count(l.connect(5672, sources(100, 130)))
	if n["rs1"]+n["rs2"]+n["rs3"] != 30 || n["rs1"] == 0 {
		t.Errorf("30 clients through the VIP reached %v, want all served, rs1 too", n)
	}
	// The state file in StateDirectory=, the control socket in
	// RuntimeDirectory=: systemctl reload goes through it.
	if out, err := c.in("systemctl", "reload", c.unit); err != nil {
		t.Errorf("systemctl reload (director reload over /run/lvsdr/director.sock): %v\n%s\n%s", err, out, c.journal())
	}
	if out, err := c.in("sh", "-c", "ls /var/lib/lvsdr/ && ls -l /run/lvsdr/"); err != nil || !strings.Contains(out, "director.sock") {
		t.Errorf("state and control socket: %v\n%s", err, out)
	} else {
		t.Logf("/var/lib/lvsdr and /run/lvsdr:\n%s", out)
	}

	// The sandbox as systemd applied it.
	props := c.show("CapabilityBoundingSet", "AmbientCapabilities", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
		"ProtectKernelTunables", "RestrictAddressFamilies", "SystemCallFilter", "MemoryDenyWriteExecute", "User")
	for k, v := range props {
		if k != "SystemCallFilter" {
			t.Logf("systemctl show: %s=%s", k, v)
		}
	}
	for k, want := range map[string]string{
		"CapabilityBoundingSet":  "cap_net_bind_service cap_net_admin cap_net_raw",
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
		"ProtectHome":            "yes",
		"PrivateTmp":             "yes",
		"ProtectKernelTunables":  "no",
		"MemoryDenyWriteExecute": "yes",
	} {
		if props[k] != want {
			t.Errorf("systemctl show: %s=%q, want %q", k, props[k], want)
		}
	}
	for _, family := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"} {
		if !strings.Contains(" "+props["RestrictAddressFamilies"]+" ", " "+family+" ") {
			t.Errorf("RestrictAddressFamilies=%s lacks %s", props["RestrictAddressFamilies"], family)
		}
	}
	// And as the kernel holds it for the running director: the bounding
	// set (bits 10 NET_BIND_SERVICE, 12 NET_ADMIN, 13 NET_RAW), no new
	// privileges, a seccomp filter.
	st := c.processStatus()
	t.Logf("/proc/MainPID/status: CapBnd %s CapEff %s NoNewPrivs %s Seccomp %s", st["CapBnd"], st["CapEff"], st["NoNewPrivs"], st["Seccomp"])
	if st["CapBnd"] != "0000000000003400" || st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("the director runs with CapBnd %s NoNewPrivs %s Seccomp %s, want 0000000000003400, 1, 2", st["CapBnd"], st["NoNewPrivs"], st["Seccomp"])
	}
	// Nothing the sandbox refused. (A loaded VM makes the checker late,
	// which it logs at WARN; moby/ipvs warns that it has no modprobe.)
	j := c.journal()
	for _, refused := range []string{"permission denied", "operation not permitted", "read-only file system", "gratuitous ARP not sent", "level=ERROR"} {
		if strings.Contains(strings.ToLower(j), strings.ToLower(refused)) {
			t.Errorf("the sandboxed director's journal has %q:\n%s", refused, j)
		}
	}
	c.stop()

	// The real server's sandbox, and its stop: ExecStop= puts back the ARP
	// settings it found (0 in a fresh namespace) and takes the VIP off lo.
	if got := rs.show("CapabilityBoundingSet")["CapabilityBoundingSet"]; got != "cap_net_admin" {
		t.Errorf("lvsdr-realserver: CapabilityBoundingSet=%q, want cap_net_admin", got)
	}
	if out, err := rs.in("systemctl", "stop", rs.unit); err != nil {
		t.Errorf("systemctl stop lvsdr-realserver: %v\n%s\n%s", err, out, rs.journal())
	}
	if addrs := l.exec("rs1", "ip", "-o", "addr", "show", "dev", "lo"); strings.Contains(addrs, " "+vip+"/32 ") {
		t.Errorf("the VIP is still on rs1's lo after systemctl stop:\n%s", addrs)
	}
	if v := strings.TrimSpace(l.exec("rs1", "sysctl", "-n", "net.ipv4.conf.all.arp_ignore")); v != "0" {
		t.Errorf("rs1: arp_ignore = %s after systemctl stop, want the 0 it found", v)
	}
	if j := strings.ToLower(rs.journal()); strings.Contains(j, "permission denied") || strings.Contains(j, "read-only file system") {
		t.Errorf("the sandboxed realserver's journal:\n%s", rs.journal())
	}
	rs.stop()

	if os.Getenv("LVSDR_E2E_SYSTEMD_MEASURE") != "1" {
		return
	}
	// What each capability is for, and why ProtectKernelTunables stays
	// off: boot again with one setting changed and see what breaks (each
	// boot costs a minute or more under emulation).
	for _, tc := range []struct{ name, dropIn string }{
		{"without CAP_NET_RAW", "CapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE"},
		{"without CAP_NET_ADMIN", "CapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_RAW CAP_NET_BIND_SERVICE"},
		{"with ProtectKernelTunables", "ProtectKernelTunables=yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newLab(t)
			m.topology(weights, "")
			m.nodes()
			c := m.boot(root, "director", "lvsdr-director", tc.dropIn)
			// Until the container's boot is over (the unit started, or
			// failed and waits to restart), and 10 s more for its checks.
			start := time.Now()
			for time.Since(start) < 300*time.Second {
				out, _ := c.in("systemctl", "is-system-running")
				if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
					break
				}
				time.Sleep(time.Second)
			}
			time.Sleep(10 * time.Second)
			state, _ := c.in("systemctl", "show", "-p", "ActiveState,SubState,NRestarts,Result", c.unit)
			t.Logf("%s: %s\ntable:\n%s\nclient's neighbour entry for the VIP: %s\njournal:\n%s", tc.name, strings.Join(strings.Fields(state), " "),
				m.ipvs(), strings.TrimSpace(m.exec("client", "ip", "neigh", "show", vip)), c.journal())
			c.stop()
		})
	}
}
