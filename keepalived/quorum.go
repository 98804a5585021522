package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// sorryServer is where a service sends its traffic when no real server is
// in, keepalived's sorry_server.
type sorryServer struct {
	addr netip.Addr
	port int
}

// sorryServer reads keepalived's `sorry_server IP PORT`.
func (c *converter) sorryServer(k *Node, s *service) {
	if len(k.Args) < 2 {
		c.warnf(k, "sorry_server needs an address and a port: not carried")
		return
	}
	c.extraArgs(k, 2)
	addr, err := netip.ParseAddr(k.Args[0])
	port, perr := strconv.Atoi(k.Args[1])
	if err != nil || perr != nil || port < 1 || port > 65535 {
		c.warnf(k, "sorry_server %s %s is not an address and a port: not carried", k.Args[0], k.Args[1])
		return
	}
	s.sorry = &sorryServer{addr: addr.Unmap(), port: port}
}

// quorumExtras are keepalived's quorum settings lvsdr has no key for.
var quorumExtras = map[string]string{
	"hysteresis":              "lvsdr has no quorum hysteresis",
	"sorry_server_inhibit":    "lvsdr's sorry server is added and deleted, never inhibited",
	"sorry_server_lvs_method": "lvsdr's sorry server uses the service's forwarding",
}

// quorum converts keepalived's quorum, the least sum of the weights of the
// real servers up, into lvsdr's, the least count of real servers serving.
// The two mean the same only when every real server of the service weighs
// the same; otherwise no count does, and the quorum is refused with what
// it would take.
func (c *converter) quorum(n *Node, s *service) {
	given, ok := c.integer(n, 1, math.MaxInt32)
	if !ok || len(s.weights) == 0 {
		return
	}
	total := 0
	for _, w := range s.weights {
		total += w
	}
	// keepalived 2.2 lowers a quorum above the total weight to it, and
	// logs that it "exceeds total weight of real servers".
	q, lowered := given, ""
	if q > total {
		q = total
		lowered = fmt.Sprintf(" (keepalived lowers it to %d, the total weight of the real servers)", total)
	}
	if slices.Min(s.weights) != slices.Max(s.weights) {
		sorted := slices.Sorted(slices.Values(s.weights))
		fewest, most := serversToReach(q, slices.Backward(sorted)), serversToReach(q, slices.All(sorted))
		c.warnf(n, "quorum %d%s not carried: keepalived's quorum is a sum of the weights of the real servers up, lvsdr's a count of real servers, and no count means the same here: %s weighs %s, and %d to %d of them make %d, depending on which are up; set services[].quorum (%s) by hand, lvsdr's default is 1", given, lowered, s.name, joinInts(s.weights), fewest, most, q, s.name)
		return
	}
	w := s.weights[0]
	if w == 0 {
		c.warnf(n, "quorum %d not carried: every real server of %s has weight 0, so keepalived lowers its quorum to 0 and never loses it; lvsdr's quorum counts servers, its default of 1 is kept", given, s.name)
		return
	}
	count := (q + w - 1) / w
	s.quorum = some(count)
	if w != 1 || lowered != "" {
		c.warnf(n, "quorum %d%s carried as quorum: %d: keepalived's quorum is a sum of the weights of the real servers up, lvsdr's a count of real servers; every real server of %s weighs %d, so %d of them make %d (a later change of weights changes keepalived's quorum, not lvsdr's)", given, lowered, count, s.name, w, count, q)
	}
}

// serversToReach counts how many of weights, taken in order, it takes for
// their sum to reach q; it is called with the weights sorted both ways.
func serversToReach(q int, weights func(func(int, int) bool)) int {
	sum, count := 0, 0
	for _, w := range weights {
		if sum >= q {
			break
		}
		sum += w
		count++
	}
	return count
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
