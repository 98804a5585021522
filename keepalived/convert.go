package keepalived

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

// keepalived's defaults where they differ from lvsdr's, from its sources
// (check_data.c, check_api.c, check_http.c, ipvswrapper.h, libipvs.h).
const (
	keepalivedDelayLoop          = 60 * time.Second
	keepalivedScheduler          = "wlc"
	keepalivedForwarding         = "nat"
	keepalivedHTTPDelayBefore    = 3 * time.Second
	keepalivedPersistenceDefault = 360 // seconds, persistence_timeout without a value
)

// placeholderInterface is written where keepalived.conf does not say which
// NIC to use; a warning asks the operator to check it.
const placeholderInterface = "eth0"

// Result is a conversion: the YAML topology and what did not carry over.
type Result struct {
	YAML []byte
	// Warnings are in line order; their lines are lines of keepalived.conf.
	Warnings []Warning
	// Problems are what topology.Parse finds wrong in YAML; their lines are
	// lines of YAML. The conversion writes what keepalived.conf says even
	// when lvsdr refuses it (a RabbitMQ path that cannot judge one node, an
	// unknown scheduler), so that the operator sees why.
	Problems []topology.Problem
}

type opt[T any] struct {
	v   T
	set bool
}

func some[T any](v T) opt[T] { return opt[T]{v: v, set: true} }

// or returns the value when set, else fallback.
func (o opt[T]) or(fallback opt[T]) opt[T] {
	if o.set {
		return o
	}
	return fallback
}

// inherited are the checker settings keepalived 2.x lets a virtual_server
// or a real_server give to the checkers below it; a checker's own value
// wins, then its real_server's, then its virtual_server's.
type inherited struct {
	delayLoop        opt[time.Duration]
	connectTimeout   opt[time.Duration]
	retry            opt[int]
	retryLine        int
	delayBeforeRetry opt[time.Duration]
	virtualhost      opt[string]
}

func (in inherited) under(parent inherited) inherited {
	out := inherited{
		delayLoop:        in.delayLoop.or(parent.delayLoop),
		connectTimeout:   in.connectTimeout.or(parent.connectTimeout),
		retry:            in.retry.or(parent.retry),
		retryLine:        in.retryLine,
		delayBeforeRetry: in.delayBeforeRetry.or(parent.delayBeforeRetry),
		virtualhost:      in.virtualhost.or(parent.virtualhost),
	}
	if !in.retry.set {
		out.retryLine = parent.retryLine
	}
	return out
}

// check is the resolved health check of one real server, in lvsdr's terms.
type check struct {
	typ              topology.CheckType
	port             int // 0: the service port
	interval         opt[time.Duration]
	connectTimeout   time.Duration
	retry            int
	delayBeforeRetry time.Duration
	scheme, path     string
	expectStatus     []int
	host             string
	tlsSkipVerify    bool
	tlsServerName    string
}

func (c *check) equal(o *check) bool {
	return c.typ == o.typ && c.port == o.port && c.interval == o.interval && c.connectTimeout == o.connectTimeout &&
		c.retry == o.retry && c.delayBeforeRetry == o.delayBeforeRetry && c.scheme == o.scheme && c.path == o.path &&
		slices.Equal(c.expectStatus, o.expectStatus) && c.host == o.host && c.tlsSkipVerify == o.tlsSkipVerify &&
		c.tlsServerName == o.tlsServerName
}

// checker is one TCP_CHECK, HTTP_GET or SSL_GET block, before inheritance.
type checker struct {
	kind          string
	line          int
	own           inherited
	port          opt[int]
	nbGetRetry    opt[int]
	nbGetLine     int
	path          opt[string]
	expectStatus  []int
	host          opt[string]
	tlsServerName string
}

type service struct {
	line        int
	name        string
	port        int
	protocol    string
	scheduler   string
	forwarding  string
	persistence opt[int]
	// extra are the checks after the first, when real servers have several.
	extra     []*check
	quorum    opt[int]
	sorry     *sorryServer
	onFailure topology.OnFailure
	members   []*realServer
	check     *check
	// checkedBy is the line of the checker the service check comes from.
	checkedBy int
}

type sorryServer struct {
	addr netip.Addr
	port int
}

// sorryServer reads keepalived's `sorry_server IP PORT`.
func (c *converter) sorryServer(k *Node, s *service) {
	if len(k.Args) < 2 {
		c.warnf(k.Line, "sorry_server needs an address and a port: not carried")
		return
	}
	c.extraArgs(k, 2)
	addr, err := netip.ParseAddr(k.Args[0])
	port, perr := strconv.Atoi(k.Args[1])
	if err != nil || perr != nil || port < 1 || port > 65535 {
		c.warnf(k.Line, "sorry_server %s %s is not an address and a port: not carried", k.Args[0], k.Args[1])
		return
	}
	s.sorry = &sorryServer{addr: addr.Unmap(), port: port}
}

type realServer struct {
	name    string
	addr    netip.Addr
	weight  int
	line    int
	service string // the first service that declared it, for messages
	// overrides are the check settings of this real server that differ
	// from its services' checks, by service name.
	overrides []override
}

type override struct {
	service string
	pairs   []any
}

// candidate is a real_server block of a virtual_server with its checks.
type candidate struct {
	rs      *realServer
	line    int
	checks  []*check
	lines   []int
	unknown []string
}

type converter struct {
	file     string
	warnings []Warning

	vip     netip.Addr
	vipLine int

	vrrpInterface string
	vrrpLine      int
	vrrpName      string
	vrrpAddresses []string

	services []*service
	servers  []*realServer
	byAddr   map[netip.Addr]*realServer
}

func (c *converter) warnf(line int, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Line: line, Message: fmt.Sprintf(format, args...)})
}

func (c *converter) errorf(line int, format string, args ...any) error {
	return &Error{File: c.file, Line: line, Message: fmt.Sprintf(format, args...)}
}

// notCarried warns about a keyword lvsdr has no place for.
func (c *converter) notCarried(n *Node, where string) {
	what := n.Keyword
	if n.HasBlock {
		what += " block"
	}
	c.warnf(n.Line, "%s in %s not carried: lvsdr has no equivalent", what, where)
}

// Convert turns keepalived.conf, read from file, into an lvsdr topology. The
// Result holds the warnings even when an error stops the conversion.
func Convert(file string, data []byte) (*Result, error) {
	nodes, warnings, err := Parse(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = file
		}
		return &Result{}, err
	}
	c := &converter{file: file, warnings: warnings, byAddr: map[netip.Addr]*realServer{}}
	res := &Result{}
	err = c.convert(nodes)
	sort.SliceStable(c.warnings, func(i, j int) bool { return c.warnings[i].Line < c.warnings[j].Line })
	res.Warnings = c.warnings
	if err != nil {
		return res, err
	}
	res.YAML, err = c.render()
	if err != nil {
		return res, fmt.Errorf("%s: write the YAML topology: %w", file, err)
	}
	if _, err := topology.Parse(file, res.YAML); err != nil {
		var ve *topology.ValidationError
		if !errors.As(err, &ve) {
			return res, fmt.Errorf("%s: validate the converted topology: %w", file, err)
		}
		res.Problems = ve.Problems
	}
	return res, nil
}

func (c *converter) convert(nodes []*Node) error {
	for _, n := range nodes {
		switch n.Keyword {
		case "virtual_server":
			if err := c.virtualServer(n); err != nil {
				return err
			}
		case "vrrp_instance":
			c.vrrpInstance(n)
		default:
			if n.HasBlock {
				c.warnf(n.Line, "%s block skipped: lvsdr has no equivalent (it programs IPVS and checks real servers, nothing else)", strings.TrimSpace(n.Keyword+" "+strings.Join(n.Args, " ")))
			} else {
				c.warnf(n.Line, "%s not carried: lvsdr has no equivalent", n.Keyword)
			}
		}
	}
	if len(c.services) == 0 {
		return c.errorf(1, "no virtual_server IP PORT block to convert")
	}
	c.interfaces()
	return nil
}

// vrrpInstance keeps the interface and addresses of a VRRP instance: they
// say which NIC carries the VIP on the director.
func (c *converter) vrrpInstance(n *Node) {
	name := strings.Join(n.Args, " ")
	var iface string
	var addrs []string
	for _, k := range n.Block {
		switch k.Keyword {
		case "interface":
			if len(k.Args) > 0 {
				iface = k.Args[0]
			}
		case "virtual_ipaddress":
			for _, a := range k.Block {
				addrs = append(addrs, a.Keyword)
			}
		}
	}
	msg := fmt.Sprintf("vrrp_instance %s skipped: lvsdr does not run VRRP, so the VIP fails over only if something else (keepalived in VRRP-only mode, pacemaker) moves it", name)
	if iface != "" {
		msg += fmt.Sprintf("; its interface %s", iface)
		if c.vrrpInterface == "" {
			msg += " is carried as director.interface"
		} else if c.vrrpInterface != iface {
			msg += fmt.Sprintf(" is not carried: director.interface is %s, from vrrp_instance %s on line %d", c.vrrpInterface, c.vrrpName, c.vrrpLine)
		}
	}
	if len(addrs) > 0 {
		msg += fmt.Sprintf("; its virtual_ipaddress %s", strings.Join(addrs, ", "))
	}
	c.warnf(n.Line, "%s", msg)
	if iface != "" && c.vrrpInterface == "" {
		c.vrrpInterface, c.vrrpLine, c.vrrpName = iface, n.Line, name
	}
	c.vrrpAddresses = append(c.vrrpAddresses, addrs...)
}

// interfaces fills in what keepalived.conf's virtual_server blocks do not
// say: the NICs on the director and on the real servers.
func (c *converter) interfaces() {
	if c.vrrpInterface == "" {
		c.warnf(c.vipLine, "director.interface set to %s: keepalived.conf does not say which NIC carries the VIP %s on the director; check it", placeholderInterface, c.vip)
	}
	if len(c.vrrpAddresses) > 0 {
		found := false
		for _, a := range c.vrrpAddresses {
			// virtual_ipaddress entries read "192.168.0.100/24 dev eth0".
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr() == c.vip {
				found = true
			} else if addr, err := netip.ParseAddr(a); err == nil && addr == c.vip {
				found = true
			}
		}
		if !found {
			c.warnf(c.vrrpLine, "the VIP %s of the virtual_server blocks is not among the vrrp virtual_ipaddress entries (%s): check which address the director should carry", c.vip, strings.Join(c.vrrpAddresses, ", "))
		}
	}
	for _, s := range c.services {
		if s.forwarding == string(topology.DirectRouting) || s.forwarding == string(topology.Tunnel) {
			c.warnf(c.vipLine, "realserver.interface set to %s: with %s forwarding the real servers must not answer ARP for the VIP, and keepalived.conf does not say on which of their NICs; check it", placeholderInterface, s.forwarding)
			return
		}
	}
}

// seconds reads a keepalived timer: whole or decimal seconds.
func (c *converter) seconds(n *Node) (time.Duration, bool) {
	if len(n.Args) == 0 {
		c.warnf(n.Line, "%s has no value: not carried", n.Keyword)
		return 0, false
	}
	c.extraArgs(n, 1)
	f, err := strconv.ParseFloat(n.Args[0], 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > float64(math.MaxInt64/int64(time.Second)) {
		c.warnf(n.Line, "%s %s is not a number of seconds: not carried", n.Keyword, n.Args[0])
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Microsecond), true
}

// integer reads a whole-number argument between lo and hi.
func (c *converter) integer(n *Node, lo, hi int) (int, bool) {
	if len(n.Args) == 0 {
		c.warnf(n.Line, "%s has no value: not carried", n.Keyword)
		return 0, false
	}
	c.extraArgs(n, 1)
	v, err := strconv.Atoi(n.Args[0])
	if err != nil || v < lo || v > hi {
		c.warnf(n.Line, "%s %s is not a whole number from %d to %d: not carried", n.Keyword, n.Args[0], lo, hi)
		return 0, false
	}
	return v, true
}

// extraArgs warns about words after the ones a keyword takes: keepalived
// reads one keyword per statement, so "connect_timeout 3 retry 3" on one
// line sets no retry.
func (c *converter) extraArgs(n *Node, want int) {
	if len(n.Args) > want {
		c.warnf(n.Line, "%s: %q after its value ignored, as keepalived does (one keyword per line)", n.Keyword, strings.Join(n.Args[want:], " "))
	}
}

// inheritable reads a checker setting given at any of the three levels;
// it reports whether n was one.
func (c *converter) inheritable(n *Node, in *inherited) bool {
	switch n.Keyword {
	case "delay_loop":
		if d, ok := c.seconds(n); ok {
			if d == 0 {
				c.warnf(n.Line, "delay_loop 0 not carried: lvsdr needs an interval above zero")
			} else {
				in.delayLoop = some(d)
			}
		}
	case "connect_timeout":
		if d, ok := c.seconds(n); ok {
			if d == 0 {
				c.warnf(n.Line, "connect_timeout 0 not carried: lvsdr needs a timeout above zero")
			} else {
				in.connectTimeout = some(d)
			}
		}
	case "retry":
		if r, ok := c.integer(n, 0, 100); ok {
			in.retry, in.retryLine = some(r), n.Line
		}
	case "delay_before_retry":
		if d, ok := c.seconds(n); ok {
			in.delayBeforeRetry = some(d)
		}
	case "virtualhost":
		if len(n.Args) > 0 {
			c.extraArgs(n, 1)
			in.virtualhost = some(n.Args[0])
		}
	case "warmup":
		c.warnf(n.Line, "warmup not carried: lvsdr checks a server from its first interval")
	default:
		return false
	}
	return true
}

// quorumExtras are keepalived's quorum settings lvsdr has no key for.
var quorumExtras = map[string]string{
	"quorum_up":               "director.notify runs one hook on every change, with LVSDR_EVENT=quorum and LVSDR_STATE=regained",
	"quorum_down":             "director.notify runs one hook on every change, with LVSDR_EVENT=quorum and LVSDR_STATE=lost",
	"hysteresis":              "lvsdr has no quorum hysteresis",
	"sorry_server_inhibit":    "lvsdr's sorry server is added and deleted, never inhibited",
	"sorry_server_lvs_method": "lvsdr's sorry server uses the service's forwarding",
}

// unsupportedCheckers are keepalived checkers lvsdr has no probe for.
var unsupportedCheckers = []string{"MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"}

func (c *converter) virtualServer(n *Node) error {
	if len(n.Args) > 0 && (n.Args[0] == "fwmark" || n.Args[0] == "group") {
		c.warnf(n.Line, "virtual_server %s skipped: lvsdr has services on VIP:port only, no firewall marks or virtual_server_group", strings.Join(n.Args, " "))
		return nil
	}
	if len(n.Args) < 2 {
		c.warnf(n.Line, "virtual_server %s skipped: lvsdr needs an address and a port", strings.Join(n.Args, " "))
		return nil
	}
	c.extraArgs(n, 2)
	addr, err := netip.ParseAddr(n.Args[0])
	if err != nil {
		return c.errorf(n.Line, "virtual_server: %q is not an IP address", n.Args[0])
	}
	addr = addr.Unmap()
	port, err := strconv.Atoi(n.Args[1])
	if err != nil || port < 0 || port > 65535 {
		return c.errorf(n.Line, "virtual_server %s: %q is not a port", n.Args[0], n.Args[1])
	}
	if port == 0 {
		c.warnf(n.Line, "virtual_server %s 0 skipped: lvsdr has no all-ports service; declare each port", addr)
		return nil
	}
	if !c.vip.IsValid() {
		c.vip, c.vipLine = addr, n.Line
	} else if addr != c.vip {
		return c.errorf(n.Line, "virtual_server %s: lvsdr carries one VIP per topology, and line %d declared %s; split keepalived.conf by VIP and convert each part", addr, c.vipLine, c.vip)
	}

	s := &service{line: n.Line, port: port, protocol: string(topology.TCP), onFailure: topology.Remove}
	var vs inherited
	var rsNodes []*Node
	var schedSet, fwdSet bool
	for _, k := range n.Block {
		switch {
		case c.inheritable(k, &vs):
		case k.Keyword == "lb_algo" || k.Keyword == "lvs_sched":
			if len(k.Args) > 0 {
				c.extraArgs(k, 1)
				// Carried even when unknown: validation then says so.
				s.scheduler, schedSet = strings.ToLower(k.Args[0]), true
			}
		case k.Keyword == "lb_kind" || k.Keyword == "lvs_method":
			if f, ok := c.forwarding(k); ok {
				s.forwarding, fwdSet = f, true
			}
		case k.Keyword == "persistence_timeout":
			if len(k.Args) == 0 {
				// keepalived's pto_handler: no value means six minutes.
				s.persistence = some(keepalivedPersistenceDefault)
			} else if v, ok := c.integer(k, 0, math.MaxUint32); ok && v > 0 {
				s.persistence = some(v)
			}
		case k.Keyword == "protocol":
			if len(k.Args) == 0 {
				continue
			}
			c.extraArgs(k, 1)
			switch p := strings.ToLower(k.Args[0]); p {
			case "tcp", "udp":
				s.protocol = p
			default:
				c.warnf(k.Line, "virtual_server %s %d skipped: protocol %s is not supported by lvsdr (tcp, udp)", addr, port, k.Args[0])
				return nil
			}
		case k.Keyword == "inhibit_on_failure":
			s.onFailure = topology.Drain
		case k.Keyword == "real_server":
			rsNodes = append(rsNodes, k)
		case k.Keyword == "quorum":
			if v, ok := c.integer(k, 1, 1000000); ok {
				s.quorum = some(v)
				c.warnf(k.Line, "quorum %d carried as a count of healthy real servers: keepalived's quorum sums their weights", v)
			}
		case k.Keyword == "sorry_server":
			c.sorryServer(k, s)
		case quorumExtras[k.Keyword] != "":
			c.warnf(k.Line, "%s not carried: %s", k.Keyword, quorumExtras[k.Keyword])
		default:
			c.notCarried(k, "virtual_server")
		}
	}
	if !schedSet {
		s.scheduler = keepalivedScheduler
		c.warnf(n.Line, "virtual_server %s %d has no lb_algo: carried as keepalived's default %s (lvsdr's default is %s)", addr, port, keepalivedScheduler, topology.DefaultScheduler)
	}
	if !fwdSet {
		s.forwarding = keepalivedForwarding
		c.warnf(n.Line, "virtual_server %s %d has no lb_kind: carried as keepalived's default %s (lvsdr's default is dr)", addr, port, keepalivedForwarding)
	}
	s.name = c.serviceName(s)
	c.services = append(c.services, s)

	if len(rsNodes) == 0 {
		c.warnf(n.Line, "virtual_server %s %d has no real_server: the service gets every real server of the file", addr, port)
	}
	var cands []candidate
	drains := 0
	for _, rn := range rsNodes {
		rs, inh, checkers, unknown, drain, err := c.realServerBlock(rn, s)
		if err != nil {
			return err
		}
		if rs == nil {
			continue
		}
		if drain {
			drains++
		}
		cand := candidate{rs: rs, line: rn.Line, unknown: unknown}
		for _, ch := range checkers {
			cand.checks = append(cand.checks, c.resolve(ch, inh.under(vs)))
			cand.lines = append(cand.lines, ch.line)
		}
		cands = append(cands, cand)
	}
	if drains > 0 && drains < len(cands) && s.onFailure != topology.Drain {
		c.warnf(n.Line, "inhibit_on_failure is set on %d of the %d real servers of %s: lvsdr sets on_failure per service, so every real server is drained on failure", drains, len(cands), s.name)
	}
	if drains > 0 {
		s.onFailure = topology.Drain
	}

	// The service's checks are the first checked real server's (all must
	// pass, in keepalived as in lvsdr); another real server's that differ in
	// settings only become its check_overrides.
	var first *candidate
	for i := range cands {
		if len(cands[i].checks) > 0 {
			first = &cands[i]
			break
		}
	}
	anyUnknown := false
	for _, cand := range cands {
		anyUnknown = anyUnknown || len(cand.unknown) > 0
	}
	switch {
	case first != nil:
		s.check, s.checkedBy = first.checks[0], first.lines[0]
		s.extra = first.checks[1:]
		for _, cand := range cands {
			switch {
			case cand.rs == first.rs:
			case len(cand.checks) == 0 && len(cand.unknown) > 0:
				c.warnf(cand.line, "real_server %s has no checker lvsdr can run; lvsdr checks every real server of %s with the check of line %d", cand.rs.addr, s.name, s.checkedBy)
			case len(cand.checks) == 0:
				c.warnf(cand.line, "real_server %s has no checker, so keepalived keeps it in unchecked; lvsdr checks every real server of %s with the check of line %d", cand.rs.addr, s.name, s.checkedBy)
			default:
				c.overrides(s, first, cand.rs, cand.checks, cand.lines)
			}
		}
	case anyUnknown:
		// keepalived did check these servers, with a probe lvsdr lacks: a
		// connect to the service port is closer than no check at all.
		s.check = c.resolve(&checker{kind: "TCP_CHECK", line: n.Line}, vs)
		c.warnf(n.Line, "virtual_server %s %d: none of its checkers can be carried; lvsdr's tcp check of port %d is used instead", addr, port, port)
	default:
		// No checker: keepalived keeps every real server in.
		s.check = &check{typ: topology.CheckNone}
	}
	if s.check.typ != topology.CheckNone && !s.check.interval.set {
		c.warnf(n.Line, "virtual_server %s %d has no delay_loop: keepalived checks every %s by default, lvsdr every %s; lvsdr's is kept, set check.interval: %s to keep keepalived's pace", addr, port, formatDuration(keepalivedDelayLoop), formatDuration(topology.DefaultInterval), formatDuration(keepalivedDelayLoop))
	}
	return nil
}

// forwarding maps lb_kind to lvsdr's forwarding; values lvsdr lacks are
// carried lowercased so that validation names them.
func (c *converter) forwarding(k *Node) (string, bool) {
	if len(k.Args) == 0 {
		c.warnf(k.Line, "%s has no value: not carried", k.Keyword)
		return "", false
	}
	if len(k.Args) > 1 {
		c.warnf(k.Line, "%s %s: the tunnel options %q not carried", k.Keyword, k.Args[0], strings.Join(k.Args[1:], " "))
	}
	switch strings.ToUpper(k.Args[0]) {
	case "DR":
		return string(topology.DirectRouting), true
	case "NAT":
		return string(topology.NAT), true
	case "TUN":
		return string(topology.Tunnel), true
	}
	c.warnf(k.Line, "%s %s: lvsdr forwards with dr, nat or tunnel only", k.Keyword, k.Args[0])
	return strings.ToLower(k.Args[0]), true
}

// wellKnown names the services of the reference design after what they
// carry.
var wellKnown = map[int]string{5672: "amqp", 5671: "amqps", 15672: "management"}

func (c *converter) serviceName(s *service) string {
	name := fmt.Sprintf("%s_%d", s.protocol, s.port)
	if w, ok := wellKnown[s.port]; ok && s.protocol == string(topology.TCP) {
		name = w
	}
	base := name
	for i := 2; c.serviceNamed(name); i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

func (c *converter) serviceNamed(name string) bool {
	for _, s := range c.services {
		if s.name == name {
			return true
		}
	}
	return false
}

// realServerBlock reads one real_server and merges it into the file's real
// servers by address. It returns nil when the block is skipped.
func (c *converter) realServerBlock(n *Node, s *service) (rs *realServer, in inherited, checkers []*checker, unknown []string, drain bool, err error) {
	if len(n.Args) == 0 {
		c.warnf(n.Line, "real_server without an address skipped")
		return nil, in, nil, nil, false, nil
	}
	c.extraArgs(n, 2)
	addr, perr := netip.ParseAddr(n.Args[0])
	if perr != nil {
		return nil, in, nil, nil, false, c.errorf(n.Line, "real_server: %q is not an IP address", n.Args[0])
	}
	addr = addr.Unmap()
	if len(n.Args) > 1 && n.Args[1] != strconv.Itoa(s.port) {
		c.warnf(n.Line, "real_server %s port %s not carried: lvsdr sends the traffic of %s to port %d of its real servers, as direct routing must", addr, n.Args[1], s.name, s.port)
	}
	weight := topology.DefaultWeight
	for _, k := range n.Block {
		switch {
		case k.Keyword == "virtualhost":
			// A virtual_server or HTTP_GET setting, not a real_server one.
			c.notCarried(k, "real_server")
		case c.inheritable(k, &in):
		case k.Keyword == "weight":
			if w, ok := c.integer(k, 0, 65535); ok {
				weight = w
			}
		case k.Keyword == "inhibit_on_failure":
			drain = true
		case k.Keyword == "TCP_CHECK" || k.Keyword == "HTTP_GET" || k.Keyword == "SSL_GET":
			checkers = append(checkers, c.checkerBlock(k))
		case slices.Contains(unsupportedCheckers, k.Keyword):
			unknown = append(unknown, k.Keyword)
			c.warnf(k.Line, "%s not carried: lvsdr runs tcp, http and amqp checks only", k.Keyword)
		case k.Keyword == "notify_up" || k.Keyword == "notify_down":
			c.warnf(k.Line, "%s not carried: lvsdr runs no scripts when a real server changes state", k.Keyword)
		case k.Keyword == "lb_kind" || k.Keyword == "lvs_method":
			if f, ok := c.forwarding(k); ok && f != s.forwarding {
				c.warnf(k.Line, "real_server %s: %s %s not carried: lvsdr forwards a whole service one way, %s for %s", addr, k.Keyword, k.Args[0], s.forwarding, s.name)
			}
		default:
			c.notCarried(k, "real_server")
		}
	}
	rs = c.byAddr[addr]
	if rs == nil {
		rs = &realServer{name: realServerName(addr), addr: addr, weight: weight, line: n.Line, service: s.name}
		c.byAddr[addr] = rs
		c.servers = append(c.servers, rs)
	} else if rs.weight != weight {
		c.warnf(n.Line, "real_server %s has weight %d here and %d in %s (line %d): lvsdr has one weight per real server, %d is kept", addr, weight, rs.weight, rs.service, rs.line, rs.weight)
	}
	if slices.Contains(s.members, rs) {
		c.warnf(n.Line, "real_server %s is declared twice in %s: the second is ignored", addr, s.name)
		return nil, in, nil, nil, false, nil
	}
	s.members = append(s.members, rs)
	return rs, in, checkers, unknown, drain, nil
}

// realServerName names a real server after its address, so that the name
// says which host it is.
func realServerName(addr netip.Addr) string {
	return "rs_" + strings.NewReplacer(".", "_", ":", "_").Replace(addr.String())
}

// checkerBlock reads a TCP_CHECK, HTTP_GET or SSL_GET block.
func (c *converter) checkerBlock(n *Node) *checker {
	ch := &checker{kind: n.Keyword, line: n.Line}
	http := n.Keyword != "TCP_CHECK"
	urls := 0
	for _, k := range n.Block {
		switch {
		case k.Keyword == "virtualhost" && !http:
			c.notCarried(k, n.Keyword)
		case c.inheritable(k, &ch.own):
		case k.Keyword == "connect_port":
			if p, ok := c.integer(k, 1, 65535); ok {
				ch.port = some(p)
			}
		case k.Keyword == "nb_get_retry":
			if r, ok := c.integer(k, 0, 100); ok {
				ch.nbGetRetry, ch.nbGetLine = some(r), k.Line
			}
		case http && k.Keyword == "url":
			urls++
			if urls > 1 {
				c.warnf(k.Line, "url block not carried: keepalived wants every url to pass, lvsdr requests one path; the url of the first block is carried")
				continue
			}
			c.urlBlock(k, ch)
		case http && k.Keyword == "sni_name":
			if len(k.Args) > 0 {
				ch.tlsServerName = k.Args[0]
			}
		default:
			c.notCarried(k, n.Keyword)
		}
	}
	if http && urls == 0 {
		c.warnf(n.Line, "%s has no url block: keepalived ignores such a checker; lvsdr's http check needs a path", n.Keyword)
	}
	return ch
}

func (c *converter) urlBlock(n *Node, ch *checker) {
	for _, k := range n.Block {
		switch k.Keyword {
		case "path":
			if len(k.Args) > 0 {
				c.extraArgs(k, 1)
				ch.path = some(k.Args[0])
			}
		case "status_code":
			for _, a := range k.Args {
				codes, ok := statusCodes(a)
				if !ok {
					c.warnf(k.Line, "status_code %s is not a code or a range such as 200-299: not carried", a)
					continue
				}
				ch.expectStatus = append(ch.expectStatus, codes...)
			}
		case "virtualhost":
			if len(k.Args) > 0 {
				ch.host = some(k.Args[0])
			}
		case "digest":
			c.warnf(k.Line, "digest not carried: lvsdr does not hash the body; body_contains matches a substring of it instead")
		default:
			c.notCarried(k, "url")
		}
	}
}

// registered2xx and registered3xx stand for a whole class: a range such as
// 200-299 would otherwise be written as a hundred codes.
var (
	registered2xx = []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226}
	registered3xx = []int{300, 301, 302, 303, 304, 305, 306, 307, 308}
)

// statusCodes reads one status_code word: "200" or "200-299".
func statusCodes(a string) ([]int, bool) {
	first, last, isRange := strings.Cut(a, "-")
	lo, err := strconv.Atoi(first)
	if err != nil || lo < 100 || lo > 599 {
		return nil, false
	}
	hi := lo
	if isRange {
		if hi, err = strconv.Atoi(last); err != nil || hi < lo || hi > 599 {
			return nil, false
		}
	}
	switch {
	case lo == 200 && hi == 299:
		return slices.Clone(registered2xx), true
	case lo == 300 && hi == 399:
		return slices.Clone(registered3xx), true
	}
	var codes []int
	for code := lo; code <= hi; code++ {
		codes = append(codes, code)
	}
	return codes, true
}

// resolve applies keepalived's inheritance and defaults to a checker.
func (c *converter) resolve(ch *checker, parent inherited) *check {
	eff := ch.own.under(parent)
	out := &check{typ: topology.CheckTCP, interval: eff.delayLoop, retry: topology.DefaultRetry,
		connectTimeout: topology.DefaultConnectTimeout, delayBeforeRetry: topology.DefaultDelayBeforeRetry}
	if eff.connectTimeout.set {
		out.connectTimeout = eff.connectTimeout.v
	}
	if ch.port.set {
		out.port = ch.port.v
	}
	retry := eff.retry
	switch {
	case ch.kind == "TCP_CHECK" && ch.nbGetRetry.set:
		msg := "nb_get_retry is not a TCP_CHECK keyword in keepalived, which ignores it; carried as retry"
		if ch.own.retry.set {
			msg = fmt.Sprintf("nb_get_retry is not a TCP_CHECK keyword in keepalived, which ignores it; the retry %d of line %d is carried instead", ch.own.retry.v, ch.own.retryLine)
		} else {
			retry = ch.nbGetRetry
		}
		c.warnf(ch.nbGetLine, "%s", msg)
	case ch.nbGetRetry.set && !ch.own.retry.set:
		// HTTP_GET's older spelling of retry.
		retry = ch.nbGetRetry
	}
	if retry.set {
		out.retry = retry.v
	}
	if ch.kind != "TCP_CHECK" {
		out.typ = topology.CheckHTTP
		out.delayBeforeRetry = keepalivedHTTPDelayBefore
		out.scheme = "http"
		out.path = ch.path.v
		out.expectStatus = ch.expectStatus
		if len(out.expectStatus) == 0 {
			// keepalived accepts any 2xx when no status_code is given.
			out.expectStatus = slices.Clone(registered2xx)
		}
		if h := ch.host.or(eff.virtualhost); h.set {
			out.host = h.v
		}
		out.tlsServerName = ch.tlsServerName
		if ch.kind == "SSL_GET" {
			out.scheme = "https"
			// keepalived's SSL_GET does not verify the certificate.
			out.tlsSkipVerify = true
			c.warnf(ch.line, "SSL_GET carried as an https check with tls_insecure_skip_verify: true, since keepalived does not verify the certificate either; set tls_ca_file and drop it")
		}
	}
	if eff.delayBeforeRetry.set {
		out.delayBeforeRetry = eff.delayBeforeRetry.v
	}
	return out
}

// formatDuration writes whole seconds as "60s" rather than Go's "1m0s".
func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// overrides carries the checks of a real server that differ from its
// service's as check_overrides: lvsdr lays them over every check of the
// service, so only a real server whose checks all differ the same way can
// be carried; otherwise the service's are, with a warning.
func (c *converter) overrides(s *service, first *candidate, rs *realServer, checks []*check, lines []int) {
	all := append([]*check{s.check}, s.extra...)
	if len(checks) != len(all) {
		c.warnf(lines[0], "real_server %s has %d checkers and real_server %s (line %d) %d: lvsdr runs the same checks on every real server of %s, those of line %d are carried", rs.addr, len(checks), first.rs.addr, first.line, len(all), s.name, s.checkedBy)
		return
	}
	var pairs []any
	for i, ch := range checks {
		diff, ok := checkDiff(all[i], ch)
		if !ok {
			c.warnf(lines[i], "the %s check of real_server %s differs from that of real_server %s (line %d) in more than its settings: the latter is carried", ch.typ, rs.addr, first.rs.addr, first.line)
			return
		}
		if i > 0 && fmt.Sprint(diff) != fmt.Sprint(pairs) {
			c.warnf(lines[i], "the checks of real_server %s differ from those of real_server %s (line %d) in different ways: lvsdr overrides every check of a service alike; those of line %d are carried", rs.addr, first.rs.addr, first.line, s.checkedBy)
			return
		}
		pairs = diff
	}
	if len(pairs) > 0 {
		rs.overrides = append(rs.overrides, override{service: s.name, pairs: pairs})
	}
}
