// Package topology is the YAML schema of an lvsdr deployment: one VIP, the
// services it carries, the real servers behind it, and how each is checked.
// Load decodes a file strictly and validates it, so that every other package
// can trust a *Topology without checking it again.
package topology

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Protocol is the transport protocol of a virtual service.
type Protocol string

// Protocols a virtual service can carry.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Forwarding is the IPVS packet-forwarding method towards a real server.
type Forwarding string

// Forwarding methods, named as keepalived's lb_kind.
const (
	DirectRouting Forwarding = "dr"
	NAT           Forwarding = "nat"
	Tunnel        Forwarding = "tunnel"
)

// OnFailure says what happens to a real server whose check fails.
type OnFailure string

// Failure actions: remove deletes the destination, drain sets its weight to 0
// (keepalived's inhibit_on_failure) so established connections live on.
const (
	Remove OnFailure = "remove"
	Drain  OnFailure = "drain"
)

// CheckType names a health-check probe.
type CheckType string

// Check types.
const (
	CheckTCP  CheckType = "tcp"
	CheckHTTP CheckType = "http"
	CheckAMQP CheckType = "amqp"
	CheckNone CheckType = "none"
)

// Schedulers lists the IPVS schedulers of the Linux kernel, in the order the
// kernel documents them.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"}

// Topology is a validated deployment.
type Topology struct {
	// File is the path the topology was loaded from, for messages.
	File string
	// Digest is the SHA-256 of the bytes it was parsed from: a file whose
	// bytes have this digest needs no parse to be known in force.
	Digest [sha256.Size]byte `json:"-"`
	// Warnings are settings the file may give but likely does not mean,
	// as FILE:LINE problems whose message starts "warning:".
	Warnings []Problem `json:"-"`
	// VIP is the virtual address every service listens on.
	VIP         netip.Addr
	Director    Director
	Services    []Service
	RealServers []RealServer
	RealServer  RealServerHost

	// index serves the lookups by name; nil until Reindex.
	index *index
	// hostFiles are checked by CheckDirectorHost.
	hostFiles []hostFile
}

// Director holds the settings of the balancer hosts.
type Director struct {
	// Interface is the NIC that carries the VIP on the director.
	Interface string
	// ResyncInterval is how often the kernel is compared with the desired
	// state to repair drift made by hand or by another program.
	ResyncInterval time.Duration
	// DrainTimeout bounds how long a real server removed from the file is
	// kept at weight 0 for its connections to end before it is deleted.
	DrainTimeout time.Duration
	// CheckMarkBase is where the firewall marks of the checks through the
	// VIP start: real server i is probed with mark CheckMarkBase+i+1.
	CheckMarkBase uint32
	// Notify is the hook run on every state change; nil for none.
	Notify *Notify
	// MetricsAddress is where /metrics and /healthz are served; the zero
	// value when off.
	MetricsAddress netip.AddrPort
	// HA is VRRP between the directors; nil for a standalone director.
	HA *HA
	// BGP announces the VIP from every director; nil for none. Never set
	// together with HA.
	BGP *BGP
}

// Notify is a command run, without a shell, on every check and quorum state
// change, with what changed in its environment.
type Notify struct {
	// Command is the argv; Command[0] is an absolute path.
	Command []string
	// Timeout bounds one run; the hook is killed when it passes.
	Timeout time.Duration
}

// RealServerHost holds the settings of the real-server agent.
type RealServerHost struct {
	// Interface is the NIC whose ARP replies for the VIP are suppressed.
	Interface string
}

// Service is one virtual service: the VIP on one port.
type Service struct {
	Name      string
	Port      uint16
	Protocol  Protocol
	Scheduler string
	// SchedulerFlags are the flags of the sh and mh schedulers, as ipvsadm
	// names them (mh-port, mh-fallback, sh-port, sh-fallback).
	SchedulerFlags     []string
	Forwarding         Forwarding
	PersistenceTimeout time.Duration
	OnFailure          OnFailure
	// Checks must all pass for a real server to get clients; none means the
	// service is not checked and every real server is in.
	Checks []Check
	// Overrides holds the checks of real servers that override some check
	// settings for this service, by real server name.
	Overrides map[string][]Check
	// Quorum is how many real servers must be healthy; below it the sorry
	// server, if any, takes new clients.
	Quorum int
	// SorryServer stands in when fewer than Quorum real servers are
	// healthy; nil for none.
	SorryServer *SorryServer
	// RealServers names the real servers of this service, in file order;
	// all of them unless the service lists a subset.
	RealServers []string
	// Weights are the weights this service gives some of its real servers
	// instead of their own (keepalived's weight per virtual_server), by
	// name; nil when none.
	Weights map[string]uint16
}

// SorryServer is keepalived's sorry_server: where new clients go when the
// service has lost its quorum.
type SorryServer struct {
	Address netip.Addr
	Port    uint16
}

// ChecksOf returns the checks of one real server of the service: the
// service's, or the real server's overrides of them.
func (s Service) ChecksOf(realServer string) []Check {
	if c, ok := s.Overrides[realServer]; ok {
		return c
	}
	return s.Checks
}

// Check configures the health check of every real server of a service, with
// keepalived's TCP_CHECK semantics plus rise.
type Check struct {
	// Name tells the checks of one service apart; it defaults to the type.
	Name string
	Type CheckType
	// ThroughVIP probes the real server at the VIP, routed to it by IPVS,
	// so that a node that would drop VIP traffic (its loopback VIP gone)
	// fails the check (dr forwarding only).
	ThroughVIP bool
	// Port is the port probed; the service port unless set (connect_port).
	Port uint16
	// Interval is the time between two checks (keepalived's delay_loop).
	Interval time.Duration
	// ConnectTimeout bounds one probe.
	ConnectTimeout time.Duration
	// Retry is how many times a failed probe is retried before the server is
	// marked down.
	Retry int
	// DelayBeforeRetry is the pause before each retry.
	DelayBeforeRetry time.Duration
	// Rise is how many consecutive successes bring a down server back.
	Rise int
	// HTTP holds the settings of an http check; nil for other types.
	HTTP *HTTPCheck
	// AMQP holds the settings of an amqp check; nil for other types.
	AMQP *AMQPCheck
}

// HTTPCheck is a GET against each real server (keepalived's HTTP_GET and
// SSL_GET).
type HTTPCheck struct {
	Scheme string // http or https
	Path   string
	// ExpectStatus lists the passing status codes.
	ExpectStatus []int
	BodyContains string
	Headers      map[string]string
	Username     string
	// PasswordFile holds the basic-auth password; it is never in the YAML.
	PasswordFile          string
	TLSInsecureSkipVerify bool
	TLSServerName         string
	TLSCAFile             string
}

// AMQPCheck is an AMQP 0-9-1 handshake with each real server: the protocol
// header answered by Connection.Start, or with a username a full open of the
// vhost.
type AMQPCheck struct {
	Username     string
	PasswordFile string
	VHost        string
}

// RealServer is one backend node.
type RealServer struct {
	Name    string
	Address netip.Addr
	// Weight is the scheduler weight, 0 to 65535; 0 keeps the server in the
	// table without sending it new connections.
	Weight uint16
}

// DetectionBound is the longest time a server can keep passing traffic after
// it stops answering: a full interval before the check that first fails,
// then the failing probe and every retry each running to the connect
// timeout, with the delays between them.
func (c Check) DetectionBound() time.Duration {
	if c.Type == CheckNone {
		return 0
	}
	attempts := time.Duration(c.Retry + 1)
	return c.Interval + attempts*c.ConnectTimeout + time.Duration(c.Retry)*c.DelayBeforeRetry
}

// CheckMark returns the firewall mark that routes the checks through the
// VIP to the real server named name, and false if no check of it goes
// through the VIP.
func (t *Topology) CheckMark(name string) (uint32, bool) {
	ix := t.currentIndex()
	if ix == nil {
		return t.checkMarkScan(name)
	}
	i, ok := ix.realServers[name]
	if !ok || !ix.throughVIP[name] {
		return 0, false
	}
	return t.Director.CheckMarkBase + uint32(i) + 1, true
}

// checkMarkScan is CheckMark without an index, for topologies built by hand.
func (t *Topology) checkMarkScan(name string) (uint32, bool) {
	for i, rs := range t.RealServers {
		if rs.Name != name {
			continue
		}
		for _, s := range t.Services {
			if !slices.Contains(s.RealServers, name) {
				continue
			}
			if slices.ContainsFunc(s.ChecksOf(name), func(c Check) bool { return c.ThroughVIP }) {
				return t.Director.CheckMarkBase + uint32(i) + 1, true
			}
		}
		return 0, false
	}
	return 0, false
}

// RealServerByName returns the real server named name.
func (t *Topology) RealServerByName(name string) (RealServer, bool) {
	if ix := t.currentIndex(); ix != nil {
		if i, ok := ix.realServers[name]; ok {
			return t.RealServers[i], true
		}
		return RealServer{}, false
	}
	for _, rs := range t.RealServers {
		if rs.Name == name {
			return rs, true
		}
	}
	return RealServer{}, false
}

// ServiceByName returns the service named name.
func (t *Topology) ServiceByName(name string) (Service, bool) {
	if ix := t.currentIndex(); ix != nil {
		if i, ok := ix.services[name]; ok {
			return t.Services[i], true
		}
		return Service{}, false
	}
	for _, s := range t.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Members returns the real servers of a service, in file order, each with
// the weight the service gives it.
func (t *Topology) Members(s Service) []RealServer {
	members := make([]RealServer, 0, len(s.RealServers))
	for _, name := range s.RealServers {
		if rs, ok := t.RealServerByName(name); ok {
			if w, ok := s.Weights[name]; ok {
				rs.Weight = w
			}
			members = append(members, rs)
		}
	}
	return members
}

// index holds the lookups by name, so that code running once per real
// server (the desired table, status, metrics) stays linear in the size of
// the file: at 10,000 real servers a scan per lookup costs seconds.
type index struct {
	// realServers and services map a name to its first position.
	realServers map[string]int
	services    map[string]int
	// throughVIP holds the real servers that some service checks through
	// the VIP.
	throughVIP map[string]bool
	// The slices the index was built from: a Topology whose slices were
	// replaced or resized since falls back to scans rather than answering
	// from a stale index.
	realServersHead *RealServer
	realServersLen  int
	servicesHead    *Service
	servicesLen     int
}

// Reindex builds the maps the lookups by name use. Parse calls it; code
// that builds a Topology by hand, or edits a parsed one in place (a
// service's real servers or checks), calls it after its last edit. Without
// it the lookups scan, with the same results.
func (t *Topology) Reindex() {
	ix := &index{
		realServers:    make(map[string]int, len(t.RealServers)),
		services:       make(map[string]int, len(t.Services)),
		throughVIP:     map[string]bool{},
		realServersLen: len(t.RealServers),
		servicesLen:    len(t.Services),
	}
	if len(t.RealServers) > 0 {
		ix.realServersHead = &t.RealServers[0]
	}
	if len(t.Services) > 0 {
		ix.servicesHead = &t.Services[0]
	}
	for i, rs := range t.RealServers {
		if _, dup := ix.realServers[rs.Name]; !dup {
			ix.realServers[rs.Name] = i
		}
	}
	for i, s := range t.Services {
		if _, dup := ix.services[s.Name]; !dup {
			ix.services[s.Name] = i
		}
		for _, name := range s.RealServers {
			if slices.ContainsFunc(s.ChecksOf(name), func(c Check) bool { return c.ThroughVIP }) {
				ix.throughVIP[name] = true
			}
		}
	}
	t.index = ix
}

// currentIndex returns the index if it was built from the slices t holds
// now, or nil.
func (t *Topology) currentIndex() *index {
	ix := t.index
	if ix == nil || len(t.RealServers) != ix.realServersLen || len(t.Services) != ix.servicesLen {
		return nil
	}
	if len(t.RealServers) > 0 && &t.RealServers[0] != ix.realServersHead {
		return nil
	}
	if len(t.Services) > 0 && &t.Services[0] != ix.servicesHead {
		return nil
	}
	return ix
}

// String names a service as an operator reads it in ipvsadm: "amqp tcp/5672".
func (s Service) String() string {
	return fmt.Sprintf("%s (%s/%d)", s.Name, s.Protocol, s.Port)
}
