//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Long-lived connections through the VIP, the measure of every failover
// test (connection sync, keepalived beside lvsdr, the migration, BGP):
// one role holds them and reports, one parser reads its report.

// The role runs from init: TestMain (roles_test.go) dispatches the suite's
// other roles, and init runs before it.
func init() {
	if os.Getenv("LVSDR_E2E_ROLE") == "conns" {
		os.Exit(connsRole())
	}
}

// connsStall is the delay beyond the exchange interval that a connection
// reports as a stall ("gap" lines): more than emulation's jitter.
const connsStall = 500 * time.Millisecond

// connsRole holds one connection from each of LVSDR_E2E_SOURCES to
// LVSDR_E2E_TARGET and exchanges a line on each every LVSDR_E2E_EVERY, each
// exchange given LVSDR_E2E_DEADLINE. It prints "node SOURCE LOCALPORT NODE"
// per connection, "fail SOURCE UNIXNANO why" when one breaks (it is not
// reopened), "gap SOURCE UNIXNANO MS" when an exchange came more than
// connsStall late, and every second "alive UNIXNANO OPEN EXCHANGES".
func connsRole() int {
	every, err := time.ParseDuration(os.Getenv("LVSDR_E2E_EVERY"))
	if err != nil {
		fmt.Println("fail - 0 LVSDR_E2E_EVERY:", err)
		return 1
	}
	deadline, err := time.ParseDuration(os.Getenv("LVSDR_E2E_DEADLINE"))
	if err != nil {
		fmt.Println("fail - 0 LVSDR_E2E_DEADLINE:", err)
		return 1
	}
	target := os.Getenv("LVSDR_E2E_TARGET")
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	var open atomic.Int32
	var exchanges atomic.Int64
	for _, src := range strings.Split(os.Getenv("LVSDR_E2E_SOURCES"), ",") {
		conn, node, err := dialFrom(src, target)
		if err != nil {
			say("fail %s %d dial: %v", src, time.Now().UnixNano(), err)
			continue
		}
		say("node %s %d %s", src, conn.LocalAddr().(*net.TCPAddr).Port, node)
		open.Add(1)
		go func() {
			defer open.Add(-1)
			r := bufio.NewReader(conn)
			last := time.Now()
			for i := 1; ; i++ {
				time.Sleep(every)
				conn.SetDeadline(time.Now().Add(deadline))
				if _, err := fmt.Fprintf(conn, "ping %d\n", i); err != nil {
					say("fail %s %d write: %v", src, time.Now().UnixNano(), err)
					return
				}
				line, err := r.ReadString('\n')
				if err != nil || strings.TrimSpace(line) != fmt.Sprintf("ping %d", i) {
					say("fail %s %d read: %v %q", src, time.Now().UnixNano(), err, line)
					return
				}
				now := time.Now()
				if stall := now.Sub(last) - every; stall > connsStall {
					say("gap %s %d %d", src, now.UnixNano(), stall.Milliseconds())
				}
				last = now
				exchanges.Add(1)
			}
		}()
	}
	for range time.Tick(time.Second) {
		say("alive %d %d %d", time.Now().UnixNano(), open.Load(), exchanges.Load())
	}
	return 0
}

// connsEnv is the environment of a conns role: every connection's
// exchange every every, each given deadline.
func connsEnv(target string, sources []string, every, deadline time.Duration) []string {
	return []string{"LVSDR_E2E_ROLE=conns", "LVSDR_E2E_TARGET=" + target, "LVSDR_E2E_SOURCES=" + strings.Join(sources, ","),
		"LVSDR_E2E_EVERY=" + every.String(), "LVSDR_E2E_DEADLINE=" + deadline.String()}
}

// heldConns is what a conns role said.
type heldConns struct {
	node      map[string]string // source → node
	port      map[string]string // source → local port
	fails     []string
	failedAt  []time.Time
	gaps      []connGap
	open      int
	exchanges int
	at        time.Time // of the last alive line
}

// connGap is one stall of one connection.
type connGap struct {
	source string
	at     time.Time
	stall  time.Duration
}

// parseConns reads a conns role's log.
func parseConns(log string) heldConns {
	c := heldConns{node: map[string]string{}, port: map[string]string{}}
	unix := func(f string) time.Time {
		ns, _ := strconv.ParseInt(f, 10, 64)
		return time.Unix(0, ns)
	}
	for _, line := range strings.Split(log, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "node":
			c.port[f[1]], c.node[f[1]] = f[2], f[3]
		case len(f) >= 3 && f[0] == "fail":
			c.fails = append(c.fails, line)
			c.failedAt = append(c.failedAt, unix(f[2]))
		case len(f) == 4 && f[0] == "gap":
			ms, _ := strconv.Atoi(f[3])
			c.gaps = append(c.gaps, connGap{f[1], unix(f[2]), time.Duration(ms) * time.Millisecond})
		case len(f) == 4 && f[0] == "alive":
			c.at = unix(f[1])
			c.open, _ = strconv.Atoi(f[2])
			c.exchanges, _ = strconv.Atoi(f[3])
		}
	}
	return c
}

// byNode counts the connections by the node they reached.
func (c heldConns) byNode() map[string]int {
	n := map[string]int{}
	for _, node := range c.node {
		n[node]++
	}
	return n
}

// failedSince counts the connections that broke at or after t.
func (c heldConns) failedSince(t time.Time) int {
	n := 0
	for _, at := range c.failedAt {
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// longestStall is the longest stall of any connection at or after t, and
// how many connections stalled.
func (c heldConns) longestStall(t time.Time) (time.Duration, int) {
	var longest time.Duration
	who := map[string]bool{}
	for _, g := range c.gaps {
		if !g.at.Before(t) {
			longest = max(longest, g.stall)
			who[g.source] = true
		}
	}
	return longest, len(who)
}

// TestParseConnsReadsTheRoleReport runs anywhere: the report of a conns
// role as the failover tests read it.
func TestParseConnsReadsTheRoleReport(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	log := fmt.Sprintf(`node 10.0.0.1 40001 rs1
node 10.0.0.2 40002 rs2
node 10.0.0.3 40003 rs1
alive %d 3 10
gap 10.0.0.1 %d 700
gap 10.0.0.2 %d 1500
fail 10.0.0.3 %d read: connection reset by peer
alive %d 2 25
`, at(1).UnixNano(), at(2).UnixNano(), at(5).UnixNano(), at(6).UnixNano(), at(7).UnixNano())
	c := parseConns(log)
	if got := c.byNode(); got["rs1"] != 2 || got["rs2"] != 1 || c.port["10.0.0.2"] != "40002" {
		t.Errorf("nodes %v, ports %v", got, c.port)
	}
	if c.open != 2 || c.exchanges != 25 || !c.at.Equal(at(7)) {
		t.Errorf("last alive: open %d, exchanges %d, at %v; want 2, 25, %v", c.open, c.exchanges, c.at, at(7))
	}
	for _, tc := range []struct {
		since          time.Time
		failed, stalls int
		longest        time.Duration
	}{
		{at(0), 1, 2, 1500 * time.Millisecond},
		{at(3), 1, 1, 1500 * time.Millisecond},
		{at(5), 1, 1, 1500 * time.Millisecond}, // at t counts
		{at(6), 1, 0, 0},
		{at(7), 0, 0, 0},
	} {
		longest, stalls := c.longestStall(tc.since)
		if failed := c.failedSince(tc.since); failed != tc.failed || stalls != tc.stalls || longest != tc.longest {
			t.Errorf("since %v: %d failed, %d stalled, longest %s; want %d, %d, %s", tc.since, failed, stalls, longest, tc.failed, tc.stalls, tc.longest)
		}
	}
}
