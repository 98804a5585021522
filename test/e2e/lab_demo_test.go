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

// TestLab is `make lab`: the reference design's shape on a real kernel,
// narrated for a newcomer. It runs only when LVSDR_LAB=1.
func TestLab(t *testing.T) {
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

	say("a bridge, a client, a director and three stand-in RabbitMQ nodes, each in its own network namespace")
	l := newLab(t)
	l.topology([3]int{1, 1, 1}, "")
	data, _ := os.ReadFile(l.config)
	say("the topology: deploy/examples/rabbitmq.yaml's shape on lab addresses, with checks every second so the demo is quick")
	show(string(data))

	say("realserver start on every node: the VIP on lo, ARP for it suppressed; `realserver status` on rs1:")
	l.nodes()
	show(l.exec("rs1", binary(t, "realserver"), "status", "--config", l.config, "--state-dir", l.dir+"/rs1"))

	say("director run on the director: it binds the VIP, programs IPVS, checks every node")
	l.runDirector()
	l.waitFor("every node in", 30*time.Second, allIn([3]int{1, 1, 1}))
	show(l.ipvs())

	say("60 AMQP clients, each from its own address, connect to the VIP %s:5672", vip)
	show(fmt.Sprint(count(l.connect(5672, sources(100, 160)))))
	in, out := l.inOut(vip + ":5672")
	show(fmt.Sprintf("director packets: %d in, %d out: the replies went straight from the nodes to the clients (direct routing)", in, out))

	say("director status")
	show(l.exec("director", l.directorArgs("status")...))

	say("rs2's AMQP listener dies")
	l.stopProcess("listen-rs2-5672", syscall.SIGKILL)
	took := l.waitFor("rs2 out", 10*time.Second, func(tab map[string]map[string]string) bool {
		_, in := tab[vip+":5672"][subnet+".12:5672"]
		return !in
	})
	show(fmt.Sprintf("the director took rs2 out of amqp after %s (bound from the check settings: %s); it stays in management", took.Round(100*time.Millisecond), checkBound))
	show(l.exec("director", l.directorArgs("status")...))
	say("36 new clients: none reaches rs2")
	show(fmt.Sprint(count(l.connect(5672, sources(160, 196)))))

	say("rs2's listener comes back: after rise (2) passing checks it is put back")
	l.listen("rs2", 5672)
	took = l.waitFor("rs2 back", 10*time.Second, allIn([3]int{1, 1, 1}))
	show(fmt.Sprintf("back after %s", took.Round(100*time.Millisecond)))
	show(l.ipvs())

	say("SIGTERM: the director exits and leaves the table in place, so a restart drops no connection")
	before := l.ipvs()
	l.stopProcess("director", syscall.SIGTERM)
	if l.ipvs() == before {
		show("table unchanged after the director exited")
	}
	say("the lab is torn down; see docs/operations.md to run it for real")
}
