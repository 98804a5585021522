package director

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteStatus prints a report as a table: a block per service, a line per
// real server with the kernel's weight, connections and rate beside its
// health, then the drift.
func WriteStatus(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !r.DirectorRunning {
		fmt.Fprintln(tw, "health: unknown (no director is running)")
	}
	for _, s := range r.Services {
		fmt.Fprintf(tw, "\n%s  %s %s  ", s.Name, s.Protocol, s.Address)
		if !s.InKernel {
			fmt.Fprintln(tw, "MISSING from the kernel")
		} else {
			sched := s.Scheduler
			if s.Persistence > 0 {
				sched += fmt.Sprintf(" persistent %ds", s.Persistence)
			}
			if s.Stats != nil {
				sched += fmt.Sprintf("  conns %d  %d conn/s  in %s/s  out %s/s", s.Stats.Connections, s.Stats.CPS, byteSize(s.Stats.BPSIn), byteSize(s.Stats.BPSOut))
			}
			fmt.Fprintln(tw, sched)
		}
		fmt.Fprintln(tw, "  REAL SERVER\tADDRESS\tFWD\tWEIGHT\tACTIVE\tINACTIVE\tCONNS\tCONN/S\tHEALTH\tSINCE\tCHECK TIME\tLAST ERROR")
		for _, rs := range s.RealServers {
			fwd, weight, active, inactive, conns, cps := "-", "absent", "-", "-", "-", "-"
			if rs.InKernel {
				fwd, weight = rs.Forwarding, fmt.Sprint(rs.Weight)
				if rs.Weight != rs.FileWeight {
					weight += fmt.Sprintf(" (file %d)", rs.FileWeight)
				}
			}
			if rs.Maintenance {
				weight += " drained"
			}
			if st := rs.Stats; st != nil {
				active, inactive, conns, cps = fmt.Sprint(st.ActiveConns), fmt.Sprint(st.InactiveConns), fmt.Sprint(st.Connections), fmt.Sprint(st.CPS)
			}
			since := "-"
			if !rs.Since.IsZero() {
				since = r.Time.Sub(rs.Since).Truncate(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rs.Name, rs.Address, fwd, weight, active, inactive, conns, cps, rs.Health, since, checkTime(rs.Checks), rs.LastError)
		}
		for _, f := range s.Foreign {
			what := "(not in file)"
			if f.Leaving {
				what = "(leaving)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t\t\t\t\t\t\t\t\n", what, f.Address, f.Forwarding, f.Weight)
		}
		if len(s.Drift) > 0 {
			fmt.Fprintf(tw, "  drift: %s\n", strings.Join(s.Drift, "; "))
		}
	}
	return tw.Flush()
}

// WriteStatusJSON prints a report as one JSON document, for scripts.
func WriteStatusJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// byteSize formats a byte count for people: 1.5MiB.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// checkTime is how long the slowest last probe of a real server's checks
// took: a check creeping towards its connect_timeout shows here first.
func checkTime(checks []CheckStatus) string {
	var slowest time.Duration
	for _, c := range checks {
		slowest = max(slowest, c.Latency)
	}
	switch {
	case slowest == 0:
		return "-"
	case slowest < 100*time.Microsecond:
		return "<0.1ms"
	}
	return slowest.Round(100 * time.Microsecond).String()
}
