package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lvsdr/lvsdr/topology"
)

type service struct {
	node        *Node
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
	// weights are the members' weights in this virtual_server, which
	// keepalived's quorum sums; weight, the virtual_server's own, which its
	// real servers without one take.
	weights []int
	weight  opt[int]
	check   *check
	// checkedBy is the checker the service check comes from.
	checkedBy *Node
}

func (c *converter) virtualServer(n *Node) error {
	if len(n.Args) > 0 && (n.Args[0] == "fwmark" || n.Args[0] == "group") {
		c.warnf(n, "virtual_server %s skipped: lvsdr has services on VIP:port only, no firewall marks or virtual_server_group", strings.Join(n.Args, " "))
		return nil
	}
	if len(n.Args) < 2 {
		c.warnf(n, "virtual_server %s skipped: lvsdr needs an address and a port", strings.Join(n.Args, " "))
		return nil
	}
	c.extraArgs(n, 2)
	addr, err := netip.ParseAddr(n.Args[0])
	if err != nil {
		return c.errorf(n, "virtual_server: %q is not an IP address", n.Args[0])
	}
	addr = addr.Unmap()
	port, err := strconv.Atoi(n.Args[1])
	if err != nil || port < 0 || port > 65535 {
		return c.errorf(n, "virtual_server %s: %q is not a port", n.Args[0], n.Args[1])
	}
	if port == 0 {
		c.warnf(n, "virtual_server %s 0 skipped: lvsdr has no all-ports service; declare each port", addr)
		return nil
	}
	if !slices.ContainsFunc(n.Block, func(k *Node) bool { return k.Keyword == "real_server" }) {
		// keepalived 2.2 logs "has no real servers - ignoring".
		c.warnf(n, "virtual_server %s %d skipped: it has no real_server, and keepalived ignores such a virtual_server too", addr, port)
		return nil
	}
	if !c.vip.IsValid() {
		c.vip, c.vipNode = addr, n
	} else if addr != c.vip {
		return c.errorf(n, "virtual_server %s: lvsdr carries one VIP per topology, and %s declared %s; split keepalived.conf by VIP and convert each part", addr, c.where(c.vipNode), c.vip)
	}

	s := &service{node: n, port: port, onFailure: topology.Remove}
	var vs inherited
	var rsNodes []*Node
	var schedSet, fwdSet bool
	// quorum_up and quorum_down name the service, which is named last.
	var quorumNotifies []*Node
	var quorumNode *Node
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
				c.warnf(k, "virtual_server %s %d skipped: protocol %s is not supported by lvsdr (tcp, udp)", addr, port, k.Args[0])
				return nil
			}
		case k.Keyword == "inhibit_on_failure":
			s.onFailure = topology.Drain
		case k.Keyword == "real_server":
			rsNodes = append(rsNodes, k)
		case k.Keyword == "weight":
			if w, ok := c.integer(k, 0, 65535); ok {
				s.weight = some(w)
			}
		case k.Keyword == "quorum":
			// Converted once the weights it sums are known.
			quorumNode = k
		case k.Keyword == "sorry_server":
			c.sorryServer(k, s)
		case k.Keyword == "quorum_up" || k.Keyword == "quorum_down":
			quorumNotifies = append(quorumNotifies, k)
		case quorumExtras[k.Keyword] != "":
			c.warnf(k, "%s not carried: %s", k.Keyword, quorumExtras[k.Keyword])
		default:
			c.notCarried(k, "virtual_server")
		}
	}
	if s.protocol == "" {
		// keepalived 2.2 logs "no protocol set - defaulting to UDP".
		s.protocol = string(topology.UDP)
		c.warnf(n, "virtual_server %s %d has no protocol: keepalived programs it as UDP, so it is carried as udp; if TCP was meant, keepalived was not balancing its TCP traffic: set protocol: tcp", addr, port)
	}
	if !schedSet {
		s.scheduler = keepalivedScheduler
		c.warnf(n, "virtual_server %s %d has no lb_algo: carried as keepalived's default %s (lvsdr's default is %s)", addr, port, keepalivedScheduler, topology.DefaultScheduler)
	}
	if !fwdSet {
		s.forwarding = keepalivedForwarding
		c.warnf(n, "virtual_server %s %d has no lb_kind: carried as keepalived's default %s (lvsdr's default is dr)", addr, port, keepalivedForwarding)
	}
	s.name = c.serviceName(s)
	for _, k := range quorumNotifies {
		when, filter := quorumNotify(k.Keyword, s.name)
		c.notifyScript(k, when, filter)
	}
	c.services = append(c.services, s)

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
		cand := candidate{rs: rs, node: rn, unknown: unknown}
		for _, ch := range checkers {
			cand.checks = append(cand.checks, c.resolve(ch, inh.under(vs)))
			cand.nodes = append(cand.nodes, ch.node)
		}
		cands = append(cands, cand)
	}
	if drains > 0 && drains < len(cands) && s.onFailure != topology.Drain {
		c.warnf(n, "inhibit_on_failure is set on %d of the %d real servers of %s: lvsdr sets on_failure per service, so every real server is drained on failure", drains, len(cands), s.name)
	}
	if drains > 0 {
		s.onFailure = topology.Drain
	}

	if quorumNode != nil {
		c.quorum(quorumNode, s)
	}
	c.serviceChecks(n, s, vs, cands)
	return nil
}

// forwarding maps lb_kind to lvsdr's forwarding; values lvsdr lacks are
// carried lowercased so that validation names them.
func (c *converter) forwarding(k *Node) (string, bool) {
	if len(k.Args) == 0 {
		c.warnf(k, "%s has no value: not carried", k.Keyword)
		return "", false
	}
	if len(k.Args) > 1 {
		c.warnf(k, "%s %s: the tunnel options %q not carried", k.Keyword, k.Args[0], strings.Join(k.Args[1:], " "))
	}
	switch strings.ToUpper(k.Args[0]) {
	case "DR":
		return string(topology.DirectRouting), true
	case "NAT":
		return string(topology.NAT), true
	case "TUN":
		return string(topology.Tunnel), true
	}
	c.warnf(k, "%s %s: lvsdr forwards with dr, nat or tunnel only", k.Keyword, k.Args[0])
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
