// Command director is the lvsdr balancer daemon and its tools: it programs
// kernel IPVS from a YAML topology and health-checks every real server.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/director"
	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/internal/logbuf"
	"github.com/lvsdr/lvsdr/internal/netif"
	"github.com/lvsdr/lvsdr/internal/version"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/sysctl"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vip"
)

// gcPercent is the garbage collector's target unless GOGC says otherwise.
// Parsing a topology of 10,000 real servers allocates some 40 MiB of YAML
// nodes that die at once; at Go's default of 100 the collector runs over
// and over while the heap grows through them: ten parses cost 1.73 s of
// CPU at 100, 1.13 s at 200 and 1.02 s at 400 (docs/benchmarks.md). 200
// takes most of that gain for half the headroom of 400, which a director
// with 10,000 checks held as 270 MB.
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if err := rootCommand().Execute(); err != nil {
		switch {
		case errors.Is(err, errSilent):
		case errors.Is(err, topology.ErrInvalid):
			// FILE:LINE: message on every line, as compilers print, so
			// that editors and scripts can jump to each problem.
			fmt.Fprintln(os.Stderr, err)
		default:
			fmt.Fprintf(os.Stderr, "director: %s\n", err)
		}
		os.Exit(1)
	}
}

// errSilent exits 1 after a command has already said why.
var errSilent = errors.New("")

type options struct {
	config        string
	stateDir      string
	controlSocket string
	callTimeout   time.Duration
}

func printOps(cmd *cobra.Command, ops []ipvsctl.Op) {
	lines := make([]string, len(ops))
	for i, op := range ops {
		lines[i] = op.String()
	}
	printLines(cmd, lines)
}

// printLines writes through a buffer: an apply of 10,000 real servers
// prints 11,000 lines, one write each would cost more than the apply.
func printLines(cmd *cobra.Command, lines []string) {
	w := bufio.NewWriter(cmd.OutOrStdout())
	for _, line := range lines {
		w.WriteString(line)
		w.WriteByte('\n')
	}
	w.Flush()
}

func (o *options) state() director.StateFile {
	return director.StateFile{Path: filepath.Join(o.stateDir, "director.json")}
}

func rootCommand() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "director",
		Short:         "LVS-DR director: kernel IPVS from a YAML topology, with health checks",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.PersistentFlags().StringVarP(&o.config, "config", "c", "/etc/lvsdr/topology.yaml", "topology file")
	root.PersistentFlags().StringVar(&o.stateDir, "state-dir", "/var/lib/lvsdr", "where the director records the services it owns")
	root.PersistentFlags().StringVar(&o.controlSocket, "control-socket", "/run/lvsdr/director.sock", "unix socket of the running director")
	root.PersistentFlags().DurationVar(&o.callTimeout, "netlink-timeout", ipvsctl.DefaultCallTimeout, "bound on one IPVS netlink call")
	root.AddCommand(runCommand(o), validateCommand(o), applyCommand(o), reloadCommand(o), statusCommand(o), cleanupCommand(o), haCommand(o),
		maintenanceCommand(o, "drain", true, "Put a real server in maintenance: weight 0 in every service, established connections kept; survives restarts"),
		maintenanceCommand(o, "undrain", false, "Take a real server out of maintenance: its configured weight back"),
		checkCommand(o), importKeepalivedCommand())
	return root
}

func runCommand(o *options) *cobra.Command {
	var logFormat, logLevel, name string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the director: bind the VIP, program IPVS, check real servers; SIGHUP reloads, SIGTERM leaves the table in place",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %s: want debug, info, warn or error", logLevel)
			}
			opts := &slog.HandlerOptions{Level: level}
			logOut := &logbuf.Writer{Out: os.Stderr}
			var handler slog.Handler
			switch logFormat {
			case "text":
				handler = slog.NewTextHandler(logOut, opts)
			case "json":
				handler = slog.NewJSONHandler(logOut, opts)
			default:
				return fmt.Errorf("--log-format %s: want text or json", logFormat)
			}
			kernel, err := ipvsctl.Open(o.callTimeout)
			if err != nil {
				return err
			}
			defer kernel.Close()
			syncd, err := ipvsctl.OpenSyncDaemons(o.callTimeout)
			if err != nil {
				return err
			}
			log := slog.New(handler)
			// Under systemd with WatchdogSec, WATCHDOG=1 every half of it.
			watchdog, err := daemon.SdWatchdogEnabled(false)
			if err != nil {
				return fmt.Errorf("systemd watchdog: %w", err)
			}
			// The loader keeps the pieces of the file in force: a reload
			// parses again only what changed.
			loader := topology.NewLoader()
			d := director.New(director.Config{
				Kernel:        kernel,
				VIP:           vip.Netlink{},
				Sysctl:        sysctl.FS{Root: sysctl.DefaultRoot},
				Clock:         clock.Real{},
				Log:           log,
				State:         o.state(),
				Load:          func() (*topology.Topology, error) { return loader.LoadDirector(o.config) },
				NewProber:     director.NewProber,
				ControlSocket: o.controlSocket,
				Notify:        systemdNotify(log),
				Watchdog:      watchdog / 2,
				Name:          name,
				Syncd:         syncd,
				LinkUp:        netif.Netlink{}.LinkUp,
				HoldLog:       logOut.Hold,
			})
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			go func() {
				for range hup {
					d.Reload()
				}
			}()
			return d.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&name, "name", "", "this director's name in director.ha.directors (default: the one whose address is on director.interface)")
	return cmd
}

// systemdNotify tells systemd the director's state (Type=notify); without
// NOTIFY_SOCKET it does nothing. systemd wants the monotonic time with
// RELOADING=1, to tell this reload from an older one.
func systemdNotify(log *slog.Logger) func(state string) {
	return func(state string) {
		if state == daemon.SdNotifyReloading {
			state += "\n" + daemon.SdNotifyMonotonicUsec()
		}
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("tell systemd the director's state", "state", state, "error", err)
		}
	}
}

func validateCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check the topology file (FILE, else --config) and report every problem",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := validateTarget(o.config, cmd.Flags().Changed("config"), args)
			if err != nil {
				return err
			}
			topo, err := topology.LoadDirector(file)
			if err != nil {
				return err
			}
			// FILE:LINE: warning: …, as compilers print them; the file
			// is valid all the same.
			for _, w := range topo.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: VIP %s, %d services, %d real servers\n", file, topo.VIP, len(topo.Services), len(topo.RealServers))
			return nil
		},
	}
}

// validateTarget is the file validate checks: the one given as argument,
// else --config; naming two different files is a mistake to point out, not
// to settle by picking one.
func validateTarget(config string, configSet bool, args []string) (string, error) {
	if len(args) == 0 {
		return config, nil
	}
	if configSet && filepath.Clean(config) != filepath.Clean(args[0]) {
		return "", fmt.Errorf("validate %s and --config %s: give one file", args[0], config)
	}
	return args[0], nil
}

// guard refuses a one-shot command that would fight a running director.
func (o *options) guard(cmd director.OneShot, force bool) error {
	return director.GuardOneShot(cmd, func() (bool, error) { return director.Running(o.controlSocket) }, force)
}

func applyCommand(o *options) *cobra.Command {
	var dryRun, emptyKernel, force bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Program the topology into IPVS once, every real server in, and print the operations (ipvsadm syntax); refused while a director runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				if err := o.guard(director.OneShotApply, force); err != nil {
					return err
				}
			}
			topo, err := topology.LoadDirector(o.config)
			if err != nil {
				return err
			}
			var kernel ipvsctl.Kernel
			state := o.state()
			if emptyKernel {
				if !dryRun {
					return errors.New("--empty-kernel previews only: add --dry-run")
				}
				kernel, state = ipvsctl.NewFakeKernel(), director.StateFile{}
			} else {
				k, err := ipvsctl.Open(o.callTimeout)
				if err != nil {
					return err
				}
				defer k.Close()
				kernel = k
			}
			ops, err := director.Apply(kernel, state, topo, dryRun)
			printOps(cmd, ops)
			if err == nil && len(ops) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "# the kernel already matches the topology")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the operations without running them")
	cmd.Flags().BoolVar(&emptyKernel, "empty-kernel", false, "with --dry-run: compare with an empty IPVS table instead of this host's (a preview on machines without IPVS)")
	cmd.Flags().BoolVar(&force, "force", false, "apply even while a director runs (it undoes this at its next resync)")
	return cmd
}

func reloadCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running director read its file again and wait for the outcome: exit 1 with its reason if it refuses (the topology in force stays)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := director.Reload(o.controlSocket); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "reloaded: the director runs the new file")
			return nil
		},
	}
}

// offlineStatus reports from the file and the kernel when no director runs:
// health is unknown.
func (o *options) offlineStatus() (director.Report, error) {
	topo, err := topology.LoadDirector(o.config)
	if err != nil {
		return director.Report{}, err
	}
	kernel, err := ipvsctl.Open(o.callTimeout)
	if err != nil {
		return director.Report{}, err
	}
	defer kernel.Close()
	return director.OfflineReport(kernel, o.state(), topo, time.Now())
}

func maintenanceCommand(o *options, verb string, on bool, short string) *cobra.Command {
	return &cobra.Command{
		Use:               verb + " REAL_SERVER",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeOneArg(o, realServerNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := director.SetMaintenance(o.controlSocket, args[0], on); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %sed\n", args[0], verb)
			return nil
		},
	}
}

func cleanupCommand(o *options) *cobra.Command {
	var dryRun, force bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete the declared services from IPVS, unbind the VIP, stop the director's sync daemons and put back the sysctls it recorded (foreign services and daemons stay); refused while a director runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				if err := o.guard(director.OneShotCleanup, force); err != nil {
					return err
				}
			}
			topo, err := topology.LoadDirector(o.config)
			if err != nil {
				return err
			}
			kernel, err := ipvsctl.Open(o.callTimeout)
			if err != nil {
				return err
			}
			defer kernel.Close()
			syncd, err := ipvsctl.OpenSyncDaemons(o.callTimeout)
			if err != nil {
				return err
			}
			sys := sysctl.FS{Root: sysctl.DefaultRoot}
			if dryRun {
				ops, bound, err := director.PlanCleanup(kernel, vip.Netlink{}, o.state(), topo)
				printOps(cmd, ops)
				if err != nil {
					return err
				}
				if bound {
					fmt.Fprintf(cmd.OutOrStdout(), "ip addr del %s/32 dev %s\n", topo.VIP, topo.Director.Interface)
				}
				plan, err := director.CleanupModes(syncd, sys, o.state(), topo, true)
				printLines(cmd, plan)
				return err
			}
			ops, err := director.Cleanup(kernel, vip.Netlink{}, o.state(), topo)
			printOps(cmd, ops)
			if err != nil {
				return err
			}
			done, err := director.CleanupModes(syncd, sys, o.state(), topo, false)
			printLines(cmd, done)
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the operations (ipvsadm syntax), the VIP it would unbind (ip syntax), the daemons it would stop and the sysctls it would put back, and change nothing")
	cmd.Flags().BoolVar(&force, "force", false, "clean up even while a director runs (it binds the VIP and programs its services again at its next resync)")
	return cmd
}
