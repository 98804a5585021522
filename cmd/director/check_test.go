package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/director"
	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/testnet"
	"github.com/lvsdr/lvsdr/topology"
)

// exampleConfig writes deploy/examples/rabbitmq.yaml (amqp on 5672,
// management on 15672, rmq_node1..3) to a temporary file.
func exampleConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// loopbackProbes makes `director check` probe loopback instead of the
// file's addresses, which this test must not reach: the amqp port goes to
// a listener, the management port to a closed port.
func loopbackProbes(t *testing.T) {
	t.Helper()
	open, closed := testnet.LoopbackPorts(t)
	saved := newProber
	t.Cleanup(func() { newProber = saved })
	newProber = func(target director.ProbeTarget, _ topology.Check) healthcheck.Prober {
		address := fmt.Sprintf("127.0.0.1:%d", closed)
		if target.Address.Port() == 5672 {
			address = fmt.Sprintf("127.0.0.1:%d", open)
		}
		return &healthcheck.TCPProber{Address: address}
	}
}

func TestCheckProbesTheNodeNow(t *testing.T) {
	config := exampleConfig(t)
	loopbackProbes(t)

	out, err := execute("check", "rmq_node2", "--config", config)
	if !errors.Is(err, errSilent) {
		t.Errorf("a failed check exits %v, want 1 (errSilent)", err)
	}
	amqp, management := lineOf(out, "amqp "), lineOf(out, "management ")
	if !strings.Contains(amqp, "192.168.0.3:5672") || !strings.Contains(amqp, " ok ") {
		t.Errorf("amqp line %q:\n%s", amqp, out)
	}
	if !strings.Contains(management, " failed ") || !strings.Contains(management, "refused") {
		t.Errorf("management line %q:\n%s", management, out)
	}
	if !strings.Contains(out, "rmq_node2: 1 of 2 checks failed") {
		t.Errorf("no summary:\n%s", out)
	}

	out, err = execute("check", "rmq_node2", "--config", config, "--service", "amqp", "-o", "json")
	var results []director.ProbeResult
	if err != nil || json.Unmarshal([]byte(out), &results) != nil || len(results) != 1 || results[0].Result != director.ProbeOK {
		t.Errorf("--service amqp -o json: %v\n%s", err, out)
	}

	if _, err := execute("check", "rmq_nod2", "--config", config); err == nil || err.Error() != `real server "rmq_nod2": not in the topology: did you mean "rmq_node2"?` {
		t.Errorf("unknown node: %v", err)
	}
}

// lineOf returns the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func TestCompletion(t *testing.T) {
	config := exampleConfig(t)
	o := &options{config: config}
	cmd := &cobra.Command{}
	for _, tc := range []struct {
		name       string
		complete   cobra.CompletionFunc
		args       []string
		toComplete string
		want       []string
	}{
		{name: "nodes", complete: completeOneArg(o, realServerNames), want: []string{"rmq_node1", "rmq_node2", "rmq_node3"}},
		{name: "a node's prefix", complete: completeOneArg(o, realServerNames), toComplete: "rmq_node3", want: []string{"rmq_node3"}},
		{name: "nothing after the node", complete: completeOneArg(o, realServerNames), args: []string{"rmq_node1"}},
		{name: "services", complete: completeNames(o, serviceNames), toComplete: "m", want: []string{"management"}},
		{name: "a flag after the argument", complete: completeNames(o, serviceNames), args: []string{"rmq_node1"}, want: []string{"amqp", "management"}},
		{name: "the next of a comma list", complete: completeNames(o, realServerNames), toComplete: "rmq_node2,rmq",
			want: []string{"rmq_node2,rmq_node1", "rmq_node2,rmq_node3"}},
		{name: "output", complete: completeOutput, want: []string{"table\ttext for people", "json\tone document for scripts"}},
		{name: "an invalid file", complete: completeNames(&options{config: "/nonexistent/topology.yaml"}, serviceNames)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, directive := tc.complete(cmd, tc.args, tc.toComplete)
			if !slices.Equal(got, tc.want) || directive != cobra.ShellCompDirectiveNoFileComp {
				t.Errorf("completions %q (%v), want %q", got, directive, tc.want)
			}
		})
	}
}

// The completions are wired to the commands: what the shell scripts ask
// through cobra's hidden __complete command.
func TestCompletionIsWired(t *testing.T) {
	config := exampleConfig(t)
	for _, args := range [][]string{
		{"drain", "rmq_node"}, {"undrain", "rmq_node"}, {"check", "rmq_node"},
		{"status", "--node", "rmq_node"}, {"check", "rmq_node1", "--service", ""}, {"status", "--service", ""},
		{"status", "-o", ""}, {"check", "x", "-o", ""}, {"ha", "status", "-o", ""},
	} {
		out, err := execute(append([]string{"__complete", "--config", config}, args...)...)
		want := "rmq_node1"
		switch {
		case slices.Contains(args, "-o"):
			want = "json"
		case slices.Contains(args, "--service"):
			want = "management"
		}
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completing %v: %v\n%s", args, err, out)
		}
	}
}
