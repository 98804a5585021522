package keepalived

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/lvsdr/lvsdr/topology"
)

type realServer struct {
	name    string
	addr    netip.Addr
	weight  int
	node    *Node
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
	node    *Node
	checks  []*check
	nodes   []*Node
	unknown []string
}

// realServerBlock reads one real_server and merges it into the file's real
// servers by address. It returns nil when the block is skipped.
func (c *converter) realServerBlock(n *Node, s *service) (rs *realServer, in inherited, checkers []*checker, unknown []string, drain bool, err error) {
	if len(n.Args) == 0 {
		c.warnf(n, "real_server without an address skipped")
		return nil, in, nil, nil, false, nil
	}
	c.extraArgs(n, 2)
	addr, perr := netip.ParseAddr(n.Args[0])
	if perr != nil {
		return nil, in, nil, nil, false, c.errorf(n, "real_server: %q is not an IP address", n.Args[0])
	}
	addr = addr.Unmap()
	if len(n.Args) > 1 && n.Args[1] != strconv.Itoa(s.port) {
		c.warnf(n, "real_server %s port %s not carried: lvsdr sends the traffic of %s to port %d of its real servers, as direct routing must", addr, n.Args[1], s.name, s.port)
	}
	weight := s.weight.or(some(topology.DefaultWeight)).v
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
			c.warnf(k, "%s not carried: lvsdr runs tcp, http and amqp checks only", k.Keyword)
		case k.Keyword == "notify_up" || k.Keyword == "notify_down":
			when, filter := realServerNotify(k.Keyword, realServerName(addr), s.name)
			c.notifyScript(k, when, filter)
		case k.Keyword == "lb_kind" || k.Keyword == "lvs_method":
			if f, ok := c.forwarding(k); ok && f != s.forwarding {
				c.warnf(k, "real_server %s: %s %s not carried: lvsdr forwards a whole service one way, %s for %s", addr, k.Keyword, k.Args[0], s.forwarding, s.name)
			}
		default:
			c.notCarried(k, "real_server")
		}
	}
	rs = c.byAddr[addr]
	if rs == nil {
		rs = &realServer{name: realServerName(addr), addr: addr, weight: weight, node: n, service: s.name}
		c.byAddr[addr] = rs
		c.servers = append(c.servers, rs)
	}
	// A weight other than the one of the real server's first service is
	// carried as this service's own (services[].real_servers[].weight).
	if slices.Contains(s.members, rs) {
		c.warnf(n, "real_server %s is declared twice in %s: the second is ignored", addr, s.name)
		return nil, in, nil, nil, false, nil
	}
	s.members = append(s.members, rs)
	s.weights = append(s.weights, weight)
	return rs, in, checkers, unknown, drain, nil
}

// realServerName names a real server after its address, so that the name
// says which host it is.
func realServerName(addr netip.Addr) string {
	return "rs_" + underscored(addr)
}

// overrides carries the checks of a real server that differ from its
// service's as check_overrides: lvsdr lays them over every check of the
// service, so only a real server whose checks all differ the same way can
// be carried; otherwise the service's are, with a warning.
func (c *converter) overrides(s *service, first *candidate, rs *realServer, checks []*check, nodes []*Node) {
	all := append([]*check{s.check}, s.extra...)
	if len(checks) != len(all) {
		c.warnf(nodes[0], "real_server %s has %d checkers and real_server %s (%s) %d: lvsdr runs the same checks on every real server of %s, those of %s are carried", rs.addr, len(checks), first.rs.addr, c.where(first.node), len(all), s.name, c.where(s.checkedBy))
		return
	}
	var pairs []any
	for i, ch := range checks {
		diff, ok := checkDiff(all[i], ch)
		if !ok {
			c.warnf(nodes[i], "the %s check of real_server %s differs from that of real_server %s (%s) in more than its settings: the latter is carried", ch.typ, rs.addr, first.rs.addr, c.where(first.node))
			return
		}
		if i > 0 && fmt.Sprint(diff) != fmt.Sprint(pairs) {
			c.warnf(nodes[i], "the checks of real_server %s differ from those of real_server %s (%s) in different ways: lvsdr overrides every check of a service alike; those of %s are carried", rs.addr, first.rs.addr, c.where(first.node), c.where(s.checkedBy))
			return
		}
		pairs = diff
	}
	if len(pairs) > 0 {
		rs.overrides = append(rs.overrides, override{service: s.name, pairs: pairs})
	}
}
