package director

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
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
	} else {
		held := "not on this host"
		if r.VIPHeld {
			held = "held by this host"
		}
		fmt.Fprintf(tw, "VIP %s: %s\n", r.VIP, held)
	}
	if r.CheckLag >= 100*time.Millisecond {
		fmt.Fprintf(tw, "checks: probes start %s late (the checker cannot keep up: intervals stretch)\n", r.CheckLag.Round(10*time.Millisecond))
	}
	if b := r.BGP; b != nil {
		state := "withdrawn"
		if b.Announced {
			state = "announced"
		}
		line := fmt.Sprintf("BGP: %s %s via %s since %s ago (%s", b.Prefix, state, b.NextHop, r.Time.Sub(b.Since).Truncate(time.Second), b.Reason)
		if b.Detail != "" {
			line += ": " + b.Detail
		}
		fmt.Fprintln(tw, line+")")
		for _, p := range b.Peers {
			peer := fmt.Sprintf("  peer %s AS%d: %s", p.Address, p.ASN, p.State)
			if p.LastError != "" {
				peer += " (last error: " + p.LastError + ")"
			}
			fmt.Fprintln(tw, peer)
		}
	}
	if h := r.HA; h != nil {
		line := fmt.Sprintf("VRRP: %s, priority %d, since %s ago (%s)", h.Role, h.Priority, r.Time.Sub(h.Since).Truncate(time.Second), h.Reason)
		if h.Master != "" {
			line += ", master " + h.Master
		}
		if h.Released {
			line += ", released (director ha unrelease takes it back)"
		}
		if h.PreemptHeld {
			line += ", preemption held"
		}
		fmt.Fprintln(tw, line)
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

// WriteHAStatus prints the VRRP part of a report, for `director ha status`.
func WriteHAStatus(w io.Writer, r Report) error {
	h := r.HA
	if h == nil {
		return ErrNoHA
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "role\t%s\n", h.Role)
	fmt.Fprintf(tw, "priority\t%d\n", h.Priority)
	fmt.Fprintf(tw, "master\t%s\n", orDash(h.Master))
	fmt.Fprintf(tw, "since\t%s (%s ago)\n", h.Since.Format(time.RFC3339), r.Time.Sub(h.Since).Truncate(time.Second))
	fmt.Fprintf(tw, "reason\t%s\n", h.Reason)
	fmt.Fprintf(tw, "VIP %s\t%s\n", r.VIP, map[bool]string{true: "held by this host", false: "not on this host"}[r.VIPHeld])
	fmt.Fprintf(tw, "released\t%v\n", h.Released)
	fmt.Fprintf(tw, "preemption held\t%v\n", h.PreemptHeld)
	fmt.Fprintf(tw, "transitions\t%d\n", h.Transitions)
	fmt.Fprintf(tw, "adverts sent / received\t%d / %d\n", h.Sent, h.Received)
	for _, reason := range slices.Sorted(maps.Keys(h.Rejected)) {
		fmt.Fprintf(tw, "adverts rejected (%s)\t%d\n", reason, h.Rejected[reason])
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
