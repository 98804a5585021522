package director

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// filterReport is the reference topology's report with node2 down, node3
// drained and drift on node1 and node3; management runs on node1 and
// node2 only.
func filterReport(t *testing.T) Report {
	t.Helper()
	topo := reference()
	topo.Services[1].RealServers = topo.Services[1].RealServers[:2]
	checks := checksIn(map[string]string{"rmq_node2": "down"})
	table := kernelAsWanted(topo, checks, nil)
	table[0].Destinations[0].Weight = 7
	return BuildReport(topo, table, checks, map[string]bool{"rmq_node3": true}, statusNow)
}

func TestStatusFilters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		services  []string
		nodes     []string
		want      map[string][]string // service → its real servers
		wantDrift map[string]int
		err       string
	}{
		{name: "none", want: map[string][]string{"amqp": {"rmq_node1", "rmq_node2", "rmq_node3"}, "management": {"rmq_node1", "rmq_node2"}}},
		{name: "one service", services: []string{"management"}, want: map[string][]string{"management": {"rmq_node1", "rmq_node2"}}},
		{name: "one node", nodes: []string{"rmq_node3"}, want: map[string][]string{"amqp": {"rmq_node3"}}, wantDrift: map[string]int{"amqp": 1}},
		{name: "two nodes, one service without one of them", nodes: []string{"rmq_node1", "rmq_node3"},
			want: map[string][]string{"amqp": {"rmq_node1", "rmq_node3"}, "management": {"rmq_node1"}}, wantDrift: map[string]int{"amqp": 2, "management": 0}},
		{name: "a node and a service", services: []string{"amqp"}, nodes: []string{"rmq_node1", "rmq_node2"},
			want: map[string][]string{"amqp": {"rmq_node1", "rmq_node2"}}, wantDrift: map[string]int{"amqp": 1}},
		{name: "a near service name", services: []string{"ampq"}, err: `service "ampq": not in the topology: did you mean "amqp"?`},
		{name: "another case", nodes: []string{"RMQ_node1"}, err: `real server "RMQ_node1": not in the topology: did you mean "rmq_node1"?`},
		{name: "nothing near", nodes: []string{"rmq_node4"},
			err: `real server "rmq_node4": not in the topology (real servers: rmq_node1, rmq_node2, rmq_node3)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := FilterReport(filterReport(t), tc.services, tc.nodes)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, ErrUnknownName) {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var table, js bytes.Buffer
			WriteStatus(&table, r)
			WriteStatusJSON(&js, r)
			var back Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, s := range back.Services {
				for _, rs := range s.RealServers {
					got[s.Name] = append(got[s.Name], rs.Name)
				}
				if n, ok := tc.wantDrift[s.Name]; ok && len(s.Drift) != n {
					t.Errorf("%s drift %q, want %d lines", s.Name, s.Drift, n)
				}
			}
			if len(back.Services) != len(tc.want) {
				t.Errorf("JSON services %v, want %v", got, tc.want)
			}
			for name, nodes := range tc.want {
				if !slices.Equal(got[name], nodes) {
					t.Errorf("JSON %s: %v, want %v", name, got[name], nodes)
				}
				if !strings.Contains(table.String(), "\n"+name+"  ") {
					t.Errorf("the table lacks %s:\n%s", name, table.String())
				}
			}
			for _, node := range []string{"rmq_node1", "rmq_node2", "rmq_node3"} {
				shown := strings.Contains(table.String(), "  "+node+"  ")
				wanted := slices.ContainsFunc(slices.Collect(func(yield func([]string) bool) {
					for _, v := range tc.want {
						yield(v)
					}
				}), func(v []string) bool { return slices.Contains(v, node) })
				if shown != wanted {
					t.Errorf("%s in the table: %v, want %v:\n%s", node, shown, wanted, table.String())
				}
			}
		})
	}
}
