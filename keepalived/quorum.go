package keepalived

import (
	"net/netip"
	"strconv"
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
