package director

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// WriteStatus prints the declared services as the kernel has them, joined
// with the check states (nil when no director runs) and with what differs
// from the file. now ages the check states.
func WriteStatus(w io.Writer, topo *topology.Topology, kernel ipvsctl.Table, checks []CheckStatus, now time.Time) error {
	byKey := make(map[string]CheckStatus, len(checks))
	for _, c := range checks {
		byKey[c.Key] = c
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if checks == nil {
		fmt.Fprintln(tw, "health: unknown (no director is running)")
	}
	for _, s := range topo.Services {
		key := ipvsctl.Key(topo, s)
		vs, inKernel := kernel.Find(key)
		fmt.Fprintf(tw, "\n%s  %s %s  ", s.Name, s.Protocol, netip.AddrPortFrom(key.Address, key.Port))
		if !inKernel {
			fmt.Fprintln(tw, "MISSING from the kernel")
			continue
		}
		sched := vs.Service.Scheduler
		if vs.Service.Persistence > 0 {
			sched += fmt.Sprintf(" persistent %ds", vs.Service.Persistence)
		}
		drift := ""
		if vs.Service.Scheduler != s.Scheduler || time.Duration(vs.Service.Persistence)*time.Second != s.PersistenceTimeout {
			drift = fmt.Sprintf("  (file: %s, persistence %s)", s.Scheduler, s.PersistenceTimeout)
		}
		fmt.Fprintf(tw, "%s%s\n", sched, drift)
		fmt.Fprintln(tw, "  REAL SERVER\tADDRESS\tFWD\tWEIGHT\tACTIVE\tINACTIVE\tHEALTH\tSINCE\tLAST ERROR")
		for _, rs := range topo.Members(s) {
			ep := netip.AddrPortFrom(rs.Address, s.Port)
			fwd, weight, active, inactive := "-", "absent", "-", "-"
			for _, d := range vs.Destinations {
				if d.Endpoint() != ep {
					continue
				}
				fwd, weight = string(d.Forwarding), fmt.Sprint(d.Weight)
				if d.Weight != rs.Weight {
					weight += fmt.Sprintf(" (file %d)", rs.Weight)
				}
				if d.Stats != nil {
					active, inactive = fmt.Sprint(d.Stats.ActiveConns), fmt.Sprint(d.Stats.InactiveConns)
				}
			}
			health, since, lastErr := "not checked", "-", ""
			if checks := s.ChecksOf(rs.Name); len(checks) > 0 {
				health, since, lastErr = joinChecks(s, rs.Name, checks, byKey, now)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rs.Name, ep, fwd, weight, active, inactive, health, since, lastErr)
		}
		for _, d := range vs.Destinations {
			if !declares(topo, s, d.Address) {
				fmt.Fprintf(tw, "  (not in file)\t%s\t%s\t%d\t\t\t\t\t\n", d.Endpoint(), d.Forwarding, d.Weight)
			}
		}
	}
	return tw.Flush()
}

func declares(topo *topology.Topology, s topology.Service, addr netip.Addr) bool {
	for _, rs := range topo.Members(s) {
		if rs.Address == addr {
			return true
		}
	}
	return false
}

// joinChecks sums up the checks of one real server: down if any is down
// (naming it when there are several), up if all are up, unknown otherwise;
// since the latest change that made it so.
func joinChecks(s topology.Service, node string, checks []topology.Check, byKey map[string]CheckStatus, now time.Time) (health, since, lastErr string) {
	var latest time.Time
	var down *CheckStatus
	downName := ""
	up := 0
	for _, c := range checks {
		st, ok := byKey[CheckKey(s.Name, node, c.Name)]
		if !ok {
			return "unknown", "-", ""
		}
		if st.Since.After(latest) {
			latest = st.Since
		}
		switch st.State {
		case "up":
			up++
		case "down":
			if down == nil || st.Since.After(down.Since) {
				down, downName = &st, c.Name
			}
		}
	}
	at := latest
	switch {
	case down != nil:
		health, at, lastErr = "down", down.Since, down.LastError
		if len(checks) > 1 {
			health, lastErr = "down ("+downName+")", downName+": "+lastErr
		}
	case up == len(checks):
		health = "up"
	default:
		health = "unknown"
	}
	since = "-"
	if !at.IsZero() {
		since = now.Sub(at).Truncate(time.Second).String() + " ago"
	}
	return health, since, lastErr
}
