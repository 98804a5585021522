// Command realserver prepares an LVS-DR real server: the VIP on lo and ARP
// suppression (start), undone exactly (stop), and inspected (status).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/internal/netif"
	"github.com/lvsdr/lvsdr/internal/version"
	"github.com/lvsdr/lvsdr/realserver"
	"github.com/lvsdr/lvsdr/sysctl"
	"github.com/lvsdr/lvsdr/topology"
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		report(os.Stderr, err)
		os.Exit(1)
	}
}

// report prints why the command failed. A topology's problems are printed
// as they are, FILE:LINE: message on every line as compilers print them, so
// that editors and scripts read each; a "realserver: " prefix would break
// the first.
func report(w io.Writer, err error) {
	switch {
	case errors.Is(err, realserver.ErrNotReady):
		// Status has already said why.
	case errors.Is(err, topology.ErrInvalid):
		fmt.Fprintln(w, err)
	default:
		fmt.Fprintf(w, "realserver: %s\n", err)
	}
}

func rootCommand() *cobra.Command {
	var config, stateDir string
	root := &cobra.Command{
		Use:           "realserver",
		Short:         "Prepare this node as an LVS-DR real server: the VIP on lo, ARP suppressed",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.PersistentFlags().StringVarP(&config, "config", "c", "/etc/lvsdr/topology.yaml", "topology file")
	root.PersistentFlags().StringVar(&stateDir, "state-dir", "/var/lib/lvsdr", "where the ARP settings found at start are recorded")

	command := func(use, short string, run func(*realserver.Agent, realserver.Config) error) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := loadConfig(config)
				if err != nil {
					return err
				}
				agent := &realserver.Agent{
					Addrs:    netif.Netlink{},
					Sysctl:   sysctl.FS{Root: sysctl.DefaultRoot},
					StateDir: stateDir,
					Out:      cmd.OutOrStdout(),
				}
				return run(agent, c)
			},
		}
	}
	root.AddCommand(
		command("start", "Record the ARP settings, set arp_ignore=1 and arp_announce=2, bind the VIP on lo (idempotent)", (*realserver.Agent).Start),
		command("stop", "Remove the VIP from lo and restore the recorded ARP settings", (*realserver.Agent).Stop),
		command("status", "Show whether this node is as DR needs it; exit 1 if not", (*realserver.Agent).Status),
	)
	return root
}

// loadConfig reads what the agent uses from the topology file shared with
// the directors: the schema, not the directors' own files (notify hook,
// password files), which a RabbitMQ node does not have.
func loadConfig(path string) (realserver.Config, error) {
	topo, err := topology.Load(path)
	if err != nil {
		return realserver.Config{}, err
	}
	if topo.RealServer.Interface == "" {
		return realserver.Config{}, fmt.Errorf("%s: realserver.interface is not set", path)
	}
	return realserver.Config{VIP: topo.VIP, Interface: topo.RealServer.Interface}, nil
}
