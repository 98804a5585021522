package topology

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// topology decodes the document and then checks what spans several keys.
func (d *decoder) topology(root *yaml.Node) *Topology {
	t := &Topology{File: d.file, Director: Director{
		ResyncInterval: DefaultResyncInterval,
		DrainTimeout:   DefaultDrainTimeout,
		CheckMarkBase:  DefaultCheckMarkBase,
		MetricsAddress: DefaultMetricsAddress,
	}}
	d.checkNodes = map[string][]*yaml.Node{}
	var overrideNodes []*yaml.Node
	var servicesNode, serversNode *yaml.Node
	var serviceNodes, serverNodes []*yaml.Node
	var directorNode *yaml.Node
	seen := d.mapping(root, "the file", fields{
		"vip": func(n *yaml.Node) { d.ipv4(n, "vip", &t.VIP) },
		"director": func(n *yaml.Node) {
			present := d.mapping(n, "director", fields{
				"interface":         func(v *yaml.Node) { d.iface(v, "director.interface", &t.Director.Interface) },
				"resync_interval":   func(v *yaml.Node) { d.positive(v, "director.resync_interval", &t.Director.ResyncInterval) },
				"drain_timeout":     func(v *yaml.Node) { d.duration(v, "director.drain_timeout", &t.Director.DrainTimeout) },
				"check_fwmark_base": func(v *yaml.Node) { d.fwmark(v, "director.check_fwmark_base", &t.Director.CheckMarkBase) },
				"notify":            func(v *yaml.Node) { t.Director.Notify = d.notify(v, "director.notify") },
				"metrics_address": func(v *yaml.Node) {
					t.Director.MetricsAddress = d.listenAddress(v, "director.metrics_address")
				},
				"ha":  func(v *yaml.Node) { t.Director.HA = d.ha(v, "director.ha") },
				"bgp": func(v *yaml.Node) { t.Director.BGP = d.bgp(v, "director.bgp") },
			})
			if present["interface"] == nil && n.Kind == yaml.MappingNode {
				d.problemf(n, "director.interface is required: the NIC that carries the VIP on the director")
			}
			if present["ha"] != nil && present["bgp"] != nil {
				d.problemf(present["bgp"], "director: ha and bgp together: one VIP owner model per file (ha: one master holds the VIP; bgp: every director announces it)")
			}
			directorNode = n
		},
		"services": func(n *yaml.Node) {
			servicesNode = n
			serviceNodes = d.sequence(n, "services")
			if pieces, ok := d.decoded["services"]; ok {
				d.takeServices(t, pieces)
				return
			}
			for i, sn := range serviceNodes {
				t.Services = append(t.Services, d.service(sn, i))
			}
		},
		"real_servers": func(n *yaml.Node) {
			serversNode = n
			serverNodes = d.sequence(n, "real_servers")
			if pieces, ok := d.decoded["real_servers"]; ok {
				d.takeServers(t, &overrideNodes, pieces)
				return
			}
			for i, rn := range serverNodes {
				rs, overrides := d.realServer(rn, i)
				t.RealServers = append(t.RealServers, rs)
				overrideNodes = append(overrideNodes, overrides)
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
	d.ownerModel(t, directorNode, serviceNodes)
	// The names are known: index them for the overrides and quorums below,
	// which look names up once per real server.
	t.Reindex()
	for i, n := range overrideNodes {
		if n != nil {
			d.overrides(t, t.RealServers[i], n, fmt.Sprintf("real_servers[%d] (%s).check_overrides", i, t.RealServers[i].Name), d.checkNodes)
		}
	}
	for i := range t.Services {
		d.quorum(&t.Services[i], serviceNodes[i], fmt.Sprintf("services[%d] (%s)", i, t.Services[i].Name), t)
	}
	// Again, for the checks through the VIP that overrides turned on.
	t.Reindex()
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
		Quorum:     DefaultQuorum,
	}
	// Concatenation, not fmt: this runs once per entry of files with
	// thousands of them, on every reload.
	path := "services[" + strconv.Itoa(i) + "]"
	if name := mappingValue(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
		path = fmt.Sprintf("services[%d] (%s)", i, name.Value)
	}
	var checkNode, checksNode, flagsNode *yaml.Node
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
		"scheduler_flags": func(v *yaml.Node) { flagsNode = v },
		"check":           func(v *yaml.Node) { checkNode = v },
		"checks":          func(v *yaml.Node) { checksNode = v },
		"quorum": func(v *yaml.Node) {
			if q, ok := d.integer(v, path+".quorum", 1, 1000000); ok {
				s.Quorum = int(q)
			}
		},
		"sorry_server": func(v *yaml.Node) { s.SorryServer = d.sorryServer(v, path+".sorry_server") },
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
	if flagsNode != nil {
		d.schedulerFlagsOf(flagsNode, path+".scheduler_flags", &s)
	}
	var nodes []*yaml.Node
	s.Checks, nodes = d.checks(checkNode, checksNode, path, s)
	d.checkNodes[s.Name] = nodes
	for _, rn := range subset {
		name, weight, ok := d.member(rn, path+".real_servers[]")
		s.RealServers = append(s.RealServers, name)
		if ok {
			if s.Weights == nil {
				s.Weights = map[string]uint16{}
			}
			s.Weights[name] = weight
		}
	}
	if subsetGiven && len(subset) == 0 && present["real_servers"] != nil {
		d.problemf(present["real_servers"], "%s.real_servers is empty: leave the key out to use every real server", path)
	}
	return s
}

// member decodes an entry of a service's real_servers: a name, or
// {name, weight} for a weight of this service's own (keepalived gives a
// real server a weight per virtual_server). ok says a weight was given.
func (d *decoder) member(n *yaml.Node, path string) (name string, weight uint16, ok bool) {
	if n.Kind != yaml.MappingNode {
		d.name(n, path, &name)
		return name, 0, false
	}
	present := d.mapping(n, path, fields{
		"name": func(v *yaml.Node) { d.name(v, path+".name", &name) },
		"weight": func(v *yaml.Node) {
			if w, valid := d.integer(v, path+".weight", 0, 65535); valid {
				weight, ok = uint16(w), true
			}
		},
	})
	if present["name"] == nil {
		d.problemf(n, "%s.name is required", path)
	}
	return name, weight, ok
}

// realServer decodes a real server and returns its check_overrides node, to
// be decoded once every service is known.
func (d *decoder) realServer(n *yaml.Node, i int) (RealServer, *yaml.Node) {
	var overrides *yaml.Node
	rs := RealServer{Weight: DefaultWeight}
	path := "real_servers[" + strconv.Itoa(i) + "]"
	if name := mappingValue(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
		path += " (" + name.Value + ")"
	}
	present := d.mapping(n, path, fields{
		"name":    func(v *yaml.Node) { d.name(v, path+".name", &rs.Name) },
		"address": func(v *yaml.Node) { d.ipv4(v, path+".address", &rs.Address) },
		"weight": func(v *yaml.Node) {
			if w, ok := d.integer(v, path+".weight", 0, 65535); ok {
				rs.Weight = uint16(w)
			}
		},
		"check_overrides": func(v *yaml.Node) { overrides = v },
	})
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"name", "address"} {
			if present[key] == nil {
				d.problemf(n, "%s.%s is required", path, key)
			}
		}
	}
	return rs, overrides
}

// crossCheck validates what spans several entries: uniqueness, subsets, the
// VIP against the real servers, and the agent's interface.
func (d *decoder) crossCheck(t *Topology, root *yaml.Node, serviceNodes, serverNodes []*yaml.Node, realserverKey *yaml.Node) {
	// Sized ahead: at 10,000 real servers, growing them was a third of a
	// reload's parse.
	names := make(map[string]int, len(t.RealServers))
	addrs := make(map[netip.Addr]int, len(t.RealServers))
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

	serviceNames := make(map[string]int, len(t.Services))
	type portKey struct {
		p    Protocol
		port uint16
	}
	ports := make(map[portKey]int, len(t.Services))
	listed := map[string]bool{}
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
		clear(listed)
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

// ownerModel checks the services and addresses against the way the VIP is
// owned: by one VRRP master (ha) or by every director at once (bgp).
func (d *decoder) ownerModel(t *Topology, director *yaml.Node, serviceNodes []*yaml.Node) {
	if h := t.Director.HA; h != nil {
		for i, hd := range h.Directors {
			if hd.Address == t.VIP && hd.Address.IsValid() {
				d.problemf(haDirectorNode(director, i), "director.ha.directors[%d] (%s): address %s is the VIP; give the director's own address on director.interface", i, hd.Name, hd.Address)
			}
		}
	}
	b := t.Director.BGP
	if b == nil {
		return
	}
	bgpNode := mappingValue(director, "bgp")
	for i, p := range b.Peers {
		if p.Address == t.VIP && p.Address.IsValid() {
			d.problemf(sequenceItem(mappingValue(bgpNode, "peers"), i), "director.bgp.peers[%d]: address %s is the VIP", i, p.Address)
		}
	}
	for i, s := range t.Services {
		n := serviceNodes[i]
		if s.Scheduler != "mh" && s.Scheduler != "sh" {
			at := mappingValue(n, "scheduler")
			if at == nil {
				at = n
			}
			d.problemf(at, "services[%d] (%s).scheduler is %s, and with director.bgp every director must pick the same real server for a connection, or the routers re-hashing flows across directors break it: use mh (or sh)", i, s.Name, s.Scheduler)
		}
		if s.Forwarding == NAT {
			d.problemf(mappingValue(n, "forwarding"), "services[%d] (%s).forwarding nat with director.bgp: replies must return through the director that scheduled the connection, which several directors announcing the VIP cannot ensure; use dr or tunnel", i, s.Name)
		}
	}
}

func haDirectorNode(director *yaml.Node, i int) *yaml.Node {
	return sequenceItem(mappingValue(mappingValue(director, "ha"), "directors"), i)
}

// sequenceItem returns item i of a sequence node, or the node itself.
func sequenceItem(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}
