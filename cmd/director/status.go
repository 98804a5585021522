package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/director"
	"github.com/lvsdr/lvsdr/internal/clock"
)

// defaultWatch is --watch's interval when none is given, watch(1)'s.
const defaultWatch = 2 * time.Second

func statusCommand(o *options) *cobra.Command {
	var format string
	var services, nodes []string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "status [--watch [INTERVAL]]",
		Short: "Show the services as the kernel has them (weights, connections, rates), with health, quorum, why a server is out, drift, the last reload and whether the file on disk is in force: from the running director, or from the file and the kernel when none runs",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o %s: want table or json", format)
			}
			if len(args) == 1 {
				// --watch 5s: the interval after a flag whose value is
				// optional reaches us as an argument.
				if !cmd.Flags().Changed("watch") {
					return fmt.Errorf("unexpected argument %q: status takes none (an interval goes after --watch)", args[0])
				}
				d, err := time.ParseDuration(args[0])
				if err != nil {
					return fmt.Errorf("--watch %s: want an interval such as 2s", args[0])
				}
				watch = d
			}
			if cmd.Flags().Changed("watch") && watch < 100*time.Millisecond {
				return fmt.Errorf("--watch %s: want an interval of 100ms or more", watch)
			}
			draw := func(w io.Writer) error {
				if format == "table" {
					// A running director draws the table itself.
					table, err := director.QueryStatusTable(o.controlSocket, services, nodes)
					if err == nil {
						_, err = w.Write(table)
						return err
					}
					if !errors.Is(err, director.ErrNoDirector) {
						return err
					}
				}
				report, err := o.status()
				if err != nil {
					return err
				}
				if report, err = director.FilterReport(report, services, nodes); err != nil {
					return err
				}
				if format == "json" {
					return director.WriteStatusJSON(w, report)
				}
				return director.WriteStatus(w, report)
			}
			if watch == 0 {
				return draw(cmd.OutOrStdout())
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			table := format == "table"
			return watchStatus(ctx, cmd.OutOrStdout(), clock.Real{}, watch, table, table && isTerminal(cmd.OutOrStdout()), draw)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "table or json")
	cmd.Flags().DurationVar(&watch, "watch", 0, "redraw every interval (default 2s) until interrupted")
	cmd.Flags().Lookup("watch").NoOptDefVal = defaultWatch.String()
	cmd.Flags().StringSliceVar(&services, "service", nil, "show only these services (repeat it or give a comma list)")
	cmd.Flags().StringSliceVar(&nodes, "node", nil, "show only these real servers (repeat it or give a comma list)")
	cmd.RegisterFlagCompletionFunc("service", completeNames(o, serviceNames))
	cmd.RegisterFlagCompletionFunc("node", completeNames(o, realServerNames))
	cmd.RegisterFlagCompletionFunc("output", completeOutput)
	return cmd
}

// status is the running director's report, or the file's and the
// kernel's when none runs.
func (o *options) status() (director.Report, error) {
	report, err := director.QueryStatus(o.controlSocket)
	if errors.Is(err, director.ErrNoDirector) {
		report, err = o.offlineStatus()
	}
	return report, err
}

// watchStatus draws the status every interval until ctx is done. A table
// has a heading with the time, and clear wipes the terminal before each
// one; JSON is one document per interval. A director that does not answer
// for a while is said in the frame and the watch goes on; a filter naming
// nothing ends it.
func watchStatus(ctx context.Context, w io.Writer, clk clock.Clock, interval time.Duration, heading, clear bool, draw func(io.Writer) error) error {
	for {
		var frame bytes.Buffer
		if clear {
			frame.WriteString("\033[H\033[2J")
		}
		if heading {
			fmt.Fprintf(&frame, "every %s until interrupted: director status  %s\n\n", interval, clk.Now().Format(time.RFC3339))
		}
		err := draw(&frame)
		if errors.Is(err, director.ErrUnknownName) {
			return err
		}
		if err != nil {
			fmt.Fprintf(&frame, "director: %s\n", err)
		}
		// One write per frame, so a terminal never shows half of one.
		if _, err := w.Write(frame.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clk.After(interval):
		}
	}
}

// isTerminal reports whether w is a terminal, which alone gets the escape
// codes that clear it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
