//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLabHA is `make lab`'s failover scene: a pair of directors, the
// master's death and return, seen by a client opening connections. It runs
// only when LVSDR_LAB=1.
func TestLabHA(t *testing.T) {
	if os.Getenv("LVSDR_LAB") != "1" {
		t.Skip("the lab demo runs with make lab")
	}
	needIPVS(t)
	say := func(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }
	show := func(text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Println("   " + line)
		}
	}
	where := func(h *haLab) string {
		if holders := h.holders(); len(holders) > 0 {
			return strings.Join(holders, " and ")
		}
		return "nobody"
	}

	say("high availability: two directors, d1 (%s) and d2 (%s), in front of the same three nodes", d1IP, d2IP)
	h := newHALab(t)
	h.directorExtra = haSettings(3, "100ms", 150, 100)
	h.topology([3]int{1, 1, 1}, "")
	show(`director.ha, the same file on both (VRRPv3, an advert every 100 ms):
  ha: {vrid: 51, version: 3, advert_interval: 100ms, directors: [
       {name: d1, address: ` + d1IP + `, priority: 150},
       {name: d2, address: ` + d2IP + `, priority: 100}]}`)
	h.nodes()
	h.runDirectorOn("d1")
	h.runDirectorOn("d2")
	h.waitTables(90 * time.Second)
	h.waitSoleMaster("d1", 30*time.Second, time.Second)
	show("the VIP is on " + where(h) + ": d1 is master (the higher priority); d2 is a hot backup")
	say("d2 has the same IPVS table programmed, without the VIP, so a takeover writes nothing to IPVS (d2's ipvsadm -Ln):")
	show(h.exec("d2", "ipvsadm", "-Ln"))
	say("director ha status on d2")
	out, _ := h.command("d2", h.args("d2", "ha", "status")...)
	show(out)

	say("a client opens a new connection to the VIP every %s (each given %s)", probeEvery, probeTimeout)
	h.startProbe()
	show("all succeed")

	say("d1 dies: kill -9 of its director and its link down")
	o := h.measure("d1 killed", func() time.Time { return h.die("d1") }, h.holdsFn("d2"), 10*time.Second)
	show(fmt.Sprintf("d2 missed three adverts, became master, bound the VIP and sent gratuitous ARP: the client saw an outage of %s", o))

	say("d1 comes back: link up, director started; it has the higher priority, so it takes the VIP back")
	o = h.measure("d1 back", func() time.Time {
		at := h.linkUp("d1")
		h.runDirectorOn("d1")
		return at
	}, h.soleFn("d1"), 60*time.Second)
	show(fmt.Sprintf("the VIP is on %s again; the client saw an outage of %s", where(h), o))

	say("SIGTERM on d1 (maintenance): it sends priority 0, unbinds the VIP, keeps its IPVS table")
	o = h.measure("d1 stopped", func() time.Time { return h.stop("director-d1") }, h.soleFn("d2"), 10*time.Second)
	h.waitExit("director-d1")
	show(fmt.Sprintf("d2 took over at once (no three missed adverts to wait for): an outage of %s", o))
	show(fmt.Sprintf("d1's table is still there (%d rules), so its restart drops nothing", len(h.rules("d1"))))
	h.stopProcess("director-d2", syscall.SIGTERM)
	say("the lab is torn down; see docs/configuration.md#directorha")
}
