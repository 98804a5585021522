package topology

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"gopkg.in/yaml.v3"
)

// topology decodes the document and then checks what spans several keys.
func (d *decoder) topology(root *yaml.Node) *Topology {
	t := &Topology{File: d.file, Director: Director{ResyncInterval: DefaultResyncInterval, DrainTimeout: DefaultDrainTimeout}}
	var servicesNode, serversNode *yaml.Node
	var serviceNodes, serverNodes []*yaml.Node
	seen := d.mapping(root, "the file", fields{
		"vip": func(n *yaml.Node) { d.ipv4(n, "vip", &t.VIP) },
		"director": func(n *yaml.Node) {
			present := d.mapping(n, "director", fields{
				"interface":       func(v *yaml.Node) { d.iface(v, "director.interface", &t.Director.Interface) },
				"resync_interval": func(v *yaml.Node) { d.positive(v, "director.resync_interval", &t.Director.ResyncInterval) },
				"drain_timeout":   func(v *yaml.Node) { d.duration(v, "director.drain_timeout", &t.Director.DrainTimeout) },
			})
			if present["interface"] == nil && n.Kind == yaml.MappingNode {
				d.problemf(n, "director.interface is required: the NIC that carries the VIP on the director")
			}
		},
		"services": func(n *yaml.Node) {
			servicesNode = n
			serviceNodes = d.sequence(n, "services")
			for i, sn := range serviceNodes {
				t.Services = append(t.Services, d.service(sn, i))
			}
		},
		"real_servers": func(n *yaml.Node) {
			serversNode = n
			serverNodes = d.sequence(n, "real_servers")
			for i, rn := range serverNodes {
				t.RealServers = append(t.RealServers, d.realServer(rn, i))
			}
		},
		"realserver": func(n *yaml.Node) {
			d.mapping(n, "realserver", fields{
				"interface": func(v *yaml.Node) { d.iface(v, "realserver.interface", &t.RealServer.Interface) },
			})
		},
	})
	if root.Kind != yaml.MappingNode {
		return t
	}
	for _, key := range []string{"vip", "director", "services", "real_servers"} {
		if seen[key] == nil {
			d.problemf(root, "%s is required", key)
		}
	}
	if servicesNode != nil && servicesNode.Kind == yaml.SequenceNode && len(serviceNodes) == 0 {
		d.problemf(servicesNode, "services lists no service")
	}
	if serversNode != nil && serversNode.Kind == yaml.SequenceNode && len(serverNodes) == 0 {
		d.problemf(serversNode, "real_servers lists no real server")
	}
	d.crossCheck(t, root, serviceNodes, serverNodes, seen["realserver"])
	return t
}

// positive decodes a duration that must be above zero.
func (d *decoder) positive(n *yaml.Node, path string, dst *time.Duration) {
	var v time.Duration
	if !d.duration(n, path, &v) {
		return
	}
	if v == 0 {
		d.problemf(n, "%s must be above zero", path)
		return
	}
	*dst = v
}

func (d *decoder) service(n *yaml.Node, i int) Service {
	s := Service{
		Protocol:   TCP,
		Scheduler:  DefaultScheduler,
		Forwarding: DirectRouting,
		OnFailure:  Remove,
	}
	path := fmt.Sprintf("services[%d]", i)
	if name := mappingValue(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
		path = fmt.Sprintf("services[%d] (%s)", i, name.Value)
	}
	var checkNode *yaml.Node
	var subset []*yaml.Node
	subsetGiven := false
	present := d.mapping(n, path, fields{
		"name": func(v *yaml.Node) { d.name(v, path+".name", &s.Name) },
		"port": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".port", 1, 65535); ok {
				s.Port = uint16(p)
			}
		},
		"protocol": func(v *yaml.Node) {
			d.oneOf(v, path+".protocol", []string{string(TCP), string(UDP)}, (*string)(&s.Protocol))
		},
		"scheduler": func(v *yaml.Node) { d.oneOf(v, path+".scheduler", Schedulers, &s.Scheduler) },
		"forwarding": func(v *yaml.Node) {
			d.oneOf(v, path+".forwarding", []string{string(DirectRouting), string(NAT), string(Tunnel)}, (*string)(&s.Forwarding))
		},
		"persistence_timeout": func(v *yaml.Node) {
			var p time.Duration
			if !d.duration(v, path+".persistence_timeout", &p) {
				return
			}
			switch {
			case p%time.Second != 0:
				d.problemf(v, "%s.persistence_timeout must be whole seconds (the kernel counts in seconds), not %s", path, p)
			case p/time.Second > math.MaxUint32:
				d.problemf(v, "%s.persistence_timeout is too long: at most %d seconds", path, uint32(math.MaxUint32))
			default:
				s.PersistenceTimeout = p
			}
		},
		"on_failure": func(v *yaml.Node) {
			d.oneOf(v, path+".on_failure", []string{string(Remove), string(Drain)}, (*string)(&s.OnFailure))
		},
		"check":        func(v *yaml.Node) { checkNode = v },
		"real_servers": func(v *yaml.Node) { subsetGiven = true; subset = d.sequence(v, path+".real_servers") },
	})
	if n.Kind != yaml.MappingNode {
		return s
	}
	for _, key := range []string{"name", "port"} {
		if present[key] == nil {
			d.problemf(n, "%s.%s is required", path, key)
		}
	}
	s.Check = d.check(checkNode, path+".check", s)
	for _, rn := range subset {
		var name string
		d.name(rn, path+".real_servers[]", &name)
		s.RealServers = append(s.RealServers, name)
	}
	if subsetGiven && len(subset) == 0 && present["real_servers"] != nil {
		d.problemf(present["real_servers"], "%s.real_servers is empty: leave the key out to use every real server", path)
	}
	return s
}

// check decodes a service's check; n is nil when the service has none.
func (d *decoder) check(n *yaml.Node, path string, s Service) Check {
	c := Check{
		Type:             CheckTCP,
		Port:             s.Port,
		Interval:         DefaultInterval,
		ConnectTimeout:   DefaultConnectTimeout,
		Retry:            DefaultRetry,
		DelayBeforeRetry: DefaultDelayBeforeRetry,
		Rise:             DefaultRise,
	}
	if s.Protocol == UDP {
		// A TCP connect says nothing about a UDP port.
		c.Type = CheckNone
	}
	if n == nil {
		return c
	}
	var h HTTPCheck
	var a AMQPCheck
	// keysOf records which type-specific keys were given, to refuse them on
	// another type.
	typed := map[string]CheckType{}
	only := func(t CheckType, key string, decode func(v *yaml.Node)) func(v *yaml.Node) {
		return func(v *yaml.Node) { typed[key] = t; decode(v) }
	}
	var username, passwordFile string
	var usernameNode, passwordNode *yaml.Node
	present := d.mapping(n, path, fields{
		"type": func(v *yaml.Node) {
			d.oneOf(v, path+".type", []string{string(CheckTCP), string(CheckHTTP), string(CheckAMQP), string(CheckNone)}, (*string)(&c.Type))
		},
		"port": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".port", 0, 65535); ok && p != 0 {
				c.Port = uint16(p)
			}
		},
		"interval":        func(v *yaml.Node) { d.positive(v, path+".interval", &c.Interval) },
		"connect_timeout": func(v *yaml.Node) { d.positive(v, path+".connect_timeout", &c.ConnectTimeout) },
		"retry": func(v *yaml.Node) {
			if r, ok := d.integer(v, path+".retry", 0, 100); ok {
				c.Retry = int(r)
			}
		},
		"delay_before_retry": func(v *yaml.Node) { d.duration(v, path+".delay_before_retry", &c.DelayBeforeRetry) },
		"rise": func(v *yaml.Node) {
			if r, ok := d.integer(v, path+".rise", 1, 100); ok {
				c.Rise = int(r)
			}
		},
		"path": only(CheckHTTP, "path", func(v *yaml.Node) { d.httpPath(v, path+".path", &h.Path) }),
		"scheme": only(CheckHTTP, "scheme", func(v *yaml.Node) {
			d.oneOf(v, path+".scheme", []string{"http", "https"}, &h.Scheme)
		}),
		"expect_status": only(CheckHTTP, "expect_status", func(v *yaml.Node) {
			for _, sn := range d.sequence(v, path+".expect_status") {
				if code, ok := d.integer(sn, path+".expect_status[]", 100, 599); ok {
					h.ExpectStatus = append(h.ExpectStatus, int(code))
				}
			}
		}),
		"body_contains": only(CheckHTTP, "body_contains", func(v *yaml.Node) { d.str(v, path+".body_contains", &h.BodyContains) }),
		"headers": only(CheckHTTP, "headers", func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				d.problemf(v, "%s.headers must be a mapping of header names to values, not %s", path, describe(v))
				return
			}
			h.Headers = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				d.str(v.Content[i+1], path+".headers."+v.Content[i].Value, new(string))
				h.Headers[v.Content[i].Value] = v.Content[i+1].Value
			}
		}),
		"tls_insecure_skip_verify": only(CheckHTTP, "tls_insecure_skip_verify", func(v *yaml.Node) {
			if b, ok := d.scalar(v, path+".tls_insecure_skip_verify"); ok {
				if v.Tag != "!!bool" {
					d.problemf(v, "%s.tls_insecure_skip_verify must be true or false, not %q", path, b)
				}
				h.TLSInsecureSkipVerify = b == "true"
			}
		}),
		"tls_server_name": only(CheckHTTP, "tls_server_name", func(v *yaml.Node) { d.str(v, path+".tls_server_name", &h.TLSServerName) }),
		"tls_ca_file": only(CheckHTTP, "tls_ca_file", func(v *yaml.Node) {
			d.str(v, path+".tls_ca_file", &h.TLSCAFile)
			d.readable(v, path+".tls_ca_file", h.TLSCAFile)
		}),
		"vhost": only(CheckAMQP, "vhost", func(v *yaml.Node) { d.str(v, path+".vhost", &a.VHost) }),
		"username": func(v *yaml.Node) {
			usernameNode = v
			d.str(v, path+".username", &username)
		},
		"password_file": func(v *yaml.Node) {
			passwordNode = v
			d.str(v, path+".password_file", &passwordFile)
			d.readable(v, path+".password_file", passwordFile)
		},
	})
	for key, t := range typed {
		if c.Type != t {
			d.problemf(present[key], "%s.%s is a setting of %s checks, and this check is %s", path, key, t, c.Type)
		}
	}
	if (usernameNode == nil) != (passwordNode == nil) {
		at := usernameNode
		if at == nil {
			at = passwordNode
		}
		d.problemf(at, "%s: username and password_file go together", path)
	}
	if usernameNode != nil && c.Type != CheckHTTP && c.Type != CheckAMQP {
		d.problemf(usernameNode, "%s.username is a setting of http and amqp checks, and this check is %s", path, c.Type)
	}
	switch c.Type {
	case CheckHTTP:
		if present["path"] == nil {
			d.problemf(n, "%s.path is required for an http check, e.g. /api/health/checks/port-listener/5672", path)
		}
		if h.Scheme == "" {
			h.Scheme = "http"
		}
		if len(h.ExpectStatus) == 0 {
			h.ExpectStatus = []int{200}
		}
		h.Username, h.PasswordFile = username, passwordFile
		c.HTTP = &h
	case CheckAMQP:
		if a.VHost == "" {
			a.VHost = "/"
		}
		a.Username, a.PasswordFile = username, passwordFile
		c.AMQP = &a
	}
	return c
}

func (d *decoder) realServer(n *yaml.Node, i int) RealServer {
	rs := RealServer{Weight: DefaultWeight}
	path := fmt.Sprintf("real_servers[%d]", i)
	if name := mappingValue(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
		path = fmt.Sprintf("real_servers[%d] (%s)", i, name.Value)
	}
	present := d.mapping(n, path, fields{
		"name":    func(v *yaml.Node) { d.name(v, path+".name", &rs.Name) },
		"address": func(v *yaml.Node) { d.ipv4(v, path+".address", &rs.Address) },
		"weight": func(v *yaml.Node) {
			if w, ok := d.integer(v, path+".weight", 0, 65535); ok {
				rs.Weight = uint16(w)
			}
		},
	})
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"name", "address"} {
			if present[key] == nil {
				d.problemf(n, "%s.%s is required", path, key)
			}
		}
	}
	return rs
}

// crossCheck validates what spans several entries: uniqueness, subsets, the
// VIP against the real servers, and the agent's interface.
func (d *decoder) crossCheck(t *Topology, root *yaml.Node, serviceNodes, serverNodes []*yaml.Node, realserverKey *yaml.Node) {
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, rs := range t.RealServers {
		n := serverNodes[i]
		if first, dup := names[rs.Name]; dup && rs.Name != "" {
			d.problemf(n, "real_servers[%d]: name %q is already used by real_servers[%d]", i, rs.Name, first)
		} else {
			names[rs.Name] = i
		}
		if !rs.Address.IsValid() {
			continue
		}
		if first, dup := addrs[rs.Address]; dup {
			d.problemf(n, "real_servers[%d] (%s): address %s is already used by real_servers[%d]", i, rs.Name, rs.Address, first)
		} else {
			addrs[rs.Address] = i
		}
		if rs.Address == t.VIP {
			d.problemf(n, "real_servers[%d] (%s): address %s is the VIP", i, rs.Name, rs.Address)
		}
	}

	serviceNames := map[string]int{}
	type portKey struct {
		p    Protocol
		port uint16
	}
	ports := map[portKey]int{}
	needsAgent := false
	for i := range t.Services {
		s := &t.Services[i]
		n := serviceNodes[i]
		if first, dup := serviceNames[s.Name]; dup && s.Name != "" {
			d.problemf(n, "services[%d]: name %q is already used by services[%d]", i, s.Name, first)
		} else {
			serviceNames[s.Name] = i
		}
		if s.Port != 0 {
			k := portKey{s.Protocol, s.Port}
			if first, dup := ports[k]; dup {
				d.problemf(n, "services[%d] (%s): %s port %d is already used by services[%d]", i, s.Name, s.Protocol, s.Port, first)
			} else {
				ports[k] = i
			}
		}
		if s.Forwarding == DirectRouting || s.Forwarding == Tunnel {
			needsAgent = true
		}
		if s.RealServers == nil {
			for _, rs := range t.RealServers {
				s.RealServers = append(s.RealServers, rs.Name)
			}
			continue
		}
		listed := map[string]bool{}
		for _, name := range s.RealServers {
			switch {
			case name == "":
			case listed[name]:
				d.problemf(mappingValue(n, "real_servers"), "services[%d] (%s).real_servers lists %q twice", i, s.Name, name)
			case !nameKnown(names, name):
				d.problemf(mappingValue(n, "real_servers"), "services[%d] (%s).real_servers: no real server is named %q", i, s.Name, name)
			}
			listed[name] = true
		}
	}
	if needsAgent && t.RealServer.Interface == "" {
		at := root
		if realserverKey != nil {
			at = realserverKey
		}
		d.problemf(at, "realserver.interface is required with dr or tunnel forwarding: the NIC whose ARP replies for the VIP the real servers suppress")
	}
}

func nameKnown(names map[string]int, name string) bool {
	_, ok := names[name]
	return ok
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
