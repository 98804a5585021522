//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// haBound is the outage issue 11 allows a pair at VRRPv3 100 ms when the
// master dies or leaves.
const haBound = 500 * time.Millisecond

// TestHAPairFailover is issue 11's proof on a real kernel: two lvsdr
// directors (VRRPv3 at 100 ms, multicast), one master, the backup's table
// programmed, and what a client opening new connections sees when the
// master dies, comes back and leaves.
func TestHAPairFailover(t *testing.T) {
	needIPVS(t)
	h := newHALab(t)
	h.directorExtra = haSettings(3, "100ms", 150, 100)
	h.topology([3]int{1, 1, 1}, "")
	h.nodes()
	h.runDirectorOn("d1")
	h.runDirectorOn("d2")
	h.waitTables(90 * time.Second)
	h.waitSoleMaster("d1", 30*time.Second, time.Second)
	h.checkRoles(map[string]string{"d1": "master", "d2": "backup"})
	f := &figures{title: "lvsdr pair, VRRPv3 100 ms"}
	defer f.print()

	h.startProbe()
	// The master dies with its machine: no parting advert, its link down.
	o := h.measure("d1 killed", func() time.Time { return h.die("d1") }, h.holdsFn("d2"), 10*time.Second)
	f.add("master killed (kill -9 and link down) → backup", o, fmt.Sprintf(" (bound %s)", haBound))
	if o.total > haBound {
		t.Errorf("outage when the master died: %s, want one of at most %s\n%s", o, haBound, h.logs())
	}

	// It comes back and takes the VIP back: preempt, priority 150 > 100.
	o = h.measure("d1 back", func() time.Time {
		at := h.linkUp("d1")
		h.runDirectorOn("d1")
		return at
	}, h.soleFn("d1"), 60*time.Second)
	h.waitSoleMaster("d1", 5*time.Second, time.Second)
	h.checkRoles(map[string]string{"d1": "master", "d2": "backup"})
	f.add("master back (link up, director started) → preempts", o, "")

	// SIGTERM: priority 0, the backup takes over after its skew time; the
	// stopped director keeps its table.
	o = h.measure("d1 stopped", func() time.Time { return h.stop("director-d1") }, h.soleFn("d2"), 10*time.Second)
	h.waitExit("director-d1")
	f.add("master stopped (SIGTERM, priority 0) → backup", o, fmt.Sprintf(" (bound %s)", haBound))
	if o.total > haBound {
		t.Errorf("outage when the master left: %s, want at most %s\n%s", o, haBound, h.logs())
	}
	if h.holds("d1") {
		t.Errorf("d1 left with SIGTERM and still has the VIP")
	}
	if rules := h.rules("d1"); !fullTable(rules) {
		t.Errorf("the stopped director's table is not kept:\n%s", strings.Join(rules, "\n"))
	}
	if log := h.log("director-d1"); !strings.Contains(strings.ToLower(log), "priority 0") {
		t.Errorf("d1's log does not say it sent priority 0 when it left:\n%s", tail(log, 20))
	}
}

// checkRoles checks that `director ha status` and `director status` of
// each running lvsdr director name its role.
func (h *haLab) checkRoles(want map[string]string) {
	h.t.Helper()
	for host, role := range want {
		word := regexp.MustCompile(`(?i)\b` + role + `\b`)
		for _, cmd := range [][]string{{"ha", "status"}, {"status"}} {
			out, err := h.command(host, h.args(host, cmd...)...)
			h.t.Logf("%s: director %s:\n%s", host, strings.Join(cmd, " "), out)
			if err != nil || !word.MatchString(out) {
				h.t.Errorf("%s: director %s does not show the role %s (error %v):\n%s", host, strings.Join(cmd, " "), role, err, out)
			}
		}
	}
}

// TestHAKeepalivedInterop pairs an lvsdr director with Debian's keepalived
// 2.2.7 at keepalived's defaults (VRRPv2, 1 s): the migration path, one
// director at a time. Each takes over from the other when it dies, within
// its master-down interval and a second.
func TestHAKeepalivedInterop(t *testing.T) {
	needIPVS(t)
	h := newHALab(t)
	h.directorExtra = haSettings(2, "1s", 150, 100)
	h.topology([3]int{1, 1, 1}, "")
	h.nodes()
	h.applyOn("d2")
	h.runDirectorOn("d1")
	h.waitHolds("d1", 60*time.Second)
	h.keepalived("d2", 2, 100, time.Second)
	h.waitTables(90 * time.Second)
	h.waitSoleMaster("d1", 30*time.Second, 3*time.Second)
	f := &figures{title: "lvsdr and keepalived 2.2.7, VRRPv2 1 s"}
	defer f.print()

	h.startProbe()
	bound := masterDown(time.Second, 100) + time.Second
	o := h.measure("lvsdr killed", func() time.Time { return h.die("d1") }, h.holdsFn("d2"), 15*time.Second)
	f.add("lvsdr master (150) killed → keepalived backup (100)", o, fmt.Sprintf(" (bound %.3f s: master-down + 1 s)", bound.Seconds()))
	if o.total > bound {
		t.Errorf("outage when lvsdr died: %s, want one of at most %s\n%s", o, bound, h.logs())
	}

	// The reverse: lvsdr comes back below keepalived (priority 50), stays
	// backup, and takes over when keepalived dies.
	h.directorExtra = haSettings(2, "1s", 50, 100)
	h.topology([3]int{1, 1, 1}, "")
	h.linkUp("d1")
	h.runDirectorOn("d1")
	h.waitTables(90 * time.Second)
	h.waitSoleMaster("d2", 30*time.Second, 3*time.Second)
	h.checkRoles(map[string]string{"d1": "backup"})
	bound = masterDown(time.Second, 50) + time.Second
	o = h.measure("keepalived killed", func() time.Time { return h.die("d2") }, h.holdsFn("d1"), 15*time.Second)
	f.add("keepalived master (100) killed → lvsdr backup (50)", o, fmt.Sprintf(" (bound %.3f s: master-down + 1 s)", bound.Seconds()))
	if o.total > bound {
		t.Errorf("outage when keepalived died: %s, want one of at most %s\n%s", o, bound, h.logs())
	}
	if lines := h.keepalivedComplaints("d2"); len(lines) > 0 {
		t.Errorf("keepalived discarded or rejected lvsdr's adverts:\n%s", strings.Join(lines, "\n"))
	}
}

// TestHAKeepalivedPairForScale measures a pair of keepalived 2.2.7
// directors with the same probe, in the same VM, so that lvsdr's figures
// have keepalived's beside them. Only the takeovers are asserted.
func TestHAKeepalivedPairForScale(t *testing.T) {
	needIPVS(t)
	for _, c := range []struct {
		version  int
		interval time.Duration
	}{{3, 100 * time.Millisecond}, {2, time.Second}} {
		t.Run(fmt.Sprintf("v%d_%s", c.version, c.interval), func(t *testing.T) {
			h := newHALab(t)
			h.topology([3]int{1, 1, 1}, "")
			h.nodes()
			h.applyOn("d1")
			h.applyOn("d2")
			h.keepalived("d1", c.version, 150, c.interval)
			h.waitHolds("d1", 60*time.Second)
			h.keepalived("d2", c.version, 100, c.interval)
			h.waitSoleMaster("d1", 30*time.Second, 3*c.interval+time.Second)
			f := &figures{title: fmt.Sprintf("keepalived 2.2.7 pair, VRRPv%d %s", c.version, c.interval)}
			defer f.print()

			h.startProbe()
			limit := 10*c.interval + 10*time.Second
			o := h.measure("k1 killed", func() time.Time { return h.die("d1") }, h.holdsFn("d2"), limit)
			f.add("master killed (kill -9 and link down) → backup", o, "")
			o = h.measure("k1 back", func() time.Time {
				at := h.linkUp("d1")
				h.keepalived("d1", c.version, 150, c.interval)
				return at
			}, h.soleFn("d1"), 60*time.Second)
			h.waitSoleMaster("d1", 5*time.Second, time.Second)
			f.add("master back (link up, keepalived started) → preempts", o, "")
			o = h.measure("k1 stopped", func() time.Time { return h.stop("keepalived-d1") }, h.soleFn("d2"), limit)
			h.waitExit("keepalived-d1")
			f.add("master stopped (SIGTERM, priority 0) → backup", o, "")
		})
	}
}
