package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/lvsdr/lvsdr/keepalived"
)

// importKeepalivedCommand converts keepalived.conf to a YAML topology. The
// conversion is checked with the same validation as `director validate`, so
// that an operator never installs a file the director would refuse.
func importKeepalivedCommand() *cobra.Command {
	var output, directorAddress string
	var force bool
	var peers []string
	cmd := &cobra.Command{
		Use:   "import-keepalived FILE",
		Short: "Convert keepalived.conf (its virtual_server blocks, and the VIP's vrrp_instance as director.ha) to a YAML topology; what cannot be carried is printed as warnings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			opts, err := keepalived.ParseOptions(directorAddress, peers)
			if err != nil {
				return fmt.Errorf("import-keepalived: %w", err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("import-keepalived: %w", err)
			}
			res, err := opts.Convert(file, data)
			stderr := cmd.ErrOrStderr()
			for _, w := range res.Warnings {
				fmt.Fprintf(stderr, "director: import-keepalived: %s:%d: warning: %s\n", w.File, w.Line, w.Message)
			}
			if err != nil {
				return fmt.Errorf("import-keepalived: %w", err)
			}
			// The YAML is written even when invalid: the operator fixes it
			// from there, guided by the problems below.
			outName := "<stdout>"
			if output != "" {
				outName = output
				if err := writeTopology(output, res.YAML, force); err != nil {
					return fmt.Errorf("import-keepalived: %w", err)
				}
			} else if _, err := cmd.OutOrStdout().Write(res.YAML); err != nil {
				return fmt.Errorf("import-keepalived: write the topology: %w", err)
			}
			for _, p := range res.Problems {
				fmt.Fprintf(stderr, "director: import-keepalived: %s:%d: warning: the converted topology is invalid: %s\n", outName, p.Line, p.Message)
			}
			if len(res.Problems) > 0 {
				return fmt.Errorf("import-keepalived: %s: the converted topology is invalid (%d problem(s) above): fix it by hand, then run director validate", outName, len(res.Problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the topology to this file instead of stdout; an existing file is kept unless --force")
	cmd.Flags().BoolVar(&force, "force", false, "with -o, overwrite an existing file")
	cmd.Flags().StringVar(&directorAddress, "director-address", "", "this director's address on director.interface, for director.ha when the vrrp_instance has no unicast_src_ip")
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "another VRRP router of the VIP as ADDRESS=PRIORITY (its priority is in its own keepalived.conf); repeat for each")
	return cmd
}

// writeTopology writes the converted topology to a new file: an existing
// one, perhaps the topology in force, is replaced only when forced.
func writeTopology(name string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: not overwritten (add --force to replace it)", name)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}
