package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/director"
)

// haCommand is `director ha`: the VRRP role of a running director.
func haCommand(o *options) *cobra.Command {
	ha := &cobra.Command{
		Use:   "ha",
		Short: "The VRRP role of the running director (director.ha): status, release, unrelease",
	}
	var format string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the role (master, backup, fault), priority, master's address, transitions and adverts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			report, err := director.QueryStatus(o.controlSocket)
			if err != nil {
				return err
			}
			if report.HA == nil {
				return director.ErrNoHA
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(report.HA)
			}
			if format != "table" {
				return fmt.Errorf("-o %s: want table or json", format)
			}
			return director.WriteHAStatus(cmd.OutOrStdout(), report)
		},
	}
	status.Flags().StringVarP(&format, "output", "o", "table", "table or json")
	status.RegisterFlagCompletionFunc("output", completeOutput)
	for verb, on := range map[string]bool{"release": true, "unrelease": false} {
		short := "Make a master step down for maintenance (a priority-0 advert, then a backup that does not take the VIP back) until unrelease or a restart"
		if !on {
			short = "Take part in elections again with the configured priority after a release"
		}
		ha.AddCommand(&cobra.Command{
			Use:   verb,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				err := director.ReleaseMaster(o.controlSocket, on)
				if errors.Is(err, director.ErrNoDirector) {
					return err
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd\n", verb)
				return nil
			},
		})
	}
	ha.AddCommand(status)
	return ha
}
