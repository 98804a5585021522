package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lvsdr/lvsdr/topology"
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
	writeFileAndReload(tw, r)
	if r.CheckLag >= 100*time.Millisecond {
		fmt.Fprintf(tw, "checks: probes start %s late (the checker cannot keep up: intervals stretch)\n", r.CheckLag.Round(10*time.Millisecond))
	}
	// One buffer for every real server's line: a status of 10,000 of them
	// formatted each cell with fmt, 13 allocations a line.
	var line []byte
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
		fmt.Fprintln(tw, "  "+quorumLine(s))
		fmt.Fprintln(tw, "  REAL SERVER\tADDRESS\tFWD\tWEIGHT\tACTIVE\tINACTIVE\tCONNS\tCONN/S\tHEALTH\tWHY OUT\tSINCE\tCHECK TIME\tLAST ERROR")
		for _, rs := range s.RealServers {
			line = serverLine(line[:0], rs, r.Time)
			tw.Write(line)
		}
		for _, f := range s.Foreign {
			what, why := "(not in file)", "not in the file"
			if f.Leaving {
				what, why = "(leaving)", outPhrases[OutLeaving]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t\t\t\t\t\t%s\t\t\t\n", what, f.Address, f.Forwarding, f.Weight, why)
		}
		if len(s.Drift) > 0 {
			fmt.Fprintf(tw, "  drift: %s\n", strings.Join(s.Drift, "; "))
		}
	}
	return tw.Flush()
}

// serverLine appends a real server's line of the table to b.
func serverLine(b []byte, rs ServerReport, now time.Time) []byte {
	cell := func(b []byte, s string) []byte { return append(append(b, s...), '\t') }
	number := func(b []byte, n uint64) []byte { return append(strconv.AppendUint(b, n, 10), '\t') }
	count := func(b []byte, n int) []byte { return append(strconv.AppendInt(b, int64(n), 10), '\t') }
	b = append(b, "  "...)
	b = cell(b, rs.Name)
	b = cell(b, rs.Address)
	if rs.InKernel {
		b = cell(b, rs.Forwarding)
		b = strconv.AppendUint(b, uint64(rs.Weight), 10)
		if rs.Weight != rs.FileWeight {
			b = append(b, " (file "...)
			b = strconv.AppendUint(b, uint64(rs.FileWeight), 10)
			b = append(b, ')')
		}
	} else {
		b = append(b, "-\tabsent"...)
	}
	if rs.Maintenance {
		b = append(b, " drained"...)
	}
	b = append(b, '\t')
	if st := rs.Stats; st != nil {
		b = count(b, st.ActiveConns)
		b = count(b, st.InactiveConns)
		b = number(b, st.Connections)
		b = number(b, st.CPS)
	} else {
		b = append(b, "-\t-\t-\t-\t"...)
	}
	b = cell(b, rs.Health)
	b = whyOutTo(b, rs.Out)
	b = append(b, '\t')
	if rs.Since.IsZero() {
		b = cell(b, "-")
	} else {
		b = cell(b, now.Sub(rs.Since).Truncate(time.Second).String()+" ago")
	}
	b = cell(b, checkTime(rs.Checks))
	b = append(b, rs.LastError...)
	return append(b, '\n')
}

// whyOutTo appends a real server's reasons for the table, or "-"; the
// check's error has a column of its own.
func whyOutTo(b []byte, reasons []OutReason) []byte {
	if len(reasons) == 0 {
		return append(b, '-')
	}
	for i, r := range reasons {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, outPhrases[r.Reason]...)
	}
	return b
}

// outPhrases says each OutReason for people, in the table.
var outPhrases = map[string]string{
	OutMaintenance: "maintenance (drained)",
	OutCheckDown:   "check down",
	OutNotChecked:  "not yet checked",
	OutBelowQuorum: "below quorum (kept at 0)",
	OutFileWeight:  "weight 0 in the file",
	OutLeaving:     "leaving (removed by reload, draining)",
	OutNoDirector:  "unknown (no director runs)",
	OutDrift:       "drift (the next resync repairs it)",
}

// quorumLine is a service's quorum and its sorry server in one line.
func quorumLine(s ServiceReport) string {
	var line string
	switch {
	case s.Serving == nil:
		line = fmt.Sprintf("quorum: %d needed (health unknown: no director runs)", s.Quorum)
	case s.QuorumLost:
		line = fmt.Sprintf("quorum LOST: %d of %d serving, %d needed", *s.Serving, len(s.RealServers), s.Quorum)
	default:
		line = fmt.Sprintf("quorum: %d of %d serving, %d needed", *s.Serving, len(s.RealServers), s.Quorum)
	}
	sorry := s.Sorry
	switch {
	case sorry == nil && s.QuorumLost:
		return line + "; no sorry server: the servers left take every client"
	case sorry == nil:
		return line
	case sorry.InKernel && sorry.Weight > 0:
		line += fmt.Sprintf("; sorry server %s IN (weight %d): new clients go there", sorry.Address, sorry.Weight)
	default:
		line += fmt.Sprintf("; sorry server %s out", sorry.Address)
	}
	if s.Serving != nil && sorry.Wanted != (sorry.InKernel && sorry.Weight > 0) {
		line += " (drift: the next resync repairs it)"
	}
	return line
}

// writeFileAndReload prints whether the file on disk is in force and how
// the last reload went: an edit not reloaded, or refused, explains many
// incidents.
func writeFileAndReload(w io.Writer, r Report) {
	if f := r.File; f != nil {
		switch {
		case f.InForce:
			fmt.Fprintf(w, "file %s: in force\n", f.Path)
		case f.Valid:
			fmt.Fprintf(w, "file %s differs from the topology in force: run director reload\n", f.Path)
		default:
			fmt.Fprintf(w, "file %s differs from the topology in force and is invalid (a reload would refuse it):\n", f.Path)
			for _, line := range strings.Split(f.Error, "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
	if !r.DirectorRunning {
		return
	}
	lr := r.LastReload
	if lr == nil {
		fmt.Fprintln(w, "last reload: none since the director started")
		return
	}
	when := fmt.Sprintf("last reload: %s ago (%s)", r.Time.Sub(lr.Time).Truncate(time.Second), lr.Time.Format(time.RFC3339))
	took := lr.Duration.Round(time.Millisecond)
	if lr.Duration < time.Millisecond {
		took = lr.Duration.Round(time.Microsecond)
	}
	if lr.OK {
		fmt.Fprintf(w, "%s: ok in %s\n", when, took)
		return
	}
	fmt.Fprintf(w, "%s: FAILED after %s:\n", when, took)
	for _, line := range strings.Split(lr.Error, "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
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

// ErrUnknownName means a status filter names no service or real server of
// the topology.
var ErrUnknownName = errors.New("not in the topology")

// FilterReport keeps the services named in services and, in each, the real
// servers named in nodes (a service without one of them goes); empty
// lists keep everything. The drift kept is the service's own and that of
// the real servers kept. A name the report does not have is refused, with
// the near one it likely meant.
func FilterReport(r Report, services, nodes []string) (Report, error) {
	if len(services) == 0 && len(nodes) == 0 {
		return r, nil
	}
	// A set, not a scan of the names so far: a status of 10,000 real
	// servers runs through this.
	var serviceNames, nodeNames []string
	seen := map[string]bool{}
	for _, s := range r.Services {
		serviceNames = append(serviceNames, s.Name)
		for _, rs := range s.RealServers {
			if !seen[rs.Name] {
				seen[rs.Name] = true
				nodeNames = append(nodeNames, rs.Name)
			}
		}
	}
	if err := knownNames("service", services, serviceNames); err != nil {
		return Report{}, err
	}
	if err := knownNames("real server", nodes, nodeNames); err != nil {
		return Report{}, err
	}
	out := r
	out.Services = nil
	for _, s := range r.Services {
		if len(services) > 0 && !slices.Contains(services, s.Name) {
			continue
		}
		if len(nodes) > 0 {
			s = onlyNodes(s, nodes)
			if len(s.RealServers) == 0 {
				continue
			}
		}
		out.Services = append(out.Services, s)
	}
	return out, nil
}

// onlyNodes is a service reduced to the named real servers, their drift
// and the service's own.
func onlyNodes(s ServiceReport, nodes []string) ServiceReport {
	var kept []ServerReport
	var addresses []string
	for _, rs := range s.RealServers {
		if slices.Contains(nodes, rs.Name) {
			kept = append(kept, rs)
			addresses = append(addresses, " -r "+rs.Address+" ")
		}
	}
	var drift []string
	for _, op := range s.Drift {
		if !strings.Contains(op, " -r ") || slices.ContainsFunc(addresses, func(a string) bool { return strings.Contains(op+" ", a) }) {
			drift = append(drift, op)
		}
	}
	s.RealServers, s.Drift, s.Foreign = kept, drift, nil
	return s
}

// knownNames refuses the first of names that is not in known.
func knownNames(what string, names, known []string) error {
	for _, n := range names {
		if slices.Contains(known, n) {
			continue
		}
		if near := topology.Suggest(n, known); near != "" {
			return fmt.Errorf("%s %q: %w: did you mean %q?", what, n, ErrUnknownName, near)
		}
		return fmt.Errorf("%s %q: %w (%ss: %s)", what, n, ErrUnknownName, what, strings.Join(known, ", "))
	}
	return nil
}

// WriteProbes prints the results of `director check`, one line per
// service and check.
func WriteProbes(w io.Writer, node string, results []ProbeResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCHECK\tTARGET\tRESULT\tLATENCY\tERROR")
	for _, r := range results {
		latency := "-"
		if r.Latency > 0 {
			latency = r.Latency.Round(100 * time.Microsecond).String()
			if r.Latency < 100*time.Microsecond {
				latency = "<0.1ms"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, r.Check, r.Target, r.Result, latency, r.Error)
	}
	if n := ProbesFailed(results); n > 0 {
		fmt.Fprintf(tw, "%s: %d of %d checks failed\n", node, n, len(results))
	}
	return tw.Flush()
}
