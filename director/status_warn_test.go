package director

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A node going down is logged at WARN, its return at INFO.
func TestCheckGoingDownIsAWarning(t *testing.T) {
	h := newHarness(t, reference())
	logs := &syncBuffer{}
	h.logs = logs
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool { return len(tab) == 8 })
	node2 := netip.MustParseAddrPort("10.0.0.3:5672")
	h.net.setDown(node2, true)
	h.advanceUntil(20*time.Second, not(has(amqpNode2)))
	h.net.setDown(node2, false)
	h.advanceUntil(30*time.Second, has(amqpNode2))

	levels := map[string]string{}
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if !strings.Contains(line, `msg="check state changed"`) || !strings.Contains(line, "service=amqp real_server=rmq_node2") {
			continue
		}
		level, _, _ := strings.Cut(strings.TrimPrefix(line[strings.Index(line, "level="):], "level="), " ")
		to, _, _ := strings.Cut(line[strings.Index(line, " to=")+4:], " ")
		levels[to] = level
	}
	if levels["down"] != "WARN" || levels["up"] != "INFO" {
		t.Errorf("levels of rmq_node2's transitions: %v; want down at WARN, up at INFO\n%s", levels, logs.String())
	}
}
