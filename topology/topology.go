// Package topology is the YAML schema of an lvsdr deployment: one VIP, the
// services it carries, the real servers behind it, and how each is checked.
// Load decodes a file strictly and validates it, so that every other package
// can trust a *Topology without checking it again.
package topology

import (
	"fmt"
	"net/netip"
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
	// VIP is the virtual address every service listens on.
	VIP         netip.Addr
	Director    Director
	Services    []Service
	RealServers []RealServer
	RealServer  RealServerHost
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
}

// RealServerHost holds the settings of the real-server agent.
type RealServerHost struct {
	// Interface is the NIC whose ARP replies for the VIP are suppressed.
	Interface string
}

// Service is one virtual service: the VIP on one port.
type Service struct {
	Name               string
	Port               uint16
	Protocol           Protocol
	Scheduler          string
	Forwarding         Forwarding
	PersistenceTimeout time.Duration
	OnFailure          OnFailure
	Check              Check
	// RealServers names the real servers of this service, in file order;
	// all of them unless the service lists a subset.
	RealServers []string
}

// Check configures the health check of every real server of a service, with
// keepalived's TCP_CHECK semantics plus rise.
type Check struct {
	Type CheckType
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

// RealServerByName returns the real server named name.
func (t *Topology) RealServerByName(name string) (RealServer, bool) {
	for _, rs := range t.RealServers {
		if rs.Name == name {
			return rs, true
		}
	}
	return RealServer{}, false
}

// ServiceByName returns the service named name.
func (t *Topology) ServiceByName(name string) (Service, bool) {
	for _, s := range t.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Members returns the real servers of a service, in file order.
func (t *Topology) Members(s Service) []RealServer {
	members := make([]RealServer, 0, len(s.RealServers))
	for _, name := range s.RealServers {
		if rs, ok := t.RealServerByName(name); ok {
			members = append(members, rs)
		}
	}
	return members
}

// String names a service as an operator reads it in ipvsadm: "amqp tcp/5672".
func (s Service) String() string {
	return fmt.Sprintf("%s (%s/%d)", s.Name, s.Protocol, s.Port)
}
