package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/director"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vip"
)

// newProber makes the probes of `director check`: the director's own, so
// that the command sees what the daemon sees. Tests point it at loopback.
var newProber = director.NewProber

func checkCommand(o *options) *cobra.Command {
	var services []string
	var format string
	cmd := &cobra.Command{
		Use:               "check REAL_SERVER",
		Short:             "Probe a real server now with the checks the topology gives it: one line per service and check with its result, latency and error; exit 1 if any failed",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeOneArg(o, realServerNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o %s: want table or json", format)
			}
			topo, err := topology.LoadDirector(o.config)
			if err != nil {
				return err
			}
			opts := director.ProbeOptions{Services: services, NewProber: newProber}
			opts.ThroughVIP, opts.Source = o.vipCheckSource(topo, args[0])
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			results, err := director.ProbeNode(ctx, topo, args[0], opts)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(results)
			} else {
				err = director.WriteProbes(cmd.OutOrStdout(), args[0], results)
			}
			if err == nil && director.ProbesFailed(results) > 0 {
				// The table has said which.
				return errSilent
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&services, "service", nil, "probe only the checks of these services (repeat it or give a comma list)")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "table or json")
	cmd.RegisterFlagCompletionFunc("service", completeNames(o, serviceNames))
	cmd.RegisterFlagCompletionFunc("output", completeOutput)
	return cmd
}

// vipCheckSource says whether the checks through the VIP of node can be
// probed, and from which address: only while a director runs, whose
// firewall-mark services route them, from the address it sends its own.
func (o *options) vipCheckSource(topo *topology.Topology, node string) (bool, netip.Addr) {
	if _, ok := topo.CheckMark(node); !ok {
		return false, netip.Addr{}
	}
	if running, err := director.Running(o.controlSocket); err != nil || !running {
		return false, netip.Addr{}
	}
	source, err := vip.Netlink{}.ProbeSource(topo.Director.Interface, topo.VIP)
	if err != nil {
		return false, netip.Addr{}
	}
	return true, source
}
