//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/director"
)

// What an operator does to a running director by hand (issue 14): remove
// its VIP, run the one-shot commands, reload a file it cannot run.

// attempt runs a command in a host's namespace that may fail, and returns
// its output (stdout and stderr) and error.
func (l *lab) attempt(host string, args ...string) (string, error) {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.ns[host]}, args...)...).CombinedOutput()
	return string(out), err
}

// refused runs a director command that must fail with one line saying
// each of say, and returns that line.
func (l *lab) refused(cmd []string, say ...string) string {
	l.t.Helper()
	out, err := l.attempt("director", cmd...)
	line := strings.TrimSpace(out)
	if err == nil {
		l.t.Errorf("director %s succeeded, want it refused:\n%s", cmd[1], out)
	}
	if strings.Contains(line, "\n") {
		l.t.Errorf("director %s: want one line, got:\n%s", cmd[1], out)
	}
	for _, want := range say {
		if !strings.Contains(line, want) {
			l.t.Errorf("director %s said %q, which does not say %q", cmd[1], line, want)
		}
	}
	return line
}

// directorHoldsVIP says whether the VIP is on the director's eth0.
func (l *lab) directorHoldsVIP() bool {
	l.t.Helper()
	return strings.Contains(l.exec("director", "ip", "-4", "addr", "show", "dev", "eth0"), "inet "+vip+"/32")
}

// resyncInterval is the lab's director.resync_interval.
const resyncInterval = 5 * time.Second

func TestVIPRemovedByHandComesBackWithAGratuitousARP(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	dm := l.mac("director")
	// The client forgets the VIP, so that only a new gratuitous ARP can
	// teach it again: nothing in this test sends it traffic.
	l.attempt("client", "ip", "neigh", "flush", "to", vip, "dev", "eth0")
	if neigh := l.exec("client", "ip", "neigh", "show", vip); strings.Contains(neigh, dm) {
		t.Fatalf("the client still has the VIP after a flush: %q", neigh)
	}

	// The address goes somewhere while `ip addr del` runs, which under
	// emulation takes a while: the repair is timed from both ends of it.
	began := time.Now()
	l.exec("director", "ip", "addr", "del", vip+"/32", "dev", "eth0")
	removed := time.Now()
	for !l.directorHoldsVIP() {
		if time.Since(removed) > resyncInterval+2*slack {
			t.Fatalf("the VIP is not back %s after it was removed (resync_interval %s):\ndirector log:\n%s", time.Since(removed), resyncInterval, l.log("director"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := time.Since(removed)
	// The director's log dates the repair without the polling's delay.
	m := regexp.MustCompile(`time=(\S+) level=WARN msg="VIP lost: bound again"`).FindStringSubmatch(l.log("director"))
	if m == nil {
		t.Fatalf("the director's log does not say it bound the lost VIP again:\n%s", l.log("director"))
	}
	repaired, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("a VIP removed by hand was bound again %s to %s after it went (director's log; `ip addr del` took %s; seen by polling after %s; resync_interval %s)",
		repaired.Sub(removed).Round(10*time.Millisecond), repaired.Sub(began).Round(10*time.Millisecond), removed.Sub(began).Round(10*time.Millisecond),
		seen.Round(10*time.Millisecond), resyncInterval)
	t.Log(msg)
	fmt.Println("E2E", msg)
	// One resync interval, and the resync's own run under emulation.
	if late := repaired.Sub(removed); late > resyncInterval+slack {
		t.Errorf("the VIP came back %s after it was removed, more than resync_interval %s (+%s)", late, resyncInterval, slack)
	}

	var neigh string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if neigh = l.exec("client", "ip", "neigh", "show", vip); strings.Contains(neigh, dm) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(neigh, dm) {
		t.Errorf("no gratuitous ARP with the repair: the client's neighbour entry for the VIP is %q, want %s", strings.TrimSpace(neigh), dm)
	}
	// The limit is the scrape's under emulation; the gauge is set by the
	// same resync that repaired the VIP.
	l.waitMetric("lvsdr_vip_held 1", 30*time.Second, func(m string) bool {
		v, ok := sample(m, "lvsdr_vip_held")
		return ok && v == 1
	})
	if health, err := l.scrape("/healthz"); err != nil || health != "ok\n" {
		t.Errorf("/healthz after the repair: %q, %v; want ok", health, err)
	}
	var report director.Report
	if err := json.Unmarshal([]byte(l.stdout("director", append(l.directorArgs("status"), "-o", "json")...)), &report); err != nil || !report.VIPHeld {
		t.Errorf("director status -o json after the repair: vip_held %v, %v; want true", report.VIPHeld, err)
	}
	if n := count(l.connect(5672, sources(100, 110))); n["rs1"]+n["rs2"]+n["rs3"] != 10 {
		t.Errorf("after the repair clients reached %v, want all 10 served", n)
	}
}

func TestOneShotCommandsRefuseWhileADirectorRuns(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})
	before := l.ipvs()

	l.refused(l.directorArgs("apply"), "refused", "a director is running", "director reload", "director drain", "--force")
	l.refused(l.directorArgs("cleanup"), "refused", "a director is running", "stop the director first", "--force")
	if after := l.ipvs(); after != before {
		t.Errorf("a refused command changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !l.directorHoldsVIP() {
		t.Errorf("a refused cleanup took the VIP")
	}

	// A dry run changes nothing, so it runs under the director.
	plan := l.exec("director", append(l.directorArgs("cleanup"), "--dry-run")...)
	for _, want := range []string{"-D -t " + vip + ":5672", "-D -t " + vip + ":15672", "ip addr del " + vip + "/32 dev eth0"} {
		if !strings.Contains(plan, want) {
			t.Errorf("cleanup --dry-run does not say %q:\n%s", want, plan)
		}
	}
	if after := l.ipvs(); after != before || !l.directorHoldsVIP() {
		t.Errorf("cleanup --dry-run changed the table or took the VIP:\n%s", after)
	}

	// Without a director, reload says so and cleanup goes ahead.
	l.stopProcess("director", syscall.SIGTERM)
	l.refused(l.directorArgs("reload"), "no director is running")
	l.exec("director", l.directorArgs("cleanup")...)
	if tab := l.table(); len(tab) != 0 || l.directorHoldsVIP() {
		t.Errorf("cleanup with no director left services %v or the VIP", tab)
	}
}

func TestReloadReportsTheDirectorsRefusalAndChangesNothing(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})

	// An accepted reload is in the kernel when the command returns.
	l.topology([3]int{2, 1, 1}, "")
	if out := l.exec("director", l.directorArgs("reload")...); !strings.Contains(out, "reloaded") {
		t.Errorf("director reload said %q", out)
	}
	if !allIn([3]int{2, 1, 1})(l.table()) {
		t.Errorf("director reload returned before the new weights were in the kernel:\n%s", l.ipvs())
	}

	// The director's own address moves to another interface, as on a host
	// whose balancing NIC carries the VIP alone; its plain checks still
	// leave from it.
	// The route to the subnet is in place before the connected one goes, so
	// that no check fails.
	move := exec.Command("ip", "-n", l.ns["director"], "-batch", "-")
	move.Stdin = strings.NewReader(fmt.Sprintf(`link add dummy0 type dummy
link set dummy0 up
addr add %s/32 dev dummy0
route add %s.0/24 dev eth0 src %s metric 10
addr del %s/24 dev eth0
`, directorIP, subnet, directorIP, directorIP))
	if out, err := move.CombinedOutput(); err != nil {
		t.Fatalf("move the director's address to dummy0: %v\n%s", err, out)
	}
	l.waitFor("every node still in after the move", 30*time.Second, allIn([3]int{2, 1, 1}))
	before := l.ipvs()

	// A file that validates, but whose checks through the VIP have no
	// address on eth0 to leave from.
	l.checkExtra = ", through_vip: true"
	l.topology([3]int{3, 3, 3}, "")
	l.exec("director", l.directorArgs("validate")...)
	line := l.refused(l.directorArgs("reload"), "refused", "has no IPv4 address but the VIP")
	t.Logf("director reload of a file the director cannot run: %s", line)
	if after := l.ipvs(); after != before {
		t.Errorf("a refused reload changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if d, _ := l.procs.Load("director"); !d.(*proc).alive() {
		t.Fatalf("the director died on a refused reload:\n%s", l.log("director"))
	}
	if log := l.log("director"); !strings.Contains(log, "reload rejected") {
		t.Errorf("the director's log does not say the reload was rejected:\n%s", log)
	}
}

// TestDirectorTellsSystemdItsState runs the director as systemd runs a
// Type=notify unit with WatchdogSec=2s, and listens where systemd would.
func TestDirectorTellsSystemdItsState(t *testing.T) {
	needIPVS(t)
	l := newLab(t)
	l.topology([3]int{1, 1, 1}, "")
	l.nodes()
	path := filepath.Join(l.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	told := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			told <- string(buf[:n])
		}
	}()
	// await reads what the director told until want (a prefix), and
	// returns it with the number of WATCHDOG=1 read on the way.
	await := func(want string, limit time.Duration) (string, int) {
		t.Helper()
		watchdogs := 0
		deadline := time.After(limit)
		for {
			select {
			case s := <-told:
				switch {
				case strings.HasPrefix(s, want):
					return s, watchdogs
				case s == "WATCHDOG=1":
					watchdogs++
				default:
					t.Fatalf("waiting for %q, the director told %q", want, s)
				}
			case <-deadline:
				t.Fatalf("the director did not tell %q within %s:\n%s", want, limit, l.log("director"))
			}
		}
	}

	l.start("director", "director", []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=2000000"}, l.directorArgs("run")...)
	await("READY=1", 60*time.Second)
	if tab := l.table(); len(tab) != 2 {
		t.Errorf("READY=1 before the first reconcile: the kernel has %v", tab)
	}
	// WatchdogSec=2s: the loop tells WATCHDOG=1 every second.
	time.Sleep(3500 * time.Millisecond)
	l.topology([3]int{2, 1, 1}, "")
	l.exec("director", l.directorArgs("reload")...)
	reloading, watchdogs := await("RELOADING=1", 10*time.Second)
	if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n$`).MatchString(reloading) {
		t.Errorf("a reload told %q, want RELOADING=1 with MONOTONIC_USEC", reloading)
	}
	if watchdogs < 2 {
		t.Errorf("%d WATCHDOG=1 in the 3.5 s after READY=1 and the reload command, with WatchdogSec=2s; want at least 2", watchdogs)
	}
	await("READY=1", 10*time.Second)

	l.topology([3]int{1, 1, 1}, "unknown_key: 1\n")
	l.refused(l.directorArgs("reload"), "refused", "unknown_key")
	await("RELOADING=1", 10*time.Second)
	await("READY=1", 10*time.Second)

	l.stopProcess("director", syscall.SIGTERM)
	await("STOPPING=1", 10*time.Second)
	t.Logf("READY=1 after the first reconcile, RELOADING=1 with MONOTONIC_USEC and READY=1 around an accepted and a refused reload, %d WATCHDOG=1 between READY=1 and the reload (a 3.5 s wait and the reload command; WatchdogSec=2s), STOPPING=1", watchdogs)
}
