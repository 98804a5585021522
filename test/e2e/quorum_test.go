//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// amqp and management run on rs1 and rs2 with a quorum of 2; rs3 is the
// sorry server. The notify hook writes every event to a file.
func TestSorryServerTakesNewClientsBelowQuorumAndTheHookHearsOfIt(t *testing.T) {
	needIPVS(t)
	l := newLab(t)
	events := filepath.Join(l.dir, "events")
	hook := filepath.Join(l.dir, "hook")
	script := "#!/bin/sh\necho \"$LVSDR_EVENT $LVSDR_SERVICE $LVSDR_NODE $LVSDR_STATE\" >>" + events + "\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l.members = []string{"rs1", "rs2"}
	l.serviceExtra = fmt.Sprintf(", quorum: 2, sorry_server: %s.13", subnet)
	l.directorExtra = ", notify: {command: [" + hook + "]}"
	l.topology([3]int{1, 1, 1}, "")
	l.nodes()
	l.runDirector()
	amqp := func(tab map[string]map[string]string) map[string]string { return tab[vip+":5672"] }
	rs := func(n int) string { return fmt.Sprintf("%s.%d:5672", subnet, 10+n) }
	l.waitFor("rs1 and rs2 in amqp, no sorry server", 30*time.Second, func(tab map[string]map[string]string) bool {
		a := amqp(tab)
		_, sorry := a[rs(3)]
		return a[rs(1)] == "Route 1" && a[rs(2)] == "Route 1" && !sorry
	})

	l.stopProcess("listen-rs1-5672", syscall.SIGKILL)
	took := l.waitFor("the sorry server in, rs2 at weight 0", checkBound+slack, func(tab map[string]map[string]string) bool {
		a := amqp(tab)
		_, rs1 := a[rs(1)]
		return !rs1 && a[rs(2)] == "Route 0" && a[rs(3)] == "Route 1"
	})
	t.Logf("quorum lost and the sorry server in %s after rs1's listener died", took.Round(10*time.Millisecond))
	if n := count(l.connect(5672, sources(150, 170))); n["rs3"] != 20 {
		t.Errorf("20 new clients below quorum reached %v, want all on the sorry server rs3", n)
	}
	if mgmt := l.table()[vip+":15672"]; mgmt[subnet+".11:15672"] != "Route 1" || mgmt[subnet+".12:15672"] != "Route 1" {
		t.Errorf("management lost its servers too: %v", mgmt)
	}

	l.listen("rs1", 5672)
	l.waitFor("quorum back: rs1 and rs2 in, the sorry server out", 10*time.Second, func(tab map[string]map[string]string) bool {
		a := amqp(tab)
		_, sorry := a[rs(3)]
		return a[rs(1)] == "Route 1" && a[rs(2)] == "Route 1" && !sorry
	})

	// The hook runs after the state changes; give it a moment.
	var got string
	want := []string{"check amqp rs1 down", "quorum amqp  lost", "check amqp rs1 up", "quorum amqp  regained"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(events)
		got = string(data)
		if strings.Contains(got, want[len(want)-1]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// In this order, after the first checks' unknown → up.
	first := strings.Index(got, want[0])
	if first < 0 {
		t.Fatalf("the hook never heard %q:\n%s", want[0], got)
	}
	rest := got[first:]
	for _, w := range want {
		i := strings.Index(rest, w+"\n")
		if i < 0 {
			t.Errorf("the hook's events lack %q, or it came out of order:\n%s", w, got)
			break
		}
		rest = rest[i+len(w):]
	}
}
