//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// syncLab is issue 11's pair of directors (haLab) with director.ha's
// connection sync on, and clients that hold connections through the VIP.
type syncLab struct {
	*haLab
	// resync, if set, replaces the lab's resync_interval.
	resync string
	// rabbitDir is RabbitMQ's directory, once started.
	rabbitDir string
}

// syncSlow bounds the waits for a process to start and settle: generous,
// as the emulated VM shares two cores with other VMs.
const syncSlow = 120 * time.Second

// syncAdvert is the pair's VRRP advert interval: 100 ms, or
// LVSDR_E2E_SYNC_ADVERT (on a machine so loaded that a director misses
// three adverts in a row, 1s).
func syncAdvert() string {
	if v := os.Getenv("LVSDR_E2E_SYNC_ADVERT"); v != "" {
		return v
	}
	return "100ms"
}

// syncHA is director.ha for the pair: VRRPv3 at syncAdvert, VRID 51,
// connection sync on (sync id 51, the VRID).
func syncHA(prio1, prio2 int) string {
	return fmt.Sprintf(", ha: {vrid: 51, version: 3, advert_interval: %s, connection_sync: true, directors: [{name: d1, address: %s, priority: %d}, {name: d2, address: %s, priority: %d}]}",
		syncAdvert(), d1IP, prio1, d2IP, prio2)
}

// roleCount counts a director's VRRP role changes, to tell a failover the
// test made from one the machine's load made.
func (s *syncLab) roleCount(host string) int {
	return strings.Count(s.log("director-"+host), "VRRP role changed")
}

// newSyncPair builds the namespaces of the pair, the nodes and the client;
// members, if set, are the real servers of both services.
func newSyncPair(t *testing.T, members []string) *syncLab {
	h := newHALab(t)
	h.members = members
	return &syncLab{haLab: h}
}

// writeTopology writes the lab's file with the given priorities.
func (s *syncLab) writeTopology(prio1, prio2 int) {
	s.t.Helper()
	s.directorExtra = syncHA(prio1, prio2)
	s.topology([3]int{1, 1, 1}, "")
	if s.resync == "" {
		return
	}
	data, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	doc := strings.Replace(string(data), "resync_interval: 5s", "resync_interval: "+s.resync, 1)
	if err := os.WriteFile(s.config, []byte(doc), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// startPair starts d1, waits until it holds the VIP, then starts d2: d1
// is master from the start, without a preemption to wait for.
func (s *syncLab) startPair(full bool) {
	s.t.Helper()
	s.runDirectorOn("d1")
	s.waitHolds("d1", syncSlow)
	s.runDirectorOn("d2")
	if full {
		s.waitTables(syncSlow)
	}
	s.waitSoleMaster("d1", syncSlow, time.Second)
	for _, d := range []string{"d1", "d2"} {
		s.t.Logf("%s: ipvsadm -L --daemon:\n%s", d, s.exec(d, "ipvsadm", "-L", "--daemon"))
	}
}

// clientSources adds n addresses from subnet.from on to the client and
// returns them.
func (s *syncLab) clientSources(from, n int) []string {
	s.t.Helper()
	var batch strings.Builder
	var out []string
	for i := from; i < from+n; i++ {
		a := fmt.Sprintf("%s.%d", subnet, i)
		fmt.Fprintf(&batch, "addr add %s/24 dev eth0\n", a)
		out = append(out, a)
	}
	ipBatch(s.t, s.ns["client"], batch.String())
	return out
}

// startConns starts the conns role in the client: one connection per
// source to the VIP's amqp port, an exchange on each every every. It waits
// until every connection is open.
func (s *syncLab) startConns(name string, sources []string, every time.Duration) {
	s.t.Helper()
	self, _ := os.Executable()
	s.start(name, "client", connsEnv(vip+":5672", sources, every, syncExchangeDeadline), self)
	for deadline := time.Now().Add(syncSlow); ; time.Sleep(200 * time.Millisecond) {
		c := s.conns(name)
		if len(c.fails) > 0 {
			s.t.Fatalf("%s: connections failed at the start:\n%s\n%s", name, strings.Join(c.fails, "\n"), s.roleChanges())
		}
		if len(c.node) == len(sources) {
			s.t.Logf("%s: %d connections open, by node %v", name, len(sources), c.byNode())
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d of %d connections open after %s:\n%s", name, len(c.node), len(sources), syncSlow, tail(s.log(name), 20))
		}
	}
}

// roleChanges returns the directors' log lines about their VRRP roles and
// the VIP, for failures.
func (s *syncLab) roleChanges() string {
	var b strings.Builder
	for _, d := range []string{"d1", "d2"} {
		fmt.Fprintf(&b, "--- %s:\n%s\n", d, s.directorLines(d, "VRRP", "VIP", "warm", "sync", "level=WARN", "level=ERROR"))
	}
	return b.String()
}

// conns reads what the conns role name said.
func (s *syncLab) conns(name string) heldConns { return parseConns(s.log(name)) }

// connEntry is one line of ipvsadm -Lnc.
type connEntry struct {
	expire, state, source, virtual, dest string
}

// connTable reads a director host's connection table with ipvsadm -Lnc,
// the reference the issue names.
func (s *syncLab) connTable(host string) []connEntry {
	s.t.Helper()
	var out []connEntry
	for _, line := range strings.Split(s.exec(host, "ipvsadm", "-Lnc"), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && (f[0] == "TCP" || f[0] == "UDP") {
			out = append(out, connEntry{f[1], f[2], f[3], f[4], f[5]})
		}
	}
	return out
}

// established counts a host's ESTABLISHED entries for the VIP's amqp port
// from the given sources, and returns the shortest expiry among them.
func (s *syncLab) established(host string, sources []string) (int, string) {
	s.t.Helper()
	n, shortest := 0, ""
	for _, e := range s.connTable(host) {
		src, _, _ := strings.Cut(e.source, ":")
		if e.state != "ESTABLISHED" || e.virtual != vip+":5672" || !slices.Contains(sources, src) {
			continue
		}
		n++
		if shortest == "" || expireSeconds(e.expire) < expireSeconds(shortest) {
			shortest = e.expire
		}
	}
	return n, shortest
}

// expireSeconds reads ipvsadm's MM:SS expiry.
func expireSeconds(mmss string) int {
	m, sec, _ := strings.Cut(mmss, ":")
	a, _ := strconv.Atoi(m)
	b, _ := strconv.Atoi(sec)
	return a*60 + b
}

// waitEstablished waits until a host's table holds want ESTABLISHED
// entries for the sources, and returns what it saw last.
func (s *syncLab) waitEstablished(host string, sources []string, want int, limit time.Duration) (int, string) {
	s.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(time.Second) {
		n, shortest := s.established(host, sources)
		if n >= want || time.Now().After(deadline) {
			return n, shortest
		}
	}
}

// directorLines returns the lines of a director's log that name any of
// words, for the record of what it did.
func (s *syncLab) directorLines(host string, words ...string) string {
	var out []string
	for _, line := range strings.Split(s.log("director-"+host), "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// sysctls reads the sync sysctls and the IPVS timeouts of a director host.
func (s *syncLab) sysctls(host string) string {
	s.t.Helper()
	out := s.exec(host, "sh", "-c", `cd /proc/sys/net/ipv4/vs && for k in sync_threshold sync_refresh_period sync_version; do printf '%s=%s ' $k "$(cat $k)"; done; ipvsadm -L --timeout`)
	return strings.Join(strings.Fields(out), " ")
}
