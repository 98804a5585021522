//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A node whose loopback VIP is gone still answers on its own address, so a
// plain check keeps it in while every client sent to it is dropped. The
// check through the VIP takes it out.
func TestCheckThroughTheVIPTakesOutANodeWithoutItsLoopbackVIP(t *testing.T) {
	needIPVS(t)
	weights := [3]int{1, 1, 1}
	l := newLab(t)
	l.checkExtra = ", through_vip: true"
	l.topology(weights, "")
	l.nodes()
	l.runDirector()
	l.waitFor("every node in both services", 30*time.Second, allIn(weights))
	tab := l.table()
	marks := 0
	for svc, dests := range tab {
		if strings.HasPrefix(svc, "fwmark ") && len(dests) == 1 {
			marks++
		}
	}
	if marks != 3 {
		t.Fatalf("want one firewall-mark check service per node, each with its node alone:\n%s", l.ipvs())
	}

	l.exec("rs2", "ip", "addr", "del", vip+"/32", "dev", "lo")
	rs2 := func(tab map[string]map[string]string) bool {
		_, amqp := tab[vip+":5672"][subnet+".12:5672"]
		_, mgmt := tab[vip+":15672"][subnet+".12:15672"]
		return amqp || mgmt
	}
	// A probe to a node without the VIP times out rather than being
	// refused, so this detection always runs to the bound; the polling
	// (an ipvsadm process under emulation) comes on top.
	took := l.waitFor("rs2 out of both services", checkBound+2*slack, func(tab map[string]map[string]string) bool { return !rs2(tab) })
	msg := fmt.Sprintf("a node without its loopback VIP left through the VIP check after %s (bound %s)", took.Round(10*time.Millisecond), checkBound)
	t.Log(msg)
	fmt.Println("E2E", msg)
	// Its listener is alive: a check on its own address would have passed.
	if n := count(l.connectTo(subnet+".12:5672", sources(100, 101))); n["rs2"] != 1 {
		t.Errorf("rs2's listener does not answer on its own address (%v): the test proves nothing", n)
	}
	if n := count(l.connect(5672, sources(100, 130))); n["rs2"] != 0 || n["rs1"]+n["rs3"] != 30 {
		t.Errorf("clients reached %v, want all 30 on rs1 and rs3", n)
	}

	// `realserver start` puts the VIP back; the node returns.
	l.exec("rs2", binary(t, "realserver"), "start", "--config", l.config, "--state-dir", l.dir+"/rs2")
	back := l.waitFor("rs2 back", 10*time.Second, rs2)
	t.Logf("rs2 back %s after its VIP returned", back.Round(10*time.Millisecond))
}
