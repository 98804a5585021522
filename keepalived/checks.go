package keepalived

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

// inherited are the checker settings keepalived 2.x lets a virtual_server
// or a real_server give to the checkers below it; a checker's own value
// wins, then its real_server's, then its virtual_server's.
type inherited struct {
	delayLoop        opt[time.Duration]
	connectTimeout   opt[time.Duration]
	retry            opt[int]
	retryNode        *Node
	delayBeforeRetry opt[time.Duration]
	virtualhost      opt[string]
}

func (in inherited) under(parent inherited) inherited {
	out := inherited{
		delayLoop:        in.delayLoop.or(parent.delayLoop),
		connectTimeout:   in.connectTimeout.or(parent.connectTimeout),
		retry:            in.retry.or(parent.retry),
		retryNode:        in.retryNode,
		delayBeforeRetry: in.delayBeforeRetry.or(parent.delayBeforeRetry),
		virtualhost:      in.virtualhost.or(parent.virtualhost),
	}
	if !in.retry.set {
		out.retryNode = parent.retryNode
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

// checker is one TCP_CHECK, HTTP_GET or SSL_GET block, before inheritance.
type checker struct {
	kind          string
	node          *Node
	own           inherited
	port          opt[int]
	nbGetRetry    opt[int]
	nbGetNode     *Node
	path          opt[string]
	expectStatus  []int
	host          opt[string]
	tlsServerName string
}

// inheritable reads a checker setting given at any of the three levels;
// it reports whether n was one.
func (c *converter) inheritable(n *Node, in *inherited) bool {
	switch n.Keyword {
	case "delay_loop":
		c.positiveSeconds(n, &in.delayLoop, "an interval")
	case "connect_timeout":
		c.positiveSeconds(n, &in.connectTimeout, "a timeout")
	case "retry":
		if r, ok := c.integer(n, 0, 100); ok {
			in.retry, in.retryNode = some(r), n
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
		c.warnf(n, "warmup not carried: lvsdr checks a server from its first interval")
	default:
		return false
	}
	return true
}

// unsupportedCheckers are keepalived checkers lvsdr has no probe for.
var unsupportedCheckers = []string{"MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"}

// serviceChecks chooses the checks of service s, declared by n, from its
// real servers' checkers; vs are the settings its virtual_server gives them.
func (c *converter) serviceChecks(n *Node, s *service, vs inherited, cands []candidate) {
	addr, port := c.vip, s.port
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
		s.check, s.checkedBy = first.checks[0], first.nodes[0]
		s.extra = first.checks[1:]
		for _, cand := range cands {
			switch {
			case cand.rs == first.rs:
			case len(cand.checks) == 0 && len(cand.unknown) > 0:
				c.warnf(cand.node, "real_server %s has no checker lvsdr can run; lvsdr checks every real server of %s with the check of %s", cand.rs.addr, s.name, c.where(s.checkedBy))
			case len(cand.checks) == 0:
				c.warnf(cand.node, "real_server %s has no checker, so keepalived keeps it in unchecked; lvsdr checks every real server of %s with the check of %s", cand.rs.addr, s.name, c.where(s.checkedBy))
			default:
				c.overrides(s, first, cand.rs, cand.checks, cand.nodes)
			}
		}
	case anyUnknown:
		// keepalived did check these servers, with a probe lvsdr lacks: a
		// connect to the service port is closer than no check at all.
		s.check = c.resolve(&checker{kind: "TCP_CHECK", node: n}, vs)
		c.warnf(n, "virtual_server %s %d: none of its checkers can be carried; lvsdr's tcp check of port %d is used instead", addr, port, port)
	default:
		// No checker: keepalived keeps every real server in.
		s.check = &check{typ: topology.CheckNone}
	}
	if s.check.typ != topology.CheckNone && !s.check.interval.set {
		c.warnf(n, "virtual_server %s %d has no delay_loop: keepalived checks every %s by default, lvsdr every %s; lvsdr's is kept, set check.interval: %s to keep keepalived's pace", addr, port, formatDuration(keepalivedDelayLoop), formatDuration(topology.DefaultInterval), formatDuration(keepalivedDelayLoop))
	}
}

// checkerBlock reads a TCP_CHECK, HTTP_GET or SSL_GET block.
func (c *converter) checkerBlock(n *Node) *checker {
	ch := &checker{kind: n.Keyword, node: n}
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
				ch.nbGetRetry, ch.nbGetNode = some(r), k
			}
		case http && k.Keyword == "url":
			urls++
			if urls > 1 {
				c.warnf(k, "url block not carried: keepalived wants every url to pass, lvsdr requests one path; the url of the first block is carried")
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
		c.warnf(n, "%s has no url block: keepalived ignores such a checker; lvsdr's http check needs a path", n.Keyword)
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
					c.warnf(k, "status_code %s is not a code or a range such as 200-299: not carried", a)
					continue
				}
				ch.expectStatus = append(ch.expectStatus, codes...)
			}
		case "virtualhost":
			if len(k.Args) > 0 {
				ch.host = some(k.Args[0])
			}
		case "digest":
			c.warnf(k, "digest not carried: lvsdr does not hash the body; body_contains matches a substring of it instead")
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
			msg = fmt.Sprintf("nb_get_retry is not a TCP_CHECK keyword in keepalived, which ignores it; the retry %d of %s is carried instead", ch.own.retry.v, c.where(ch.own.retryNode))
		} else {
			retry = ch.nbGetRetry
		}
		c.warnf(ch.nbGetNode, "%s", msg)
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
			c.warnf(ch.node, "SSL_GET carried as an https check with tls_insecure_skip_verify: true, since keepalived does not verify the certificate either; set tls_ca_file and drop it")
		}
	}
	if eff.delayBeforeRetry.set {
		out.delayBeforeRetry = eff.delayBeforeRetry.v
	}
	return out
}
