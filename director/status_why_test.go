package director

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

var statusNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// quorumTopology is the reference's amqp service alone, quorum 2 of its
// three nodes, with a sorry server.
func quorumTopology() *topology.Topology {
	t := reference()
	t.Services = t.Services[:1]
	t.Services[0].Quorum = 2
	t.Services[0].SorryServer = &topology.SorryServer{Address: netip.MustParseAddr("10.0.0.9"), Port: 5672}
	return t
}

// checksIn gives each named node of amqp its check state ("up", "down" or
// "unknown"); a node not named is up.
func checksIn(states map[string]string) []CheckStatus {
	var out []CheckStatus
	for _, node := range []string{"rmq_node1", "rmq_node2", "rmq_node3"} {
		st := CheckStatus{Key: healthcheck.Key{Service: "amqp", RealServer: node, Check: "tcp"}, State: "up", Since: statusNow.Add(-time.Minute)}
		if s, ok := states[node]; ok {
			st.State = s
		}
		if st.State == "down" {
			st.LastError = "connect " + node + ": connection refused"
		}
		out = append(out, st)
	}
	return out
}

// kernelAsWanted is the table the director would program for these
// states, which a test then edits to make drift.
func kernelAsWanted(topo *topology.Topology, checks []CheckStatus, drained map[string]bool) ipvsctl.Table {
	byKey := map[healthcheck.Key]CheckStatus{}
	for _, c := range checks {
		byKey[c.Key] = c
	}
	return desiredTable(topo, reportedHealth(topo, byKey), drained)
}

func TestStatusSaysWhyARealServerIsOut(t *testing.T) {
	amqp := serviceKey(quorumTopology(), quorumTopology().Services[0])
	for _, tc := range []struct {
		name    string
		states  map[string]string
		drained map[string]bool
		edit    func(*topology.Topology)
		// kernel edits the table the director would program; offline
		// reports without a director.
		kernel  func(ipvsctl.Table)
		offline bool
		node    string
		want    []OutReason
		// phrase is what the table says in the WHY OUT column.
		phrase string
	}{
		{name: "serving", node: "rmq_node1"},
		{name: "maintenance", drained: map[string]bool{"rmq_node1": true}, node: "rmq_node1",
			want: []OutReason{{Reason: OutMaintenance}}, phrase: "maintenance (drained)"},
		{name: "check down, with its error", states: map[string]string{"rmq_node2": "down"}, node: "rmq_node2",
			want: []OutReason{{Reason: OutCheckDown, Detail: "connect rmq_node2: connection refused"}}, phrase: "check down"},
		{name: "not yet checked", states: map[string]string{"rmq_node3": "unknown"}, node: "rmq_node3",
			want: []OutReason{{Reason: OutNotChecked}}, phrase: "not yet checked"},
		{name: "below quorum, the sorry server in", states: map[string]string{"rmq_node2": "down", "rmq_node3": "down"}, node: "rmq_node1",
			want: []OutReason{{Reason: OutBelowQuorum}}, phrase: "below quorum (kept at 0)"},
		{name: "drained and down", states: map[string]string{"rmq_node2": "down"}, drained: map[string]bool{"rmq_node2": true}, node: "rmq_node2",
			want:   []OutReason{{Reason: OutMaintenance}, {Reason: OutCheckDown, Detail: "connect rmq_node2: connection refused"}},
			phrase: "maintenance (drained), check down"},
		{name: "weight 0 in the file", edit: func(t *topology.Topology) { t.RealServers[0].Weight = 0 }, node: "rmq_node1",
			want: []OutReason{{Reason: OutFileWeight}}, phrase: "weight 0 in the file"},
		{name: "drift", kernel: func(tab ipvsctl.Table) { tab[0].Destinations[0].Weight = 0 }, node: "rmq_node1",
			want: []OutReason{{Reason: OutDrift}}, phrase: "drift (the next resync repairs it)"},
		{name: "no director", offline: true, kernel: func(tab ipvsctl.Table) { tab[0].Destinations[0].Weight = 0 }, node: "rmq_node1",
			want: []OutReason{{Reason: OutNoDirector}}, phrase: "unknown (no director runs)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := quorumTopology()
			if tc.edit != nil {
				tc.edit(topo)
			}
			checks := checksIn(tc.states)
			table := kernelAsWanted(topo, checks, tc.drained)
			if tc.kernel != nil {
				tc.kernel(table)
			}
			if tc.offline {
				checks = nil
			}
			r := BuildReport(topo, table, checks, tc.drained, statusNow)
			if len(r.Services) != 1 || r.Services[0].Address != netip.AddrPortFrom(amqp.Address, amqp.Port).String() {
				t.Fatalf("services: %+v", r.Services)
			}
			i := slices.IndexFunc(r.Services[0].RealServers, func(s ServerReport) bool { return s.Name == tc.node })
			if got := r.Services[0].RealServers[i].Out; !slices.Equal(got, tc.want) {
				t.Errorf("%s out because %+v, want %+v", tc.node, got, tc.want)
			}
			var out bytes.Buffer
			if err := WriteStatus(&out, r); err != nil {
				t.Fatal(err)
			}
			line := lineOf(out.String(), "  "+tc.node+" ")
			if tc.phrase != "" && !strings.Contains(line, "  "+tc.phrase+"  ") && !strings.HasSuffix(line, "  "+tc.phrase) {
				t.Errorf("the table's line lacks %q:\n%s", tc.phrase, out.String())
			}
			if tc.phrase == "" && !strings.Contains(line, "  -  ") {
				t.Errorf("a serving node has a reason:\n%s", out.String())
			}
		})
	}
}

// lineOf returns the first line of text that contains part.
func lineOf(text, part string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, part) {
			return strings.TrimRight(line, " ")
		}
	}
	return ""
}

func TestStatusShowsALeavingServerAndWhy(t *testing.T) {
	topo := quorumTopology()
	checks := checksIn(nil)
	table := kernelAsWanted(topo, checks, nil)
	gone := ipvsctl.Destination{Address: netip.MustParseAddr("10.0.0.7"), Port: 5672, Forwarding: ipvsctl.DirectRouting}
	table[0].Destinations = append(table[0].Destinations, gone)
	leaving := leavingSet{destKey{table[0].Service.Key, gone.Endpoint()}: {dest: gone}}
	r := buildReport(topo, table, checks, nil, leaving, statusNow)
	var out bytes.Buffer
	WriteStatus(&out, r)
	if line := lineOf(out.String(), "10.0.0.7:5672"); !strings.HasPrefix(strings.TrimSpace(line), "(leaving)") || !strings.HasSuffix(line, "leaving (removed by reload, draining)") {
		t.Errorf("leaving server's line: %q\n%s", line, out.String())
	}
}

func TestStatusQuorumAndSorryServerLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		states  map[string]string
		drained map[string]bool
		noSorry bool
		kernel  func(ipvsctl.Table)
		offline bool
		want    string
	}{
		{name: "met", want: "quorum: 3 of 3 serving, 2 needed; sorry server 10.0.0.9:5672 out"},
		{name: "met, one drained", drained: map[string]bool{"rmq_node1": true},
			want: "quorum: 2 of 3 serving, 2 needed; sorry server 10.0.0.9:5672 out"},
		{name: "lost, sorry server in", states: map[string]string{"rmq_node1": "down", "rmq_node2": "unknown"},
			want: "quorum LOST: 1 of 3 serving, 2 needed; sorry server 10.0.0.9:5672 IN (weight 1): new clients go there"},
		{name: "lost without a sorry server", noSorry: true, states: map[string]string{"rmq_node1": "down", "rmq_node2": "down"},
			want: "quorum LOST: 1 of 3 serving, 2 needed; no sorry server: the servers left take every client"},
		{name: "no sorry server, met", noSorry: true, want: "quorum: 3 of 3 serving, 2 needed"},
		{name: "lost, the sorry server not in the kernel", states: map[string]string{"rmq_node1": "down", "rmq_node2": "down"},
			kernel: func(tab ipvsctl.Table) { tab[0].Destinations = tab[0].Destinations[:len(tab[0].Destinations)-1] },
			want:   "quorum LOST: 1 of 3 serving, 2 needed; sorry server 10.0.0.9:5672 out (drift: the next resync repairs it)"},
		{name: "no director", offline: true, want: "quorum: 2 needed (health unknown: no director runs); sorry server 10.0.0.9:5672 out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := quorumTopology()
			if tc.noSorry {
				topo.Services[0].SorryServer = nil
			}
			checks := checksIn(tc.states)
			table := kernelAsWanted(topo, checks, tc.drained)
			if tc.kernel != nil {
				tc.kernel(table)
			}
			if tc.offline {
				checks = nil
			}
			var out bytes.Buffer
			WriteStatus(&out, BuildReport(topo, table, checks, tc.drained, statusNow))
			if got := strings.TrimSpace(lineOf(out.String(), "quorum")); got != tc.want {
				t.Errorf("quorum line\n got %q\nwant %q\n%s", got, tc.want, out.String())
			}
		})
	}
}
