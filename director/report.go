package director

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
	"github.com/lvsdr/lvsdr/vrrp"
)

// Report is what `director status` shows: every declared service as the
// kernel has it, joined with the health the running director knows and
// with what differs from the file. It is rendered as a table or as JSON.
type Report struct {
	Time time.Time `json:"time"`
	VIP  string    `json:"vip"`
	// DirectorRunning is false when no director answered: health is then
	// unknown.
	DirectorRunning bool `json:"director_running"`
	// VIPHeld is whether this host holds the VIP; only a running director
	// tells.
	VIPHeld bool `json:"vip_held"`
	// BGP is the announcement of the VIP; nil without director.bgp.
	BGP *BGPReport `json:"bgp,omitempty"`
	// CheckLag is how late the checker started its probes lately: above a
	// fraction of the intervals, it cannot keep up and intervals stretch
	// (no server goes down for it).
	CheckLag time.Duration `json:"check_lag_ns,omitempty"`
	// HA is the VRRP role; nil without director.ha.
	HA *HAReport `json:"ha,omitempty"`
	// LastReload is the running director's last reload; nil before the
	// first one.
	LastReload *ReloadReport `json:"last_reload,omitempty"`
	// File compares the topology file on disk with the topology the
	// running director has in force; nil when none runs.
	File     *FileReport     `json:"file,omitempty"`
	Services []ServiceReport `json:"services"`
}

// FileReport says whether the file on disk is what the running director
// has in force: an edit not yet reloaded, or one its last reload refused,
// is the first thing to know in an incident.
type FileReport struct {
	Path string `json:"path"`
	// InForce is true when the file parses into the topology in force.
	InForce bool `json:"in_force"`
	// Valid is false when the file could not be read or is refused, Error
	// saying why: a reload would then keep the topology in force.
	Valid bool   `json:"valid"`
	Error string `json:"error,omitempty"`
}

// ReloadReport is how the last reload went: a refused file leaves the
// previous topology in force, and Error says why.
type ReloadReport struct {
	Time     time.Time     `json:"time"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// HAReport is the director's VRRP role as `director status` and `director
// ha status` show it.
type HAReport struct {
	Role     string    `json:"role"`
	Priority int       `json:"priority"`
	Master   string    `json:"master,omitempty"`
	Since    time.Time `json:"since"`
	Reason   string    `json:"reason"`
	Released bool      `json:"released,omitempty"`
	// PreemptHeld is set while this director waits before it preempts
	// (its connection table warming up).
	PreemptHeld bool              `json:"preempt_held,omitempty"`
	Transitions uint64            `json:"transitions"`
	Sent        uint64            `json:"adverts_sent"`
	Received    uint64            `json:"adverts_received"`
	Rejected    map[string]uint64 `json:"adverts_rejected,omitempty"`
}

func haReport(st vrrp.Status) *HAReport {
	r := &HAReport{Role: st.State.String(), Priority: st.Priority, Since: st.Since, Reason: st.Reason, Released: st.Released,
		PreemptHeld: st.PreemptHeld, Transitions: st.Transitions, Sent: st.Sent, Received: st.Received}
	if st.MasterAddr.IsValid() {
		r.Master = st.MasterAddr.String()
	}
	for reason, n := range st.Rejected {
		if n > 0 {
			if r.Rejected == nil {
				r.Rejected = map[string]uint64{}
			}
			r.Rejected[reason] = n
		}
	}
	return r
}

// BGPReport is the VIP's announcement and the sessions that carry it.
type BGPReport struct {
	Prefix    string    `json:"prefix"`
	NextHop   string    `json:"next_hop"`
	Announced bool      `json:"announced"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail,omitempty"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Peers     []BGPPeer `json:"peers"`
}

// BGPPeer is one router's session.
type BGPPeer struct {
	Address   string    `json:"address"`
	ASN       uint32    `json:"asn"`
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

func bgpReport(s bgp.Snapshot) *BGPReport {
	r := &BGPReport{Prefix: s.Prefix.String(), NextHop: s.NextHop.String(), Announced: s.Announced, Reason: string(s.Reason),
		Detail: s.Detail, Since: s.Since, LastError: s.LastError}
	for _, p := range s.Peers {
		r.Peers = append(r.Peers, BGPPeer{Address: p.Address.String(), ASN: p.ASN, State: string(p.State), Since: p.Since, LastError: p.LastError})
	}
	return r
}

// ServiceReport is one virtual service.
type ServiceReport struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	InKernel bool   `json:"in_kernel"`
	// Scheduler and Persistence are the kernel's; the file's differ only
	// when Drift says so.
	Scheduler   string         `json:"scheduler,omitempty"`
	Persistence uint32         `json:"persistence_s,omitempty"`
	Stats       *ipvsctl.Stats `json:"stats,omitempty"`
	// Drift lists, in ipvsadm syntax, the operations that would bring the
	// kernel to what the file, the checks and maintenance want: what a
	// resync of the running director, or `director apply` when none runs,
	// would do.
	Drift []string `json:"drift,omitempty"`
	// Quorum is how many real servers must serve (healthy and not in
	// maintenance); Serving is how many do, unknown (nil) when no director
	// runs.
	Quorum     int  `json:"quorum"`
	Serving    *int `json:"serving,omitempty"`
	QuorumLost bool `json:"quorum_lost"`
	// Sorry is the sorry server; nil when the service has none.
	Sorry       *SorryReport    `json:"sorry_server,omitempty"`
	RealServers []ServerReport  `json:"real_servers"`
	Foreign     []ForeignServer `json:"not_in_file,omitempty"`
}

// SorryReport is a service's sorry server: the director puts it in when
// the service is below its quorum; InKernel and Weight are the kernel's.
type SorryReport struct {
	Address  string `json:"address"`
	Wanted   bool   `json:"wanted"`
	InKernel bool   `json:"in_kernel"`
	Weight   uint16 `json:"weight"`
}

// Why a real server takes no new clients, as OutReason.Reason says it.
const (
	OutMaintenance = "maintenance"
	OutCheckDown   = "check_down"
	OutNotChecked  = "not_yet_checked"
	OutBelowQuorum = "below_quorum"
	OutFileWeight  = "file_weight_0"
	OutLeaving     = "leaving"
	OutNoDirector  = "no_director"
	OutDrift       = "drift"
)

// OutReason is one reason why a real server is at weight 0 or out of the
// kernel; Detail is the check's last error for check_down.
type OutReason struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// ServerReport is one real server of a service.
type ServerReport struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	InKernel bool   `json:"in_kernel"`
	// Forwarding and Weight are the kernel's; FileWeight is the file's.
	Forwarding string         `json:"forwarding,omitempty"`
	Weight     uint16         `json:"weight"`
	FileWeight uint16         `json:"file_weight"`
	Stats      *ipvsctl.Stats `json:"stats,omitempty"`
	// Maintenance is set by `director drain`.
	Maintenance bool `json:"maintenance"`
	// Health sums up the checks: up, down, unknown or not checked.
	Health    string        `json:"health"`
	Since     time.Time     `json:"since,omitzero"`
	LastError string        `json:"last_error,omitempty"`
	Checks    []CheckStatus `json:"checks,omitempty"`
	// Out says why the server takes no new clients (weight 0 or not in
	// the kernel); empty when it takes them.
	Out []OutReason `json:"out,omitempty"`
}

// ForeignServer is a destination the kernel has in a declared service but
// the file does not list: a server on its way out, or one added by hand.
type ForeignServer struct {
	Address    string `json:"address"`
	Forwarding string `json:"forwarding"`
	Weight     uint16 `json:"weight"`
	// Leaving is set when the running director drains it (a real server
	// removed by a reload) and will delete it.
	Leaving bool `json:"leaving,omitempty"`
}

// BuildReport joins the topology, the kernel's table, the check states of
// the running director (nil when none runs) and the real servers in
// maintenance.
func BuildReport(topo *topology.Topology, kernel ipvsctl.Table, checks []CheckStatus, maintenance map[string]bool, now time.Time) Report {
	return buildReport(topo, kernel, checks, maintenance, nil, now)
}

// OfflineReport reports from the file and the kernel when no director
// runs: health is unknown, maintenance is what the state file records.
func OfflineReport(k ipvsctl.Kernel, state StateFile, topo *topology.Topology, now time.Time) (Report, error) {
	table, err := ipvsctl.Read(k, declaredKeys(topo))
	if err != nil {
		return Report{}, err
	}
	st, err := state.Load()
	if err != nil {
		return Report{}, err
	}
	return BuildReport(topo, table, nil, st.maintenance(), now), nil
}

// buildReport is BuildReport that knows which real servers the director
// drains out (leaving): their deletion is scheduled, not drift. It is
// linear in the services, real servers and operations.
func buildReport(topo *topology.Topology, kernel ipvsctl.Table, checks []CheckStatus, maintenance map[string]bool, leaving leavingSet, now time.Time) Report {
	byKey := make(map[healthcheck.Key]CheckStatus, len(checks))
	for _, c := range checks {
		byKey[c.Key] = c
	}
	r := Report{Time: now, VIP: topo.VIP.String(), DirectorRunning: checks != nil}
	health := Health(allHealthy)
	if checks != nil {
		health = reportedHealth(topo, byKey)
	}
	drift := map[ipvsctl.ServiceKey][]string{}
	for _, op := range ipvsctl.Diff(desiredTable(topo, health, maintenance), kernel, nil) {
		if op.Kind == ipvsctl.DeleteDestination && leaving.has(op.Service.Key, op.Destination) {
			continue
		}
		drift[op.Service.Key] = append(drift[op.Service.Key], op.String())
	}
	// One pair of maps for every service, cleared between them: a status
	// of 10,000 real servers would otherwise allocate two per service.
	r.Services = make([]ServiceReport, 0, len(topo.Services))
	listed := map[netip.Addr]bool{}
	inService := map[netip.AddrPort]ipvsctl.Destination{}
	for _, s := range topo.Services {
		key := serviceKey(topo, s)
		vs, inKernel := kernel.Find(key)
		sr := ServiceReport{Name: s.Name, Protocol: string(s.Protocol), Address: netip.AddrPortFrom(key.Address, key.Port).String(), InKernel: inKernel, Drift: drift[key]}
		if inKernel {
			sr.Scheduler, sr.Persistence, sr.Stats = vs.Service.Scheduler, vs.Service.Persistence, vs.Service.Stats
		}
		members := topo.Members(s)
		sr.RealServers = make([]ServerReport, 0, len(members))
		clear(listed)
		clear(inService)
		for _, d := range vs.Destinations {
			inService[d.Endpoint()] = d
		}
		running := checks != nil
		sr.Quorum = s.Quorum
		sorryIn := false
		if running {
			n := serving(s, health, maintenance)
			sr.Serving, sr.QuorumLost = &n, n < s.Quorum
			sorryIn = sr.QuorumLost && s.SorryServer != nil
		}
		for _, rs := range members {
			listed[rs.Address] = true
			srv := serverReport(s, rs, inService, byKey, maintenance[rs.Name], running)
			srv.Out = outReasons(srv, rs, health(s.Name, rs.Name), sorryIn, running)
			sr.RealServers = append(sr.RealServers, srv)
		}
		if ss := s.SorryServer; ss != nil {
			listed[ss.Address] = true
			ep := netip.AddrPortFrom(ss.Address, ss.Port)
			sr.Sorry = &SorryReport{Address: ep.String(), Wanted: sorryIn}
			if d, ok := inService[ep]; ok {
				sr.Sorry.InKernel, sr.Sorry.Weight = true, d.Weight
			}
		}
		for _, d := range vs.Destinations {
			if !listed[d.Address] {
				sr.Foreign = append(sr.Foreign, ForeignServer{Address: d.Endpoint().String(), Forwarding: string(d.Forwarding), Weight: d.Weight, Leaving: leaving.has(key, d)})
			}
		}
		r.Services = append(r.Services, sr)
	}
	return r
}

// outReasons says why a real server takes no new clients, every reason
// that holds, or nil when it takes them. healthy is the director's
// verdict, sorryIn whether its service's sorry server stands in.
func outReasons(r ServerReport, rs topology.RealServer, healthy, sorryIn, running bool) []OutReason {
	var out []OutReason
	if r.Maintenance {
		out = append(out, OutReason{Reason: OutMaintenance})
	}
	if running && !healthy {
		if strings.HasPrefix(r.Health, "down") {
			out = append(out, OutReason{Reason: OutCheckDown, Detail: r.LastError})
		} else {
			out = append(out, OutReason{Reason: OutNotChecked})
		}
	}
	if sorryIn && healthy && !r.Maintenance {
		out = append(out, OutReason{Reason: OutBelowQuorum})
	}
	if rs.Weight == 0 {
		out = append(out, OutReason{Reason: OutFileWeight})
	}
	if len(out) == 0 && (!r.InKernel || r.Weight == 0) {
		// The kernel disagrees with every reason the director has.
		if running {
			out = append(out, OutReason{Reason: OutDrift})
		} else {
			out = append(out, OutReason{Reason: OutNoDirector})
		}
	}
	return out
}

// reportedHealth is the director's view of health rebuilt from its check
// states: a real server passes when every check of it is up.
func reportedHealth(topo *topology.Topology, byKey map[healthcheck.Key]CheckStatus) Health {
	// The failing servers are found once, from the few checks not up: the
	// report asks up to three times per real server, 30,000 questions at
	// 10,000 real servers. A check the director reports and the topology
	// does not have (the file changed since) is no evidence against the
	// server; one the director does not report neither.
	failing := map[[2]string]bool{}
	for key, st := range byKey {
		if st.State == "up" {
			continue
		}
		s, ok := topo.ServiceByName(key.Service)
		if !ok {
			continue
		}
		for _, c := range s.ChecksOf(key.RealServer) {
			if CheckKey(key.Service, key.RealServer, c.Name) == key {
				failing[[2]string{key.Service, key.RealServer}] = true
				break
			}
		}
	}
	return func(service, realServer string) bool {
		return !failing[[2]string{service, realServer}]
	}
}

func serverReport(s topology.Service, rs topology.RealServer, inService map[netip.AddrPort]ipvsctl.Destination, byKey map[healthcheck.Key]CheckStatus, drained, running bool) ServerReport {
	ep := netip.AddrPortFrom(rs.Address, s.Port)
	r := ServerReport{Name: rs.Name, Address: ep.String(), FileWeight: rs.Weight, Maintenance: drained, Health: "not checked"}
	if d, ok := inService[ep]; ok {
		r.InKernel, r.Forwarding, r.Weight, r.Stats = true, string(d.Forwarding), d.Weight, d.Stats
	}
	checks := s.ChecksOf(rs.Name)
	if len(checks) > 0 {
		r.Health = "unknown"
		if running {
			for _, c := range checks {
				if st, ok := byKey[CheckKey(s.Name, rs.Name, c.Name)]; ok {
					r.Checks = append(r.Checks, st)
				}
			}
			r.Health, r.Since, r.LastError = joinChecks(checks, r.Checks)
		}
	}
	return r
}

// joinChecks sums up the checks of one real server: down if any is down
// (naming it when there are several), up if all are up, unknown otherwise;
// since the latest change that made it so.
func joinChecks(checks []topology.Check, states []CheckStatus) (health string, since time.Time, lastErr string) {
	if len(states) < len(checks) {
		return "unknown", time.Time{}, ""
	}
	var down *CheckStatus
	up := 0
	for i := range states {
		st := &states[i]
		if st.Since.After(since) {
			since = st.Since
		}
		switch st.State {
		case "up":
			up++
		case "down":
			if down == nil || st.Since.After(down.Since) {
				down = st
			}
		}
	}
	switch {
	case down != nil:
		health, since, lastErr = "down", down.Since, down.LastError
		if len(checks) > 1 {
			name := down.Key.Check
			health, lastErr = "down ("+name+")", name+": "+lastErr
		}
	case up == len(checks):
		health = "up"
	default:
		health = "unknown"
	}
	return health, since, lastErr
}

// errStarting answers a status request that comes before the director has
// a topology in force.
var errStarting = errors.New("the director is starting")

// report is the running director's own status: the topology in force,
// which may be newer or older than the file on disk, its maintenance set
// and the servers it drains out, from the loop's last published view.
func (d *Director) report(checks *healthcheck.Manager) (Report, error) {
	v := d.view.Load()
	if v == nil {
		return Report{}, errStarting
	}
	table, err := ipvsctl.Read(d.Kernel, declaredKeys(v.topo))
	if err != nil {
		return Report{}, err
	}
	r := buildReport(v.topo, table, checkStatuses(checks), v.drained, v.leaving, d.Clock.Now())
	r.VIPHeld = v.vip.Held()
	r.CheckLag = checks.Lag()
	if lr := v.lastReload; lr != nil {
		r.LastReload = &ReloadReport{Time: lr.Time, OK: lr.OK, Error: lr.Error, Duration: lr.Duration}
	}
	r.File = compareFile(v.topo)
	if st, ok := d.HAStatus(); ok {
		r.HA = haReport(st)
	}
	if st, ok := d.BGPStatus(); ok {
		r.BGP = bgpReport(st)
	}
	return r, nil
}

// compareFile reads the file the topology in force came from and says
// whether it still parses into that topology. The verdict is kept for as
// long as neither the file's bytes nor the topology in force change, so
// that `director status --watch` does not parse a large file every time.
func compareFile(inForce *topology.Topology) *FileReport {
	if inForce.File == "" {
		// Built in memory (tests): there is no file to compare.
		return nil
	}
	r := &FileReport{Path: inForce.File}
	data, err := os.ReadFile(inForce.File)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	sum := sha256.Sum256(data)
	if sum == inForce.Digest {
		// The very bytes in force: nothing to parse (a large file
		// costs seconds to parse on a small machine), but the files
		// it names on this host may have changed since.
		if err := inForce.CheckDirectorHost(); err != nil {
			r.Error = err.Error()
		} else {
			r.Valid, r.InForce = true, true
		}
		return r
	}
	fileVerdicts.Lock()
	defer fileVerdicts.Unlock()
	if fileVerdicts.topo == inForce && fileVerdicts.sum == sum {
		v := fileVerdicts.verdict
		return &v
	}
	onDisk, err := topology.Parse(inForce.File, data)
	if err == nil {
		err = onDisk.CheckDirectorHost()
	}
	if err != nil {
		r.Error = err.Error()
	} else {
		r.Valid = true
		r.InForce = bytes.Equal(fingerprint(onDisk), fingerprint(inForce))
	}
	fileVerdicts.topo, fileVerdicts.sum, fileVerdicts.verdict = inForce, sum, *r
	return r
}

// fileVerdicts caches compareFile's last verdict.
var fileVerdicts struct {
	sync.Mutex
	topo    *topology.Topology
	sum     [sha256.Size]byte
	verdict FileReport
}

// fingerprint is a topology's settings as bytes that two topologies share
// when they program the same director: comments, spacing and key order in
// the file make no difference.
func fingerprint(t *topology.Topology) []byte {
	b, err := json.Marshal(t)
	if err != nil {
		// Every field of a Topology encodes; a failure is an unknown
		// difference, never a false "in force".
		return []byte(err.Error())
	}
	return b
}

// ProbeOptions says how `director check` probes a real server.
type ProbeOptions struct {
	// Services limits the probes to these services; all of the real
	// server's when empty.
	Services []string
	// ThroughVIP allows the checks through the VIP, sent from Source: their
	// packets reach the real server only through the firewall-mark
	// services of a running director. Without it they are skipped.
	ThroughVIP bool
	Source     netip.Addr
	// NewProber makes the probes; the director's own (NewProber) in
	// production.
	NewProber func(ProbeTarget, topology.Check) healthcheck.Prober
}

// ProbeResult is one check of one real server in one service, probed once.
type ProbeResult struct {
	Service string `json:"service"`
	Check   string `json:"check"`
	Type    string `json:"type"`
	Target  string `json:"target"`
	// Result is ok, failed, skipped (a check through the VIP without a
	// running director) or not checked (type none).
	Result  string        `json:"result"`
	Latency time.Duration `json:"latency_ns"`
	Error   string        `json:"error,omitempty"`
}

// Probe results.
const (
	ProbeOK         = "ok"
	ProbeFailed     = "failed"
	ProbeSkipped    = "skipped"
	ProbeNotChecked = "not checked"
)

// ProbeNode probes the real server node now, once per check that the
// topology gives it in each of its services (or those of opts.Services),
// with the probes the director uses and each check's connect_timeout. It
// probes nothing the file does not name. The probes run side by side; the
// results come in file order.
func ProbeNode(ctx context.Context, topo *topology.Topology, node string, opts ProbeOptions) ([]ProbeResult, error) {
	rs, ok := topo.RealServerByName(node)
	if !ok {
		names := make([]string, 0, len(topo.RealServers))
		for _, r := range topo.RealServers {
			names = append(names, r.Name)
		}
		return nil, knownNames("real server", []string{node}, names)
	}
	var serviceNames []string
	for _, s := range topo.Services {
		serviceNames = append(serviceNames, s.Name)
	}
	if err := knownNames("service", opts.Services, serviceNames); err != nil {
		return nil, err
	}
	type probe struct {
		prober  healthcheck.Prober
		timeout time.Duration
	}
	var results []ProbeResult
	var probes []probe
	for _, s := range topo.Services {
		if len(opts.Services) > 0 && !slices.Contains(opts.Services, s.Name) || !slices.Contains(s.RealServers, node) {
			continue
		}
		for _, c := range s.ChecksOf(node) {
			target := ProbeTarget{Address: netip.AddrPortFrom(rs.Address, c.Port)}
			r := ProbeResult{Service: s.Name, Check: c.Name, Type: string(c.Type), Target: target.Address.String()}
			var p probe
			switch {
			case c.Type == topology.CheckNone:
				r.Result = ProbeNotChecked
			case c.ThroughVIP && !opts.ThroughVIP:
				r.Result, r.Target = ProbeSkipped, "through the VIP"
				r.Error = "a check through the VIP reaches the real server only through a running director's firewall-mark service"
			default:
				if c.ThroughVIP {
					mark, _ := topo.CheckMark(node)
					target = ProbeTarget{Address: netip.AddrPortFrom(topo.VIP, c.Port), Mark: mark, Source: opts.Source}
					r.Target = fmt.Sprintf("%s through the VIP (mark %#x)", target.Address, mark)
				}
				p = probe{opts.NewProber(target, c), c.ConnectTimeout}
			}
			results = append(results, r)
			probes = append(probes, p)
		}
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("real server %q is in none of the services named", node)
	}
	var wg sync.WaitGroup
	for i, p := range probes {
		if p.prober == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			// The wall clock: this times the network, as the checker does.
			began := time.Now()
			err := p.prober.Probe(ctx)
			results[i].Latency = time.Since(began)
			results[i].Result = ProbeOK
			if err != nil {
				results[i].Result, results[i].Error = ProbeFailed, err.Error()
			}
		})
	}
	wg.Wait()
	return results, nil
}

// ProbesFailed counts the failed probes among results.
func ProbesFailed(results []ProbeResult) int {
	n := 0
	for _, r := range results {
		if r.Result == ProbeFailed {
			n++
		}
	}
	return n
}
