//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The pair of directors of issue 11 on the lab's subnet: d1 has the
// single-director lab's address, d2 the next one.
const (
	d1IP = directorIP
	d2IP = subnet + ".3"
)

// The probe of the failover tests: a new TCP connection to the VIP every
// probeEvery, each given probeTimeout (well under the kernel's first SYN
// retransmission at 1 s, so that a probe fails rather than waits).
const (
	probeEvery   = 50 * time.Millisecond
	probeTimeout = 200 * time.Millisecond
)

// The probe role runs from init: TestMain (roles_test.go) dispatches the
// suite's other roles, and init runs before it.
func init() {
	switch os.Getenv("LVSDR_E2E_ROLE") {
	case "probe":
		os.Exit(probeRole())
	case "watchvip":
		os.Exit(watchRole())
	}
}

// watchRole watches eth0 of its namespace and prints "vip TIME 1" when the
// VIP (LVSDR_E2E_VIP) appears on it and "vip TIME 0" when it goes: where the
// VIP is, timed, without a process started per look (under emulation a
// process start costs more than VRRP's whole interval). SIGUSR1 takes eth0
// down and SIGUSR2 brings it up, at once (no process to start), printing
// "link TIME down|up".
func watchRole() int {
	want := os.Getenv("LVSDR_E2E_VIP")
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format, args...)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sig {
			up := s == syscall.SIGUSR2
			if err := setLinkUp("eth0", up); err != nil {
				say("link error %v\n", err)
				continue
			}
			state := "down"
			if up {
				state = "up"
			}
			say("link %d %s\n", time.Now().UnixNano(), state)
		}
	}()
	// Woken by the kernel's address notifications rather than polling, so
	// that watching costs the emulated VM nothing between changes; a
	// periodic look covers a lost notification.
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		return 1
	}
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR}); err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		return 1
	}
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	unix.SetsockoptTimeval(nl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 1<<16)
	held := -1
	for {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "watch:", err)
			return 1
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			fmt.Fprintln(os.Stderr, "watch:", err)
			return 1
		}
		now := 0
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == want {
				now = 1
			}
		}
		if now != held {
			say("vip %d %d\n", time.Now().UnixNano(), now)
			held = now
		}
		unix.Recvfrom(nl, buf, 0) // a notification, or a second passed
	}
}

// setLinkUp sets or clears IFF_UP of an interface, as `ip link set` does.
func setLinkUp(name string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of %s: %w", name, err)
	}
	flags := ifr.Uint16() &^ unix.IFF_UP
	if up {
		flags |= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set flags of %s: %w", name, err)
	}
	return nil
}

// probeRole opens a new connection to LVSDR_E2E_TARGET every probeEvery,
// each on its own goroutine so that a failing one delays no other, and
// prints "probe START END OK" (Unix nanoseconds, OK 1 or 0) for each. With
// LVSDR_E2E_CONTROL it opens one to that address too (a node, not through
// the director) and prints "control START END OK": when a control fails,
// the emulated VM was too slow for the timeout, whatever the director did.
func probeRole() int {
	target, control := os.Getenv("LVSDR_E2E_TARGET"), os.Getenv("LVSDR_E2E_CONTROL")
	var mu sync.Mutex
	dial := func(kind, addr string, start time.Time) {
		conn, err := net.DialTimeout("tcp", addr, probeTimeout)
		end := time.Now()
		ok := 0
		if err == nil {
			conn.Close()
			ok = 1
		}
		mu.Lock()
		fmt.Printf("%s %d %d %d\n", kind, start.UnixNano(), end.UnixNano(), ok)
		mu.Unlock()
	}
	for start := range time.Tick(probeEvery) {
		go dial("probe", target, start)
		if control != "" {
			go dial("control", control, start)
		}
	}
	return 0
}

// haLab is a client, two directors (d1 and d2) and three nodes on one
// bridge. A director host runs either lvsdr's director or keepalived.
type haLab struct {
	*lab
	// watch holds the VIP watchers of d1 and d2 (watchRole); watchers
	// their pids, which die spares.
	watch    map[string]*proc
	watchers map[int]bool
}

// newHALab builds the namespaces and links of a pair of directors.
func newHALab(t *testing.T) *haLab {
	t.Helper()
	l := &lab{t: t, id: fmt.Sprintf("e2e%d", labCount.Add(1)), dir: t.TempDir(), ns: map[string]string{}}
	t.Cleanup(l.teardown)
	l.ns["sw"] = l.id + "-sw"
	run(t, "ip", "netns", "add", l.ns["sw"])
	// Snooping off: VRRP's group is link-local and flooded anyway; the
	// bridge must not be what decides whether an advert arrives.
	run(t, "ip", "-n", l.ns["sw"], "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", l.ns["sw"], "link", "set", "br0", "up")
	hosts := map[string]string{"client": clientIP, "d1": d1IP, "d2": d2IP, "rs1": subnet + ".11", "rs2": subnet + ".12", "rs3": subnet + ".13"}
	for host, addr := range hosts {
		l.ns[host] = l.id + "-" + host
		run(t, "ip", "netns", "add", l.ns[host])
		port := "p-" + host
		run(t, "ip", "-n", l.ns["sw"], "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", l.ns[host])
		run(t, "ip", "-n", l.ns["sw"], "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", l.ns[host], "addr", "add", addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", l.ns[host], "link", "set", "eth0", "up")
		run(t, "ip", "-n", l.ns[host], "link", "set", "lo", "up")
	}
	// The client learns the VIP's new place from gratuitous ARP.
	run(t, "ip", "netns", "exec", l.ns["client"], "sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1")
	h := &haLab{lab: l, watch: map[string]*proc{}, watchers: map[int]bool{}}
	self, _ := os.Executable()
	for _, d := range []string{"d1", "d2"} {
		h.watch[d] = h.start("watch-"+d, d, []string{"LVSDR_E2E_ROLE=watchvip", "LVSDR_E2E_VIP=" + vip}, self)
		h.watchers[h.watch[d].cmd.Process.Pid] = true
	}
	for _, d := range []string{"d1", "d2"} {
		for deadline := time.Now().Add(10 * time.Second); len(h.vipEvents(d)) == 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the VIP watcher of %s says nothing: %s", d, h.log("watch-"+d))
			}
		}
	}
	return h
}

// haSettings is director.ha for the pair (VRID 51), as directorExtra.
func haSettings(version int, interval string, prio1, prio2 int) string {
	return fmt.Sprintf(", ha: {vrid: 51, version: %d, advert_interval: %s, directors: [{name: d1, address: %s, priority: %d}, {name: d2, address: %s, priority: %d}]}",
		version, interval, d1IP, prio1, d2IP, prio2)
}

// args is a director command line for a director host, with that host's
// own state directory and control socket.
func (h *haLab) args(host string, cmd ...string) []string {
	return append(append([]string{binary(h.t, "director")}, cmd...), "--config", h.config,
		"--state-dir", filepath.Join(h.dir, host+"-state"), "--control-socket", filepath.Join(h.dir, host+".sock"))
}

// runDirectorOn starts `director run` on a director host.
func (h *haLab) runDirectorOn(host string) *proc {
	return h.start("director-"+host, host, nil, h.args(host, "run")...)
}

// command runs a command in a host's namespace and returns its output and
// error, for commands whose failure a test reports rather than dies of.
func (h *haLab) command(host string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.ns[host]}, args...)...).CombinedOutput()
	return string(out), err
}

// vipEvent is a change of a director host's VIP, as its watcher saw it.
type vipEvent struct {
	at   time.Time
	held bool
}

// vipEvents parses a director host's watcher log.
func (h *haLab) vipEvents(host string) []vipEvent {
	var out []vipEvent
	for _, line := range strings.Split(h.log("watch-"+host), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "vip" {
			continue
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, vipEvent{time.Unix(0, ns), f[2] == "1"})
	}
	return out
}

// holds reports whether a host has the VIP on eth0.
func (h *haLab) holds(host string) bool {
	ev := h.vipEvents(host)
	return len(ev) > 0 && ev[len(ev)-1].held
}

// changedAt returns when host's VIP was first seen bound (held) or unbound
// after t, and false if it was not.
func (h *haLab) changedAt(host string, held bool, t time.Time) (time.Time, bool) {
	for _, e := range h.vipEvents(host) {
		if e.held == held && !e.at.Before(t) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// holders lists the director hosts that have the VIP.
func (h *haLab) holders() []string {
	var out []string
	for _, d := range []string{"d1", "d2"} {
		if h.holds(d) {
			out = append(out, d)
		}
	}
	return out
}

// waitHolds waits until host has the VIP and returns when it was seen.
func (h *haLab) waitHolds(host string, limit time.Duration) time.Time {
	h.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if h.holds(host) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not bind the VIP within %s; holders %v\n%s", host, limit, h.holders(), h.logs())
		}
	}
}

// waitSoleMaster waits until host alone has the VIP, then checks that it
// stays so for a few advert intervals.
func (h *haLab) waitSoleMaster(host string, limit, settle time.Duration) {
	h.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if slices.Equal(h.holders(), []string{host}) {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("want %s alone holding the VIP within %s, holders %v\n%s", host, limit, h.holders(), h.logs())
		}
	}
	time.Sleep(settle)
	if got := h.holders(); !slices.Equal(got, []string{host}) {
		h.t.Fatalf("want %s alone holding the VIP, %s later holders are %v\n%s", host, settle, got, h.logs())
	}
}

// logs returns the logs of the directors and keepalived, for failures.
func (h *haLab) logs() string {
	var b strings.Builder
	for _, name := range []string{"director-d1", "director-d2", "keepalived-d1", "keepalived-d2"} {
		v, started := h.procs.Load(name)
		log := h.log(name)
		if log == "" && !started {
			continue
		}
		state := "exited"
		if started && v.(*proc).alive() {
			state = "running"
		}
		if log == "" {
			log = "(nothing written)"
		}
		fmt.Fprintf(&b, "--- %s (%s) log, last 60 lines:\n%s\n", name, state, tail(log, 60))
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rules returns a host's IPVS table as sorted `ipvsadm -Sn` lines: the
// rules alone, no counters, in an order that does not depend on when each
// destination was added.
func (h *haLab) rules(host string) []string {
	h.t.Helper()
	var out []string
	for _, line := range strings.Split(h.exec(host, "ipvsadm", "-Sn"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

// fullTable says whether rules have both services with every node at
// weight 1.
func fullTable(rules []string) bool {
	for _, port := range []string{"5672", "15672"} {
		for i := 11; i <= 13; i++ {
			want := fmt.Sprintf("-a -t %s:%s -r %s.%d:%s -g -w 1", vip, port, subnet, i, port)
			if !slices.Contains(rules, want) {
				return false
			}
		}
	}
	return true
}

// waitTables waits until both directors have the whole table, the same.
func (h *haLab) waitTables(limit time.Duration) {
	h.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(500 * time.Millisecond) {
		r1, r2 := h.rules("d1"), h.rules("d2")
		if fullTable(r1) && slices.Equal(r1, r2) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the directors' tables are not both full and equal within %s:\nd1:\n%s\nd2:\n%s\nd1 ipvsadm -Ln:\n%s\n%s",
				limit, strings.Join(r1, "\n"), strings.Join(r2, "\n"), h.exec("d1", "ipvsadm", "-Ln"), h.logs())
		}
	}
}

// startProbe starts the client's probe of new connections to the VIP and
// waits for its first successful probes.
func (h *haLab) startProbe() {
	h.t.Helper()
	self, _ := os.Executable()
	h.start("probe", "client", []string{"LVSDR_E2E_ROLE=probe", "LVSDR_E2E_TARGET=" + vip + ":5672", "LVSDR_E2E_CONTROL=" + subnet + ".11:5672"}, self)
	// A process start under emulation, the binary read over 9p, can take
	// seconds when the machine is loaded.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ps := h.probes(); len(ps) >= 20 && ps[len(ps)-1].ok && ps[len(ps)-2].ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the probe does not reach the VIP steadily:\n%s\n%s", tail(h.log("probe"), 20), h.logs())
		}
	}
}

// probeResult is one probe: when it started and ended, and whether the
// connection was made.
type probeResult struct {
	start, end time.Time
	ok         bool
}

// probes parses the probe's log, in order of start: the probes of the VIP,
// or with kind "control" those of the node dialled directly.
func (h *haLab) probes(kind ...string) []probeResult {
	want := "probe"
	if len(kind) > 0 {
		want = kind[0]
	}
	var out []probeResult
	for _, line := range strings.Split(h.log("probe"), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != want {
			continue
		}
		start, err1 := strconv.ParseInt(f[1], 10, 64)
		end, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, probeResult{time.Unix(0, start), time.Unix(0, end), f[3] == "1"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// outage is what the client saw of one event.
type outage struct {
	// total is the sum, over each run of failed probes, of the time from
	// the start of its first failed probe to the end of the next
	// successful one.
	total time.Duration
	// failed counts the failed probes, runs the separate outages.
	failed, runs int
	// recovered says whether a successful probe followed the last failure.
	recovered bool
	// controls counts the control probes (a node, directly) that failed
	// from the first failure to the recovery: the VM's own slowness.
	controls int
}

func (o outage) String() string {
	s := fmt.Sprintf("%.2f s (%d probes failed", o.total.Seconds(), o.failed)
	if o.runs > 1 {
		s += fmt.Sprintf(", in %d separate outages", o.runs)
	}
	if o.controls > 0 {
		s += fmt.Sprintf("; %d control probes to a node failed meanwhile: the VM was starved", o.controls)
	}
	return s + ")"
}

// outageSince measures the outage in the probes started from since on.
func (h *haLab) outageSince(since time.Time) outage {
	o := outage{recovered: true}
	var runStart, first, last time.Time
	for _, p := range h.probes() {
		if p.start.Before(since) {
			continue
		}
		if !p.ok {
			o.failed++
			if o.recovered {
				o.recovered, runStart = false, p.start
				o.runs++
				if first.IsZero() {
					first = p.start
				}
			}
			continue
		}
		if !o.recovered {
			o.total += p.end.Sub(runStart)
			o.recovered, last = true, p.end
		}
	}
	if !first.IsZero() {
		for _, c := range h.probes("control") {
			if !c.ok && !c.start.Before(first) && (c.start.Before(last) || !o.recovered) {
				o.controls++
			}
		}
	}
	return o
}

// measure runs event, which returns when it happened, waits until
// settled (the VIP where it should be) and the client has had a second of
// successful probes, and returns the outage the client saw.
func (h *haLab) measure(what string, event func() time.Time, settled func() bool, limit time.Duration) outage {
	h.t.Helper()
	at := event()
	// From a little before the event: a probe started just before it may
	// be the first to fail.
	since := at.Add(-probeTimeout)
	settledAt := time.Time{}
	for deadline := time.Now().Add(limit); ; time.Sleep(200 * time.Millisecond) {
		if settledAt.IsZero() && settled() {
			settledAt = time.Now()
		}
		o := h.outageSince(since)
		ps := h.probes()
		if !settledAt.IsZero() && o.recovered && time.Since(settledAt) > time.Second && len(ps) > 2 && ps[len(ps)-1].ok && ps[len(ps)-2].ok {
			h.t.Logf("%s: %s; the VIP settled %.2f s after the event\n%s", what, o, settledAt.Sub(at).Seconds(), h.timeline(at))
			return o
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %s after the event, the VIP settled: %v (holders %v), the client %s; last probes:\n%s\n%s",
				what, limit, !settledAt.IsZero(), h.holders(), o, tail(h.log("probe"), 20), h.logs())
		}
	}
}

// timeline describes, relative to at, the probes around an event (runs of
// equal results, by start time) and the VIP's moves.
func (h *haLab) timeline(at time.Time) string {
	off := func(t time.Time) string { return fmt.Sprintf("%+.2f", t.Sub(at).Seconds()) }
	var b strings.Builder
	b.WriteString("probes (start times in s from the event):")
	var first, last probeResult
	n := 0
	flush := func() {
		if n > 0 {
			word := "ok"
			if !first.ok {
				word = "FAILED"
			}
			fmt.Fprintf(&b, " [%s %s..%s ×%d]", word, off(first.start), off(last.start), n)
		}
	}
	for _, p := range h.probes() {
		if p.start.Before(at.Add(-time.Second)) {
			continue
		}
		if n > 0 && p.ok != first.ok {
			flush()
			n = 0
		}
		if n == 0 {
			first = p
		}
		last = p
		n++
	}
	flush()
	b.WriteString("\nVIP:")
	for _, d := range []string{"d1", "d2"} {
		for _, e := range h.vipEvents(d) {
			if !e.at.Before(at.Add(-time.Second)) {
				verb := "unbound"
				if e.held {
					verb = "bound"
				}
				fmt.Fprintf(&b, " %s %s at %s;", d, verb, off(e.at))
			}
		}
	}
	return b.String()
}

// holdsFn and soleFn are settled conditions of measure: host has the VIP,
// or host alone has it.
func (h *haLab) holdsFn(host string) func() bool { return func() bool { return h.holds(host) } }
func (h *haLab) soleFn(host string) func() bool {
	return func() bool { return slices.Equal(h.holders(), []string{host}) }
}

// die takes a director host's link down and kills every process on it at
// once (SIGKILL: nothing said on the way out): a director that dies with
// its machine. The link goes first, so that no advert leaves after the
// event. It returns when the link went down, as the host's watcher saw it.
func (h *haLab) die(host string) time.Time {
	h.t.Helper()
	var pids []int
	for _, f := range strings.Fields(run(h.t, "ip", "netns", "pids", h.ns[host])) {
		if pid, err := strconv.Atoi(f); err == nil && !h.watchers[pid] {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		h.t.Fatalf("nothing runs on %s to kill", host)
	}
	at := h.setLink(host, false)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, name := range []string{"director-" + host, "keepalived-" + host} {
		if v, ok := h.procs.Load(name); ok {
			<-v.(*proc).done
			h.procs.Delete(name)
		}
	}
	return at
}

// setLink has a director host's watcher take its link down or bring it up,
// and returns when that was done.
func (h *haLab) setLink(host string, up bool) time.Time {
	h.t.Helper()
	sig, state := syscall.SIGUSR1, "down"
	if up {
		sig, state = syscall.SIGUSR2, "up"
	}
	before := strings.Count(h.log("watch-"+host), "link ")
	w, ok := h.watch[host]
	if !ok {
		h.t.Fatalf("no watcher on %s to set its link %s", host, state)
	}
	w.cmd.Process.Signal(sig)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var lines []string
		for _, line := range strings.Split(h.log("watch-"+host), "\n") {
			if strings.HasPrefix(line, "link ") {
				lines = append(lines, line)
			}
		}
		if len(lines) > before {
			f := strings.Fields(lines[before])
			ns, err := strconv.ParseInt(f[1], 10, 64)
			if len(f) != 3 || f[2] != state || err != nil {
				h.t.Fatalf("link %s on %s: %s", state, host, lines[before])
			}
			return time.Unix(0, ns)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the watcher of %s did not take its link %s", host, state)
		}
	}
}

// linkUp brings a director host's link back.
func (h *haLab) linkUp(host string) time.Time {
	h.t.Helper()
	return h.setLink(host, true)
}

// stop sends SIGTERM to a process started by start and returns when it
// was sent; waitExit waits for it to end.
func (h *haLab) stop(name string) time.Time {
	h.t.Helper()
	v, ok := h.procs.Load(name)
	if !ok {
		h.t.Fatalf("no process %s", name)
	}
	at := time.Now()
	v.(*proc).cmd.Process.Signal(syscall.SIGTERM)
	return at
}

// waitExit waits for a process sent SIGTERM by stop.
func (h *haLab) waitExit(name string) {
	h.t.Helper()
	v, _ := h.procs.Load(name)
	select {
	case <-v.(*proc).done:
		h.procs.Delete(name)
	case <-time.After(30 * time.Second):
		h.t.Fatalf("%s did not exit within 30s of SIGTERM\n%s", name, h.logs())
	}
}

// applyOn programs the lab's table into a director host's IPVS once, every
// node in: the table of a keepalived director, whose keepalived here runs
// VRRP only.
func (h *haLab) applyOn(host string) {
	h.t.Helper()
	h.exec(host, h.args(host, "apply")...)
}

// keepalived starts Debian's keepalived (VRRP only) on a director host:
// one vrrp_instance of VRID 51 whose only virtual address is the VIP, as
// lvsdr's adverts carry it.
func (h *haLab) keepalived(host string, version, priority int, interval time.Duration) *proc {
	h.t.Helper()
	conf := fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_version %d
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int %g
    virtual_ipaddress {
        %s/32
    }
}
`, host, version, priority, interval.Seconds(), vip)
	path := filepath.Join(h.dir, "keepalived-"+host+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h.start("keepalived-"+host, host, nil, "keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", path,
		"-p", filepath.Join(h.dir, "keepalived-"+host+".pid"), "-r", filepath.Join(h.dir, "keepalived-vrrp-"+host+".pid"))
}

// keepalivedComplaints returns the lines where keepalived says it
// discarded or rejected something: with lvsdr as its peer, each is an
// interop defect.
func (h *haLab) keepalivedComplaints(host string) []string {
	var out []string
	for _, line := range strings.Split(h.log("keepalived-"+host), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "received lower priority") {
			continue
		}
		for _, word := range []string{"invalid", "mismatch", "wrong", "bad ", "discard", "ignor", "error"} {
			if strings.Contains(l, word) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// masterDown is VRRP's Master_Down_Interval of a backup of the given
// priority: 3 intervals and a skew of (256 - priority)/256 of one.
func masterDown(interval time.Duration, priority int) time.Duration {
	return 3*interval + time.Duration(256-priority)*interval/256
}

// figures collects the measured outages of a test, printed at its end as
// one table (the source of docs/benchmarks.md).
type figures struct {
	title string
	rows  [][2]string
}

func (f *figures) add(what string, o outage, bound string) {
	f.rows = append(f.rows, [2]string{what, o.String() + bound})
	fmt.Printf("E2E HA %s: %s: %s%s\n", f.title, what, o, bound)
}

func (f *figures) print() {
	fmt.Printf("\nE2E HA figures, %s (probe: a new connection every %s, each given %s):\n", f.title, probeEvery, probeTimeout)
	for _, r := range f.rows {
		fmt.Printf("E2E HA   %-60s %s\n", r[0], r[1])
	}
}
