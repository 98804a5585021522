package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/topology"
)

// realServerNames and serviceNames list the names of a topology, for
// completion.
func realServerNames(t *topology.Topology) []string {
	names := make([]string, 0, len(t.RealServers))
	for _, rs := range t.RealServers {
		names = append(names, rs.Name)
	}
	return names
}

func serviceNames(t *topology.Topology) []string {
	names := make([]string, 0, len(t.Services))
	for _, s := range t.Services {
		names = append(names, s.Name)
	}
	return names
}

// completeNames completes one name of the topology at --config, for an
// argument or a flag; a flag taking a comma list completes its last item.
// An unreadable or invalid file completes nothing rather than fail: the
// command itself will say what is wrong with it.
func completeNames(o *options, names func(*topology.Topology) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		// Schema only: completion must not need the password files root
		// reads.
		topo, err := topology.Load(o.config)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		done, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			done, last = toComplete[:i+1], toComplete[i+1:]
		}
		var out []cobra.Completion
		for _, n := range names(topo) {
			if strings.HasPrefix(n, last) && !strings.Contains(","+done, ","+n+",") {
				out = append(out, done+n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeOneArg completes the single argument of a command (a real
// server's name) and nothing after it.
func completeOneArg(o *options, names func(*topology.Topology) []string) cobra.CompletionFunc {
	complete := completeNames(o, names)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, args, toComplete)
	}
}

// completeOutput completes -o.
func completeOutput(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return []cobra.Completion{"table\ttext for people", "json\tone document for scripts"}, cobra.ShellCompDirectiveNoFileComp
}
